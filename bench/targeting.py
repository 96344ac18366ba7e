"""Targeting fuzz: how far the warned area's CAP shapes reach past Guangdong's land, and what land they miss.

    .venv/bin/python -m bench.targeting                       # 10,000 areas + every district, after only
    .venv/bin/python -m bench.targeting --n 2000 --before-rev 5e53d6f   # also today's code of that commit
    .venv/bin/python -m bench.targeting --before-file /tmp/area_before.py --json /tmp/t.json

The areas are built from the Amap boundaries the product ships (data/boundaries/*amap*) and measured
against boundaries NOT used to build them: the Tianditu set in ../shared/data/boundaries (CGCS2000, treated
as WGS84) and Tianditu's neighbours of Guangdong (data/boundaries/guangdong_neighbours_tianditu.geojson:
Hong Kong, Macau, Guangxi, Hunan, Jiangxi, Fujian, Hainan). What is measured is what a receiver reads:
the union of the <polygon>s (straight lat/lon edges, 5 decimals) or the <circle> (geodesic radius). A
district <geocode> is not counted: a polygon-only receiver (WEA-style cell broadcast) must be served by the
polygons alone. Everything in EPSG:4547, km².

The two reference sets disagree: Tianditu's Guangdong is generalised (1,765 vertices against Amap's 14,025;
along the land borders the Amap line is a median ~300 m, at worst ~2 km from Tianditu's, and Tianditu
leaves out many islands). No outline built from one set can meet a 161 m rule measured strictly on the
other, so each figure is given twice:
- **agreed**: a spill counts only where BOTH sets put the place outside Guangdong (and outside the request)
  by more than 161 m; land left out counts only where BOTH sets say it is Guangdong's. Where the sets
  disagree nobody knows the truth, so it is not scored. This is the figure the 161 m rule is judged by.
- **strict**: Tianditu alone. Its floor is the "ideal" area, the exact request ∩ Amap land with no outline
  at all, measured the same way: what remains above that floor is the builder's doing.
Spills are split by what they land on: a neighbour's land (Tianditu neighbours, not claimed by either
Guangdong set), sea (nobody's land), or Guangdong land outside the request.
"""
from __future__ import annotations

import argparse
import importlib.util
import json
import math
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import shapely
from shapely.geometry import Polygon

from bench.common import ROOT, Results, percentile

REACH_M = 161.0
SHARED = ROOT.parent / "shared"
NEIGHBOURS = ROOT / "data" / "boundaries" / "guangdong_neighbours_tianditu.geojson"
RADII_M = (300, 800, 1500, 3000, 5000, 10000, 20000, 35000, 50000)
ZONES = {  # zone: share of the fuzz
    "coast": 0.22, "island": 0.14, "hong_kong": 0.12, "macau": 0.10, "guangxi": 0.10, "hunan": 0.08,
    "jiangxi": 0.08, "fujian": 0.08, "hainan": 0.08}
NEIGHBOUR_ZONE = {"810000": "hong_kong", "820000": "macau", "450000": "guangxi", "430000": "hunan",
                  "360000": "jiangxi", "350000": "fujian", "460000": "hainan"}
KM2 = 1e-6
METHOD = ("km² in EPSG:4547 of what receivers read; agreed: counted only where Tianditu and Amap agree, "
          "strict: Tianditu alone; ideal: request ∩ Amap land with no outline (the floor of strict)")


@dataclass
class Case:
    kind: str                    # circle | polygon | district
    zone: str
    lon: float
    lat: float
    radius_m: float | None = None
    polygon: list[tuple[float, float]] | None = None    # closed (lat, lon)
    adcode: str | None = None
    label: str = ""

    def describe(self) -> str:
        if self.kind == "circle":
            return f"{self.radius_m / 1000:g} km circle at {self.lat:.5f},{self.lon:.5f} ({self.zone})"
        if self.kind == "polygon":
            return f"{len(self.polygon) - 1}-vertex polygon around {self.lat:.5f},{self.lon:.5f} ({self.zone})"
        return f"district-wide {self.label} {self.adcode}"


@dataclass
class Refs:
    ga: Any                      # Amap Guangdong land (the build set), EPSG:4547
    gt: Any                      # Tianditu Guangdong land
    nt: Any                      # Tianditu neighbours' land, not claimed by either Guangdong set
    da: dict[str, Any] = field(default_factory=dict)     # Amap districts by adcode
    dt: dict[str, Any] = field(default_factory=dict)     # Tianditu districts by adcode
    names: dict[str, str] = field(default_factory=dict)


def _metric(geoms):
    from layers.index import wgs84_to_metric
    return wgs84_to_metric(geoms)


def load_refs(shared: Path = SHARED) -> Refs:
    import geopandas as gpd
    b = shared / "data" / "boundaries"
    if not (b / "guangdong_province_tianditu.geojson").is_file():
        raise FileNotFoundError(f"{b}: the Tianditu boundaries (../shared) are needed to measure targeting")
    read = lambda p: gpd.read_file(p, engine="pyogrio").set_crs(4326, allow_override=True)
    ga = _metric(read(ROOT / "data/boundaries/guangdong_province_amap_wgs84.geojson").geometry.union_all())
    gt = _metric(read(b / "guangdong_province_tianditu.geojson").geometry.union_all())
    nb = read(NEIGHBOURS)
    nt = shapely.difference(_metric(nb.geometry.union_all()), shapely.union(ga, gt))
    da_df = read(ROOT / "data/boundaries/guangdong_district_amap_wgs84.geojson")
    dt_df = read(b / "guangdong_district_tianditu.geojson")
    key = lambda df: df["district_adcode"].astype("Int64").astype(str)
    da = dict(zip(key(da_df), _metric(da_df.geometry.to_numpy())))
    dt = dict(zip(key(dt_df), _metric(dt_df.geometry.to_numpy())))
    for g in (ga, gt, nt):
        shapely.prepare(g)
    return Refs(ga=ga, gt=gt, nt=nt, da=da, dt=dt, names=dict(zip(key(da_df), da_df["district_name"])))


# ---------------------------------------------------------------- the cases


def _boundary_points(refs: Refs, step_m: float = 250.0) -> dict[str, np.ndarray]:
    """Points (EPSG:4547) on Amap Guangdong's outline by zone: next to each neighbour, islands, open coast."""
    import geopandas as gpd
    nb = gpd.read_file(NEIGHBOURS, engine="pyogrio").set_crs(4326, allow_override=True)
    out: dict[str, list] = {z: [] for z in ZONES}
    parts = list(getattr(refs.ga, "geoms", [refs.ga]))
    mainland = max(parts, key=lambda p: p.area)
    for part in parts:
        pts = shapely.get_coordinates(shapely.segmentize(part.exterior, step_m))
        if part is not mainland:
            out["island"].append(pts)
            continue
        geoms = {NEIGHBOUR_ZONE[str(c)]: _metric(g) for c, g in zip(nb["province_adcode"], nb.geometry)}
        taken = np.zeros(len(pts), bool)
        for zone, g in geoms.items():
            near = shapely.distance(shapely.points(pts), g) < (25_000 if zone == "hainan" else 2_000)
            near &= ~taken
            out[zone].append(pts[near])
            taken |= near
        out["coast"].append(pts[~taken])
    return {z: np.concatenate(v) if v else np.empty((0, 2)) for z, v in out.items()}


def make_cases(refs: Refs, n: int, seed: int = 11) -> list[Case]:
    """n circles and polygons along the coast, islands and land borders, then every district once."""
    from layers.index import metric_to_wgs84
    rng = np.random.default_rng(seed)
    pts = _boundary_points(refs)
    zones = [z for z in ZONES if len(pts[z])]
    share = np.array([ZONES[z] for z in zones])
    cases: list[Case] = []
    while len(cases) < n:
        zone = rng.choice(zones, p=share / share.sum())
        x, y = pts[zone][rng.integers(len(pts[zone]))]
        ang, off = rng.uniform(0, 2 * math.pi), rng.uniform(0, 5000) * rng.uniform(0, 1)
        x, y = x + off * math.cos(ang), y + off * math.sin(ang)
        if rng.random() < 0.75:
            lon, lat = metric_to_wgs84(shapely.Point(x, y)).coords[0]
            cases.append(Case("circle", str(zone), lon, lat, radius_m=float(rng.choice(RADII_M))))
        else:
            k, size = int(rng.integers(4, 13)), float(rng.choice((1000, 3000, 8000, 15000, 25000)))
            angs = np.sort(rng.uniform(0, 2 * math.pi, k))
            rs = size * rng.uniform(0.4, 1.0, k)
            ring = Polygon(np.column_stack([x + rs * np.cos(angs), y + rs * np.sin(angs)]))
            if not ring.is_valid or ring.area < 1e4:
                continue
            w = metric_to_wgs84(ring)
            poly = [(round(la, 6), round(lo, 6)) for lo, la in w.exterior.coords]
            lon, lat = metric_to_wgs84(shapely.Point(x, y)).coords[0]
            cases.append(Case("polygon", str(zone), lon, lat, polygon=poly))
    for code, g in sorted(refs.da.items()):
        lon, lat = metric_to_wgs84(g.representative_point()).coords[0]
        cases.append(Case("district", "district", lon, lat, adcode=code, label=refs.names.get(code, "")))
    return cases


# ---------------------------------------------------------------- what a receiver reads, and the scores


def geodesic_circle(lat: float, lon: float, radius_m: float, n: int = 2048) -> Polygon:
    """A CAP <circle> as a receiver reads it (geodesic radius, WGS84), an n-gon fine to ~0.1 m; the bench's
    own, not the product's."""
    from pyproj import Geod
    az = np.linspace(0.0, 360.0, n, endpoint=False)
    x, y, _ = Geod(ellps="WGS84").fwd(np.full(n, lon), np.full(n, lat), az, np.full(n, float(radius_m)))
    return Polygon(np.column_stack([x, y]))


def received(area, fine_n: int = 2048):
    """The union of the CAP shapes of an AlertArea as a receiver reads them, EPSG:4547."""
    if area.polygon:
        rings = [area.polygon, *getattr(area, "more_polygons", ())]
        polys = [shapely.make_valid(Polygon([(round(lo, 5), round(la, 5)) for la, lo in r])) for r in rings]
        return shapely.union_all(_metric(shapely.segmentize(np.array(polys), 0.002)))
    lat, lon, r_km = area.circle
    return _metric(geodesic_circle(round(lat, 5), round(lon, 5), r_km * 1000, n=fine_n))


def requested(case: Case, refs: Refs):
    """The request as asked: the true circle, the officer's polygon (lat/lon edges), or the district."""
    if case.kind == "circle":
        return _metric(shapely.segmentize(geodesic_circle(case.lat, case.lon, case.radius_m, n=2048), 0.002))
    if case.kind == "polygon":
        return _metric(shapely.segmentize(Polygon([(lo, la) for la, lo in case.polygon]), 0.002))
    return shapely.union(refs.da[case.adcode], refs.dt.get(case.adcode, Polygon()))


def _local(refs: Refs, case: Case, req, pad: float = 2000.0) -> dict[str, Any]:
    """The references cut to the request's box (the scores then cost ms, not the whole province). For a
    district the request is the district by either set (a spill) or by both (land left out)."""
    x0, y0, x1, y1 = req.bounds
    ga, gt, nt = (shapely.make_valid(shapely.clip_by_rect(g, x0 - pad, y0 - pad, x1 + pad, y1 + pad))
                  for g in (refs.ga, refs.gt, refs.nt))
    either = shapely.union(ga, gt)
    if case.kind == "district":
        da, dt = refs.da[case.adcode], refs.dt.get(case.adcode, Polygon())
        inner, req_a, req_t = shapely.intersection(da, dt), da, dt
    else:
        inner = req_a = req_t = req
    return {"ga": ga, "gt": gt, "nt": nt, "either": either,
            # inscribed in the true 161 m buffer (0.8 m short at most): a spill is never under-counted
            "allowed": shapely.buffer(shapely.intersection(req, either), REACH_M, quad_segs=8),
            "allowed_strict": shapely.buffer(shapely.intersection(req_t, gt), REACH_M, quad_segs=8),
            "land_both": shapely.intersection(inner, shapely.intersection(ga, gt)),
            "land_t": shapely.intersection(req_t, gt), "land_a": shapely.intersection(req_a, ga)}


def _op(fn, a, b):
    """A GEOS overlay, retried on a 1 cm grid when the floating-point one fails (it can on slivers)."""
    try:
        return fn(a, b)
    except shapely.errors.GEOSException:
        return fn(a, b, grid_size=0.01)


def score(shape, loc: dict[str, Any], *, lean: bool = False) -> dict[str, float]:
    """km²: over-reach (agreed: by what it lands on; strict: Tianditu alone) and under-reach. ``lean``: the
    agreed figures only (half the overlays; the strict ones then read 0)."""
    dif, inter = shapely.difference, shapely.intersection
    over = _op(dif, shape, loc["allowed"])
    if lean:
        nb = _op(inter, over, loc["nt"]).area
        gd = _op(inter, over, loc["either"]).area
        return {"over": over.area * KM2, "over_neighbour": nb * KM2, "over_gd_outside_request": gd * KM2,
                "over_sea": max(0.0, over.area - nb - gd) * KM2, "over_strict": 0.0,
                "over_strict_neighbour": 0.0, "under": _op(dif, loc["land_both"], shape).area * KM2,
                "under_strict": 0.0, "under_build_set": 0.0}
    over_strict = _op(dif, shape, loc["allowed_strict"])
    nb = _op(inter, over, loc["nt"]).area
    gd = _op(inter, over, loc["either"]).area
    return {"over": over.area * KM2, "over_neighbour": nb * KM2, "over_gd_outside_request": gd * KM2,
            "over_sea": max(0.0, over.area - nb - gd) * KM2,
            "over_strict": over_strict.area * KM2,
            "over_strict_neighbour": _op(inter, over_strict, loc["nt"]).area * KM2,
            "under": _op(dif, loc["land_both"], shape).area * KM2,
            "under_strict": _op(dif, loc["land_t"], shape).area * KM2,
            "under_build_set": _op(dif, loc["land_a"], shape).area * KM2}


def _build(mod, case: Case):
    from incidents.model import Point
    p = Point(case.lon, case.lat)
    if case.kind == "circle":
        return mod.build_area(p, radius_m=case.radius_m, type="hazmat_leak", level="I")
    if case.kind == "polygon":
        return mod.build_area(p, polygon=case.polygon, type="fire", level="IV")
    return mod.build_area(p, type="flood", level="II")


def load_module(path: Path, name: str):
    spec = importlib.util.spec_from_file_location(name, path)
    mod = importlib.util.module_from_spec(spec)
    sys.modules[name] = mod
    spec.loader.exec_module(mod)
    return mod


def module_at_rev(rev: str):
    """command/alerts/area.py as it was at a git revision, imported under its own name."""
    src = subprocess.run(["git", "-C", str(ROOT), "show", f"{rev}:command/alerts/area.py"], check=True,
                         capture_output=True, text=True).stdout
    path = Path(tempfile.mkdtemp(prefix="yzt-area-")) / f"area_{rev}.py"
    path.write_text(src, encoding="utf-8")
    return load_module(path, f"area_at_{rev}")


# ---------------------------------------------------------------- the fuzz


def fuzz(modules: dict[str, Any], refs: Refs, cases: list[Case], *, ideal: bool = True,
         worst_n: int = 3) -> dict[str, Any]:
    """Every case through every module (and the ideal floor): totals, worst cases, build times."""
    return summarise(collect(modules, refs, cases, ideal=ideal), cases, worst_n=worst_n)


def collect(modules: dict[str, Any], refs: Refs, cases: list[Case], *, ideal: bool | int = True,
            checkpoint=None, lean: bool = False) -> dict:
    """The raw scores: {names, rows, times, refused, extra} (picklable, so shards can be merged).
    ``ideal``: score the floor on every case (True) or every n-th; ``checkpoint(raw, done)`` is called
    every 200 cases (a long run's partial results)."""
    from command.errors import AlertError
    names = list(modules) + (["ideal"] if ideal else [])
    rows: dict[str, list] = {k: [] for k in names}
    times: dict[str, dict[str, list]] = {k: {} for k in modules}
    refused = {k: 0 for k in names}
    extra: dict[str, dict[str, int]] = {k: {"rings_max": 0, "vertices_max": 0, "unit_440499": 0,
                                            "reach_over_161": 0} for k in modules}
    every = 1 if ideal is True else int(ideal)
    for i, case in enumerate(cases):
        if checkpoint and i and i % 200 == 0:
            checkpoint({"names": names, "rows": rows, "times": times, "refused": refused, "extra": extra}, i)
        req = requested(case, refs)
        loc = None
        for name, mod in modules.items():
            t0 = time.perf_counter()
            try:
                a = _build(mod, case)
            except AlertError:
                refused[name] += 1
                continue
            times[name].setdefault(case.kind, []).append(time.perf_counter() - t0)
            if loc is None:
                loc = _local(refs, case, req)
            rings = [a.polygon, *getattr(a, "more_polygons", ())] if a.polygon else []
            e = extra[name]
            e["rings_max"] = max(e["rings_max"], len(rings))
            e["vertices_max"] = max(e["vertices_max"], sum(len(r) for r in rings))
            e["unit_440499"] += any(u["adcode"] == "440499" for u in a.admin_units)
            e["reach_over_161"] += (getattr(a, "reach_m", None) or 0) > REACH_M
            rows[name].append((case, score(received(a), loc, lean=lean)))
        if ideal and loc is not None and (i % every == 0 or case.kind == "district"):
            if case.kind == "district":
                exact = refs.da[case.adcode]
            else:
                exact = shapely.intersection(req, refs.ga)
            if exact.is_empty:
                refused["ideal"] += 1
            else:
                rows["ideal"].append((case, score(exact, loc)))
    return {"names": names, "rows": rows, "times": times, "refused": refused, "extra": extra}


def merge(parts: list[dict]) -> dict:
    out = parts[0]
    for p in parts[1:]:
        for k in out["names"]:
            out["rows"][k] += p["rows"][k]
            out["refused"][k] += p["refused"][k]
        for k in out["times"]:
            for kind, v in p["times"][k].items():
                out["times"][k].setdefault(kind, []).extend(v)
            for e, v in p["extra"][k].items():
                out["extra"][k][e] = max(out["extra"][k][e], v) if e.endswith("_max") else out["extra"][k][e] + v
    return out


def summarise(raw: dict, cases: list[Case], *, worst_n: int = 3) -> dict[str, Any]:
    names, rows, times, refused, extra = (raw[k] for k in ("names", "rows", "times", "refused", "extra"))
    out: dict[str, Any] = {"cases": len(cases), "by_kind": {k: sum(c.kind == k for c in cases)
                                                            for k in ("circle", "polygon", "district")},
                           "by_zone": {z: sum(c.zone == z for c in cases) for z in [*ZONES, "district"]}}
    for name in names:
        r = rows[name]
        keys = list(r[0][1]) if r else []
        tot = {k: round(sum(s[k] for _, s in r), 3) for k in keys}
        sec: dict[str, Any] = {"built": len(r), "refused": refused[name], "total_km2": tot,
                               "cases_over_0.01km2": sum(s["over"] > 0.01 for _, s in r),
                               "cases_over_neighbour_0.01km2": sum(s["over_neighbour"] > 0.01 for _, s in r),
                               "cases_under_0.01km2": sum(s["under"] > 0.01 for _, s in r)}
        by_zone: dict[str, dict] = {}
        for c, s in r:
            z = by_zone.setdefault(c.zone, {"n": 0, "over": 0.0, "over_neighbour": 0.0, "under": 0.0})
            z["n"] += 1
            for k in ("over", "over_neighbour", "under"):
                z[k] += s[k]
        sec["by_zone_km2"] = {z: {k: round(v, 3) if isinstance(v, float) else v for k, v in d.items()}
                              for z, d in by_zone.items()}
        for k in ("over", "over_neighbour", "over_sea", "under", "over_strict", "under_strict"):
            top = sorted(r, key=lambda cs: -cs[1][k])[:worst_n]
            sec[f"worst_{k}"] = [{"km2": round(s[k], 3), "case": c.describe()} for c, s in top if s[k] > 0]
        if name in times:
            sec["build_ms"] = {kind: {"n": len(v), "p50": round(1000 * percentile(v, 50), 2),
                                      "p90": round(1000 * percentile(v, 90), 2),
                                      "p99": round(1000 * percentile(v, 99), 2),
                                      "max": round(1000 * max(v), 1)} for kind, v in times[name].items()}
            sec.update(extra[name])
        out[name] = sec
    return out


def run(results: Results | None = None, *, n: int = 10_000, seed: int = 11, before: Any = None,
        shared: Path = SHARED, shard: tuple[int, int] | None = None, raw_path: Path | None = None,
        ideal_every: bool | int = True, start: int = 0, lean: bool = False) -> dict[str, Any]:
    """The fuzz as a bench section ("targeting"); ``before``: an older area module to compare with.
    With ``shard`` (i, k): the raw scores of every k-th case from the i-th (see ``--merge``)."""
    from command.alerts import area as after
    try:
        refs = load_refs(shared)
    except FileNotFoundError as e:
        if results is not None:
            results.add("targeting", {"skipped": str(e)})
        return {"skipped": str(e)}
    cases = make_cases(refs, n, seed)
    if shard:
        cases = cases[start:][shard[0]::shard[1]]
    modules = {"after": after} if before is None else {"before": before, "after": after}
    from command.errors import AlertError
    for mod in modules.values():          # warm the caches outside the timings
        for c in cases[:3] + cases[-2:]:
            try:
                _build(mod, c)
            except AlertError:
                continue
    t0 = time.perf_counter()
    if shard:
        def save(raw: dict, done: int) -> None:
            import pickle
            raw = {**raw, "cases": cases[:done], "seed": seed, "reach_m": REACH_M,
                   "seconds": time.perf_counter() - t0, "method": METHOD, "done": done}
            tmp = raw_path.with_suffix(".tmp")
            tmp.write_bytes(pickle.dumps(raw))
            tmp.replace(raw_path)
        raw = collect(modules, refs, cases, ideal=ideal_every, checkpoint=save if raw_path else None,
                      lean=lean)
        save(raw, len(cases)) if raw_path else None
        raw.update({"cases": cases, "seed": seed, "reach_m": REACH_M, "seconds": time.perf_counter() - t0,
                    "method": METHOD, "done": len(cases)})
        return raw
    section = summarise(collect(modules, refs, cases, ideal=ideal_every), cases)
    section.update({"seed": seed, "reach_m": REACH_M, "seconds": round(time.perf_counter() - t0, 1),
                    "method": METHOD})
    if results is not None:
        results.add("targeting", section)
    return section


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(prog="python -m bench.targeting", description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=10_000, help="fuzzed circles and polygons (plus every district)")
    ap.add_argument("--seed", type=int, default=11)
    ap.add_argument("--before-rev", help="also measure command/alerts/area.py of this git revision")
    ap.add_argument("--before-file", type=Path, help="also measure this copy of an older area.py")
    ap.add_argument("--json", type=Path, help="write the section here as JSON")
    ap.add_argument("--shard", help="i/k: score only every k-th case from the i-th, raw scores to --raw")
    ap.add_argument("--raw", type=Path, help="the shard's raw scores (pickle)")
    ap.add_argument("--merge", type=Path, nargs="+", help="summarise these shards' raw scores")
    ap.add_argument("--ideal-every", type=int, default=1, help="score the ideal floor on every n-th case")
    ap.add_argument("--start", type=int, default=0, help="with --shard: skip the first cases")
    ap.add_argument("--lean", action="store_true", help="agreed figures only, no ideal floor (faster)")
    args = ap.parse_args(argv)
    if args.merge:
        import pickle
        parts = [pickle.loads(p.read_bytes()) for p in args.merge]
        cases = [c for p in parts for c in p["cases"][: p.get("done", len(p["cases"]))]]
        section = summarise(merge(parts), cases)
        section.update({k: parts[0][k] for k in ("seed", "reach_m", "method")})
        section["seconds"] = round(sum(p["seconds"] for p in parts), 1)
        text = json.dumps(section, ensure_ascii=False, indent=1)
        if args.json:
            args.json.write_text(text, encoding="utf-8")
        print(text)
        return section
    before = (load_module(args.before_file, "area_before") if args.before_file else
              module_at_rev(args.before_rev) if args.before_rev else None)
    if args.shard:
        import pickle
        i, k = map(int, args.shard.split("/"))
        return run(n=args.n, seed=args.seed, before=before, shard=(i, k), raw_path=args.raw,
                   ideal_every=False if args.lean else args.ideal_every, start=args.start, lean=args.lean)
    section = run(n=args.n, seed=args.seed, before=before, ideal_every=args.ideal_every)
    text = json.dumps(section, ensure_ascii=False, indent=1)
    if args.json:
        args.json.write_text(text, encoding="utf-8")
    print(text)
    return section


if __name__ == "__main__":
    main()
