"""Finding 1: roles had no jurisdiction (a 福田区 desk could send an Actual warning for 天河区).

The rule lives in command.security.scopes and the service checks it for every action, so every door (CLI,
API, dashboard, drills) gets it; the API and dashboard doors are tested in test_jurisdiction_doors.py.
"""
from __future__ import annotations

from datetime import datetime

import pytest

from command.alerts.outbox import Outbox
from command.errors import PermissionDenied
from command.response.service import ResponseService
from command.response.timeline import BEIJING, VirtualClock
from command.security import scopes
from command.security.auth import Principal
from command.store.sqlite import Store
from incidents.model import Casualties, IncidentReport
from settings import load_settings

START = datetime(2026, 3, 14, 9, 0, tzinfo=BEIJING)
CHANNELS = [{"name": "outbox-exercise", "kind": "outbox", "mode": "exercise"},
            {"name": "outbox-live", "kind": "outbox", "mode": "live"}]
TIANHE = IncidentReport(type="fire", address="广州市天河区天河路")
FUTIAN = IncidentReport(type="fire", address="深圳市福田区福华路")


def desk(name: str, role: str, scope: str) -> Principal:
    return Principal(name, role, "user", "10.0.0.1", scope=scopes.parse(scope))


@pytest.fixture
def svc(tmp_path):
    store = Store(tmp_path / "j.db")
    st = load_settings(channels=CHANNELS, two_person_levels=[], cap_org_code="101")
    yield ResponseService(store, settings=st, clock=VirtualClock(START), outbox=Outbox(store, st),
                          exercise=True)     # Exercise: the rule is the same, and no CAP org code is needed
    store.close()


# ------------------------------------------------------------------------ the rule, pure
@pytest.mark.parametrize("scope,code,inside", [
    ("440000", "440106", True), ("440100", "440106", True), ("440100", "440304", False),
    ("440106", "440106", True), ("440106", "440104", False), ("440304", "440106", False),
    ("441900", "441900", True), ("440106", "440100", False), ("440100", "440100", True),
    ("440106", "450103", False), ("440000", "440000", True),
])
def test_a_scope_holds_its_own_districts_only(scope, code, inside):
    assert scopes.contains(scope, code) is inside


@pytest.mark.parametrize("given,canonical", [(None, "440000"), ("province", "440000"), ("440106", "440106"),
                                             (440100.0, "440100"), ("  440304 ", "440304")])
def test_scopes_parse_to_an_adcode(given, canonical):
    assert scopes.parse(given) == canonical


@pytest.mark.parametrize("bad", ["110101", "4401", "440106; DROP TABLE users", "all", "44010x"])
def test_a_scope_outside_guangdong_or_malformed_is_refused(bad):
    with pytest.raises(scopes.ScopeError):
        scopes.parse(bad)


def test_the_desk_that_may_warn_is_the_smallest_scope_holding_the_area():
    assert scopes.common_scope(["440106"]) == "440106"
    assert scopes.common_scope(["440106", "440104"]) == "440100"
    assert scopes.common_scope(["440106", "440304"]) == "440000"


# ------------------------------------------------------------------------ the service, for every door
def test_a_futian_desk_cannot_report_update_or_warn_for_tianhe(svc):
    futian = desk("福田值班", "commander", "440304")
    with pytest.raises(PermissionDenied, match="outside the jurisdiction"):
        svc.report(TIANHE, actor=futian)
    s = svc.report(TIANHE, actor=desk("天河值班", "commander", "440106"))
    refused = {
        "update": lambda: svc.update(s.id, actor=futian, casualties=Casualties(deaths=1)),
        "note": lambda: svc.note(s.id, "我来处理", actor=futian),
        "add_task": lambda: svc.add_task(s.id, "消防", "出动", actor=futian),
        "draft": lambda: svc.draft_alert(s.id, actor=futian, radius_m=800, instruction_zh="远离"),
        "close": lambda: svc.close(s.id, actor=futian),
        "see": lambda: svc.get(s.id, viewer=futian),
    }
    before = len(svc.get(s.id).events)
    for what, call in refused.items():
        with pytest.raises(PermissionDenied, match="outside the jurisdiction"):
            call()
        assert len(svc.get(s.id).events) == before, what
    assert [x.id for x in svc.list_incidents(viewer=futian)] == []
    assert not any(e.actor == "福田值班" for e in svc.get(s.id).events)


def test_a_stolen_tianhe_draft_cannot_be_approved_or_sent_by_futian(svc):
    tianhe = desk("天河指挥", "commander", "440106")
    s = svc.report(TIANHE, actor=tianhe)
    draft = svc.draft_alert(s.id, actor=tianhe, radius_m=300, instruction_zh="请远离")
    futian = desk("福田指挥", "commander", "440304")
    with pytest.raises(PermissionDenied):
        svc.approve_alert(s.id, draft.identifier, actor=futian)
    with pytest.raises(PermissionDenied):
        svc.send_alert(s.id, draft, actor=futian, confirm=True)
    with pytest.raises(PermissionDenied):
        svc.cancel_alert(s.id, actor=futian, confirm=True)
    assert svc.outbox.deliveries(draft.identifier) == []
    out = svc.send_alert(s.id, draft, actor=tianhe, confirm=True)      # its own desk may
    assert out["deliveries"]


def test_a_district_desk_may_not_warn_across_its_border_but_the_city_may(svc):
    tianhe = desk("天河指挥", "commander", "440106")
    s = svc.report(TIANHE, actor=tianhe)
    with pytest.raises(PermissionDenied, match="reaches outside the jurisdiction; the desk of 440100 may"):
        svc.draft_alert(s.id, actor=tianhe, radius_m=6000, instruction_zh="请远离")
    city = desk("广州市指挥", "commander", "440100")
    draft = svc.draft_alert(s.id, actor=city, radius_m=6000, instruction_zh="请远离")
    assert len({u["adcode"] for u in draft.admin_units}) > 1
    assert all(scopes.contains("440100", u["adcode"]) for u in draft.admin_units)
    assert svc.send_alert(s.id, draft, actor=city, confirm=True)["deliveries"]


def test_the_list_opens_on_the_scope_and_higher_desks_see_what_is_escalated(svc):
    th = svc.report(TIANHE, actor=desk("天河值班", "officer", "440106"))
    ft = svc.report(FUTIAN, actor=desk("福田值班", "officer", "440304"))
    seen = {sc: [x.id for x in svc.list_incidents(viewer=desk("x", "viewer", sc))]
            for sc in ("440106", "440304", "440100", "440300", "440000")}
    assert seen == {"440106": [th.id], "440304": [ft.id], "440100": [th.id], "440300": [ft.id],
                    "440000": [th.id, ft.id]}
    rules = svc.duty
    assert scopes.desks(svc.get(th.id), rules) == ("440106",)
    up = svc.update(th.id, actor=desk("天河值班", "officer", "440106"), casualties=Casualties(deaths=4))
    assert up.grade.level in ("III", "II", "I")
    assert "440100" in scopes.desks(up, rules)
    assert th.id in [x.id for x in svc.list_incidents(viewer=desk("市", "viewer", "440100"))]


def test_the_local_operator_and_old_principals_act_for_the_province(svc):
    s = svc.report(FUTIAN, actor="终端值班员")            # the CLI: a plain name
    assert svc.get(s.id, viewer="终端值班员").id == s.id
    old = Principal("老账号", "officer", "user", "10.0.0.2")      # made without a scope
    assert scopes.scope_of(old) == "440000"
