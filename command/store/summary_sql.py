"""The projection's SQL, the same on both backends but for the placeholder (``?`` in SQLite, ``%s`` in
PostgreSQL): keep a row in the append's transaction (``keep``), build the table from stored events
(``rebuild``, the upgrade to schema 8), and read it filtered, ordered and paged (``select``, ``count``).

    keep(conn, "?", incident_id, [(seq, kind, body, at), ...])       # inside append_events' transaction
    sql, args = select("?", level="III", scope="440100", q="天河", before=1234, limit=100)
"""
from __future__ import annotations

import json
from typing import Any

from command.store import summary

PROVINCE = "440000"
_READ = [c for c in summary.COLUMNS if c != "search"]
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
    seq order), in the caller's transaction. A timeline that does not open with a foldable Reported has none."""
    if not items:
        return
    cur = conn.execute(f"SELECT * FROM incident_summary WHERE id = {ph}", (incident_id,))
    found = cur.fetchone()
    row = _dict(found, cur) if found is not None else None
    rest = items
    if row is None:
        seq, kind, body, at = items[0]
        if kind != "Reported":
            return
        first = conn.execute(f"SELECT min(seq) AS s FROM events WHERE incident_id = {ph}", (incident_id,)).fetchone()
        if int(_first(first)) != seq:
            return                      # events came before this report: the fold refuses such a timeline
        row = summary.start_row(incident_id, seq, json.loads(body), at)
        if row is None:
            return
        rest = items[1:]
    for seq, kind, body, at in rest:
        summary.step(row, kind, json.loads(body) if kind in _KEEPS else {}, at, seq)
    if found is None:
        conn.execute(_insert_sql(ph), summary.values(row))
    else:
        sets = ", ".join(f"{c} = {ph}" for c in summary.COLUMNS if c not in ("first_seq", "id"))
        conn.execute(f"UPDATE incident_summary SET {sets} WHERE id = {ph}",
                     tuple(row[c] for c in summary.COLUMNS if c not in ("first_seq", "id")) + (incident_id,))


def _insert_sql(ph: str) -> str:
    return (f"INSERT INTO incident_summary ({', '.join(summary.COLUMNS)}) "
            f"VALUES ({', '.join([ph] * len(summary.COLUMNS))})")


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

    rows = summary.build(stream())
    conn.execute("DELETE FROM incident_summary")
    batch = [summary.values(r) for r in rows.values()]
    if batch:
        cur = conn.cursor()
        cur.executemany(_insert_sql(ph), batch)
    return len(batch)


def where(ph: str, *, level: str | None = None, state: str | None = None, district: str | None = None,
          scope: str | None = None, q: str | None = None, types: tuple[str, ...] = (),
          before: int | None = None, after: int | None = None, sqlite: bool = True) -> tuple[str, list[Any]]:
    """The WHERE clause of a filtered list (" WHERE ..." or "") and its arguments. ``scope``: a canonical
    scope adcode (``scopes.place_in`` as SQL); ``q``: text looked for in the search column (lower-cased), or
    an incident type among ``types``; ``before``/``after``: a keyset cursor on first_seq."""
    parts: list[str] = []
    args: list[Any] = []
    for column, value in (("level", level), ("state", state)):
        if value is not None:
            parts.append(f"{column} = {ph}")
            args.append(value)
    if district is not None:
        parts.append(f"(district_adcode = {ph} OR district_name = {ph})")
        args += [district, district]
    if scope is not None and scope != PROVINCE:
        if scope.endswith("00"):
            parts.append(f"scope_city = {ph}")
            args.append(scope[:4])
        else:
            parts.append(f"scope_district = {ph}")
            args.append(scope)
    if q:
        find = f"instr(search, {ph}) > 0" if sqlite else f"strpos(search, {ph}) > 0"
        args.append(q.lower())
        if types:
            find = f"({find} OR type IN ({', '.join([ph] * len(types))}))"
            args += list(types)
        parts.append(find)
    if before is not None:
        parts.append(f"first_seq < {ph}")
        args.append(int(before))
    if after is not None:
        parts.append(f"first_seq > {ph}")
        args.append(int(after))
    return (" WHERE " + " AND ".join(parts) if parts else ""), args


def select(ph: str, *, newest_first: bool = False, limit: int | None = None, offset: int = 0,
           **filters: Any) -> tuple[str, list[Any]]:
    """The SELECT of a page of rows (every column but the search text), in the list's order."""
    clause, args = where(ph, **filters)
    sql = (f"SELECT {', '.join(_READ)} FROM incident_summary{clause} ORDER BY first_seq"
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
    clause, args = where(ph, **filters)
    return f"SELECT count(*) AS n FROM incident_summary{clause}", args
