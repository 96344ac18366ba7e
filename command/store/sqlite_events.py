"""The event log in SQLite: append-only (triggers refuse UPDATE and DELETE), one ``Reported`` per incident
(a unique partial index), every event audited in the transaction that writes it."""
from __future__ import annotations

import json
import sqlite3
from typing import Any

from command.errors import IncidentExistsError
from command.security.audit import payload_digest
from command.store._records import EventRecord, event_audit_detail, event_bodies
from command.store.interfaces import StoredEvent
from command.store import summary_sql
from command.store.sqlite_audit import chain


def vouched_events(key: bytes, rows: Any) -> list[StoredEvent]:
    """The events of joined (event, audit entry) rows whose entry's HMAC holds and names this payload."""
    from command.security.audit import parsed_mac_ok
    out: list[StoredEvent] = []
    for r in rows:
        if out and out[-1].seq == r["seq"]:
            continue
        try:
            detail = json.loads(r["a_detail"])     # once, for the HMAC and the checks below
        except (TypeError, ValueError):
            continue
        entry = {"id": r["a_id"], "at": r["a_at"], "actor": r["a_actor"], "action": r["a_action"],
                 "target": r["a_target"], "detail": detail, "source": r["a_source"],
                 "prev_mac": r["a_prev_mac"], "mac": r["a_mac"]}
        if not parsed_mac_ok(key, entry) or r["a_action"] != f"event.{r['kind']}" \
                or r["a_target"] != r["incident_id"]:
            continue
        if not isinstance(detail, dict) or detail.get("seq") != r["seq"] \
                or detail.get("sha256") != payload_digest(r["payload"]):
            continue
        out.append(StoredEvent(r["seq"], r["incident_id"], r["kind"], r["at"], json.loads(r["payload"]), r["actor"]))
    return out


class SQLiteEventLog:
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
        """Several incidents' events in ONE transaction (one write lock, one commit), in the order given, each
        with its audit entry, and each incident's projection row; all or nothing. Each group's seqs."""
        with self.db.tx() as conn:
            return write_events(self.db, conn, [(i, records, source, by) for i, records in groups], {})

    def events(self, incident_id: str | None = None, since_seq: int = 0) -> list[StoredEvent]:
        """Only events whose audit entry holds (its HMAC with this database's key, its payload digest): one
        inserted behind the product's back, or with a forged entry, is not part of any timeline (and
        ``yzt audit verify`` reports it)."""
        sql = ("SELECT e.seq, e.incident_id, e.kind, e.at, e.payload, e.actor, a.id AS a_id, a.at AS a_at,"
               " a.actor AS a_actor, a.action AS a_action, a.target AS a_target, a.detail AS a_detail,"
               " a.source AS a_source, a.prev_mac AS a_prev_mac, a.mac AS a_mac"
               " FROM events e JOIN audit a INDEXED BY audit_by_event ON a.event_seq = e.seq WHERE e.seq > ?")
        args: list[Any] = [since_seq]
        if incident_id is not None:
            sql += " AND e.incident_id = ?"
            args.append(incident_id)
        rows = self.db.conn().execute(sql + " ORDER BY e.seq, a.id", args).fetchall()
        return vouched_events(self.db.audit_key, rows)

    def last_seq(self) -> int:
        return int(self.db.conn().execute("SELECT coalesce(max(seq), 0) FROM events").fetchone()[0])

    def incident_ids(self) -> list[str]:
        rows = self.db.conn().execute(       # an incident made only of unaudited rows is no incident
            "SELECT e.incident_id FROM events e WHERE EXISTS (SELECT 1 FROM audit a INDEXED BY audit_by_event"
            " WHERE a.event_seq = e.seq) GROUP BY e.incident_id ORDER BY min(e.seq)").fetchall()
        return [r[0] for r in rows]

    def event_digests(self) -> dict[int, str]:
        rows = self.db.conn().execute("SELECT seq, payload FROM events").fetchall()
        return {r[0]: payload_digest(r[1]) for r in rows}

    def incident_summaries(self, *, newest_first: bool = False, limit: int | None = None, offset: int = 0,
                           **filters: Any) -> list[dict[str, Any]]:
        sql, args = summary_sql.select("?", newest_first=newest_first, limit=limit, offset=offset, sqlite=True,
                                       **filters)
        return [dict(r) for r in self.db.conn().execute(sql, args).fetchall()]

    def incident_count(self, **filters: Any) -> int:
        sql, args = summary_sql.count("?", sqlite=True, **filters)
        return int(self.db.conn().execute(sql, args).fetchone()[0])


def write_events(db: Any, conn: sqlite3.Connection, groups: list[tuple[str, list[EventRecord], str, str | None]],
                 tip: dict[str, Any]) -> list[list[int]]:
    """Write events inside the caller's transaction: ``groups`` are (incident_id, records, source, by), in the
    order given, each event with its audit entry (chained after ``tip``, the chain's last entry as this
    transaction left it; ``{}``: read it), and each incident's projection row. Each group's seqs. The
    outbox's batch finish writes its outcomes' timeline events with it, in the transaction that records them."""
    bodies = [event_bodies(incident_id, records) for incident_id, records, _s, _b in groups]
    out: list[list[int]] = []
    kept: dict[str, list[tuple[int, str, str, str]]] = {}
    for (incident_id, records, source, by), texts in zip(groups, bodies):
        seqs: list[int] = []
        for (kind, _payload, at, actor), body in zip(records, texts):
            try:
                cur = conn.execute("INSERT INTO events (incident_id, kind, at, payload, actor) VALUES (?, ?, ?, ?, ?)",
                                   (incident_id, kind, at, body, actor))
            except sqlite3.IntegrityError as e:
                if kind == "Reported" and "events.incident_id" in str(e):
                    raise IncidentExistsError(f"incident {incident_id} already exists; use update") from None
                raise
            seq = int(cur.lastrowid)
            chain(db, conn, by or actor, f"event.{kind}", incident_id, event_audit_detail(seq, at, body, actor, by),
                  source, tip, event_seq=seq)
            seqs.append(seq)
            kept.setdefault(incident_id, []).append((seq, kind, body, at))
        out.append(seqs)
    summary_sql.keep_many(conn, "?", list(kept.items()))     # the list's rows, in the same transaction
    return out
