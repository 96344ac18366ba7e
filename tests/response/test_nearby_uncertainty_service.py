"""A report at township precision stores an approximate nearby answer whose cameras cover the uncertainty
circle (issue 14); a report at a point stores the sure answer."""
from __future__ import annotations

from datetime import datetime

import pytest

from command.alerts.outbox import Outbox
from command.response.service import NEARBY_K, NEARBY_LAYERS, ResponseService
from command.response.timeline import BEIJING, VirtualClock
from helpers_store import new_store
from incidents.model import IncidentReport, Point
from settings import load_settings


@pytest.fixture
def store(tmp_path):
    s = new_store(tmp_path / "svc.db")
    yield s
    s.close()


def service(store) -> ResponseService:
    st = load_settings(channels=[{"name": "outbox-exercise", "kind": "outbox", "mode": "exercise"}],
                       cap_org_code="101")
    return ResponseService(store, settings=st, clock=VirtualClock(datetime(2026, 3, 14, 9, 0, tzinfo=BEIJING)),
                           outbox=Outbox(store, st))


def test_a_township_report_stores_an_approximate_nearby_with_cameras_over_the_area(store):
    svc = service(store)
    s = svc.report(IncidentReport(type="fire", address="东莞市虎门镇"), actor="值班员")
    u = s.location.uncertainty_m
    assert s.location.precision == "township" and u > 2000
    fresh = service(store).get(s.id)          # what is stored, folded again from the events
    for state in (s, fresh):
        for layer in NEARBY_LAYERS:
            items = state.nearby[layer]
            assert items, layer
            assert all(d["approximate"] is True and d["distance_uncertainty_m"] == round(u) for d in items)
        cams = state.nearby["camera"]
        assert NEARBY_K < len(cams) <= 50
        assert max(d["distance_m"] for d in cams) > 0.8 * u
        assert sum(d["in_uncertainty_area"] for d in cams) > NEARBY_K


def test_a_point_report_stores_the_sure_answer(store):
    s = service(store).report(IncidentReport(type="fire", point=Point(113.67306, 22.81899)), actor="值班员")
    assert not s.location.uncertainty_m
    for layer in NEARBY_LAYERS:
        assert not any("approximate" in d for d in s.nearby[layer]), layer
    assert len(s.nearby["camera"]) == NEARBY_K
