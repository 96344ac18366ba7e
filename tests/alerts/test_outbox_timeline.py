"""A batch's outcomes and their timeline events are ONE audit transaction (issue 12): each finish that records
final outcomes also writes the AlertSent/AlertFailed events ``yzt_alerts_delivered`` appended for them, on both
backends; an outcome whose lease was lost is dropped with its events; a timeline the database refuses is
rolled back alone and the deliveries are still recorded once, with a chain that verifies."""
from __future__ import annotations

import time

import pytest
from helpers_http import Receiver, make_alert

from command.alerts.channels import idempotency_key
from command.alerts.outbox import Outbox
from command.response.timeline import AlertSent, to_record
from command.security.audit import Anchor, AuditLog
from command.store import postgres_events, sqlite_events
from settings import load_settings


@pytest.fixture
def store(tmp_path, new_store):
    s = new_store(tmp_path / "db" / "yzt.db")
    s.anchor = s.db.anchor = Anchor(tmp_path / "audit-anchor", database="test")   # this test's own anchor
    yield s
    s.close()


def outbox(store, url: str, **kw) -> Outbox:
    channels = [{"name": "hook", "kind": "webhook", "mode": "live", "url": url, "secret": "s"}]
    return Outbox(store, load_settings(channels=channels), backoff_base_s=0.01, **kw)


def alert_sent(store) -> list[tuple[str, str]]:
    """(incident, identifier) of every AlertSent in the store, in seq order."""
    return [(e.incident_id, e.payload["identifier"]) for e in store.events() if e.kind == "AlertSent"]


def test_each_batch_writes_its_outcomes_and_their_events_in_one_audit_transaction(store, monkeypatch):
    with Receiver() as rx:
        ob = outbox(store, rx.url, batch_size=8, flush_s=10.0)
        for i in range(20):
            ob.enqueue(make_alert(f"GD-T{i:02d}", "Actual", incident_id=f"GD-INC-T{i:02d}"))
        start = store.audit_numbered()
        tips: list[int] = []
        write = store.anchor.write
        monkeypatch.setattr(store.anchor, "write", lambda entry_id, *a, **k: (tips.append(entry_id),
                                                                             write(entry_id, *a, **k))[1])
        ob.run_until_idle(timeout_s=30)
        ob.close()
        assert len(rx.requests) == 20 and rx.repeats == 0
    assert sorted(alert_sent(store)) == [(f"GD-INC-T{i:02d}", f"GD-T{i:02d}") for i in range(20)]
    entries = {e["id"]: e for e in store.audit_entries()}
    by_id = {str(r["id"]): r["identifier"] for r in store.deliveries()}
    bounds = [start] + tips
    assert len(tips) < 20                           # batches, not one transaction per delivery
    for lo, hi in zip(bounds, bounds[1:]):          # each committed transaction: its deliveries, then their events
        mine = [entries[i] for i in range(lo + 1, hi + 1)]
        sent = [by_id[e["target"]] for e in mine if e["action"] == "deliveries.sent"]
        told = [f"GD-T{e['target'][-2:]}" for e in mine if e["action"] == "event.AlertSent"]
        assert sent and sorted(sent) == sorted(told) and len(mine) == 2 * len(sent), mine
    assert AuditLog(store).verify().ok


def test_an_outcome_whose_lease_was_lost_is_dropped_with_its_events(store):
    ob = outbox(store, "http://127.0.0.1:9/unused")
    ob.enqueue(make_alert("GD-L1", "Actual", incident_id="GD-INC-L1"))
    mine = store.claim_deliveries("hook", owner="host:1:a", now=time.time(), lease_s=0.05, limit=4)
    time.sleep(0.1)                                  # the lease runs out: another worker takes the delivery
    theirs = store.claim_deliveries("hook", owner="host:2:b", now=time.time(), lease_s=60, limit=4)
    assert [j["id"] for j in mine] == [j["id"] for j in theirs]
    kind, payload = to_record(AlertSent(at="2026-03-14T09:30:00+08:00", actor="outbox", identifier="GD-L1",
                                        channel="hook", mode="live", receipt="r"))
    timeline = [("GD-INC-L1", [(kind, payload, "2026-03-14T09:30:00+08:00", "outbox")], "outbox", "outbox")]
    done = [{"id": mine[0]["id"], "status": "sent", "receipt": "r", "timeline": timeline}]
    assert store.finish_deliveries(done, owner="host:1:a", now=time.time()) == set()
    assert alert_sent(store) == []                   # not recorded: no event either
    assert store.finish_deliveries(done, owner="host:2:b", now=time.time()) == {mine[0]["id"]}
    assert alert_sent(store) == [("GD-INC-L1", "GD-L1")]
    ob.close()
    assert AuditLog(store).verify().ok


def test_a_refused_timeline_is_rolled_back_alone_and_the_deliveries_are_recorded_once(store, monkeypatch):
    def refused(*a, **k):
        raise ValueError("the events table refused the row")
    for module in (sqlite_events, postgres_events):
        monkeypatch.setattr(module, "write_events", refused)
    with Receiver() as rx:
        ob = outbox(store, rx.url, batch_size=8, flush_s=10.0)
        for i in range(10):
            ob.enqueue(make_alert(f"GD-R{i}", "Actual", incident_id=f"GD-INC-R{i}"))
        ob.run_until_idle(timeout_s=30)
        ob.run_until_idle(timeout_s=2)
        ob.close()
        assert sorted(rx.accepted_keys) == sorted(idempotency_key(f"GD-R{i}", "hook") for i in range(10))
        assert len(rx.requests) == 10 and rx.repeats == 0
    rows = store.deliveries()
    assert [r["status"] for r in rows] == ["sent"] * 10 and all(r["attempts"] == 1 for r in rows)
    assert alert_sent(store) == []
    assert sum(e["action"] == "deliveries.sent" for e in store.audit_entries()) == 10
    assert AuditLog(store).verify().ok               # the rolled-back entries left no gap, the anchor agrees
