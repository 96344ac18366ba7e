"""Test helpers: a real local HTTP receiver on 127.0.0.1 and small CAP alerts to send to it.

    with Receiver() as rx:                      # http://127.0.0.1:<free port>
        rx.fail_next(2, status=503)             # the next 2 requests fail (not accepted)
        rx.delay_s = 0.01                       # each accepted request answers 10 ms late
        rx.reply = lambda req: (200, {"errcode": 0, "errmsg": "ok"})   # a robot's answer
        ...
        rx.accepted_keys                        # Idempotency-Key -> the request that was accepted
        rx.repeats                              # requests whose key had already been accepted (ignored)
        rx.max_in_flight                        # most requests being answered at the same moment

The receiver honours ``Idempotency-Key`` like a careful real one: a key seen before is answered 200 with
``{"duplicate": true}`` and counted in ``repeats``, never accepted twice. Every request is recorded.
"""
from __future__ import annotations

import json
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from command.alerts.channels import OutgoingAlert

CAP_NS = "urn:oasis:names:tc:emergency:cap:1.2"


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        if not isinstance(sys.exc_info()[1], ConnectionError):  # a killed client's socket is expected
            super().handle_error(request, client_address)


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]  # lower-case names
    body: bytes
    raw_query: str = ""
    outcome: str = ""  # accepted | repeat | failed

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class Receiver:
    delay_s: float = 0.0
    reply: Callable[[Request], tuple[int, Any]] | None = None
    requests: list[Request] = field(default_factory=list)
    accepted_keys: dict[str, Request] = field(default_factory=dict)
    repeats: int = 0
    _fail: list[tuple[int, dict[str, str]]] = field(default_factory=list)
    fail_status: int | None = None  # every request fails with this status while set
    in_flight: int = 0
    max_in_flight: int = 0

    def __post_init__(self) -> None:
        self.lock = threading.Lock()
        rx = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True  # headers and body go out separately: no 40 ms delayed-ACK stalls

            def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
                rx._handle(self)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = _Server(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def __enter__(self) -> Receiver:
        self.thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.server.shutdown()
        self.server.server_close()

    def fail_next(self, n: int, *, status: int = 503, retry_after: str | None = None) -> None:
        headers = {"Retry-After": retry_after} if retry_after else {}
        with self.lock:
            self._fail.extend([(status, headers)] * n)

    def accepted_count(self) -> int:
        with self.lock:
            return len(self.accepted_keys)

    def _decide(self, req: Request) -> tuple[int, dict[str, str], Any]:
        with self.lock:
            self.requests.append(req)
            if self._fail or self.fail_status:
                status, headers = self._fail.pop(0) if self._fail else (self.fail_status, {})
                req.outcome = "failed"
                return status, headers, {"error": "told to fail"}
            key = req.headers.get("idempotency-key")
            if key and key in self.accepted_keys:
                self.repeats += 1
                req.outcome = "repeat"
                return 200, {}, {"duplicate": True, "receipt": f"dup-{key[:8]}"}
            if key:
                self.accepted_keys[key] = req
            req.outcome = "accepted"
            n = len(self.requests)
        status, body = self.reply(req) if self.reply else (200, {"receipt": f"r-{n}"})
        return status, {}, body

    def _handle(self, h: BaseHTTPRequestHandler) -> None:
        length = int(h.headers.get("Content-Length") or 0)
        body = h.rfile.read(length) if length else b""
        if len(body) < length:          # the sender died mid-request: a real gateway takes nothing from it
            h.close_connection = True
            return
        parts = urlsplit(h.path)
        req = Request("POST", parts.path, parse_qs(parts.query), {k.lower(): v for k, v in h.headers.items()},
                      body, raw_query=parts.query)
        with self.lock:
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            status, headers, payload = self._decide(req)
            if req.outcome == "accepted" and self.delay_s:
                time.sleep(self.delay_s)
        finally:
            with self.lock:
                self.in_flight -= 1
        data = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
        h.send_response(status)
        for k, v in headers.items():
            h.send_header(k, v)
        h.send_header("Content-Type", "application/json")
        h.send_header("Content-Length", str(len(data)))
        h.end_headers()
        h.wfile.write(data)


def cap_xml(identifier: str, status: str = "Exercise", msg_type: str = "Alert", headline: str = "测试预警") -> str:
    """A small CAP 1.2 message with the fields the outbox checks."""
    return (f'<?xml version="1.0" encoding="UTF-8"?>\n<alert xmlns="{CAP_NS}"><identifier>{identifier}</identifier>'
            f"<sender>yzt@gd.gov.cn</sender><sent>2024-05-01T08:00:00+08:00</sent><status>{status}</status>"
            f"<msgType>{msg_type}</msgType><scope>Public</scope><info><language>zh-CN</language>"
            f"<category>Fire</category><event>火灾</event><urgency>Immediate</urgency><severity>Severe</severity>"
            f"<certainty>Observed</certainty><headline>{headline}</headline><area><areaDesc>天河区</areaDesc>"
            f"</area></info></alert>")


def make_alert(identifier: str, status: str = "Exercise", msg_type: str = "Alert", **kw: Any) -> OutgoingAlert:
    """An OutgoingAlert whose CAP XML agrees with its fields."""
    fields = {"incident_id": "GD-TEST-1", "headline_zh": "天河区火灾预警", "text_zh": "请远离珠江新城一带。",
              "area_desc": "广州市天河区", **kw}
    return OutgoingAlert(identifier=identifier, status=status, msg_type=msg_type,
                         cap_xml=cap_xml(identifier, status, msg_type), **fields)
