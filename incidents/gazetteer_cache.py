"""The gazetteer as Arrow tables, for the persistent cache (incidents/cache.py): building it from data/ takes
~1.3 s (CSV parsing, outlines, the road graph), reading it back ~0.1 s.

    from incidents import gazetteer_cache
    g = gazetteer_cache.load(root, build)     # build(root) -> Gazetteer, called when no entry fits

Stored is what the builders make (``BUILT``): every Place once (a table), the name index (alias, place,
strong) in its order, the districts/cities/towns maps, the township points and the small numbers. What
``Gazetteer.freeze`` derives from the index (the scan's automaton) is rebuilt by calling it, so the scan
structure is never read from disk (the Rust automaton has no serialised form, and nothing here is pickled).
Building it over ~43,000 names is ~0.25 s, more than a command that scans a few hundred addresses (a
1,000-event drill scans 200) spends scanning: a ``Loaded`` gazetteer answers its first ``DICT_SCANS`` single
scans from the name index itself (at each position the longest name that starts there: leftmost-longest and
non-overlapping, the automaton's own rule, so the same mentions) and builds the automaton only after them, or
at once for a batch (``scan_many``, ``matches_many``). A gazetteer with an attribute this module does not know is
not stored (it is built each time): a new field can never be silently missing from a cached one.

The key covers the content of every file under the data folder (whatever the builders read; 12 MB hash in
~17 ms) and the source of gazetteer.py, admin.py, roads.py and this module.
"""
from __future__ import annotations

import dataclasses
import gc
import threading
import weakref
from collections.abc import Callable
from pathlib import Path

import numpy as np

from incidents import cache
from incidents.gazetteer import Gazetteer, Mention, Place

BUILT = ("index", "districts", "cities", "province", "towns", "town_points", "median_agree_m", "town_error_m",
         "towns_per_district", "district_area_km2", "spread_factor")
DERIVED = ("trie", "lengths", "names", "hits", "automaton")    # freeze()'s own, rebuilt on load
FIELDS = tuple(f.name for f in dataclasses.fields(Place))
MAPS = ("districts", "cities", "towns")
_HERE = Path(__file__).resolve().parent
_FREEZE = threading.Lock()
DICT_SCANS = 2000          # single scans answered from the index before the automaton is built (~25 us each)
# a Loaded gazetteer -> [its alias lengths, longest first; scans answered so far]: kept beside it, not in its
# attributes, which stay exactly the built gazetteer's
_BY_INDEX: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
CODE = [_HERE / "gazetteer.py", _HERE / "admin.py", _HERE / "roads.py", Path(__file__)]


class Loaded(Gazetteer):
    """A gazetteer read from the cache: scans by its index until ``DICT_SCANS`` scans, then frozen
    (``freeze``) once, whichever thread asks; a batch freezes it at once."""

    def scan(self, text: str):
        if self.automaton is None:
            state = _BY_INDEX.get(self)
            if state is None:
                state = _BY_INDEX.setdefault(self, [sorted({len(a) for a in self.index}, reverse=True), 0])
            if state[1] < DICT_SCANS:
                state[1] += 1        # unlocked: racing threads may each answer one more this way, the same answer
                return _index_scan(text, self.index, state[0])
        self._frozen()
        return super().scan(text)

    def scan_many(self, texts: list[str]):
        self._frozen()
        return super().scan_many(texts)

    def matches_many(self, texts: list[str]):
        self._frozen()
        return super().matches_many(texts)

    def _frozen(self) -> None:
        if self.automaton is None:       # freeze() sets the automaton last: once set, names and hits are too
            with _FREEZE:
                if self.automaton is None:
                    self.freeze()


def _index_scan(text: str, index: dict, lengths: list[int]) -> list[Mention]:
    """Leftmost-longest non-overlapping mentions of the index's names in ``text``, by look-ups: the earliest
    position where a name starts, the longest name there, then on from its end (as the automaton matches)."""
    out: list[Mention] = []
    n, i = len(text), 0
    while i < n:
        for size in lengths:
            if size <= n - i:
                alias = text[i:i + size]
                hits = index.get(alias)
                if hits is not None:
                    out.append(Mention(i, i + size, alias, tuple(hits)))
                    i += size
                    break
        else:
            i += 1
    return out


def inputs(root: Path) -> list[Path]:
    """Every file under the data folder ``root``, sorted."""
    return sorted(p for p in Path(root).rglob("*") if p.is_file())


def load(root: Path, build: Callable[[Path], Gazetteer]) -> Gazetteer:
    """The gazetteer of ``root``: from the cache when an entry for this data and code exists, else ``build``."""
    return cache.cached("gazetteer", inputs=inputs(root), code=CODE, build=lambda: build(root), encode=encode,
                        decode=decode)


def encode(g: Gazetteer) -> cache.Entry:
    import pyarrow as pa
    unknown = set(vars(g)) - set(BUILT) - set(DERIVED)
    if unknown:
        raise ValueError(f"Gazetteer has attributes this cache does not store: {sorted(unknown)}")
    pid: dict[int, int] = {}
    places: list[Place] = []

    def ref(p: Place) -> int:
        if id(p) not in pid:
            pid[id(p)] = len(places)
            places.append(p)
        return pid[id(p)]

    aliases, alias_pid, strong = [], [], []
    for alias, hits in g.index.items():
        for p, s in hits:
            aliases.append(alias)
            alias_pid.append(ref(p))
            strong.append(bool(s))
    maps = [(m, k, ref(p)) for m in MAPS for k, p in getattr(g, m).items()]
    tp = [(code, ref(p), float(x), float(y)) for code, (ps, xs, ys) in g.town_points.items()
          for p, x, y in zip(ps, xs, ys)]
    province = ref(g.province) if g.province is not None else None
    place_table = pa.table({f: [getattr(p, f) for p in places] for f in FIELDS})
    tables = {"places": place_table,
              "index": pa.table({"alias": aliases, "place": pa.array(alias_pid, pa.int32()), "strong": strong}),
              "maps": _table(("map", "key", "place"), maps), "town_points": _table(("district", "place", "x", "y"), tp)}
    meta = {"province": province, "median_agree_m": float(g.median_agree_m), "spread_factor": float(g.spread_factor),
            "town_error_m": {k: float(v) for k, v in g.town_error_m.items()},
            "towns_per_district": {k: int(v) for k, v in g.towns_per_district.items()},
            "district_area_km2": {k: float(v) for k, v in g.district_area_km2.items()}}
    return cache.Entry(tables, meta)


def _table(names: tuple[str, ...], rows: list[tuple]):
    import pyarrow as pa
    cols = list(zip(*rows)) if rows else [()] * len(names)
    return pa.table({n: list(c) for n, c in zip(names, cols)})


def decode(entry: cache.Entry) -> Gazetteer:
    # ~200,000 objects are made here and all stay alive: no cyclic collection walks them while they are made
    enabled = gc.isenabled()
    gc.disable()
    try:
        return _decode(entry)
    finally:
        if enabled:
            gc.enable()


def _decode(entry: cache.Entry) -> Gazetteer:
    t, meta = entry.tables, entry.meta
    cols = [t["places"].column(f).to_pylist() for f in FIELDS]
    places = [Place(*row) for row in zip(*cols)]
    g = Loaded()
    index: dict[str, list] = {}
    ix = t["index"]
    for alias, p, s in zip(ix.column("alias").to_pylist(), ix.column("place").to_pylist(),
                           ix.column("strong").to_pylist()):
        hits = index.get(alias)
        if hits is None:
            index[alias] = [(places[p], s)]
        else:
            hits.append((places[p], s))
    g.index = index
    m = t["maps"]
    for name, key, p in zip(m.column("map").to_pylist(), m.column("key").to_pylist(), m.column("place").to_pylist()):
        getattr(g, name)[key] = places[p]
    g.province = places[meta["province"]] if meta["province"] is not None else None
    g.town_points = _town_points(t["town_points"], places)
    g.median_agree_m, g.spread_factor = meta["median_agree_m"], meta["spread_factor"]
    g.town_error_m, g.towns_per_district = meta["town_error_m"], meta["towns_per_district"]
    g.district_area_km2 = meta["district_area_km2"]
    return g                            # frozen by its first scan


def _town_points(table, places: list[Place]) -> dict[str, tuple[list[Place], np.ndarray, np.ndarray]]:
    out: dict[str, tuple[list[Place], list[float], list[float]]] = {}
    for code, p, x, y in zip(*(table.column(c).to_pylist() for c in ("district", "place", "x", "y"))):
        ps, xs, ys = out.setdefault(code, ([], [], []))
        ps.append(places[p])
        xs.append(x)
        ys.append(y)
    return {code: (ps, np.asarray(xs, dtype=float), np.asarray(ys, dtype=float)) for code, (ps, xs, ys) in out.items()}
