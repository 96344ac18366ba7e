"""What every backend stores the same way, whatever its SQL: the payload text of an event (its sha256 is in
the audit chain, so the text must be byte-identical on every backend), the checks on a record before it is
written, and the fields and hash of one audit entry."""
from __future__ import annotations

import json
from datetime import datetime, timezone
from typing import Any

from command.errors import StoreError
from command.security.audit import entry_hash, entry_seal, payload_digest

EventRecord = tuple[str, dict[str, Any], str, str]
ALERT_COLUMNS = ("identifier", "incident_id", "status", "msg_type", "cap_xml", "headline_zh", "text_zh",
                 "area_desc", "content_sha256")  # content_sha256: "" when the caller gave none
DELIVERY_COLUMNS = ("id, identifier, channel, mode, status, attempts, next_attempt_at, lease_until, owner, "
                    "receipt, last_error, updated_at")
UNFINISHED = ("pending", "sending", "failed")
FINISHED_AS = ("sent", "failed", "dead")


def event_bodies(incident_id: str, records: list[EventRecord]) -> list[str]:
    """The stored payload text of each record; refuses an empty incident or kind and a payload not JSON."""
    if not incident_id:
        raise StoreError(f"event refused: incident_id {incident_id!r} must be non-empty")
    bodies = []
    for kind, payload, _at, _actor in records:
        if not kind:
            raise StoreError(f"event refused for {incident_id}: kind {kind!r} must be non-empty")
        try:
            bodies.append(payload_text(payload))
        except (TypeError, ValueError) as e:
            raise StoreError(f"event {kind!r} of {incident_id}: payload is not JSON ({e})") from None
    return bodies


def event_audit_detail(seq: int, at: str, body: str, actor: str, by: str | None) -> dict[str, Any]:
    """What an event's audit entry records: its seq, time, payload digest and (when someone else wrote it for
    the event's actor) that actor."""
    detail: dict[str, Any] = {"seq": seq, "at": at, "sha256": payload_digest(body)}
    if by and by != actor:
        detail["event_actor"] = actor
    return detail


def audit_entry(prev_id: int, prev_hash: str, actor: str, action: str, target: str, detail: dict[str, Any],
                source: str) -> tuple[dict[str, Any], str, str]:
    """The next entry after ``(prev_id, prev_hash)``: (its fields, its hash, its detail as stored text)."""
    entry, detail_text = _entry(prev_id, actor, action, target, detail, source)
    return entry, entry_hash(prev_hash, entry), detail_text


def sealed_entry(prev_id: int, prev_hash: str, prev_mac: str, key: bytes, actor: str, action: str, target: str,
                 detail: dict[str, Any], source: str) -> tuple[dict[str, Any], str, str, str]:
    """The next entry after ``(prev_id, prev_hash, prev_mac)`` with its HMAC under ``key``: (its fields, its
    hash, its mac, its detail as stored text); the same as ``audit_entry`` and ``entry_mac``, with the entry's
    canonical JSON made once for both."""
    entry, detail_text = _entry(prev_id, actor, action, target, detail, source)
    digest, mac = entry_seal(key, prev_hash, prev_mac, entry)
    return entry, digest, mac, detail_text


_PLAIN = (str, int, bool, type(None))


def _entry(prev_id: int, actor: str, action: str, target: str, detail: dict[str, Any],
           source: str) -> tuple[dict[str, Any], str]:
    # the detail as JSON reads it back (tuples as lists...); a flat dict of strings, whole numbers, booleans and
    # nulls (every event's entry) already is, and skips the round trip
    plain = type(detail) is dict and all(type(k) is str and type(v) in _PLAIN for k, v in detail.items())
    entry = {"id": prev_id + 1, "at": datetime.now(timezone.utc).isoformat(timespec="milliseconds"),
             "actor": actor, "action": action, "target": target,
             "detail": dict(detail) if plain else json.loads(json.dumps(detail, ensure_ascii=False)),
             "source": source or "local"}
    return entry, json.dumps(entry["detail"], ensure_ascii=False, sort_keys=True)


def check_finish_status(delivery_id: int, status: str) -> None:
    if status not in FINISHED_AS:
        raise StoreError(f"delivery {delivery_id}: cannot finish with status {status!r}")


def payload_text(payload: Any) -> str:
    """The stored text of a payload: sorted keys; numpy scalars as numbers; non-string keys as JSON has them."""
    try:
        return json.dumps(payload, ensure_ascii=False, sort_keys=True, default=_scalar)
    except TypeError:   # keys of mixed types cannot be sorted until JSON has made them strings
        plain = json.loads(json.dumps(payload, ensure_ascii=False, default=_scalar))
        return json.dumps(plain, ensure_ascii=False, sort_keys=True)


def _scalar(o: Any) -> Any:
    """numpy scalars (an int64 count, a bool_) are stored as the plain numbers they are."""
    if hasattr(o, "item") and getattr(o, "ndim", 0) == 0:
        return o.item()
    raise TypeError(f"{type(o).__name__} is not JSON")


def utc_now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")
