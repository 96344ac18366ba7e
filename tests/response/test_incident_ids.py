"""Two reports can never share an incident: the database holds one report per id."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from settings import load_settings
from command.errors import IncidentExistsError, SessionError
from command.response.service import ResponseService
from helpers_store import new_store
from command.response.timeline import VirtualClock
from incidents.model import Casualties, IncidentReport

NOON = datetime(2026, 6, 2, 12, 0, 0, tzinfo=timezone(timedelta(hours=8)))
REPORT = IncidentReport(type="fire", address="深圳市福田区景田路", casualties=Casualties(serious_injuries=1))


def test_store_refuses_a_second_report_of_the_same_id_and_writes_nothing(tmp_path):
    store = new_store(tmp_path / "ids.db")
    store.append_event("X-1", "Reported", {"n": 1}, at="2026-06-02T12:00:00+08:00", actor="a")
    before = len(store.events())
    with pytest.raises(IncidentExistsError, match="X-1 already exists"):
        store.append_events("X-1", [("NoteAdded", {"text": "t"}, "2026-06-02T12:00:01+08:00", "b"),
                                    ("Reported", {"n": 2}, "2026-06-02T12:00:01+08:00", "b")])
    assert len(store.events()) == before, "the whole batch is refused, not half of it"


def test_same_second_same_district_reports_get_their_own_timelines(tmp_path):
    store = new_store(tmp_path / "ids.db")
    first = ResponseService(store, settings=load_settings(), clock=VirtualClock(NOON)).report(REPORT, actor="officer-a")
    # another officer's service, same second, same district: its first choice is refused by the store
    second = ResponseService(store, settings=load_settings(), clock=VirtualClock(NOON)).report(REPORT, actor="officer-b")
    assert first.id == "440304-20260602120000"
    assert second.id == "440304-20260602120000-2"
    assert [e.kind for e in store.events(first.id)].count("Reported") == 1
    assert [e.kind for e in store.events(second.id)].count("Reported") == 1


def test_an_explicit_id_that_exists_is_refused(tmp_path):
    store = new_store(tmp_path / "ids.db")
    svc = ResponseService(store, settings=load_settings(), clock=VirtualClock(NOON))
    svc.report(REPORT, actor="officer-a", incident_id="119-F1")
    with pytest.raises(SessionError, match="119-F1 already exists"):
        svc.report(REPORT, actor="officer-a", incident_id="119-F1")
