"""Two-person rule: an Actual warning at level I/II needs a second commander; drills never send Actual."""
from __future__ import annotations

from datetime import datetime

import pytest

from command.security.auth import Principal
from command.errors import AlertError, PermissionDenied
from command.alerts.outbox import Outbox
from command.response.service import ResponseService
from helpers_store import new_store
from command.response.timeline import BEIJING, VirtualClock
from incidents.model import Casualties, IncidentReport
from settings import load_settings

START = datetime(2026, 3, 14, 9, 0, tzinfo=BEIJING)
EXERCISE = {"name": "outbox-exercise", "kind": "outbox", "mode": "exercise"}
LIVE = {"name": "outbox-live", "kind": "outbox", "mode": "live"}
OFFICER = Principal("王五", "officer", "user", "10.0.0.5")
CMD_A = Principal("张指挥", "commander", "user", "10.0.0.6")
CMD_B = Principal("李指挥", "commander", "user", "10.0.0.7")
LEVEL_II = IncidentReport(type="gas_explosion", address="广州市天河区天河路", casualties=Casualties(deaths=12),
                          description="商场燃气爆炸")
LEVEL_IV = IncidentReport(type="gas_explosion", address="广州市天河区天河路",
                          casualties=Casualties(serious_injuries=3))


@pytest.fixture
def store(tmp_path):
    s = new_store(tmp_path / "tp.db")
    yield s
    s.close()


def service(store, *, exercise=False, **overrides):
    st = load_settings(channels=[EXERCISE, LIVE], **{"cap_org_code": "101", **overrides})
    return ResponseService(store, settings=st, clock=VirtualClock(START), exercise=exercise,
                           outbox=Outbox(store, st))


def test_level_ii_actual_needs_a_second_commander(store):
    svc = service(store)
    s = svc.report(LEVEL_II, actor=OFFICER)
    assert s.grade.level == "II"
    draft = svc.draft_alert(s.id, actor=OFFICER, radius_m=1000, instruction_zh="请远离商场")
    with pytest.raises(AlertError, match="^level II warning needs a second commander's approval$"):
        svc.send_alert(s.id, draft.identifier, actor=CMD_A, confirm=True)
    svc.approve_alert(s.id, draft.identifier, actor=CMD_A)           # approving one's own is not enough
    with pytest.raises(AlertError, match="second commander's approval .the sender cannot approve"):
        svc.send_alert(s.id, draft.identifier, actor=CMD_A, confirm=True)
    assert store.deliveries() == [] and not svc.get(s.id).alerts[0].was_sent
    with pytest.raises(PermissionDenied, match="^user 王五 \\(role officer\\) may not alert.approve: needs commander$"):
        svc.approve_alert(s.id, draft.identifier, actor=OFFICER)
    svc.approve_alert(s.id, draft.identifier, actor=CMD_B)
    result = svc.send_alert(s.id, draft.identifier, actor=CMD_A, confirm=True)
    assert [d["status"] for d in result["deliveries"]] == ["pending"]       # queued; the outbox delivers
    svc.outbox.run_until_idle(timeout_s=20)
    assert [d["status"] for d in svc.outbox.deliveries(draft.identifier)] == ["sent"]
    rec = svc.get(s.id).alerts[0]
    assert rec.was_sent and rec.approvals == ("张指挥", "李指挥")


def test_level_ii_still_needs_confirmation_and_an_officer_may_not_send(store):
    svc = service(store)
    s = svc.report(LEVEL_II, actor=OFFICER)
    draft = svc.draft_alert(s.id, actor=OFFICER, radius_m=1000)
    svc.approve_alert(s.id, draft.identifier, actor=CMD_B)
    with pytest.raises(AlertError, match="needs confirmation"):
        svc.send_alert(s.id, draft.identifier, actor=CMD_A, confirm=False)
    with pytest.raises(PermissionDenied, match="may not alert.send: needs commander"):
        svc.send_alert(s.id, draft.identifier, actor=OFFICER, confirm=True)
    assert store.deliveries() == []


def test_level_iv_actual_needs_only_confirmation(store):
    svc = service(store)
    s = svc.report(LEVEL_IV, actor=OFFICER)
    assert s.grade.level == "IV"
    draft = svc.draft_alert(s.id, actor=OFFICER, radius_m=800)
    with pytest.raises(AlertError, match="needs confirmation"):
        svc.send_alert(s.id, draft.identifier, actor=CMD_A, confirm=False)
    assert svc.send_alert(s.id, draft.identifier, actor=CMD_A, confirm=True)["deliveries"][0]["status"] == "pending"


def test_the_levels_are_configurable(store):
    svc = service(store, two_person_levels=["IV"])
    s = svc.report(LEVEL_IV, actor=OFFICER)
    draft = svc.draft_alert(s.id, actor=OFFICER, radius_m=800)
    with pytest.raises(AlertError, match="^level IV warning needs a second commander's approval$"):
        svc.send_alert(s.id, draft.identifier, actor=CMD_A, confirm=True)
    ii = service(store, two_person_levels=[])
    s2 = ii.report(LEVEL_II, actor=OFFICER)
    d2 = ii.draft_alert(s2.id, actor=OFFICER, radius_m=800)
    assert ii.send_alert(s2.id, d2.identifier, actor=CMD_A, confirm=True)["status"] == "Actual"


def test_a_cancel_never_waits_for_a_second_commander(store):
    svc = service(store)
    s = svc.report(LEVEL_II, actor=OFFICER)
    draft = svc.draft_alert(s.id, actor=OFFICER, radius_m=1000)
    svc.approve_alert(s.id, draft.identifier, actor=CMD_B)
    svc.send_alert(s.id, draft.identifier, actor=CMD_A, confirm=True)
    cancel = svc.cancel_alert(s.id, actor=CMD_A, confirm=True)     # a false alarm is withdrawn at once
    assert cancel["msg_type"] == "Cancel" and svc.get(s.id).active_alerts == ()


def test_a_drill_never_sends_actual_and_needs_no_second_commander(store):
    svc = service(store, exercise=True)
    s = svc.report(LEVEL_II, actor=OFFICER)
    draft = svc.draft_alert(s.id, actor=OFFICER, radius_m=1000)
    assert draft.status == "Exercise"
    result = svc.send_alert(s.id, draft.identifier, actor=CMD_A, confirm=False)
    assert result["status"] == "Exercise" and {d["mode"] for d in result["deliveries"]} == {"exercise"}
    with pytest.raises(AlertError, match="only an Actual warning is approved"):
        svc.approve_alert(s.id, svc.draft_alert(s.id, actor=OFFICER).identifier, actor=CMD_B)
    assert all(r["mode"] == "exercise" for r in store.deliveries())


def test_approving_an_unknown_or_sent_draft_is_refused(store):
    svc = service(store)
    s = svc.report(LEVEL_IV, actor=OFFICER)
    with pytest.raises(AlertError, match="was not drafted"):
        svc.approve_alert(s.id, "nope", actor=CMD_B)
    draft = svc.draft_alert(s.id, actor=OFFICER, radius_m=800)
    svc.send_alert(s.id, draft.identifier, actor=CMD_A, confirm=True)
    with pytest.raises(AlertError, match="already sent"):
        svc.approve_alert(s.id, draft.identifier, actor=CMD_B)


def test_every_service_action_refuses_a_role_below_it(store):
    svc = service(store)
    s = svc.report(LEVEL_IV, actor=OFFICER)
    draft = svc.draft_alert(s.id, actor=OFFICER, radius_m=800)
    task = svc.add_task(s.id, "消防", "搜救", actor=OFFICER)
    viewer = Principal("旁观者", "viewer", "user", "10.0.0.9")
    calls = {
        "incident.report": lambda p: svc.report(LEVEL_IV, actor=p),
        "incident.update": lambda p: svc.update(s.id, actor=p, description="x"),
        "incident.note": lambda p: svc.note(s.id, "x", actor=p),
        "task.set": lambda p: svc.add_task(s.id, "消防", "x", actor=p),
        "task.done": lambda p: svc.complete_task(s.id, task, actor=p),
        "alert.draft": lambda p: svc.draft_alert(s.id, actor=p),
        "alert.send": lambda p: svc.send_alert(s.id, draft.identifier, actor=p, confirm=True),
        "alert.approve": lambda p: svc.approve_alert(s.id, draft.identifier, actor=p),
        "alert.cancel": lambda p: svc.cancel_alert(s.id, actor=p, confirm=True),
        "incident.close": lambda p: svc.close(s.id, actor=p),
    }
    before = len(store.events())
    for action, call in calls.items():
        with pytest.raises(PermissionDenied, match=f"may not {action}:"):
            call(viewer)
        if action in ("alert.send", "alert.approve", "alert.cancel", "incident.close"):
            with pytest.raises(PermissionDenied, match=f"^user 王五 \\(role officer\\) may not {action}:"):
                call(OFFICER)
    assert len(store.events()) == before          # nothing was written by a refused call
