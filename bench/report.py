"""BENCHMARKS.md from the results document (bench/results.json): machine and date, the targets table,
each section's figures with its same-run baseline, where the time goes (pyinstrument), and the
hand-written analysis kept in bench/NOTES.md (dated: it describes the run it was written after).
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from bench.common import ROOT

NOTES = ROOT / "bench" / "NOTES.md"


def _g(doc: dict, *path: str) -> Any:
    cur: Any = doc.get("sections", {})
    for p in path:
        if not isinstance(cur, dict) or p not in cur:
            return None
        cur = cur[p]
    return cur


def _fmt(v: Any, unit: str = "") -> str:
    if v is None:
        return "n/a"
    if isinstance(v, float):
        v = f"{v:,.3g}" if abs(v) < 100 else f"{v:,.0f}"
    elif isinstance(v, int):
        v = f"{v:,}"
    return f"{v}{unit}"


def _ok(flag: Any) -> str:
    return "n/a" if flag is None else ("met" if flag else "**missed**")


def targets(doc: dict) -> list[str]:
    rp = lambda *p: _g(doc, "response_package", *p)  # noqa: E731
    fan = _g(doc, "fanout", "healthy") or {}
    drill = _g(doc, "drill") or {}
    geo = _g(doc, "geocoder") or {}
    rows = [
        ("Response package p50", _fmt(rp("ours", "p50_ms"), " ms"), "<= 5 ms", _ok(rp("targets", "p50_ms<=5"))),
        ("Response package p99", _fmt(rp("ours", "p99_ms"), " ms"), "<= 20 ms", _ok(rp("targets", "p99_ms<=20"))),
        ("Package vs naive baseline (p50)", _fmt(rp("speedup_vs_naive_p50"), "x"), ">= 20x",
         _ok(rp("targets", ">=20x_naive"))),
        ("Geocoder throughput", _fmt(geo.get("addresses_per_s"), " addr/s"), ">= 5,000/s",
         _ok(geo.get("target_per_s>=5000"))),
        ("Drill, 1,000 events: load + first replay in the process", _fmt(drill.get("total_s"), " s"), "< 2 s",
         _ok(drill.get("target_total_s<2"))),
        ("Drill, 1,000 events: load + replay, layers already loaded", _fmt(drill.get("warm_total_s"), " s"),
         "< 2 s", _ok(drill.get("target_warm_total_s<2"))),
        ("Drill, 1,000 events: `yzt drill run` wall time, fresh process", _fmt(drill.get("cli_wall_s"), " s"),
         "< 2 s", _ok(drill.get("target_cli_wall_s<2"))),
        ("Alert fan-out", _fmt(fan.get("deliveries_per_s"), " deliveries/s"), ">= 2,000/s",
         _ok(fan.get("target_per_s>=2000"))),
    ]
    pg, mem, dash = _g(doc, "postgis") or {}, _g(doc, "memory") or {}, _g(doc, "dashboard") or {}
    fail = _g(doc, "fanout", "one_channel_failing") or {}
    slow = _g(doc, "fanout", "slow_gateway") or {}
    rows += [
        ("Nearest-5 in 3 layers vs naive (p50)", _fmt(rp("nearest_step_speedup_p50"), "x"), "-", ""),
        ("Geocoder start-up, fresh process, to first answer",
         _fmt((geo.get("startup_fresh_process") or {}).get("first_answer_s"), " s"), "-", ""),
        ("Drill CLI: fresh process importing the same modules", _fmt(drill.get("cli_import_floor_s"), " s"),
         "-", ""),
        ("Fan-out floors: plain httpx POSTs / the webhook channel's own send, no database",
         f"{_fmt(fan.get('floor_plain_httpx_posts_per_s'))} / {_fmt(fan.get('floor_channel_send_per_s'))} per s",
         "-", f"outbox = {_fmt(fan.get('outbox_over_channel_send'))}x the channel's send"),
        ("Fan-out to one gateway answering in 20 ms: 1 / 8 deliveries in flight",
         f"{_fmt((slow.get('concurrency_1') or {}).get('deliveries_per_s'))} / "
         f"{_fmt((slow.get('concurrency_8') or {}).get('deliveries_per_s'))} per s", "-",
         f"{_fmt(slow.get('speedup'))}x" if slow else "n/a"),
        ("Opening a response group (p50)", _fmt((drill.get("open_group") or {}).get("p50_ms"), " ms"), "-", ""),
        ("Fan-out, one channel failing: healthy deliveries/s", _fmt(fail.get("healthy_deliveries_per_s")), "-",
         "nothing lost" if fail.get("nothing_lost") else ("n/a" if not fail else "**lost**")),
        ("PostGIS KNN p50 (in server) / ours", pg.get("skipped") or
         f"{_fmt((pg.get('postgis_knn_in_server') or {}).get('p50_ms'), ' ms')} / "
         f"{_fmt((pg.get('ours_layerindex_nearest5') or {}).get('p50_ms'), ' ms')}", "-", ""),
        ("Peak RSS with the 1M-camera layer", _fmt(mem.get("peak_rss_mb"), " MB"), "-", ""),
        ("Dashboard: serve to interactive / cameras drawn after open", dash.get("skipped") or
         f"{_fmt(dash.get('serve_to_interactive_s'), ' s')} / {_fmt(dash.get('goto_to_cameras_drawn_s'), ' s')}",
         "-", ""),
    ]
    rows += _issue_rows(doc)
    out = ["| Figure | Measured | Target | |", "|---|---|---|---|"]
    out += [f"| {a} | {b} | {c} | {d} |" for a, b, c, d in rows]
    return out


def _issue_rows(doc: dict) -> list[tuple[str, str, str, str]]:
    """The targets of issues 12, 14 and 15 (province load, call text and batch geocoding, start-up)."""
    intake, batch = _g(doc, "intake") or {}, _g(doc, "geocoder", "batch") or {}
    st, mem, pg = _g(doc, "startup") or {}, _g(doc, "memory") or {}, _g(doc, "postgis") or {}
    two = _g(doc, "fanout", "two_processes_postgres") or {}
    load_pg = _g(doc, "load", "postgres") or {}
    hist = _g(doc, "history", "postgres") or _g(doc, "history", "sqlite") or {}
    p90 = lambda k: (hist.get(k) or {}).get("p90_ms")   # noqa: E731
    ht = hist.get("targets_p90") or {}
    sync, rep = load_pg.get("officers") or {}, load_pg.get("reports") or {}
    return [
        ("Intake, batch", _fmt(intake.get("intake_batch_texts_per_s"), " texts/s"), ">= 5,000/s",
         _ok(intake.get("target_texts_per_s>=5000"))),
        ("Geocoder batch vs cpca batch, same addresses: district table like cpca's (wall, CPU)",
         f"{_fmt(batch.get('ratio_ours_district_table_vs_cpca'), 'x')}, "
         f"{_fmt(batch.get('ratio_ours_district_table_vs_cpca_cpu'), 'x')}", ">= 1x",
         _ok(batch.get("target_district_table>=cpca"))),
        ("Geocoder batch vs cpca batch, full answers (point, precision, uncertainty, candidates)",
         _fmt(batch.get("ratio_ours_vs_cpca"), "x"), "none (cpca answers none of these)", "—"),
        ("`yzt drill run` 1,000 events, fresh process, warm cache (cache off)",
         f"{_fmt((st.get('drill_wall_s') or {}).get('warm'), ' s')} ({_fmt((st.get('drill_wall_s') or {}).get('off'), ' s')})",
         "< 2 s", _ok(st.get("target_drill_warm_s<2"))),
        ("`yzt serve` to first 200, warm cache (cache off)",
         f"{_fmt((st.get('serve_first_200_s') or {}).get('warm'), ' s')} ({_fmt((st.get('serve_first_200_s') or {}).get('off'), ' s')})",
         "< 3 s", _ok(st.get("target_serve_warm_s<3"))),
        ("200 officers syncing + dispatch, PostgreSQL, 2 workers: sync p99 / errors",
         f"{_fmt(sync.get('sync_p99_ms'), ' ms')} / {_fmt(sync.get('errors'))}", "<= 300 ms, 0",
         _ok(sync.get("target_sync_p99<=300ms_0_errors"))),
        ("API reports, 2 workers, PostgreSQL", _fmt(rep.get("reports_per_s"), "/s"), ">= 100/s",
         _ok(rep.get("target_reports_per_s>=100"))),
        ("Fan-out, two outbox processes on PostgreSQL", _fmt(two.get("deliveries_per_s"), " deliveries/s"),
         ">= 2,000/s", _ok(two.get("target_per_s>=2000"))),
        ("A year of history: list page / search (p90)",
         f"{_fmt(p90('listed_page_100'), ' ms')} / {_fmt(p90('listed_search_rare_address'), ' ms')}", "<= 200 ms",
         _ok(ht.get("list_and_search_<=200ms"))),
        ("A year of history: paged GET /incidents (p90)", _fmt(p90("api_page_100"), " ms"), "<= 100 ms",
         _ok(ht.get("paged_get_<=100ms"))),
        ("A year of history: a new browser's first sync (p90)", _fmt(p90("sync_poll_last_seq"), " ms"), "<= 50 ms",
         _ok(ht.get("first_sync_<=50ms"))),
        ("PostGIS, 10x camera layer: nearest-5 p50", _fmt((pg.get("postgis_nearest5_10x") or {}).get("p50_ms"), " ms"),
         "<= 5 ms", _ok(pg.get("meets_p50_target"))),
        ("In-memory layer: bytes per row vs GeoDataFrame+STRtree", _fmt(mem.get("per_row_vs_baseline"), "x"),
         "<= 0.5x", _ok((mem.get("targets") or {}).get("per_row<=0.5x_baseline"))),
    ]


def _section(title: str, data: Any) -> list[str]:
    if data is None:
        return []
    return [f"### {title}", "", "```json", json.dumps(data, ensure_ascii=False, indent=2), "```", ""]


def _profile(title: str, data: Any) -> list[str]:
    if not data:
        return []
    if "skipped" in data:
        return [f"### {title}", "", f"Skipped: {data['skipped']}", ""]
    out = [f"### {title}", "", f"Wall time under the profiler {data['wall_s']} s; full tree in `{data['file']}`. "
           "Inclusive shares (a function and everything it calls; nested rows overlap):", "",
           "| Function | Share of wall time |", "|---|---|"]
    out += [f"| `{r['function']}` | {100 * r['share']:.0f}% |" for r in data["top_inclusive"]]
    return out + [""]


def render(doc: dict) -> str:
    m = doc.get("machine", {})
    run = _g(doc, "run") or {}
    lines = ["# Benchmarks", "",
             "Generated by `make bench` (`python -m bench`) from `bench/results.json`; do not edit by hand "
             "(the analysis lives in `bench/NOTES.md`). Benchmarks, not tests: nothing here is asserted by "
             "`make test`. Every ratio is against a baseline measured in the same process and the same run.", "",
             f"- Date: {m.get('date')} (started {doc.get('machine_at_start', {}).get('date')})",
             f"- Machine: {m.get('cpus')} CPU(s), {m.get('cpu')}, "
             f"{m.get('memory_gib')} GiB RAM; {m.get('platform')}; Python {m.get('python')}",
             f"- Load average (1, 5, 15 min) at start {doc.get('machine_at_start', {}).get('loadavg_1_5_15')}, "
             f"at end {m.get('loadavg_1_5_15')}: the machine is shared, so read ratios before absolute figures",
             f"- Mode: {run.get('mode')} (sizes: {json.dumps(run.get('sizes'))})", "",
             "## Targets", ""] + targets(doc) + [""]
    if NOTES.exists():
        lines += [NOTES.read_text(encoding="utf-8").rstrip(), ""]
    lines += ["## Where the time goes", ""]
    lines += _profile("Response package", _g(doc, "profile_response_package"))
    lines += _profile("Drill replay", _g(doc, "profile_drill"))
    lines += ["## All figures", ""]
    skip = {"run", "profile_response_package", "profile_drill"}
    for name, data in doc.get("sections", {}).items():
        if name not in skip:
            lines += _section(name, data)
    return "\n".join(lines).rstrip() + "\n"


def write_report(doc: dict, path: Path) -> None:
    tmp = path.with_suffix(".md.tmp")
    tmp.write_text(render(doc), encoding="utf-8")
    os.replace(tmp, path)
