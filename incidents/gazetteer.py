"""The offline gazetteer: every Guangdong place name the geocoder knows, indexed for substring scans.

    from incidents.gazetteer import gazetteer
    g = gazetteer()                       # built once per process and data directory (lazy)
    g.scan("广州市天河区天河路")           # -> [Mention(start, end, alias, hits=[(Place, strong)])]
    g.district("440106")                  # -> Place of 天河区

Sources (all in data/, see data/SOURCES.md):
- gazetteer/guangdong_admin_units.csv: province, 21 cities, 125 districts with inner points and areas (WGS84);
- gazetteer/guangdong_townships_nbs2023.csv + guangdong_township_points.csv: 1,757 townships, 1,571 with a
  centre point (Vonng/adcode from Amap, GCJ-02 converted to WGS84; else GeoNames; else the median of its
  community points);
- gazetteer/guangdong_villages_communities_nbs2023.csv + guangdong_community_points_vonng.csv: 26,842
  communities/villages, 3,958 with a point (Vonng/adcode);
- gazetteer/guangdong_geonames_places.csv: GeoNames populated places with Chinese names, kept as level
  "place" where they are not one of the townships above (old town names, villages);
- roads/shenzhen_futian_osm_network.graphml: named OSM roads of southern Futian (ODbL).

A place without a point of its own carries the point of the nearest coarser unit that has one (a community
its township's, a township its district's inner point); ``point_level`` says whose point it is.

Uncertainty (``uncertainty_m``, metres): the radius around the point within which the place lies, from the data:
- district, city, province: the covering radius, the largest distance from the unit's inner point to its
  outline (EPSG:4547): every place of the unit lies within it;
- township: r_unit + e. r_unit = k * the radius of a circle of the township's mean area (its district's area
  shared by its NBS townships), where k (``spread_factor``, ~1.7) is the median over the 125 districts of
  covering radius / equal-area radius: how much farther than that radius a unit's places reach. e is how far
  the two township sources disagree for this township (``agree_m``), or where only one source has it, the
  median disagreement over all 1,159 townships both place (753 m);
- community: k * the radius of its share of its township's area (that area shared by the township's NBS
  communities) plus the township's e (one source only: its error is taken to be the town sources'); a point
  that another community shares (a source fallback) takes its township's uncertainty;
- place (GeoNames): the median disagreement plus r_unit of a mean township of its district;
- road: the largest distance from the road's point (the midpoint of its longest piece) to any point of it.
Each name is stored under its official form (strong) and, where people say it, a short form (weak):
天河区/天河, 沙面街道/沙面, 翠洲社区居民委员会 -> 翠洲社区, 永兴村委会 -> 永兴村.
Scanning is one Aho-Corasick automaton over every name (leftmost-longest): one pass per text, or per batch.
"""
from __future__ import annotations

import ast
import functools
import math
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import pandas as pd
from ahocorasick_rs import AhoCorasick, MatchKind

from incidents.roads import ROAD_FILE, read_graph
from settings import ROOT

LEVELS_FINE_TO_COARSE = ("road", "community", "place", "township", "district", "city", "province")
TOWNSHIP_FILE = "gazetteer/guangdong_townships_nbs2023.csv"
COMMUNITY_FILE = "gazetteer/guangdong_villages_communities_nbs2023.csv"
UNITS_FILE = "gazetteer/guangdong_admin_units.csv"
TOWN_POINTS_FILE = "gazetteer/guangdong_township_points.csv"
COMMUNITY_POINTS_FILE = "gazetteer/guangdong_community_points_vonng.csv"
PLACES_FILE = "gazetteer/guangdong_geonames_places.csv"
DEFAULT_DATA_DIR = ROOT / "data"   # the bundled data; another folder is passed as ``root``
METRIC = "EPSG:4547"               # CGCS2000 / 3-degree GK CM 114E (metres), as incidents.admin

# Other province-level units of China (GB/T 2260), full and short forms: an address naming one first
# is refused as outside Guangdong.
OTHER_PROVINCES = (
    "北京市 天津市 河北省 山西省 内蒙古自治区 辽宁省 吉林省 黑龙江省 上海市 江苏省 浙江省 安徽省 福建省 江西省 "
    "山东省 河南省 湖北省 湖南省 广西壮族自治区 海南省 重庆市 四川省 贵州省 云南省 西藏自治区 陕西省 甘肃省 "
    "青海省 宁夏回族自治区 新疆维吾尔自治区 台湾省 香港特别行政区 澳门特别行政区").split()
_PROVINCE_SUFFIXES = ("壮族自治区", "回族自治区", "维吾尔自治区", "特别行政区", "自治区", "省", "市")
_COMMUNITY_SUFFIXES = (("社区居民委员会", "社区"), ("村民委员会", "村"), ("居民委员会", "社区"),
                       ("社区居委会", "社区"), ("居委会", "社区"), ("村委会", "村"))
_TOWN_SUFFIXES = ("街道办事处", "街道", "镇", "乡")


@dataclass(frozen=True, slots=True)
class Place:
    """A named place. lon/lat are WGS84: its own point, or a coarser unit's (``point_level`` says whose)."""

    level: str                    # province | city | district | township | community | place | road | foreign
    name: str                     # official name: 天河区, 沙面街道, 翠洲社区居民委员会, 景田路
    full: str                     # 广东省广州市天河区, 广州市荔湾区沙面街道翠洲社区
    lon: float
    lat: float
    code: str                     # adcode / NBS code / "road:<name>"
    district_adcode: str | None = None
    city_adcode: str | None = None
    district_name: str | None = None
    city_name: str | None = None
    township_code: str | None = None
    population: float = 0.0       # of its district (2020 census), a prior between same-named places
    point_level: str = ""         # whose point lon/lat is: its own level, or township/district (fallback)
    uncertainty_m: float = 0.0    # radius around lon/lat within which the place lies (module docstring)


class Mention(NamedTuple):
    """One name found in a text (a named tuple: a scan makes one per name said, cheaply)."""

    start: int
    end: int
    alias: str
    hits: tuple[tuple[Place, bool], ...]   # (place, strong alias?)


class Gazetteer:
    """Names -> places, with the lookups the geocoder needs."""

    def __init__(self) -> None:
        self.index: dict[str, list[tuple[Place, bool]]] = defaultdict(list)
        self.names: list[str] = []                       # set by freeze(): the automaton's patterns
        self.hits: list[tuple[tuple[Place, bool], ...]] = []
        self.automaton: AhoCorasick | None = None
        self.districts: dict[str, Place] = {}
        self.cities: dict[str, Place] = {}
        self.province: Place | None = None
        self.towns: dict[str, Place] = {}
        # district adcode -> (township places with a point of their own, their x and y in METRIC)
        self.town_points: dict[str, tuple[list[Place], Any, Any]] = {}
        self.median_agree_m: float = 0.0                 # median disagreement of the two township sources
        self.town_error_m: dict[str, float] = {}         # township code -> its point's error e (metres)
        self.towns_per_district: dict[str, int] = {}
        self.district_area_km2: dict[str, float] = {}
        # median over the districts of (covering radius / radius of a circle of the same area): how much farther
        # than the equal-area radius a unit's places reach from its centre; applied to units without an outline
        self.spread_factor: float = 1.0

    # ------------------------------------------------------------------ building
    def add(self, alias: str, place: Place, strong: bool) -> None:
        if len(alias) < 2:
            return
        hits = self.index[alias]
        for i, (p, s) in enumerate(hits):
            if p.code == place.code and p.level == place.level:
                if strong and not s:
                    hits[i] = (p, True)
                return
        hits.append((place, strong))

    def freeze(self) -> None:
        # one Aho-Corasick automaton (Rust, ahocorasick-rs) over every name, leftmost-longest: a text is scanned
        # in one call, whatever the number of names; ``names[i]``/``hits[i]`` are pattern i's alias and places
        self.index = dict(self.index)
        self.names = list(self.index)
        self.hits = [tuple(self.index[a]) for a in self.names]
        self.automaton = AhoCorasick(self.names, matchkind=MatchKind.LeftmostLongest)

    # ------------------------------------------------------------------ lookups
    def district(self, adcode: str) -> Place | None:
        return self.districts.get(adcode)

    def nearest_township(self, district_adcode: str, lon: float, lat: float) -> tuple[Place, float] | None:
        """The township of the district whose centre point is nearest the WGS84 point, and the distance in
        metres (measured in EPSG:4547). Approximate: without township boundaries the nearest centre is not
        always the township the point lies in."""
        entry = self.town_points.get(district_adcode)
        if not entry:
            return None
        places, xs, ys = entry
        x, y = _to_metric().transform(lon, lat)
        d2 = (xs - x) ** 2 + (ys - y) ** 2
        i = int(d2.argmin())
        return places[i], float(d2[i] ** 0.5)

    def scan(self, text: str) -> list[Mention]:
        """Leftmost-longest non-overlapping matches of known names in ``text``."""
        names, hits = self.names, self.hits
        return [Mention(s, e, names[i], hits[i]) for i, s, e in self.automaton.find_matches_as_indexes(text)]

    def matches_many(self, texts: list[str]) -> list[list[tuple[int, int, int]]]:
        """For each text, its leftmost-longest matches as (pattern, start, end): ``names[pattern]`` and
        ``hits[pattern]`` are what ``scan`` puts in its Mention (the automaton's own tuples, no Mention made).
        One call per text: the automaton's tuples come back as they are, cheaper than splitting one pass."""
        if self.automaton is None:
            self.scan("")                 # a gazetteer frozen on its first scan (gazetteer_cache.Loaded) is so now
        find = self.automaton.find_matches_as_indexes
        return [find(t) for t in texts]

    def scan_many(self, texts: list[str]) -> list[list[Mention]]:
        """``scan`` of each text, in one pass of the automaton over them all (joined by a newline, which no name
        holds, so no match spans two texts)."""
        if any("\n" in t for t in texts):
            return [self.scan(t) for t in texts]
        out: list[list[Mention]] = [[] for _ in texts]
        if not texts:
            return out
        ends, pos = [], 0
        for t in texts:
            pos += len(t)
            ends.append(pos)
            pos += 1
        names, hits = self.names, self.hits
        k, end, base = 0, ends[0], 0
        for i, s, e in self.automaton.find_matches_as_indexes("\n".join(texts)):
            while s >= end:
                base = end + 1
                k += 1
                end = ends[k]
            out[k].append(Mention(s - base, e - base, names[i], hits[i]))
        return out


def _short_district(name: str, short_name: str) -> str | None:
    base = short_name if isinstance(short_name, str) and len(short_name) < len(name) else name
    if base.endswith(("区", "县", "市")) and len(base) >= 3:
        return base[:-1]
    return None


def _community_alias(name: str) -> str:
    for suffix, spoken in _COMMUNITY_SUFFIXES:
        if name.endswith(suffix) and len(name) > len(suffix):
            base = name[: -len(suffix)]
            return base if base.endswith(spoken) else base + spoken
    return name


def _radius_m(area_km2: float) -> float:
    """Radius of a circle of that area, in metres."""
    return math.sqrt(max(float(area_km2), 0.0) * 1e6 / math.pi)


@functools.lru_cache(maxsize=1)
def _to_metric():
    from pyproj import Transformer
    return Transformer.from_crs("EPSG:4326", METRIC, always_xy=True)


def _covering_radii(root: Path) -> dict[str, float]:
    """adcode -> the largest distance (m, EPSG:4547) from the unit's inner point to its outline: every place
    of the unit lies within it."""
    import shapely
    from incidents import admin
    out: dict[str, float] = {}
    units = admin.units(root).set_index("adcode")
    for level, frame, col in (("province", admin.province(root), "province_adcode"),
                              ("city", admin.cities(root), "city_adcode"),
                              ("district", admin.districts(root), "district_adcode")):
        metric = frame.to_crs(METRIC)
        for code, geom in zip(frame[col].astype(str), metric.geometry):
            if code not in units.index:
                continue
            row = units.loc[code]
            if isinstance(row, pd.DataFrame):
                row = row.iloc[0]
            x, y = _to_metric().transform(float(row["inner_point_lon"]), float(row["inner_point_lat"]))
            xy = shapely.get_coordinates(geom)         # the farthest place of a polygon is one of its vertices
            out[code] = float(np.sqrt(((xy - (x, y)) ** 2).sum(axis=1)).max())
    return out


def _admin(g: Gazetteer, root: Path, population: dict[str, float]) -> None:
    df = pd.read_csv(root / UNITS_FILE, dtype={"adcode": str})
    df["city_adcode"] = df["city_adcode"].astype("Int64").astype(str).replace("<NA>", None)
    covering = _covering_radii(root)
    ratios = [covering[c] / _radius_m(a) for c, a, lv in zip(df.adcode, df.area_km2, df.level)
              if lv == "district" and c in covering and a > 0]
    g.spread_factor = float(np.median(ratios)) if ratios else 1.0
    for r in df.itertuples(index=False):
        lon, lat = float(r.inner_point_lon), float(r.inner_point_lat)
        unc = covering.get(r.adcode, _radius_m(r.area_km2))
        if r.level == "province":
            g.province = Place("province", r.name, r.name, lon, lat, r.adcode, point_level="province",
                               uncertainty_m=unc)
            g.add(r.name, g.province, True)
            g.add(r.name.removesuffix("省"), g.province, False)
        elif r.level == "city":
            p = Place("city", r.name, r.province_name + r.name, lon, lat, r.adcode, city_adcode=r.adcode,
                      city_name=r.name, population=population.get(r.adcode, 0.0), point_level="city",
                      uncertainty_m=unc)
            g.cities[r.adcode] = p
        else:
            p = Place("district", r.name, r.province_name + (r.city_name if r.city_name != r.name else "")
                      + r.name, lon, lat, r.adcode, r.adcode, r.city_adcode, r.name, r.city_name,
                      population=population.get(r.adcode, population.get(r.city_adcode, 0.0)),
                      point_level="district", uncertainty_m=unc)
            g.districts[r.adcode] = p
            g.add(r.name, p, len(r.name) >= 3)     # 城区 (汕尾) is too generic to stand alone
            if isinstance(r.short_name, str) and r.short_name != r.name and len(r.short_name) >= 3:
                g.add(r.short_name, p, True)       # 乳源县 for 乳源瑶族自治县
            short = _short_district(r.name, r.short_name)
            if short:
                g.add(short, p, False)
            if r.adcode == "440499":
                g.add("澳门大学", p, True)
    g.district_area_km2 = dict(zip(df.adcode, df.area_km2.astype(float)))
    for adcode, p in g.cities.items():
        # 东莞市 and 中山市 have no districts: the city name means the district-level unit itself.
        target = g.districts.get(adcode, p)
        g.add(p.name, target, True)
        g.add(p.name.removesuffix("市"), target, False)


def _town_alias(name: str) -> str | None:
    for suffix in _TOWN_SUFFIXES:
        if name.endswith(suffix) and len(name) - len(suffix) >= 2:
            return name[: -len(suffix)]
    return None


def _townships(g: Gazetteer, root: Path) -> dict[str, Place]:
    df = pd.read_csv(root / TOWNSHIP_FILE, dtype=str)
    pts = pd.read_csv(root / TOWN_POINTS_FILE, dtype={"code": str}, usecols=["code", "lon", "lat", "agree_m"])
    agree = pts["agree_m"].dropna()
    point = {c: (float(x), float(y), float(a)) for c, x, y, a in zip(pts.code, pts.lon, pts.lat, pts.agree_m)
             if pd.notna(x) and pd.notna(y)}
    g.median_agree_m = float(agree.median()) if len(agree) else 0.0
    per_district = df.groupby("areaCode").size().to_dict()
    g.towns_per_district = per_district
    towns: dict[str, Place] = {}
    for r in df.itertuples(index=False):
        d = g.districts.get(r.areaCode)
        if d is None:
            continue
        r_unit = g.spread_factor * _radius_m(g.district_area_km2.get(d.code, 0.0)
                                             / max(per_district.get(r.areaCode, 1), 1))
        own = point.get(r.code)
        if own is None:
            p = Place("township", r.name, _chain(d) + r.name, d.lon, d.lat, r.code, d.code, d.city_adcode,
                      d.name, d.city_name, r.code, d.population, "district", d.uncertainty_m)
        else:
            lon, lat, agree_m = own
            e = agree_m if math.isfinite(agree_m) else g.median_agree_m
            p = Place("township", r.name, _chain(d) + r.name, lon, lat, r.code, d.code, d.city_adcode,
                      d.name, d.city_name, r.code, d.population, "township", r_unit + e)
            g.town_error_m[r.code] = e
        towns[r.code] = p
        g.add(r.name, p, True)
        alias = _town_alias(r.name)
        if alias:
            g.add(alias, p, False)
    g.towns = towns
    by_district: dict[str, list[Place]] = defaultdict(list)
    for p in towns.values():
        if p.point_level == "township":
            by_district[p.district_adcode].append(p)
    tf = _to_metric()
    for adcode, places in by_district.items():
        xs, ys = tf.transform(np.array([p.lon for p in places]), np.array([p.lat for p in places]))
        g.town_points[adcode] = (places, np.asarray(xs), np.asarray(ys))
    return towns


def _chain(d: Place) -> str:
    return (d.city_name if d.city_name != d.name else "") + d.name


def _communities(g: Gazetteer, root: Path, towns: dict[str, Place]) -> None:
    df = pd.read_csv(root / COMMUNITY_FILE, dtype=str, usecols=["code", "name", "streetCode", "areaCode"])
    pts = pd.read_csv(root / COMMUNITY_POINTS_FILE, dtype={"code": str}, usecols=["code", "lon", "lat"])
    pts = pts.dropna(subset=["lon", "lat"])
    shared = pts.duplicated(subset=["lon", "lat"], keep=False)
    point = {c: (float(x), float(y), bool(sh)) for c, x, y, sh in zip(pts.code, pts.lon, pts.lat, shared)}
    per_town = df.groupby("streetCode").size().to_dict()
    for code, name, street, area in zip(df.code, df.name, df.streetCode, df.areaCode):
        d = g.districts.get(area)
        if d is None:
            continue
        t = towns.get(street)
        spoken = _community_alias(name)
        full = _chain(d) + (t.name if t else "") + spoken
        own = point.get(code)
        if own is not None:
            lon, lat, is_shared = own
            town_unc = t.uncertainty_m if t is not None else d.uncertainty_m
            town_e = _town_error(g, t)
            town_area = _town_area_km2(g, t, d)
            unc = town_unc if is_shared else (g.spread_factor * _radius_m(town_area / max(per_town.get(street, 1), 1))
                                              + town_e)
            p = Place("community", spoken, full, lon, lat, code, d.code, d.city_adcode, d.name, d.city_name,
                      street, d.population, "community", unc)
        elif t is not None and t.point_level == "township":
            p = Place("community", spoken, full, t.lon, t.lat, code, d.code, d.city_adcode, d.name,
                      d.city_name, street, d.population, "township", t.uncertainty_m)
        else:
            p = Place("community", spoken, full, d.lon, d.lat, code, d.code, d.city_adcode, d.name,
                      d.city_name, street, d.population, "district", d.uncertainty_m)
        g.add(spoken, p, len(spoken) >= 3)
        if name != spoken:
            g.add(name, p, True)


def _town_area_km2(g: Gazetteer, t: Place | None, d: Place) -> float:
    n = g.towns_per_district.get(d.code, 1) if t is not None else 1
    return g.district_area_km2.get(d.code, 0.0) / max(n, 1)


def _town_error(g: Gazetteer, t: Place | None) -> float:
    return g.town_error_m.get(t.code, g.median_agree_m) if t is not None else g.median_agree_m


def _places(g: Gazetteer, root: Path) -> None:
    """GeoNames places that are not one of the townships (old town names, villages): level "place".

    A name is kept when it has 3 or more characters (2-character names such as 中新 are everyday words in
    a caller's or a reporter's sentence) and no township or coarser unit of the same district is called
    so (with or without 镇/街道/乡)."""
    from incidents import admin
    path = root / PLACES_FILE
    if not path.is_file():
        return
    df = pd.read_csv(path, dtype={"geonameid": str}).dropna(subset=["zh_names"])
    # by city, not district: a GeoNames point near a district line often falls in the neighbour
    town_names: dict[str, set[str]] = defaultdict(set)
    for t in g.towns.values():
        town_names[t.city_adcode].add(t.name)
        alias = _town_alias(t.name)
        if alias:
            town_names[t.city_adcode].add(alias)
    for r in df.itertuples(index=False):
        row = admin.locate_point(float(r.lon), float(r.lat), root=root)
        if row is None:
            continue
        d = g.districts.get(str(row["district_adcode"]))
        if d is None:
            continue
        names = [n for n in dict.fromkeys(str(r.zh_names).split("|")) if n]
        if any(n in town_names[d.city_adcode] or (_town_alias(n) or "") in town_names[d.city_adcode]
               for n in names):
            continue
        if any(p.level in ("province", "city", "district") for n in names for p, _ in g.index.get(n, ())):
            continue
        r_unit = g.spread_factor * _radius_m(g.district_area_km2.get(d.code, 0.0)
                                             / max(g.towns_per_district.get(d.code, 1), 1))
        main = max(names, key=len)
        p = Place("place", main, _chain(d) + main, float(r.lon), float(r.lat), f"geonames:{r.geonameid}",
                  d.code, d.city_adcode, d.name, d.city_name, None, d.population, "place",
                  r_unit + g.median_agree_m)
        for n in names:
            if len(n) >= 3:
                g.add(n, p, True)


def _road_lines(path: Path) -> dict[str, list]:
    from shapely import LineString, wkt
    graph = read_graph(path)
    lines: dict[str, list] = defaultdict(list)
    seen: set[tuple[str, frozenset]] = set()
    for u, v, data in graph.edges(data=True):
        raw = data.get("name")
        if not raw:
            continue
        names = ast.literal_eval(raw) if raw.startswith("[") else [raw]
        if "geometry" in data:
            line = wkt.loads(data["geometry"])
        else:
            a, b = graph.nodes[u], graph.nodes[v]
            line = LineString([(float(a["x"]), float(a["y"])), (float(b["x"]), float(b["y"]))])
        for name in names:
            key = (name, frozenset((u, v)))
            if key not in seen:          # a two-way road is stored once per direction
                seen.add(key)
                lines[name].append(line)
    return lines


def _roads(g: Gazetteer, root: Path) -> None:
    """Each named road's point: the midpoint along its merged line (longest piece when it has several)."""
    from shapely import MultiLineString, line_merge
    from incidents import admin
    path = root / ROAD_FILE
    if not path.is_file():
        return
    for name, parts in sorted(_road_lines(path).items()):
        merged = line_merge(MultiLineString(parts))
        piece = max(getattr(merged, "geoms", [merged]), key=lambda ln: ln.length)
        mid = piece.interpolate(0.5, normalized=True)
        row = admin.locate_point(mid.x, mid.y, root=root)
        if row is None:
            continue
        d = g.districts.get(row["district_adcode"])
        if d is None:
            continue
        xs, ys = zip(*[xy for ln in parts for xy in ln.coords])
        vx, vy = _to_metric().transform(np.array(xs), np.array(ys))
        mx, my = _to_metric().transform(mid.x, mid.y)
        reach = float(np.sqrt((np.asarray(vx) - mx) ** 2 + (np.asarray(vy) - my) ** 2).max())
        p = Place("road", name, _chain(d) + name, mid.x, mid.y, f"road:{name}", d.code, d.city_adcode,
                  d.name, d.city_name, None, d.population, "road", reach)
        g.add(name, p, True)


def _foreign_aliases(full: str) -> tuple[str, list[tuple[str, bool]]]:
    """An other province's short form and its aliases (name, strong): 湖南省 -> 湖南; 香港特别行政区 -> 香港, 香港特区."""
    short = full
    for suffix in _PROVINCE_SUFFIXES:
        if full.endswith(suffix):
            short = full[: -len(suffix)]
            break
    aliases = [(full, True), (short, False)]
    if full.endswith("特别行政区"):
        aliases.append((short + "特区", True))
    return short, aliases


# every name an other province is known by: a mention of anything else names no place outside Guangdong
FOREIGN_NAMES = frozenset(a for full in OTHER_PROVINCES for a, _ in _foreign_aliases(full)[1])


def _foreign(g: Gazetteer) -> None:
    for full in OTHER_PROVINCES:
        short, aliases = _foreign_aliases(full)
        p = Place("foreign", full, full, 0.0, 0.0, f"foreign:{short}")
        for alias, strong in aliases:
            g.add(alias, p, strong)


@functools.lru_cache(maxsize=2)
def _build(root: Path) -> Gazetteer:
    census = pd.read_csv(root / "population/guangdong_census2020_county.csv", dtype={"adcode": str},
                         usecols=["adcode", "population"])
    population = dict(zip(census.adcode, census.population.astype(float)))
    g = Gazetteer()
    _admin(g, root, population)
    towns = _townships(g, root)
    _communities(g, root, towns)
    _places(g, root)
    _roads(g, root)
    _foreign(g)
    g.freeze()
    return g


def gazetteer(root: Path | None = None) -> Gazetteer:
    """The gazetteer of the data folder ``root`` (default: the bundled data/), made once per process: read from
    the persistent cache (incidents/cache.py, incidents/gazetteer_cache.py) when an entry for exactly this data
    and code exists, else built (``_build``) and stored for the next process."""
    return _cached(Path(root) if root is not None else DEFAULT_DATA_DIR)


@functools.lru_cache(maxsize=2)
def _cached(root: Path) -> Gazetteer:
    from incidents import gazetteer_cache
    return gazetteer_cache.load(root, _build)
