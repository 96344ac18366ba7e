"""Alert fan-out through the durable outbox to a local HTTP receiver: deliveries per second, nothing lost.

Channels are webhook channels (exercise mode) pointing at bench/receiver.py on 127.0.0.1 (every alert its own
incident, as the alerts of a fan-out are: one incident's would leave one after another): a receiver in
its own process (so it does not share the GIL with the outbox it measures) that honours Idempotency-Key.
Floors in the same run, to the same receiver: plain POSTs with one httpx.Client, and the webhook channel's
own send (signing, JSON body, httpx) called in a loop with no database. Second run: one more channel whose
receiver answers 503 to everything; the healthy channels must still deliver everything while the failing
one keeps its deliveries (failed/pending/dead, never silently gone).

``two_processes_postgres``: the deployment's shape, two ``yzt outbox work`` processes on one throwaway
PostgreSQL (bench/load.py's PgCluster and Stack), every alert its own incident (an incident's deliveries on a
channel leave one after another, so alerts of one incident would measure one in flight per channel), with
plain POSTs to the same receiver as the baseline of the same run. The rate is the receiver's: first request
to last key accepted.
"""
from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path

import httpx

from bench.common import Results


def _settings(urls: dict[str, str]):
    from settings import load_settings
    chans = [{"name": n, "kind": "webhook", "mode": "exercise", "url": u, "secret": "bench-secret",
              "rate_per_minute": 10_000_000, "max_attempts": 3} for n, u in urls.items()]
    return load_settings(channels=chans)


def _enqueue(ob, n: int, prefix: str) -> float:
    from tests.helpers_http import make_alert
    t0 = time.perf_counter()
    for i in range(n):
        ob.enqueue(make_alert(f"44010600000_{prefix}_{i}", incident_id=f"GD-BENCH-{prefix}-{i}"))
    return time.perf_counter() - t0


def _floor(url: str, n: int) -> float:
    """Seconds for n plain httpx POSTs of a CAP message (no database, no outbox)."""
    from tests.helpers_http import make_alert
    body = make_alert("44010600000_floor_0").cap_xml.encode()
    with httpx.Client(timeout=10) as c:
        t0 = time.perf_counter()
        for i in range(n):
            c.post(url, content=body, headers={"Idempotency-Key": f"floor-{i}",
                                               "Content-Type": "application/xml"}).raise_for_status()
        return time.perf_counter() - t0


def _channel_floor(ob, n: int) -> float:
    """Seconds for n sends through the webhook channel itself (signing, JSON, httpx), no database."""
    from command.alerts.channels import idempotency_key
    from tests.helpers_http import make_alert
    ch = ob.channel("hook0")
    alerts = [make_alert(f"44010600000_chfloor_{i}") for i in range(n)]
    t0 = time.perf_counter()
    for a in alerts:
        ch.send(a, idempotency_key=idempotency_key(a.identifier, "floor"))
    return time.perf_counter() - t0


def healthy(alerts: int, channels: int, tmp: Path) -> dict:
    from bench.receiver import ReceiverProcess
    from command.alerts.outbox import Outbox
    from command.store.sqlite import Store
    with ReceiverProcess() as rx:
        names = {f"hook{i}": rx.url for i in range(channels)}
        store = Store(tmp / "healthy.db")
        ob = Outbox(store, _settings(names))
        enq_s = _enqueue(ob, alerts, "h")
        t0 = time.perf_counter()
        ob.run_until_idle(timeout_s=600)
        run_s = time.perf_counter() - t0
        counts = ob.counts()
        accepted = rx.stats()
        n_floor = min(alerts * channels, 2000)
        floor_rate = n_floor / _floor(rx.url, n_floor)
        channel_rate = n_floor / _channel_floor(ob, n_floor)
        ob.close()
        store.close()
    want = alerts * channels
    rate = want / run_s
    return {"alerts": alerts, "channels": channels, "deliveries": want, "enqueue_per_s": round(alerts / enq_s),
            "deliver_s": round(run_s, 3), "deliveries_per_s": round(rate), "counts": counts,
            "accepted_by_receiver": accepted["accepted"], "repeats": accepted["repeats"],
            "nothing_lost": accepted["accepted"] == want and counts.get("sent") == want,
            "floor_plain_httpx_posts_per_s": round(floor_rate), "floor_channel_send_per_s": round(channel_rate),
            "outbox_over_plain_httpx": round(rate / floor_rate, 2),
            "outbox_over_channel_send": round(rate / channel_rate, 2), "target_per_s>=2000": rate >= 2000}


def one_failing(alerts: int, channels: int, tmp: Path, timeout_s: float = 120) -> dict:
    from bench.receiver import ReceiverProcess
    from command.alerts.outbox import Outbox
    from command.store.sqlite import Store
    with ReceiverProcess() as rx, ReceiverProcess(fail_status=503) as bad:
        names = {f"hook{i}": rx.url for i in range(channels)} | {"broken": bad.url}
        store = Store(tmp / "failing.db")
        ob = Outbox(store, _settings(names), backoff_base_s=0.5)
        _enqueue(ob, alerts, "f")
        want = alerts * channels
        t0 = time.perf_counter()
        ob.start()
        got = rx.wait_accepted(want, timeout_s)
        run_s = time.perf_counter() - t0
        ob.stop()
        rows = ob.deliveries()
        ob.close()
        store.close()
        bad_seen = bad.stats()["requests"]
    broken = [r for r in rows if r["channel"] == "broken"]
    by_status: dict[str, int] = {}
    for r in broken:
        by_status[r["status"]] = by_status.get(r["status"], 0) + 1
    return {"alerts": alerts, "healthy_channels": channels, "healthy_deliveries": want,
            "healthy_sent": got, "deliver_s": round(run_s, 3), "healthy_deliveries_per_s": round(got / run_s),
            "broken_channel_rows": len(broken), "broken_by_status": by_status, "broken_requests_seen": bad_seen,
            "nothing_lost": got == want and len(broken) == alerts}


def slow_gateway(alerts: int, tmp: Path, *, delay_ms: int = 20, concurrency: tuple[int, ...] = (1, 8)) -> dict:
    """One channel whose receiver answers each request ``delay_ms`` late (a real SMS or cell-broadcast
    gateway is this far away, not 0.1 ms): deliveries per second with 1 and with N in flight. Each alert is
    its own incident (an incident's messages are sent one after another whatever the concurrency)."""
    from bench.receiver import ReceiverProcess
    from command.alerts.outbox import Outbox
    from command.store.sqlite import Store
    from settings import load_settings
    from tests.helpers_http import make_alert
    out: dict = {"alerts": alerts, "receiver_delay_ms": delay_ms}
    with ReceiverProcess(delay_ms=delay_ms) as rx:
        for c in concurrency:
            store = Store(tmp / f"slow-{c}.db")
            ob = Outbox(store, load_settings(channels=[{"name": "gateway", "kind": "webhook", "mode": "exercise",
                                                        "url": rx.url, "secret": "s", "concurrency": c}]))
            for i in range(alerts):
                ob.enqueue(make_alert(f"44010600000_s{c}_{i}", incident_id=f"GD-BENCH-{c}-{i}"))
            t0 = time.perf_counter()
            ob.run_until_idle(timeout_s=600)
            run_s = time.perf_counter() - t0
            sent = ob.counts()["sent"]
            ob.close()
            store.close()
            out[f"concurrency_{c}"] = {"deliveries_per_s": round(sent / run_s, 1), "sent": sent,
                                       "deliver_s": round(run_s, 3)}
    out["sequential_ceiling_per_s"] = round(1000 / delay_ms, 1)
    first, last = out[f"concurrency_{concurrency[0]}"], out[f"concurrency_{concurrency[-1]}"]
    out["speedup"] = round(last["deliveries_per_s"] / first["deliveries_per_s"], 1)
    out["nothing_lost"] = all(out[f"concurrency_{c}"]["sent"] == alerts for c in concurrency)
    return out


def _cpu_s(pid: int) -> float:
    """User + system CPU seconds of process ``pid`` so far (0 once it is gone)."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as fh:
            fields = fh.read().rpartition(")")[2].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _server_cpu_s(folder: Path) -> dict[int, float]:
    """CPU seconds of each PostgreSQL server process of the cluster in ``folder`` (children of its postmaster)."""
    try:
        postmaster = (folder / "data" / "postmaster.pid").read_text().split()[0]
    except (OSError, IndexError):
        return {}
    out = {}
    for pid in (int(p) for p in os.listdir("/proc") if p.isdigit()):
        try:
            with open(f"/proc/{pid}/stat", encoding="ascii") as fh:
                if fh.read().rpartition(")")[2].split()[1] == postmaster:
                    out[pid] = _cpu_s(pid)
        except (OSError, IndexError):
            continue
    return out


def two_processes_postgres(alerts: int, channels: int, tmp: Path, *, processes: int = 2, concurrency: int = 2,
                           timeout_s: float = 300, profile_s: float = 0) -> dict:
    """``processes`` x ``yzt outbox work`` on one PostgreSQL, ``channels`` webhook channels of ``concurrency``
    workers each; ``alerts`` alerts, each on its own incident, queued before the workers start. ``profile_s``:
    py-spy samples the first process that long (``profile``: where a delivery's time goes). CPU per delivery
    (less at the mercy of a shared machine than the rate): the outbox processes' from their first request on
    (their start-up not counted), PostgreSQL's server processes' and the receiver's over the same window;
    ``audit_transactions_per_delivery``: the chained transactions the deliveries cost (anchor lines)."""
    from bench.load import PgCluster, Stack, _profile_end, _profile_start, until
    from bench.receiver import ReceiverProcess
    from tests.helpers_http import make_alert
    with PgCluster(tmp / "pg") as pg, ReceiverProcess() as rx:
        chans = [{"name": f"hook{i}", "kind": "webhook", "mode": "exercise", "url": rx.url, "secret": "bench-secret",
                  "rate_per_minute": 10_000_000, "max_attempts": 3, "concurrency": concurrency}
                 for i in range(channels)]
        with Stack(tmp / "stack", database_url=pg.url, channels=chans) as stack:
            app = stack.open_app()
            t0 = time.perf_counter()
            for i in range(alerts):
                app.outbox.enqueue(make_alert(f"44010600000_pg_{i}", incident_id=f"GD-BENCH-PG-{i}"))
            enq_s = time.perf_counter() - t0
            want = alerts * channels
            workers = [stack.outbox_worker(poll_s=0.2) for _ in range(processes)]
            prof = None
            until(lambda: rx.stats()["requests"] > 0, 120, every_s=0.01)   # the processes' imports are done
            cpu0 = {w.pid: _cpu_s(w.pid) for w in workers}
            pg0, rx0, sent0 = _server_cpu_s(pg.folder), _cpu_s(rx.proc.pid), rx.stats()["accepted"]
            anchors0 = _anchor_lines(stack.var)
            if profile_s:       # once deliveries flow: the processes' start (imports) is not what is measured
                prof = _profile_start([workers[0].pid], profile_s, tmp / "profile")
            got = until(lambda: rx.stats()["accepted"] >= want, timeout_s, every_s=0.1)
            stats = rx.stats()
            window = max(stats["accepted"] - sent0, 1)
            cpu = {"outbox_processes": sum(_cpu_s(w.pid) - c for w, c in zip(workers, cpu0.values())),
                   "postgresql": sum(c - pg0.get(pid, 0.0) for pid, c in _server_cpu_s(pg.folder).items()),
                   "receiver": _cpu_s(rx.proc.pid) - rx0}
            audit_tx = _anchor_lines(stack.var) - anchors0
            counts = until(lambda: (c := app.outbox.counts())["sent"] == want and c, 30) or app.outbox.counts()
            alive = sum(w.poll() is None for w in workers)
            profile = _profile_end(prof) if prof else None
            app.close()
        n_floor = min(want, 4000)
        floor_rate = n_floor / _floor(rx.url, n_floor)
    run_s = max(stats["last_at"] - stats["first_at"], 1e-6)
    rate = stats["accepted"] / run_s
    return {"alerts": alerts, "channels": channels, "processes": processes, "concurrency": concurrency,
            "deliveries": want, "enqueue_per_s": round(alerts / enq_s), "deliver_s": round(run_s, 3),
            "deliveries_per_s": round(rate), "counts": counts, "accepted_by_receiver": stats["accepted"],
            "repeats": stats["repeats"], "workers_alive": alive,
            "nothing_lost": bool(got) and stats["accepted"] == want and counts.get("sent") == want,
            "floor_plain_httpx_posts_per_s": round(floor_rate), "outbox_over_plain_httpx": round(rate / floor_rate, 2),
            "target_per_s>=2000": rate >= 2000,
            "cpu_ms_per_delivery": {k: round(1000 * v / window, 3) for k, v in cpu.items()},
            "audit_transactions_per_delivery": round(audit_tx / window, 3), "load_average": os.getloadavg(),
            **({"profile": profile} if profile else {})}


def _anchor_lines(var: Path) -> int:
    """Lines of the audit anchor files under ``var``: one per committed chained transaction."""
    n = 0
    for f in var.rglob("*anchor*"):
        if f.is_file():
            with open(f, "rb") as fh:
                n += sum(1 for _ in fh)
    return n


def run(results: Results, *, alerts: int = 2000, channels: int = 2) -> dict:
    with tempfile.TemporaryDirectory(prefix="yzt-bench-fanout-") as d:
        section = {"healthy": healthy(alerts, channels, Path(d)),
                   "one_channel_failing": one_failing(alerts, channels, Path(d)),
                   "slow_gateway": slow_gateway(max(alerts // 10, 5), Path(d))}
        try:
            section["two_processes_postgres"] = two_processes_postgres(alerts, channels, Path(d),
                                                                       profile_s=8 if alerts >= 1000 else 0)
        except (RuntimeError, OSError) as e:     # no PostgreSQL server on this machine
            section["two_processes_postgres"] = {"skipped": f"{type(e).__name__}: {str(e)[:300]}"}
    results.add("fanout", section)
    return section
