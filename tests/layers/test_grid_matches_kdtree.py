"""The grid index (layers.grid) answers exactly what the previous k-d tree index answered, on the shipped layers.

The reference below is the previous method, kept here as it was: scipy's cKDTree gives the k-th distance,
every feature within it is a candidate, records are read row by row (json_safe of each cell). The new index
must give the same records (same ids, order, distances and columns) for nearest-k with and without a radius,
for within-r, and for nearest_each (the camera pull-up's batch) against one nearest(k=1) a point.
"""
from __future__ import annotations

import numpy as np
import pytest

from incidents.model import Point
from layers.catalog import BUNDLED
from layers.index import LayerIndex, json_safe, metric_xy

spatial = pytest.importorskip("scipy.spatial")

LAYERS = ("hospital", "fire_station", "camera", "shelter")


def old_records(ix: LayerIndex, idx, x: float, y: float, *, limit, radius) -> list[dict]:
    idx = np.asarray(idx, dtype=np.intp)
    d = np.hypot(ix.x_m[idx] - x, ix.y_m[idx] - y)
    if radius is not None:
        keep = d <= radius
        idx, d = idx[keep], d[keep]
    order = np.lexsort((ix._id_rank[idx], d))
    if limit is not None:
        order = order[:limit]
    out = []
    for j in order:
        i = int(idx[j])
        rec = {"id": json_safe(ix._ids[i]), "name": json_safe(ix._names[i]),
               "lon": float(ix._lon[i]), "lat": float(ix._lat[i]), "distance_m": round(float(d[j]), 1)}
        for col, values in ix._extra.items():
            rec[col] = json_safe(values[i])
        out.append(rec)
    return out


def old_nearest(ix: LayerIndex, tree, point: Point, k: int, radius) -> list[dict]:
    x, y = metric_xy(point)
    dist, idx = tree.query((x, y), k=min(k, len(ix)), distance_upper_bound=np.inf if radius is None else radius)
    dist, idx = np.atleast_1d(dist), np.atleast_1d(idx)
    found = np.isfinite(dist)
    if not found.any():
        return []
    kth = float(dist[found].max())
    cands = np.asarray(tree.query_ball_point((x, y), r=kth * (1 + 1e-12) + 1e-9), dtype=np.intp)
    return old_records(ix, cands, x, y, limit=k, radius=radius)


def old_within(ix: LayerIndex, tree, point: Point, radius: float) -> list[dict]:
    x, y = metric_xy(point)
    idx = np.asarray(tree.query_ball_point((x, y), r=radius), dtype=np.intp)
    return old_records(ix, idx, x, y, limit=None, radius=radius)


@pytest.fixture(scope="module", params=LAYERS)
def layer(request):
    lay = BUNDLED.load(request.param)
    ix = LayerIndex.for_layer(lay)
    return lay, ix, spatial.cKDTree(np.column_stack((ix.x_m, ix.y_m)))


def query_points(lay, n: int = 60, seed: int = 7) -> list[Point]:
    """Points near features (jittered 0-3 km), on features (distance 0, ties), across the province and
    outside it (far from every feature)."""
    rng = np.random.default_rng(seed)
    rows = rng.integers(0, len(lay), n)
    near = [Point(float(lay.lon[i] + rng.normal(0, 0.02)), float(lay.lat[i] + rng.normal(0, 0.02)), "wgs84")
            for i in rows[: n // 2]]
    on = [Point(float(lay.lon[i]), float(lay.lat[i]), "wgs84") for i in rows[n // 2: n // 2 + 10]]
    wide = [Point(float(rng.uniform(109.6, 117.3)), float(rng.uniform(20.2, 25.5)), "wgs84") for _ in range(15)]
    far = [Point(104.0, 30.6, "wgs84"), Point(121.5, 31.2, "wgs84"), Point(114.2, 18.0, "wgs84")]
    return near + on + wide + far


@pytest.mark.parametrize("k,radius", [(1, None), (5, None), (10, None), (5, 500.0), (5, 3000.0),
                                      (50, 20_000.0)])
def test_nearest_is_the_kdtree_answer(layer, k, radius):
    lay, ix, tree = layer
    for p in query_points(lay):
        assert ix.nearest(p, k=k, radius_m=radius) == old_nearest(ix, tree, p, k, radius), (p, k, radius)


@pytest.mark.parametrize("radius", [300.0, 2000.0, 15_000.0])
def test_within_is_the_kdtree_answer(layer, radius):
    lay, ix, tree = layer
    for p in query_points(lay, n=30):
        assert ix.within(p, radius) == old_within(ix, tree, p, radius), (p, radius)


@pytest.mark.parametrize("radius", [150.0, 900.0, 5000.0])
def test_nearest_each_is_nearest_one_a_point(layer, radius):
    lay, ix, tree = layer
    pts = query_points(lay)
    lon, lat = np.array([p.lon for p in pts]), np.array([p.lat for p in pts])
    got = ix.nearest_each(lon, lat, radius_m=radius)
    want = [next(iter(old_nearest(ix, tree, p, 1, radius)), None) for p in pts]
    assert got == want
    assert any(g is None for g in got) and any(g is not None for g in got)


def test_duplicate_points_and_one_row_layers_are_answered_like_the_tree():
    import pandas as pd
    lon = np.array([113.30, 113.30, 113.30, 113.31, 113.25])
    lat = np.array([23.10, 23.10, 23.10, 23.12, 23.05])
    from layers.catalog import to_metric
    x, y = to_metric(lon, lat)
    table = pd.DataFrame({"id": ["c", "a", "b", "d", "e"], "name": list("CABDE"), "v": [1.5, np.nan, 2.0, 3.0, 4.0]})
    for rows in (slice(None), slice(0, 1), slice(3, 5)):
        t = table.iloc[rows].reset_index(drop=True)
        ix = LayerIndex(t, x[rows], y[rows], lon=lon[rows], lat=lat[rows])
        tree = spatial.cKDTree(np.column_stack((x[rows], y[rows])))
        for p in (Point(113.30, 23.10, "wgs84"), Point(113.5, 23.3, "wgs84"), Point(100.0, 40.0, "wgs84")):
            for k in (1, 2, 3, 9):
                assert ix.nearest(p, k=k) == old_nearest(ix, tree, p, k, None)
