"""The outbox: enqueue in one transaction, the drill guard, retries, dead letters, isolation between channels."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import httpx
import pytest
from helpers_http import Receiver, make_alert

from command.alerts.channels import idempotency_key
from command.errors import AlertError, ChannelError
from command.hookspecs import hookimpl
from command.alerts.outbox import HOST, Outbox
from command.plugins import make_plugin_manager
from helpers_store import new_store
from settings import load_settings


@pytest.fixture
def store(tmp_path):
    s = new_store(tmp_path / "yzt.db")
    yield s
    s.close()


@pytest.fixture
def client():
    with httpx.Client(timeout=5) as c:
        yield c


def webhook(name: str, url: str, mode: str = "live", **kw) -> dict:
    return {"name": name, "kind": "webhook", "mode": mode, "url": url, "secret": "s", **kw}


def make_outbox(store, channels, client=None, **kw) -> Outbox:
    s = load_settings(channels=channels)
    return Outbox(store, s, client=client, backoff_base_s=kw.pop("backoff_base_s", 0.001), **kw)


def wait_for(cond, timeout_s: float = 20.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached")
        time.sleep(0.01)


def test_an_exercise_goes_to_every_exercise_channel_and_nowhere_else(store, tmp_path):
    with Receiver() as rx:
        ob = make_outbox(store, [{"name": "drill-file", "kind": "outbox", "mode": "exercise"},
                                 webhook("drill-hook", rx.url, "exercise"), webhook("live-hook", rx.url)])
        ids = ob.enqueue(make_alert("GD-E1"))
        assert len(ids) == 2
        ob.run_until_idle(timeout_s=10)
        rows = {d["channel"]: d for d in ob.deliveries("GD-E1")}
        assert set(rows) == {"drill-file", "drill-hook"}
        assert all(d["status"] == "sent" and d["attempts"] == 1 and d["receipt"] for d in rows.values())
        assert [r.json()["channel"] for r in rx.requests] == ["drill-hook"]
        line = json.loads((tmp_path / "var" / "outbox-drill-file.jsonl").read_text(encoding="utf-8"))
        assert line["identifier"] == "GD-E1" and line["status"] == "Exercise"
        assert ob.counts("exercise") == {"pending": 0, "sent": 2, "failed": 0, "dead": 0, "total": 2}
        assert ob.counts("live")["total"] == 0
        ob.close()


@pytest.mark.parametrize("status,channel", [("Exercise", "live-hook"), ("Actual", "drill-hook")])
def test_a_wrong_mode_is_refused_and_nothing_is_written(store, status, channel):
    ob = make_outbox(store, [webhook("drill-hook", "http://127.0.0.1:9", "exercise"),
                             webhook("live-hook", "http://127.0.0.1:9")])
    with pytest.raises(AlertError, match=f"may not go to channel '{channel}'"):
        ob.enqueue(make_alert("GD-X", status), ["drill-hook", "live-hook"])
    assert not store.identifier_used("GD-X") and ob.deliveries() == []


def test_enqueue_refusals(store):
    ob = make_outbox(store, [{"name": "drill-file", "kind": "outbox", "mode": "exercise"}])
    with pytest.raises(AlertError, match="no live channel is configured for an Actual"):
        ob.enqueue(make_alert("GD-A", "Actual"))
    with pytest.raises(ChannelError, match="no channel named 'nope'; configured: drill-file"):
        ob.enqueue(make_alert("GD-B"), ["nope"])
    bad = make_alert("GD-C")
    forged = type(bad)(**{**bad.as_dict(), "cap_xml": bad.cap_xml.replace("<status>Exercise", "<status>Actual")})
    with pytest.raises(AlertError, match="CAP <status> is 'Actual' but the alert says 'Exercise'"):
        ob.enqueue(forged)
    ob.enqueue(make_alert("GD-D"))
    with pytest.raises(AlertError, match="already enqueued"):
        ob.enqueue(make_alert("GD-D"))
    assert [d["identifier"] for d in ob.deliveries()] == ["GD-D"]


def test_a_misconfigured_channel_still_cannot_carry_an_exercise(store):
    """Enqueued to an exercise channel; then someone edits the settings and marks that channel live."""
    with Receiver() as rx:
        ob = make_outbox(store, [webhook("hook", rx.url, "exercise")])
        ob.enqueue(make_alert("GD-E2"))
        ob.close()
        flipped = make_outbox(store, [webhook("hook", rx.url, "live")])
        flipped.run_until_idle(timeout_s=10)
        row = flipped.deliveries("GD-E2")[0]
        assert row["status"] == "dead" and "drill guard" in row["last_error"]
        assert rx.requests == []
        flipped.close()


def test_retries_then_delivers_with_one_key(store, client):
    with Receiver() as rx:
        rx.fail_next(2, status=503)
        ob = make_outbox(store, [webhook("hook", rx.url)], client)
        ob.enqueue(make_alert("GD-R", "Actual"))
        ob.run_until_idle(timeout_s=10)
        row = ob.deliveries("GD-R")[0]
        assert (row["status"], row["attempts"]) == ("sent", 3)
        assert "503" in row["last_error"]  # the last failure stays visible
        keys = {r.headers["idempotency-key"] for r in rx.requests}
        assert keys == {idempotency_key("GD-R", "hook")} and len(rx.requests) == 3


def test_dead_letter_after_max_attempts(store, client):
    with Receiver() as rx:
        rx.fail_status = 500
        ob = make_outbox(store, [webhook("hook", rx.url, max_attempts=4)], client)
        ob.enqueue(make_alert("GD-DL", "Actual"))
        ob.run_until_idle(timeout_s=10)
        row = ob.deliveries("GD-DL")[0]
        assert (row["status"], row["attempts"]) == ("dead", 4)
        assert row["last_error"].startswith("gave up after 4 attempts") and "HTTP 500" in row["last_error"]
        assert len(rx.requests) == 4


def test_a_permanent_refusal_is_dead_at_once(store, client):
    with Receiver() as rx:
        rx.fail_next(1, status=401)
        ob = make_outbox(store, [webhook("hook", rx.url)], client)
        ob.enqueue(make_alert("GD-P", "Actual"))
        ob.run_until_idle(timeout_s=10)
        row = ob.deliveries("GD-P")[0]
        assert (row["status"], row["attempts"]) == ("dead", 1) and "HTTP 401" in row["last_error"]


def test_a_failing_channel_does_not_hold_up_another(store, client):
    with Receiver() as good, Receiver() as bad:
        bad.fail_status = 503
        ob = make_outbox(store, [webhook("good", good.url), webhook("bad", bad.url, max_attempts=50)], client,
                         backoff_base_s=0.05)
        for i in range(30):
            ob.enqueue(make_alert(f"GD-{i:03d}", "Actual"))
        ob.start()
        wait_for(lambda: ob.counts()["sent"] == 30)
        rows = ob.deliveries()
        ob.stop()
        good_rows = [d for d in rows if d["channel"] == "good"]
        bad_rows = [d for d in rows if d["channel"] == "bad"]
        assert all(d["status"] == "sent" for d in good_rows) and good.accepted_count() == 30
        # when the good channel had finished everything, the bad one was still retrying: nothing dead yet
        assert all(d["status"] in ("pending", "failed") for d in bad_rows)
        assert any(d["attempts"] >= 1 for d in bad_rows)
        ob.close()


def test_rate_limit_per_channel(store, client):
    with Receiver() as rx:
        ob = make_outbox(store, [webhook("hook", rx.url, rate_per_minute=3)], client)
        for i in range(5):
            ob.enqueue(make_alert(f"GD-{i}", "Actual"))
        ob.run_until_idle(timeout_s=1.0)  # the 4th may not go before a minute has passed
        assert ob.counts() == {"pending": 2, "sent": 3, "failed": 0, "dead": 0, "total": 5}
        assert len(rx.requests) == 3


def test_a_slow_gateway_gets_several_deliveries_at_once_each_incident_still_in_order(store, client):
    with Receiver() as rx:
        rx.delay_s = 0.05
        ob = make_outbox(store, [webhook("hook", rx.url, concurrency=4)], client)
        for k in range(4):
            for kind in ("Alert", "Update", "Cancel"):
                ob.enqueue(make_alert(f"GD-C{k}-{kind}", "Actual", kind, incident_id=f"GD-INC-C{k}"))
        ob.run_until_idle(timeout_s=30)
        assert ob.counts()["sent"] == 12 and rx.max_in_flight > 1
        for k in range(4):
            got = [r.json()["identifier"] for r in rx.requests if r.json()["incident_id"] == f"GD-INC-C{k}"]
            assert got == [f"GD-C{k}-Alert", f"GD-C{k}-Update", f"GD-C{k}-Cancel"]


def test_workers_sharing_a_channel_keep_its_rate_limit_together(store, client):
    with Receiver() as rx:
        ob = make_outbox(store, [webhook("hook", rx.url, rate_per_minute=3, concurrency=4)], client)
        for i in range(6):
            ob.enqueue(make_alert(f"GD-R{i}", "Actual", incident_id=f"GD-INC-R{i}"))
        ob.run_until_idle(timeout_s=1.0)
        assert ob.counts()["sent"] == 3 and len(rx.requests) == 3


def test_a_failing_receiver_rests_as_a_whole_whatever_the_concurrency(store, client):
    """Four workers on a channel whose receiver is down: after the first failures the channel rests (one
    streak for the channel), instead of each worker hammering it on its own schedule."""
    with Receiver() as rx:
        rx.fail_status = 503
        ob = make_outbox(store, [webhook("hook", rx.url, concurrency=4, max_attempts=50)], client,
                         backoff_base_s=0.5)
        for i in range(40):
            ob.enqueue(make_alert(f"GD-K{i}", "Actual", incident_id=f"GD-INC-K{i}"))
        ob.run_until_idle(timeout_s=2.0)
        # the first burst (each worker that claimed before the first failure came back: 1 to 4 on a busy
        # machine), then at most one more burst after the rest; never one try per worker per pause
        assert 1 <= len(rx.requests) <= 8, len(rx.requests)
        assert ob.counts()["sent"] == 0


def test_stop_waits_for_all_workers_together_not_each_in_turn(store, client):
    with Receiver() as rx:
        rx.delay_s = 2.0
        ob = make_outbox(store, [webhook("hook", rx.url, concurrency=4)], client)
        for i in range(4):
            ob.enqueue(make_alert(f"GD-T{i}", "Actual", incident_id=f"GD-INC-T{i}"))
        ob.start()
        waits = []

        class Joined:
            def __init__(self, t):
                self.t = t

            def join(self, timeout=None):
                waits.append(timeout)
                self.t.join(timeout)
        ob._bg_threads = [Joined(t) for t in ob._bg_threads]
        wait_for(lambda: rx.in_flight == 4)
        ob.stop(timeout_s=0.3)
        assert len(waits) == 4 and sum(waits) <= 0.3 + 1e-6, waits


def test_a_sibling_is_woken_when_the_delivery_it_waits_behind_is_done(store, client):
    """Two workers, one incident's Alert then Update: the worker that finds only the Update (waiting behind
    the Alert in flight) must be woken by the Alert's end, not sleep out its poll (here 5 s), even when the
    wake-up comes between its look at the queue and its wait."""
    with Receiver() as rx:
        rx.delay_s = 0.05
        ob = make_outbox(store, [webhook("hook", rx.url, concurrency=2)], client, poll_s=5.0)
        ob.enqueue(make_alert("GD-W1", "Actual", incident_id="GD-INC-W"))
        ob.enqueue(make_alert("GD-W1-U", "Actual", "Update", incident_id="GD-INC-W"))
        real = store.next_due

        def slow_next_due(name):
            time.sleep(0.1)        # widen the window between the look and the wait
            return real(name)
        store.next_due = slow_next_due
        t0 = time.monotonic()
        ob.run_until_idle(timeout_s=20)
        assert ob.counts()["sent"] == 2 and time.monotonic() - t0 < 4.0


def test_a_cancel_never_overtakes_its_alert_on_a_channel(store, client):
    """The Alert fails and backs off; its incident's Cancel waits behind it, another incident's alert does not."""
    with Receiver() as rx:
        ob = make_outbox(store, [webhook("hook", rx.url)], client, backoff_base_s=0.3)
        rx.fail_next(1)
        ob.enqueue(make_alert("GD-A1", "Actual", incident_id="GD-INC-1"))
        ob.enqueue(make_alert("GD-A1-C", "Actual", "Cancel", incident_id="GD-INC-1"))
        ob.enqueue(make_alert("GD-B1", "Actual", incident_id="GD-INC-2"))
        ob.run_until_idle(timeout_s=20)
        sent = [(r.json()["identifier"], r.outcome) for r in rx.requests]
        assert sent[0] == ("GD-A1", "failed") and sent[1] == ("GD-B1", "accepted")   # B is not held up by A
        assert sent[2:] == [("GD-A1", "accepted"), ("GD-A1-C", "accepted")]          # the Cancel after its Alert
        assert ob.counts()["sent"] == 3


def test_a_delivery_waiting_behind_its_incident_does_not_spin_the_worker(store, client):
    """While the Alert backs off, its Cancel is not due: the worker sleeps until the Alert is, instead of
    claiming (a write) every few milliseconds."""
    with Receiver() as rx:
        ob = make_outbox(store, [webhook("hook", rx.url)], client, backoff_base_s=1.0)
        rx.fail_next(1)
        ob.enqueue(make_alert("GD-S1", "Actual", incident_id="GD-INC-S"))
        ob.enqueue(make_alert("GD-S1-C", "Actual", "Cancel", incident_id="GD-INC-S"))
        claims = []
        real = store.claim_delivery
        store.claim_delivery = lambda *a, **k: claims.append(1) or real(*a, **k)
        ob.run_until_idle(timeout_s=20)
        assert [(r.json()["identifier"], r.outcome) for r in rx.requests] == [
            ("GD-S1", "failed"), ("GD-S1", "accepted"), ("GD-S1-C", "accepted")]
        assert len(claims) < 15, f"{len(claims)} claims for 3 sends"


def test_a_database_failing_under_the_worker_is_one_log_line_not_a_crash(store, client, caplog):
    """With one channel the worker runs on the caller's thread: a locked database must not escape from
    run_until_idle (the caller has already committed the alert); the delivery waits for the next run."""
    import sqlite3
    ob = make_outbox(store, [webhook("hook", "http://127.0.0.1:9")], client)
    ob.enqueue(make_alert("GD-DB1", "Actual"))
    real = store.claim_delivery

    def locked(*a, **k):
        raise sqlite3.OperationalError("database is locked")
    store.claim_delivery = locked
    ob.run_until_idle(timeout_s=5)
    assert "stopped delivering (OperationalError: database is locked)" in caplog.text
    assert ob.deliveries("GD-DB1")[0]["status"] == "pending"
    store.claim_delivery = real


@pytest.mark.sqlite_only
def test_claiming_stays_an_index_seek_however_many_deliveries_were_sent(store):
    """The work queue reads only unfinished rows: the claim query's plan never scans the whole channel."""
    from command.store.sqlite import _CLAIM_SQL
    plan = " | ".join(r[3] for r in store._conn().execute("EXPLAIN QUERY PLAN " + _CLAIM_SQL, ("hook", 0, 0)))
    assert "deliveries_open (channel=?)" in plan and "deliveries_open_incident" in plan, plan
    assert "TEMP B-TREE" not in plan and "SCAN" not in plan, plan


def test_an_expired_lease_of_another_host_is_taken_over(store, client):
    with Receiver() as rx:
        ob = make_outbox(store, [webhook("hook", rx.url)], client)
        ob.enqueue(make_alert("GD-L1", "Actual", incident_id="GD-INC-1"))
        ob.enqueue(make_alert("GD-L2", "Actual", incident_id="GD-INC-2"))
        now = time.time()
        store.claim_delivery("hook", owner="other-host:123:abc", now=now, lease_s=600)  # GD-L1: still leased
        store.claim_delivery("hook", owner="other-host:123:abc", now=now, lease_s=0)  # GD-L2: expires at once
        ob.run_until_idle(timeout_s=0.5)
        rows = {d["identifier"]: d for d in ob.deliveries()}
        assert rows["GD-L2"]["status"] == "sent" and rows["GD-L2"]["attempts"] == 2
        assert rows["GD-L1"]["status"] == "pending" and rows["GD-L1"]["in_flight"]
        assert [r.json()["identifier"] for r in rx.requests] == ["GD-L2"]


def test_a_lease_of_an_ended_process_is_taken_over_at_once(store, client):
    ended = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    owner = f"{HOST}:{int(ended.stdout)}:deadbeef"
    with Receiver() as rx:
        ob = make_outbox(store, [webhook("hook", rx.url)], client)
        ob.enqueue(make_alert("GD-O", "Actual"))
        store.claim_delivery("hook", owner=owner, now=time.time(), lease_s=3600)
        alive = f"{HOST}:{os.getpid()}:{ob.owner.rsplit(':', 1)[1]}"
        assert ob.recover_orphans() == 1 and alive == ob.owner
        ob.run_until_idle(timeout_s=10)
        assert ob.deliveries("GD-O")[0]["status"] == "sent"


def test_an_interrupted_last_attempt_is_dead_lettered_with_the_reason(store):
    ob = make_outbox(store, [webhook("hook", "http://127.0.0.1:9", max_attempts=1)])
    ob.enqueue(make_alert("GD-I", "Actual"))
    store.claim_delivery("hook", owner="gone:1:x", now=time.time(), lease_s=0)
    ob.run_until_idle(timeout_s=5)
    row = ob.deliveries("GD-I")[0]
    assert row["status"] == "dead" and "interrupted" in row["last_error"] and row["attempts"] == 2


def test_observers_hear_final_outcomes(store, client):
    heard = []

    class Observer:
        @hookimpl
        def yzt_alerts_delivered(self, outcomes):
            heard.extend((o["identifier"], o["channel"], o["status"], o["attempts"]) for o in outcomes)
    with Receiver() as rx:
        rx.fail_next(1, status=400)
        ob = make_outbox(store, [webhook("hook", rx.url)], client,
                         pm=make_plugin_manager([Observer()], entry_points=False))
        ob.enqueue(make_alert("GD-1", "Actual"))
        ob.enqueue(make_alert("GD-2", "Actual"))
        ob.run_until_idle(timeout_s=10)
    assert heard == [("GD-1", "hook", "dead", 1), ("GD-2", "hook", "sent", 1)]
