"""Benchmark plumbing: timers, percentiles, machine facts, and the results files.

Figures are reported as ratios against a baseline measured in the same process and run, because the
machine is shared and noisy. Nothing here is asserted by `make test`.
"""
from __future__ import annotations

import datetime as dt
import json
import os
import platform
import resource
import statistics
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results.json"
REPORT = ROOT / "BENCHMARKS.md"


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    s = sorted(values)
    k = (len(s) - 1) * q / 100
    lo, hi = int(k), min(int(k) + 1, len(s) - 1)
    return s[lo] + (s[hi] - s[lo]) * (k - lo)


def time_each(fn: Callable[[Any], Any], items: list[Any]) -> list[float]:
    """Seconds per call of fn(item), one measurement per item."""
    out = []
    for it in items:
        t0 = time.perf_counter()
        fn(it)
        out.append(time.perf_counter() - t0)
    return out


def summary_ms(samples_s: list[float]) -> dict[str, float]:
    ms = [x * 1000 for x in samples_s]
    return {"n": len(ms), "p50_ms": round(percentile(ms, 50), 4), "p90_ms": round(percentile(ms, 90), 4),
            "p99_ms": round(percentile(ms, 99), 4), "mean_ms": round(statistics.fmean(ms), 4) if ms else None}


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def rss_mb() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def machine() -> dict[str, Any]:
    mem = None
    try:
        with open("/proc/meminfo") as f:
            mem = round(int(f.readline().split()[1]) / 1024 / 1024, 1)
    except OSError:
        pass
    cpu = platform.processor()
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next((ln.split(":", 1)[1].strip() for ln in f if ln.startswith("model name")), cpu)
    except OSError:
        pass
    return {"cpus": os.cpu_count(), "cpu": cpu, "loadavg_1_5_15": [round(x, 2) for x in os.getloadavg()], "memory_gib": mem, "python": platform.python_version(),
            "platform": platform.platform(), "date": dt.datetime.now().astimezone().isoformat(timespec="seconds")}


@dataclass
class Results:
    sections: dict[str, dict[str, Any]] = field(default_factory=dict)
    started: dict[str, Any] = field(default_factory=machine)

    def add(self, name: str, data: dict[str, Any]) -> None:
        self.sections[name] = data
        print(f"[bench] {name}: {json.dumps(data, ensure_ascii=False, default=str)[:400]}", flush=True)

    def doc(self) -> dict[str, Any]:
        return {"machine": machine(), "machine_at_start": self.started, "sections": self.sections}

    def write(self, path: Path = RESULTS) -> dict[str, Any]:
        """Write the results JSON atomically (temp file, then rename); returns what was written."""
        doc = self.doc()
        tmp = path.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(doc, ensure_ascii=False, indent=2, default=str), encoding="utf-8")
        os.replace(tmp, path)
        return doc
