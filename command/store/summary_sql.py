"""The projection's SQL, the same on both backends but for the placeholder (``?`` in SQLite, ``%s`` in
PostgreSQL): keep a row (with its search line and the tally) in the append's transaction (``keep``), build the
tables from stored events (``rebuild``, the upgrade to schema 8), and read them filtered, ordered and paged
(``select``, ``count``).

    keep(conn, "?", incident_id, [(seq, kind, body, at), ...])       # inside append_events' transaction
    sql, args = select("?", level="III", scope="440100", q="天河", before=1234, limit=100)
"""
from __future__ import annotations

import json
import re
from typing import Any

from command.store import summary

PROVINCE = "440000"
_KEEPS = ("Reported", "Updated", "Regraded")       # the kinds whose payload a row reads
_CHUNK = 50_000                                    # seqs per read while rebuilding


def _dict(row: Any, cursor: Any = None) -> dict[str, Any]:
    if isinstance(row, dict):
        return row
    if hasattr(row, "keys"):
        return {k: row[k] for k in row.keys()}
    return dict(zip([d[0] for d in cursor.description], row))


def _first(row: Any) -> Any:
    """The first value of a row, whichever row type the connection returns."""
    return next(iter(row.values())) if isinstance(row, dict) else row[0]


def keep(conn: Any, ph: str, incident_id: str, items: list[tuple[int, str, str, str]]) -> None:
    """The incident's row after the events just inserted (``items``: seq, kind, stored payload text, at, in
    seq order), in the caller's transaction, with its search line and the tally. A timeline that does not open
    with a foldable Reported has none."""
    keep_many(conn, ph, [(incident_id, items)])


def keep_many(conn: Any, ph: str, groups: list[tuple[str, list[tuple[int, str, str, str]]]]) -> None:
    """``keep`` for several incidents (each once, its items in seq order) with one read of their rows and
    one statement per kind of write (new rows, changed rows, changed search lines)."""
    groups = [(i, items) for i, items in groups if items]
    if not groups:
        return
    ids = [i for i, _ in groups]
    if ph == "?":
        cur = conn.execute(f"SELECT * FROM incident_summary WHERE id IN ({', '.join('?' * len(ids))})", ids)
    else:
        cur = conn.execute("SELECT * FROM incident_summary WHERE id = ANY(%s)", (ids,))
    found = {r["id"]: r for r in (_dict(x, cur) for x in cur.fetchall())}
    new, changed, searches = [], [], []
    for incident_id, items in groups:
        row, rest = found.get(incident_id), items
        if row is None:
            row = _started(conn, ph, incident_id, items[0])
            if row is None:
                continue
            rest = items[1:]
        searched = summary.search_text(row)
        for seq, kind, body, at in rest:
            summary.step(row, kind, json.loads(body) if kind in _KEEPS else {}, at, seq)
        row["search"] = summary.search_text(row)
        if incident_id not in found:
            new.append(row)
            continue
        changed.append(tuple(row[c] for c in summary.COLUMNS if c not in ("first_seq", "id")) + (incident_id,))
        if row["search"] != searched:
            searches.append((row["search"], row["first_seq"]))
    if new:
        _insert(conn, ph, new)
    sets = ", ".join(f"{c} = {ph}" for c in summary.COLUMNS if c not in ("first_seq", "id"))
    if changed:
        conn.cursor().executemany(f"UPDATE incident_summary SET {sets} WHERE id = {ph}", changed)
    if searches:
        conn.cursor().executemany(f"UPDATE incident_search SET search = {ph} WHERE first_seq = {ph}", searches)


def _started(conn: Any, ph: str, incident_id: str, first: tuple[int, str, str, str]) -> dict[str, Any] | None:
    """A new row from the incident's first stored event, when that is a foldable Reported (else None)."""
    seq, kind, body, at = first
    if kind != "Reported":
        return None
    low = conn.execute(f"SELECT min(seq) AS s FROM events WHERE incident_id = {ph}", (incident_id,)).fetchone()
    if int(_first(low)) != seq:
        return None                      # events came before this report: the fold refuses such a timeline
    return summary.start_row(incident_id, seq, json.loads(body), at)


def _insert(conn: Any, ph: str, rows: list[dict[str, Any]]) -> None:
    """New rows, their search lines, and the tally moved by their number (made when it is missing)."""
    cur = conn.cursor()
    cur.executemany(f"INSERT INTO incident_summary ({', '.join(summary.COLUMNS)}) "
                    f"VALUES ({', '.join([ph] * len(summary.COLUMNS))})", [summary.values(r) for r in rows])
    cur.executemany(f"INSERT INTO incident_search (first_seq, search) VALUES ({ph}, {ph})",
                    [summary.search_values(r) for r in rows])
    conn.execute(f"INSERT INTO incident_tally (one, n) VALUES (1, {ph}) ON CONFLICT (one) DO UPDATE"
                 " SET n = incident_tally.n + excluded.n", (len(rows),))


def rebuild(conn: Any, ph: str, key: bytes | None, *, sqlite: bool) -> int:
    """Schema 8's upgrade: every row from the events stored so far, read as the service reads them (only
    events whose audit entry's HMAC holds and names their payload), in one pass of seq ranges. Returns the
    number of rows written."""
    from command.store.sqlite_events import vouched_events
    hint = " INDEXED BY audit_by_event" if sqlite else ""
    sql = ("SELECT e.seq, e.incident_id, e.kind, e.at, e.payload, e.actor, a.id AS a_id, a.at AS a_at,"
           " a.actor AS a_actor, a.action AS a_action, a.target AS a_target, a.detail AS a_detail,"
           f" a.source AS a_source, a.prev_mac AS a_prev_mac, a.mac AS a_mac FROM events e JOIN audit a{hint}"
           f" ON a.event_seq = e.seq WHERE e.seq > {ph} AND e.seq <= {ph} ORDER BY e.seq, a.id")
    top = int(_first(conn.execute("SELECT coalesce(max(seq), 0) AS m FROM events").fetchone()))

    def stream():
        for lo in range(0, top, _CHUNK):
            cur = conn.execute(sql, (lo, lo + _CHUNK))
            rows = [_dict(r, cur) for r in cur.fetchall()]
            for ev in vouched_events(key or b"", rows):
                yield ev.seq, ev.incident_id, ev.kind, ev.at, ev.payload

    rows = list(summary.build(stream()).values())
    for table in ("incident_summary", "incident_search", "incident_tally"):
        conn.execute(f"DELETE FROM {table}")
    _insert(conn, ph, rows)
    return len(rows)


def where(ph: str, *, level: str | None = None, state: str | None = None, district: str | None = None,
          scope: str | None = None, q: str | None = None, types: tuple[str, ...] = (),
          before: int | None = None, after: int | None = None, sqlite: bool = True) -> tuple[str, str, list[Any]]:
    """(FROM clause, WHERE clause or "", arguments) of a filtered list. ``scope``: a canonical scope adcode
    (``scopes.place_in`` as SQL); ``q``: text looked for in ``incident_search`` (lower-cased), or an incident
    type among ``types``: the narrow table is walked newest first and each match's row looked up by key;
    ``before``/``after``: a keyset cursor on first_seq. The summary table is ``s``, the search table ``f``."""
    parts: list[str] = []
    args: list[Any] = []
    source = "incident_summary s"
    if q:
        # SQLite's CROSS JOIN keeps the narrow table outside, as PostgreSQL's planner chooses by itself
        source = f"incident_search f {'CROSS ' if sqlite else ''}JOIN incident_summary s ON s.first_seq = f.first_seq"
        # PostgreSQL: LIKE, whose selectivity its planner estimates (strpos it takes to keep a third of the rows,
        # and then merges the whole summary index); the text's own percent, underscore and backslash are escaped
        find = f"instr(f.search, {ph}) > 0" if sqlite else f"f.search LIKE {ph}"
        text = q.lower()
        args.append(text if sqlite else "%" + re.sub(r"([\\%_])", r"\\\1", text) + "%")
        if types:
            find = f"({find} OR s.type IN ({', '.join([ph] * len(types))}))"
            args += list(types)
        parts.append(find)
    for column, value in (("level", level), ("state", state)):
        if value is not None:
            parts.append(f"s.{column} = {ph}")
            args.append(value)
    if district is not None:
        parts.append(f"(s.district_adcode = {ph} OR s.district_name = {ph})")
        args += [district, district]
    if scope is not None and scope != PROVINCE:
        city = scope.endswith("00")
        parts.append(f"s.scope_city = {ph}" if city else f"s.scope_district = {ph}")
        args.append(scope[:4] if city else scope)
    key = "f.first_seq" if q else "s.first_seq"
    for op, value in (("<", before), (">", after)):
        if value is not None:
            parts.append(f"{key} {op} {ph}")
            args.append(int(value))
    return source, (" WHERE " + " AND ".join(parts) if parts else ""), args


def select(ph: str, *, newest_first: bool = False, limit: int | None = None, offset: int = 0,
           **filters: Any) -> tuple[str, list[Any]]:
    """The SELECT of a page of rows (every column of the summary), in the list's order."""
    source, clause, args = where(ph, **filters)
    key = "f.first_seq" if filters.get("q") else "s.first_seq"
    sql = (f"SELECT {', '.join('s.' + c for c in summary.COLUMNS)} FROM {source}{clause} ORDER BY {key}"
           f"{' DESC' if newest_first else ''}")
    if limit is not None:
        sql += f" LIMIT {ph}"
        args.append(int(limit))
    if offset:
        sql += ("" if limit is not None else " LIMIT -1" if filters.get("sqlite", True) else " LIMIT ALL")
        sql += f" OFFSET {ph}"
        args.append(int(offset))
    return sql, args


def count(ph: str, **filters: Any) -> tuple[str, list[Any]]:
    """How many rows a filter holds; with no filter at all, the tally (one row, whatever the history)."""
    asked = [k for k, v in filters.items() if v and k != "sqlite" and not (k == "scope" and v == PROVINCE)]
    if not asked:
        return "SELECT coalesce((SELECT n FROM incident_tally WHERE one = 1), 0) AS n", []
    source, clause, args = where(ph, **filters)
    return f"SELECT count(*) AS n FROM {source}{clause}", args
