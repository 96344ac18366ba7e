"""The alert and delivery queue in PostgreSQL. Workers on any machine claim with ``FOR UPDATE SKIP LOCKED``
(two never take the same row, none waits for another's lock) and a lease (a killed worker's delivery is taken
over when its lease runs out). Per incident and channel, deliveries go out in enqueue order across processes:
a delivery is claimable only while no earlier delivery of its incident on its channel is unfinished, and a
claimed one stays unfinished ('sending') until its owner finishes it."""
from __future__ import annotations

from typing import Any

import json

from command.errors import StoreError
from command.security.audit import FINAL_DELIVERY, row_digest
from command.store import outcome_timeline, postgres_events
from command.store._records import ALERT_COLUMNS, DELIVERY_COLUMNS, check_finish_status, utc_now
from command.store.postgres_audit import chain, chain_many, chained


def _vouch_queued(conn: Any, tip: dict[str, Any], identifier: str, delivery_ids: list[int]) -> None:
    """Audit a queued alert and its deliveries with the digests of their rows as written."""
    alert = conn.execute("SELECT * FROM alerts WHERE identifier = %s", (identifier,)).fetchone()
    chain(conn, tip, "outbox", "alerts.queue", identifier,
          {"table": "alerts", "key": identifier, "row": row_digest("alerts", dict(alert))}, "outbox")
    rows = {str(r["id"]): row_digest("deliveries", dict(r)) for r in conn.execute(
        "SELECT * FROM deliveries WHERE id = ANY(%s)", (list(delivery_ids),)).fetchall()}
    if rows:
        chain(conn, tip, "outbox", "deliveries.queue", identifier, {"table": "deliveries", "rows": rows}, "outbox")

RELEASED = "released"      # a finish that undoes the claim of a delivery not sent (the rest of a batch)
_OPEN = "('pending', 'sending', 'failed')"
# The oldest open delivery of its incident on its channel: a correlated subquery (a seek of the partial index
# deliveries_open_incident per candidate), not NOT EXISTS (...e.id < d.id): the planner turned that anti-join
# into a rescan of every open delivery of the channel per candidate once the claim's LIMIT was above 1
# (EXPLAIN ANALYZE, 2,000 queued: 20 ms per batch claim of 32, 0.9 ms this way).
_HEAD_OF_ITS_INCIDENT = f"""(d.incident_id IS NULL OR d.id = (
    SELECT min(e.id) FROM deliveries e
    WHERE e.channel = d.channel AND e.incident_id = d.incident_id AND e.status IN {_OPEN}))"""
_CLAIM_SQL = f"""
WITH claimed AS (
  UPDATE deliveries SET status = 'sending', attempts = attempts + 1, lease_until = %(lease)s, owner = %(owner)s,
         updated_at = %(now)s
  WHERE id = ANY(ARRAY(
    SELECT d.id FROM deliveries d
    WHERE d.channel = %(channel)s AND d.status IN {_OPEN}
      AND ((d.status IN ('pending', 'failed') AND d.next_attempt_at <= %(now)s)
           OR (d.status = 'sending' AND d.lease_until <= %(now)s))
      AND {_HEAD_OF_ITS_INCIDENT}
    ORDER BY d.next_attempt_at, d.id LIMIT %(limit)s
    FOR UPDATE SKIP LOCKED))
  RETURNING id, identifier, channel, mode, status, attempts, last_error, next_attempt_at)
SELECT claimed.*, {', '.join(f'a.{c} AS alert_{c}' for c in ALERT_COLUMNS)}
FROM claimed JOIN alerts a ON a.identifier = claimed.identifier
ORDER BY claimed.next_attempt_at, claimed.id"""
# A batch of outcomes in one statement: the arrays are zipped row by row (unnest of several arrays).
_FINISH_SQL = """
UPDATE deliveries d SET status = CASE WHEN v.status <> 'released' THEN v.status
                                    WHEN d.attempts > 1 THEN 'failed' ELSE 'pending' END,
       attempts = d.attempts - (v.status = 'released')::int, receipt = coalesce(v.receipt, d.receipt),
       last_error = coalesce(v.last_error, d.last_error), next_attempt_at = coalesce(v.next_at, d.next_attempt_at),
       lease_until = NULL, owner = NULL, updated_at = %(now)s
FROM unnest(%(ids)s::bigint[], %(statuses)s::text[], %(receipts)s::text[], %(errors)s::text[],
            %(next)s::double precision[]) AS v(id, status, receipt, last_error, next_at)
WHERE d.id = v.id AND d.status = 'sending' AND d.owner = %(owner)s
RETURNING d.*"""


class PostgresDeliveryQueue:
    def __init__(self, db: Any) -> None:
        self.db = db

    # -- alerts and identifiers -------------------------------------------------------------------------
    def identifier_used(self, identifier: str) -> bool:
        return self.db.row(
            "SELECT 1 FROM alerts WHERE identifier = %(i)s UNION ALL"
            " SELECT 1 FROM cap_identifiers WHERE identifier = %(i)s LIMIT 1", {"i": identifier}) is not None

    def reserve_identifier(self, identifier: str, incident_id: str) -> bool:
        """The primary key decides between concurrent reservations; an alert already stored under the
        identifier (sent before reservations existed) counts as used."""
        if not identifier or not incident_id:
            raise StoreError(f"identifier reservation refused: {identifier!r} for {incident_id!r} (both needed)")
        row = self.db.row(
            "INSERT INTO cap_identifiers (identifier, incident_id, reserved_at)"
            " SELECT %(i)s, %(inc)s, %(at)s WHERE NOT EXISTS (SELECT 1 FROM alerts WHERE identifier = %(i)s)"
            " ON CONFLICT (identifier) DO NOTHING RETURNING identifier",
            {"i": identifier, "inc": incident_id, "at": utc_now()})
        return row is not None

    def alert(self, identifier: str) -> dict[str, Any] | None:
        return self.db.row(f"SELECT {', '.join(ALERT_COLUMNS)}, created_at FROM alerts WHERE identifier = %s",
                           (identifier,))

    def insert_alert_with_deliveries(self, alert: dict[str, Any], deliveries: list[tuple[str, str]], *,
                                     created_at: str, now: float) -> list[int]:
        try:
            with chained(self.db) as (conn, tip):
                owner = conn.execute("SELECT incident_id FROM cap_identifiers WHERE identifier = %s",
                                     (alert["identifier"],)).fetchone()
                if owner is not None and owner["incident_id"] != alert["incident_id"]:
                    raise StoreError(f"alert {alert['identifier']}: not stored (the identifier is reserved for "
                                     f"incident {owner['incident_id']}, not {alert['incident_id']})")
                conn.execute(
                    f"INSERT INTO alerts ({', '.join(ALERT_COLUMNS)}, created_at) "
                    f"VALUES ({', '.join(['%s'] * len(ALERT_COLUMNS))}, %s)",
                    [{"content_sha256": "", **alert}[c] for c in ALERT_COLUMNS] + [created_at])
                ids = []
                for channel, mode in deliveries:
                    ids.append(int(conn.execute(
                        "INSERT INTO deliveries (identifier, incident_id, channel, mode, status, attempts, "
                        "next_attempt_at, updated_at) VALUES (%s, %s, %s, %s, 'pending', 0, %s, %s) RETURNING id",
                        (alert["identifier"], alert["incident_id"], channel, mode, now, now)).fetchone()["id"]))
                _vouch_queued(conn, tip, alert["identifier"], ids)
                return ids
        except self.db.errors.IntegrityError as e:
            raise StoreError(f"alert {alert['identifier']}: not stored ({_message(e)})") from None

    # -- the work queue ---------------------------------------------------------------------------------
    def claim_delivery(self, channel: str, *, owner: str, now: float, lease_s: float) -> dict[str, Any] | None:
        got = self.claim_deliveries(channel, owner=owner, now=now, lease_s=lease_s, limit=1)
        return got[0] if got else None

    def claim_deliveries(self, channel: str, *, owner: str, now: float, lease_s: float,
                         limit: int) -> list[dict[str, Any]]:
        """Lease up to ``limit`` due deliveries of ``channel`` to ``owner`` in one statement, in due order. Only the
        oldest open delivery of an incident on the channel is claimable, so a batch never holds two of one
        incident. One whose alert row changed since it was queued is dead-lettered (audited), not returned."""
        if limit < 1:
            return []
        with self.db.tx(fsync=False) as conn:
            rows = conn.execute(_CLAIM_SQL, {"channel": channel, "now": now, "lease": now + lease_s,
                                             "owner": owner, "limit": int(limit)}).fetchall()
        if not rows:
            return []
        intact = self._as_queued({r["identifier"] for r in rows})
        changed = [r for r in rows if r["identifier"] not in intact]
        if changed:                                          # edited after queueing: never sent
            self.finish_deliveries([{"id": r["id"], "status": "dead", "last_error":
                                     "refused: the alert row was changed after it was queued (audit)"}
                                    for r in changed], owner=owner, now=now)
        return [r for r in rows if r["identifier"] in intact]

    def _as_queued(self, identifiers: set[str]) -> set[str]:
        """Those of ``identifiers`` whose alert row is still the one the audit chain vouched for when queued."""
        from command.security.audit import mac_ok
        ids = sorted(identifiers)
        with self.db.tx() as conn:
            alerts = conn.execute("SELECT * FROM alerts WHERE identifier = ANY(%s)", (ids,)).fetchall()
            entries = {r["target"]: r for r in conn.execute(      # each identifier's last entry: an index seek
                "SELECT a.* FROM unnest(%s::text[]) AS t(target) CROSS JOIN LATERAL (SELECT * FROM audit"
                " WHERE audit.target = t.target AND audit.action = 'alerts.queue' ORDER BY audit.id DESC LIMIT 1) a",
                (ids,)).fetchall()}
            vouch = None
            if len(entries) < len(ids):
                vouch = conn.execute("SELECT * FROM audit WHERE target = 'alerts' AND action = 'upgrade.vouch'"
                                     " ORDER BY id DESC LIMIT 1").fetchone()
        out = set()
        for alert in alerts:
            entry = entries.get(alert["identifier"]) or vouch
            if entry is None or not mac_ok(self.db.audit_key, dict(entry)):
                continue
            detail = json.loads(entry["detail"])
            want = detail.get("row") if "row" in detail else (detail.get("rows") or {}).get(alert["identifier"])
            if want == row_digest("alerts", dict(alert)):
                out.add(alert["identifier"])
        return out

    def finish_delivery(self, delivery_id: int, *, owner: str, status: str, now: float, receipt: str | None = None,
                        last_error: str | None = None, next_attempt_at: float | None = None) -> bool:
        """Not waited for on disk: a crash can only undo it into a delivery that is tried again (same key)."""
        return bool(self.finish_deliveries([{"id": delivery_id, "status": status, "receipt": receipt,
                                             "last_error": last_error, "next_attempt_at": next_attempt_at}],
                                           owner=owner, now=now))

    def finish_deliveries(self, outcomes: list[dict[str, Any]], *, owner: str, now: float) -> set[int]:
        """Record outcomes ({id, status, receipt?, last_error?, next_attempt_at?, timeline?}) of deliveries
        leased to ``owner`` in one transaction (status ``released``: not sent after all, its claim undone,
        attempts back as they were); returns the ids recorded (the others' lease was lost). Final ones (sent,
        dead) get one audit entry each with their row's digest, and the timeline events attached to them
        (``command.store.outcome_timeline``) are written in the same transaction: the chain's lock taken
        once for the whole batch."""
        for o in outcomes:
            if o["status"] != RELEASED:
                check_finish_status(o["id"], o["status"])
        if not outcomes:
            return set()
        args = {"now": now, "owner": owner, "ids": [int(o["id"]) for o in outcomes],
                "statuses": [o["status"] for o in outcomes], "receipts": [o.get("receipt") for o in outcomes],
                "errors": [o.get("last_error") for o in outcomes],
                "next": [o.get("next_attempt_at") for o in outcomes]}
        if not any(o["status"] in FINAL_DELIVERY for o in outcomes):
            with self.db.tx(fsync=False) as conn:
                return {int(r["id"]) for r in conn.execute(_FINISH_SQL, args).fetchall()}
        with chained(self.db) as (conn, tip):          # a final outcome is audited with its row's digest
            rows = sorted(conn.execute(_FINISH_SQL, args).fetchall(), key=lambda r: r["id"])
            entries = [("outbox", f"deliveries.{row['status']}", str(row["id"]),
                        {"table": "deliveries", "key": str(row["id"]), "row": row_digest("deliveries", dict(row))},
                        "outbox", None) for row in rows if row["status"] in FINAL_DELIVERY]
            if entries:
                chain_many(conn, tip, entries)
            recorded = {int(r["id"]) for r in rows}
            groups = outcome_timeline.timeline_of(outcomes, recorded)
            if groups:
                self._write_timeline(conn, tip, groups)
        return recorded

    def _write_timeline(self, conn: Any, tip: dict[str, Any], groups: list[Any]) -> None:
        """The outcomes' timeline events, under a savepoint (see ``command.store.outcome_timeline``)."""
        before = dict(tip)
        try:
            with conn.transaction():             # a savepoint inside the finish's transaction
                postgres_events.write_events(self.db, conn, tip, groups)
        except self.db.errors.OperationalError:
            raise                                # the database went away: the whole batch is owed
        except Exception:
            tip.clear()
            tip.update(before)
            outcome_timeline.refused(groups)

    def sending_owners(self) -> list[str]:
        rows = self.db.rows(f"SELECT DISTINCT owner FROM deliveries WHERE status IN {_OPEN}"
                            " AND status = 'sending' AND owner IS NOT NULL")
        return [r["owner"] for r in rows]

    def expire_leases(self, owners: list[str], *, now: float) -> int:
        if not owners:
            return 0
        with self.db.tx() as conn:
            cur = conn.execute(f"UPDATE deliveries SET lease_until = %s WHERE status IN {_OPEN}"
                               " AND status = 'sending' AND owner = ANY(%s)", (now, list(owners)))
            return cur.rowcount

    def next_due(self, channel: str) -> float | None:
        row = self.db.row(
            "SELECT min(CASE d.status WHEN 'sending' THEN d.lease_until ELSE d.next_attempt_at END) AS due"
            f" FROM deliveries d WHERE d.channel = %s AND d.status IN {_OPEN} AND {_HEAD_OF_ITS_INCIDENT}",
            (channel,))
        return row["due"]

    def unfinished_channels(self) -> list[str]:
        return [r["channel"] for r in self.db.rows(
            f"SELECT DISTINCT channel FROM deliveries WHERE status IN {_OPEN}")]

    def deliveries(self, identifier: str | None = None) -> list[dict[str, Any]]:
        if identifier is None:
            return self.db.rows(f"SELECT {DELIVERY_COLUMNS} FROM deliveries ORDER BY id")
        return self.db.rows(f"SELECT {DELIVERY_COLUMNS} FROM deliveries WHERE identifier = %s ORDER BY id",
                            (identifier,))

    def delivery_counts(self, mode: str | None = None) -> dict[str, int]:
        sql, args = "SELECT status, count(*) AS n FROM deliveries", ()
        if mode is not None:
            sql, args = sql + " WHERE mode = %s", (mode,)
        return {r["status"]: int(r["n"]) for r in self.db.rows(sql + " GROUP BY status", args)}


def _message(e: BaseException) -> str:
    diag = getattr(e, "diag", None)
    return (diag.message_primary if diag is not None and diag.message_primary else str(e)).strip()
