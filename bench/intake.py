"""Reading calls (incidents/intake.py) and the geocoder's batch path, each beside baselines from the same run.

    .venv/bin/python -m bench.intake            # this section alone, prints JSON
    (also run by `python -m bench` as the "intake" section)

Texts: the 67 real incident texts of tests/data/intake_real_texts.yaml, and calls made of a real NBS gazetteer
address (bench.geocoder.addresses, seeded) followed by what a real text says after its place ("发生火灾，造成
3人死亡..."), so that places do not repeat. The figure is ``read_batch`` (what ``yzt intake --batch`` runs), best of a few runs. Baselines, same process,
same texts:
- ``read_one_at_a_time``: incidents.intake.read(text).as_dict() per text, no batch engine;
- ``locate_only``: one incidents.geocode.locate per text's address: the floor, since intake must locate too;
- ``naive``: every catalogue word tested with ``in``, then one regex per count field (what intake avoids).
Geocoder: ``locate_batch`` over 20,000 addresses (repeats included, as a real batch has them) beside one
``locate`` at a time over the same list, and over the distinct addresses alone (cpca beside it: the geocoder
section's ``batch``).
"""
from __future__ import annotations

import json
import re
import time
from pathlib import Path

import yaml

from bench.common import ROOT, Results

REAL = ROOT / "tests" / "data" / "intake_real_texts.yaml"


def real_texts() -> list[str]:
    doc = yaml.safe_load(REAL.read_text(encoding="utf-8"))
    return [c["text"] for c in doc["cases"]]


def calls(n: int) -> list[str]:
    """n calls: a real gazetteer address + the words after the place in one of the real texts."""
    from bench.geocoder import addresses
    from incidents.intake import read_place
    tails = []
    for t in real_texts():
        p = read_place(t)
        tail = t.split(p, 1)[1] if p and p in t else t
        tails.append(tail.lstrip("，,"))
    return [a + tails[i % len(tails)] for i, a in enumerate(addresses(n))]


def _rate(fn, items, min_s: float) -> float:
    n, t0 = 0, time.perf_counter()
    while True:
        for it in items:
            fn(it)
        n += len(items)
        if time.perf_counter() - t0 >= min_s:
            return n / (time.perf_counter() - t0)


def naive_reader():
    from incidents.grading import catalogue
    words = sorted(catalogue().words.items(), key=lambda kv: -len(kv[0]))
    fields = {f: re.compile(rf"(\d+)人{v}") for f, v in
              (("deaths", "死亡"), ("serious_injuries", "重伤"), ("injured", "受伤"), ("missing", "失踪"),
               ("trapped", "被困"))}

    def read(text: str) -> dict:
        kind = next((k for w, k in words if w in text), None)
        return {"type": kind, **{f: (int(m.group(1)) if (m := r.search(text)) else None) for f, r in fields.items()}}
    return read


def _geocoder_batch(geocode_n: int) -> dict:
    """locate_batch over geocode_n addresses beside one locate at a time, and over the distinct ones alone."""
    from bench.geocoder import _best_s, addresses
    from incidents.errors import IncidentError
    from incidents.geocode import locate, locate_batch
    gaddr = addresses(geocode_n)
    list(locate_batch(gaddr[:500]))
    batch_rate = len(gaddr) / _best_s(lambda: list(locate_batch(gaddr)), 2)

    def loc_dict(a: str) -> None:       # what a batch hands out: the answer as a dict
        try:
            locate(a).as_dict()
        except IncidentError:
            pass
    one_rate = len(gaddr) / _best_s(lambda: [loc_dict(a) for a in gaddr], 2)
    distinct = list(dict.fromkeys(gaddr))
    distinct_rate = len(distinct) / _best_s(lambda: list(locate_batch(distinct)), 2)
    return {
        "addresses": len(gaddr), "distinct": len(distinct),
        "locate_batch_per_s": round(batch_rate), "locate_one_at_a_time_per_s": round(one_rate),
        "locate_batch_distinct_only_per_s": round(distinct_rate),
        "ratio_batch_vs_one_at_a_time": round(batch_rate / one_rate, 2),
        "note": "cpca on the same kind of list: the geocoder section's batch",
    }


def run(results: Results | None = None, *, n: int = 5000, geocode_n: int = 20_000, min_s: float = 2.0) -> dict:
    from incidents.errors import IncidentError
    from incidents.geocode import locate
    from incidents.intake import read, read_batch
    from bench.geocoder import addresses
    texts = calls(n)
    real = real_texts()
    list(read_batch(texts[:200]))                       # warm: gazetteer, catalogue, regexes
    addr = addresses(n)

    def loc(a: str) -> None:
        try:
            locate(a)
        except IncidentError:
            pass
    batch_s = batch_cpu = float("inf")
    out: list = []
    for _ in range(3 if len(texts) <= 5000 else 2):
        t0, c0 = time.perf_counter(), time.process_time()
        out = list(read_batch(texts))
        batch_s, batch_cpu = min(batch_s, time.perf_counter() - t0), min(batch_cpu, time.process_time() - c0)
    intake_rate = len(texts) / batch_s
    one_rate = _rate(lambda t: read(t).as_dict(), texts[:1000], min_s / 2)
    real_rate = _rate(lambda t: read(t), real, min_s / 2)
    locate_rate = _rate(loc, addr, min_s / 2)
    naive = naive_reader()
    naive_rate = _rate(naive, texts[:1000], min_s / 2)
    section = {
        "texts": len(texts), "errors": sum(1 for d in out if "error" in d), "note": "batch: best of the runs",
        "intake_batch_texts_per_s": round(intake_rate),
        "intake_batch_cpu_texts_per_s": round(len(texts) / batch_cpu),   # this process's CPU time: load aside
        "intake_real_texts_per_s": round(real_rate),
        "baseline_read_one_at_a_time_per_s": round(one_rate),
        "baseline_locate_only_per_s": round(locate_rate),
        "baseline_naive_keywords_per_s": round(naive_rate),
        "ratio_batch_vs_one_at_a_time": round(intake_rate / one_rate, 2),
        "ratio_intake_vs_locate_only": round(intake_rate / locate_rate, 2),
        "ratio_intake_vs_naive": round(intake_rate / naive_rate, 3),
        "target_texts_per_s>=5000": intake_rate >= 5000,
    }
    section["geocoder"] = _geocoder_batch(geocode_n)
    if results is not None:
        results.add("intake", section)
    return section


if __name__ == "__main__":
    print(json.dumps(run(min_s=1.0), ensure_ascii=False, indent=2))
