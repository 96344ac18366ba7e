"""The outbox's batches (issue 12): claim_deliveries/finish_deliveries on both backends, two outboxes claiming
batches keep each incident's order, a batch finish the database missed is recorded once it is back, and a
batch leased to a worker that died is taken over after its lease with the same Idempotency-Keys."""
from __future__ import annotations

import time

import httpx
import pytest
from helpers_http import Receiver, make_alert

from command.alerts.channels import idempotency_key
from command.alerts.outbox import Outbox
from command.errors import StoreUnavailableError
from command.hookspecs import hookimpl
from helpers_store import new_store
from settings import load_settings

MSG_TYPES = ("Alert", "Update", "Cancel")


@pytest.fixture
def store(tmp_path):
    s = new_store(tmp_path / "batch.db")
    yield s
    s.close()


def webhook(name: str, url: str, **kw) -> dict:
    return {"name": name, "kind": "webhook", "mode": "live", "url": url, "secret": "s", **kw}


def outbox(store, channels, **kw) -> Outbox:
    return Outbox(store, load_settings(channels=channels), backoff_base_s=kw.pop("backoff_base_s", 0.01), **kw)


def enqueue_incidents(ob: Outbox, incidents: int) -> list[str]:
    """``incidents`` incidents of three messages each, enqueued incident after incident, round-robin."""
    order = []
    for m, kind in enumerate(MSG_TYPES):
        for i in range(incidents):
            ident = f"GD-B{i:02d}-{m}"
            ob.enqueue(make_alert(ident, "Actual", kind, incident_id=f"GD-INC-B{i:02d}"))
            order.append(ident)
    return order


def test_a_claimed_batch_holds_only_the_head_of_each_incident(store):
    ob = outbox(store, [webhook("hook", "http://127.0.0.1:9")])
    enqueue_incidents(ob, 4)
    first = store.claim_deliveries("hook", owner="wa", now=time.time() + 1, lease_s=60, limit=32)
    assert sorted(j["identifier"] for j in first) == [f"GD-B{i:02d}-0" for i in range(4)]
    assert all(j["alert_cap_xml"] and j["attempts"] == 1 for j in first)
    # the heads are leased to wa: another owner gets nothing, not the messages queued behind them
    assert store.claim_deliveries("hook", owner="wb", now=time.time() + 1, lease_s=60, limit=32) == []
    kept = store.finish_deliveries([{"id": j["id"], "status": "sent", "receipt": "r"} for j in first[:2]]
                                   + [{"id": first[2]["id"], "status": "failed", "last_error": "503",
                                       "next_attempt_at": time.time() + 3600}], owner="wa", now=time.time())
    assert kept == {j["id"] for j in first[:3]}
    assert store.finish_deliveries([{"id": first[3]["id"], "status": "sent"}], owner="wb", now=time.time()) == set()
    second = store.claim_deliveries("hook", owner="wb", now=time.time() + 1, lease_s=60, limit=32)
    assert sorted(j["identifier"] for j in second) == ["GD-B00-1", "GD-B01-1"]   # 02 backs off, 03 still wa's


def test_a_batch_finish_writes_one_audit_entry_per_final_row(store):
    ob = outbox(store, [webhook("hook", "http://127.0.0.1:9")])
    enqueue_incidents(ob, 5)
    jobs = store.claim_deliveries("hook", owner="w", now=time.time() + 1, lease_s=60, limit=5)
    before = store.audit_numbered()
    outcomes = [{"id": j["id"], "status": "sent", "receipt": f"r{j['id']}"} for j in jobs[:4]]
    outcomes.append({"id": jobs[4]["id"], "status": "failed", "last_error": "x", "next_attempt_at": 0.0})
    assert store.finish_deliveries(outcomes, owner="w", now=time.time()) == {j["id"] for j in jobs}
    entries = store.audit_entries(last=store.audit_numbered() - before)
    assert sorted(e["target"] for e in entries if e["action"] == "deliveries.sent") == \
        sorted(str(j["id"]) for j in jobs[:4])
    assert len(entries) == 4                      # the failed one is not final: no entry


def test_released_deliveries_are_claimable_again_with_their_attempts_as_they_were(store):
    ob = outbox(store, [webhook("hook", "http://127.0.0.1:9")])
    enqueue_incidents(ob, 3)
    jobs = store.claim_deliveries("hook", owner="w", now=time.time() + 1, lease_s=600, limit=3)
    assert store.finish_deliveries([{"id": jobs[0]["id"], "status": "sent"}]
                                   + [{"id": j["id"], "status": "released"} for j in jobs[1:]],
                                   owner="w", now=time.time()) == {j["id"] for j in jobs}
    rows = {r["id"]: r for r in store.deliveries()}
    assert [(rows[j["id"]]["status"], rows[j["id"]]["attempts"]) for j in jobs[1:]] == [("pending", 0)] * 2
    again = store.claim_deliveries("hook", owner="v", now=time.time() + 1, lease_s=600, limit=8)
    assert {j["id"] for j in jobs[1:]} <= {j["id"] for j in again}
    assert all(j["attempts"] == 1 for j in again if j["id"] in {x["id"] for x in jobs[1:]})


def test_two_outboxes_claiming_batches_keep_each_incidents_order(tmp_path):
    stores = [new_store(tmp_path / "shared.db") for _ in range(2)]
    with Receiver(delay_s=0.001) as rx, httpx.Client(timeout=5) as client:
        chans = [webhook("hook", rx.url, concurrency=2)]
        obs = [Outbox(s, load_settings(channels=chans), client=client, batch_size=8, poll_s=0.05) for s in stores]
        order = enqueue_incidents(obs[0], 24)
        for ob in obs:
            ob.start()
        try:
            deadline = time.monotonic() + 60
            while obs[0].counts()["sent"] < len(order) and time.monotonic() < deadline:
                time.sleep(0.05)
        finally:
            for ob in obs:
                ob.close()
        sent = [r.json()["identifier"] for r in rx.requests if r.outcome == "accepted"]
    for s in stores:
        s.close()
    assert sorted(sent) == sorted(order) and rx.repeats == 0
    for i in range(24):                   # each incident's Alert, Update, Cancel left in that order
        mine = [x for x in sent if x.startswith(f"GD-B{i:02d}-")]
        assert mine == [f"GD-B{i:02d}-{m}" for m in range(3)], mine


class _BatchFinishFails:
    """The store, except that ``finish_deliveries`` (a batch's finish) raises its first ``times`` calls."""

    def __init__(self, store, times: int) -> None:
        self._store, self.left, self.refused, self.sizes = store, times, 0, []

    def finish_deliveries(self, outcomes, **kw):
        self.sizes.append(len(outcomes))
        if self.left > 0:
            self.left -= 1
            self.refused += 1
            raise StoreUnavailableError("database test: unavailable (server closed the connection unexpectedly)")
        return self._store.finish_deliveries(outcomes, **kw)

    def __getattr__(self, name):
        return getattr(self._store, name)


def test_a_batch_finish_the_database_missed_is_recorded_when_it_is_back(store):
    flaky = _BatchFinishFails(store, 2)
    with Receiver() as rx:
        ob = Outbox(flaky, load_settings(channels=[webhook("hook", rx.url)]), lease_s=600, backoff_base_s=0.05,
                    batch_size=4, flush_s=10.0)
        for i in range(10):
            ob.enqueue(make_alert(f"GD-F{i}", "Actual", incident_id=f"GD-INC-F{i}"))
        ob.start()
        try:
            deadline = time.monotonic() + 20
            while ob.counts()["sent"] < 10 and time.monotonic() < deadline:
                time.sleep(0.05)
        finally:
            ob.close()
        rows = ob.deliveries()
        assert flaky.refused == 2 and max(flaky.sizes) > 1
        assert [r["status"] for r in rows] == ["sent"] * 10, rows
        assert all(r["attempts"] == 1 for r in rows), rows      # recorded, never claimed and sent again
        assert len(rx.requests) == 10 and rx.repeats == 0
    sent_entries = [e for e in store.audit_entries() if e["action"] == "deliveries.sent"]
    assert sorted(e["target"] for e in sent_entries) == sorted(str(r["id"]) for r in rows)   # one each


def test_a_batch_of_a_worker_that_died_is_taken_over_after_its_lease_with_the_same_keys(store):
    with Receiver() as rx:
        ob = outbox(store, [webhook("hook", rx.url)])
        for i in range(6):
            ob.enqueue(make_alert(f"GD-K{i}", "Actual", incident_id=f"GD-INC-K{i}"))
        # a worker on another host claims a batch and dies before sending it: its lease runs out by time
        dead = store.claim_deliveries("hook", owner="other-host:4242:dead", now=time.time(), lease_s=1.5, limit=4)
        assert len(dead) == 4
        ob.run_until_idle(timeout_s=0.5)
        assert len(rx.requests) == 2                              # only the two it had not claimed
        time.sleep(1.6)
        ob.run_until_idle(timeout_s=10)
        rows = {r["identifier"]: r for r in ob.deliveries()}
        assert all(r["status"] == "sent" for r in rows.values()), rows
        assert [rows[j["identifier"]]["attempts"] for j in dead] == [2] * 4
        assert set(rx.accepted_keys) == {idempotency_key(f"GD-K{i}", "hook") for i in range(6)}
        assert len(rx.requests) == 6 and rx.repeats == 0
        ob.close()


class _AnyFinishFails(_BatchFinishFails):
    """Both finishes (one row, a batch) raise for the first ``times`` calls between them."""

    def finish_delivery(self, *args, **kw):
        if self.left > 0:
            self.left -= 1
            self.refused += 1
            raise StoreUnavailableError("database test: unavailable (server closed the connection unexpectedly)")
        return self._store.finish_delivery(*args, **kw)


def test_the_database_failing_mid_batch_releases_the_unsent_once_it_is_back(store):
    """flush_s=0: outcomes are recorded after every send, so the failure falls in the middle of a batch; the
    ones not yet sent are released (attempts as they were) when the database is back, not left leased."""
    flaky = _AnyFinishFails(store, 2)
    with Receiver() as rx:
        ob = Outbox(flaky, load_settings(channels=[webhook("hook", rx.url)]), lease_s=600, backoff_base_s=0.05,
                    batch_size=4, flush_s=0.0)
        for i in range(8):
            ob.enqueue(make_alert(f"GD-M{i}", "Actual", incident_id=f"GD-INC-M{i}"))
        ob.start()
        try:
            deadline = time.monotonic() + 20
            while ob.counts()["sent"] < 8 and time.monotonic() < deadline:
                time.sleep(0.05)
        finally:
            ob.close()
        rows = ob.deliveries()
        assert flaky.refused == 2
        assert [r["status"] for r in rows] == ["sent"] * 8, rows
        assert all(r["attempts"] == 1 for r in rows), rows       # a released one's claim did not count
        assert len(rx.requests) == 8 and rx.repeats == 0


class _Failing:
    """An observer of final outcomes that raises for every batch it is told of (after counting it)."""

    def __init__(self) -> None:
        self.batches: list[list[str]] = []

    @hookimpl
    def yzt_alerts_delivered(self, outcomes):
        self.batches.append([o["identifier"] for o in outcomes])
        raise RuntimeError("observer down")


@pytest.mark.parametrize("broken", ["observer", "store"])
def test_a_failing_outcome_hook_never_loses_or_repeats_a_delivery(store, monkeypatch, broken):
    """The hook raising (a plugin's bug), or the timeline's write refused by the database inside the batch's
    finish: every delivery is still sent exactly once and recorded sent; another run sends nothing again."""
    from command.plugins import make_plugin_manager
    from command.store import postgres_events, sqlite_events
    failing = _Failing()
    if broken == "observer":
        pm = make_plugin_manager([failing], entry_points=False)
    else:
        pm = make_plugin_manager([], entry_points=False)       # the built-ins: delivery_log among them

        def refused(*a, **k):
            raise ValueError("the events table refused the row")
        for module in (sqlite_events, postgres_events):
            monkeypatch.setattr(module, "write_events", refused)
    with Receiver() as rx:
        ob = outbox(store, [webhook("hook", rx.url)], pm=pm, batch_size=8)
        order = enqueue_incidents(ob, 6)
        ob.run_until_idle(timeout_s=30)
        ob.run_until_idle(timeout_s=5)
        assert sorted(rx.accepted_keys) == sorted(idempotency_key(i, "hook") for i in order)
        assert not rx.repeats and len(rx.requests) == len(order)
    assert {r["status"] for r in store.deliveries()} == {"sent"} and len(store.deliveries()) == len(order)
    if broken == "observer":
        assert sorted(sum(failing.batches, [])) == sorted(order)      # told once of each, batch by batch
        assert any(len(b) > 1 for b in failing.batches)
