"""Start-up of a fresh process: `yzt drill run` of the 1,000-event scenario, and `yzt serve` to its first HTTP 200,
with the persistent artefact cache (incidents/cache.py) off, cold and warm, in the same run.

- ``off``: ``cache.configure(None)``, today's cold path: every artefact is built from data/ (the baseline);
- ``cold``: an empty cache folder: every artefact is built and written (what the first start after an
  install or a data change pays);
- ``warm``: the folder the cold run just filled.

Each command runs in a fresh process through a launcher that sets the cache folder to ``var_dir/cache``, as
the door does with the settings it read (``cache.configure(settings.var_dir / "cache")``), so the runs never
share the repository's var/. `yzt serve --workers 2` is timed from the spawn to the first 200 of ``/login``
(gunicorn's workers load the data before their first request, app.warm). Each state runs ``repeats`` times,
interleaved (off, cold, warm, off, ...); the medians are reported with the warm/off ratios.
"""
from __future__ import annotations

import datetime as dt
import os
import resource
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

LAUNCH = ("import sys; from incidents import cache; f = sys.argv.pop(1); "
          "cache.configure(None if f == 'off' else f); sys.argv[0] = 'yzt'; "
          "from command.cli.main import main; main()")
STATES = ("off", "cold", "warm")


def _env(var: Path) -> dict[str, str]:
    return {"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin", "HOME": str(var.parent), "YZT_VAR_DIR": str(var)}


def _cmd(folder: Path | None, *args: str) -> list[str]:
    return [sys.executable, "-c", LAUNCH, str(folder) if folder is not None else "off", *args]


def drill_wall(scenario: Path, var: Path, folder: Path | None) -> tuple[float, float, int]:
    """Wall seconds of `yzt drill run scenario --json` in a fresh process, its CPU seconds (user + system: what
    a shared, busy machine does not inflate), and its exit status."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    done = subprocess.run(_cmd(folder, "drill", "run", str(scenario), "--json"), env=_env(var), cwd=ROOT,
                          capture_output=True)
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu, done.returncode


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


def _median(values: list[float]) -> float:
    return round(statistics.median(values), 3)


def run(results: Results, *, events: int = 1000, repeats: int = 2, serve: bool = True) -> dict:
    from bench.drill import scenario_doc
    drill: dict[str, list[float]] = {s: [] for s in STATES}
    drill_cpu: dict[str, list[float]] = {s: [] for s in STATES}
    first: dict[str, list[float]] = {s: [] for s in STATES}
    codes: set[int] = set()
    sizes = []
    with tempfile.TemporaryDirectory(prefix="yzt-bench-startup-") as d:
        tmp = Path(d)
        scenario = tmp / "scenario.yaml"
        scenario.write_text(yaml.safe_dump(scenario_doc(events), allow_unicode=True, sort_keys=False), encoding="utf-8")
        for r in range(repeats):
            folder = tmp / f"var-cache-{r}" / "cache"            # empty: the cold run fills it, the warm run reads it
            for state in STATES:
                var = tmp / f"{state}-{r}" / "var"
                var.mkdir(parents=True)
                where = None if state == "off" else folder
                s, cpu, code = drill_wall(scenario, var, where)
                drill[state].append(s)
                drill_cpu[state].append(cpu)
                codes.add(code)
                if serve:
                    first[state].append(serve_first_200(tmp / f"{state}-{r}" / "serve-var", where))
            sizes.append(sum(p.stat().st_size for p in folder.glob("*")))
    section = {"events": events, "repeats": repeats, "drill_exit_codes": sorted(codes),
               "drill_wall_s": {s: _median(v) for s, v in drill.items()},
               "drill_wall_samples_s": {s: [round(x, 3) for x in v] for s, v in drill.items()},
               "drill_warm_over_off": round(statistics.median(drill["warm"]) / statistics.median(drill["off"]), 3),
               "drill_cpu_s": {s: _median(v) for s, v in drill_cpu.items()},
               "drill_cpu_warm_over_off": round(statistics.median(drill_cpu["warm"])
                                                / statistics.median(drill_cpu["off"]), 3),
               "target_drill_warm_s<2": statistics.median(drill["warm"]) < 2,
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
