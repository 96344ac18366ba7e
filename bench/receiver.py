"""A fast alert receiver in its own process, so the bench measures the sender and not the receiver.

The test receiver (tests/helpers_http.Receiver) is a threaded ``http.server`` inside the test process: right
for tests (it records every request), but in a benchmark it shares the GIL and the two cores with the outbox
it measures. This one runs in a child process on asyncio (HTTP/1.1 keep-alive, Content-Length bodies) and
keeps only what the bench reads back: keys accepted, repeats, requests, failures.

    with ReceiverProcess() as rx:            # http://127.0.0.1:<port>/hook
        ...
        rx.stats()                           # {"requests": n, "accepted": n, "repeats": n, "failed": n}
    with ReceiverProcess(fail_status=503) as bad: ...   # answers every request 503
    with ReceiverProcess(delay_ms=20) as slow: ...      # answers each request 20 ms late, like a real gateway

Like the test receiver it honours Idempotency-Key: a key accepted before is answered 200 ``{"duplicate":
true}`` and counted in ``repeats``, never accepted twice. ``GET /stats`` answers the counts as JSON, with
the times (``time.time()``) of the first request and of the last key accepted, so a run's rate is read off
the receiver's clock whatever started the senders.

    with ReceiverProcess(record=True) as rx:  # also keeps, per (identifier, channel) of a webhook's JSON body,
        rx.log()                              # every Idempotency-Key it came with: {"ident\nchannel": [keys]}

A recording receiver is what tests/e2e reads: a delivery sent twice under a different key shows as two keys.
"""
from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx


class _State:
    def __init__(self, fail_status: int | None, delay_s: float = 0.0, record: bool = False) -> None:
        self.fail_status = fail_status
        self.delay_s = delay_s
        self.record = record
        self.keys: set[str] = set()
        self.pairs: dict[str, list[str]] = {}
        self.requests = self.repeats = self.failed = 0
        self.first_at = self.last_at = 0.0

    def answer(self, method: str, path: str, headers: dict[str, str], body: bytes = b"") -> tuple[int, bytes]:
        if method == "GET" and path == "/stats":
            return 200, json.dumps({"requests": self.requests, "accepted": len(self.keys),
                                    "repeats": self.repeats, "failed": self.failed,
                                    "first_at": self.first_at, "last_at": self.last_at}).encode()
        if method == "GET" and path == "/log":
            return 200, json.dumps({"pairs": self.pairs}).encode()
        self.requests += 1
        self.first_at = self.first_at or time.time()
        if self.fail_status:
            self.failed += 1
            return self.fail_status, b'{"error": "told to fail"}'
        key = headers.get("idempotency-key")
        if self.record:
            self._note(key or "", body)
        if key in self.keys:
            self.repeats += 1
            return 200, b'{"duplicate": true}'
        if key:
            self.keys.add(key)
            self.last_at = time.time()
        return 200, b'{"receipt": "r-%d"}' % self.requests


    def _note(self, key: str, body: bytes) -> None:
        """Every request's key under the (identifier, channel) its JSON body names."""
        try:
            doc = json.loads(body)
            pair = f"{doc.get('identifier')}\n{doc.get('channel')}"
        except (ValueError, AttributeError):
            pair = "?\n?"
        self.pairs.setdefault(pair, []).append(key)


async def _serve_conn(state: _State, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while True:
            try:
                head = await reader.readuntil(b"\r\n\r\n")
            except (asyncio.IncompleteReadError, ConnectionError):
                return
            lines = head.decode("latin-1").split("\r\n")
            method, path, _ = lines[0].split(" ", 2)
            headers = {}
            for line in lines[1:]:
                if ":" in line:
                    k, v = line.split(":", 1)
                    headers[k.strip().lower()] = v.strip()
            length = int(headers.get("content-length") or 0)
            got = await reader.readexactly(length) if length else b""
            status, body = state.answer(method, path.split("?", 1)[0], headers, got)
            if state.delay_s and method == "POST":
                await asyncio.sleep(state.delay_s)
            reason = "OK" if status == 200 else "Error"
            writer.write(b"HTTP/1.1 %d %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s"
                         % (status, reason.encode(), len(body), body))
            await writer.drain()
    finally:
        writer.close()


async def _main(fail_status: int | None, delay_s: float, record: bool = False) -> None:
    state = _State(fail_status, delay_s, record)
    server = await asyncio.start_server(lambda r, w: _serve_conn(state, r, w), "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    print(port, flush=True)
    async with server:
        await server.serve_forever()


class ReceiverProcess:
    """The receiver above, started in a child process (``python -m bench.receiver``) and stopped on exit."""

    def __init__(self, *, fail_status: int | None = None, delay_ms: int = 0, record: bool = False) -> None:
        self.fail_status = fail_status
        self.delay_ms = delay_ms
        self.record = record
        self.proc: subprocess.Popen[str] | None = None
        self.port = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    def __enter__(self) -> ReceiverProcess:
        args = [sys.executable, "-m", "bench.receiver", str(self.fail_status or 0), str(self.delay_ms),
                str(int(self.record))]
        self.proc = subprocess.Popen(args, stdout=subprocess.PIPE, text=True, cwd=Path(__file__).resolve().parents[1])
        line = self.proc.stdout.readline() if self.proc.stdout else ""
        if not line.strip().isdigit():
            self.__exit__()
            raise RuntimeError("bench receiver did not start")
        self.port = int(line)
        return self

    def __exit__(self, *exc: Any) -> None:
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait(10)

    def stats(self) -> dict[str, Any]:
        return httpx.get(f"http://127.0.0.1:{self.port}/stats", timeout=10).json()

    def log(self) -> dict[str, list[str]]:
        """(recording receiver) every key each "identifier\nchannel" came with, in arrival order."""
        return httpx.get(f"http://127.0.0.1:{self.port}/log", timeout=30).json()["pairs"]

    def wait_accepted(self, n: int, timeout_s: float) -> int:
        """Poll until ``n`` keys are accepted or ``timeout_s`` passes; returns how many were."""
        deadline = time.monotonic() + timeout_s
        while True:
            got = self.stats()["accepted"]
            if got >= n or time.monotonic() > deadline:
                return got
            time.sleep(0.05)


if __name__ == "__main__":
    try:
        fail = int(sys.argv[1]) if len(sys.argv) > 1 else 0
        asyncio.run(_main(fail or None, (int(sys.argv[2]) if len(sys.argv) > 2 else 0) / 1000,
                          len(sys.argv) > 3 and sys.argv[3] == "1"))
    except KeyboardInterrupt:
        pass
