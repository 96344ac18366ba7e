"""The whole response package at province scale, side by side with its baselines.

Per incident: locate (address + point) + grade + nearest 5 of hospital, fire_station and camera (a
generated, seeded 1,000,000-camera layer) + population inside the warned area + CAP built and
validated. Baselines in the same run: the same package with the nearest step done naively
(geopandas distance to every row, then sort), and the raw index floor (the grid's candidate query alone).
"""
from __future__ import annotations

import datetime as dt
import time
from dataclasses import dataclass

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from bench.common import Results, peak_rss_mb, rss_mb, summary_ms, time_each

SEED = 20261123
TZ = dt.timezone(dt.timedelta(hours=8))


def points_by_population(n: int, seed: int) -> pd.DataFrame:
    """n WGS84 points inside Guangdong's districts, each district's share by its 2020 population."""
    from incidents import admin
    d = admin.districts().dropna(subset=["population"]).reset_index(drop=True)
    rng = np.random.default_rng(seed)
    counts = rng.multinomial(n, (d["population"] / d["population"].sum()).to_numpy())
    xs, ys, codes = [], [], []
    for geom, code, k in zip(d.geometry, d["district_adcode"], counts):
        got = 0
        minx, miny, maxx, maxy = geom.bounds
        shapely.prepare(geom)
        while got < k:
            m = max(64, int((k - got) * 2.5))
            x = rng.uniform(minx, maxx, m)
            y = rng.uniform(miny, maxy, m)
            ok = shapely.contains_xy(geom, x, y)
            x, y = x[ok][: k - got], y[ok][: k - got]
            xs.append(x), ys.append(y), codes.append(np.full(len(x), code))
            got += len(x)
    return pd.DataFrame({"lon": np.concatenate(xs), "lat": np.concatenate(ys),
                         "district_adcode": np.concatenate(codes)})


def million_cameras(n: int = 1_000_000):
    """A seeded synthetic camera layer of n points, held as the catalogue holds a loaded layer (text in
    Arrow strings, lon/lat and EPSG:4547 arrays, no shapely point per row): (LayerIndex, its GeoDataFrame,
    built on demand for the naive baseline)."""
    import pandas as pd
    from layers.catalog import Layer, to_metric
    from layers.index import LayerIndex
    df = points_by_population(n, SEED)
    text = pd.StringDtype("pyarrow")
    ids = pd.array([f"BC{i:07d}" for i in range(len(df))], dtype=text)
    lon, lat = df.pop("lon").to_numpy(float), df.pop("lat").to_numpy(float)
    table = pd.DataFrame({"id": ids, "name": ids, "district_adcode": df["district_adcode"].astype(text)})
    x_m, y_m = to_metric(lon, lat)
    layer = Layer(name="camera", synthetic=True, source="bench", licence="", table=table, lon=lon, lat=lat,
                  x_m=x_m, y_m=y_m)
    return LayerIndex.for_layer(layer), _LazyGdf(layer)


class _LazyGdf:
    """len() of the layer at no cost; the GeoDataFrame (shapely points) only when the baseline needs it."""

    def __init__(self, layer) -> None:
        self.layer = layer

    def __len__(self) -> int:
        return len(self.layer)

    def to_crs(self, crs):
        return self.layer.gdf.to_crs(crs)


@dataclass
class Incident:
    address: str
    lon: float
    lat: float
    type: str
    deaths: int
    injuries: int


def make_incidents(n: int) -> list[Incident]:
    from incidents import admin
    pts = points_by_population(n, SEED + 1)
    d = admin.districts().set_index("district_adcode")
    rng = np.random.default_rng(SEED + 2)
    types = ["fire", "gas_explosion", "hazmat_leak", "building_collapse", "traffic"]
    out = []
    for lon, lat, code in zip(pts["lon"], pts["lat"], pts["district_adcode"]):
        row = d.loc[code]
        out.append(Incident(f"{row['city_name']}{row['district_name']}", float(lon), float(lat),
                            types[int(rng.integers(len(types)))], int(rng.integers(0, 4)),
                            int(rng.integers(0, 20))))
    return out


class Package:
    """One incident through the product's services; `naive=True` swaps in the brute-force nearest."""

    def __init__(self, cams, cam_gdf, *, naive: bool = False):
        from layers.catalog import BUNDLED
        self.cams, self.naive = cams, naive
        self.cam_m = cam_gdf.to_crs("EPSG:4547").geometry if naive else None
        self.fac_m = {n: BUNDLED.load(n).gdf.to_crs("EPSG:4547").geometry for n in ("hospital", "fire_station")} \
            if naive else None
        self.seq = 0

    def nearest(self, layer: str, p) -> list:
        from layers import index
        if not self.naive:
            return self.cams.nearest(p, k=5) if layer == "camera" else index.nearest(layer, p, k=5)
        geo = self.cam_m if layer == "camera" else self.fac_m[layer]
        x, y = _to_m().transform(p.lon, p.lat)
        return list(geo.distance(shapely.Point(x, y)).sort_values().head(5).items())

    def __call__(self, inc: Incident) -> None:
        from command.alerts import area
        from command.alerts import cap
        from incidents import geocode, grading
        from incidents.model import Casualties, Point
        loc = geocode.locate_any(inc.address, Point(inc.lon, inc.lat, "wgs84"))
        g = grading.grade(inc.type, Casualties(inc.deaths, inc.injuries, 0))
        for layer in ("hospital", "fire_station", "camera"):
            self.nearest(layer, loc.point)
        warned = area.build_area(loc.point, type=inc.type, level=g.level)
        self.seq += 1
        when = dt.datetime(2026, 11, 23, 9, 0, 0, tzinfo=TZ) + dt.timedelta(seconds=self.seq)
        ident = cap.new_identifier(loc.district_adcode or "440000", when, lambda _i: False)
        # build_alert validates against the CAP 1.2 XSD before it returns
        cap.build_alert(identifier=ident, sender="bench@yzt.gd.gov.cn", sent=when, status="Exercise",
                        msg_type="Alert", incident_type=inc.type, grade=g, area=warned,
                        instruction_zh="请远离现场", instruction_en="Keep away from the scene")


_TRANSFORMER = None


def _to_m():
    global _TRANSFORMER
    if _TRANSFORMER is None:
        from pyproj import Transformer
        _TRANSFORMER = Transformer.from_crs("EPSG:4326", "EPSG:4547", always_xy=True)
    return _TRANSFORMER


def nearest_step(pkg: Package, incs: list[Incident]) -> list[float]:
    """Seconds per incident of the nearest step alone (3 layers x 5), for the index-vs-naive ratio."""
    from incidents.model import Point
    pts = [Point(i.lon, i.lat, "wgs84") for i in incs]
    return time_each(lambda p: [pkg.nearest(layer, p) for layer in ("hospital", "fire_station", "camera")], pts)


def run(results: Results, *, incidents: int = 10_000, cameras: int = 1_000_000, naive_n: int = 200) -> dict:
    """Measure the package (ours), the naive baseline and the index floor; returns the section."""
    rss0 = rss_mb()
    t0 = time.perf_counter()
    cams, cam_gdf = million_cameras(cameras)
    build_s = time.perf_counter() - t0
    results.add("camera_layer", {"rows": len(cam_gdf), "generate_and_index_s": round(build_s, 2),
                                 "rss_mb_before": round(rss0, 1), "rss_mb_after": round(rss_mb(), 1)})
    incs = make_incidents(incidents)
    fast = Package(cams, cam_gdf)
    for inc in incs[:50]:  # warm caches: gazetteer, grading tables, layers, XSD
        fast(inc)
    ours = time_each(fast, incs)
    ours_nearest = nearest_step(fast, incs)
    naive = Package(cams, cam_gdf, naive=True)
    naive_n = min(naive_n, len(incs))
    naive_samples = time_each(naive, incs[:naive_n])
    naive_nearest = nearest_step(naive, incs[:naive_n])
    pts = [_to_m().transform(i.lon, i.lat) for i in incs]
    floor = time_each(lambda p: cams.grid.nearest_candidates(p[0], p[1], 5), pts)
    s_ours, s_naive, s_floor = summary_ms(ours), summary_ms(naive_samples), summary_ms(floor)
    s_on, s_nn = summary_ms(ours_nearest), summary_ms(naive_nearest)
    section = {
        "incidents": len(incs), "camera_rows": len(cam_gdf), "ours": s_ours,
        "naive_baseline": s_naive | {"note": f"first {naive_n} incidents; geopandas distance to every row, "
                                              "then sort"},
        "index_floor_camera_query_nearest": s_floor,
        "nearest_step_ours": s_on, "nearest_step_naive": s_nn,
        "speedup_vs_naive_p50": round(s_naive["p50_ms"] / s_ours["p50_ms"], 1),
        "nearest_step_speedup_p50": round(s_nn["p50_ms"] / s_on["p50_ms"], 1),
        "ours_over_floor_p50": round(s_ours["p50_ms"] / s_floor["p50_ms"], 1),
        "targets": {"p50_ms<=5": s_ours["p50_ms"] <= 5, "p99_ms<=20": s_ours["p99_ms"] <= 20,
                    ">=20x_naive": s_naive["p50_ms"] / s_ours["p50_ms"] >= 20},
        "rss_mb_after": round(rss_mb(), 1), "peak_rss_mb": round(peak_rss_mb(), 1)}
    results.add("response_package", section)
    return {"cams": cams, "cam_gdf": cam_gdf, "incidents": incs, "package": fast}
