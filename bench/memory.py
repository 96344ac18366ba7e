"""Peak resident size with the 1,000,000-camera layer loaded, measured in a fresh process so nothing
else the bench did is counted: RSS after the product's own layers, after the big layer is generated and
indexed, and the peak after 100 response packages on it. Resident sizes are taken settled (gc, then glibc's
malloc_trim) in both ours and the baseline, so the layer's cost is what it holds, not the allocator's leftovers
from building it.
"""
from __future__ import annotations

import json
import subprocess
import sys

from bench.common import ROOT, Results

CHILD = "from bench.memory import child; child({n})"
BASELINE = "from bench.memory import baseline_child; baseline_child({n})"


def settled_rss_mb() -> float:
    """RSS once garbage is collected and glibc has handed freed heap pages back (malloc_trim), so what is
    counted is what is held, not what building it left in the allocator; the same for ours and the baseline."""
    import ctypes
    import gc
    from bench.common import rss_mb
    gc.collect()
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):      # not glibc: the plain RSS
        pass
    return rss_mb()


def baseline_child(n: int) -> None:
    """The layer as it was held before (a GeoDataFrame of shapely points and Python strings, plus an STRtree
    of shapely points in metres, ids and names as object arrays): the same rows, in a fresh process."""
    import geopandas as gpd
    import numpy as np
    import shapely
    from bench import response
    from bench.common import peak_rss_mb
    from layers.catalog import to_metric
    start = settled_rss_mb()
    df = response.points_by_population(n, response.SEED)
    df["id"] = [f"BC{i:07d}" for i in range(len(df))]
    df["name"] = df["id"]
    gdf = gpd.GeoDataFrame(df, geometry=shapely.points(df["lon"], df["lat"]), crs="EPSG:4326")
    x, y = to_metric(df["lon"].to_numpy(), df["lat"].to_numpy())
    held = (gdf, shapely.STRtree(shapely.points(x, y)), gdf["id"].to_numpy(dtype=object),
            gdf["name"].to_numpy(dtype=object), np.argsort(gdf["id"].to_numpy(dtype=object)))
    print(json.dumps({"rss_mb_with_big_layer": round(settled_rss_mb() - start, 1), "rows": len(held[0]),
                      "peak_rss_mb": round(peak_rss_mb(), 1)}))


def child(n: int) -> None:
    """Runs in the fresh process; prints one JSON line."""
    from bench import response
    from bench.common import peak_rss_mb, rss_mb
    from layers import index
    start = rss_mb()
    for name in ("hospital", "fire_station", "camera", "shelter"):
        index.index_for(name)
    product = settled_rss_mb()
    cams, gdf = response.million_cameras(n)
    loaded = settled_rss_mb()
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
        section["bytes_per_row"] = round(section["big_layer_mb"] * 1048576 / section["big_layer_rows"])
        base = subprocess.run([sys.executable, "-c", BASELINE.format(n=cameras)], cwd=ROOT, capture_output=True,
                              text=True)
        if base.returncode == 0:
            b = json.loads(base.stdout.strip().splitlines()[-1])
            b["bytes_per_row"] = round(b["rss_mb_with_big_layer"] * 1048576 / b["rows"])
            section["baseline_geodataframe_strtree"] = b
            section["per_row_vs_baseline"] = round(section["bytes_per_row"] / b["bytes_per_row"], 2)
            section["targets"] = {"per_row<=0.5x_baseline": section["per_row_vs_baseline"] <= 0.5}
    results.add("memory", section)
    return section
