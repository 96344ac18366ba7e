"""The bench can't rot: `python -m bench --tiny` runs every benchmark code path at tiny sizes (200 cameras,
20 incidents, 20 drill events, 10 alerts) into a temp folder. Figures are not asserted, only that each
section ran and reported its figures and that the fan-out lost nothing.
"""
from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
@pytest.mark.sqlite_only     # the bench makes its own stores (and clusters): the same run on either pass
def test_bench_runs_end_to_end_at_tiny_sizes(tmp_path):
    out = subprocess.run([sys.executable, "-m", "bench", "--tiny", "--skip", "dashboard,postgis", "--out",
                          str(tmp_path)], cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-2000:]
    doc = json.loads((tmp_path / "results.json").read_text(encoding="utf-8"))
    s = doc["sections"]
    assert doc["machine"]["cpus"] and doc["machine"]["date"]
    assert s["camera_layer"]["rows"] == 200
    pkg = s["response_package"]
    assert pkg["incidents"] == 20 and pkg["ours"]["n"] == 20
    for key in ("ours", "naive_baseline", "index_floor_camera_query_nearest", "nearest_step_ours"):
        assert math.isfinite(pkg[key]["p50_ms"]) and pkg[key]["p50_ms"] > 0
    assert s["geocoder"]["addresses"] == 40 and s["geocoder"]["startup_fresh_process"]["first_answer_s"] > 0
    assert s["drill"]["events"] == 20 and s["drill"]["exit_code"] == 0
    assert s["fanout"]["healthy"]["nothing_lost"] is True
    assert s["fanout"]["one_channel_failing"]["nothing_lost"] is True
    assert s["memory"]["big_layer_rows"] == 200 and s["memory"]["peak_rss_mb"] > 0
    assert "postgis" not in s and "dashboard" not in s
    assert s["intake"]["intake_batch_texts_per_s"] > 0 and s["geocoder"]["batch"]["ours_batch_per_s"] > 0
    assert set(s["startup"]["drill_wall_s"]) == {"off", "cold", "warm"}
    assert all(set(v) == {0} for v in s["startup"]["drill_refused_steps"].values())
    assert s["load"]["sqlite"]["officers"]["errors"] == 0
    hist = s["history"]["sqlite"]
    assert hist["incidents"] == 200 and hist["listed_page_100"]["p50_ms"] > 0 and hist["targets_p90"]
    assert s["profile_response_package"]["top_inclusive"]
    assert (tmp_path / "profiles" / "response_package.txt").exists()
    md = (tmp_path / "BENCHMARKS.md").read_text(encoding="utf-8")
    assert "## Targets" in md and "Response package p50" in md and doc["machine"]["date"] in md


def test_bench_refuses_an_unknown_section(tmp_path):
    out = subprocess.run([sys.executable, "-m", "bench", "--tiny", "--skip", "everything", "--out", str(tmp_path)],
                         cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert out.returncode == 2 and "unknown section(s) everything" in out.stderr
    assert not (tmp_path / "results.json").exists()
