"""A year of history (issue 12): the incident list, search, the paged API and the dashboard's sync poll over a
store seeded with 200,000 incidents and 5,000,000 events (full; --quick and --tiny are much smaller), on SQLite
and, when PostgreSQL's binaries are installed, on a throwaway PostgreSQL cluster.

The store is seeded by bulk insert (executemany in SQLite, COPY in PostgreSQL) in its real format: each event's
payload text as ``append_events`` writes it (real timeline events: the report with its location, grade and
nearby resources from the product's own geocoder, grading, duty rules and layers; the group, notes, tasks,
updates with their regrades, closes), one HMAC-chained audit entry per event, and the projection's rows made by
the projection's own code (``command.store.summary.build``). Timed beside baselines of the same run: ``SELECT 1``
on the store's connection (store calls) and an authenticated GET answering 404 (API calls); the old way
(``incident_ids`` then fold each) is timed on a sample and scaled to the whole store.

    .venv/bin/python -m bench.history --quick [--backends sqlite,postgres]
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import random
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

from bench.common import Results, summary_ms, time_each

SEED = 20261202
SIZES = {"full": (200_000, 5_000_000, 50), "quick": (10_000, 250_000, 30), "tiny": (200, 5_000, 5)}
TZ = dt.timezone(dt.timedelta(hours=8))
ROADS = ("中山路", "人民路", "解放路", "建设路", "新华路", "环市路", "滨江路", "工业大道", "学府路", "东风路",
         "沿江路", "广州大道", "深南大道", "迎宾路", "朝阳路", "和平路")
TYPES = (("fire", 40), ("traffic", 30), ("gas_explosion", 8), ("hazmat_leak", 6), ("building_collapse", 4),
         ("flood", 12))
CHUNK = 2_000                        # incidents per bulk write


# ------------------------------------------------------------------------------------------ what is written
class Templates:
    """Per district: a located place and its nearby resources; per type: grades of each level; per district,
    type and level: the events that open the response group. All made by the product's own code, once."""

    def __init__(self, svc: Any) -> None:
        from command.response.timeline import location_to_dict
        from incidents import admin, geocode
        self.svc, self.places, self.groups = svc, [], {}
        d = admin.districts()
        for r in d.itertuples():
            loc = geocode.locate_any(f"{r.city_name}{r.district_name}", None, settings=svc.settings,
                                     data_dir=svc.settings.data_dir)
            nearby, _ = svc._nearby(loc.point, 0.0)      # as around a reported address point
            self.places.append((loc, location_to_dict(loc), nearby, f"{r.city_name}{r.district_name}"))
        self.grades = {t: self._grades(t) for t, _ in TYPES}

    def _grades(self, type_: str) -> dict[str, Any]:
        from incidents.grading import grade
        from incidents.model import Casualties
        out: dict[str, Any] = {}
        for deaths, hurt in ((0, 1), (0, 2), (3, 12), (12, 60), (40, 120)):
            g = grade(type_, Casualties(deaths=deaths, serious_injuries=hurt), 0.0, data_dir=self.svc.settings.data_dir)
            out.setdefault(g.level, (g, Casualties(deaths=deaths, serious_injuries=hurt)))
        return out

    def group(self, place: int, type_: str, level: str, at: str) -> list[Any]:
        import dataclasses
        from command.response import group
        key = (place, type_, level)
        if key not in self.groups:
            g, cas = self.grades[type_][level]
            self.groups[key] = group.open_group("GD-TEMPLATE", type_, g, self.places[place][0], at=at, actor="值班员",
                                                settings=self.svc.settings, casualties=cas, duty=self.svc.duty)
        return [dataclasses.replace(e, at=at) for e in self.groups[key]]


def _level(rng: random.Random, levels: dict[str, Any]) -> str:
    roll = rng.random()
    want = "I" if roll < 0.001 else "II" if roll < 0.01 else "III" if roll < 0.08 else "IV"
    return want if want in levels else "IV"


def timeline(iid: str, n: int, rng: random.Random, tpl: Templates, start: dt.datetime, span_s: float,
             per: int) -> list[Any]:
    """The events of incident number ``n`` (about ``per`` of them), reported at its share of the year."""
    from command.response.timeline import (Closed, NoteAdded, Regraded, Reported, TaskDone, TaskSet, Updated,
                                           iso)
    t = start + dt.timedelta(seconds=span_s * n)
    at = lambda minutes: iso(t + dt.timedelta(minutes=minutes))     # noqa: E731
    type_ = rng.choices([x for x, _ in TYPES], [w for _, w in TYPES])[0]
    place = rng.randrange(len(tpl.places))
    loc, loc_d, nearby, area = tpl.places[place]
    levels = tpl.grades[type_]
    level = _level(rng, levels)
    g, cas = levels[level]
    loc_d = dict(loc_d, lon=round(loc_d["lon"] + rng.uniform(-0.02, 0.02), 7),
                 lat=round(loc_d["lat"] + rng.uniform(-0.02, 0.02), 7))
    address = f"{area}{rng.choice(ROADS)}{rng.randint(1, 999)}号"
    events: list[Any] = [Reported(at=at(0), actor="值班员", type=type_, location=loc_d, casualties=cas.as_dict(),
                                  economic_loss_cny=0.0, description=f"{address} {type_}", grade=g.as_dict(),
                                  address=address, nearby=nearby)]
    events += tpl.group(place, type_, level, at(0))
    for k in range(2):
        events += [TaskSet(at=at(5 + k), actor="指挥长", task_id=f"T{k + 1}", role="消防", text="到场处置"),
                   TaskDone(at=at(40 + k), actor="消防", task_id=f"T{k + 1}")]
    if rng.random() < 0.25 and level == "IV" and "III" in levels:
        g3, cas3 = levels["III"]
        events += [Updated(at=at(30), actor="值班员", changes={"casualties": cas3.as_dict()}),
                   Regraded(at=at(30), actor="值班员", from_level="IV", to_level="III", grade=g3.as_dict(),
                            reason="升级为较大(III)")]
    if rng.random() < 0.03:
        events.append(Updated(at=at(31), actor="值班员", changes={"type": "hazmat_leak"}))
    closed = span_s * n < 358 * 86400 and rng.random() < 0.97     # all but the last week's, mostly closed
    notes = max(0, per - len(events) - int(closed))
    events += [NoteAdded(at=at(10 + k), actor="现场", text=f"进展 {k + 1}: 现场处置中") for k in range(notes)]
    if closed:
        events.append(Closed(at=at(180), actor="指挥长", reason="处置完毕"))
    return events


# ------------------------------------------------------------------------------------------ the bulk writers
class Chain:
    """The audit chain as ``chain()`` extends it: ids, hashes and HMACs in order, from the store's tip."""

    def __init__(self, key: bytes, last_id: int, prev_hash: str, prev_mac: str) -> None:
        self.key, self.id, self.hash, self.mac, self.at = key, last_id, prev_hash, prev_mac, ""

    def entry(self, seq: int, incident_id: str, kind: str, at: str, body: str, actor: str) -> tuple:
        from command.store._records import event_audit_detail, sealed_entry
        detail = event_audit_detail(seq, at, body, actor, None)
        entry, digest, mac, detail_text = sealed_entry(self.id, self.hash, self.mac, self.key, actor,
                                                       f"event.{kind}", incident_id, detail, "bench")
        row = (entry["id"], entry["at"], actor, f"event.{kind}", incident_id, detail_text, entry["source"],
               self.hash, digest, self.mac, mac, seq)
        self.id, self.hash, self.mac, self.at = entry["id"], digest, mac, entry["at"]
        return row


def rows_of(chunk: list[tuple[str, list[Any]]], seq: int, chain: Chain) -> tuple[list, list, list, int]:
    """(event rows, audit rows, projection rows as dicts) of whole incidents, seqs from ``seq + 1``."""
    from command.response.timeline import to_record
    from command.store import summary
    from command.store._records import payload_text
    events, audit, stream = [], [], []
    for iid, evs in chunk:
        for ev in evs:
            kind, payload = to_record(ev)
            body = payload_text(payload)
            seq += 1
            events.append((seq, iid, kind, ev.at, body, ev.actor))
            audit.append(chain.entry(seq, iid, kind, ev.at, body, ev.actor))
            stream.append((seq, iid, kind, ev.at, json.loads(body) if kind in ("Reported", "Updated", "Regraded")
                           else {}))
    return events, audit, list(summary.build(stream).values()), seq


AUDIT_COLUMNS = "id, at, actor, action, target, detail, source, prev_hash, hash, prev_mac, mac, event_seq"


def write_sqlite(store: Any, rows: tuple[list, list, list]) -> None:
    """executemany; the projection's rows through the projection's own insert (summary, search line, tally)."""
    from command.store import summary_sql
    conn = store._conn()
    conn.execute("BEGIN IMMEDIATE")
    conn.executemany("INSERT INTO events (seq, incident_id, kind, at, payload, actor) VALUES (?, ?, ?, ?, ?, ?)",
                     rows[0])
    conn.executemany(f"INSERT INTO audit ({AUDIT_COLUMNS}) VALUES ({', '.join('?' * 12)})", rows[1])
    summary_sql._insert(conn, "?", rows[2])
    conn.execute("COMMIT")


def write_postgres(store: Any, rows: tuple[list, list, list]) -> None:
    """COPY into every table; the tally moved by the rows written, as the projection's insert moves it."""
    from command.store import summary
    with store.db.tx() as conn:
        cur = conn.cursor()
        for table, columns, data in (
                ("events", "seq, incident_id, kind, at, payload, actor", rows[0]), ("audit", AUDIT_COLUMNS, rows[1]),
                ("incident_summary", ", ".join(summary.COLUMNS), [summary.values(r) for r in rows[2]]),
                ("incident_search", "first_seq, search", [summary.search_values(r) for r in rows[2]])):
            with cur.copy(f"COPY {table} ({columns}) FROM STDIN") as cp:
                for r in data:
                    cp.write_row(r)
        conn.execute("INSERT INTO incident_tally (one, n) VALUES (1, %s) ON CONFLICT (one) DO UPDATE"
                     " SET n = incident_tally.n + excluded.n", (len(rows[2]),))


def tip_of(store: Any) -> tuple[int, str, str, int]:
    """(last audit id, hash, mac, last event seq) of a freshly migrated store."""
    from command.security.audit import GENESIS
    if hasattr(store, "_conn"):
        conn = store._conn()
        last = conn.execute("SELECT id, hash, mac FROM audit ORDER BY id DESC LIMIT 1").fetchone()
        seq = conn.execute("SELECT coalesce(max(seq), 0) FROM events").fetchone()[0]
        return (last["id"], last["hash"], last["mac"], seq) if last else (0, GENESIS, GENESIS, seq)
    tip = store.db.row("SELECT id, hash, mac FROM audit_tip")
    return tip["id"], tip["hash"], tip["mac"] or GENESIS, store.last_seq()


def seed(store: Any, svc: Any, incidents: int, events: int) -> dict[str, Any]:
    """Bulk-write ``incidents`` incidents of about ``events`` events in all, reported over the last year."""
    t0 = time.perf_counter()
    tpl = Templates(svc)
    rng = random.Random(SEED)
    last_id, prev_hash, prev_mac, seq = tip_of(store)
    chain = Chain(store.audit_key, last_id, prev_hash, prev_mac)
    start = dt.datetime.now(TZ).replace(microsecond=0) - dt.timedelta(days=365)
    span = 365 * 86400 / incidents
    per = max(12, round(events / incidents))
    write = write_sqlite if hasattr(store, "_conn") else write_postgres
    chunk: list[tuple[str, list[Any]]] = []
    for n in range(incidents):
        iid = f"{440000 + n % 1000}-H{n:07d}"
        chunk.append((iid, timeline(iid, n, rng, tpl, start, span, per)))
        if len(chunk) == CHUNK or n == incidents - 1:
            evs, audit, projection, seq = rows_of(chunk, seq, chain)
            write(store, (evs, audit, projection))
            chunk = []
    if not hasattr(store, "_conn"):
        with store.db.tx() as conn:
            conn.execute("SELECT setval(pg_get_serial_sequence('events', 'seq'), %s)", (seq,))
            conn.execute("UPDATE audit_tip SET id = %s, hash = %s, mac = %s", (chain.id, chain.hash, chain.mac))
        with store.db.pool.connection() as conn:      # what autovacuum does after a bulk load, at once
            conn.autocommit = True
            conn.execute("VACUUM ANALYZE")
    else:
        store._conn().execute("ANALYZE")
    store.anchor.write(chain.id, chain.mac, chain.at)
    return {"incidents": store.incident_count(), "events": store.last_seq(), "seed_s": round(time.perf_counter() - t0, 1)}


# ------------------------------------------------------------------------------------------ what is timed
def _ms(fn: Callable[[], Any], n: int) -> dict[str, float]:
    fn()                                                   # warm: statements prepared, pages cached
    return summary_ms(time_each(lambda _: fn(), list(range(n))))


def _cold(svc: Any, fn: Callable[[], Any]) -> Callable[[], Any]:
    """``fn`` with the service's folds forgotten first: every incident of the page is read and folded."""
    def run() -> Any:
        with svc._timelines_lock:
            svc._timelines.clear()
        return fn()
    return run


def measure(store: Any, svc: Any, n: int) -> dict[str, Any]:
    """Every figure of one backend, each beside its baseline."""
    from command.api.routes import register_api
    from command.response import listing
    from command.security.auth import Principal, Tokens
    import flask
    app = flask.Flask("bench_history")
    register_api(app, lambda: svc)
    client = app.test_client()
    h = {"Authorization": f"Bearer {Tokens(store).issue('bench', role='viewer')}"}
    rows = store.incident_summaries(newest_first=True, limit=1, offset=store.incident_count() // 2)
    middle = rows[0]["first_seq"] + 1 if rows else None
    rare = store.incident_summaries(limit=1, offset=7)[0]["address"] if store.incident_count() > 7 else "x"
    city = Principal("广州市值班", "viewer", "user", "127.0.0.1", scope="440100")
    select1 = (lambda: store._conn().execute("SELECT 1").fetchone()) if hasattr(store, "_conn") else \
        (lambda: store.db.row("SELECT 1"))

    def get(url: str) -> Callable[[], Any]:
        def call() -> Any:
            r = client.get(url, headers=h)
            assert r.status_code in (200, 404), r.get_data(as_text=True)[:200]
            return r
        return call

    f = {
        "baseline_select_1": _ms(select1, n),
        "sync_poll_last_seq": _ms(store.last_seq, n),
        "incident_count": _ms(store.incident_count, n),
        "listed_page_100": _ms(lambda: listing.listed(svc, newest_first=True, limit=100), n),
        "listed_page_200_city_scope": _ms(lambda: listing.listed(svc, viewer=city, newest_first=True, limit=200), n),
        "listed_search_common": _ms(lambda: listing.listed(svc, q="天河", newest_first=True, limit=100), n),
        "listed_search_rare_address": _ms(lambda: listing.listed(svc, q=rare, newest_first=True, limit=100), n),
        "listed_search_type_name": _ms(lambda: listing.listed(svc, q="燃气", newest_first=True, limit=100), n),
        "list_page_100_warm": _ms(lambda: svc.list_incidents(newest_first=True, limit=100), n),
        "list_page_100_cold": _ms(_cold(svc, lambda: svc.list_incidents(newest_first=True, limit=100)), n),
        "list_city_scope_level_iii_cold": _ms(_cold(svc, lambda: svc.list_incidents(
            viewer=city, level="III", newest_first=True, limit=100)), n),
        "search_common_cold": _ms(_cold(svc, lambda: svc.list_incidents(q="天河", newest_first=True, limit=100)), n),
        "search_rare_address_cold": _ms(_cold(svc, lambda: svc.list_incidents(q=rare, newest_first=True,
                                                                                limit=100)), n),
        "search_type_name_cold": _ms(_cold(svc, lambda: svc.list_incidents(q="燃气", newest_first=True,
                                                                             limit=100)), n),
        "api_baseline_get_404": _ms(get("/api/v1/alerts/NO-SUCH-ALERT"), n),
        "api_health": _ms(get("/api/v1/health"), n),
        "api_page_100": _ms(get("/api/v1/incidents"), n),
        "api_page_100_mid_cursor": _ms(get(f"/api/v1/incidents?cursor={middle}"), n),
        "api_page_500": _ms(get("/api/v1/incidents?limit=500"), n),
        "api_search_rare": _ms(get("/api/v1/incidents?q=" + rare), n),
        "api_level_i": _ms(get("/api/v1/incidents?level=I"), n),
    }
    f["old_way_list_all_s_estimate"] = _old_way(store, svc)
    return f


def _old_way(store: Any, svc: Any, sample: int = 300) -> dict[str, Any]:
    """What the list cost before the projection: incident_ids(), then every incident folded (a sample, cold)."""
    t0 = time.perf_counter()
    ids = store.incident_ids()
    ids_s = time.perf_counter() - t0
    pick = random.Random(SEED).sample(ids, min(sample, len(ids)))
    with svc._timelines_lock:
        svc._timelines.clear()
    t0 = time.perf_counter()
    for iid in pick:
        svc.get(iid)
    per = (time.perf_counter() - t0) / max(1, len(pick))
    return {"incident_ids_s": round(ids_s, 3), "fold_one_ms": round(per * 1000, 3),
            "list_all_s": round(ids_s + per * len(ids), 1), "sampled": len(pick)}


def _verdict(f: dict[str, Any]) -> dict[str, Any]:
    p90 = lambda k: f[k]["p90_ms"]      # noqa: E731
    lists = ("listed_page_100", "listed_page_200_city_scope", "listed_search_common", "listed_search_rare_address",
             "listed_search_type_name")
    folded = ("list_page_100_cold", "list_city_scope_level_iii_cold", "search_common_cold", "search_rare_address_cold",
              "search_type_name_cold")
    return {
        "ratios_p50": {k: round(f[k]["p50_ms"] / max(f[base]["p50_ms"], 1e-6), 1) for k, base in (
            ("sync_poll_last_seq", "baseline_select_1"), ("incident_count", "baseline_select_1"),
            ("listed_page_100", "baseline_select_1"), ("listed_search_rare_address", "baseline_select_1"),
            ("list_page_100_cold", "baseline_select_1"), ("api_page_100", "api_baseline_get_404"),
            ("api_page_100_mid_cursor", "api_baseline_get_404"), ("api_health", "api_baseline_get_404"))},
        "targets_p90": {"list_and_search_<=200ms": all(p90(k) <= 200 for k in lists),
                        "list_and_search_folding_the_page_cold_<=200ms": all(p90(k) <= 200 for k in folded),
                        "paged_get_<=100ms": all(p90(k) <= 100 for k in ("api_page_100", "api_page_100_mid_cursor",
                                                                          "api_search_rare", "api_level_i")),
                        "first_sync_<=50ms": p90("sync_poll_last_seq") <= 50}}


def one_backend(backend: str, tmp: Path, incidents: int, events: int, n: int) -> dict[str, Any]:
    from command.alerts.outbox import Outbox
    from command.response.service import ResponseService
    from settings import load_settings
    settings = load_settings(channels=[{"name": "outbox-exercise", "kind": "outbox", "mode": "exercise"}],
                             var_dir=tmp / "var")
    cluster = None
    if backend == "postgres":
        from bench.load import PgCluster
        cluster = PgCluster(tmp / "pg", database="history").__enter__()
        from command.store.postgres import PostgresStore
        store = PostgresStore(cluster.url)
    else:
        from command.store.sqlite import Store
        store = Store(tmp / "history.db", durable=False)
    try:
        svc = ResponseService(store, settings=settings, exercise=True, outbox=Outbox(store, settings))
        out = seed(store, svc, incidents, events)
        out.update(measure(store, svc, n))
        out.update(_verdict(out))
        return out
    finally:
        store.close()
        if cluster is not None:
            cluster.__exit__(None, None, None)


def _postgres_available() -> bool:
    return any(Path("/usr/lib/postgresql").glob("*/bin/initdb"))


def run(results: Results, *, mode: str = "full", backends: tuple[str, ...] = ("sqlite", "postgres")) -> dict:
    incidents, events, n = SIZES[mode]
    section: dict[str, Any] = {"mode": mode, "incidents": incidents, "events_asked": events}
    for backend in backends:
        if backend == "postgres" and not _postgres_available():
            section[backend] = {"skipped": "no PostgreSQL server binaries (apt-get install postgresql)"}
            continue
        with tempfile.TemporaryDirectory(prefix=f"yzt-history-{backend}-") as d:
            section[backend] = one_backend(backend, Path(d), incidents, events, n)
    results.add("history", section)
    return section


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(prog="python -m bench.history", description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--tiny", action="store_true")
    ap.add_argument("--backends", default="sqlite,postgres")
    ap.add_argument("--out", type=Path, default=None, help="write the section's JSON here")
    args = ap.parse_args(argv)
    results = Results()
    mode = "tiny" if args.tiny else "quick" if args.quick else "full"
    section = run(results, mode=mode, backends=tuple(b for b in args.backends.split(",") if b))
    if args.out:
        args.out.write_text(json.dumps(section, ensure_ascii=False, indent=2), encoding="utf-8")
    return section


if __name__ == "__main__":
    main()
