"""The geocoder's batch engine: many addresses at once, for incidents.geocode.locate_batch (offline).

    from incidents._batch import locate_many, locate_districts
    locate_many(["广州市天河区", "深圳市福田区景田路"], g)      # [dict, dict]: locate_offline(a).as_dict() each
    locate_districts(lines, g)        # DataFrame province/city_name/district_name/district_adcode/error (cpca's shape)

The answers are exactly those of ``locate_offline`` one address at a time (tests/incidents/test_geocode_batch.py
holds it to that, on thousands of real addresses); what is saved is the work around them:
- a line said twice is normalised once, and a batch's lines in one NFKC and one translate (normalise_many);
- an address that reads the same once normalised is answered once per batch (a batch repeats its districts and
  estates), and each answer is handed out as an independent copy;
- names are matched as the automaton's own (pattern, start, end) tuples (Gazetteer.matches_many); the plain
  chains of one-place names (the finest may be a shared name of which one place agrees: 9,354 of the bench's
  10,698 distinct addresses) are read in one numpy pass over the batch's matches (_simple_chains); any other
  plain chain (coarse to fine, agreeing, a level each; a name of places of several levels counts at the one
  level that agrees; one that agrees nowhere drops out; a chain said twice counts once) by a walk (_walk:
  answer's own steps, no Mention or grouping per name); the rest by incidents.geocode.answer in full;
- an answer is kept (the batch's memo) as an _entry: a tuple of the place's part of the dict, the candidates'
  dicts (shared, holding no container) and the notes, and each line's dict is made from it in the shape of
  Location.as_dict, without the Location, Point and Candidate objects between; a chain ending in one place is
  scored directly (_one_place_entry), without the ranking of several.
Refusals (empty, too long, outside Guangdong, no place recognised) are asked of locate_offline itself, line by
line, so their message names the line as written.
"""
from __future__ import annotations

import gc
import itertools
import weakref
from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np

from incidents.errors import GeocoderError, IncidentError, LocateError
from incidents.gazetteer import Gazetteer, Mention, Place
from incidents.geocode import (_FILTERED, _GENERIC_DISTRICTS, BASE_CONFIDENCE, MAX_ADDRESS_CHARS, MAX_CANDIDATES,
                               NO_CONTEXT_FACTOR, WEAK_FACTOR,
                               _LONGER_NAME_1, _LONGER_NAME_2, _Answer, _consistent, _Hit, _notes, _ORDER,
                               _part_of_longer_name, _precision,
                               _rank, answer, locate_offline, normalise_many)

_RANK = {level: k for k, level in enumerate(_ORDER)}

CHUNK = 2048      # lines scanned in one pass of the automaton (locate_batch hands out answers chunk by chunk)


def locate_many(lines: list[str], g: Gazetteer, memo: dict[str, tuple] | None = None,
                memo_size: int = 100_000) -> list[dict]:
    """One dict per line, in order: the answer as ``Location.as_dict()``, or {"error": "..."}.

    ``memo`` (normalised text -> the answer in the batch's own form, _entry) carries answers from one call to
    the next, up to ``memo_size`` of them; every dict returned is the caller's own."""
    with collector_paused():
        return _locate_many(lines, g, {} if memo is None else memo, memo_size)


def _normalised(lines: list[str]) -> dict:
    """Each distinct line -> its normalised text, None where too long or empty (locate_offline says why)."""
    distinct = list(dict.fromkeys(lines))           # a batch repeats its lines as said: each read once
    return {line: (key or None) if len(line or "") <= MAX_ADDRESS_CHARS else None
            for line, key in zip(distinct, normalise_many(distinct))}


def _locate_many(lines: list[str], g: Gazetteer, memo: dict[str, tuple], memo_size: int) -> list[dict]:
    norm_of = _normalised(lines)
    todo = [k for k in dict.fromkeys(norm_of.values()) if k is not None and k not in memo]
    answers = _answers(todo, g)
    for key, entry in answers.items():
        if entry is not None and len(memo) < memo_size:
            memo[key] = entry
    entry_of = {line: None if key is None else memo.get(key) or answers.get(key) for line, key in norm_of.items()}
    return [_one(line, g) if (entry := entry_of[line]) is None else _thawed(entry) for line in lines]


DISTRICT_COLUMNS = ("province", "city_name", "district_name", "district_adcode", "error")


def locate_districts(lines: list[str], g: Gazetteer):
    """What cpca's batch ``transform`` gives, from this geocoder: a pandas DataFrame, a row per line in order, of
    the province, city, district and the district's adcode (``error`` where refused). The answers are
    ``locate_many``'s (the same resolution, the same place chosen); what is left out is what cpca does not
    give either: the point, precision, uncertainty, candidates and notes. Each distinct line is answered once
    (_simple_chains, else _best) and the rows taken from the distinct answers by index."""
    import pandas as pd
    with collector_paused():
        norm_of = _normalised(lines)
        todo = [k for k in dict.fromkeys(norm_of.values()) if k is not None]
        matched = g.matches_many(todo)          # first: a gazetteer frozen on its first scan is so now
        a = _pattern_arrays(g)
        chain = _simple_chains(todo, matched, g)
        simple = chain >= 0
        rows = {c: np.empty(len(todo) + 1, dtype=object) for c in DISTRICT_COLUMNS}    # row 0: refused
        valid = np.zeros(len(todo) + 1, dtype=bool)
        for c, attr in (("city_name", "city_name_value"), ("district_name", "district_name_value"),
                        ("district_adcode", "district_adcode_value"), ("valid", "valid")):
            (valid if c == "valid" else rows[c])[1:][simple] = a[attr][chain[simple]]
        for k in np.flatnonzero(~simple).tolist():
            b = _best(todo[k], matched[k], g)
            if b is not None and -180.0 <= b.lon <= 180.0 and -90.0 <= b.lat <= 90.0:     # else refused
                valid[k + 1] = True
                rows["city_name"][k + 1], rows["district_name"][k + 1] = b.city_name, b.district_name
                rows["district_adcode"][k + 1] = b.district_adcode
        rows["province"][valid] = "广东省"
        row_of = np.where(valid[1:], np.arange(1, len(todo) + 1), 0).tolist()
        text_row = dict(zip(todo, row_of))
        line_row = {line: text_row.get(key, 0) if key is not None else 0 for line, key in norm_of.items()}
        index = np.array(list(map(line_row.__getitem__, lines)), dtype=np.int64)
        columns = {c: rows[c][index] for c in DISTRICT_COLUMNS}
        for k in np.flatnonzero(index == 0):
            columns["error"][k] = _one(lines[k], g)["error"]
        return pd.DataFrame(columns, columns=list(DISTRICT_COLUMNS), copy=False)


def _best(norm: str, found: list[tuple[int, int, int]], g: Gazetteer) -> Place | None:
    """The place the batch's answer for ``norm`` uses (None where refused)."""
    b = _chain_best(norm, found, _info(g), g) if found else None
    if b is None:
        try:
            b = answer(norm, norm, [Mention(s, e, g.names[i], g.hits[i]) for i, s, e in found], g).best
        except LocateError:
            return None
    return b


# per gazetteer: the arrays _simple_chains reads, one entry per pattern (see _pattern_arrays)
_ARRAYS: weakref.WeakKeyDictionary[Gazetteer, dict] = weakref.WeakKeyDictionary()
_L1 = np.array([ord(c) for c in _LONGER_NAME_1], dtype=np.uint32)
_L2 = np.array([ord(w[0]) * 0x110000 + ord(w[1]) for w in _LONGER_NAME_2], dtype=np.int64)
_DIRS, _DIR_NEXT = (np.array([ord(c) for c in cs], dtype=np.uint32) for cs in ("东南西北中", "路街道巷大"))
_NL = ord("\n")


def _pattern_arrays(g: Gazetteer) -> dict:
    """What _simple_chains reads of the names, as arrays. Per pattern: ``rank`` of a one-place name (of a level
    from city to road, not 城区), ``multi`` the rank of a name of several places of one filtered level (township
    to road), else -1; ``strong`` (any strong alias); ``first``, the first of its places' slots (``count`` of
    them). Per slot (a place of a name): its city, district, own code and township code as small ints (one
    numbering of all the codes), the city a district is itself (东莞市) else -1, whether its point is a valid
    one, its city name, district name and district adcode (the district table's columns), and the Place."""
    arrays = _ARRAYS.get(g)
    if arrays is not None and len(arrays["rank"]) == len(g.names):
        return arrays
    n, ids, places = len(g.names), {}, []
    rank, multi, first, count = (np.full(n, -1, dtype=np.int64) for _ in range(4))
    strong = np.zeros(n, dtype=bool)
    generic = {g.names.index(a) for a in _GENERIC_DISTRICTS if a in g.index}
    for i, hs in enumerate(g.hits):
        level = hs[0][0].level
        if level not in _RANK or level == "province" or i in generic:
            continue
        if len(hs) > 1 and (level not in _FILTERED or any(p.level != level for p, _ in hs)):
            continue
        (rank if len(hs) == 1 else multi)[i] = _RANK[level]
        strong[i] = hs[0][1] if len(hs) == 1 else any(st for _, st in hs)
        first[i], count[i] = len(places), len(hs)
        places.extend(hs)
    slot_strong = np.array([st for _, st in places], dtype=bool)
    places = [p for p, _ in places]
    slot = {f: np.array([-1 if getattr(p, f) is None else ids.setdefault(getattr(p, f), len(ids)) for p in places],
                        dtype=np.int64) for f in ("city_adcode", "district_adcode", "code", "township_code")}
    slot["slot_strong"] = slot_strong
    slot["own"] = np.where(slot["code"] == slot["city_adcode"], slot["city_adcode"], -1)
    slot["valid"] = np.array([-180.0 <= p.lon <= 180.0 and -90.0 <= p.lat <= 90.0 for p in places], dtype=bool)
    for f in ("city_name", "district_name", "district_adcode"):
        slot[f + "_value"] = np.empty(len(places), dtype=object)
        slot[f + "_value"][:] = [getattr(p, f) for p in places]
    slot["place"] = np.empty(len(places), dtype=object)
    slot["place"][:] = places
    arrays = _ARRAYS[g] = {"rank": rank, "multi": multi, "strong": strong, "first": first, "count": count} | slot
    return arrays


def _longer(texts: list[str], tid: np.ndarray, end: np.ndarray) -> np.ndarray:
    """_part_of_longer_name for each match (its text, its end), from the code points of the texts joined."""
    lens = np.fromiter(map(len, texts), dtype=np.int64, count=len(texts))
    base = np.cumsum(lens + 1) - (lens + 1)
    codes = np.frombuffer(("\n".join(texts) + "\n\n").encode("utf-32-le", "surrogatepass"), dtype=np.uint32)
    pos = base[tid] + end
    c0, c1 = codes[pos], codes[pos + 1]
    has0 = c0 != _NL
    has1 = has0 & (c1 != _NL)
    named = np.isin(c0, _L1) | (has1 & np.isin(c0.astype(np.int64) * 0x110000 + c1, _L2))
    jiedao = has1 & (c0 == ord("街")) & (c1 == ord("道"))
    return has0 & np.where(named, ~jiedao, has1 & np.isin(c0, _DIRS) & np.isin(c1, _DIR_NEXT))


def _simple_chains(texts: list[str], matched: list[list[tuple[int, int, int]]], g: Gazetteer,
                   facts: bool = False):
    """For each text, the slot (_pattern_arrays) of the place _chain_best gives, for the texts whose usable names
    are one-place names in strictly finer levels as said, each agreeing with the coarser ones (none drops out,
    none said twice), the finest possibly a name of several places of which exactly one agrees; -1 for any other
    text (_chain_best reads it). One pass of numpy over the batch's matches instead of a walk per text.
    ``facts``: also, per text, the rank of the finest name, its end, and whether a city or district was named
    (what _walk gives besides the place)."""
    a = _pattern_arrays(g)
    n = len(texts)
    counts = np.fromiter(map(len, matched), dtype=np.int64, count=n)
    flat = np.fromiter(itertools.chain.from_iterable(itertools.chain.from_iterable(matched)), dtype=np.int64,
                       count=3 * int(counts.sum())).reshape(-1, 3)
    tid = np.repeat(np.arange(n), counts)
    pat = flat[:, 0]
    bad = np.zeros(n + 1, dtype=bool)
    bad[tid[(a["rank"][pat] < 0) & (a["multi"][pat] < 0)]] = True     # a name that is neither: the walk's
    usable = a["strong"][pat] | ~_longer(texts, tid, flat[:, 2])
    tu, pu = tid[usable], pat[usable]
    r = np.maximum(a["rank"][pu], a["multi"][pu])
    same = tu[1:] == tu[:-1]
    last = np.r_[~same, True] if len(tu) else np.zeros(0, dtype=bool)
    bad[tu[1:][same & (r[1:] <= r[:-1])]] = True               # levels not strictly finer as said
    bad[tu[(a["multi"][pu] >= 0) & ~last]] = True                # several places, not the finest name
    one = a["rank"][pu] >= 0
    at = a["first"][pu]                                          # the slot of a one-place name
    ctx = {}
    for level, field in (("city", "city_adcode"), ("district", "code"), ("township", "code"), ("district", "own")):
        v = np.full(n, -1, dtype=np.int64)
        sel = one & (r == _RANK[level])
        v[tu[sel]] = a[field][at[sel]]
        ctx[field if field == "own" else level] = v
    ctx["cities"] = np.where(ctx["city"] >= 0, ctx["city"], ctx["own"])
    agree = _agree(a, at[one], r[one], tu[one], ctx)
    bad[tu[one][~agree]] = True                                  # a name that drops out or conflicts
    out = np.full(n, -1, dtype=np.int64)
    out[tu[last & one]] = at[last & one]
    many = np.flatnonzero(last & (a["multi"][pu] >= 0))         # the finest name has several places
    if len(many):
        k = np.repeat(many, a["count"][pu[many]])
        slots = a["first"][pu[k]] + (np.arange(len(k)) - np.repeat(np.cumsum(a["count"][pu[many]])
                                                                     - a["count"][pu[many]], a["count"][pu[many]]))
        ok = _agree(a, slots, r[k], tu[k], ctx)
        agreeing = np.bincount(k[ok], minlength=len(tu))[many]
        bad[tu[many][agreeing != 1]] = True                      # none agrees (drops out) or several (_rank)
        out[tu[k[ok]]] = slots[ok]
    out[bad[:n]] = -1
    if not facts:
        return out
    rank, end = np.full(n, -1, dtype=np.int64), np.full(n, -1, dtype=np.int64)
    rank[tu[last]], end[tu[last]] = r[last], flat[usable, 2][last]
    return out, rank, end, (ctx["cities"] >= 0) | (ctx["district"] >= 0)


def _agree(a: dict, slots: np.ndarray, r: np.ndarray, t: np.ndarray, ctx: dict) -> np.ndarray:
    """_agrees for each place (slot) of a name of rank ``r`` said in text ``t``, with the text's coarser names."""
    city, district, town = a["city_adcode"][slots], a["district_adcode"][slots], a["township_code"][slots]
    named, cities, districts, towns = ctx["city"][t], ctx["cities"][t], ctx["district"][t], ctx["township"][t]
    filtered = r >= _RANK["township"]
    return (((r != _RANK["district"]) | (named < 0) | (city == named))
            & (~filtered | (((cities < 0) | (city == cities)) & ((districts < 0) | (district == districts))))
            & ((r != _RANK["community"]) | (towns < 0) | (town == towns)))


def _answers(texts: list[str], g: Gazetteer) -> dict[str, tuple | None]:
    """Normalised text -> its answer as an _entry (None where refused: asked again line by line, for the
    message). A text whose names form a plain chain is answered by _chain_entry; any other by the geocoder's
    ``answer``."""
    parts = _parts(g)
    matched = g.matches_many(texts)                 # first: a gazetteer frozen on its first scan is so now
    info, a = _info(g), _pattern_arrays(g)
    names, hits, places, strong = g.names, g.hits, a["place"], a["slot_strong"]
    out: dict[str, tuple | None] = {}
    for norm, found, slot, rank, end, context in zip(texts, matched, *(
            x.tolist() for x in _simple_chains(texts, matched, g, facts=True))):
        if slot >= 0:
            out[norm] = _one_place_entry(norm, _ORDER[rank], places[slot], strong[slot], end, context, parts)
            continue
        entry = _chain_entry(norm, found, info, g, parts) if found else False
        if entry is False:
            try:
                a = answer(norm, norm, [Mention(s, e, names[i], hits[i]) for i, s, e in found], g)
            except LocateError:
                out[norm] = None
                continue
            entry = _entry(a.best, a.level, a.ranked, a.confidence, a.notes, parts)
        out[norm] = entry
    return out


# per gazetteer: pattern -> what _walk needs of its name (None until asked): False when it means a place outside
# Guangdong's levels (another province); else (any strong alias, the cities 城区 must follow, its levels), each level
# (rank, level, its hits, their one place or None, and the sets the level gives context with when all its hits are
# kept: cities, codes, the cities of districts that are their city)
_INFO: weakref.WeakKeyDictionary[Gazetteer, list] = weakref.WeakKeyDictionary()


def _info(g: Gazetteer) -> list:
    info = _INFO.get(g)
    if info is None or len(info) != len(g.names):
        info = _INFO[g] = [None] * len(g.names)
    return info


def _pattern_info(g: Gazetteer, i: int) -> tuple | bool:
    hits, alias = g.hits[i], g.names[i]
    if len(hits) == 1 and alias not in _GENERIC_DISTRICTS:     # most names: one place (no grouping, no sorting)
        p, strong = hits[0]
        if p.level not in _RANK:
            return False
        own = frozenset((p.city_adcode,)) if p.code == p.city_adcode else frozenset()
        return strong, None, ((_RANK[p.level], p.level, hits, p,
                               (frozenset((p.city_adcode,)), frozenset((p.code,)), own)),)
    per: dict[str, list] = {}
    for h in hits:
        per.setdefault(h[0].level, []).append(h)
    if any(level not in _RANK for level in per):
        return False
    levels = tuple(sorted(((_RANK[level], level, tuple(hs), hs[0][0] if len(hs) == 1 else None,
                            (frozenset(p.city_adcode for p, _ in hs), frozenset(p.code for p, _ in hs),
                             frozenset(p.city_adcode for p, _ in hs if p.code == p.city_adcode)))
                           for level, hs in per.items()), key=lambda e: e[0]))
    generic = frozenset(p.city_adcode for p, _ in hits) if alias in _GENERIC_DISTRICTS else None
    return any(s for _, s in hits), generic, levels


def _chain(norm: str, found: list[tuple[int, int, int]], info: list, g: Gazetteer) -> _Answer | None:
    """``answer`` for a text whose usable names form a plain chain (_walk): coarse to fine in the order said, each
    agreeing with the coarser ones (广州市天河区沙河街道先烈东社区: the usual shape of an address); None for any
    other (a conflict, two names of one level, levels out of order, a name that keeps places of two levels,
    another province, nothing usable), which ``answer`` reads in full. The steps are ``answer``'s own (_usable's
    tests, _consistent, _rank, _notes), without the Mention and grouping of each name said."""
    walked = _walk(norm, found, info, g)
    if walked is None:
        return None
    (i, s, e), level, ok, end, context = walked
    mention = Mention(s, e, g.names[i], g.hits[i])
    ranked = _rank([_Hit(mention, p, st) for p, st in ok], level)
    best, score, _ = ranked[0]
    notes, factor = _notes(norm, level, best, end, ranked)
    if level in ("township", "place", "community", "road") and not context:
        factor *= NO_CONTEXT_FACTOR
    if level == "province":
        best = g.province or best
    return _Answer(best, level, ranked, max(0.0, min(1.0, score * factor)), notes)


def _chain_best(norm: str, found: list[tuple[int, int, int]], info: list, g: Gazetteer) -> Place | None:
    """The place _chain's answer uses (its ``best``), without the notes and scores around it; None as _chain."""
    walked = _walk(norm, found, info, g)
    if walked is None:
        return None
    (i, s, e), level, ok, _, _ = walked
    if level == "province":
        return g.province or ok[0][0]
    if len(ok) == 1:
        return ok[0][0]
    mention = Mention(s, e, g.names[i], g.hits[i])
    return _rank([_Hit(mention, p, st) for p, st in ok], level)[0][0]


def _chain_entry(norm: str, found: list[tuple[int, int, int]], info: list, g: Gazetteer,
                 parts: dict) -> tuple | None | bool:
    """_entry of _chain's answer (None where its point is not a valid one), False where _chain gives None. A
    chain ending in one place is scored as _rank scores one place, without the _Hit, ranking and _Answer."""
    walked = _walk(norm, found, info, g)
    if walked is None:
        return False
    (i, s, e), level, ok, end, context = walked
    if len(ok) != 1 or level == "province":
        a = _chain(norm, found, info, g)
        return _entry(a.best, a.level, a.ranked, a.confidence, a.notes, parts)
    return _one_place_entry(norm, level, ok[0][0], ok[0][1], end, context, parts)


def _one_place_entry(norm: str, level: str, best: Place, strong: bool, end: int, context: bool,
                     parts: dict) -> tuple | None:
    """_entry of _chain's answer when its finest name keeps one place: scored as _rank scores one place."""
    score = BASE_CONFIDENCE[level] * (1.0 if strong else WEAK_FACTOR)
    notes, factor = _notes(norm, level, best, end, (best,))    # one place: _notes reads only their count
    if level in ("township", "place", "community", "road") and not context:
        factor *= NO_CONTEXT_FACTOR
    return _entry(best, level, ((best, score, None),), max(0.0, min(1.0, score * factor)), notes, parts)


def _walk(norm: str, found: list[tuple[int, int, int]], info: list, g: Gazetteer) -> tuple | None:
    """The chain's finest mention (pattern, start, end), its level and agreeing hits, the end of the last usable
    name, and whether a city or district was named; None where the names are not a plain chain.

    A plain chain, read as ``answer`` reads it (_usable, then _resolve level by level): of each usable name, at
    most one level keeps places that agree with the coarser names said before it, the levels kept go coarse to
    fine in the order said, and a name whose level keeps none drops out as _resolve drops it (agreeing is only
    narrowed by names said later: the chain's names are coarser only where kept before). A name of the chain said
    again at its level counts once (it agrees as it did; _rank ranks the copies as one). None: a strong district
    outside the city named (answer notes the conflict), two levels kept by one name, levels out of order."""
    cities = districts = towns = None               # made when a name gives one (_consistent reads None as none)
    named = None                                    # the city level's cities: a district agrees with these only
    prev, last, end, before = -1, None, 0, None
    said: dict[int, int] = {}                       # pattern -> rank of the names kept
    for m in found:
        inf = info[m[0]]
        if inf is None:
            inf = info[m[0]] = _pattern_info(g, m[0])
        if inf is False:
            return None
        strong, generic, levels = inf
        if not strong and _part_of_longer_name(norm, m[2]):
            continue                                # part of a longer name (天河路): not a place (_usable)
        if generic is not None and not _generic_usable(m, before, generic, info, g):
            continue                                # 城区 not right after its city (_usable)
        before, end = m, m[2]
        if len(levels) == 1 and levels[0][3] is not None:     # one place (most names): _kept's test of it, inline
            rank, level, ok, one, sets = levels[0]
            if not (_agrees(one, level, named, cities, districts, towns) if named or cities or districts or towns
                    else True):
                if strong and level == "district":
                    return None                     # answer notes the conflict
                continue                            # it drops out (_resolve)
        else:
            kept = _kept(levels, named, cities, districts, towns)
            if kept is None:
                return None
            if kept is False:
                continue                            # no place of it agrees: it drops out (_resolve)
            rank, level, ok, sets = kept
        if rank <= prev:
            if said.get(m[0]) == rank:      # a name of the chain said again (中山市中山市, 连平县上坪镇连平县上坪镇新陂):
                continue                    # as said once
            return None
        prev = said[m[0]] = rank
        if level == "city":
            cities = named = sets[0] if sets else frozenset(p.city_adcode for p, _ in ok)
        elif level == "district":
            districts = sets[1] if sets else frozenset(p.code for p, _ in ok)
            own = sets[2] if sets else frozenset(p.city_adcode for p, _ in ok if p.code == p.city_adcode)
            if own:
                cities = own | cities if cities else own
        elif level == "township":
            towns = sets[1] if sets else frozenset(p.code for p, _ in ok)
        last = (m, level, ok)
    if last is None:
        return None
    return last[0], last[1], last[2], end, bool(cities or districts)


def _kept(levels: tuple, named, cities, districts, towns) -> tuple | bool | None:
    """Of a name's levels, the one whose places agree with the context: (rank, level, the places kept, the
    level's sets when all its places are kept, else None); False when none does; None for a conflict (a strong
    district outside the city named) or two levels kept. A district agrees with the cities named as cities
    (``named``: _resolve filters the district level before its districts add their own cities), the finer levels
    with ``cities``, the two together."""
    kept: tuple | bool = False
    for rank, level, hits, one, sets in levels:
        if level == "district":
            if not named:
                ok = hits
            elif one is not None:
                ok = hits if one.city_adcode in named else ()
            else:
                ok = [h for h in hits if h[0].city_adcode in named]
            if not ok and any(s for _, s in hits):
                return None                         # answer notes the conflict
        elif level in _FILTERED and (cities or districts or towns):
            if one is not None:                     # _consistent, for the one place most names mean
                ok = hits if _agrees(one, level, named, cities, districts, towns) else ()
            else:
                ok = [h for h in hits if _consistent(h[0], cities, districts, towns)]
        else:
            ok = hits
        if ok:
            if kept is not False:
                return None                         # two levels of one name: answer groups them
            kept = (rank, level, ok, sets if len(ok) == len(hits) else None)
    return kept


def _agrees(p: Place, level: str, named, cities, districts, towns) -> bool:
    """Whether the one place of a name of ``level`` agrees with the names before it (_kept's test)."""
    if level == "district":
        return not named or p.city_adcode in named
    if level not in _FILTERED:
        return True
    return ((not cities or p.city_adcode in cities) and (not districts or p.district_adcode in districts)
            and (not towns or level != "community" or p.township_code in towns))


def _generic_usable(m: tuple, before: tuple | None, cities: frozenset, info: list, g: Gazetteer) -> bool:
    """_usable's test of 城区: right after a name that means its city (or a district that is its city)."""
    if before is None or before[2] != m[1]:
        return False
    return any(p.level == "city" and p.city_adcode in cities or p.code in cities for p, _ in g.hits[before[0]])


def locate_scanned(texts: list[str], scanned: list[list[Mention]], g: Gazetteer) -> list[dict | Exception]:
    """For each normalised text and its mentions, ``locate_offline(text, g=g, scanned=mentions)``: its
    Location.as_dict(), or the error it raises (intake locates a chunk's place words so)."""
    out: list[dict | Exception] = []
    parts = _parts(g)
    for text, mentions in zip(texts, scanned):
        try:
            d = _as_dict(answer(text, text, mentions, g), parts) if len(text) <= MAX_ADDRESS_CHARS else None
            out.append(d if d is not None else locate_offline(text, g=g, scanned=mentions).as_dict())
        except (IncidentError, GeocoderError) as e:
            out.append(e)
    return out


@contextmanager
def collector_paused() -> Iterator[None]:
    """The cyclic garbage collector off while a chunk is answered (restored after, as it was).

    A chunk allocates thousands of dicts and lists that all survive it and hold no reference cycles: the
    collector's passes over them (and its full collections, which walk every object of the process) find
    nothing to free and were a third of a batch's time. A chunk is bounded (CHUNK lines), so is what it holds."""
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()


def _one(line: str, g: Gazetteer) -> dict:
    try:
        return locate_offline(line, g=g).as_dict()
    except (IncidentError, GeocoderError) as e:
        return {"error": str(e)}


# per gazetteer: id(place) -> the part of an answer that is the place's alone; (id(place), score) -> a candidate.
# Shared by the answers of the memo, never handed out: every dict leaves through copy_answer.
_PARTS: weakref.WeakKeyDictionary[Gazetteer, dict] = weakref.WeakKeyDictionary()
_MAX_PARTS = 200_000


def _parts(g: Gazetteer) -> dict:
    parts = _PARTS.get(g)
    if parts is None:
        parts = _PARTS[g] = {}
    return parts


def _as_dict(a: _Answer, parts: dict) -> dict | None:
    """``Location.as_dict()`` of the answer's Location (None if its point is not a valid one: locate_offline
    then says what is wrong)."""
    e = _entry(a.best, a.level, a.ranked, a.confidence, a.notes, parts)
    return None if e is None else _thawed(e)


def _entry(best: Place, level: str, ranked, confidence: float, notes: list[str], parts: dict) -> tuple | None:
    """An answer in the batch's own form, (the place's part of the dict, confidence, candidates, level, notes):
    two objects the collector tracks (the tuples holding dicts) where a kept answer dict had three, and no dict
    made only to be copied. None if the point is not a valid one. _thawed makes the ``Location.as_dict()`` of
    it."""
    base = parts.get(id(best))
    if base is None:
        if not (-180.0 <= best.lon <= 180.0 and -90.0 <= best.lat <= 90.0):
            return None
        base = {"lon": round(best.lon, 7), "lat": round(best.lat, 7), "crs": "wgs84", "precision": _precision(best),
                "district_adcode": best.district_adcode, "city_adcode": best.city_adcode,
                "district_name": best.district_name, "city_name": best.city_name, "matched": best.full,
                "confidence": None, "uncertainty_m": round(best.uncertainty_m), "source": "offline",
                "candidates": None, "matched_level": None}
        if len(parts) < _MAX_PARTS:
            parts[id(best)] = base
    if len(ranked) == 1:
        candidates = (_candidate(ranked[0][0], ranked[0][1], parts),)
    else:
        candidates = tuple(_candidate(p, s, parts) for p, s, _ in ranked[:MAX_CANDIDATES])
    return base, round(confidence, 3), candidates, level, tuple(notes)


def _thawed(e: tuple) -> dict:
    """The ``Location.as_dict()`` of an _entry: the caller's own (its lists and dicts new)."""
    base, confidence, candidates, level, notes = e
    d = base.copy()
    d["confidence"] = confidence
    d["candidates"] = [candidates[0].copy()] if len(candidates) == 1 else [c.copy() for c in candidates]
    d["matched_level"] = level
    if notes:
        d["notes"] = list(notes)
    return d


def _candidate(p: Place, score: float, parts: dict) -> dict:
    """``Candidate.as_dict()`` of incidents.geocode._candidate(p, score)."""
    key = (id(p), score)
    c = parts.get(key)
    if c is None:
        c = {"name": p.full, "precision": _precision(p), "lon": p.lon, "lat": p.lat,
             "district_adcode": p.district_adcode, "city_adcode": p.city_adcode, "score": round(score, 4),
             "uncertainty_m": round(p.uncertainty_m)}
        if len(parts) < _MAX_PARTS:
            parts[key] = c
    return c


def copy_answer(d: dict) -> dict:
    """An independent copy of a batch answer (its lists and dicts copied too)."""
    out = dict(d)
    if "candidates" in d:
        out["candidates"] = [dict(c) for c in d["candidates"]]
    if "notes" in d:
        out["notes"] = list(d["notes"])
    if "input" in d:
        out["input"] = dict(d["input"])
    if "township" in d:
        out["township"] = dict(d["township"])
    return out

