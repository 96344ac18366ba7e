"""Measure the offline geocoder on held-out real addresses (a script, not a test, not product code).

    .venv/bin/python bench/eval_geocoder.py [--eval ../shared/data/eval/metro_stations_gz_sz_baidu2015.csv]

The eval file holds 219 Baidu POI records of Guangzhou/Shenzhen metro stations (2015) with the district
their WGS84 point falls in today (district_adcode_2024). Each row becomes the address a caller would say:
city + Baidu's district + road (or Baidu's address line when there is no road). The script prints JSON:
share of rows whose district_adcode is right, in three groups: rows that name their district (the aim),
rows flagged district_mismatch/hong_kong_side (Baidu's 2015 district differs from today's polygon), and
rows whose Baidu "district" is only the city (the address names no district), the precision distribution,
addresses per second after start-up, and the start-up time (first call, gazetteer built).
"""
from __future__ import annotations

import argparse
import collections
import json
import sys
import time
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
DEFAULT_EVAL = ROOT.parent / "shared/data/eval/metro_stations_gz_sz_baidu2015.csv"
FLAGGED = ("district_mismatch", "hong_kong_side")


def _text(v) -> str:
    return "" if pd.isna(v) else str(v).strip()


def address(row) -> str:
    """What a caller would say: city + district + road, else the Baidu address line."""
    street = _text(row.baidu_road) or _text(row.baidu_address) or _text(row.name)
    return f"{_text(row.city)}{_text(row.baidu_district)}{street}"


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--eval", type=Path, default=DEFAULT_EVAL)
    ap.add_argument("--repeat", type=int, default=20, help="passes over the rows for the speed figure")
    args = ap.parse_args(argv)
    df = pd.read_csv(args.eval, dtype={"district_adcode_2024": str})
    df["district_adcode_2024"] = df["district_adcode_2024"].str.replace(r"\.0$", "", regex=True)
    df = df[df["baidu_district"].notna() & (df["baidu_district"].astype(str).str.strip() != "")]
    texts = [address(r) for r in df.itertuples(index=False)]

    t0 = time.perf_counter()
    from incidents.geocode import locate
    from incidents.errors import LocateError
    try:
        locate(texts[0])
    except LocateError:
        pass
    startup_s = time.perf_counter() - t0

    groups = {"clean": collections.Counter(), "flagged": collections.Counter(),
              "city_only": collections.Counter()}
    precision = collections.Counter()
    wrong = []
    for text, row in zip(texts, df.itertuples(index=False)):
        flag = _text(row.quality_flag)
        group = "flagged" if any(f in flag for f in FLAGGED) else "clean"
        if _text(row.baidu_district) == _text(row.city):
            group = "city_only"     # Baidu's "district" is the city: the address names no district
        try:
            loc = locate(text)
            got, prec = loc.district_adcode, loc.precision
        except LocateError as e:
            got, prec = None, "refused"
        precision[prec] += 1
        ok = got == row.district_adcode_2024
        groups[group]["correct" if ok else "wrong"] += 1
        if not ok and group == "clean":
            wrong.append({"address": text, "got": got, "want": row.district_adcode_2024})

    # Harder: the same rows said without their district (city + Baidu's address line or station name).
    bare = collections.Counter()
    for row in df.itertuples(index=False):
        flag = _text(row.quality_flag)
        if any(f in flag for f in FLAGGED) or _text(row.baidu_district) == _text(row.city):
            continue
        text = _text(row.city) + (_text(row.baidu_address) or _text(row.name))
        try:
            got = locate(text).district_adcode
        except LocateError:
            got = None
        bare["correct" if got == row.district_adcode_2024 else ("refused" if got is None else "wrong")] += 1

    t1 = time.perf_counter()
    n = 0
    for _ in range(args.repeat):
        for text in texts:
            try:
                locate(text)
            except LocateError:
                pass
            n += 1
    rate = n / (time.perf_counter() - t1)

    def share(c: collections.Counter) -> dict:
        total = c["correct"] + c["wrong"] + c["refused"]
        return {"rows": total, "correct": c["correct"], "share_correct": round(c["correct"] / total, 4)
                if total else None}

    report = {"eval_file": str(args.eval), "rows": len(texts),
              "district_correct_naming_district": share(groups["clean"]),
              "district_correct_flagged_mismatch_or_hk": share(groups["flagged"]),
              "district_correct_city_only_address": share(groups["city_only"]),
              "district_correct_without_district": {**share(bare), "refused_or_city_only":
                                                    bare["refused"]},
              "precision": dict(precision), "addresses_per_s": round(rate),
              "startup_s": round(startup_s, 3), "wrong_clean": wrong}
    print(json.dumps(report, ensure_ascii=False, indent=2))
    return report


if __name__ == "__main__":
    main()
