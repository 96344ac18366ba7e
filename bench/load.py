"""Load on the real servers: locust (bench/locustfile.py) against ``yzt serve --workers 2`` on 127.0.0.1, on
SQLite and on a throwaway PostgreSQL cluster (scripts/pg_test_cluster.sh), each figure beside its baseline
measured in the same run:

- ``officers``: 200 signed-in dashboard browsers posting the page's sync callback once a second (its answer
  carries the list's and the markers' Patches, as the page's does) while dispatch systems post 20
  reports/s; baseline: ``GET /api/v1/health`` paced the same way under the same load. py-spy samples one web
  worker meanwhile (``profile``).
- ``reports``: dispatch systems posting ``POST /api/v1/incidents`` as fast as they can (reports/s, p50/p99);
  baseline: the health GET as fast as the same number of users can, right after. py-spy samples one web
  worker while the reports run: where a report's time goes (``profile``).

    .venv/bin/python -m bench.load [--quick] [--backends sqlite,postgres] [--scenarios officers,reports]
                                   [--out results-load.json]
    from bench import load; load.run(results, mode="full")          # bench/__main__.py's entry

The servers, databases and clusters are made in a temporary folder and removed after; nothing listens
beyond 127.0.0.1. ``Stack`` is also what tests/e2e drives (two servers, outbox workers, faults).
"""
from __future__ import annotations

import csv
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import yaml

from bench.common import ROOT, Results, machine

LOCUSTFILE = ROOT / "bench" / "locustfile.py"
PG_CLUSTER = ROOT / "scripts" / "pg_test_cluster.sh"
PASSWORD = "load-officer-Horse-9"
SIZES = {"full": {"officers": 200, "report_rate": 20, "seconds": 40, "report_users": 12, "report_seconds": 30,
                  "profile_s": 15},
         "quick": {"officers": 40, "report_rate": 5, "seconds": 10, "report_users": 4, "report_seconds": 8,
                   "profile_s": 4},
         "tiny": {"officers": 4, "report_rate": 2, "seconds": 4, "report_users": 2, "report_seconds": 3,
                  "profile_s": 0}}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def until(check, timeout_s: float = 30.0, every_s: float = 0.2):
    """``check()`` until it returns something true or ``timeout_s`` passes; returns its last answer."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        got = check()
        if got:
            return got
        time.sleep(every_s)
    return check()


def children(pid: int) -> list[tuple[int, str]]:
    """(pid, command line) of the direct children of ``pid``."""
    out = subprocess.run(["ps", "-o", "pid=,args=", "--ppid", str(pid)], capture_output=True, text=True).stdout
    return [(int(ln.split(None, 1)[0]), ln.split(None, 1)[1]) for ln in out.splitlines() if ln.strip()]


class PgCluster:
    """A throwaway PostgreSQL cluster (initdb in ``folder``, unix socket only) and one database in it. The
    server runs as ``postgres`` when we are root (initdb refuses root), and that user must reach the folder:
    a private temporary folder (pytest's, TemporaryDirectory's: mode 0700) is replaced by a fresh one under
    the system's temporary folder, removed on exit like the other."""

    def __init__(self, folder: Path | None = None, database: str = "yzt") -> None:
        self.folder, self.database = folder, database
        self.admin_url = ""

    def __enter__(self) -> PgCluster:
        if self.folder is None or (os.geteuid() == 0 and not _reachable_by_others(self.folder.parent)):
            self.folder = Path(tempfile.mkdtemp(prefix="yzt-pg-"))
        out = subprocess.run(["bash", str(PG_CLUSTER), "start", str(self.folder)], capture_output=True, text=True,
                             timeout=120)
        if out.returncode != 0:
            raise RuntimeError(f"could not start a PostgreSQL cluster: {out.stderr.strip()[-300:]}")
        self.admin_url = out.stdout.strip().splitlines()[-1]
        import psycopg
        with psycopg.connect(self.admin_url, autocommit=True) as conn:
            conn.execute(f"CREATE DATABASE {self.database}")
        return self

    @property
    def url(self) -> str:
        from urllib.parse import urlsplit, urlunsplit
        return urlunsplit(urlsplit(self.admin_url)._replace(path="/" + self.database))

    def restart(self, down_s: float = 0.0) -> None:
        """Stop the server (fast: every connection is cut), stay down ``down_s``, start it again."""
        self._ctl("stop", "-m", "fast")
        time.sleep(down_s)
        self._ctl("start", "-l", str(self.folder / "server.log"), "-o", self._options())

    def _options(self) -> str:
        from urllib.parse import parse_qs, urlsplit
        port = parse_qs(urlsplit(self.admin_url).query)["port"][0]
        return (f"-p {port} -k {self.folder} -c listen_addresses='' -c fsync=off -c synchronous_commit=off "
                "-c full_page_writes=off -c max_connections=400 -c shared_buffers=64MB")

    def _ctl(self, *args: str) -> None:
        bindir = sorted(Path("/usr/lib/postgresql").glob("*/bin"), key=lambda p: float(p.parent.name))[-1]
        cmd = [str(bindir / "pg_ctl"), "-D", str(self.folder / "data"), "-w", "-t", "60", *args]
        if os.geteuid() == 0:
            cmd = ["runuser", "-u", "postgres", "--", *cmd]
        subprocess.run(cmd, check=True, capture_output=True, timeout=90)

    def __exit__(self, *exc: Any) -> None:
        subprocess.run(["bash", str(PG_CLUSTER), "stop", str(self.folder)], capture_output=True, timeout=120)


def _reachable_by_others(folder: Path) -> bool:
    """Whether every folder from / down to ``folder`` (which may not exist yet) lets others through."""
    here = folder.resolve()
    while not here.exists():
        here = here.parent
    return all(p.stat().st_mode & 0o001 for p in (here, *here.parents))


class Stack:
    """One deployment on 127.0.0.1 in ``folder``: settings (a YAML file, the channels), the database (the
    SQLite file of its var dir, or ``database_url``), and the processes started on it (``serve``,
    ``outbox_worker``), all stopped on exit. Every process shares the var dir (the audit key, the secret key)."""

    def __init__(self, folder: Path, *, database_url: str | None = None, channels: list[dict] | None = None) -> None:
        self.folder = folder
        self.var = folder / "var"
        self.database_url = database_url
        self.channels = channels if channels is not None else [
            {"name": "drill-file", "kind": "outbox", "mode": "exercise"}]
        self.procs: list[subprocess.Popen] = []
        self.folder.mkdir(parents=True, exist_ok=True)
        self.config = folder / "yzt.yaml"
        self.config.write_text(yaml.safe_dump({"channels": self.channels}, allow_unicode=True), encoding="utf-8")
        self.env = {k: v for k, v in os.environ.items() if k not in ("YZT_DATABASE", "YZT_CONFIG", "YZT_VAR_DIR")}
        self.env.update(YZT_VAR_DIR=str(self.var), YZT_CONFIG=str(self.config), PYTHONUNBUFFERED="1")
        if database_url:
            self.env["YZT_DATABASE"] = database_url

    @property
    def backend(self) -> str:
        return "postgres" if self.database_url else "sqlite"

    def settings(self):
        from settings import load_settings
        return load_settings(var_dir=self.var, database=self.database_url, channels=self.channels)

    def open_app(self):
        from command import compose
        return compose.open_app(self.settings())

    def seed(self, *, officers: int = 1, system: str = "110") -> dict[str, Any]:
        """Officer accounts (``load-officer-N``) and a dispatch system's token; returns both."""
        from command.security import auth
        app = self.open_app()
        try:
            users = auth.Users(app.store)
            names = [f"load-officer-{i}" for i in range(officers)]
            for name in names:
                users.add(name, "officer", PASSWORD)
            token = auth.Tokens(app.store).issue(system, "officer")
        finally:
            app.close()
        return {"officers": [[n, PASSWORD] for n in names], "token": token, "system": system}

    def _spawn(self, args: list[str], log_name: str) -> subprocess.Popen:
        log = open(self.folder / log_name, "ab")
        proc = subprocess.Popen([sys.executable, "-m", "command.cli.main", *args], cwd=ROOT, env=self.env,
                                stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        log.close()
        self.procs.append(proc)
        return proc

    def serve(self, *, workers: int = 2, port: int | None = None, timeout_s: float = 120.0,
              wait: bool = True) -> Server:
        """``yzt serve --workers N`` on 127.0.0.1 (with its own delivery process), once it answers
        (``wait=False``: at once; ``server.wait_ready()`` later, so several servers start side by side)."""
        port = port or free_port()
        # The var dir's secret key is made here, before any worker starts: two workers making it at once on a
        # fresh var dir race (security.secret_key: one reads the other's still empty file and refuses to boot,
        # and gunicorn ends with exit 3), which is not the fault a test or a load run is about.
        from command.dashboard.security import secret_key
        secret_key(self.var)
        n = sum(1 for p in self.folder.glob("serve-*.log"))
        proc = self._spawn(["serve", "--host", "127.0.0.1", "--port", str(port), "--workers", str(workers)],
                           f"serve-{n}.log")
        server = Server(proc, port, self.folder / f"serve-{n}.log")
        if wait:
            server.wait_ready(timeout_s)
        return server

    def outbox_worker(self, *, poll_s: float = 0.2) -> subprocess.Popen:
        n = sum(1 for p in self.folder.glob("work-*.log"))
        return self._spawn(["outbox", "work", "--poll-s", str(poll_s)], f"work-{n}.log")

    def logs(self) -> str:
        return "\n".join(f"--- {p.name}\n{p.read_text(errors='replace')[-3000:]}" for p in sorted(self.folder.glob("*.log")))

    def __enter__(self) -> Stack:
        return self

    def __exit__(self, *exc: Any) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in self.procs:
            try:
                proc.wait(timeout=40)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=10)
        self.procs.clear()


class Server:
    """A running ``yzt serve``: its port, its gunicorn master's pid, its web workers and delivery process."""

    def __init__(self, proc: subprocess.Popen, port: int, log: Path) -> None:
        self.proc, self.port, self.log = proc, port, log

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def wait_ready(self, timeout_s: float = 120.0) -> None:
        def up() -> bool:
            if self.proc.poll() is not None:
                raise RuntimeError(f"yzt serve ended ({self.proc.returncode}): {self.log.read_text()[-2000:]}")
            try:
                return httpx.get(self.url + "/login", timeout=2).status_code == 200
            except httpx.HTTPError:
                return False
        if not until(up, timeout_s):
            raise RuntimeError(f"yzt serve did not answer in {timeout_s:.0f} s: {self.log.read_text()[-2000:]}")

    def web_workers(self) -> list[int]:
        return [pid for pid, args in children(self.proc.pid) if "outbox work" not in args]

    def delivery(self) -> list[int]:
        return [pid for pid, args in children(self.proc.pid) if "outbox work" in args]


# ---------------------------------------------------------------------------------------------- locust
def locust(host: str, plan: dict[str, Any], *, seconds: float, out: Path, spawn_rate: float = 20.0) -> dict:
    """One headless locust run of the plan's users against ``host``; per request name: count, failures,
    p50/p90/p99 ms and requests/s, measured after every user has started (``--reset-stats``)."""
    users = sum(int(plan.get(k, 0)) for k in ("officer_users", "dispatch_users", "health_users"))
    classes = [c for c, k in (("Officer", "officer_users"), ("Dispatch", "dispatch_users"),
                              ("Health", "health_users")) if int(plan.get(k, 0))]
    ramp = users / spawn_rate
    prefix = out / "locust"
    env = dict(os.environ, YZT_LOAD_PLAN=json.dumps(plan))
    cmd = [sys.executable, "-m", "locust", "-f", str(LOCUSTFILE), "--headless", "-u", str(users),
           "-r", str(spawn_rate), "-t", f"{int(ramp + seconds + 2)}s", "--csv", str(prefix), "--host", host,
           "--only-summary", "--reset-stats", "--loglevel", "WARNING", "--stop-timeout", "10", *classes]
    t0 = time.monotonic()
    done = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=ramp + seconds + 300)
    wall = time.monotonic() - t0
    stats = _read_stats(prefix.with_name(prefix.name + "_stats.csv"))
    if not stats:
        raise RuntimeError(f"locust wrote no statistics (exit {done.returncode}): {done.stderr[-1500:]}")
    failures = _read_failures(prefix.with_name(prefix.name + "_failures.csv"))
    return {"users": users, "measured_s": seconds, "wall_s": round(wall, 1), "by_name": stats,
            "failures": failures[:8]}


def _num(v: str) -> float | None:
    try:
        return float(v)
    except (TypeError, ValueError):
        return None


def _read_stats(path: Path) -> dict[str, dict]:
    if not path.exists():
        return {}
    out = {}
    with path.open(newline="", encoding="utf-8") as fh:
        for row in csv.DictReader(fh):
            name = f"{row['Type']} {row['Name']}" if row["Name"] == "login" else row["Name"]
            out[name] = {"requests": int(row["Request Count"]), "failures": int(row["Failure Count"]),
                                "p50_ms": _num(row["50%"]), "p90_ms": _num(row["90%"]), "p99_ms": _num(row["99%"]),
                                "max_ms": _num(row["Max Response Time"]),
                                "per_s": round(_num(row["Requests/s"]) or 0.0, 1)}
    return out


def _read_failures(path: Path) -> list[dict]:
    if not path.exists():
        return []
    with path.open(newline="", encoding="utf-8") as fh:
        return [{"name": r["Name"], "error": r["Error"][:200], "count": int(r["Occurrences"])}
                for r in csv.DictReader(fh)]


# ---------------------------------------------------------------------------------------------- scenarios
def warm_up(host: str, seed: dict, n: int = 8) -> float:
    """A few reports and health GETs in parallel before anything is measured (each worker's first request
    of a kind still pays a little: the token check's caches, the dashboard's layout); returns seconds."""
    from concurrent.futures import ThreadPoolExecutor
    import random
    from bench.locustfile import report_body
    rng = random.Random(7)
    auth = {"Authorization": f"Bearer {seed['token']}"}
    t0 = time.perf_counter()
    with httpx.Client(base_url=host, timeout=120) as c, ThreadPoolExecutor(4) as pool:
        list(pool.map(lambda _: c.post("/api/v1/incidents", json=report_body(rng), headers=auth), range(n)))
        list(pool.map(lambda _: c.get("/api/v1/health", headers=auth), range(n)))
    return time.perf_counter() - t0


def sign_in_all(host: str, seed: dict, n: int) -> list[list[str]]:
    """``n`` sessions, one per officer (the accounts in turn), signed in through /login before the run:
    [[Cookie header, CSRF token], ...]. Each officer's session is its own, as 200 browsers' are, without
    200 password hashes inside the measured window."""
    import re
    from concurrent.futures import ThreadPoolExecutor

    def one(i: int) -> list[str]:
        name, password = seed["officers"][i % len(seed["officers"])]
        with httpx.Client(base_url=host, timeout=120) as c:
            form = re.search(r'name="csrf" value="([^"]+)"', c.get("/login").text).group(1)
            r = c.post("/login", data={"name": name, "password": password, "csrf": form, "next": "/"})
            if r.status_code != 302:
                raise RuntimeError(f"sign-in of {name} answered {r.status_code}")
            jar = {ck.name: ck.value for ck in c.cookies.jar if ck.path == "/"}   # not the device cookie of /login
            return ["; ".join(f"{k}={v}" for k, v in jar.items()), jar["yzt_csrf"]]
    with ThreadPoolExecutor(2) as pool:
        return list(pool.map(one, range(n)))


def officers(host: str, seed: dict, size: dict, out: Path, server: Server | None = None) -> dict:
    """200 officers syncing once a second while dispatch posts ``report_rate``/s; health as the baseline.
    Every officer has its own session (``sign_in_all``). py-spy samples one web worker for ``profile_s``
    once every user has started (``profile``)."""
    plan = {"officers": seed["officers"], "token": seed["token"], "officer_users": size["officers"],
            "sessions": sign_in_all(host, seed, size["officers"]),
            "dispatch_users": max(1, size["report_rate"] // 5), "report_rate": size["report_rate"],
            "health_users": max(2, size["officers"] // 20), "health_rate": 1.0}
    users = plan["officer_users"] + plan["dispatch_users"] + plan["health_users"]
    prof = None
    if server is not None and size["profile_s"]:      # started when the ramp is over, beside the measured window
        import threading
        holder: dict[str, Any] = {}
        timer = threading.Timer(users / 20.0 + 5, lambda: holder.update(
            p=_profile_start(server.web_workers(), size["profile_s"], out / "profile")))
        timer.start()
    run = locust(host, plan, seconds=size["seconds"], out=out)
    if server is not None and size["profile_s"]:
        timer.cancel()
        prof = holder.get("p")
        run["profile"] = _profile_end(prof) if prof else {"skipped": "the run ended before the profile started"}
    by = run["by_name"]
    sync, health, report = by.get("sync", {}), by.get("health", {}), by.get("report", {})
    errors = sum(v.get("failures", 0) for k, v in by.items() if k != "Aggregated")
    run.update({
        "sync_p99_ms": sync.get("p99_ms"), "health_p99_ms": health.get("p99_ms"),
        "sync_p99_over_health_p99": _ratio(sync.get("p99_ms"), health.get("p99_ms")),
        "reports_per_s": report.get("per_s"), "errors": errors,
        "target_sync_p99<=300ms_0_errors": bool(sync.get("p99_ms") is not None and sync["p99_ms"] <= 300
                                                 and errors == 0)})
    return run


def reports(host: str, seed: dict, size: dict, out: Path, server: Server) -> dict:
    """Reports as fast as ``report_users`` dispatch systems can post them (py-spy on one web worker), then the
    health GET as fast as the same number of users can: the baseline of the same run."""
    plan = {"token": seed["token"], "dispatch_users": size["report_users"], "report_rate": 0}
    prof = _profile_start(server.web_workers(), size["profile_s"], out)
    run = locust(host, plan, seconds=size["report_seconds"], out=out / "reports", spawn_rate=50)
    profile = _profile_end(prof)
    base = locust(host, {"token": seed["token"], "health_users": size["report_users"], "health_rate": 0},
                  seconds=max(size["report_seconds"] // 2, 3), out=out / "health", spawn_rate=50)
    rep, hl = run["by_name"].get("report", {}), base["by_name"].get("health", {})
    return {"users": size["report_users"], "report": rep, "health_baseline": hl,
            "reports_per_s": rep.get("per_s"), "health_per_s": hl.get("per_s"),
            "reports_over_health": _ratio(rep.get("per_s"), hl.get("per_s")),
            "failures": run["failures"], "profile": profile,
            "target_reports_per_s>=100": bool((rep.get("per_s") or 0) >= 100 and not rep.get("failures"))}


def _ratio(a: float | None, b: float | None) -> float | None:
    return round(a / b, 2) if a and b else None


# ---------------------------------------------------------------------------------------------- profile
def _profile_start(pids: list[int], seconds: float, out: Path) -> dict | None:
    """py-spy record of the first web worker for ``seconds`` (raw collapsed stacks), started now."""
    spy = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    if not seconds or not pids or not Path(spy).exists():
        return None
    out.mkdir(parents=True, exist_ok=True)
    target = out / f"worker-{pids[0]}.txt"
    proc = subprocess.Popen([spy, "record", "--pid", str(pids[0]), "--duration", str(int(seconds)), "--rate", "200",
                             "--format", "raw", "--nonblocking", "--output", str(target)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    return {"proc": proc, "file": target, "pid": pids[0]}


def _profile_end(prof: dict | None, top: int = 18) -> dict | None:
    if prof is None:
        return {"skipped": "py-spy not installed or no worker"}
    try:
        _, err = prof["proc"].communicate(timeout=120)
    except subprocess.TimeoutExpired:
        prof["proc"].kill()
        return {"skipped": "py-spy did not finish"}
    if not prof["file"].exists():
        return {"skipped": f"py-spy wrote nothing: {(err or '').strip()[-300:]}"}
    return summarize_stacks(prof["file"].read_text(encoding="utf-8", errors="replace"), top=top) | {
        "file": str(prof["file"]), "pid": prof["pid"]}


def summarize_stacks(raw: str, *, top: int = 18) -> dict:
    """Inclusive and self shares of the samples per function from py-spy's raw (collapsed) stacks."""
    inclusive: dict[str, int] = {}
    own: dict[str, int] = {}
    total = 0
    for line in raw.splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        n = int(count)
        total += n
        frames = [_frame_name(f) for f in stack.split(";")]
        for f in set(frames):
            inclusive[f] = inclusive.get(f, 0) + n
        own[frames[-1]] = own.get(frames[-1], 0) + n
    if not total:
        return {"samples": 0}
    pick = lambda d: [{"function": k, "share": round(v / total, 3)}  # noqa: E731
                      for k, v in sorted(d.items(), key=lambda kv: -kv[1])[:top]]
    return {"samples": total, "top_inclusive": pick(inclusive), "top_self": pick(own)}


def _frame_name(frame: str) -> str:
    """``func (path/to/module.py:123)`` -> ``module.py:func`` (lines dropped, so a function adds up)."""
    name, _, where = frame.partition(" (")
    path = where.rstrip(")").rsplit(":", 1)[0]
    for marker in ("site-packages/", str(ROOT) + "/"):
        if marker in path:
            path = path.split(marker, 1)[1]
    return f"{path}:{name.strip()}"


# ---------------------------------------------------------------------------------------------- entry
SCENARIOS = ("officers", "reports")


def one_backend(backend: str, size: dict, tmp: Path, scenarios: tuple[str, ...] = SCENARIOS) -> dict:
    """The scenarios against ``yzt serve --workers 2`` on ``backend`` ("sqlite" or "postgres")."""
    cluster = PgCluster(tmp / "pg") if backend == "postgres" else None
    try:
        url = cluster.__enter__().url if cluster else None
        with Stack(tmp / "stack", database_url=url) as stack:
            seed = stack.seed(officers=min(size["officers"], 20))
            server = stack.serve(workers=2)
            out = {"backend": backend, "workers": 2, "warm_up_s": round(warm_up(server.url, seed), 2)}
            out["load_at_start"] = os.getloadavg()
            if "officers" in scenarios:
                out["officers"] = officers(server.url, seed, size, tmp / "officers", server)
                if out["officers"]["errors"]:          # what the server said meanwhile (a worker restarted?)
                    out["officers"]["server_log_tail"] = server.log.read_text(errors="replace")[-2000:]
            if "reports" in scenarios:
                out["reports"] = reports(server.url, seed, size, tmp / "reports", server)
            return out
    finally:
        if cluster:
            cluster.__exit__()


def run(results: Results, *, mode: str = "full", backends: tuple[str, ...] | None = None,
        keep: Path | None = None, scenarios: tuple[str, ...] = SCENARIOS) -> dict:
    """The ``load`` section: every scenario on every backend; ``keep``: a folder to copy the profiles to.
    ``tiny`` (the bench's smoke test) runs the code paths once, on SQLite only unless ``backends`` says: the
    PostgreSQL run is the same code on a PgCluster, which tests/e2e drives, and two servers' warm-up would
    double the smoke test's time."""
    size = SIZES[mode]
    if backends is None:
        backends = ("sqlite",) if mode == "tiny" else ("sqlite", "postgres")
    section: dict[str, Any] = {"sizes": size, "machine_at_start": machine()}
    for backend in backends:
        with tempfile.TemporaryDirectory(prefix=f"yzt-bench-load-{backend}-") as d:
            try:
                section[backend] = one_backend(backend, size, Path(d), scenarios)
            except (RuntimeError, subprocess.SubprocessError, OSError) as e:
                section[backend] = {"skipped": f"{type(e).__name__}: {str(e)[:400]}"}
            if keep is not None:
                for scenario, name in (("reports", "worker"), ("officers/profile", "officers-worker")):
                    for f in Path(d).glob(f"{scenario}/worker-*.txt"):     # one sampled worker per backend
                        keep.mkdir(parents=True, exist_ok=True)            # a fixed name: a run replaces the last
                        shutil.copy(f, keep / f"load-{backend}-{name}.txt")
    results.add("load", section)
    return section


def main(argv: list[str] | None = None) -> None:
    import argparse
    ap = argparse.ArgumentParser(prog="python -m bench.load", description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--tiny", action="store_true")
    ap.add_argument("--backends", default="sqlite,postgres")
    ap.add_argument("--scenarios", default=",".join(SCENARIOS), help="which of officers,reports to run")
    ap.add_argument("--out", type=Path, default=None, help="write the section's JSON here")
    args = ap.parse_args(argv)
    scenarios = tuple(s for s in args.scenarios.split(",") if s)
    if not scenarios or set(scenarios) - set(SCENARIOS):
        ap.error(f"--scenarios: choose from {','.join(SCENARIOS)}")
    results = Results()
    mode = "tiny" if args.tiny else "quick" if args.quick else "full"
    section = run(results, mode=mode, backends=tuple(b for b in args.backends.split(",") if b),
                  keep=ROOT / "bench" / "profiles", scenarios=scenarios)
    if args.out:
        args.out.write_text(json.dumps(section, ensure_ascii=False, indent=2), encoding="utf-8")


if __name__ == "__main__":
    main()
