"""Intake's batch path (a chunk read, then its places located together by the geocoder's batch engine) gives what
read gives one text at a time; the regexes' first-character lookaheads leave out no character a match can begin
with."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from incidents import _batch, intake
from incidents.errors import IncidentError
from incidents.intake import read, read_batch

DATA = Path(__file__).resolve().parents[1] / "data"


def _texts() -> list[str]:
    """The real texts, and each real text's words after its place put after real gazetteer addresses."""
    from bench.geocoder import addresses
    real = [c["text"] for c in yaml.safe_load((DATA / "intake_real_texts.yaml").read_text(encoding="utf-8"))["cases"]]
    tails = []
    for t in real:
        p = intake.read_place(t)
        tails.append((t.split(p, 1)[1] if p and p in t else t).lstrip("，,"))
    made = [a + tails[i % len(tails)] for i, a in enumerate(addresses(600, seed=99))]
    return real + made + made[:50] + ["", "  ", "x" * 2001, "北京市朝阳区一小区着火，3人受伤", "着火了 有人被困"]


def _one(text: str) -> str:
    try:
        return json.dumps(read(text).as_dict(), ensure_ascii=False)
    except IncidentError as e:
        return json.dumps({"error": str(e)}, ensure_ascii=False)


def test_batch_readings_are_those_of_read_one_by_one(monkeypatch):
    monkeypatch.setattr(_batch, "CHUNK", 97)          # several chunks, places repeated across them
    texts = _texts()
    out = [json.dumps(d, ensure_ascii=False) for d in read_batch(texts)]
    assert out == [_one(t) for t in texts]
    assert sum('"error"' in x[:10] for x in out) == 3
    assert sum("place not located" in x for x in out) >= 1       # 北京市...: located, refused, noted


def test_batch_readings_are_independent_copies():
    out = list(read_batch(["广州市天河区天河路着火 3人受伤", "广州市天河区天河路着火 3人受伤"]))
    out[0]["location"]["candidates"].clear()
    out[0]["grade"]["rule"]["law"] = "changed"
    assert out[1]["location"]["candidates"] and out[1]["grade"]["rule"]["law"] != "changed"
    assert list(read_batch(["广州市天河区天河路着火 3人受伤"]))[0] == read("广州市天河区天河路着火 3人受伤").as_dict()


def _first_chars(items) -> tuple[set, bool]:
    """The characters (or categories) a parsed regex can begin with, and whether it can match empty."""
    import re._constants as C
    out: set = set()
    for op, av in items:
        if op is C.LITERAL:
            return out | {chr(av)}, False
        if op is C.IN:
            return out | {chr(a) if o is C.LITERAL else str(a) for o, a in av}, False
        if op is C.BRANCH:
            firsts = [_first_chars(b) for b in av[1]]
            out |= set().union(*(f for f, _ in firsts))
            if not any(n for _, n in firsts):
                return out, False
        elif op is C.SUBPATTERN:
            f, n = _first_chars(av[-1])
            out |= f
            if not n:
                return out, False
        elif op in (C.MAX_REPEAT, C.MIN_REPEAT):
            f, n = _first_chars(av[2])
            out |= f
            if not (n or av[0] == 0):
                return out, False
        elif op in (C.ASSERT, C.ASSERT_NOT, C.AT):
            continue
        else:
            raise AssertionError(f"unexpected regex op {op}")
    return out, True


@pytest.mark.parametrize("pattern", [intake._COUNT_RE, intake._ONE_RE, intake._words(None).stops])
def test_a_lookahead_lists_every_character_a_match_can_begin_with(pattern):
    import re._parser as P
    parsed = P.parse(pattern.pattern)
    look = next(av for op, av in parsed if str(op) == "ASSERT" and av[0] == 1)   # the leading (?=[...])
    allowed, _ = _first_chars(look[1])
    rest = P.parse(pattern.pattern)
    rest.data = [x for x in rest.data if not (str(x[0]) == "ASSERT" and x[1][0] == 1)]
    needed, empty = _first_chars(rest)
    assert not empty and needed <= allowed, sorted(needed - allowed)
