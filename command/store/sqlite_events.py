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
from command.store.sqlite_audit import chain


class SQLiteEventLog:
    def __init__(self, db: Any) -> None:
        self.db = db

    def append_event(self, incident_id: str, kind: str, payload: dict[str, Any], *, at: str, actor: str,
                     source: str = "local", by: str | None = None) -> int:
        return self.append_events(incident_id, [(kind, payload, at, actor)], source=source, by=by)[0]

    def append_events(self, incident_id: str, records: list[EventRecord], *, source: str = "local",
                      by: str | None = None) -> list[int]:
        bodies = event_bodies(incident_id, records)
        seqs: list[int] = []
        tip: dict[str, Any] = {}
        with self.db.tx() as conn:
            for (kind, _payload, at, actor), body in zip(records, bodies):
                try:
                    cur = conn.execute(
                        "INSERT INTO events (incident_id, kind, at, payload, actor) VALUES (?, ?, ?, ?, ?)",
                        (incident_id, kind, at, body, actor))
                except sqlite3.IntegrityError as e:
                    if kind == "Reported" and "events.incident_id" in str(e):
                        raise IncidentExistsError(f"incident {incident_id} already exists; use update") from None
                    raise
                seq = int(cur.lastrowid)
                chain(conn, by or actor, f"event.{kind}", incident_id,
                      event_audit_detail(seq, at, body, actor, by), source, tip)
                seqs.append(seq)
        return seqs

    def events(self, incident_id: str | None = None, since_seq: int = 0) -> list[StoredEvent]:
        sql = "SELECT seq, incident_id, kind, at, payload, actor FROM events WHERE seq > ?"
        args: list[Any] = [since_seq]
        if incident_id is not None:
            sql += " AND incident_id = ?"
            args.append(incident_id)
        rows = self.db.conn().execute(sql + " ORDER BY seq", args).fetchall()
        return [StoredEvent(r["seq"], r["incident_id"], r["kind"], r["at"], json.loads(r["payload"]), r["actor"])
                for r in rows]

    def last_seq(self) -> int:
        return int(self.db.conn().execute("SELECT coalesce(max(seq), 0) FROM events").fetchone()[0])

    def incident_ids(self) -> list[str]:
        rows = self.db.conn().execute(
            "SELECT incident_id FROM events GROUP BY incident_id ORDER BY min(seq)").fetchall()
        return [r[0] for r in rows]

    def event_digests(self) -> dict[int, str]:
        rows = self.db.conn().execute("SELECT seq, payload FROM events").fetchall()
        return {r[0]: payload_digest(r[1]) for r in rows}
