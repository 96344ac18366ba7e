"""The chain from draft to delivery is exact (issue 11, first five findings), through the service itself.

Each test names the finding it guards; each fails on the code of 24ff98e, where send_alert took the caller's
AlertDraft (its texts were what left), checked the two-person rule against the incident's level at send time,
drove the outbox for up to 30 s and froze that moment into the timeline, and took identifiers that only the
incident's own drafts and the sent alerts could rule out.
"""
from __future__ import annotations

import dataclasses
import json
import threading
import time
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from command.alerts.outbox import Outbox, content_sha256
from command.errors import AlertError
from command.response.service import ResponseService
from command.response.timeline import BEIJING, VirtualClock
from command.security.auth import Principal
from command.store.sqlite import Store
from helpers_http import Receiver
from incidents.model import Casualties, IncidentReport
from settings import load_settings

START = datetime(2026, 3, 14, 9, 0, tzinfo=BEIJING)
LIVE = {"name": "outbox-live", "kind": "outbox", "mode": "live"}
EXERCISE = {"name": "outbox-exercise", "kind": "outbox", "mode": "exercise"}
OFFICER = Principal("王五", "officer", "user", "10.0.0.5")
CMD_A = Principal("张指挥", "commander", "user", "10.0.0.6")
CMD_B = Principal("李指挥", "commander", "user", "10.0.0.7")
LEVEL_II = IncidentReport(type="gas_explosion", address="广州市天河区天河路", casualties=Casualties(deaths=12),
                          description="商场燃气爆炸")
LEVEL_IV = IncidentReport(type="gas_explosion", address="广州市天河区天河路",
                          casualties=Casualties(serious_injuries=3))


@pytest.fixture
def store(tmp_path):
    s = Store(tmp_path / "chain.db")
    yield s
    s.close()


def service(store, *, channels=(LIVE, EXERCISE), exercise=False, clock=None, **overrides):
    st = load_settings(channels=list(channels), cap_org_code="101", **overrides)
    clock = clock or VirtualClock(START)
    return ResponseService(store, settings=st, clock=clock, exercise=exercise,
                           outbox=Outbox(store, st, clock=clock))


def refusals(svc, incident_id):
    return [(e.identifier, e.action, e.reason) for e in svc.get(incident_id).events if e.kind == "AlertRefused"]


def lines_of(svc, channel="outbox-live"):
    path = svc.settings.var_dir / f"outbox-{channel}.jsonl"
    return [json.loads(x) for x in path.read_text(encoding="utf-8").splitlines()] if path.exists() else []


# ------------------------------------------------------------- 1. what leaves is the stored draft

def test_what_residents_get_is_the_stored_draft_whatever_the_caller_hands_in(store):
    svc = service(store)
    s = svc.report(LEVEL_IV, actor=OFFICER)
    draft = svc.draft_alert(s.id, actor=OFFICER, radius_m=800, instruction_zh="请远离商场")
    forged = dataclasses.replace(draft, headline_zh="全市立即撤离", text_zh="全市立即撤离 http://evil.example",
                                 area_desc="广东省全境")
    svc.send_alert(s.id, forged, actor=CMD_A, confirm=True)    # an AlertDraft counts only by its identifier
    svc.outbox.run_until_idle(timeout_s=20)
    [line] = lines_of(svc)
    assert (line["headline_zh"], line["text_zh"], line["area_desc"]) == (draft.headline_zh, draft.text_zh,
                                                                          draft.area_desc)
    assert line["cap_xml"] == draft.cap_xml and "全市立即撤离" not in json.dumps(line, ensure_ascii=False)
    assert content_sha256(line) == draft.content_sha256 == svc.get(s.id).alerts[0].content_sha256


def test_the_content_hash_is_kept_with_the_alert_row_and_checked_before_each_send(store):
    svc = service(store)
    s = svc.report(LEVEL_IV, actor=OFFICER)
    draft = svc.draft_alert(s.id, actor=OFFICER, radius_m=800)
    svc.send_alert(s.id, draft.identifier, actor=CMD_A, confirm=True)
    row = store.alert(draft.identifier)
    assert row["content_sha256"] == draft.content_sha256
    # someone edits the queued row behind the service's back: the worker refuses to send it
    conn = store._conn()
    conn.execute("UPDATE alerts SET headline_zh = '全市立即撤离' WHERE identifier = ?", (draft.identifier,))
    conn.commit()
    svc.outbox.run_until_idle(timeout_s=20)
    [d] = svc.outbox.deliveries(draft.identifier)
    assert d["status"] == "dead" and "changed" in d["last_error"]       # the store or the worker refuses it
    assert lines_of(svc) == []


# ------------------------------------------------------------- 2. the two-person rule, whatever happens

def test_the_level_ii_iv_send_ii_dance_is_refused(store):
    clock = VirtualClock(START)
    svc = service(store, clock=clock)
    s = svc.report(LEVEL_II, actor=OFFICER)
    draft = svc.draft_alert(s.id, actor=OFFICER, radius_m=1000)
    assert "<severity>Severe</severity>" in draft.cap_xml
    clock.advance(30)
    assert svc.update(s.id, actor=OFFICER, casualties=Casualties()).grade.level == "IV"
    check = svc.send_check(s.id, draft.identifier, sender=CMD_A)
    assert check["level"] == "II" and check["needs_approval"] and "voided by the regrade II -> IV" in check["voided"]
    with pytest.raises(AlertError, match="voided by the regrade II -> IV"):
        svc.send_alert(s.id, draft.identifier, actor=CMD_A, confirm=True)
    svc.update(s.id, actor=OFFICER, casualties=Casualties(deaths=12))
    assert store.deliveries() == [] and not svc.get(s.id).alerts[0].was_sent
    assert [r[:2] for r in refusals(svc, s.id)] == [(draft.identifier, "send")]


def test_a_regrade_voids_the_approvals_of_unsent_drafts(store):
    svc = service(store)
    s = svc.report(LEVEL_II, actor=OFFICER)
    draft = svc.draft_alert(s.id, actor=OFFICER, radius_m=1000)
    svc.approve_alert(s.id, draft.identifier, actor=CMD_B)
    assert svc.get(s.id).alerts[0].approvals == ("李指挥",)
    svc.update(s.id, actor=OFFICER, casualties=Casualties(deaths=40))          # II -> I
    rec = svc.get(s.id).alerts[0]
    assert rec.approvals == () and rec.voided
    with pytest.raises(AlertError, match="voided by the regrade II -> I"):
        svc.approve_alert(s.id, draft.identifier, actor=CMD_B)
    with pytest.raises(AlertError, match="voided"):
        svc.send_alert(s.id, draft.identifier, actor=CMD_A, confirm=True)
    fresh = svc.draft_alert(s.id, actor=OFFICER, radius_m=1000)              # a new draft, a new approval
    with pytest.raises(AlertError, match="^level I warning needs a second commander's approval$"):
        svc.send_alert(s.id, fresh.identifier, actor=CMD_A, confirm=True)
    svc.approve_alert(s.id, fresh.identifier, actor=CMD_B)
    assert svc.send_alert(s.id, fresh.identifier, actor=CMD_A, confirm=True)["identifier"] == fresh.identifier


def test_the_rule_takes_the_higher_of_the_drafts_level_and_the_incidents(store):
    svc = service(store)
    s = svc.report(LEVEL_II, actor=OFFICER)
    draft = svc.draft_alert(s.id, actor=OFFICER, radius_m=1000)
    state = svc.get(s.id)
    rec = dataclasses.replace(state.alerts[0], level="II")
    low = dataclasses.replace(state, grade=dataclasses.replace(state.grade, level="IV"))
    assert svc.rule_level(low, rec) == "II" and svc.needs_second_commander(low, rec)
    assert svc.rule_level(state, dataclasses.replace(rec, level="IV")) == "II"
    assert draft.level == "II"


def test_nobody_approves_their_own_draft_and_the_approver_is_never_the_sender(store):
    svc = service(store)
    s = svc.report(LEVEL_II, actor=OFFICER)
    own = svc.draft_alert(s.id, actor=CMD_A, radius_m=1000)
    with pytest.raises(AlertError, match="nobody approves their own draft"):
        svc.approve_alert(s.id, own.identifier, actor=CMD_A)
    svc.approve_alert(s.id, own.identifier, actor=CMD_B)
    with pytest.raises(AlertError, match="second commander's approval .the sender cannot approve"):
        svc.send_alert(s.id, own.identifier, actor=CMD_B, confirm=True)     # approved it: may not send it
    assert store.deliveries() == []
    svc.send_alert(s.id, own.identifier, actor=CMD_A, confirm=True)        # two commanders: drafter sends
    assert {r[1] for r in refusals(svc, s.id)} == {"approve", "send"}


def test_an_approval_binds_to_the_content_it_names(store):
    svc = service(store)
    s = svc.report(LEVEL_II, actor=OFFICER)
    first = svc.draft_alert(s.id, actor=OFFICER, radius_m=1000, instruction_zh="请远离")
    second = svc.draft_alert(s.id, actor=OFFICER, radius_m=3000, instruction_zh="全区撤离")
    with pytest.raises(AlertError, match="not the draft's content"):
        svc.approve_alert(s.id, first.identifier, actor=CMD_B, content_sha256=second.content_sha256)
    svc.approve_alert(s.id, first.identifier, actor=CMD_B, content_sha256=first.content_sha256)
    state = svc.get(s.id)
    assert [a.approvals for a in state.alerts] == [("李指挥",), ()]          # the named draft, not the latest
    with pytest.raises(AlertError, match="needs a second commander's approval"):
        svc.send_alert(s.id, second.identifier, actor=CMD_A, confirm=True)


# ------------------------------------------------------------- 3. no success that did not happen

class _Hang(BaseHTTPRequestHandler):
    release = threading.Event()

    def do_POST(self):  # noqa: N802
        self.release.wait(20)
        self.send_response(200)
        self.end_headers()

    def log_message(self, *a):
        pass


def test_a_hung_receiver_never_holds_the_send_call(store):
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Hang)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    hook = {"name": "gd-hook", "kind": "webhook", "mode": "exercise",
            "url": f"http://127.0.0.1:{server.server_address[1]}/cap", "secret": "s" * 32}
    svc = service(store, channels=[hook], exercise=True)
    try:
        svc.outbox.start()                                                  # the server's workers
        s = svc.report(LEVEL_IV, actor=OFFICER)
        draft = svc.draft_alert(s.id, actor=OFFICER, radius_m=800)
        t0 = time.monotonic()
        result = svc.send_alert(s.id, draft.identifier, actor=CMD_A, confirm=False)
        assert time.monotonic() - t0 < 2.0
        assert [d["status"] for d in result["deliveries"]] == ["pending"]
        rec = svc.get(s.id).alerts[0]
        assert rec.was_sent and rec.deliveries == ()       # nothing claims a delivery the receiver never took
    finally:
        _Hang.release.set()
        svc.outbox.close()
        server.shutdown()


def test_a_late_success_reaches_the_timeline_at_the_outboxs_clock(store):
    with Receiver() as rx:
        rx.fail_next(1, status=503)
        hook = {"name": "gd-hook", "kind": "webhook", "mode": "exercise", "url": rx.url + "/cap",
                "secret": "s" * 32}
        clock = VirtualClock(START)
        st = load_settings(channels=[hook], cap_org_code="101")
        svc = ResponseService(store, settings=st, clock=clock, exercise=True,
                              outbox=Outbox(store, st, clock=clock, backoff_base_s=0.05, backoff_cap_s=0.1))
        s = svc.report(LEVEL_IV, actor=OFFICER)
        draft = svc.draft_alert(s.id, actor=OFFICER, radius_m=800)
        svc.send_alert(s.id, draft.identifier, actor=CMD_A, confirm=False)
        svc.outbox.run_until_idle(timeout_s=0.01)          # the first attempt fails; nothing final yet
        assert svc.get(s.id).alerts[0].deliveries == ()
        clock.advance(600)
        svc.outbox.run_until_idle(timeout_s=20)            # the retry succeeds later
        [d] = svc.get(s.id).alerts[0].deliveries
        assert d["ok"] and d["channel"] == "gd-hook" and d["at"] == "2026-03-14T09:10:00+08:00"
        sent = [e for e in store.events(s.id) if e.kind == "AlertSent"]
        assert len(sent) == 1 and sent[0].actor == "outbox"
        assert any(a["action"] == "event.AlertSent" for a in store.audit_entries())


def test_every_refusal_is_written_to_the_timeline_and_the_audit_log(store):
    svc = service(store, channels=[EXERCISE])          # no live channel
    s = svc.report(LEVEL_IV, actor=OFFICER)
    draft = svc.draft_alert(s.id, actor=OFFICER, radius_m=800)
    with pytest.raises(AlertError, match="needs confirmation"):
        svc.send_alert(s.id, draft.identifier, actor=CMD_A, confirm=False)
    with pytest.raises(AlertError, match="^no live channel"):
        svc.send_alert(s.id, draft.identifier, actor=CMD_A, confirm=True)
    with pytest.raises(AlertError, match="was not drafted"):
        svc.send_alert(s.id, "44010610100000_20260314090000_9", actor=CMD_A, confirm=True)
    drill = service(store, channels=[EXERCISE], exercise=True)
    with pytest.raises(AlertError, match="is Actual but this service is in exercise mode"):
        drill.send_alert(s.id, draft.identifier, actor=CMD_A, confirm=True)
    reasons = [r[2] for r in refusals(svc, s.id)]
    assert len(reasons) == 4 and all("\n" not in r for r in reasons)
    audited = [a for a in store.audit_entries() if a["action"] == "event.AlertRefused"]
    assert len(audited) == 4 and {a["actor"] for a in audited} == {"张指挥"}
    assert store.deliveries() == []


# ------------------------------------------------------------- 4. identifiers reserved, <sent> their second

def test_two_incidents_drafting_in_the_same_second_get_different_identifiers_and_both_send(store):
    svc = service(store)
    a = svc.report(LEVEL_IV, actor=OFFICER)
    b = svc.report(dataclasses.replace(LEVEL_IV, description="另一宗"), actor=OFFICER)
    assert a.id != b.id and a.location.district_adcode == b.location.district_adcode
    da = svc.draft_alert(a.id, actor=OFFICER, radius_m=800)
    db = svc.draft_alert(b.id, actor=OFFICER, radius_m=800)
    assert da.identifier != db.identifier and da.sent == db.sent
    svc.send_alert(a.id, da.identifier, actor=CMD_A, confirm=True)
    svc.send_alert(b.id, db.identifier, actor=CMD_A, confirm=True)
    assert {store.alert(i)["incident_id"] for i in (da.identifier, db.identifier)} == {a.id, b.id}


def test_a_same_second_burst_keeps_the_identifiers_time_equal_to_sent(store):
    svc = service(store)
    s = svc.report(LEVEL_IV, actor=OFFICER)
    drafts = [svc.draft_alert(s.id, actor=OFFICER, radius_m=800) for _ in range(12)]
    assert len({d.identifier for d in drafts}) == 12
    for d in drafts:
        stamp = d.identifier.split("_")[1]
        sent = datetime.fromisoformat(d.sent)
        assert stamp == sent.strftime("%Y%m%d%H%M%S") and f"<sent>{d.sent}</sent>" in d.cap_xml
    assert drafts[10].identifier.endswith("090001_0")                         # the 11th: the next second


def test_an_identifier_reserved_by_one_store_is_refused_to_another_service_on_it(store, tmp_path):
    other = Store(tmp_path / "chain.db")                   # a second process on the same database
    try:
        svc_a, svc_b = service(store), service(other)
        s = svc_a.report(LEVEL_IV, actor=OFFICER)
        t = svc_b.report(dataclasses.replace(LEVEL_IV, description="另一宗"), actor=OFFICER)
        ids = {svc_a.draft_alert(s.id, actor=OFFICER, radius_m=800).identifier,
               svc_b.draft_alert(t.id, actor=OFFICER, radius_m=800).identifier}
        assert len(ids) == 2
    finally:
        other.close()
