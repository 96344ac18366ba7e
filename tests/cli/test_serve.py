"""yzt serve on gunicorn with a delivery process beside it; yzt outbox work delivers on its own and stops
with its parent. Real processes on 127.0.0.1, waits bounded, never sleeps as assertions."""
from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _children(pid: int) -> list[tuple[int, str]]:
    out = subprocess.run(["ps", "-o", "pid=,args=", "--ppid", str(pid)], capture_output=True, text=True).stdout
    return [(int(line.split(None, 1)[0]), line.split(None, 1)[1]) for line in out.splitlines() if line.strip()]


def _gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    with open(f"/proc/{pid}/stat", encoding="ascii") as fh:      # a zombie has ended too
        return fh.read().rpartition(")")[2].split()[0] == "Z"


def _until(check, timeout_s: float = 30.0):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        got = check()
        if got:
            return got
        time.sleep(0.2)
    return check()


def _env(tmp_path: Path) -> dict:
    cfg = tmp_path / "yzt.yaml"
    cfg.write_text(yaml.safe_dump({"channels": [{"name": "drill-file", "kind": "outbox", "mode": "exercise"}]}))
    return dict(os.environ, YZT_VAR_DIR=str(tmp_path / "var"), YZT_CONFIG=str(cfg))


def test_serve_runs_web_workers_and_one_delivery_process_that_ends_with_it(tmp_path):
    port = _free_port()
    proc = subprocess.Popen([sys.executable, "-m", "command.cli.main", "serve", "--port", str(port),
                             "--workers", "2"], cwd=ROOT, env=_env(tmp_path), stdout=subprocess.DEVNULL,
                            stderr=open(tmp_path / "serve.log", "w"))
    try:
        def login_page():
            try:
                return httpx.get(f"http://127.0.0.1:{port}/login", timeout=2).status_code == 200
            except httpx.HTTPError:
                return False
        assert _until(login_page, 60), (tmp_path / "serve.log").read_text()

        def all_forked():       # the preloaded master forks its workers one by one (gunicorn sleeps up to
            kids = _children(proc.pid)     # 0.1 s between them): the first can answer before the second is born
            return kids if sum("outbox work" not in args for _, args in kids) >= 2 else None
        kids = _until(all_forked, 20) or _children(proc.pid)
        delivery = [pid for pid, args in kids if "outbox work" in args]
        workers = [pid for pid, args in kids if "outbox work" not in args]
        assert len(delivery) == 1, kids                      # one delivery process beside the web workers
        assert len(workers) == 2, kids                       # gunicorn's master forks the 2 web workers
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=40)
    assert _until(lambda: _gone(delivery[0]), 20)


def test_outbox_work_delivers_what_the_store_has_queued_and_stops_on_sigterm(tmp_path):
    from command import compose
    from command.alerts.outbox import OutgoingAlert
    from settings import load_settings
    env = _env(tmp_path)
    os.environ.update({k: env[k] for k in ("YZT_VAR_DIR", "YZT_CONFIG")})
    settings = load_settings()
    app = compose.open_app(settings)
    try:
        worker = subprocess.Popen([sys.executable, "-m", "command.cli.main", "outbox", "work", "--poll-s", "0.1"],
                                  cwd=ROOT, env=env, stdout=subprocess.DEVNULL,
                                  stderr=open(tmp_path / "work.log", "w"))
        from helpers_http import make_alert
        alert: OutgoingAlert = make_alert("GD-W1", "Exercise")
        app.outbox.enqueue(alert, ["drill-file"])
        sent = _until(lambda: [d for d in app.outbox.deliveries(alert.identifier) if d["status"] == "sent"], 30)
        assert sent, (tmp_path / "work.log").read_text()
        worker.send_signal(signal.SIGTERM)
        assert worker.wait(timeout=30) == 0
    finally:
        app.close()


PRELOAD_CHECK = r"""
import gc, json, os, sys, threading
import app
wsgi = app.preload()
frozen = gc.get_freeze_count()
from command.dashboard import runtime
var = os.environ["YZT_VAR_DIR"]
held = []
for fd in os.listdir("/proc/self/fd"):
    try:
        target = os.readlink(f"/proc/self/fd/{fd}")
    except OSError:
        continue
    if target.startswith(var) or target.startswith("socket:"):
        held.append(target)
pid = os.fork()
if pid == 0:                                   # a web worker: its own store, opened on its first request
    status = wsgi.test_client().get("/login").status_code
    opened = runtime.current().store() is not None
    os.write(1, json.dumps({"child_status": status, "child_opened": opened}).encode() + b"\n")
    os._exit(0)
os.waitpid(pid, 0)
print(json.dumps({"held": held, "app_open": runtime.current()._app is not None, "frozen": frozen,
                  "threads": [t.name for t in threading.enumerate()]}))
"""


def test_preload_leaves_no_store_connection_or_thread_to_cross_the_fork(tmp_path):
    """gunicorn forks the workers from the master that ran app.preload (preload_app): the master must hold no
    SQLite file, PostgreSQL connection or thread by then, and a forked worker opens its own store and serves.
    What it loaded is frozen out of the cyclic collector (the workers share those pages) and still serves."""
    env = _env(tmp_path)
    done = subprocess.run([sys.executable, "-c", PRELOAD_CHECK], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    lines = [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]
    child = next(d for d in lines if "child_status" in d)
    parent = next(d for d in lines if "held" in d)
    assert parent.pop("frozen") > 100_000, "the loaded data is not frozen before the fork"
    assert parent == {"held": [], "app_open": False, "threads": ["MainThread"]}, parent
    assert child == {"child_status": 200, "child_opened": True}, child
