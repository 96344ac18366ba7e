"""Faults under load on the real processes (issue 12): ``yzt serve --workers 2`` and two ``yzt outbox work`` on one
throwaway PostgreSQL (bench/load.py's PgCluster, so the test may restart it), a recording receiver on 127.0.0.1
(bench/receiver.py: every Idempotency-Key per (identifier, channel)). While dispatch clients post reports (each
its own external_id, retried on errors as a dispatch system does) and alerts are queued: kill -9 a web
worker, kill -9 an outbox worker while it holds a delivery, restart PostgreSQL. Then: every external_id is one
incident, every delivery arrived under its one key (repeats of that key are counted, never a second key),
every error a client saw was a one-line JSON 503 with Retry-After, and it all came back by itself.

And the same external_id posted to two servers at the same instant is one incident, both answered 200/201
with its id.
"""
from __future__ import annotations

import json
import os
import signal
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from types import SimpleNamespace

import httpx
import pytest

from bench.load import PgCluster, Stack, until
from bench.receiver import ReceiverProcess
from command.alerts.channels import idempotency_key
from e2e_clients import REPORT, AlertFeeder, Dispatcher

pytestmark = [pytest.mark.slow, pytest.mark.postgres_only]
CHANNELS = ("hook-a", "hook-b")


def _channels(url: str) -> list[dict]:
    return [{"name": name, "kind": "webhook", "mode": "exercise", "url": f"{url}/{name}", "secret": "e2e-secret",
             "rate_per_minute": 10_000_000, "max_attempts": 50, "concurrency": 2} for name in CHANNELS]


@pytest.fixture
def deployment(tmp_path):
    with PgCluster() as pg, ReceiverProcess(record=True, delay_ms=15) as rx, \
            Stack(tmp_path / "stack", database_url=pg.url, channels=_channels(rx.url)) as stack:
        seed = stack.seed(officers=0)
        server = stack.serve(workers=2)
        workers = [stack.outbox_worker(poll_s=0.1) for _ in range(2)]
        import psycopg
        with psycopg.connect(pg.url, autocommit=True) as look:
            yield SimpleNamespace(pg=pg, rx=rx, stack=stack, token=seed["token"], server=server, workers=workers,
                                  look=look)


def _sql(d, sql: str, args: tuple = ()) -> list[tuple]:
    """A query on the deployment's database from a connection of the test's own (reopened after a restart)."""
    import psycopg
    for _ in range(2):
        try:
            return d.look.execute(sql, args).fetchall()
        except psycopg.OperationalError:
            d.look = psycopg.connect(d.pg.url, autocommit=True)
    return d.look.execute(sql, args).fetchall()


def _flowing(dispatch: Dispatcher, more: int, timeout_s: float) -> bool:
    n = dispatch.done_count()
    return bool(until(lambda: dispatch.done_count() >= n + more, timeout_s, every_s=0.05))


def _kill_web_worker(d, dispatch: Dispatcher) -> None:
    victim = d.server.web_workers()[0]
    os.kill(victim, signal.SIGKILL)
    assert until(lambda: len(w := d.server.web_workers()) == 2 and victim not in w, 60), \
        f"gunicorn did not start a new web worker: {d.stack.logs()}"
    assert _flowing(dispatch, 5, 90), "reports stopped after a web worker was killed"


def _kill_outbox_worker_mid_delivery(d) -> list[int]:
    """kill -9 the first ``yzt outbox work`` once it holds a delivery; the ids it held."""
    proc = d.workers[0]
    owned = f"%:{proc.pid}:%"
    held = until(lambda: _sql(d, "SELECT id FROM deliveries WHERE status = 'sending' AND owner LIKE %s", (owned,)),
                 30, every_s=0.002)
    assert held, "the outbox worker never held a delivery"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(10)
    return [r[0] for r in held]


def _restart_postgres(d, dispatch: Dispatcher) -> None:
    d.pg.restart(down_s=3.0)
    assert _flowing(dispatch, 5, 90), f"reports did not come back after PostgreSQL restarted: {d.stack.logs()}"


def test_faults_under_load_lose_nothing_and_recover_by_themselves(deployment):
    d = deployment
    t0, took = time.monotonic(), {}

    def lap(name: str) -> None:
        took[name] = round(time.monotonic() - t0 - sum(took.values()), 1)

    with Dispatcher([d.server.url], d.token, threads=3) as dispatch, AlertFeeder(d.stack) as feed:
        assert _flowing(dispatch, 5, 120), f"no reports got through: {dispatch.errors[:3]} {d.stack.logs()}"
        assert until(lambda: d.rx.stats()["accepted"] >= 20, 60), f"no alerts arrived: {d.stack.logs()}"
        lap("flowing")
        _kill_web_worker(d, dispatch)
        lap("web_worker")
        held = _kill_outbox_worker_mid_delivery(d)
        lap("outbox_worker")
        outage_from = time.monotonic()
        _restart_postgres(d, dispatch)
        lap("postgres")
        dispatch.stop()
        feed.stop()
        assert not feed.crashed, feed.crashed
        lap("stop")

        _check_reports(d, dispatch)
        _check_errors(dispatch, outage_from)
        repeats = _check_deliveries(d, feed.queued, held)
        lap("delivered")
    survivors = [d.server.proc, d.workers[1]]
    assert all(p.poll() is None for p in survivors), "a process that was not killed ended"
    print(f"\nfaults: {dispatch.done_count()} reports, {len(dispatch.errors)} 503s, "
          f"{len(dispatch.transport_errors)} transport errors, {len(feed.queued)} alerts x {len(CHANNELS)} "
          f"channels, {repeats} same-key repeats, {len(held)} in flight at the kill; seconds {took}")


def _check_reports(d, dispatch: Dispatcher) -> None:
    """Every external_id posted was answered with one incident id, and the database holds exactly those."""
    ids = {}
    for external_id, answers in dispatch.answers.items():
        assert len({i for _, i in answers}) == 1, (external_id, answers)
        ids[external_id] = answers[0][1]
    assert len(set(ids.values())) == len(ids)
    stored = {r[0] for r in _sql(d, "SELECT incident_id FROM events WHERE kind = 'Reported'")}
    assert stored == set(ids.values()), (f"{len(stored - set(ids.values()))} incidents no client was told of, "
                                         f"{len(set(ids.values()) - stored)} told but not stored")
    twice = _sql(d, "SELECT incident_id FROM events WHERE kind = 'Reported' GROUP BY incident_id HAVING count(*) > 1")
    assert not twice


def _check_errors(dispatch: Dispatcher, before_outage: float) -> None:
    """What a client read when something failed: 503, one line of JSON saying so, Retry-After; never a 500,
    HTML or a traceback."""
    for e in dispatch.errors:
        assert e["status"] == 503, e
        assert e["content_type"].startswith("application/json") and e["retry_after"], e
        body = e["body"].strip()
        assert "\n" not in body and "Traceback" not in body and "<html" not in body.lower(), e
        assert "database is unavailable" in json.loads(body)["error"], e
        assert e["at"] >= before_outage, f"a 503 before PostgreSQL went down: {e}"


def _check_deliveries(d, queued: list[str], held: list[int]) -> int:
    """Every queued alert sent on every channel, each (identifier, channel) under its one key; returns how
    many times a key came again (allowed: the receiver answered it as a duplicate)."""
    want = len(queued) * len(CHANNELS)
    sent = lambda: _sql(d, "SELECT count(*) FROM deliveries WHERE status = 'sent'")[0][0]  # noqa: E731
    assert until(lambda: sent() == want, 90, every_s=0.5), \
        (f"{sent()} of {want} deliveries sent: "
         f"{_sql(d, 'SELECT status, count(*) FROM deliveries GROUP BY status')} {d.stack.logs()}")
    assert _sql(d, "SELECT count(*) FROM deliveries")[0][0] == want
    assert {r[0] for r in _sql(d, "SELECT status FROM deliveries WHERE id = ANY(%s)", (held,))} == {"sent"}
    log = d.rx.log()
    repeats = 0
    for identifier in queued:
        for channel in CHANNELS:
            keys = log.get(f"{identifier}\n{channel}")
            assert keys, f"{identifier} never reached {channel}"
            assert set(keys) == {idempotency_key(identifier, channel)}, (identifier, channel, keys)
            repeats += len(keys) - 1
    assert set(log) == {f"{i}\n{c}" for i in queued for c in CHANNELS}
    return repeats


def test_one_external_id_posted_to_two_servers_at_once_is_one_incident(tmp_path):
    with Stack(tmp_path / "stack", database_url=os.environ["YZT_DATABASE"]) as stack:
        token = stack.seed(officers=0)["token"]
        servers = [stack.serve(workers=1, wait=False) for _ in range(2)]
        for s in servers:
            s.wait_ready()
        auth = {"Authorization": f"Bearer {token}"}
        answers = []
        with ThreadPoolExecutor(2) as pool:
            for n in range(6):
                start = threading.Barrier(2)
                body = dict(REPORT, external_id=f"RACE-{n}")

                def post(server, body=body, start=start):
                    start.wait()
                    return httpx.post(server.url + "/api/v1/incidents", json=body, headers=auth, timeout=60)
                answers.append(list(pool.map(post, servers)))
        app = stack.open_app()
        try:
            stored = app.store.incident_ids()
        finally:
            app.close()
    for pair in answers:
        assert sorted(r.status_code for r in pair) == [200, 201], [(r.status_code, r.text[:200]) for r in pair]
        assert len({r.json()["id"] for r in pair}) == 1
    assert sorted(stored) == sorted(pair[0].json()["id"] for pair in answers)
