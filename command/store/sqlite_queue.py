"""The alert and delivery queue in SQLite: alerts with their deliveries in one transaction, CAP identifier
reservations, and the outbox's work queue (claim with a lease, finish by the lease's owner only)."""
from __future__ import annotations

import sqlite3
from typing import Any

from command.errors import StoreError
from command.security.audit import FINAL_DELIVERY, row_digest
from command.store import outcome_timeline, sqlite_events
from command.store._records import ALERT_COLUMNS, DELIVERY_COLUMNS, check_finish_status, utc_now
from command.store.sqlite_audit import alert_as_queued, chain, vouch_alert

RELEASED = "released"      # a finish that undoes the claim of a delivery not sent (the rest of a batch)

# The next delivery a channel may send: due (or its lease ran out), and no earlier delivery of the same
# incident on the same channel still unfinished. Walks the partial index deliveries_open in due order.
_HEAD_OF_ITS_INCIDENT = """NOT EXISTS (
    SELECT 1 FROM deliveries e INDEXED BY deliveries_open_incident
    WHERE e.channel = d.channel AND e.incident_id = d.incident_id AND e.id < d.id
      AND e.status IN ('pending', 'sending', 'failed'))"""
_CLAIM_SQL = f"""
SELECT d.id FROM deliveries d
WHERE d.channel = ?1 AND d.status IN ('pending', 'sending', 'failed')
  AND ((d.status IN ('pending', 'failed') AND d.next_attempt_at <= ?2) OR (d.status = 'sending' AND d.lease_until <= ?3))
  AND {_HEAD_OF_ITS_INCIDENT}
ORDER BY d.next_attempt_at, d.id LIMIT 1"""
_CLAIM_BATCH_SQL = _CLAIM_SQL.replace("LIMIT 1", "LIMIT ?6")    # the same plan, a batch of up to ?6


class SQLiteDeliveryQueue:
    def __init__(self, db: Any) -> None:
        self.db = db

    # -- alerts and identifiers -------------------------------------------------------------------------
    def identifier_used(self, identifier: str) -> bool:
        row = self.db.conn().execute(
            "SELECT 1 FROM alerts WHERE identifier = ?1 UNION ALL SELECT 1 FROM cap_identifiers WHERE identifier = ?1",
            (identifier,)).fetchone()
        return row is not None

    def reserve_identifier(self, identifier: str, incident_id: str) -> bool:
        if not identifier or not incident_id:
            raise StoreError(f"identifier reservation refused: {identifier!r} for {incident_id!r} (both needed)")
        with self.db.tx() as conn:
            if conn.execute("SELECT 1 FROM alerts WHERE identifier = ?", (identifier,)).fetchone():
                return False
            cur = conn.execute(
                "INSERT INTO cap_identifiers (identifier, incident_id, reserved_at) VALUES (?, ?, ?)"
                " ON CONFLICT (identifier) DO NOTHING", (identifier, incident_id, utc_now()))
            return cur.rowcount == 1

    def alert(self, identifier: str) -> dict[str, Any] | None:
        row = self.db.conn().execute("SELECT * FROM alerts WHERE identifier = ?", (identifier,)).fetchone()
        return dict(row) if row else None

    def insert_alert_with_deliveries(self, alert: dict[str, Any], deliveries: list[tuple[str, str]], *,
                                     created_at: str, now: float) -> list[int]:
        try:
            with self.db.tx() as conn:
                owner = conn.execute("SELECT incident_id FROM cap_identifiers WHERE identifier = ?",
                                     (alert["identifier"],)).fetchone()
                if owner is not None and owner[0] != alert["incident_id"]:
                    raise StoreError(f"alert {alert['identifier']}: not stored (the identifier is reserved for "
                                     f"incident {owner[0]}, not {alert['incident_id']})")
                conn.execute(
                    f"INSERT INTO alerts ({', '.join(ALERT_COLUMNS)}, created_at) "
                    f"VALUES ({', '.join('?' * len(ALERT_COLUMNS))}, ?)",
                    [{"content_sha256": "", **alert}[c] for c in ALERT_COLUMNS] + [created_at])
                ids = []
                for channel, mode in deliveries:
                    cur = conn.execute(
                        "INSERT INTO deliveries (identifier, incident_id, channel, mode, status, attempts, "
                        "next_attempt_at, updated_at) VALUES (?, ?, ?, ?, 'pending', 0, ?, ?)",
                        (alert["identifier"], alert["incident_id"], channel, mode, now, now))
                    ids.append(int(cur.lastrowid))
                vouch_alert(self.db, conn, alert["identifier"], ids)
                return ids
        except sqlite3.IntegrityError as e:
            raise StoreError(f"alert {alert['identifier']}: not stored ({e})") from None

    # -- the work queue ---------------------------------------------------------------------------------
    def claim_delivery(self, channel: str, *, owner: str, now: float, lease_s: float) -> dict[str, Any] | None:
        got = self.claim_deliveries(channel, owner=owner, now=now, lease_s=lease_s, limit=1)
        return got[0] if got else None

    def claim_deliveries(self, channel: str, *, owner: str, now: float, lease_s: float,
                         limit: int) -> list[dict[str, Any]]:
        """Lease up to ``limit`` due deliveries of ``channel`` to ``owner``, in due order. Per incident and channel,
        deliveries go out in the order they were enqueued: one waits while an earlier delivery of the same
        incident on the same channel is unfinished (a Cancel never overtakes the Alert it cancels, even when
        that Alert is backing off after a failure), so a batch never holds two of one incident."""
        if limit < 1:
            return []
        # one statement, so one short write lock and few calls per batch (each call hands the GIL over)
        rows = self.db.write_one(
            f"UPDATE deliveries SET status = 'sending', attempts = attempts + 1, lease_until = ?4, owner = ?5,"
            f" updated_at = ?2 WHERE id IN ({_CLAIM_BATCH_SQL}) RETURNING id, identifier, channel, mode, status,"
            f" attempts, last_error, next_attempt_at", (channel, now, now, now + lease_s, owner, int(limit)))
        out, changed = [], []
        conn = self.db.conn()
        for job in sorted((dict(r) for r in rows), key=lambda r: (r["next_attempt_at"], r["id"])):   # the claim's order
            alert = conn.execute("SELECT * FROM alerts WHERE identifier = ?", (job["identifier"],)).fetchone()
            if not alert_as_queued(self.db, dict(alert)):      # edited after it was queued: never broadcast it
                changed.append({"id": job["id"], "status": "dead",
                                "last_error": "refused: the alert row was changed after it was queued (audit)"})
                continue
            job.update({f"alert_{k}": alert[k] for k in ALERT_COLUMNS})
            out.append(job)
        if changed:
            self.finish_deliveries(changed, owner=owner, now=now)
        return out

    def finish_delivery(self, delivery_id: int, *, owner: str, status: str, now: float, receipt: str | None = None,
                        last_error: str | None = None, next_attempt_at: float | None = None) -> bool:
        """Not fsync'd: a power loss can only undo it into a delivery that is tried again (same key)."""
        return bool(self.finish_deliveries([{"id": delivery_id, "status": status, "receipt": receipt,
                                             "last_error": last_error, "next_attempt_at": next_attempt_at}],
                                           owner=owner, now=now))

    def finish_deliveries(self, outcomes: list[dict[str, Any]], *, owner: str, now: float) -> set[int]:
        """Record outcomes ({id, status, receipt?, last_error?, next_attempt_at?, timeline?}) of deliveries
        leased to ``owner`` in one transaction, not fsync'd (status ``released``: not sent after all, its claim
        undone, attempts back as they were); returns the ids recorded (the others' lease was lost). A final
        outcome (sent, dead), its audit entry and the timeline events attached to it
        (``command.store.outcome_timeline``) are in that transaction: a delivery marked sent by hand has no
        entry, and verify says so. A power loss can roll them back together (sent again, same key)."""
        for o in outcomes:
            if o["status"] != RELEASED:
                check_finish_status(o["id"], o["status"])
        if not outcomes:
            return set()
        done = set()
        tip: dict[str, Any] = {}          # the chain's last entry as this transaction leaves it (read once)
        with self.db.tx(fsync=False) as conn:
            for o in outcomes:
                rows = conn.execute(
                    "UPDATE deliveries SET status = CASE WHEN ?1 <> 'released' THEN ?1"
                    " WHEN attempts > 1 THEN 'failed' ELSE 'pending' END,"
                    " attempts = attempts - (?1 = 'released'), receipt = coalesce(?2, receipt),"
                    " last_error = coalesce(?3, last_error), next_attempt_at = coalesce(?4, next_attempt_at),"
                    " lease_until = NULL, owner = NULL, updated_at = ?5"
                    " WHERE id = ?6 AND status = 'sending' AND owner = ?7 RETURNING *",
                    (o["status"], o.get("receipt"), o.get("last_error"), o.get("next_attempt_at"), now, o["id"],
                     owner)).fetchall()
                if not rows:
                    continue
                done.add(int(o["id"]))
                if o["status"] in FINAL_DELIVERY:
                    chain(self.db, conn, "outbox", f"deliveries.{o['status']}", str(o["id"]),
                          {"table": "deliveries", "key": str(o["id"]), "row": row_digest("deliveries", dict(rows[0]))},
                          "outbox", tip)
            groups = outcome_timeline.timeline_of(outcomes, done)
            if groups:
                self._write_timeline(conn, tip, groups)
        return done

    def _write_timeline(self, conn: sqlite3.Connection, tip: dict[str, Any], groups: list[Any]) -> None:
        """The outcomes' timeline events, under a savepoint (see ``command.store.outcome_timeline``)."""
        before = dict(tip)
        conn.execute("SAVEPOINT timeline")
        try:
            sqlite_events.write_events(self.db, conn, groups, tip)
        except sqlite3.OperationalError:
            raise                                # the transaction is rolled back whole: the batch is owed
        except Exception:
            conn.execute("ROLLBACK TO timeline")
            tip.clear()
            tip.update(before)
            at = conn.execute("SELECT at FROM audit WHERE id = ?", (before["id"],)).fetchone()[0]
            self.db.note_tip(before["id"], before["mac"], at)     # the anchor gets the tip that stays
            outcome_timeline.refused(groups)
        conn.execute("RELEASE timeline")

    def sending_owners(self) -> list[str]:
        rows = self.db.conn().execute(
            "SELECT DISTINCT owner FROM deliveries INDEXED BY deliveries_open"
            " WHERE status IN ('pending', 'sending', 'failed') AND status = 'sending' AND owner IS NOT NULL").fetchall()
        return [r[0] for r in rows]

    def expire_leases(self, owners: list[str], *, now: float) -> int:
        if not owners:
            return 0
        with self.db.tx() as conn:
            cur = conn.execute(
                f"UPDATE deliveries INDEXED BY deliveries_open SET lease_until = ?"
                f" WHERE status IN ('pending', 'sending', 'failed') AND status = 'sending' AND owner IN "
                f"({', '.join('?' * len(owners))})", [now, *owners])
            return cur.rowcount

    def next_due(self, channel: str) -> float | None:
        """One that waits behind an earlier delivery of its incident is due when that one is, not before."""
        row = self.db.conn().execute(
            "SELECT min(CASE d.status WHEN 'sending' THEN d.lease_until ELSE d.next_attempt_at END)"
            " FROM deliveries d INDEXED BY deliveries_open"
            f" WHERE d.channel = ? AND d.status IN ('pending', 'sending', 'failed') AND {_HEAD_OF_ITS_INCIDENT}",
            (channel,)).fetchone()
        return row[0]

    def unfinished_channels(self) -> list[str]:
        rows = self.db.conn().execute(
            "SELECT DISTINCT channel FROM deliveries INDEXED BY deliveries_open"
            " WHERE status IN ('pending', 'sending', 'failed')").fetchall()
        return [r[0] for r in rows]

    def deliveries(self, identifier: str | None = None) -> list[dict[str, Any]]:
        sql = f"SELECT {DELIVERY_COLUMNS} FROM deliveries"
        args: tuple[Any, ...] = ()
        if identifier is not None:
            sql += " WHERE identifier = ?"
            args = (identifier,)
        return [dict(r) for r in self.db.conn().execute(sql + " ORDER BY id", args).fetchall()]

    def delivery_counts(self, mode: str | None = None) -> dict[str, int]:
        sql = "SELECT status, count(*) FROM deliveries"
        args: tuple[Any, ...] = ()
        if mode is not None:
            sql += " WHERE mode = ?"
            args = (mode,)
        return {r[0]: r[1] for r in self.db.conn().execute(sql + " GROUP BY status", args).fetchall()}
