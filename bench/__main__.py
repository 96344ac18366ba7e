"""Run every benchmark and write bench/results.json and BENCHMARKS.md.

    .venv/bin/python -m bench            # full sizes (several minutes)
    .venv/bin/python -m bench --quick    # smoke run, small sizes
    .venv/bin/python -m bench --skip dashboard,postgis --out /tmp/b   # results elsewhere

Benchmarks, not tests: figures are reported, never asserted. Each figure has its baseline from the same
process and run; the machine and the date are recorded with them.
"""
from __future__ import annotations

import argparse
import gc
import os
import sys
import tempfile
from pathlib import Path

from bench.common import REPORT, RESULTS, ROOT, Results
from settings import get_settings

SIZES = {
    "full": {"incidents": 10_000, "cameras": 1_000_000, "naive_n": 200, "geocode_n": 5000, "events": 1000,
             "groups": 500, "alerts": 2000, "pg_queries": 2000, "profile_n": 1000},
    "quick": {"incidents": 300, "cameras": 50_000, "naive_n": 20, "geocode_n": 500, "events": 100,
              "groups": 50, "alerts": 200, "pg_queries": 200, "profile_n": 100},
    "tiny": {"incidents": 20, "cameras": 200, "naive_n": 5, "geocode_n": 40, "events": 20, "groups": 5,
             "alerts": 10, "pg_queries": 20, "profile_n": 5},
}
PROFILES = ROOT / "bench" / "profiles"
SECTIONS = ("response", "postgis", "geocoder", "intake", "drill", "fanout", "memory", "targeting", "load", "history",
            "dashboard", "startup")


def _response_and_postgis(results: Results, size: dict, skip: set[str], do_profile: bool) -> None:
    from bench import postgis, profile, response
    big = response.run(results, incidents=size["incidents"], cameras=size["cameras"], naive_n=size["naive_n"])
    if do_profile:
        pkg, incs = big["package"], big["incidents"][: size["profile_n"]]
        results.add("profile_response_package", profile.profile("response_package", lambda: [pkg(i) for i in incs],
                                                                    out=PROFILES))
    if "postgis" not in skip:
        postgis.run(results, big["cams"], big["incidents"], queries=size["pg_queries"])


def _drill(results: Results, size: dict, do_profile: bool) -> None:
    from bench import drill, profile
    drill.run(results, events=size["events"], groups=size["groups"])
    if do_profile:
        from command.drills import load_scenario, run_drill
        import yaml
        with tempfile.TemporaryDirectory() as d:
            path = Path(d) / "s.yaml"
            path.write_text(yaml.safe_dump(drill.scenario_doc(size["events"]), allow_unicode=True), encoding="utf-8")
            sc = load_scenario(path)
            results.add("profile_drill", profile.profile("drill_replay", lambda: run_drill(sc, settings=get_settings()), out=PROFILES))


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="small sizes: a smoke run")
    ap.add_argument("--tiny", action="store_true", help=argparse.SUPPRESS)   # tests/test_bench_smoke.py
    ap.add_argument("--skip", default="", help=f"comma-separated sections to skip: {', '.join(SECTIONS)}")
    ap.add_argument("--report-only", action="store_true",
                    help="only rewrite BENCHMARKS.md from the existing bench/results.json")
    ap.add_argument("--no-profile", action="store_true", help="do not run pyinstrument")
    ap.add_argument("--out", type=Path, default=None, help="folder for results.json and BENCHMARKS.md "
                                                          "(default: bench/results.json and ./BENCHMARKS.md)")
    args = ap.parse_args(argv)
    skip = {s.strip() for s in args.skip.split(",") if s.strip()}
    unknown = skip - set(SECTIONS)
    if unknown:
        ap.error(f"--skip: unknown section(s) {', '.join(sorted(unknown))}; known: {', '.join(SECTIONS)}")
    global PROFILES
    if args.report_only:
        import json
        from bench.report import write_report
        doc = json.loads(RESULTS.read_text(encoding="utf-8"))
        write_report(doc, REPORT)
        return doc
    if args.out:
        PROFILES = args.out / "profiles"
    mode = "tiny" if args.tiny else "quick" if args.quick else "full"
    size = SIZES[mode]
    # Everything the product writes (databases, caches, secret key) goes to a throwaway var dir.
    var = tempfile.mkdtemp(prefix="yzt-bench-var-")
    os.environ["YZT_VAR_DIR"] = var
    os.environ.pop("YZT_CONFIG", None)
    from settings import reset_settings_cache
    reset_settings_cache()
    results = Results()
    results.add("run", {"mode": mode, "sizes": size, "argv": sys.argv[1:] if argv is None else argv})
    do_profile = not args.no_profile
    if "response" not in skip:
        _response_and_postgis(results, size, skip, do_profile)
        gc.collect()
    from bench import dashboard, fanout, geocoder, memory
    if "geocoder" not in skip:
        geocoder.run(results, n=size["geocode_n"], min_s=2.0 if mode == "full" else 0.3,
                     with_held_out=mode != "tiny")
    if "intake" not in skip:
        from bench import intake
        intake.run(results, n=size["geocode_n"], geocode_n=4 * size["geocode_n"],
                   min_s=2.0 if mode == "full" else 0.3)
    if "drill" not in skip:
        _drill(results, size, do_profile and mode != "tiny")
    if "startup" not in skip:         # fresh-process drill and serve, artefact cache off / cold / warm (bench/startup.py)
        from bench import startup
        startup.run(results, events=size["events"], repeats={"full": 3}.get(mode, 1), serve=mode != "tiny")
    if "fanout" not in skip:
        fanout.run(results, alerts=size["alerts"])
    if "memory" not in skip:
        memory.run(results, cameras=size["cameras"])
    if "targeting" not in skip:       # the warned-area fuzz against Tianditu boundaries (skips without ../shared)
        from bench import targeting
        targeting.run(results, n={"full": 10_000, "quick": 300, "tiny": 20}[mode], lean=mode != "full")
    if "load" not in skip:            # yzt serve under locust, SQLite and a throwaway PostgreSQL (bench/load.py)
        from bench import load
        load.run(results, mode=mode, keep=PROFILES)
    if "history" not in skip:         # a year of history: list, search, paged API, sync (bench/history.py)
        from bench import history
        history.run(results, mode=mode)
    if "dashboard" not in skip:
        dashboard.run(results)
    from bench.report import write_report
    out_json = args.out / "results.json" if args.out else RESULTS
    out_md = args.out / "BENCHMARKS.md" if args.out else REPORT
    if args.out:
        args.out.mkdir(parents=True, exist_ok=True)
    doc = results.write(out_json)
    write_report(doc, out_md)
    print(f"[bench] wrote {out_json.relative_to(ROOT) if out_json.is_relative_to(ROOT) else out_json} and "
          f"{out_md.relative_to(ROOT) if out_md.is_relative_to(ROOT) else out_md}")
    return doc


if __name__ == "__main__":
    main()
