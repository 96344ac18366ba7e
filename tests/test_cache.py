"""The persistent cache of built artefacts (incidents/cache.py): never answers for changed inputs, rebuilds a bad
entry silently, gives back what a fresh build gives, and survives writers racing on one entry."""
from __future__ import annotations

import multiprocessing as mp
import os
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from incidents import cache

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "data"


# ---------------------------------------------------------------- a toy artefact: the sum of a file's numbers
def _numbers(path: Path, calls: list) -> dict:
    calls.append(path)
    values = [int(v) for v in path.read_text().split()]
    return {"values": values, "total": sum(values)}


def _encode(v: dict) -> cache.Entry:
    return cache.Entry({"t": pa.table({"values": pa.array(v["values"], pa.int64())})}, {"total": v["total"]})


def _decode(e: cache.Entry) -> dict:
    return {"values": e.tables["t"].column("values").to_pylist(), "total": e.meta["total"]}


def _load(path: Path, folder: Path, calls: list) -> dict:
    return cache.cached("toy", inputs=[path], build=lambda: _numbers(path, calls), encode=_encode, decode=_decode,
                        folder=folder)


def _entries(folder: Path) -> list[Path]:
    return sorted(folder.glob(f"toy-*{cache.SUFFIX}"))


def test_second_load_is_answered_from_the_cache_and_equals_the_build(tmp_path):
    src, folder, calls = tmp_path / "n.txt", tmp_path / "cache", []
    src.write_text("1 2 3 40")
    first, second = _load(src, folder, calls), _load(src, folder, calls)
    assert first == second == {"values": [1, 2, 3, 40], "total": 46}
    assert len(calls) == 1 and len(_entries(folder)) == 1


@pytest.fixture
def unfrozen():
    import gc
    gc.unfreeze()
    yield gc
    cache.freeze_loaded(False)
    gc.unfreeze()


def test_a_process_that_keeps_what_it_loads_freezes_each_artefact_built_or_read(tmp_path, unfrozen):
    """freeze_loaded: what cached() returns (built, then read back) is moved out of the cyclic collector's
    generations, and stays whole and usable; off (the default), nothing is frozen."""
    src, folder, calls = tmp_path / "n.txt", tmp_path / "cache", []
    src.write_text("1 2 3 40")
    _load(src, folder, calls)
    assert unfrozen.get_freeze_count() == 0
    cache.freeze_loaded()
    built = _load(tmp_path / "n.txt", tmp_path / "other", calls)
    assert unfrozen.get_freeze_count() > 0 and unfrozen.is_tracked(built["values"])
    unfrozen.unfreeze()
    read = _load(src, folder, calls)
    assert unfrozen.get_freeze_count() > 0 and read == built == {"values": [1, 2, 3, 40], "total": 46}
    assert len(calls) == 2
    unfrozen.collect()                 # a full pass with them frozen frees nothing that is still referenced
    assert read["values"] == [1, 2, 3, 40]


def test_one_changed_byte_is_never_answered_from_the_cache_even_with_size_and_mtime_kept(tmp_path):
    src, folder, calls = tmp_path / "n.txt", tmp_path / "cache", []
    src.write_text("1 2 3 40")
    _load(src, folder, calls)
    st = src.stat()
    src.write_text("1 2 3 41")                                   # same size
    os.utime(src, ns=(st.st_atime_ns, st.st_mtime_ns))           # same mtime
    assert src.stat().st_size == st.st_size and src.stat().st_mtime_ns == st.st_mtime_ns
    assert _load(src, folder, calls)["total"] == 47
    assert len(calls) == 2
    src.write_text("1 2 3 40")                                   # back to the first content: its entry answers
    assert _load(src, folder, calls)["total"] == 46 and len(calls) == 2


def test_code_and_params_are_part_of_the_key(tmp_path):
    src = tmp_path / "n.txt"
    src.write_text("1")
    code = tmp_path / "builder.py"
    code.write_text("x = 1")
    k1 = cache.key_of("toy", [src], [code], {"a": 1})
    assert cache.key_of("toy", [src], [code], {"a": 2}) != k1
    code.write_text("x = 2")
    assert cache.key_of("toy", [src], [code], {"a": 1}) != k1
    assert cache.key_of("toy", [tmp_path / "missing.txt"], [code]) != cache.key_of("toy", [src], [code])


@pytest.mark.parametrize("damage", ["flip_body_byte", "truncate", "empty", "garbage", "other_format"])
def test_a_corrupt_entry_is_rebuilt_silently(tmp_path, damage, caplog):
    src, folder, calls = tmp_path / "n.txt", tmp_path / "cache", []
    src.write_text("5 6 7")
    _load(src, folder, calls)
    (entry,) = _entries(folder)
    data = bytearray(entry.read_bytes())
    if damage == "flip_body_byte":
        data[-3] ^= 0x01
    elif damage == "truncate":
        data = data[: len(data) // 2]
    elif damage == "empty":
        data = bytearray()
    elif damage == "garbage":
        data = bytearray(os.urandom(len(data)))
    else:
        data[len(cache.MAGIC) - 1] ^= 0x7F                     # another FORMAT
    entry.write_bytes(bytes(data))
    assert _load(src, folder, calls) == {"values": [5, 6, 7], "total": 18}
    assert len(calls) == 2                                      # rebuilt, no exception
    assert cache.read_entry(entry, "toy", entry.name[4:-len(cache.SUFFIX)]) is not None   # and rewritten whole
    assert _load(src, folder, calls)["total"] == 18 and len(calls) == 2


def test_an_entry_made_for_other_inputs_does_not_answer(tmp_path):
    a, b, folder, calls = tmp_path / "a.txt", tmp_path / "b.txt", tmp_path / "cache", []
    a.write_text("1 1")
    b.write_text("2 2")
    _load(a, folder, calls)
    (entry_a,) = _entries(folder)
    key_b = cache.key_of("toy", [b])
    shutil.copy(entry_a, folder / f"toy-{key_b}{cache.SUFFIX}")   # a's file under b's name
    assert _load(b, folder, calls)["total"] == 4 and len(calls) == 2


def test_a_decoder_failure_and_an_unwritable_folder_cost_a_build_not_an_error(tmp_path):
    src, calls = tmp_path / "n.txt", []
    src.write_text("3 4")
    folder = tmp_path / "cache"
    _load(src, folder, calls)

    def bad_decode(e):
        raise KeyError("no such table")
    got = cache.cached("toy", inputs=[src], build=lambda: _numbers(src, calls), encode=_encode, decode=bad_decode,
                       folder=folder)
    assert got["total"] == 7 and len(calls) == 2
    blocked = tmp_path / "a-file"
    blocked.write_text("not a folder")
    assert _load(src, blocked, calls)["total"] == 7 and len(calls) == 3


def test_an_unreadable_input_is_left_to_the_builder_to_refuse(tmp_path):
    folder, calls = tmp_path / "cache", []
    not_a_file = tmp_path / "dir.txt"
    not_a_file.mkdir()
    with pytest.raises(IsADirectoryError):                    # the builder's own error, not the key's
        cache.cached("toy", inputs=[not_a_file], build=lambda: _numbers(not_a_file, calls), encode=_encode,
                     decode=_decode, folder=folder)
    assert calls == [not_a_file]


def test_old_entries_of_a_kind_are_pruned(tmp_path):
    src, folder, calls = tmp_path / "n.txt", tmp_path / "cache", []
    for i in range(cache.KEEP + 4):
        src.write_text(str(i))
        _load(src, folder, calls)
    assert len(_entries(folder)) == cache.KEEP
    assert _load(src, folder, calls)["total"] == cache.KEEP + 3 and len(calls) == cache.KEEP + 4


def _race(folder: str, src: str, rounds: int, out) -> None:
    calls: list = []
    totals = {_load(Path(src), Path(folder), calls)["total"] for _ in range(rounds)}
    for _ in range(rounds):            # write the same entry again and again while the others read it
        v = _numbers(Path(src), calls)
        key = cache.key_of("toy", [Path(src)])
        cache.write_entry(Path(folder) / f"toy-{key}{cache.SUFFIX}", "toy", key, _encode(v))
        e = cache.read_entry(Path(folder) / f"toy-{key}{cache.SUFFIX}", "toy", key)
        totals.add(_decode(e)["total"] if e is not None else "unreadable")
    out.put(sorted(map(str, totals)))


def test_concurrent_writers_of_one_entry_never_leave_or_read_a_broken_file(tmp_path):
    src, folder = tmp_path / "n.txt", tmp_path / "cache"
    src.write_text(" ".join(str(i) for i in range(20000)))       # big enough that writes overlap
    ctx = mp.get_context("fork")
    out = ctx.Queue()
    procs = [ctx.Process(target=_race, args=(str(folder), str(src), 15, out)) for _ in range(4)]
    for p in procs:
        p.start()
    results = [out.get(timeout=120) for _ in procs]
    for p in procs:
        p.join(timeout=60)
        assert p.exitcode == 0
    want = str(sum(range(20000)))
    assert all(r == [want] for r in results), results
    assert [p.name for p in folder.iterdir() if p.name.endswith(".tmp")] == []
    assert _load(src, folder, [])["total"] == int(want)


# ---------------------------------------------------------------- the real artefacts: cached == fresh
@pytest.fixture
def folder(tmp_path):
    was = cache.directory()
    cache.configure(tmp_path / "cache")
    yield tmp_path / "cache"
    cache.configure(was)


def _fresh_then_cached(fn, clear, folder):
    """fn() built with the cache off, then stored and read back from it (each in a cold process cache)."""
    cache.configure(None)
    clear()
    fresh = fn()
    cache.configure(folder)
    clear()
    fn()                               # miss: built and written
    clear()
    hits = _hits()
    cached = fn()
    assert _hits() > hits, "not answered from the cache"
    return fresh, cached


def _hits() -> int:
    return sum(v for (what, _), v in cache.stats.items() if what == "hit")


def test_layers_from_the_cache_equal_the_parsed_layers(folder):
    from layers.catalog import BUNDLED, clear_cache
    for name in ("camera", "hospital", "shelter", "fire_station"):
        fresh, cached = _fresh_then_cached(lambda: BUNDLED.load(name), clear_cache, folder)
        pd.testing.assert_frame_equal(fresh.table, cached.table, check_exact=True)
        for col in ("lon", "lat", "x_m", "y_m"):
            a, b = getattr(fresh, col), getattr(cached, col)
            assert a.dtype == b.dtype == np.float64 and np.array_equal(a, b) and not b.flags.writeable
        assert (fresh.meta, fresh.source, fresh.synthetic) == (cached.meta, cached.source, cached.synthetic)


def test_an_edited_layer_file_is_read_again(folder, tmp_path):
    from layers.catalog import Catalog, clear_cache
    data = tmp_path / "data"
    (data / "layers").mkdir(parents=True)
    for f in ("layers.json", "shelter.csv"):
        shutil.copy(DATA / "layers" / f, data / "layers" / f)
    cat = Catalog(data, tmp_path / "var")
    clear_cache()
    first = cat.load("shelter")
    path = data / "layers" / "shelter.csv"
    text = path.read_text(encoding="utf-8")
    old_id = str(first.table["id"].iloc[0])
    new_id = old_id[:-1] + ("1" if old_id[-1] != "1" else "2")
    st = path.stat()
    path.write_text(text.replace(old_id, new_id, 1), encoding="utf-8")
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))
    clear_cache()
    assert str(cat.load("shelter").table["id"].iloc[0]) == new_id


def test_admin_outlines_from_the_cache_equal_the_geojson(folder):
    import geopandas as gpd
    from incidents import admin

    def clear():
        for f in (admin._districts, admin._cities, admin._province, admin._read_boundaries):
            f.cache_clear()
    for fn in (admin.districts, admin.cities, admin.province):
        fresh, cached = _fresh_then_cached(fn, clear, folder)
        assert type(cached) is gpd.GeoDataFrame and list(cached.columns) == list(fresh.columns)
        assert cached.crs == fresh.crs and cached.geometry.name == fresh.geometry.name
        pd.testing.assert_frame_equal(pd.DataFrame(fresh.drop(columns="geometry")),
                                      pd.DataFrame(cached.drop(columns="geometry")), check_exact=True)
        assert fresh.geometry.geom_equals_exact(cached.geometry, 0).all()
    clear()


def test_gazetteer_from_the_cache_equals_the_built_one(folder):
    from incidents import gazetteer as gz

    def clear():
        gz._cached.cache_clear()
        gz._build.cache_clear()
    fresh, cached = _fresh_then_cached(gz.gazetteer, clear, folder)
    assert fresh is not cached
    assert cached.automaton is None and cached.names == []   # frozen by its first scan, not at load
    assert fresh.scan("广州市天河区") == cached.scan("广州市天河区")
    assert sorted(vars(fresh)) == sorted(vars(cached))
    cached.matches_many([])                       # a batch freezes it: what freeze() derives is compared too
    for attr in sorted(vars(fresh)):
        a, b = getattr(fresh, attr), getattr(cached, attr)
        if attr == "automaton":
            continue                                  # rebuilt by freeze(); compared through scan below
        if attr == "town_points":
            assert list(a) == list(b)
            for code in a:
                assert a[code][0] == b[code][0]
                assert np.array_equal(a[code][1], b[code][1]) and np.array_equal(a[code][2], b[code][2])
        elif attr == "index":
            assert list(a) == list(b) and a == b
        else:
            assert a == b, attr
    for text in ("广州市天河区天河路 商场燃气爆炸", "深圳市福田区景田路", "澳门大学横琴校区",
                 "北京市朝阳区", "乳源县大桥镇", "沙面街道翠洲社区"):
        assert fresh.scan(text) == cached.scan(text), text
    clear()


def test_gazetteer_from_the_cache_scans_by_its_index_then_is_frozen_once_whichever_thread(folder, monkeypatch):
    from concurrent.futures import ThreadPoolExecutor
    from incidents import gazetteer as gz, gazetteer_cache

    def clear():
        gz._cached.cache_clear()
        gz._build.cache_clear()
    monkeypatch.setattr(gazetteer_cache, "DICT_SCANS", 3)
    fresh, cached = _fresh_then_cached(gz.gazetteer, clear, folder)
    texts = ["深圳市福田区景田路", "乳源县大桥镇", "沙面街道翠洲社区"] * 4
    assert [cached.scan(t) for t in texts[:3]] == [fresh.scan(t) for t in texts[:3]]
    assert cached.automaton is None and cached.names == []          # answered by the index alone
    with ThreadPoolExecutor(4) as pool:        # the scans that freeze it racing: each answers as the built one
        got = list(pool.map(cached.scan, texts))
    assert got == [fresh.scan(t) for t in texts]
    automaton = cached.automaton
    assert automaton is not None and cached.names == fresh.names and cached.hits == fresh.hits
    assert cached.scan_many(texts) == fresh.scan_many(texts) and cached.automaton is automaton   # once
    clear()


@pytest.mark.parametrize("batch", ["scan_many", "matches_many"])
def test_a_batch_freezes_a_cached_gazetteer_at_once(folder, batch):
    from incidents import gazetteer as gz

    def clear():
        gz._cached.cache_clear()
        gz._build.cache_clear()
    fresh, cached = _fresh_then_cached(gz.gazetteer, clear, folder)
    texts = ["广州市天河区天河路 商场燃气爆炸", "深圳市福田区景田路"]
    assert getattr(cached, batch)(texts) == getattr(fresh, batch)(texts)
    assert cached.automaton is not None and cached.names == fresh.names
    clear()


def test_the_index_scan_finds_what_the_automaton_finds(folder):
    """Leftmost-longest by look-ups against the Aho-Corasick automaton, on texts glued from the gazetteer's own
    names (whole, cut, run together, with other words between)."""
    import random
    from incidents import gazetteer as gz
    from incidents.gazetteer_cache import _index_scan
    gz._cached.cache_clear()
    g = gz._build(DATA)
    names = g.names
    lengths = sorted({len(a) for a in g.index}, reverse=True)
    rnd = random.Random(20261202)
    texts = ["", "广", "广州", "广州市天河区天河路 商场燃气爆炸", "澳门大学横琴校区", "北京市朝阳区"]
    for _ in range(3000):
        parts = [rnd.choice(names) for _ in range(rnd.randint(1, 5))]
        text = "".join(p[rnd.randint(0, len(p) // 2):] if rnd.random() < 0.3 else p for p in parts)
        texts.append(text + rnd.choice(["", "路", "号", "商场燃气爆炸", " ", "街道", "社区"]))
    assert [_index_scan(t, g.index, lengths) for t in texts] == [g.scan(t) for t in texts]
    assert sum(len(g.scan(t)) for t in texts) > len(texts)          # the texts do hold names


def test_road_graph_from_the_cache_is_the_same_graph(folder):
    from incidents.model import Point
    from layers import routing
    path = DATA / routing.GRAPH_FILE
    fresh, cached = _fresh_then_cached(lambda: routing.RoadGraph.from_graphml(path), lambda: None, folder)
    assert list(fresh.graph.nodes) == list(cached.graph.nodes)
    assert list(fresh.graph.edges(data=True)) == list(cached.graph.edges(data=True))
    assert all(list(fresh.graph.pred[n]) == list(cached.graph.pred[n]) for n in fresh.graph.nodes)
    cands = [{"id": str(i), "lon": 114.03 + i * 0.004, "lat": 22.52 + (i % 5) * 0.003} for i in range(12)]
    for p in (Point(114.0579, 22.5431), Point(114.05, 22.53)):
        assert routing.drive_times(p, cands, graph=fresh) == routing.drive_times(p, cands, graph=cached)


def test_shared_transformer_from_the_cache_transforms_as_the_searched_operation(folder):
    from pyproj import Transformer
    from incidents import coords
    rng = np.random.default_rng(7)
    lon, lat = rng.uniform(109.6, 117.4, 2000), rng.uniform(20.2, 25.6, 2000)
    for src, dst, (a, b) in (("EPSG:4326", "EPSG:4547", (lon, lat)),
                             ("EPSG:4547", "EPSG:4326", Transformer.from_crs(
                                 "EPSG:4326", "EPSG:4547", always_xy=True).transform(lon, lat))):
        searched = Transformer.from_crs(src, dst, always_xy=True)
        fresh, cached = _fresh_then_cached(lambda: coords.transformer(src, dst), coords.transformer.cache_clear,
                                           folder)
        want = searched.transform(a, b)
        for got in (fresh.transform(a, b), cached.transform(a, b)):
            assert np.array_equal(got[0], want[0]) and np.array_equal(got[1], want[1])
        coords.transformer.cache_clear()
        assert coords.transformer(src, dst) is coords.transformer(src, dst)     # one per pair and process
    coords.transformer.cache_clear()


def test_a_pipeline_stored_for_another_proj_database_does_not_answer(folder, monkeypatch):
    from incidents import coords
    coords.transformer.cache_clear()
    coords.transformer("EPSG:4326", "EPSG:4547")                # stored
    misses = cache.stats["miss", "proj-pipeline"]
    coords.transformer.cache_clear()
    monkeypatch.setattr(coords, "_proj_identity", lambda: {"proj": "9.9.9", "proj_db": "another"})
    coords.transformer("EPSG:4326", "EPSG:4547")
    assert cache.stats["miss", "proj-pipeline"] == misses + 1
    coords.transformer.cache_clear()
