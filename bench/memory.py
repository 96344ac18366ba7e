"""Peak resident size with the 1,000,000-camera layer loaded, measured in a fresh process so nothing
else the bench did is counted: RSS after the product's own layers, after the big layer is generated and
indexed, and the peak after 100 response packages on it.
"""
from __future__ import annotations

import json
import subprocess
import sys

from bench.common import ROOT, Results

CHILD = "from bench.memory import child; child({n})"


def child(n: int) -> None:
    """Runs in the fresh process; prints one JSON line."""
    from bench import response
    from bench.common import peak_rss_mb, rss_mb
    from layers import index
    start = rss_mb()
    for name in ("hospital", "fire_station", "camera", "shelter"):
        index.index_for(name)
    product = rss_mb()
    cams, gdf = response.million_cameras(n)
    loaded = rss_mb()
    pkg = response.Package(cams, gdf)
    for inc in response.make_incidents(100):
        pkg(inc)
    print(json.dumps({"rss_mb_at_start": round(start, 1), "rss_mb_product_layers_indexed": round(product, 1),
                      "rss_mb_with_big_layer": round(loaded, 1), "big_layer_rows": len(gdf),
                      "peak_rss_mb": round(peak_rss_mb(), 1)}))


def run(results: Results, *, cameras: int = 1_000_000) -> dict:
    out = subprocess.run([sys.executable, "-c", CHILD.format(n=cameras)], cwd=ROOT, capture_output=True, text=True)
    if out.returncode != 0:
        section = {"error": (out.stderr.strip().splitlines() or ["?"])[-1]}
    else:
        section = json.loads(out.stdout.strip().splitlines()[-1])
        section["big_layer_mb"] = round(section["rss_mb_with_big_layer"] - section["rss_mb_product_layers_indexed"], 1)
    results.add("memory", section)
    return section
