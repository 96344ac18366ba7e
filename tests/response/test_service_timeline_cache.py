"""ResponseService.get reads only newer rows: another officer's change must still show at once."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

from settings import load_settings
from command.response.service import ResponseService
from helpers_store import new_store
from command.response.timeline import VirtualClock
from incidents.model import Casualties, IncidentReport

NOON = datetime(2026, 6, 2, 12, 0, 0, tzinfo=timezone(timedelta(hours=8)))


def test_a_change_made_through_another_service_is_seen_by_the_first(tmp_path):
    store_a, store_b = new_store(tmp_path / "one.db"), new_store(tmp_path / "one.db")  # two processes, one database
    a = ResponseService(store_a, settings=load_settings(), clock=VirtualClock(NOON))
    b = ResponseService(store_b, settings=load_settings(), clock=VirtualClock(NOON))
    inc = a.report(IncidentReport(type="fire", address="深圳市福田区景田路"), actor="officer-a")
    assert a.get(inc.id).grade.level == "IV"
    b.update(inc.id, actor="officer-b", casualties=Casualties(deaths=4))
    seen = a.get(inc.id)
    assert seen.grade.level == "III"
    assert seen == ResponseService(new_store(tmp_path / "one.db"), settings=load_settings(), clock=VirtualClock(NOON)).get(inc.id), \
        "the cached fold equals a fold from scratch"
    b.close(inc.id, actor="officer-b")
    assert a.get(inc.id).state == "closed"
