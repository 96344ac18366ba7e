"""Start-up of a fresh process: `yzt drill run` of the 1,000-event scenario, and `yzt serve` to its first HTTP 200,
with the persistent artefact cache (incidents/cache.py) off, cold and warm, in the same run.

- ``off``: ``cache.configure(None)``, today's cold path: every artefact is built from data/ (the baseline);
- ``cold``: an empty cache folder: every artefact is built and written (what the first start after an
  install or a data change pays);
- ``warm``: the folder the cold run just filled.

Each command runs in a fresh process with a var_dir of its own, and finds the cache where the door puts it
(``cache.configure(settings.var_dir / "cache")``, command/cli/output.py and compose.open_app): cold runs start
with an empty var_dir/cache; a warm run's var_dir/cache is a copy of what that round's cold drill run wrote;
``off`` turns the cache off in the launcher and keeps the door from turning it on again. (Before, the launcher
set a folder that the door then replaced with the fresh var_dir's: every state measured a cold cache.) Every
var_dir is given the same CAP signing pair beforehand, so no state pays for making one. `yzt serve --workers 2`
is timed from the spawn to the first 200 of ``/login``. ``artefact_load`` is the part the
cache covers, alone: a fresh process, imports done, loading the gazetteer, the outlines, the four layers and the
road graph. CPU seconds are reported beside wall seconds: on the shared 2-core machine other work inflates
wall time, not a process's own CPU time. Each state runs ``repeats`` times,
interleaved (off, cold, warm, off, ...); the medians are reported with the warm/off ratios.
"""
from __future__ import annotations

import datetime as dt
import json
import os
import resource
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import yaml

from bench.common import ROOT, Results

LAUNCH = ("import sys; from incidents import cache; f = sys.argv.pop(1)\n"
          "if f == 'off':\n    cache.configure(None); cache.configure = lambda directory: None\n"
          "sys.argv[0] = 'yzt'; from command.cli.main import main; main()")
STATES = ("off", "cold", "warm")
# What every command loads again, alone (imports done first): the part of a start the cache covers
LOAD = ("import json, sys, time; from incidents import cache; f = sys.argv[1]; "
        "cache.configure(None if f == 'off' else f); "
        "from incidents import admin, gazetteer; from layers.catalog import BUNDLED; from layers import routing; "
        "t0, c0 = time.perf_counter(), time.process_time(); gazetteer.gazetteer(); admin.cities(); admin.province(); "
        "admin.locate_point(113.3, 23.1); "
        "[BUNDLED.load(n) for n in ('camera', 'fire_station', 'hospital', 'shelter')]; "
        "routing.road_graph(); print(json.dumps({'wall': time.perf_counter() - t0, 'cpu': time.process_time() - c0}))")


def _env(var: Path) -> dict[str, str]:
    return {"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin", "HOME": str(var.parent), "YZT_VAR_DIR": str(var)}


def _cmd(folder: Path | None, *args: str) -> list[str]:
    """The command in a fresh process: ``folder`` None: cache off; else the door's own (var_dir/cache)."""
    return [sys.executable, "-c", LAUNCH, "off" if folder is None else "door", *args]


def _var(tmp: Path, name: str, state: str, r: int) -> Path:
    """A fresh var_dir with the bench's CAP signing pair; a warm one also with the cache the round's cold drill
    run left in its var_dir."""
    var = tmp / f"{state}-{r}" / name
    shutil.copytree(tmp / "signing", var / "cap-signing")
    if state == "warm":
        shutil.copytree(_folder(tmp, "cold", r, "drill"), var / "cache")
    return var


def drill_wall(scenario: Path, var: Path, folder: Path | None) -> tuple[float, float, int]:
    """Wall seconds of `yzt drill run scenario --json` in a fresh process, its CPU seconds (user + system: what
    a shared, busy machine does not inflate), and the number of steps its report says were refused."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    done = subprocess.run(_cmd(folder, "drill", "run", str(scenario), "--json"), env=_env(var), cwd=ROOT,
                          capture_output=True, text=True)
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    try:
        report = json.loads(done.stdout)
    except ValueError:                    # no report: the run broke, its time means nothing
        raise RuntimeError(f"yzt drill run exited {done.returncode}: {done.stderr.strip()[-600:]}") from None
    return wall, cpu, len(report.get("errors", []))


def artefacts_s(var: Path, folder: Path | None) -> tuple[float, float]:
    """Wall and CPU seconds a fresh process spends loading the gazetteer, the admin outlines, the four layers
    and the road graph (after its imports)."""
    done = subprocess.run([sys.executable, "-c", LOAD, str(folder) if folder is not None else "off"], env=_env(var),
                          cwd=ROOT, capture_output=True, text=True, check=True)
    out = json.loads(done.stdout.strip().splitlines()[-1])
    return out["wall"], out["cpu"]


def serve_first_200(var: Path, folder: Path | None, *, timeout_s: float = 180.0) -> float:
    """Seconds from spawning `yzt serve --workers 2` to its first 200 on /login; the server is stopped after."""
    from bench.load import free_port
    port = free_port()
    log = (var.parent / f"serve-{port}.log").open("wb")
    t0 = time.perf_counter()
    proc = subprocess.Popen(_cmd(folder, "serve", "--host", "127.0.0.1", "--port", str(port), "--workers", "2"),
                            env=_env(var), cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        while time.perf_counter() - t0 < timeout_s:
            if proc.poll() is not None:
                raise RuntimeError(f"yzt serve ended ({proc.returncode}); see {log.name}")
            try:
                if httpx.get(f"http://127.0.0.1:{port}/login", timeout=2).status_code == 200:
                    return time.perf_counter() - t0
            except httpx.HTTPError:
                pass
            time.sleep(0.05)
        raise RuntimeError(f"yzt serve did not answer in {timeout_s:.0f} s")
    finally:
        _stop(proc)
        log.close()


def _stop(proc: subprocess.Popen) -> None:
    """SIGTERM to the server's own process group (gunicorn, its workers, its delivery process), then SIGKILL."""
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=40)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)


def _folder(tmp: Path, state: str, r: int, what: str) -> Path | None:
    """The cache folder of one measurement: none (off), the var_dir/cache of its own cold run (cold), or the
    one the cold drill run of this round filled (warm)."""
    if state == "off":
        return None
    return tmp / f"cold-{r}" / ("var" if state == "warm" or what == "drill" else f"{what}-var") / "cache"


def _median(values: list[float]) -> float:
    return round(statistics.median(values), 3)


def run(results: Results, *, events: int = 1000, repeats: int = 2, serve: bool = True) -> dict:
    from bench.drill import scenario_doc
    drill: dict[str, list[float]] = {s: [] for s in STATES}
    drill_cpu: dict[str, list[float]] = {s: [] for s in STATES}
    loads: dict[str, list[float]] = {s: [] for s in STATES}
    loads_cpu: dict[str, list[float]] = {s: [] for s in STATES}
    first: dict[str, list[float]] = {s: [] for s in STATES}
    refused: dict[str, list[int]] = {s: [] for s in STATES}
    sizes = []
    with tempfile.TemporaryDirectory(prefix="yzt-bench-startup-") as d:
        tmp = Path(d)
        scenario = tmp / "scenario.yaml"
        scenario.write_text(yaml.safe_dump(scenario_doc(events), allow_unicode=True, sort_keys=False), encoding="utf-8")
        from command.alerts.signing import generate_self_signed
        generate_self_signed(tmp / "signing")
        for r in range(repeats):
            for state in STATES:
                var = _var(tmp, "var", state, r)
                where = _folder(tmp, state, r, "drill")
                s, cpu, n_refused = drill_wall(scenario, var, where)
                drill[state].append(s)
                drill_cpu[state].append(cpu)
                refused[state].append(n_refused)
                w, c = artefacts_s(var, _folder(tmp, state, r, "load"))
                loads[state].append(w)
                loads_cpu[state].append(c)
                if serve:
                    first[state].append(serve_first_200(_var(tmp, "serve-var", state, r),
                                                        _folder(tmp, state, r, "serve")))
            sizes.append(sum(p.stat().st_size for p in _folder(tmp, "warm", r, "").glob("*")))
    section = {"events": events, "repeats": repeats, "drill_refused_steps": refused,
               "drill_wall_s": {s: _median(v) for s, v in drill.items()},
               "drill_wall_samples_s": {s: [round(x, 3) for x in v] for s, v in drill.items()},
               "drill_warm_over_off": round(statistics.median(drill["warm"]) / statistics.median(drill["off"]), 3),
               "drill_cpu_s": {s: _median(v) for s, v in drill_cpu.items()},
               "drill_cpu_warm_over_off": round(statistics.median(drill_cpu["warm"])
                                                / statistics.median(drill_cpu["off"]), 3),
               "target_drill_warm_s<2": statistics.median(drill["warm"]) < 2,
               "artefact_load_s": {s: _median(v) for s, v in loads.items()},
               "artefact_load_cpu_s": {s: _median(v) for s, v in loads_cpu.items()},
               "artefact_load_cpu_warm_over_off": round(statistics.median(loads_cpu["warm"])
                                                        / statistics.median(loads_cpu["off"]), 3),
               "cache_folder_mb": round(max(sizes) / 1e6, 1), "date": dt.date.today().isoformat()}
    if serve:
        section.update({
            "serve_first_200_s": {s: _median(v) for s, v in first.items()},
            "serve_first_200_samples_s": {s: [round(x, 3) for x in v] for s, v in first.items()},
            "serve_warm_over_off": round(statistics.median(first["warm"]) / statistics.median(first["off"]), 3),
            "target_serve_warm_s<3": statistics.median(first["warm"]) < 3})
    results.add("startup", section)
    return section


if __name__ == "__main__":      # python -m bench.startup [events] [repeats]: this section alone, printed
    import json
    res = Results()
    argv = [int(a) for a in sys.argv[1:]]
    print(json.dumps(run(res, events=argv[0] if argv else 1000, repeats=argv[1] if len(argv) > 1 else 2),
                     indent=1, ensure_ascii=False))
