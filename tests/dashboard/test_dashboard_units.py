"""Dashboard helpers and callbacks called directly, over a real store and the real services."""
from __future__ import annotations

import json

import pytest

from command.dashboard import cameras, common, group, incidents_list, mapview, report, runtime, sync
from incidents.errors import IncidentError
from incidents.model import Point
from settings import load_settings


@pytest.fixture
def rt():
    r = runtime.configure(load_settings())
    yield r
    r.close()


FORM = {"address": "广州市天河区天河路", "type": "gas_explosion", "serious": 3, "datum": "wgs84"}


def test_build_report_refuses_without_place_or_type():
    with pytest.raises(IncidentError, match="地址|address"):
        report.build_report({"type": "fire"})
    with pytest.raises(IncidentError, match="类型|type"):
        report.build_report({"address": "广州市天河区"})
    with pytest.raises(IncidentError, match="whole number"):
        report.build_report(dict(FORM, deaths=-1))
    with pytest.raises(IncidentError, match="swapped"):
        report.build_report(dict(FORM, coords="23.13,113.32"))


def test_build_report_keeps_the_datum_of_a_pasted_point():
    r = report.build_report({"coords": "113.3305,23.1374", "datum": "gcj02", "type": "fire", "serious": "2"})
    assert r.point == Point(113.3305, 23.1374, "gcj02")
    assert r.casualties.serious_injuries == 2 and r.address is None


def test_report_from_the_form_grades_iv_and_lists_it(rt):
    state = report.submit_report(rt.service(), FORM, actor="值班员")
    assert state.grade.level == "IV" and state.grade.name == "一般"
    assert state.casualties.serious_injuries == 3
    rows = incidents_list.incident_rows(rt.service().list_incidents(), state.id)
    assert state.id in json.dumps([r.to_plotly_json() for r in rows], default=str)
    markers = mapview.incident_markers([state])
    assert 'lvl-IV' in markers[0].iconOptions["html"]
    assert sync.new_seq(rt.store(), 0) >= 1
    assert sync.new_seq(rt.store(), sync.new_seq(rt.store(), 0)) is None


def test_report_callback_shows_one_line_for_an_unknown_address(rt):
    sel, alert, bump = report.on_report(1, "火星基地一号", "", "wgs84", "fire", 0, 0, 0, 0, "", "值班员", 0)
    text = json.dumps(alert.to_plotly_json(), default=str, ensure_ascii=False)
    assert "yzt-alert-error" in text and "Traceback" not in text
    assert rt.service().list_incidents() == []


def test_casualty_update_regrades_and_timeline_says_so(rt):
    state = report.submit_report(rt.service(), FORM, actor="值班员")
    after = group.update_casualties(rt.service(), state.id, {"deaths": 4, "serious": 3, "missing": 0}, actor="t")
    assert after.grade.level == "III"
    lines = [group.event_line(e) for e in after.events]
    assert any("IV → III" in line for line in lines)


def test_covers_uses_heading_and_field_of_view():
    cam = {"heading_deg": 90.0, "fov_deg": 60.0}
    assert cameras.covers(cam, (0.0, 0.0), (100.0, 10.0))          # east, inside the cone
    assert not cameras.covers(cam, (0.0, 0.0), (-100.0, 0.0))      # behind
    assert not cameras.covers(cam, (0.0, 0.0), (100.0, 100.0))     # 45 deg off, cone is +-30
    assert not cameras.covers(cam, (0.0, 0.0), (1000.0, 0.0))      # too far to see
    assert cameras.covers({"heading_deg": 350.0, "fov_deg": 40.0}, (0, 0), (5.0, 100.0))  # wraps north


def test_wall_puts_covering_cameras_first_then_nearest():
    wall = cameras.wall_cameras(Point(113.3245, 23.1375, "wgs84"), k=8)
    assert len(wall) == 8
    flags = [c["covers"] for c in wall]
    assert flags == sorted(flags, reverse=True)
    for group_ in (True, False):
        d = [c["distance_m"] for c in wall if c["covers"] is group_]
        assert d == sorted(d)
    tile = cameras.tile(dict(wall[0], stream_url=""), simulate=False, tick=0)
    assert "无视频流" in json.dumps(tile.to_plotly_json(), default=str, ensure_ascii=False)
    sim = cameras.tile(dict(wall[0], stream_url=""), simulate=True, tick=3)
    assert f"/yzt/sim/camera/{wall[0]['id']}.svg" in json.dumps(sim.to_plotly_json(), default=str)


def test_click_latlng_accepts_both_shapes():
    assert mapview.click_latlng({"latlng": {"lat": 23.1, "lng": 113.3}}) == (23.1, 113.3)
    assert mapview.click_latlng({"latlng": [23.1, 113.3]}) == (23.1, 113.3)
    assert mapview.click_latlng(None) is None


def test_alert_from_hides_bugs_and_shows_refusals():
    shown = json.dumps(common.alert_from(ValueError("point '1,2': outside Guangdong")).to_plotly_json(),
                       default=str)
    assert "outside Guangdong" in shown
    hidden = json.dumps(common.alert_from(KeyError("secret internals")).to_plotly_json(), default=str,
                        ensure_ascii=False)
    assert "secret internals" not in hidden and "内部错误" in hidden


def test_a_new_browsers_first_sync_reads_no_history(tmp_path):
    """The sync poll asks the store for its newest seq only: a browser opened after a year of events pays
    what every poll pays (issue 12), instead of reading every event since the first."""
    from command.dashboard import sync
    from command.store import open_store

    class Counting:
        def __init__(self, store):
            self.store, self.events_read = store, 0

        def events(self, *a, **kw):
            self.events_read += 1
            return self.store.events(*a, **kw)

        def last_seq(self, **kw):
            return self.store.last_seq(**kw)

    store = open_store(tmp_path / "s.db")
    try:
        for i in range(30):
            store.append_event(f"GD-{i}", "NoteAdded", {"text": "x"}, at="2026-03-14T09:00:00+08:00", actor="t")
        probe = Counting(store)
        assert sync.new_seq(probe, 0) == store.last_seq() == 30
        assert sync.new_seq(probe, 30) is None and probe.events_read == 0
    finally:
        store.close()
