"""The geocoder's batch path (incidents._batch via locate_batch) gives exactly what locate gives one address at a
time: on thousands of real gazetteer addresses, on shared names with several candidates, and on refusals."""
from __future__ import annotations

import csv
import json

import numpy as np
import pandas as pd
import pytest

from incidents import _batch
from incidents.errors import LocateError
from incidents.gazetteer import gazetteer
from incidents.geocode import locate, locate_batch, normalise
from settings import ROOT

GAZ = ROOT / "data" / "gazetteer"
FEVER = ROOT.parent / "shared" / "data" / "facilities" / "shenzhen_fever_clinic_hospitals_2020.csv"


def _one(text) -> str:
    try:
        return json.dumps(locate(text).as_dict(), ensure_ascii=False)
    except LocateError as e:
        return json.dumps({"error": str(e)}, ensure_ascii=False)


def _batch_json(lines, **kw) -> list[str]:
    return [json.dumps(d, ensure_ascii=False) for d in locate_batch(lines, **kw)]


def _real_addresses(n: int, seed: int) -> list[str]:
    """Addresses as callers give them, from real NBS community rows: the full chain, parts of it, a community
    alone (often a name several places share), with spaces, full-width digits, a house number or a road."""
    v = pd.read_csv(GAZ / "guangdong_villages_communities_nbs2023.csv", dtype=str)
    rng = np.random.default_rng(seed)
    out = []
    for k, r in enumerate(v.iloc[rng.integers(0, len(v), n)].itertuples(index=False)):
        short = r.name.replace("居民委员会", "").replace("村民委员会", "")
        out.append([f"{r.cityName}{r.areaName}{r.streetName}{short}", f"{r.cityName}{r.areaName}{r.streetName}",
                    f"{r.areaName}{short}", f"{r.cityName}{r.areaName}", r.name, short,
                    f"{r.cityName} {r.areaName} {r.streetName}１２号", f"{r.streetName}{short}附近的新华路",
                    f"广州市{r.areaName}{short}", f"北京市{r.areaName}"][k % 10])
    return out


def test_batch_answers_are_those_of_locate_one_by_one_on_real_addresses():
    lines = _real_addresses(3000, seed=20261202)
    if FEVER.is_file():
        with FEVER.open(encoding="utf-8") as f:
            lines += [row["address"] for row in csv.DictReader(f)]
    lines += lines[:300]                                  # repeats, answered from the batch's memo
    one = [_one(a) for a in lines]
    assert _batch_json(lines) == one
    assert sum('"error"' in x for x in one) > 50          # refusals (北京市...) are in the mix
    assert sum('"matched_level": "community"' in x for x in one) > 900
    assert sum("may mean" in x for x in one) > 100        # shared names: several candidates


def test_a_shared_name_gives_the_same_candidates_as_locate():
    g = gazetteer()
    shared = [a for a, hits in g.index.items()
              if len(hits) >= 3 and all(p.level == "community" for p, _ in hits) and len(a) >= 3][:40]
    assert shared
    out = list(locate_batch(shared))
    for name, d in zip(shared, out):
        want = locate(name).as_dict()
        assert d == want and json.dumps(d, ensure_ascii=False) == json.dumps(want, ensure_ascii=False)
    many = [d for d in out if len(d["candidates"]) >= 3]
    assert many and all(any("may mean" in n for n in d["notes"]) for d in many)


def test_refusals_are_one_error_line_each_and_the_batch_goes_on():
    lines = ["广州市天河区", "", "   ", "北京市朝阳区", "火星市奥林匹斯山", "x" * 201, None, "深圳市福田区景田路"]
    out = list(locate_batch(lines))
    assert [set(d) == {"error"} for d in out] == [False, True, True, True, True, True, True, False]
    for line, d in zip(lines, out):
        if "error" in d:
            with pytest.raises(LocateError) as e:
                locate(line)
            assert d["error"] == str(e.value)
    assert out[0]["district_adcode"] == "440106" and out[-1]["precision"] == "road"


def test_answers_are_independent_copies_across_chunks(monkeypatch):
    monkeypatch.setattr(_batch, "CHUNK", 3)
    lines = ["广州市天河区", "广州市 天河区", "深圳市福田区", "广州市天河区", "乌石村委会", "乌石村委会", "广州市天河区"]
    out = list(locate_batch(lines, memo_size=2))
    assert _batch_json(lines) == [_one(a) for a in lines]
    out[0]["candidates"][0]["name"] = "changed"
    out[0]["candidates"].clear()
    out[4]["notes"].clear()
    again = list(locate_batch(lines))
    assert out[1]["candidates"] and out[3]["candidates"][0]["name"] != "changed" and out[5]["notes"]
    assert again == [locate(a).as_dict() for a in lines]


def test_scan_many_finds_what_scan_finds_in_each_text():
    g = gazetteer()
    texts = [normalise(a) for a in _real_addresses(400, seed=7)] + ["", "广州市", "无地名"]
    assert g.scan_many(texts) == [g.scan(t) for t in texts]
    assert g.scan_many(["广州\n市天河区", "深圳市"]) == [g.scan("广州\n市天河区"), g.scan("深圳市")]
    assert g.scan_many([]) == []


def test_leftmost_longest_as_the_names_are_said():
    m = gazetteer().scan("广东省广州市天河区沙面街道")
    assert [x.alias for x in m] == ["广东省", "广州市", "天河区", "沙面街道"]
    assert [(x.start, x.end) for x in m] == [(0, 3), (3, 6), (6, 9), (9, 13)]


def test_the_district_table_is_the_batch_answers_district_on_real_addresses():
    """locate_districts (cpca's shape: province, city, district, adcode) takes them from the same resolution as
    locate_batch, on thousands of real addresses, refusals and repeats included."""
    from incidents.geocode import locate_districts
    lines = _real_addresses(4000, seed=20261203)
    if FEVER.is_file():
        with FEVER.open(encoding="utf-8") as f:
            lines += [row["address"] for row in csv.DictReader(f)]
    lines += lines[:400] + ["", None, "x" * 201]
    frame = locate_districts(lines)
    assert list(frame.columns) == ["province", "city_name", "district_name", "district_adcode", "error"]
    got = [tuple(None if isinstance(v, float) else v for v in row) for row in frame.itertuples(index=False)]
    want = [("广东省" if "error" not in d else None, d.get("city_name"), d.get("district_name"),
             d.get("district_adcode"), d.get("error")) for d in locate_batch(lines)]
    assert got == want
    assert sum(w[4] is not None for w in want) > 50 and sum(w[3] is not None for w in want) > 3000


def test_the_chain_walk_answers_as_answer_does_on_real_addresses():
    """Every address the batch's direct walk (_batch._chain) answers gets exactly ``answer``'s _Answer."""
    from incidents.geocode import answer
    from incidents.gazetteer import Mention
    g = gazetteer()
    texts = [t for t in dict.fromkeys(normalise(x) for x in _real_addresses(6000, seed=7) if x) if t]
    found = g.matches_many(texts)
    info = _batch._info(g)
    walked = 0
    for text, ms in zip(texts, found):
        a = _batch._chain(text, ms, info, g) if ms else None
        if a is None:
            continue
        walked += 1
        assert a == answer(text, text, [Mention(s, e, g.names[i], g.hits[i]) for i, s, e in ms], g), text
        assert _batch._chain_best(text, ms, info, g) is a.best
    assert walked > len(texts) // 2


def test_normalise_many_is_normalise_of_each_line():
    from incidents.geocode import normalise_many
    lines = _real_addresses(2000, seed=11) + ["ＡＢＣ１２３　广州", "廣州市天河區", "a\u2028b", "x\x85y\r", "\u3000\t 天河",
                                             "e\u0301", "\u0301abc", "ﾃﾞ", "㍿", "①②", "", None] * 3
    rng = np.random.default_rng(5)
    lines += ["".join(chr(int(c)) for c in rng.integers(1, 0x2FFFF, int(k))).replace("\n", "")
              for k in rng.integers(0, 12, 2000)]
    assert normalise_many(lines) == [normalise(x) for x in lines]
    assert normalise_many(["广州\n市", "天河"] * 10) == [normalise(x) for x in ["广州\n市", "天河"] * 10]


def _walk_and_answer(g, text: str):
    from incidents.geocode import answer
    from incidents.gazetteer import Mention
    ms = g.matches_many([text])[0]
    walked = _batch._chain(text, ms, _batch._info(g), g)
    try:
        want = answer(text, text, [Mention(s, e, g.names[i], g.hits[i]) for i, s, e in ms], g)
    except LocateError as e:
        want = e
    return walked, want


@pytest.mark.parametrize("text", [
    "梅州市大埔县青溪镇祝丰村委会",            # 青溪镇: a township here and a GeoNames place elsewhere (two levels)
    "汕尾市城区捷胜镇",                      # 城区 right after its city
    "城区捷胜镇",                            # 城区 not after its city: not a place (_usable)
    "河源市连平县陂头镇连平县陂头镇蒲田",      # the chain said again (NBS names repeat their township)
    "惠城区青塘",                            # 青塘: another district's township, said short: it drops out
    "中山市中山市三乡镇",                     # the district said twice, then a township
])
def test_the_chain_walk_takes_the_shapes_answer_reads_as_a_chain(text):
    g = gazetteer()
    walked, want = _walk_and_answer(g, text)
    assert walked is not None and walked == want


@pytest.mark.parametrize("text", ["中山市东和平", "广州市福田区", "青溪镇祝丰村委会", "广州市番禺区大龙街道大龙"])
def test_the_chain_walk_leaves_to_answer_what_is_not_a_chain(text):
    """Two districts (中山市 then 和平: _resolve filters the district level before a district adds its own city),
    a conflict, a two-level name with no context to choose, a township named twice by two names."""
    g = gazetteer()
    walked, _ = _walk_and_answer(g, text)
    assert walked is None


def test_the_chain_walk_answers_as_answer_does_on_names_in_any_order():
    """Names of every level (several levels for one name too) strung together at random, said again, followed by
    road words: wherever the walk answers, it is answer's _Answer."""
    g = gazetteer()
    rng = np.random.default_rng(20261202)
    names = list(g.index)
    multi = [a for a, hits in g.index.items() if len({p.level for p, _ in hits}) > 1]
    tails = ["", "路", "街道", "大道", "东路", "12号", "小区", "区", "镇"]
    texts = []
    for _ in range(20000):
        parts = []
        for _ in range(int(rng.integers(1, 5))):
            pool = multi if rng.random() < 0.2 else names
            tail = tails[int(rng.integers(0, len(tails)))] if rng.random() < 0.2 else ""
            parts.append(pool[int(rng.integers(0, len(pool)))] + tail)
        texts.append("".join(parts + parts[:int(rng.integers(0, 2))]))     # sometimes the first name again
    walked = 0
    for text in dict.fromkeys(normalise(t) for t in texts):
        a, want = _walk_and_answer(g, text)
        if a is not None:
            walked += 1
            assert a == want, text
    assert walked > 1000


def test_the_district_tables_numpy_pass_gives_the_walks_place():
    """_simple_chains (numpy over the batch's matches) gives, wherever it answers, the very place _chain_best's walk
    gives: on the tests' real addresses and on random strings of names (shared names, road words after them)."""
    g = gazetteer()
    rng = np.random.default_rng(20261204)
    names = list(g.index)
    shared = [a for a, hits in g.index.items() if len(hits) > 1]
    tails = ["", "路", "街道", "大道", "东路", "12号", "小区", "中街", "东"]
    rand = []
    for _ in range(20000):
        parts = []
        for _ in range(int(rng.integers(1, 5))):
            pool = shared if rng.random() < 0.3 else names
            parts.append(pool[int(rng.integers(0, len(pool)))]
                         + (tails[int(rng.integers(0, len(tails)))] if rng.random() < 0.3 else ""))
        rand.append("".join(parts))
    texts = [t for t in dict.fromkeys(normalise(x) for x in _real_addresses(4000, seed=8) + rand if x) if t]
    matched = g.matches_many(texts)
    slots = _batch._simple_chains(texts, matched, g)
    places = _batch._pattern_arrays(g)["place"]
    info = _batch._info(g)
    answered = 0
    for text, ms, slot in zip(texts, matched, slots.tolist()):
        if slot >= 0:
            answered += 1
            assert places[slot] is _batch._chain_best(text, ms, info, g), text
    assert answered > len(texts) // 5
