"""The event log in PostgreSQL: append-only (a trigger refuses UPDATE, DELETE and TRUNCATE), one
``Reported`` per incident (the unique partial index ``events_one_report``), each event audited in the
transaction that writes it. The transaction takes the audit tip's lock before its first insert, so seqs
are handed out in commit order."""
from __future__ import annotations

import json
from typing import Any

from command.errors import IncidentExistsError
from command.security.audit import payload_digest
from command.store._records import EventRecord, event_audit_detail, event_bodies
from command.store.interfaces import StoredEvent
from command.store import summary_sql
from command.store.postgres_audit import chain_many, chained


class PostgresEventLog:
    def __init__(self, db: Any) -> None:
        self.db = db

    def append_event(self, incident_id: str, kind: str, payload: dict[str, Any], *, at: str, actor: str,
                     source: str = "local", by: str | None = None) -> int:
        return self.append_events(incident_id, [(kind, payload, at, actor)], source=source, by=by)[0]

    def append_events(self, incident_id: str, records: list[EventRecord], *, source: str = "local",
                      by: str | None = None) -> list[int]:
        return self.append_events_of([(incident_id, records)], source=source, by=by)[0]

    def append_events_of(self, groups: list[tuple[str, list[EventRecord]]], *, source: str = "local",
                         by: str | None = None) -> list[list[int]]:
        """Several incidents' events in ONE chained transaction (the audit tip locked once, one commit): the
        events in the order given (so each incident's stay in order), their audit entries, and each
        incident's projection row; all or nothing. Returns each group's seqs."""
        with chained(self.db) as (conn, tip):
            return write_events(self.db, conn, tip, [(i, records, source, by) for i, records in groups])

    def events(self, incident_id: str | None = None, since_seq: int = 0) -> list[StoredEvent]:
        """Only events whose audit entry holds (HMAC, digest): see ``sqlite_events.vouched_events``."""
        from command.store.sqlite_events import vouched_events
        sql = ("SELECT e.seq, e.incident_id, e.kind, e.at, e.payload, e.actor, a.id AS a_id, a.at AS a_at,"
               " a.actor AS a_actor, a.action AS a_action, a.target AS a_target, a.detail AS a_detail,"
               " a.source AS a_source, a.prev_mac AS a_prev_mac, a.mac AS a_mac"
               " FROM events e JOIN audit a ON a.event_seq = e.seq WHERE e.seq > %s")
        args: list[Any] = [since_seq]
        if incident_id is not None:
            sql += " AND e.incident_id = %s"
            args.append(incident_id)
        return vouched_events(self.db.audit_key, self.db.rows(sql + " ORDER BY e.seq, a.id", args))

    def last_seq(self) -> int:
        return int(self.db.rows("SELECT coalesce(max(seq), 0) AS seq FROM events")[0]["seq"])

    def incident_ids(self) -> list[str]:
        rows = self.db.rows("SELECT e.incident_id FROM events e WHERE EXISTS (SELECT 1 FROM audit a"
                            " WHERE a.event_seq = e.seq) GROUP BY e.incident_id ORDER BY min(e.seq)")
        return [r["incident_id"] for r in rows]

    def event_digests(self) -> dict[int, str]:
        return {r["seq"]: payload_digest(r["payload"]) for r in self.db.rows("SELECT seq, payload FROM events")}

    def incident_summaries(self, *, newest_first: bool = False, limit: int | None = None, offset: int = 0,
                           **filters: Any) -> list[dict[str, Any]]:
        sql, args = summary_sql.select("%s", newest_first=newest_first, limit=limit, offset=offset, sqlite=False,
                                       **filters)
        return self.db.rows(sql, args)

    def incident_count(self, **filters: Any) -> int:
        sql, args = summary_sql.count("%s", sqlite=False, **filters)
        return int(self.db.rows(sql, args)[0]["n"])


def write_events(db: Any, conn: Any, tip: dict[str, Any],
                 groups: list[tuple[str, list[EventRecord], str, str | None]]) -> list[list[int]]:
    """Write events inside the caller's ``chained`` transaction (the tip held, so seqs follow commit order):
    ``groups`` are (incident_id, records, source, by), written in the order given, each event with its audit
    entry, and each incident's projection row. Each group's seqs. The outbox's batch finish writes its
    outcomes' timeline events with it, in the transaction that records them."""
    flat = [(incident_id, rec, body, source, by) for incident_id, records, source, by in groups
            for rec, body in zip(records, event_bodies(incident_id, records))]
    try:
        seqs = _insert(conn, [(i, rec, body) for i, rec, body, _s, _b in flat])
    except db.errors.errors.UniqueViolation as e:
        if e.diag.constraint_name == "events_one_report":
            reported = [i for i, (k, *_r), *_x in flat if k == "Reported"]
            raise IncidentExistsError(f"incident {reported[0] if len(reported) == 1 else ', '.join(reported)}"
                                      " already exists; use update") from None
        raise
    chain_many(conn, tip, [(by or actor, f"event.{kind}", incident_id, event_audit_detail(seq, at, body, actor, by),
                            source, seq)
                           for seq, (incident_id, (kind, _p, at, actor), body, source, by) in zip(seqs, flat)])
    kept: dict[str, list[tuple[int, str, str, str]]] = {}
    for seq, (incident_id, (kind, _p, at, _a), body, _s, _b) in zip(seqs, flat):
        kept.setdefault(incident_id, []).append((seq, kind, body, at))
    summary_sql.keep_many(conn, "%s", list(kept.items()))   # the list's rows, in the same transaction
    out, i = [], 0
    for _incident_id, records, _s, _b in groups:
        out.append(seqs[i:i + len(records)])
        i += len(records)
    return out


def _insert(conn: Any, flat: list[tuple[str, EventRecord, str]]) -> list[int]:
    """Insert the events in the order given (the audit tip is held: seqs follow commit order); their seqs."""
    if len(flat) == 1:
        incident_id, (kind, _p, at, actor), body = flat[0]
        return [int(conn.execute(
            "INSERT INTO events (incident_id, kind, at, payload, actor) VALUES (%s, %s, %s, %s, %s)"
            " RETURNING seq", (incident_id, kind, at, body, actor)).fetchone()["seq"])]
    if not flat:
        return []
    cols = list(zip(*[(i, k, at, body, actor) for i, (k, _p, at, actor), body in flat]))
    rows = conn.execute(
        "INSERT INTO events (incident_id, kind, at, payload, actor) SELECT i, k, a, p, ac FROM"
        " unnest(%s::text[], %s::text[], %s::text[], %s::text[], %s::text[]) WITH ORDINALITY AS t(i, k, a, p, ac, o)"
        " ORDER BY o RETURNING seq", [list(c) for c in cols]).fetchall()
    return sorted(int(r["seq"]) for r in rows)     # identities are drawn in insert order
