"""What drives a deployment in the e2e tests: a dispatch system posting reports and retrying as one does, and a
commander's outbox queueing alerts, both on their own threads until stopped, recording what they saw.

    with Dispatcher([server.url], token) as d:     # posts reports, each with its own external_id
        ...; d.done_count()                         # reports that got 200/201
    d.answers                                       # external_id -> [(status, incident id)], every 2xx answer
    d.errors                                        # every non-2xx answer: (status, headers, body) and transport errors

    with AlertFeeder(stack) as f: ...               # enqueues alerts (each its own incident) on the stack's store
    f.queued                                        # identifiers stored (an ambiguous commit retried counts once)

The servers and processes themselves come from bench/load.py (Stack, Server, PgCluster): the same harness
the load benchmark drives.
"""
from __future__ import annotations

import itertools
import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

import httpx

REPORT = {"type": "fire", "address": "广州市天河区天河路", "casualties": {"serious_injuries": 1},
          "description": "故障测试 fault test"}


@dataclass
class Dispatcher:
    """``threads`` dispatch clients posting ``POST /api/v1/incidents`` round the ``urls``, each report with a new
    external_id, retried (on a transport error or a 5xx, after the answer's Retry-After, at most ``pause_s``)
    until it is answered 200/201; every answer is kept. ``stop()`` lets each client finish the report it holds."""
    urls: list[str]
    token: str
    threads: int = 3
    pause_s: float = 0.3
    prefix: str = field(default_factory=lambda: f"E2E-{uuid.uuid4().hex[:8]}")
    answers: dict[str, list[tuple[int, str]]] = field(default_factory=dict)
    errors: list[dict[str, Any]] = field(default_factory=list)
    transport_errors: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._seq = itertools.count()
        self._threads: list[threading.Thread] = []

    def __enter__(self) -> Dispatcher:
        self._threads = [threading.Thread(target=self._client, args=(i,), daemon=True) for i in range(self.threads)]
        for t in self._threads:
            t.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    def stop(self, timeout_s: float = 120.0) -> None:
        self._stop.set()
        for t in self._threads:
            t.join(timeout_s)

    def done_count(self) -> int:
        with self._lock:
            return len(self.answers)

    def errors_since(self, n: int) -> list[dict[str, Any]]:
        with self._lock:
            return self.errors[n:]

    def _client(self, i: int) -> None:
        auth = {"Authorization": f"Bearer {self.token}"}
        with httpx.Client(timeout=60) as c:
            while not self._stop.is_set():
                external_id = f"{self.prefix}-{next(self._seq)}"
                self._post_until_answered(c, i, external_id, auth)

    def _post_until_answered(self, c: httpx.Client, i: int, external_id: str, auth: dict) -> None:
        body = dict(REPORT, external_id=external_id)
        for attempt in itertools.count():
            url = self.urls[(i + attempt) % len(self.urls)] + "/api/v1/incidents"
            try:
                r = c.post(url, json=body, headers=auth)
            except httpx.TransportError as e:     # a web worker killed under the request, a server restarting
                with self._lock:
                    self.transport_errors.append(f"{type(e).__name__}: {e}")
                time.sleep(self.pause_s)
                continue
            if r.status_code in (200, 201):
                with self._lock:
                    self.answers.setdefault(external_id, []).append((r.status_code, r.json()["id"]))
                return
            with self._lock:
                self.errors.append({"status": r.status_code, "content_type": r.headers.get("content-type", ""),
                                    "retry_after": r.headers.get("retry-after"), "body": r.text,
                                    "external_id": external_id, "at": time.monotonic()})
            if r.status_code < 500:               # a refusal of the report itself is not retried
                return
            time.sleep(min(float(r.headers.get("retry-after") or 0) or self.pause_s, self.pause_s))


@dataclass
class AlertFeeder:
    """Queues an alert every ``every_s`` through an outbox on the stack's database (as a commander's send
    does), each on its own incident, retrying while the database is away; never delivers (the stack's
    delivery processes do)."""
    stack: Any
    every_s: float = 0.02
    queued: list[str] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)      # the database away: tried again
    crashed: list[str] = field(default_factory=list)       # anything else: the feeder stopped (a finding)

    def __post_init__(self) -> None:
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._feed, daemon=True)
        self.app = self.stack.open_app()

    def __enter__(self) -> AlertFeeder:
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.stop()
        self.app.close()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(120)

    def _feed(self) -> None:
        try:
            self._feed_until_stopped()
        except Exception as e:   # noqa: BLE001 - kept for the test to report
            self.crashed.append(f"{type(e).__name__}: {e}")

    def _feed_until_stopped(self) -> None:
        from helpers_http import make_alert
        for n in itertools.count():
            if self._stop.wait(self.every_s):
                return
            identifier = f"44010600000_e2e_{n:05d}"
            alert = make_alert(identifier, incident_id=f"GD-E2E-{n}")
            while not self._enqueue(alert):
                if self._stop.wait(0.2):
                    return
            self.queued.append(identifier)

    def _enqueue(self, alert: Any) -> bool:
        from command.errors import AlertError, StoreError
        try:
            self.app.outbox.enqueue(alert)
            return True
        except AlertError as e:                   # the commit of a try cut off by the restart did land
            if "already enqueued" in str(e):
                return True
            raise
        except StoreError as e:                   # StoreUnavailableError: the database is away; try again
            self.failures.append(str(e).splitlines()[0][:200])
            return False
