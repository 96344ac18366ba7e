"""The audit log: append-only and hash-chained. Who, what, when, from where, for every change of state.

    from command.security.audit import AuditLog
    log = AuditLog(store)
    log.append("admin", "users.add", "王五", {"role": "officer"}, "cli")   # -> entry id
    report = log.verify()          # AuditReport(ok, entries, first_bad, reason)
    log.entries(last=20)           # newest last

Each entry holds the hash of the one before: ``hash = sha256(prev_hash + canonical JSON of the entry)``
where the entry is ``{id, at, actor, action, target, detail, source}`` and canonical JSON has sorted keys,
no spaces and UTF-8 text. The first entry's ``prev_hash`` is 64 zeros. The store writes an entry for every
timeline event inside the event's own transaction (``command.store.sqlite.Store.append_events``), so no change of
state escapes it; sign-ins, users and tokens are audited through ``Store`` too.

``verify`` finds an edited entry (its hash no longer matches), a deleted one (a gap in the ids, or fewer
entries than the database ever numbered) and an event edited after it was audited (its payload hash).
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

GENESIS = "0" * 64
ENTRY_FIELDS = ("id", "at", "actor", "action", "target", "detail", "source")


def canonical(value: Any) -> str:
    """The one JSON spelling of ``value`` that is hashed: sorted keys, no spaces, UTF-8 kept."""
    return json.dumps(value, ensure_ascii=False, sort_keys=True, separators=(",", ":"))


def entry_hash(prev_hash: str, entry: dict[str, Any]) -> str:
    """sha256(prev_hash + canonical JSON of the entry's fields), hex."""
    body = canonical({k: entry[k] for k in ENTRY_FIELDS})
    return hashlib.sha256((prev_hash + body).encode("utf-8")).hexdigest()


def payload_digest(body: str) -> str:
    """The sha256 of an event's stored payload text, kept in the event's audit entry."""
    return hashlib.sha256(body.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class AuditReport:
    ok: bool
    entries: int
    first_bad: int | None
    reason: str

    def line(self) -> str:
        """One line for the terminal."""
        if self.ok:
            return f"audit log ok: {self.entries} entries, hash chain intact"
        return f"audit log broken at entry {self.first_bad}: {self.reason}"


class AuditLog:
    """Append to and verify the store's audit table."""

    def __init__(self, store: Any) -> None:
        self.store = store

    def append(self, actor: str, action: str, target: str, detail: dict[str, Any], source: str) -> int:
        """Add one entry in its own transaction; returns its id."""
        return self.store.append_audit(actor, action, target, detail, source)

    def entries(self, *, last: int | None = None) -> list[dict[str, Any]]:
        """Entries in id order (the ``last`` N when given), detail decoded."""
        return self.store.audit_entries(last=last)

    def verify(self) -> AuditReport:
        """Walk the chain from the first entry; stop at the first entry that does not hold."""
        rows = self.store.audit_entries(raw=True)
        prev, expected_id = GENESIS, 1
        for row in rows:
            bad = _check(row, prev, expected_id)
            if bad:
                return AuditReport(False, len(rows), row["id"], bad)
            prev, expected_id = row["hash"], row["id"] + 1
        numbered = self.store.audit_numbered()
        if numbered >= expected_id:
            return AuditReport(False, len(rows), expected_id,
                               f"entries {expected_id}..{numbered} were written and are gone (deleted)")
        mismatch = self._events_mismatch(rows)
        if mismatch:
            return AuditReport(False, len(rows), mismatch[0], mismatch[1])
        return AuditReport(True, len(rows), None, "")

    def _events_mismatch(self, rows: list[dict[str, Any]]) -> tuple[int, str] | None:
        digests = self.store.event_digests()
        for row in rows:
            if not row["action"].startswith("event."):
                continue
            try:
                detail = json.loads(row["detail"])
                seq, digest = detail["seq"], detail["sha256"]
            except (ValueError, KeyError, TypeError):
                return row["id"], "its detail is not an event record"
            if seq not in digests:
                return row["id"], f"event seq {seq} it records is gone from the timeline (deleted)"
            if digests[seq] != digest:
                return row["id"], f"event seq {seq} was changed after it was recorded (edited)"
        return None


def _check(row: dict[str, Any], prev: str, expected_id: int) -> str:
    if row["id"] != expected_id:
        missing = f"entry {expected_id}" if row["id"] == expected_id + 1 else \
            f"entries {expected_id}..{row['id'] - 1}"
        return f"{missing} before it is missing (deleted)"
    if row["prev_hash"] != prev:
        return "it does not hold the hash of the entry before it (chain broken)"
    try:
        entry = dict(row, detail=json.loads(row["detail"]))
    except ValueError:
        return "its detail is not JSON (edited)"
    if entry_hash(prev, entry) != row["hash"]:
        return "its content does not match its hash (edited)"
    return ""
