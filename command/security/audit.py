"""The audit log: append-only, hash-chained and keyed. Who, what, when, from where, for every change of state.

    from command.security.audit import AuditLog, Anchor, load_key
    key = load_key(settings.audit_key_path, settings.audit_key_env)   # the door does this (compose)
    log = AuditLog(store, key=key, anchor=Anchor(settings.audit_anchor_path))
    log.append("admin", "users.add", "王五", {"role": "officer"}, "cli")   # -> entry id
    report = log.verify()          # AuditReport(ok, entries, first_bad, reason, problems)
    log.entries(last=20)           # newest last

Each entry holds two chains over ``{id, at, actor, action, target, detail, source}`` in canonical JSON
(sorted keys, no spaces, UTF-8): ``hash = sha256(prev_hash + body)`` (anyone can recompute it, so alone it
only finds careless edits) and ``mac = HMAC-SHA256(key, prev_mac + body)`` with a key kept OUTSIDE the
database (a file under var_dir, mode 0600, or ``YZT_AUDIT_KEY``): whoever can write the database but not
read the key cannot write an entry that verifies, so an edited entry, a forged one and a recomputed
whole chain are all found. The first entry's ``prev_hash``/``prev_mac`` are 64 zeros.

After every write transaction the store hands the chain's tip (last id, its mac) to ``Anchor``: one line
appended to an append-only file outside the database, and the ``yzt_audit_anchor`` hook for an external
notary. ``verify`` checks that every anchored tip is still in the chain, so deleting the newest entries and
resetting ``sqlite_sequence`` (which no gap shows) is found.

The store writes an entry for every timeline event inside the event's own transaction and reads back only
events whose entry holds (``command.store``: an event inserted behind the product's back is ignored by the
service and reported here). Changes of users, tokens, alerts and deliveries carry ``row``, the sha256 of
the row as written (``row_digest``), so ``verify`` also finds a role changed in SQL, a token row added, a
queued warning's ``text_zh``/``cap_xml`` edited or a delivery marked sent by hand.
"""
from __future__ import annotations

import hashlib
import hmac
import json
import logging
import os
import secrets
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

log = logging.getLogger("yzt.audit")

GENESIS = "0" * 64
ENTRY_FIELDS = ("id", "at", "actor", "action", "target", "detail", "source")
AUDITED_TABLES = ("users", "tokens", "alerts", "deliveries")
FINAL_DELIVERY = ("sent", "dead")


class AuditKeyError(PermissionError):
    """The audit key is missing, unreadable, too short or readable by others."""


def canonical(value: Any) -> str:
    """The one JSON spelling of ``value`` that is hashed: sorted keys, no spaces, UTF-8 kept."""
    return json.dumps(value, ensure_ascii=False, sort_keys=True, separators=(",", ":"))


_QUOTED = json.encoder.encode_basestring      # json.dumps(a str, ensure_ascii=False), without its Python layers


def _body(entry: Mapping[str, Any]) -> str:
    """``canonical`` of the entry's fields. An entry of plain fields (an int id, str at/actor/action/target/
    source: every entry the product writes) is spelled from its parts in canonical's key order, with only its
    detail going through ``json.dumps``: the same text, without a dict and an encoder pass per entry."""
    i, at, actor, action, target, source = (entry["id"], entry["at"], entry["actor"], entry["action"],
                                            entry["target"], entry["source"])
    if type(i) is not int or not (type(at) is type(actor) is type(action) is type(target) is type(source) is str):
        return canonical({k: entry[k] for k in ENTRY_FIELDS})
    q = _QUOTED
    return (f'{{"action":{q(action)},"actor":{q(actor)},"at":{q(at)},"detail":{canonical(entry["detail"])},'
            f'"id":{i},"source":{q(source)},"target":{q(target)}}}')


def entry_hash(prev_hash: str, entry: Mapping[str, Any]) -> str:
    """sha256(prev_hash + canonical JSON of the entry's fields), hex. Unkeyed: finds careless edits only."""
    return hashlib.sha256((prev_hash + _body(entry)).encode("utf-8")).hexdigest()


def entry_mac(key: bytes, prev_mac: str, entry: Mapping[str, Any]) -> str:
    """HMAC-SHA256(key, prev_mac + canonical JSON of the entry's fields), hex."""
    return hmac.new(key, (prev_mac + _body(entry)).encode("utf-8"), hashlib.sha256).hexdigest()


def entry_seal(key: bytes, prev_hash: str, prev_mac: str, entry: Mapping[str, Any]) -> tuple[str, str]:
    """(``entry_hash``, ``entry_mac``) of one new entry over its canonical JSON spelled and encoded once:
    the same bytes as the two apart (the previous hash and mac are hex, so they encode alone as they do
    joined to the body)."""
    body = _body(entry).encode("utf-8")
    return (hashlib.sha256(prev_hash.encode("utf-8") + body).hexdigest(),
            hmac.new(key, prev_mac.encode("utf-8") + body, hashlib.sha256).hexdigest())


def payload_digest(body: str) -> str:
    """The sha256 of an event's stored payload text, kept in the event's audit entry."""
    return hashlib.sha256(body.encode("utf-8")).hexdigest()


def row_view(table: str, row: Mapping[str, Any]) -> dict[str, Any]:
    """The part of a stored row its audit entry vouches for. A delivery's claim/lease/retry bookkeeping
    changes between audited moments, so a delivery is vouched for by what it is and, once final, how it ended."""
    row = dict(row)
    if table == "deliveries":
        final = row.get("status") in FINAL_DELIVERY
        return {"id": row.get("id"), "identifier": row.get("identifier"), "incident_id": row.get("incident_id"),
                "channel": row.get("channel"), "mode": row.get("mode"),
                "status": row.get("status") if final else "open", "receipt": row.get("receipt") if final else None}
    return row


def row_digest(table: str, row: Mapping[str, Any]) -> str:
    """sha256 of the canonical JSON of a row of ``table`` as its audit entry records it."""
    return hashlib.sha256(canonical(row_view(table, row)).encode("utf-8")).hexdigest()


# ------------------------------------------------------------------------------------------ the key
def load_key(path: Path | str, env_value: str | None = None) -> bytes:
    """The HMAC key: ``env_value`` (YZT_AUDIT_KEY, 64 hex digits) when given, else the key file at ``path``,
    made once with 32 random bytes and mode 0600. A key file others may read is refused (fix: chmod 600)."""
    if env_value:
        try:
            key = bytes.fromhex(env_value.strip())
        except ValueError:
            raise AuditKeyError("YZT_AUDIT_KEY must be hex (64 digits: `python -c 'import secrets; "
                                "print(secrets.token_hex(32))'`)") from None
        if len(key) < 32:
            raise AuditKeyError("YZT_AUDIT_KEY is shorter than 32 bytes (64 hex digits)")
        return key
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        mode = path.stat().st_mode & 0o077
        if mode and os.name == "posix":
            raise AuditKeyError(f"{path}: the audit key is readable by others (mode {oct(path.stat().st_mode & 0o777)}"
                                f"); chmod 600 {path}") from None
        try:
            key = bytes.fromhex(path.read_text(encoding="ascii").strip())
        except (ValueError, UnicodeDecodeError):
            raise AuditKeyError(f"{path}: the audit key is not hex; restore it from its backup") from None
        if len(key) < 32:
            raise AuditKeyError(f"{path}: the audit key is shorter than 32 bytes")
        return key
    key = secrets.token_bytes(32)
    with os.fdopen(fd, "w", encoding="ascii") as f:
        f.write(key.hex() + "\n")
    return key


# ------------------------------------------------------------------------------------------ the anchor
@dataclass
class Anchor:
    """The chain's tip kept outside the database: one JSON line per write transaction appended to ``path``
    (opened O_APPEND, mode 0600) and passed to ``hook`` (the plugins' ``yzt_audit_anchor``)."""

    path: Path
    hook: Callable[..., Any] | None = None
    database: str = ""
    _warned: bool = field(default=False, repr=False)

    def __post_init__(self) -> None:
        self.path = Path(self.path)

    def write(self, entry_id: int, mac: str, at: str) -> None:
        line = canonical({"id": int(entry_id), "mac": mac, "at": at}) + "\n"
        try:
            self._append(line.encode("utf-8"))
        except OSError as e:          # the transaction is committed: say so loudly, never undo it
            if not self._warned:
                log.error("audit anchor %s not written (%s): tail deletions are not detectable until fixed",
                          self.path, e)
                self._warned = True
        if self.hook is not None:
            try:
                self.hook(entry_id=int(entry_id), mac=mac, at=at, database=self.database)
            except Exception:         # a notary being down never stops the response
                log.exception("yzt_audit_anchor hook failed for entry %s", entry_id)

    def _append(self, data: bytes) -> None:
        """Open, append, close: the folder is made only when the open says it is missing (a drill writes
        ~1,600 tips; a mkdir that finds the folder there cost more than the write itself)."""
        flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT
        try:
            fd = os.open(self.path, flags, 0o600)
        except FileNotFoundError:     # its folder is not there (yet, or any more)
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.path, flags, 0o600)
        try:
            os.write(fd, data)
        finally:
            os.close(fd)

    def tips(self) -> list[dict[str, Any]]:
        """Every anchored tip in file order (a torn last line from a crash is skipped)."""
        try:
            text = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return []
        out = []
        for line in text.splitlines():
            try:
                tip = json.loads(line)
                out.append({"id": int(tip["id"]), "mac": str(tip["mac"]), "at": str(tip.get("at", ""))})
            except (ValueError, KeyError, TypeError):
                continue
        return out


def plugin_anchor_hook(pm: Any = None) -> Callable[..., Any]:
    """A hook caller for ``Anchor(hook=...)`` over the plugin manager's ``yzt_audit_anchor``."""
    def call(**kwargs: Any) -> None:
        from command.plugins import get_plugin_manager
        (pm or get_plugin_manager()).hook.yzt_audit_anchor(**kwargs)
    return call


# ------------------------------------------------------------------------------------------ verify
@dataclass(frozen=True)
class AuditReport:
    ok: bool
    entries: int
    first_bad: int | None
    reason: str
    problems: tuple[str, ...] = ()

    def line(self) -> str:
        """One line for the terminal."""
        if self.ok:
            return f"audit log ok: {self.entries} entries, hash chain and HMAC intact, anchor and rows agree"
        more = f" (and {len(self.problems) - 1} more problem(s): yzt audit verify --json)" \
            if len(self.problems) > 1 else ""
        where = f"at entry {self.first_bad}" if self.first_bad is not None else "outside the chain"
        return f"audit log broken {where}: {self.reason}{more}"


class AuditLog:
    """Append to and verify the store's audit table. ``key`` defaults to the store's own (``audit_key``),
    ``anchor`` to the store's anchor; without a key only the unkeyed chain can be checked (and it says so)."""

    def __init__(self, store: Any, *, key: bytes | None = None, anchor: Anchor | None = None) -> None:
        self.store = store
        self.key = key if key is not None else getattr(store, "audit_key", None)
        self.anchor = anchor if anchor is not None else getattr(store, "anchor", None)

    def append(self, actor: str, action: str, target: str, detail: dict[str, Any], source: str) -> int:
        """Add one entry in its own transaction; returns its id."""
        return self.store.append_audit(actor, action, target, detail, source)

    def entries(self, *, last: int | None = None) -> list[dict[str, Any]]:
        """Entries in id order (the ``last`` N when given), detail decoded."""
        return self.store.audit_entries(last=last)

    def verify(self) -> AuditReport:
        """Every check, in order: the chain (ids, hashes, HMACs), the numbering, the anchor, the events and
        the audited rows. ``first_bad``/``reason`` name the first problem; ``problems`` lists them all."""
        rows = self.store.audit_entries(raw=True)
        problems: list[tuple[int | None, str]] = []
        problems += self._chain(rows)
        if not problems:
            numbered = self.store.audit_numbered()
            last = rows[-1]["id"] if rows else 0
            if numbered > last:
                problems.append((last + 1, f"entries {last + 1}..{numbered} were written and are gone (deleted)"))
        problems += self._anchored(rows)
        problems += self._events(rows)
        problems += self._rows(rows)
        if self.key is None and any(r.get("mac") for r in rows):
            problems.append((None, "no audit key given: the HMAC chain was not checked"))
        if problems:
            first, reason = problems[0]
            return AuditReport(False, len(rows), first, reason, tuple(r for _, r in problems))
        return AuditReport(True, len(rows), None, "")

    def _chain(self, rows: list[dict[str, Any]]) -> list[tuple[int | None, str]]:
        prev, prev_mac, expected_id = GENESIS, GENESIS, 1
        for row in rows:
            bad, body = _check(row, prev, expected_id)
            if not bad and self.key is not None:
                bad = _check_mac(self.key, row, prev_mac, body)
            if bad:
                return [(row["id"], bad)]
            prev, prev_mac, expected_id = row["hash"], row.get("mac") or GENESIS, row["id"] + 1
        return []

    def _anchored(self, rows: list[dict[str, Any]]) -> list[tuple[int | None, str]]:
        if self.anchor is None:
            return []
        tips = self.anchor.tips()
        if not tips:
            return [(None, f"the anchor {self.anchor.path} holds no tip: the chain's end cannot be checked")] \
                if rows else []
        by_id = {r["id"]: r for r in rows}
        last_id = rows[-1]["id"] if rows else 0
        top = max(t["id"] for t in tips)
        if top > last_id:
            return [(last_id + 1, f"entries {last_id + 1}..{top} were anchored outside the database and are gone "
                                  "(deleted, and the numbering reset)")]
        for tip in tips:
            row = by_id.get(tip["id"])
            if row is None or (row.get("mac") or "") != tip["mac"]:
                return [(tip["id"], "it is not the entry anchored outside the database (the chain was rewritten)")]
        return []

    def _events(self, rows: list[dict[str, Any]]) -> list[tuple[int | None, str]]:
        digests = self.store.event_digests()
        audited: set[int] = set()
        out: list[tuple[int | None, str]] = []
        for row in rows:
            if not row["action"].startswith("event."):
                continue
            try:
                detail = json.loads(row["detail"])
                seq, digest = detail["seq"], detail["sha256"]
            except (ValueError, KeyError, TypeError):
                out.append((row["id"], "its detail is not an event record"))
                continue
            audited.add(seq)
            if seq not in digests:
                out.append((row["id"], f"event seq {seq} it records is gone from the timeline (deleted)"))
            elif digests[seq] != digest:
                out.append((row["id"], f"event seq {seq} was changed after it was recorded (edited)"))
        for seq in sorted(set(digests) - audited):
            out.append((None, f"event seq {seq} has no audit entry (inserted behind the product's back; "
                              "the service ignores it)"))
        return out

    def _rows(self, rows: list[dict[str, Any]]) -> list[tuple[int | None, str]]:
        current = getattr(self.store, "audited_rows", None)
        if current is None:
            return []
        vouched: dict[tuple[str, str], tuple[int, str | None]] = {}
        for row in rows:
            try:
                detail = json.loads(row["detail"])
            except ValueError:
                continue
            if not isinstance(detail, dict) or detail.get("table") not in AUDITED_TABLES:
                continue
            if "row" in detail:
                vouched[(detail["table"], str(detail.get("key", row["target"])))] = (row["id"], detail["row"])
            for key, digest in (detail.get("rows") or {}).items():      # many rows at once (queue, upgrade)
                vouched[(detail["table"], str(key))] = (row["id"], digest)
        out: list[tuple[int | None, str]] = []
        now = current()
        for table in AUDITED_TABLES:
            rows_now = now.get(table, {})
            for key, digest in rows_now.items():
                entry = vouched.get((table, key))
                if entry is None:
                    out.append((None, f"{table} row {key!r} has no audit entry (added behind the product's back)"))
                elif entry[1] != digest:
                    out.append((entry[0], f"{table} row {key!r} differs from what this entry recorded "
                                          "(changed behind the product's back)"))
            for (t, key), (eid, digest) in vouched.items():
                if t == table and key not in rows_now and digest is not None:
                    out.append((eid, f"{table} row {key!r} is gone (deleted behind the product's back)"))
        return out


def _check(row: dict[str, Any], prev: str, expected_id: int) -> tuple[str, bytes]:
    """What is wrong with the row's place and hash ("" when nothing), and its canonical body (UTF-8)."""
    if row["id"] != expected_id:
        missing = f"entry {expected_id}" if row["id"] == expected_id + 1 else \
            f"entries {expected_id}..{row['id'] - 1}"
        return f"{missing} before it is missing (deleted)", b""
    if row["prev_hash"] != prev:
        return "it does not hold the hash of the entry before it (chain broken)", b""
    try:
        body = _body(dict(row, detail=json.loads(row["detail"]))).encode("utf-8")
    except ValueError:
        return "its detail is not JSON (edited)", b""
    if hashlib.sha256(prev.encode("utf-8") + body).hexdigest() != row["hash"]:   # = entry_hash
        return "its content does not match its hash (edited)", body
    return "", body


def _check_mac(key: bytes, row: dict[str, Any], prev_mac: str, body: bytes) -> str:
    mac = row.get("mac")
    if not mac:
        return "it has no HMAC (written behind the product's back)"
    if row.get("prev_mac", prev_mac) != prev_mac:
        return "it does not hold the HMAC of the entry before it (chain broken)"
    if not hmac.compare_digest(hmac.new(key, prev_mac.encode("utf-8") + body, hashlib.sha256).hexdigest(), mac):
        return "its HMAC does not match (edited, or the chain was recomputed without the key)"
    return ""


def mac_ok(key: bytes, row: Mapping[str, Any]) -> bool:
    """One entry's own HMAC (against the prev_mac it holds): what the store checks before it trusts an
    event's entry on read. The chain around it is ``verify``'s business."""
    if not row.get("mac") or key is None:
        return False
    try:
        entry = dict(row, detail=json.loads(row["detail"]) if isinstance(row["detail"], str) else row["detail"])
    except ValueError:
        return False
    return parsed_mac_ok(key, entry)


def parsed_mac_ok(key: bytes, entry: Mapping[str, Any]) -> bool:
    """``mac_ok`` of an entry whose detail is already parsed (a reader that needs the detail parses it once)."""
    mac = entry.get("mac")
    if not mac or key is None:
        return False
    return hmac.compare_digest(entry_mac(key, entry.get("prev_mac") or GENESIS, entry), mac)


def digests_of(table: str, rows: Iterable[Mapping[str, Any]], key: str) -> dict[str, str]:
    """{row[key]: row_digest} for the rows of ``table`` (what ``audited_rows`` returns per table)."""
    return {str(r[key]): row_digest(table, r) for r in rows}
