"""Drill replay of a generated 1,000-event scenario, and opening a response group.

The scenario (format 1, /work/shared/contracts/drill-scenario.md) is generated, seeded: incidents spread
over Guangdong's districts, each reported (address + point), updated, noted, warned and closed. The floor
in the same run is the store alone: the same number of events appended to a fresh SQLite store.

What a trainer waits for is ``yzt drill run FILE`` in a fresh process: that wall time is measured too, against
the floor of a fresh process that only imports what the command imports (``cli_import_floor_s``).
"""
from __future__ import annotations

import datetime as dt
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import yaml

from bench.common import Results, summary_ms
from settings import get_settings

SEED = 20261125
TYPES = ["fire", "gas_explosion", "hazmat_leak", "building_collapse", "traffic"]


def scenario_doc(events: int = 1000, seed: int = SEED) -> dict:
    """A format-1 scenario of ``events`` events: 5 per incident (report, update, note, alert, close)."""
    from bench.response import points_by_population
    from incidents import admin
    n_inc = max(1, events // 5)
    pts = points_by_population(n_inc, seed)
    d = admin.districts().set_index("district_adcode")
    rng = np.random.default_rng(seed)
    evs = []
    for k, (lon, lat, code) in enumerate(zip(pts["lon"], pts["lat"], pts["district_adcode"])):
        key, t0 = f"I{k:04d}", 30 * k
        row = d.loc[code]
        evs += [
            {"at": t0, "kind": "report", "incident": key, "address": f"{row['city_name']}{row['district_name']}",
             "point": {"lon": round(float(lon), 6), "lat": round(float(lat), 6), "crs": "wgs84"},
             "type": TYPES[int(rng.integers(len(TYPES)))], "casualties": {"serious_injuries": int(rng.integers(0, 5))}},
            {"at": t0 + 600, "kind": "update", "incident": key,
             "casualties": {"deaths": int(rng.integers(0, 4)), "serious_injuries": int(rng.integers(0, 20))}},
            {"at": t0 + 700, "kind": "note", "incident": key, "text": "现场指挥部已设立"},
            {"at": t0 + 720, "kind": "alert", "incident": key, "radius_m": 500, "instruction": "请附近居民远离现场"},
            {"at": t0 + 7200, "kind": "close", "incident": key}]
    return {"format": 1, "name": f"基准演练 {events} 事件", "start": "2026-11-23T09:00:00+08:00",
            "events": evs[:events]}


def _floor(n: int, tmp: Path) -> float:
    from command.store.sqlite import Store
    store = Store(tmp / "floor.db")
    t0 = time.perf_counter()
    for i in range(n):
        store.append_event(f"I{i // 5:04d}", "note", {"text": "现场指挥部已设立", "i": i},
                           at="2026-11-23T09:00:00+08:00", actor="bench")
    s = time.perf_counter() - t0
    store.close()
    return s


def _cli_wall(path: Path, tmp: Path) -> tuple[float, float, int]:
    """Seconds for `yzt drill run path --json` in a fresh process, for a fresh process that only imports the
    same modules, and the command's exit status."""
    from bench.common import ROOT
    env = {"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin", "HOME": str(tmp), "YZT_VAR_DIR": str(tmp / "var")}
    run = [sys.executable, "-c", "from command.cli.main import main; main()", "drill", "run", str(path), "--json"]
    floor = [sys.executable, "-c", "import command.cli.main, command.drills.replay, command.response.service, command.alerts.outbox, "
             "incidents.geocode, layers.index, layers.routing, geopandas"]
    t0 = time.perf_counter()
    subprocess.run(floor, env=env, cwd=ROOT, check=True, capture_output=True)
    t1 = time.perf_counter()
    done = subprocess.run(run, env=env, cwd=ROOT, capture_output=True)
    return time.perf_counter() - t1, t1 - t0, done.returncode


def open_group_samples(n: int) -> list[float]:
    """Seconds per group.open_group (roster + conference) on located, graded incidents."""
    from command.response import group
    from incidents import geocode, grading
    from incidents.model import Casualties, Point
    from settings import get_settings
    from bench.response import make_incidents
    settings = get_settings()
    out = []
    for k, inc in enumerate(make_incidents(n)):
        loc = geocode.locate_point(Point(inc.lon, inc.lat, "wgs84"))
        cas = Casualties(inc.deaths, inc.injuries, 0)
        g = grading.grade(inc.type, cas)
        t0 = time.perf_counter()
        group.open_group(f"BENCH{k}", inc.type, g, loc, at="2026-11-23T09:00:00+08:00", actor="bench",
                           settings=settings, casualties=cas)
        out.append(time.perf_counter() - t0)
    return out


def run(results: Results, *, events: int = 1000, groups: int = 500) -> dict:
    from command.drills import load_scenario, report_exit_code, run_drill
    with tempfile.TemporaryDirectory(prefix="yzt-bench-drill-") as d:
        tmp = Path(d)
        path = tmp / "scenario.yaml"
        path.write_text(yaml.safe_dump(scenario_doc(events), allow_unicode=True, sort_keys=False), encoding="utf-8")
        t0 = time.perf_counter()
        sc = load_scenario(path)
        t1 = time.perf_counter()
        report = run_drill(sc, settings=get_settings())      # first replay in this process: layers, routing graph, rules load on use
        t2 = time.perf_counter()
        run_drill(sc, settings=get_settings())               # the same drill again, everything loaded
        warm_s = time.perf_counter() - t2
        floor_s = _floor(len(sc.events), tmp)
        cli_s, cli_floor_s, cli_code = _cli_wall(path, tmp)
    errors = report.get("errors", [])
    samples = open_group_samples(groups)
    group = summary_ms(samples[min(5, len(samples) - 1):])  # the first calls load the duty rules
    section = {"events": len(sc.events), "incidents": len(report["incidents"]), "load_s": round(t1 - t0, 3),
               "replay_s": round(t2 - t1, 3), "total_s": round(t2 - t0, 3),
               "replay_warm_s": round(warm_s, 3), "warm_total_s": round(t1 - t0 + warm_s, 3), "exit_code": report_exit_code(report),
               "refusals_in_replay": len(errors), "deliveries": report.get("deliveries"),
               "store_append_floor_s": round(floor_s, 3), "cli_wall_s": round(cli_s, 3),
               "cli_import_floor_s": round(cli_floor_s, 3), "cli_exit_code": cli_code,
               "target_cli_wall_s<2": cli_s < 2, "warm_replay_over_floor": round(warm_s / floor_s, 1),
               "target_total_s<2": (t2 - t0) < 2, "target_warm_total_s<2": (t1 - t0 + warm_s) < 2, "open_group": group,
               "date": dt.date.today().isoformat()}
    results.add("drill", section)
    return section
