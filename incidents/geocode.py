"""Locating an incident: address text or a point (any datum) -> a WGS84 Location in Guangdong.

    from incidents.geocode import locate, locate_point, locate_any, locate_batch
    locate("广州市天河区天河路 商场燃气爆炸 3人重伤")     # district precision, 440106, notes the road
    locate("深圳市福田区景田路")                         # road precision (Futian roads are in the data)
    locate_point(Point(113.32, 23.13, "gcj02"))          # converted to WGS84, then point-in-polygon
    locate_any(address, point)                           # point wins for position; address adds names
    for item in locate_batch(lines): ...                 # dicts for `yzt locate --batch` (incidents._batch)
    locate_districts(lines)                              # DataFrame: province/city/district/adcode (as cpca)

Offline by default, over the bundled gazetteer (incidents.gazetteer). When settings.tianditu_key is set,
the online geocoder (incidents.providers) is asked too; its answer must lie in Guangdong, and any failure
falls back to the offline answer with a note. Refusals are LocateError with one clear line.

How text is read: NFKC (full-width digits/letters), spaces dropped, then the leftmost-longest known names (the
gazetteer's Aho-Corasick automaton; a batch is scanned in one pass per chunk).
A short name (天河, 沙面) followed by a road or building word (天河路, 中山大学) is part of that longer name,
not a place. Finer levels must agree with the coarser names given (city -> district -> township); a name
that several places share gives all of them as candidates, best first (named context, then the 2020
population of their district as the prior).
"""
from __future__ import annotations

import functools
import re
import unicodedata
from collections.abc import Iterable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import NamedTuple

import numpy as np

from incidents.coords import shown
from incidents.errors import GeocoderError, IncidentError, LocateError
from incidents.gazetteer import FOREIGN_NAMES, Gazetteer, Mention, Place, gazetteer
from incidents.model import Candidate, Location, Point

# precision is the level whose point is used (Place.point_level): a community without a point of its own
# is placed at its township's point with precision "township", or at its district's with "district".
PRECISION = {"road": "road", "community": "community", "place": "place", "township": "township",
             "district": "district", "city": "city", "province": "province"}
BASE_CONFIDENCE = {"road": 0.9, "community": 0.8, "place": 0.7, "township": 0.8, "district": 0.85, "city": 0.5,
                   "province": 0.2}
WEAK_FACTOR = 0.75            # a short name (天河, 沙面) rather than the official one
NO_CONTEXT_FACTOR = 0.85      # a township/community/road named without its city or district
FALLBACK_FACTOR = 0.9         # a finer place (a road) was named but is not in the data
CONFLICT_FACTOR = 0.6         # the names given disagree (广州市福田区)
ROAD_NAME_GUESS_FACTOR = 0.5  # only a road named after a district was said (天河路): the district is a guess
MAX_CANDIDATES = 10
MAX_ADDRESS_CHARS = 200       # longer text is not an address said on a call: refused before it is scanned
_ORDER = ("province", "city", "district", "township", "place", "community", "road")
_FILTERED = frozenset(("township", "place", "community", "road"))   # must agree with the city and district named
# After a short name these words make it part of a longer proper name (a road, an estate, a metro line).
_LONGER_NAME_2 = ("大道", "大街", "大桥", "大学", "大厦", "广场", "公园", "医院", "中学", "小学", "码头", "花园",
                  "机场", "商场", "酒店", "立交", "隧道", "新城", "新村", "小区", "中心", "地铁", "号线")
_LONGER_NAME_1 = set("路街巷桥站道线区县市省")   # 云岩区 is not 云岩镇: a short name before 区/县/市 is another unit's
# District names that are also everyday words (城区 "the urban area"): a unit only right after their city.
_GENERIC_DISTRICTS = {"城区"}
_ROADISH = re.compile(r"[\u4e00-\u9fffA-Za-z0-9]{1,12}?(?:大道|大街|公路|路|街(?!道)|巷)")


class _Hit(NamedTuple):
    mention: Mention
    place: Place
    strong: bool


T2S_FILE = "intake/t2s_characters.tsv"     # traditional -> simplified characters (OpenCC, Apache-2.0)


@functools.lru_cache(maxsize=1)
def t2s_table() -> dict[int, str]:
    """str.translate table: traditional characters to simplified (廣州市天河區 -> 广州市天河区), one character
    each, from the bundled table; characters the official simplified names use as they are (乾务镇) are kept."""
    from incidents.gazetteer import DEFAULT_DATA_DIR
    path = DEFAULT_DATA_DIR / T2S_FILE
    if not path.is_file():
        return {}
    table: dict[int, str] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        if line and not line.startswith("#"):
            trad, simp = line.split("\t")
            table[ord(trad)] = simp
    return table


def normalise(text: str) -> str:
    """NFKC (full-width digits, letters, commas -> ASCII), traditional characters as simplified, all whitespace
    removed."""
    return "".join(unicodedata.normalize("NFKC", text or "").split()).translate(t2s_table())


@functools.lru_cache(maxsize=1)
def _normalise_table() -> dict[int, str | None]:
    """t2s_table with every whitespace character but the newline deleted (str.split's whitespace: all below
    U+3001)."""
    table: dict[int, str | None] = dict(t2s_table())
    table.update({c: None for c in range(0x3001) if chr(c).isspace() and c != 10})
    return table


@functools.lru_cache(maxsize=1)
def _normalise_lut():
    """_normalise_table as a numpy lookup table over code points up to its largest key (each maps to one
    character or is deleted: DELETED), or None if some entry maps to more than one character."""
    table = _normalise_table()
    if any(v is not None and len(v) != 1 for v in table.values()):
        return None
    lut = np.arange(max(table) + 1, dtype=np.uint32)
    keys = np.fromiter(table, dtype=np.uint32, count=len(table))
    lut[keys] = [DELETED if v is None else ord(v) for v in table.values()]
    return lut


DELETED = 0xFFFFFFFF      # not a code point: the lookup table's mark for a character translate deletes


def _translate(text: str) -> str:
    """``text.translate(_normalise_table())``, as one numpy lookup over its UTF-32 code points (str.translate
    looks each character up in a dict: most of a batch's normalising time)."""
    lut = _normalise_lut()
    if lut is None:
        return text.translate(_normalise_table())
    codes = np.frombuffer(text.encode("utf-32-le", "surrogatepass"), dtype=np.uint32)
    out = np.where(codes < len(lut), lut[np.minimum(codes, len(lut) - 1)], codes)
    if not (out != codes).any():
        return text
    return out[out != DELETED].tobytes().decode("utf-32-le", "surrogatepass")


def normalise_many(texts: list[str]) -> list[str]:
    """``normalise`` of each text, in one NFKC and one translate over them all joined by newlines (no character's
    NFKC form holds or takes in a newline, and the newline is kept as the separator; texts holding one are
    normalised one by one)."""
    texts = [t or "" for t in texts]
    if len(texts) < 16 or any("\n" in t for t in texts):
        return [normalise(t) for t in texts]
    return _translate(unicodedata.normalize("NFKC", "\n".join(texts))).split("\n")


def _part_of_longer_name(text: str, end: int) -> bool:
    nxt = text[end:end + 2]
    if not nxt:
        return False
    if nxt[0] in _LONGER_NAME_1 or nxt in _LONGER_NAME_2:
        return not nxt.startswith("街道")
    return nxt[0] in "东南西北中" and len(nxt) == 2 and nxt[1] in "路街道巷大"


def _usable(text: str, mentions: list[Mention]) -> list[Mention]:
    out: list[Mention] = []
    for m in mentions:
        hits = m.hits
        if not (hits[0][1] if len(hits) == 1 else any(s for _, s in hits)) and _part_of_longer_name(text, m.end):
            continue
        if m.alias in _GENERIC_DISTRICTS:
            prev = out[-1] if out else None
            cities = {p.city_adcode for p, _ in hits}
            if prev is None or prev.end != m.start or not any(p.level == "city" and p.city_adcode in cities
                                                              or p.code in cities for p, _ in prev.hits):
                continue
        out.append(m)
    return out


def _district_in_road_name(text: str, scanned: list[Mention]) -> tuple[list[Mention], str | None]:
    """When nothing else is named: a district's short name that begins a road name (天河路, 宝安大道) stands
    for that district, as a guess. Only districts: city names (中山路, 北京路) name roads in every city."""
    for m in scanned:
        hits = tuple((p, False) for p, _ in m.hits if p.level == "district" and p.code != p.city_adcode)
        if hits and len(hits) == len(m.hits):
            road = _ROADISH.match(text, m.start)
            if road:
                return [Mention(m.start, m.end, m.alias, hits)], road.group(0)
    return [], None


def _foreign_refusal(text: str, mentions: list[Mention]) -> str | None:
    """The other province named first (北京市朝阳区, 香港, 湖南省...), if any."""
    for i, m in enumerate(mentions):
        if m.alias not in FOREIGN_NAMES or not any(p.level == "foreign" for p, _ in m.hits):
            continue
        foreign = [(p, s) for p, s in m.hits if p.level == "foreign"]
        if i == 0 or foreign[0][1] and len(foreign) == len(m.hits):
            earlier_gd = any(p.level != "foreign" for mm in mentions[:i] for p, _ in mm.hits)
            if not earlier_gd:
                return foreign[0][0].name
    return None


def _consistent(p: Place, cities: set, districts: set, towns: set) -> bool:
    if cities and p.level != "city" and p.city_adcode not in cities:
        return False
    if districts and p.level in ("township", "place", "community", "road") and p.district_adcode not in districts:
        return False
    return not (towns and p.level == "community" and p.township_code not in towns)


def _resolve(mentions: list[Mention]) -> tuple[str | None, list[_Hit], list[str], bool]:
    """The finest level named and its hits, each finer level filtered by the coarser names; conflicts; whether
    context (a city or district) was given."""
    raw: dict[str, list[tuple[Mention, tuple | list]]] = {}
    for m in mentions:                      # one pass: each mention's hits grouped by level, in text order
        hits = m.hits
        if len(hits) == 1:                  # most names mean one place
            raw.setdefault(hits[0][0].level, []).append((m, hits))
            continue
        per: dict[str, list[tuple[Place, bool]]] = {}
        for h in hits:
            per.setdefault(h[0].level, []).append(h)
        for level, hs in per.items():
            raw.setdefault(level, []).append((m, hs))
    cities: set[str] = set()
    districts: set[str] = set()
    towns: set[str] = set()
    city_names: set[str] = set()
    conflicts: list[str] = []
    finest, finest_kept = None, []
    for level in _ORDER:
        entries = raw.get(level)
        if not entries:
            continue
        kept = []
        for m, hits in entries:
            if level == "district":
                ok = [h for h in hits if h[0].city_adcode in cities] if cities else hits
                if not ok and any(s for _, s in hits):
                    conflicts.append(f"{m.alias} is not in {'/'.join(sorted(city_names))}")
                    ok = hits
            elif level in _FILTERED and (cities or districts or towns):
                ok = [h for h in hits if _consistent(h[0], cities, districts, towns)]
            else:                           # province, city: nothing coarser to agree with
                ok = hits
            if ok:
                kept.append((m, ok))
        if not kept:
            continue
        finest, finest_kept = level, kept
        for _, ok in kept:
            for p, _ in ok:
                if level == "city":
                    cities.add(p.city_adcode)
                    city_names.add(p.name)
                elif level == "district":
                    districts.add(p.code)
                    if p.code == p.city_adcode:
                        cities.add(p.city_adcode)
                elif level == "township":
                    towns.add(p.code)
    return finest, [_Hit(m, p, s) for m, ok in finest_kept for p, s in ok], conflicts, bool(cities or districts)


def _rank(hits: list[_Hit], level: str) -> list[tuple[Place, float, _Hit]]:
    """Distinct places, best first, each with a score in 0..1."""
    if len(hits) == 1:                      # one place: its share of the population prior is all of it
        h = hits[0]
        return [(h.place, BASE_CONFIDENCE[level] * (1.0 if h.strong else WEAK_FACTOR), h)]
    best: dict[str, _Hit] = {}
    for h in hits:
        cur = best.get(h.place.code)
        if cur is None or (h.strong, len(h.mention.alias)) > (cur.strong, len(cur.mention.alias)):
            best[h.place.code] = h
    total = sum(h.place.population for h in best.values())
    out = []
    for h in best.values():
        share = h.place.population / total if total > 0 else 1 / len(best)
        score = BASE_CONFIDENCE[level] * (1.0 if h.strong else WEAK_FACTOR) * share
        out.append((h.place, score, h))
    out.sort(key=lambda t: (not t[2].strong, -len(t[2].mention.alias), t[2].mention.start, -t[1]))
    return out


def _precision(p: Place) -> str:
    return PRECISION.get(p.point_level or p.level, "district")


def _candidate(p: Place, score: float) -> Candidate:
    return Candidate(name=p.full, precision=_precision(p), lon=p.lon, lat=p.lat,  # type: ignore[arg-type]
                     district_adcode=p.district_adcode, city_adcode=p.city_adcode, score=round(score, 4),
                     uncertainty_m=round(p.uncertainty_m))


# (id(place), level) -> (place, the notes on its point): the entry holds the place, so its id is not reused
_POINT_NOTES: dict[tuple[int, str], tuple[Place, tuple[str, ...]]] = {}


def _notes(text: str, level: str, best: Place, end: int, ranked: list) -> tuple[list[str], float]:
    e = _POINT_NOTES.get((id(best), level))
    if e is None:
        if len(_POINT_NOTES) >= 100_000:
            _POINT_NOTES.clear()
        e = _POINT_NOTES[(id(best), level)] = (best, tuple(_point_notes(level, best)))
    notes = list(e[1])
    factor = 1.0
    if level != "road" and end < len(text):
        road = _ROADISH.search(text, end)
        if road:
            notes.append(f"road {road.group(0)} is not in the road data (roads are known only in southern "
                         f"Futian): located to {PRECISION[level]} level")
            factor *= FALLBACK_FACTOR
    if len(ranked) > 1:
        names = "; ".join(p.full for p, _, _ in ranked[:4])
        notes.append(f"{ranked[0][2].mention.alias} may mean {len(ranked)} places ({names}): "
                     "give the city or district to choose")
    return notes, factor


def _point_notes(level: str, best: Place) -> list[str]:
    """What the notes say of the point of ``best`` named at ``level`` (whose point it is, how far it may be)."""
    notes: list[str] = []
    if best.point_level == "district" and level in ("township", "community", "place"):
        notes.append(f"{level} {best.name} has no coordinates in the gazetteer: the point is the inner point "
                     f"of {best.district_name}")
    elif best.point_level == "township" and level == "community":
        notes.append(f"community {best.name} has no coordinates in the gazetteer: the point is its township's "
                     "centre")
    if best.point_level in ("township", "community", "place"):
        notes.append(f"the point is the {best.point_level}'s centre as the source gives it; the place lies within "
                     f"about {_km(best.uncertainty_m)} of it")
    return notes


def _km(m: float) -> str:
    return f"{m / 1000:.1f} km" if m >= 1000 else f"{m:.0f} m"


def _refuse(raw: str, why: str, *, final: bool = False) -> LocateError:
    err = LocateError(f"address {shown(raw)}: {why}")
    err.final = final   # True: no online geocoder may overturn it (outside Guangdong, empty)
    return err


class _Answer(NamedTuple):
    """What the offline geocoder found: the place used, the finest level named, the ranked places, notes."""

    best: Place
    level: str
    ranked: list[tuple[Place, float, _Hit]]
    confidence: float
    notes: list[str]


def locate_offline(text: str, *, g: Gazetteer | None = None, data_dir: Path | None = None,
                   scanned: list[Mention] | None = None) -> Location:
    """The offline geocoder alone (no network ever), over the gazetteer of ``data_dir`` (default: bundled).

    ``scanned``: the gazetteer's mentions of ``text`` when the caller has them already (intake scans a call
    once); ``text`` must then be normalised already."""
    raw = text
    if len(raw or "") > MAX_ADDRESS_CHARS:
        raise _refuse(raw, f"{len(raw)} characters is over the {MAX_ADDRESS_CHARS}-character limit for an "
                           "address; give just the place", final=True)
    norm = normalise(text) if scanned is None else text
    if not norm:
        raise _refuse(raw, "empty; give a place in Guangdong (city, district, township, community or road)",
                      final=True)
    g = g or gazetteer(data_dir)
    return _location(answer(raw, norm, g.scan(norm) if scanned is None else scanned, g))


def answer(raw: str, norm: str, scanned: list[Mention], g: Gazetteer) -> _Answer:
    """The offline answer for the normalised text ``norm`` (not empty) and its mentions (raises LocateError,
    naming ``raw``). incidents._batch turns it into the batch's dict, locate_offline into a Location."""
    mentions = _usable(norm, scanned)
    guessed = None
    if not mentions:
        mentions, guessed = _district_in_road_name(norm, scanned)
    foreign = _foreign_refusal(norm, mentions)
    if foreign:
        raise _refuse(raw, f"names {foreign}, outside Guangdong; this system covers Guangdong only",
                      final=True)
    level, hits, conflicts, had_context = _resolve(mentions)
    if level is None:
        raise _refuse(raw, "no Guangdong place name recognised (city, district, township, community or "
                           "Futian road); check the spelling or give the district")
    ranked = _rank(hits, level)
    best, score, hit = ranked[0]
    notes, factor = _notes(norm, level, best, max(m.end for m in mentions), ranked)
    if conflicts:
        notes = conflicts + notes
        factor *= CONFLICT_FACTOR
    if level in ("township", "place", "community", "road") and not had_context:
        factor *= NO_CONTEXT_FACTOR
    if guessed:
        notes.insert(0, f"no place named but the road {guessed}: roads named after a district usually lie in it, "
                        f"so {best.name} is a guess; check it")
        factor *= ROAD_NAME_GUESS_FACTOR
    if level == "province":
        best = g.province or best
    return _Answer(best, level, ranked, max(0.0, min(1.0, score * factor)), notes)


def _location(a: _Answer) -> Location:
    best = a.best
    return Location(
        point=Point(best.lon, best.lat, "wgs84"), precision=_precision(best), matched=best.full,  # type: ignore[arg-type]
        district_adcode=best.district_adcode, city_adcode=best.city_adcode, confidence=a.confidence,
        candidates=tuple(_candidate(p, s) for p, s, _ in a.ranked[:MAX_CANDIDATES]),
        source="offline", district_name=best.district_name, city_name=best.city_name,
        matched_level=a.level, notes=tuple(a.notes), uncertainty_m=best.uncertainty_m)


def locate(text: str, *, settings=None, client=None, data_dir: Path | None = None) -> Location:
    """Address text -> Location in Guangdong (raises LocateError with the reason).

    Offline unless the caller passes ``settings`` with a ``tianditu_key`` (settings are passed down by the door
    that read them, never fetched here); ``data_dir`` defaults to ``settings.data_dir``, else the bundled data."""
    if data_dir is None and settings is not None:
        data_dir = getattr(settings, "data_dir", None)
    try:
        offline, error = locate_offline(text, data_dir=data_dir), None
    except LocateError as e:
        offline, error = None, e
        if getattr(e, "final", False):
            raise
    if settings is None or not getattr(settings, "tianditu_key", None):
        if error:
            raise error
        return offline
    from incidents import providers
    return providers.locate_online(text, offline, error, settings=settings, client=client)


def locate_point(p: Point, *, data_dir: Path | None = None) -> Location:
    """Reverse: a point in any datum -> its district and city, and the nearest township centre inside that
    district, labelled approximate (raises LocateError outside Guangdong). ``uncertainty_m`` is 0: the point
    is used as given (datum conversion is exact to well under a metre)."""
    from incidents import admin
    from incidents.coords import to_wgs84
    w = to_wgs84(p)
    row = admin.locate_point(w.lon, w.lat, root=data_dir)
    if row is None:
        raise LocateError(f"point {p.lon},{p.lat} ({p.crs}) is outside Guangdong "
                          f"(WGS84 {w.lon:.6f},{w.lat:.6f}); this system covers Guangdong only")
    name = (row["city_name"] if row["city_name"] != row["district_name"] else "") + row["district_name"]
    township, notes = None, ()
    near = gazetteer(data_dir).nearest_township(str(row["district_adcode"]), w.lon, w.lat)
    if near is not None:
        t, dist = near
        township = {"code": t.code, "name": t.name, "distance_m": round(dist), "approximate": True}
        notes = (f"nearest township centre in {row['district_name']}: {t.name}, {_km(dist)} away "
                 "(approximate: township boundaries are not in the data)",)
    return Location(point=w, precision="point", matched=f"{p.lon},{p.lat}", uncertainty_m=0.0,
                    township=township, notes=notes,
                    district_adcode=str(row["district_adcode"]), city_adcode=str(row["city_adcode"]),
                    confidence=1.0, source="point", district_name=row["district_name"],
                    city_name=row["city_name"], input_point=p, matched_level="point",
                    candidates=(Candidate(name=name, precision="point", lon=w.lon, lat=w.lat,
                                          district_adcode=str(row["district_adcode"]),
                                          city_adcode=str(row["city_adcode"]), score=1.0,
                                          uncertainty_m=0.0),))


def locate_any(address: str | None, point: Point | None, *, settings=None, client=None,
               data_dir: Path | None = None) -> Location:
    """Point wins for the position when given; the address adds what it names (or a note if it disagrees)."""
    if data_dir is None and settings is not None:
        data_dir = getattr(settings, "data_dir", None)
    if point is None:
        if not address or not address.strip():
            raise LocateError("no address and no point given: give at least one")
        return locate(address, settings=settings, client=client, data_dir=data_dir)
    loc = locate_point(point, data_dir=data_dir)
    if not address or not address.strip():
        return loc
    try:
        named = locate(address, settings=settings, client=client, data_dir=data_dir)
    except LocateError as e:
        return replace(loc, notes=loc.notes + (f"address not used: {e}",))
    notes = list(loc.notes)
    if named.district_adcode and named.district_adcode != loc.district_adcode:
        notes.append(f"the address names {named.matched} but the point lies in "
                     f"{loc.city_name}{loc.district_name}; the point is used")
    return replace(loc, matched=f"{named.matched} @ {loc.matched}", matched_level=named.matched_level,
                   notes=tuple(notes))


def locate_batch(lines: Iterable[str], *, settings=None, client=None, data_dir: Path | None = None,
                 memo_size: int = 100_000) -> Iterator[dict]:
    """One dict per line, in order: Location.as_dict() or {"error": "..."}; a bad line never stops the batch.

    Offline, lines go through the batch engine (incidents._batch.locate_many) a chunk at a time: one pass of the
    name automaton per chunk, and lines that read the same once normalised (spaces, full-width forms) answered
    once per batch. The answers are those of ``locate`` one line at a time, each an independent copy."""
    from incidents import _batch
    g = gazetteer(data_dir if data_dir is not None else getattr(settings, "data_dir", None))
    online = settings is not None and getattr(settings, "tianditu_key", None)
    memo: dict[str, dict] = {}
    chunk: list[str] = []
    for line in lines:
        if online:
            yield _located(line, settings, client, data_dir, memo, memo_size)
            continue
        chunk.append(line)
        if len(chunk) >= _batch.CHUNK:
            yield from _batch.locate_many(chunk, g, memo, memo_size)
            chunk = []
    if chunk:
        yield from _batch.locate_many(chunk, g, memo, memo_size)


def locate_districts(lines: Iterable[str], *, data_dir: Path | None = None):
    """The batch's province, city, district and district adcode as a pandas DataFrame, a row per line in order
    (``error`` where refused): what cpca's batch ``transform`` gives, from the same resolution as
    ``locate_batch`` (incidents._batch.locate_districts). Offline only; for the point, its precision and
    uncertainty use ``locate_batch``."""
    from incidents import _batch
    return _batch.locate_districts(list(lines), gazetteer(data_dir))


def _located(line: str, settings, client, data_dir: Path | None, memo: dict[str, dict], memo_size: int) -> dict:
    """One line of an online batch (each address asked of the online geocoder once per batch)."""
    from incidents._batch import copy_answer
    key = normalise(line) if len(line or "") <= MAX_ADDRESS_CHARS else None
    hit = memo.get(key) if key is not None else None
    if hit is None:
        try:
            hit = locate(line, settings=settings, client=client, data_dir=data_dir).as_dict()
        except (IncidentError, GeocoderError) as e:
            return {"error": str(e)}
        if key is not None and len(memo) < memo_size:
            memo[key] = hit
    return copy_answer(hit)
