"""ResponseService: report -> group at once, regrade brings the city in, alerts guarded, fold from the store."""
from __future__ import annotations

from datetime import datetime

import pytest

from command.errors import AlertError, SessionError
from command.alerts.outbox import Outbox
from command.response.service import ResponseService
from helpers_store import new_store
from command.response.timeline import BEIJING, MemberJoined, Regraded, VirtualClock
from incidents.model import Casualties, IncidentReport, Point
from settings import load_settings

START = datetime(2026, 3, 14, 9, 0, tzinfo=BEIJING)
EXERCISE = {"name": "outbox-exercise", "kind": "outbox", "mode": "exercise"}
LIVE = {"name": "outbox-live", "kind": "outbox", "mode": "live"}


@pytest.fixture
def store(tmp_path):
    s = new_store(tmp_path / "svc.db")
    yield s
    s.close()


def service(store, *, exercise=False, channels=(EXERCISE, LIVE), clock=None):
    st = load_settings(channels=list(channels), cap_org_code="101")
    clock = clock or VirtualClock(START)
    return ResponseService(store, settings=st, clock=clock, exercise=exercise, outbox=Outbox(store, st))


TIANHE = IncidentReport(type="gas_explosion", address="广州市天河区天河路",
                        casualties=Casualties(serious_injuries=3), description="商场餐饮区燃气爆炸")


def test_report_locates_grades_finds_nearby_and_opens_the_group_at_once(store):
    svc = service(store)
    s = svc.report(TIANHE, actor="天河区应急管理局 值班室")
    assert s.state == "open" and s.grade.level == "IV"
    assert s.location.district_adcode == "440106" and s.location.point.crs == "wgs84"
    for layer in ("hospital", "fire_station", "camera", "shelter"):
        assert s.nearby[layer], layer
    d = [x["distance_m"] for x in s.nearby["hospital"]]
    assert d == sorted(d)
    fire = s.nearby["fire_station"]
    assert [x["drive_rank"] for x in fire] == list(range(1, len(fire) + 1))
    assert [x["drive_time_s"] for x in fire] == sorted(x["drive_time_s"] for x in fire)
    assert s.group.members and s.group.created_at == s.reported_at
    assert all("天河区" in m.reason for m in s.group.members)
    assert ("值班室", "广州市天河区应急管理局") in {(m.role, m.org) for m in s.group.members}
    assert not any(m.level_of_government == "city" for m in s.group.members)
    assert s.group.conference and s.group.conference.link.startswith("http")
    assert s.id.startswith("440106-20260314090000")


def test_regrade_upward_brings_the_city_in_and_says_so(store):
    clock = VirtualClock(START)
    svc = service(store, clock=clock)
    s = svc.report(TIANHE, actor="值班员")
    before = {(m.role, m.org) for m in s.group.members}
    clock.set_offset(600)
    s = svc.update(s.id, actor="值班员", casualties=Casualties(deaths=4, serious_injuries=15))
    assert s.grade.level == "III" and [lv.level for lv in s.levels] == ["IV", "III"]
    regraded = [e for e in s.events if isinstance(e, Regraded)]
    assert regraded[-1].reason == "升级为较大(III)：广州市 牵头"
    joined = [e for e in s.events if isinstance(e, MemberJoined) and e.at == "2026-03-14T09:10:00+08:00"]
    assert joined and all(e.level_of_government in ("city", "district") for e in joined)
    assert any(e.level_of_government == "city" and "广州市" in e.org and e.reason == "升级为较大(III)：广州市 牵头"
               for e in joined)
    assert before <= {(m.role, m.org) for m in s.group.members}
    # a downgrade removes nobody
    n = len(s.group.members)
    clock.set_offset(900)
    s = svc.update(s.id, actor="值班员", casualties=Casualties(deaths=0, serious_injuries=1))
    assert s.grade.level == "IV" and len(s.group.members) == n
    assert "降级" in [e for e in s.events if isinstance(e, Regraded)][-1].reason


def test_an_actual_warning_without_confirmation_is_refused_and_nothing_is_queued(store):
    svc = service(store)
    s = svc.report(TIANHE, actor="值班员")
    draft = svc.draft_alert(s.id, actor="值班员", radius_m=800, instruction_zh="请远离商场")
    assert draft.status == "Actual" and draft.channels == ("outbox-live",)
    with pytest.raises(AlertError, match="^an Actual public warning needs confirmation$"):
        svc.send_alert(s.id, draft.identifier, actor="值班员", confirm=False)
    assert svc.outbox.deliveries() == []
    assert not svc.get(s.id).alerts[0].was_sent


def test_alert_update_cancel_chain_and_no_identifier_reuse(store):
    clock = VirtualClock(START)
    svc = service(store, clock=clock)
    s = svc.report(TIANHE, actor="值班员")
    clock.set_offset(240)
    first = svc.draft_alert(s.id, actor="值班员", radius_m=800, instruction_zh="请远离商场")
    assert first.msg_type == "Alert" and first.circle.endswith(" 0.8") and first.population > 0
    sent = svc.send_alert(s.id, first.identifier, actor="值班员", confirm=True)
    assert [d["status"] for d in sent["deliveries"]] == ["pending"] and sent["deliveries"][0]["mode"] == "live"
    svc.outbox.run_until_idle(timeout_s=20)
    assert [d["status"] for d in svc.outbox.deliveries(first.identifier)] == ["sent"]
    with pytest.raises(AlertError, match="already sent"):
        svc.send_alert(s.id, first.identifier, actor="值班员", confirm=True)
    clock.set_offset(660)
    second = svc.draft_alert(s.id, actor="值班员", radius_m=1200, instruction_zh="扩大疏散")
    assert second.msg_type == "Update" and second.identifier != first.identifier
    assert second.references == (f"{first.sender},{first.identifier},{first.sent}",)
    assert "<msgType>Update</msgType>" in second.cap_xml and first.identifier in second.cap_xml
    svc.send_alert(s.id, second.identifier, actor="值班员", confirm=True)
    clock.set_offset(7200)
    with pytest.raises(AlertError, match="needs confirmation"):
        svc.cancel_alert(s.id, actor="值班员", confirm=False)
    cancel = svc.cancel_alert(s.id, actor="值班员", confirm=True)
    # every message still in force: the Update, and the Alert it replaced (a receiver may have missed the Update)
    assert cancel["msg_type"] == "Cancel" and cancel["cancels"] == [second.identifier, first.identifier]
    state = svc.get(s.id)
    assert state.active_alerts == ()
    assert [a.msg_type for a in state.alerts] == ["Alert", "Update", "Cancel"]
    assert len({a.identifier for a in state.alerts}) == 3
    with pytest.raises(AlertError, match="no alert in force"):
        svc.cancel_alert(s.id, actor="值班员", confirm=True)


def test_a_stale_draft_is_refused(store):
    svc = service(store)
    s = svc.report(TIANHE, actor="值班员")
    a = svc.draft_alert(s.id, actor="值班员", radius_m=500)
    b = svc.draft_alert(s.id, actor="值班员", radius_m=600)
    svc.send_alert(s.id, a.identifier, actor="值班员", confirm=True)
    with pytest.raises(AlertError, match="out of date"):
        svc.send_alert(s.id, b.identifier, actor="值班员", confirm=True)


def test_exercise_mode_is_exercise_always_and_uses_only_exercise_channels(store):
    svc = service(store, exercise=True)
    s = svc.report(TIANHE, actor="演练导调")
    draft = svc.draft_alert(s.id, actor="演练导调", radius_m=800)
    assert draft.status == "Exercise" and draft.channels == ("outbox-exercise",)
    assert "<status>Exercise</status>" in draft.cap_xml
    result = svc.send_alert(s.id, draft.identifier, actor="演练导调", confirm=False)   # no confirmation needed
    assert {d["mode"] for d in result["deliveries"]} == {"exercise"}
    live = service(store)   # a live service will not send an Exercise draft
    with pytest.raises(AlertError, match="draft again"):
        live.send_alert(s.id, svc.draft_alert(s.id, actor="x", radius_m=900), actor="x", confirm=True)


def test_exercise_with_only_a_live_channel_sends_nothing(store):
    svc = service(store, exercise=True, channels=(LIVE,))
    s = svc.report(TIANHE, actor="演练导调")
    draft = svc.draft_alert(s.id, actor="演练导调", radius_m=800)
    assert draft.channels == ()
    with pytest.raises(AlertError, match="no exercise channel"):
        svc.send_alert(s.id, draft.identifier, actor="演练导调", confirm=True)
    assert store.deliveries() == []


def test_state_folds_the_same_from_a_fresh_service(store):
    svc = service(store)
    s = svc.report(IncidentReport(type="fire", point=Point(114.0596, 22.5429, "gcj02")), actor="值班员")
    svc.note(s.id, "消防已到场", actor="福田区消防救援大队")
    t = svc.add_task(s.id, "消防", "搜救被困人员", actor="指挥长")
    svc.complete_task(s.id, t, actor="消防")
    again = service(store).get(s.id)
    assert again == svc.get(s.id)
    assert again.location.district_adcode == "440304" and again.tasks[0].done_at
    assert [x.id for x in svc.list_incidents(district="440304")] == [s.id]
    assert svc.list_incidents(level="I") == []


def test_closed_incident_takes_no_more_actions(store):
    svc = service(store)
    s = svc.report(TIANHE, actor="值班员")
    svc.close(s.id, actor="值班员")
    assert svc.get(s.id).state == "closed"
    with pytest.raises(SessionError, match="closed"):
        svc.update(s.id, actor="值班员", casualties=Casualties(deaths=5))
    with pytest.raises(SessionError, match="no incident"):
        svc.get("nope")
    assert [x.id for x in svc.list_incidents(state="closed")] == [s.id]


def test_the_services_own_settings_decide_the_grade_not_the_process_settings(store, monkeypatch):
    """A service built with missing_count_as_deaths=False grades 2 deaths + 2 missing by deaths alone (IV),
    whatever the process-wide settings say; one built with True counts 4 (III)."""
    from settings import get_settings, reset_settings_cache
    reset_settings_cache()
    assert get_settings().missing_count_as_deaths      # the process default counts missing with deaths
    fire = IncidentReport(type="fire", address="广州市天河区天河路", casualties=Casualties(deaths=2, missing=2))
    own = load_settings(channels=[EXERCISE], missing_count_as_deaths=False)
    off = ResponseService(store, settings=own, clock=VirtualClock(START), outbox=Outbox(store, own))
    assert off.report(fire, actor="值班员").grade.level == "IV"
    on = service(store)
    assert on.report(fire, actor="值班员", incident_id="440106-on").grade.level == "III"
    # a regrade goes through the same settings
    s = off.report(IncidentReport(type="fire", address="广州市天河区天河路"), actor="值班员", incident_id="440106-u")
    assert off.update(s.id, actor="值班员", casualties=Casualties(deaths=2, missing=2)).grade.level == "IV"


def test_fire_stations_are_ranked_by_drive_time_the_same_way_by_every_door(store):
    """The service's ranking is layers.nearby.around, the one `yzt nearby` and `yzt demo` call."""
    from layers.catalog import Catalog
    from layers.nearby import around
    svc = service(store)
    s = svc.report(IncidentReport(type="fire", point=Point(114.0579, 22.5431)), actor="值班员")
    ranked = around("fire_station", s.location.point, k=5, catalog=Catalog.of(svc.settings))
    assert [d["id"] for d in s.nearby["fire_station"]] == [d["id"] for d in ranked]
    times = [d["drive_time_s"] for d in ranked]
    assert times == sorted(times) and [d["drive_rank"] for d in ranked] == [1, 2, 3, 4, 5]
