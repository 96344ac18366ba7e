"""The offline gazetteer: every Guangdong place name the geocoder knows, indexed for substring scans.

    from incidents.gazetteer import gazetteer
    g = gazetteer()                       # built once per process and data directory (lazy)
    g.scan("广州市天河区天河路")           # -> [Mention(start, end, alias, hits=[(Place, strong)])]
    g.district("440106")                  # -> Place of 天河区

Sources (all in data/, see ../shared/data/SOURCES.md):
- gazetteer/guangdong_admin_units.csv: province, 21 cities, 125 districts with inner points (WGS84);
- gazetteer/guangdong_townships_nbs2023.csv: 1,757 townships (no coordinates);
- gazetteer/guangdong_villages_communities_nbs2023.csv: 26,842 communities/villages (no coordinates);
- roads/shenzhen_futian_osm_network.graphml: named OSM roads of southern Futian (ODbL).

Townships and communities have no coordinates: their point is their district's inner point.
Each name is stored under its official form (strong) and, where people say it, a short form (weak):
天河区/天河, 沙面街道/沙面, 翠洲社区居民委员会 -> 翠洲社区, 永兴村委会 -> 永兴村.
Scanning is a dict lookup of substrings, longest first, keyed by first character: no regex per name.
"""
from __future__ import annotations

import ast
import functools
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from incidents.roads import ROAD_FILE, read_graph
from settings import get_settings

LEVELS_FINE_TO_COARSE = ("road", "community", "township", "district", "city", "province")
TOWNSHIP_FILE = "gazetteer/guangdong_townships_nbs2023.csv"
COMMUNITY_FILE = "gazetteer/guangdong_villages_communities_nbs2023.csv"
UNITS_FILE = "gazetteer/guangdong_admin_units.csv"

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
    """A named place. lon/lat are WGS84; for townships and communities, their district's inner point."""

    level: str                    # province | city | district | township | community | road | foreign
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


@dataclass(frozen=True, slots=True)
class Mention:
    start: int
    end: int
    alias: str
    hits: tuple[tuple[Place, bool], ...]   # (place, strong alias?)


class Gazetteer:
    """Names -> places, with the lookups the geocoder needs."""

    def __init__(self) -> None:
        self.index: dict[str, list[tuple[Place, bool]]] = defaultdict(list)
        self.lengths: dict[str, tuple[int, ...]] = {}
        self.districts: dict[str, Place] = {}
        self.cities: dict[str, Place] = {}
        self.province: Place | None = None

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
        by_first: dict[str, set[int]] = defaultdict(set)
        for alias in self.index:
            by_first[alias[0]].add(len(alias))
        self.lengths = {c: tuple(sorted(ls, reverse=True)) for c, ls in by_first.items()}
        self.index = dict(self.index)

    # ------------------------------------------------------------------ lookups
    def district(self, adcode: str) -> Place | None:
        return self.districts.get(adcode)

    def scan(self, text: str) -> list[Mention]:
        """Leftmost-longest non-overlapping matches of known names in ``text``."""
        out: list[Mention] = []
        i, n = 0, len(text)
        index, lengths = self.index, self.lengths
        while i < n:
            found = None
            for L in lengths.get(text[i], ()):
                if i + L <= n:
                    alias = text[i:i + L]
                    hits = index.get(alias)
                    if hits:
                        found = Mention(i, i + L, alias, tuple(hits))
                        break
            if found:
                out.append(found)
                i = found.end
            else:
                i += 1
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


def _admin(g: Gazetteer, root: Path, population: dict[str, float]) -> None:
    df = pd.read_csv(root / UNITS_FILE, dtype={"adcode": str})
    df["city_adcode"] = df["city_adcode"].astype("Int64").astype(str).replace("<NA>", None)
    for r in df.itertuples(index=False):
        lon, lat = float(r.inner_point_lon), float(r.inner_point_lat)
        if r.level == "province":
            g.province = Place("province", r.name, r.name, lon, lat, r.adcode)
            g.add(r.name, g.province, True)
            g.add(r.name.removesuffix("省"), g.province, False)
        elif r.level == "city":
            p = Place("city", r.name, r.province_name + r.name, lon, lat, r.adcode, city_adcode=r.adcode,
                      city_name=r.name, population=population.get(r.adcode, 0.0))
            g.cities[r.adcode] = p
        else:
            p = Place("district", r.name, r.province_name + (r.city_name if r.city_name != r.name else "")
                      + r.name, lon, lat, r.adcode, r.adcode, r.city_adcode, r.name, r.city_name,
                      population=population.get(r.adcode, population.get(r.city_adcode, 0.0)))
            g.districts[r.adcode] = p
            g.add(r.name, p, len(r.name) >= 3)     # 城区 (汕尾) is too generic to stand alone
            if isinstance(r.short_name, str) and r.short_name != r.name and len(r.short_name) >= 3:
                g.add(r.short_name, p, True)       # 乳源县 for 乳源瑶族自治县
            short = _short_district(r.name, r.short_name)
            if short:
                g.add(short, p, False)
            if r.adcode == "440499":
                g.add("澳门大学", p, True)
    for adcode, p in g.cities.items():
        # 东莞市 and 中山市 have no districts: the city name means the district-level unit itself.
        target = g.districts.get(adcode, p)
        g.add(p.name, target, True)
        g.add(p.name.removesuffix("市"), target, False)


def _townships(g: Gazetteer, root: Path) -> dict[str, Place]:
    df = pd.read_csv(root / TOWNSHIP_FILE, dtype=str)
    towns: dict[str, Place] = {}
    for r in df.itertuples(index=False):
        d = g.districts.get(r.areaCode)
        if d is None:
            continue
        p = Place("township", r.name, _chain(d) + r.name, d.lon, d.lat, r.code, d.code, d.city_adcode,
                  d.name, d.city_name, r.code, d.population)
        towns[r.code] = p
        g.add(r.name, p, True)
        for suffix in _TOWN_SUFFIXES:
            if r.name.endswith(suffix) and len(r.name) - len(suffix) >= 2:
                g.add(r.name[: -len(suffix)], p, False)
                break
    return towns


def _chain(d: Place) -> str:
    return (d.city_name if d.city_name != d.name else "") + d.name


def _communities(g: Gazetteer, root: Path, towns: dict[str, Place]) -> None:
    df = pd.read_csv(root / COMMUNITY_FILE, dtype=str, usecols=["code", "name", "streetCode", "areaCode"])
    for code, name, street, area in zip(df.code, df.name, df.streetCode, df.areaCode):
        d = g.districts.get(area)
        if d is None:
            continue
        t = towns.get(street)
        spoken = _community_alias(name)
        p = Place("community", spoken, _chain(d) + (t.name if t else "") + spoken, d.lon, d.lat, code,
                  d.code, d.city_adcode, d.name, d.city_name, street, d.population)
        g.add(spoken, p, len(spoken) >= 3)
        if name != spoken:
            g.add(name, p, True)


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
        row = admin.locate_point(mid.x, mid.y)
        if row is None:
            continue
        d = g.districts.get(row["district_adcode"])
        if d is None:
            continue
        p = Place("road", name, _chain(d) + name, mid.x, mid.y, f"road:{name}", d.code, d.city_adcode,
                  d.name, d.city_name, None, d.population)
        g.add(name, p, True)


def _foreign(g: Gazetteer) -> None:
    for full in OTHER_PROVINCES:
        short = full
        for suffix in _PROVINCE_SUFFIXES:
            if full.endswith(suffix):
                short = full[: -len(suffix)]
                break
        p = Place("foreign", full, full, 0.0, 0.0, f"foreign:{short}")
        g.add(full, p, True)
        g.add(short, p, False)
        if full.endswith("特别行政区"):
            g.add(short + "特区", p, True)


@functools.lru_cache(maxsize=2)
def _build(root: Path) -> Gazetteer:
    census = pd.read_csv(root / "population/guangdong_census2020_county.csv", dtype={"adcode": str},
                         usecols=["adcode", "population"])
    population = dict(zip(census.adcode, census.population.astype(float)))
    g = Gazetteer()
    _admin(g, root, population)
    towns = _townships(g, root)
    _communities(g, root, towns)
    _roads(g, root)
    _foreign(g)
    g.freeze()
    return g


def gazetteer(root: Path | None = None) -> Gazetteer:
    """The gazetteer of ``root`` (default: settings.data_dir), built once per process."""
    return _build(Path(root or get_settings().data_dir))
