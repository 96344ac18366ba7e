"""Seeded synthetic demo layers (fire stations, hospitals, cameras) and the real shelter layer.

No public source gives Guangdong's fire stations, hospitals or cameras with coordinates (see
data/SOURCES.md), so the demo layers are *modelled* from the real inputs of ``data/``: district
polygons, the 2020 census and the Futian OSM road graph. Every modelled row is marked synthetic.

    from layers import synth
    synth.generate_all(Path("data"))                 # writes data/layers/*.csv[.gz] + layers.json
    synth.generate_all(tmp, src=Path("data"), adcodes={"440304"})   # a subset, same rows as the full run

Models (constants below):
- fire_station: 城市消防站建设标准 (建标152): an urban station's district is at most ~7 km² so its
  edge is reached within 5 minutes. Built-up area = built-up population / 10,000 people per km²
  (capped at the district's area); urban stations = ceil(built-up km² / 7), at least 1 per district;
  rural stations (乡镇专职消防队) = round(rural km² / 200) where the census counts rural people.
  Placed by k-means over candidate points drawn inside the polygon, urban ones around the
  district's seat (Amap's label point, the government seat) and rural ones outside the urban core.
- hospital: one per ~120,000 residents, grades in China's national proportions (三级 ~12%, 二级
  ~40%, 一级 the rest; more 三级 in urban districts), at least one 二级 or better per district.
- camera: one per ~1,050 residents inside each district (about 120,000 in all), plus cameras spaced
  along the real Futian OSM drive roads, heading along the road (either direction, ± noise).
- shelter: the real 584 shelter points (not synthetic), named honestly: names are not public.

Determinism: every district draws from ``numpy.random.default_rng([layer seed, adcode])``, so the
rows of a district do not depend on which other districts are generated, and the same inputs give
the same bytes (camera.csv.gz is written with gzip mtime 0). 澳门大学横琴校区 (440499) gets no rows: it
has no census population and lies under Macao's jurisdiction.
"""
from __future__ import annotations

import ast
import gzip
import io
import json
import math
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import shapely
from pyproj import Transformer

from incidents import admin
from incidents.coords import transformer
from layers.errors import DataBuildError

SEEDS = {"fire_station": 440_001, "hospital": 440_002, "camera": 440_003}
DENSITY_PER_KM2 = 10_000          # built-up residents per km² (urban planning rule of thumb)
URBAN_KM2_PER_STATION = 7.0       # 城市消防站建设标准: a station's district <= 7 km²
RURAL_KM2_PER_STATION = 200.0     # one rural/township station per ~200 km² of rural land
PEOPLE_PER_HOSPITAL = 120_000
PEOPLE_PER_CAMERA = 1_050         # ~120,000 cameras for 126 million residents
GRADE_SHARES = {"三级": 0.12, "二级": 0.40}   # national 2020 shares among graded hospitals; 一级 the rest
BEDS = {"三级": (500, 2500), "二级": (100, 499), "一级": (20, 99)}
ROAD_SPACING_M = {"motorway": 80, "trunk": 60, "primary": 60, "secondary": 80, "tertiary": 100,
                  "unclassified": 150, "residential": 150, "living_street": 150}
EXCLUDED_ADCODES = {"440499"}     # 澳门大学横琴校区: no census row, Macao jurisdiction
DECIMALS = 6
GRAPH_FILE = "roads/shenzhen_futian_osm_network.graphml"
SHELTER_FILE = "facilities/shelters_sz_gz_geocoded_2020_unnamed.csv"
WGS84, METRIC = admin.WGS84, admin.METRIC


@dataclass(frozen=True)
class District:
    """One district's real inputs for the models."""

    adcode: str
    name: str
    city: str
    population: float
    rural: float
    built_up: float          # estimated built-up (城区) population
    area_km2: float
    seat: tuple[float, float]  # WGS84, Amap label point = government seat
    geometry: object          # WGS84 polygon
    enclaves: object          # smaller units inside this polygon (points there belong to them)

    @property
    def built_up_km2(self) -> float:
        return min(self.built_up / DENSITY_PER_KM2, self.area_km2)

    @property
    def core_radius_m(self) -> float:
        return math.sqrt(max(self.built_up_km2, 1.0) / math.pi) * 1000.0


def _built_up_population(census: pd.DataFrame) -> dict[str, float]:
    """Built-up population per county. The census gives it for cities and county-level cities only;
    the rest of a city's built-up population is shared among its other counties by urban population."""
    counties = census[census["level"] == "county"]
    out: dict[str, float] = {}
    for city_code, group in counties.groupby(counties["adcode"].str[:4]):
        city_row = census.loc[city_code + "00"]
        known = group[group["built_up"].notna()]
        out.update(known["built_up"].astype(float).to_dict())
        rest = group[group["built_up"].isna()]
        residual = max(float(city_row["built_up"]) - float(known["built_up"].sum()), 0.0)
        urban = rest["urban"].astype(float)
        share = urban / urban.sum() if urban.sum() > 0 else urban * 0
        out.update(np.minimum(share * residual, urban).to_dict())
    for code in ("441900", "442000"):  # 东莞, 中山: cities without districts
        if code in census.index:
            out[code] = float(census.loc[code, "built_up"])
    return out


def district_inputs(root: Path, adcodes: set[str] | None = None) -> list[District]:
    """The districts of ``root`` (a data dir) with census figures, seat and enclaves."""
    gdf = admin.districts(root)
    census = admin.census(root)
    units = admin.units(root)
    seats = units[units["level"] == "district"].set_index("adcode")
    built = _built_up_population(census)
    reps = gdf.geometry.representative_point()
    out = []
    for i, row in gdf.iterrows():
        code = row["district_adcode"]
        if code in EXCLUDED_ADCODES or (adcodes is not None and code not in adcodes):
            continue
        if code not in census.index:
            raise DataBuildError(f"district {code} {row['district_name']} has no census row")
        c = census.loc[code]
        inner = [g for j, g in gdf.geometry.items()
                 if j != i and gdf.at[j, "area_km2"] < row["area_km2"] and row.geometry.contains(reps[j])]
        seat = seats.loc[code, ["lon_amap_wgs84", "lat_amap_wgs84"]].to_numpy(float)
        out.append(District(code, row["district_name"], row["city_name"], float(c["population"]),
                            float(c["rural"]), float(built.get(code, c["urban"])), float(row["area_km2"]),
                            (float(seat[0]), float(seat[1])), row.geometry,
                            shapely.union_all(inner) if inner else None))
    return out


def _to_m() -> Transformer:
    return transformer(WGS84, METRIC)       # the process's one for the pair (incidents.coords)


def _to_deg() -> Transformer:
    return transformer(METRIC, WGS84)


class Sampler:
    """Draws WGS84 points (rounded to DECIMALS) inside one district, outside its enclaves and in Guangdong."""

    def __init__(self, district: District, province):
        self.d = district
        self.province = province
        shapely.prepare(district.geometry)
        if district.enclaves is not None:
            shapely.prepare(district.enclaves)

    def keep(self, lon: np.ndarray, lat: np.ndarray) -> np.ndarray:
        ok = shapely.contains_xy(self.d.geometry, lon, lat) & shapely.contains_xy(self.province, lon, lat)
        if self.d.enclaves is not None:
            ok &= ~shapely.intersects_xy(self.d.enclaves, lon, lat)
        return ok

    def _fill(self, rng: np.random.Generator, n: int, draw) -> np.ndarray:
        got, total, batch = [], 0, max(64, 2 * n)
        for _ in range(200):
            if total >= n:
                break
            lon, lat = draw(rng, batch)
            lon, lat = np.round(lon, DECIMALS), np.round(lat, DECIMALS)
            ok = self.keep(lon, lat)
            got.append(np.column_stack([lon[ok], lat[ok]]))
            total += int(ok.sum())
            batch = min(max(64, int(2 * (n - total) * batch / max(ok.sum(), 1))), 2_000_000)
        pts = np.concatenate(got) if got else np.empty((0, 2))
        if len(pts) < n:
            raise DataBuildError(f"{self.d.name} ({self.d.adcode}): could not place {n} points inside it")
        return pts[:n]

    def uniform(self, rng: np.random.Generator, n: int) -> np.ndarray:
        x0, y0, x1, y1 = self.d.geometry.bounds
        return self._fill(rng, n, lambda r, m: (r.uniform(x0, x1, m), r.uniform(y0, y1, m)))

    def around_seat(self, rng: np.random.Generator, n: int, sigma_m: float) -> np.ndarray:
        """Points from a 2-D Gaussian (sigma in metres) around the seat, kept inside the district."""
        sx, sy = _to_m().transform(*self.d.seat)

        def draw(r, m):
            return _to_deg().transform(r.normal(sx, sigma_m, m), r.normal(sy, sigma_m, m))
        return self._fill(rng, n, draw)

    def mixture(self, rng: np.random.Generator, n: int, sigma_m: float, uniform_share: float) -> np.ndarray:
        n_uni = int(round(n * uniform_share))
        pts = np.concatenate([self.around_seat(rng, n - n_uni, sigma_m), self.uniform(rng, n_uni)])
        return pts[rng.permutation(n)]

    def spread(self, rng: np.random.Generator, candidates: np.ndarray, k: int) -> np.ndarray:
        """k points spread over the candidates: k-means centres snapped to distinct candidates."""
        xy = np.column_stack(_to_m().transform(candidates[:, 0], candidates[:, 1]))
        if k >= len(xy):
            return candidates[:k]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            from scipy.cluster.vq import kmeans2
            centres, _ = kmeans2(xy, k, iter=25, minit="++", rng=rng)
        chosen: list[int] = []
        for c in centres:
            order = np.argsort(np.hypot(xy[:, 0] - c[0], xy[:, 1] - c[1]))
            chosen.append(next(int(j) for j in order if int(j) not in chosen))
        return candidates[chosen]


def _rng(layer: str, adcode: str) -> np.random.Generator:
    return np.random.default_rng([SEEDS[layer], int(adcode)])


def fire_stations(districts: list[District], province) -> pd.DataFrame:
    rows = []
    for d in districts:
        rng, s = _rng("fire_station", d.adcode), Sampler(d, province)
        n_urban = max(1, math.ceil(d.built_up_km2 / URBAN_KM2_PER_STATION))
        rural_km2 = max(d.area_km2 - d.built_up_km2, 0.0)
        n_rural = int(round(rural_km2 / RURAL_KM2_PER_STATION)) if d.rural > 0 else 0
        cand = s.around_seat(rng, max(300, 40 * n_urban), max(d.core_radius_m / 1.5, 800.0))
        placed = [(p, "urban") for p in s.spread(rng, cand, n_urban)]
        if n_rural:
            cand = s.uniform(rng, max(300, 40 * n_rural))
            far = _metres_from_seat(d, cand) > d.core_radius_m
            cand = cand[far] if far.sum() >= 2 * n_rural else cand
            placed += [(p, "rural") for p in s.spread(rng, cand, n_rural)]
        for i, (p, kind) in enumerate(placed, start=1):
            label = "消防救援站" if kind == "urban" else "乡镇消防站"
            rows.append({"id": f"FS-{d.adcode}-{i:03d}", "name": f"{d.name}{label} {i} (模拟)",
                         "lon": p[0], "lat": p[1], "district_adcode": d.adcode, "city": d.city,
                         "kind": kind})
    return pd.DataFrame(rows, columns=["id", "name", "lon", "lat", "district_adcode", "city", "kind"])


def _metres_from_seat(d: District, pts: np.ndarray) -> np.ndarray:
    x, y = _to_m().transform(pts[:, 0], pts[:, 1])
    sx, sy = _to_m().transform(*d.seat)
    return np.hypot(np.asarray(x) - sx, np.asarray(y) - sy)


def _grades(d: District, n: int) -> list[str]:
    urban_share = 1.0 - d.rural / d.population if d.population else 0.0
    n3 = int(round(n * GRADE_SHARES["三级"] * (1.5 if urban_share > 0.9 else 0.7)))
    n2 = max(1 if n3 == 0 else 0, int(round(n * GRADE_SHARES["二级"])))
    n3 = min(n3, n)
    n2 = min(n2, n - n3)
    return ["三级"] * n3 + ["二级"] * n2 + ["一级"] * (n - n3 - n2)


def hospitals(districts: list[District], province) -> pd.DataFrame:
    rows = []
    for d in districts:
        rng, s = _rng("hospital", d.adcode), Sampler(d, province)
        grades = _grades(d, max(1, int(round(d.population / PEOPLE_PER_HOSPITAL))))
        high = sum(g != "一级" for g in grades)
        sigma = max(d.core_radius_m / 1.2, 1000.0)
        pts = s.around_seat(rng, high, sigma)
        if len(grades) > high:
            pts = np.concatenate([pts, s.mixture(rng, len(grades) - high, 2 * sigma, 0.5)])
        for i, (g, p) in enumerate(zip(grades, pts), start=1):
            lo, hi = BEDS[g]
            rows.append({"id": f"H-{d.adcode}-{i:03d}", "name": f"{d.name}模拟医院 {i} ({g})",
                         "lon": p[0], "lat": p[1], "grade": g, "beds": int(rng.integers(lo, hi + 1)),
                         "district_adcode": d.adcode, "city": d.city})
    return pd.DataFrame(rows, columns=["id", "name", "lon", "lat", "grade", "beds", "district_adcode", "city"])


def _first(value: str | None) -> str:
    """OSMnx writes lists as their repr: "['primary', 'trunk']" -> 'primary'."""
    if not value:
        return ""
    if value.startswith("["):
        items = ast.literal_eval(value)
        return str(items[0]) if items else ""
    return value


def road_cameras(graph_path: Path) -> pd.DataFrame:
    """Cameras spaced along the drive roads of the real OSM graph: lon, lat, heading_deg, fov_deg, on_road.
    Each undirected road piece once; all draws come from one stream, before any district filter."""
    import networkx as nx       # only `yzt data build` reads the graph here
    g = nx.read_graphml(graph_path)
    rng = np.random.default_rng([SEEDS["camera"], 0])
    to_m = _to_m()
    seen, rows = set(), []
    for u, v, k, e in sorted(g.edges(keys=True, data=True), key=lambda t: (t[0], t[1], t[2])):
        hw = _first(e.get("highway")).removesuffix("_link")
        spacing = ROAD_SPACING_M.get(hw)
        key = (min(u, v), max(u, v), round(float(e.get("length", 0))))
        if spacing is None or key in seen:
            continue
        seen.add(key)
        if "geometry" in e:
            line = shapely.from_wkt(e["geometry"])
        else:
            line = shapely.LineString([(float(g.nodes[n]["x"]), float(g.nodes[n]["y"])) for n in (u, v)])
        xs, ys = to_m.transform(*np.asarray(line.coords).T)
        line_m = shapely.LineString(np.column_stack([xs, ys]))
        offsets = np.arange(spacing / 2, line_m.length, spacing)
        if offsets.size == 0:
            continue
        a = shapely.get_coordinates(shapely.line_interpolate_point(line_m, np.maximum(offsets - 1, 0)))
        b = shapely.get_coordinates(shapely.line_interpolate_point(line_m, np.minimum(offsets + 1, line_m.length)))
        bearing = np.degrees(np.arctan2(b[:, 0] - a[:, 0], b[:, 1] - a[:, 1]))
        flip = rng.integers(0, 2, offsets.size) * 180
        heading = np.mod(bearing + flip + rng.normal(0, 10, offsets.size), 360)
        mid = (a + b) / 2
        lon, lat = _to_deg().transform(mid[:, 0], mid[:, 1])
        for j in range(offsets.size):
            rows.append((round(float(lon[j]), DECIMALS), round(float(lat[j]), DECIMALS),
                         round(float(heading[j]), 1), int(rng.integers(60, 91)), _first(e.get("name"))))
    return pd.DataFrame(rows, columns=["lon", "lat", "heading_deg", "fov_deg", "on_road"])


def _assign_districts(df: pd.DataFrame, districts: list[District], province) -> pd.Series:
    code = pd.Series("", index=df.index, dtype=object)
    lon, lat = df["lon"].to_numpy(), df["lat"].to_numpy()
    for d in districts:
        code[Sampler(d, province).keep(lon, lat)] = d.adcode
    return code


def cameras(districts: list[District], province, graph_path: Path) -> pd.DataFrame:
    road = road_cameras(graph_path)
    road["district_adcode"] = _assign_districts(road, districts, province)
    frames = []
    for d in districts:
        rng, s = _rng("camera", d.adcode), Sampler(d, province)
        on_road = road[road["district_adcode"] == d.adcode].copy()
        on_road["kind"] = "road"
        n = int(round(d.population / PEOPLE_PER_CAMERA))
        rural_share = d.rural / d.population if d.population else 0.0
        pts = s.mixture(rng, n, max(d.core_radius_m, 1000.0), 0.15 + 0.6 * rural_share)
        area = pd.DataFrame({"lon": pts[:, 0], "lat": pts[:, 1],
                             "heading_deg": np.round(rng.uniform(0, 360, n), 1),
                             "fov_deg": rng.integers(60, 111, n), "on_road": "",
                             "district_adcode": d.adcode, "kind": "area"})
        both = pd.concat([on_road, area], ignore_index=True)
        num = [f"{i:05d}" for i in range(1, len(both) + 1)]
        both["id"] = [f"CAM-{d.adcode}-{k}" for k in num]
        both["name"] = [f"{d.name} {r + ' ' if r else ''}摄像机 {k}" for r, k in zip(both["on_road"], num)]
        frames.append(both)
    out = pd.concat(frames, ignore_index=True)
    out["stream_url"] = ""   # there are no real streams; the dashboard shows a simulated feed
    return out[["id", "name", "lon", "lat", "heading_deg", "fov_deg", "district_adcode", "on_road",
                "stream_url", "kind"]]


def shelters(root: Path) -> pd.DataFrame:
    """The real shelter points (WGS84 columns of the source), named honestly."""
    df = pd.read_csv(root / SHELTER_FILE, dtype={"sid": str, "district_adcode": str})
    return pd.DataFrame({
        "id": "SH-" + df["sid"], "name": "应急避难场所 " + df["sid"] + " (名称未公开)",
        "lon": df["lon_wgs84"].round(7), "lat": df["lat_wgs84"].round(7),
        "district_adcode": df["district_adcode"], "city": df["city"],
        "lon_gcj02": df["lon_gcj02"], "lat_gcj02": df["lat_gcj02"],
        "quality_flag": df["quality_flag"].fillna("")})


def _csv_bytes(df: pd.DataFrame, decimals: int) -> bytes:
    df = df.copy()
    for col in ("lon", "lat"):  # fixed decimals for coordinates; other numbers as pandas writes them
        df[col] = df[col].map(f"{{:.{decimals}f}}".format)
    buf = io.StringIO()
    df.to_csv(buf, index=False, lineterminator="\n")
    return buf.getvalue().encode("utf-8")


def write_table(df: pd.DataFrame, path: Path, *, decimals: int = DECIMALS) -> Path:
    """CSV (or .csv.gz with mtime 0): same frame, same bytes. Written to a temp file, then renamed."""
    data = _csv_bytes(df, decimals)
    if path.name.endswith(".gz"):
        out = io.BytesIO()
        with gzip.GzipFile(filename="", mode="wb", fileobj=out, mtime=0, compresslevel=9) as gz:
            gz.write(data)
        data = out.getvalue()
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(data)
    tmp.replace(path)
    return path


def generate_all(out_dir: Path, *, src: Path | None = None, adcodes: set[str] | None = None) -> list[Path]:
    """Write the layers and their manifest into ``out_dir/layers/`` from the real inputs in ``src``
    (default ``out_dir``). ``adcodes`` limits the synthetic layers to those districts (for tests)."""
    from layers.catalog import MANIFEST_NAME, SHIPPED

    src = Path(src or out_dir)
    missing = [f for f in (GRAPH_FILE, SHELTER_FILE, admin.CENSUS_FILE, admin.BOUNDARY_FILES["district"])
               if not (src / f).is_file()]
    if missing:
        raise DataBuildError(f"{src}: missing input {missing[0]} (run layers.build first)")
    layer_dir = Path(out_dir) / "layers"
    layer_dir.mkdir(parents=True, exist_ok=True)
    districts = district_inputs(src, adcodes)
    province = admin.province_shape(src)
    frames = {"fire_station": fire_stations(districts, province),
              "hospital": hospitals(districts, province),
              "camera": cameras(districts, province, src / GRAPH_FILE),
              "shelter": shelters(src)}
    written, manifest = [], {}
    for name, df in frames.items():
        meta = dict(SHIPPED[name])
        written.append(write_table(df, layer_dir / meta["file"], decimals=7 if name == "shelter" else DECIMALS))
        manifest[name] = {**meta, "rows": len(df)}
    path = layer_dir / MANIFEST_NAME
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(manifest, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    tmp.replace(path)
    return [*written, path]
