"""One object over the four stores of a backend, with the method names callers have always used.

``ComposedStore`` holds an ``EventLog``, a ``DeliveryQueue``, ``Accounts`` and an ``AuditChain`` of one database
(as ``event_log``, ``queue``, ``accounts``, ``audit_chain``) and passes each call to the part that owns it, so a
caller can hold the whole store or hand one part to code that needs only that part."""
from __future__ import annotations

import threading
import time
from typing import Any

from command.store.interfaces import Accounts, AuditChain, DeliveryQueue, EventLog, EventRecord, StoredEvent


_SEQ_LOCK = threading.Lock()      # guards every store's cached last_seq (a few attribute swaps: one lock is enough)


class ComposedStore:
    """The facade; a backend's ``Store`` sets the four parts and implements ``close``."""

    event_log: EventLog
    queue: DeliveryQueue
    accounts: Accounts
    audit_chain: AuditChain
    security: Any               # the door's state (sqlite_security / postgres): throttle, sessions, vouched rows
    _seq_seen: tuple[int, float] | None = None      # last_seq's shared read: (seq, when it was started)
    _seq_generation = 0                              # appends through this store so far

    def close(self) -> None:    # pragma: no cover - every backend overrides it
        raise NotImplementedError

    def __enter__(self) -> ComposedStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- events -----------------------------------------------------------------------------------------
    def append_event(self, incident_id: str, kind: str, payload: dict[str, Any], *, at: str, actor: str,
                     source: str = "local", by: str | None = None) -> int:
        try:
            return self.event_log.append_event(incident_id, kind, payload, at=at, actor=actor, source=source,
                                               by=by)
        finally:
            self._seq_moved()

    def append_events(self, incident_id: str, records: list[EventRecord], *, source: str = "local",
                      by: str | None = None) -> list[int]:
        try:
            return self.event_log.append_events(incident_id, records, source=source, by=by)
        finally:
            self._seq_moved()

    def append_events_of(self, groups: list[tuple[str, list[EventRecord]]], *, source: str = "local",
                         by: str | None = None) -> list[list[int]]:
        try:
            return self.event_log.append_events_of(groups, source=source, by=by)
        finally:
            self._seq_moved()

    def events(self, incident_id: str | None = None, since_seq: int = 0) -> list[StoredEvent]:
        return self.event_log.events(incident_id, since_seq)

    def incident_ids(self) -> list[str]:
        return self.event_log.incident_ids()

    def last_seq(self, *, max_age_s: float = 0.0) -> int:
        """The newest event's seq. ``max_age_s`` > 0: a value this store read at most that long ago may answer
        (the dashboard's once-a-second polls: a worker's officers share one read per ``max_age_s`` instead
        of one each); an append through this store drops it at once, so a writer's own readers never lag."""
        if max_age_s > 0:
            seen = self._seq_seen
            if seen is not None and time.monotonic() - seen[1] <= max_age_s:
                return seen[0]
        with _SEQ_LOCK:
            generation = self._seq_generation
        started = time.monotonic()              # stamped before the read: a cached value is never younger
        seq = self.event_log.last_seq()
        with _SEQ_LOCK:
            if self._seq_generation == generation:   # no append of ours since we began
                self._seq_seen = (seq, started)
        return seq

    def _seq_moved(self) -> None:
        with _SEQ_LOCK:
            self._seq_generation += 1
            self._seq_seen = None

    def event_digests(self) -> dict[int, str]:
        return self.event_log.event_digests()

    def incident_summaries(self, **filters: Any) -> list[dict[str, Any]]:
        """See ``EventLog.incident_summaries``: the list's rows, filtered, ordered and paged in the database."""
        return self.event_log.incident_summaries(**filters)

    def incident_count(self, **filters: Any) -> int:
        return self.event_log.incident_count(**filters)

    # -- alerts and deliveries --------------------------------------------------------------------------
    def identifier_used(self, identifier: str) -> bool:
        return self.queue.identifier_used(identifier)

    def reserve_identifier(self, identifier: str, incident_id: str) -> bool:
        return self.queue.reserve_identifier(identifier, incident_id)

    def alert(self, identifier: str) -> dict[str, Any] | None:
        return self.queue.alert(identifier)

    def insert_alert_with_deliveries(self, alert: dict[str, Any], deliveries: list[tuple[str, str]], *,
                                     created_at: str, now: float) -> list[int]:
        return self.queue.insert_alert_with_deliveries(alert, deliveries, created_at=created_at, now=now)

    def claim_delivery(self, channel: str, *, owner: str, now: float, lease_s: float) -> dict[str, Any] | None:
        return self.queue.claim_delivery(channel, owner=owner, now=now, lease_s=lease_s)

    def finish_delivery(self, delivery_id: int, *, owner: str, status: str, now: float, receipt: str | None = None,
                        last_error: str | None = None, next_attempt_at: float | None = None) -> bool:
        return self.queue.finish_delivery(delivery_id, owner=owner, status=status, now=now, receipt=receipt,
                                          last_error=last_error, next_attempt_at=next_attempt_at)

    def claim_deliveries(self, channel: str, *, owner: str, now: float, lease_s: float,
                         limit: int) -> list[dict[str, Any]]:
        return self.queue.claim_deliveries(channel, owner=owner, now=now, lease_s=lease_s, limit=limit)

    def finish_deliveries(self, outcomes: list[dict[str, Any]], *, owner: str, now: float) -> set[int]:
        try:
            return self.queue.finish_deliveries(outcomes, owner=owner, now=now)
        finally:
            if any(o.get("timeline") for o in outcomes):   # their AlertSent/AlertFailed events: an append
                self._seq_moved()

    def sending_owners(self) -> list[str]:
        return self.queue.sending_owners()

    def expire_leases(self, owners: list[str], *, now: float) -> int:
        return self.queue.expire_leases(owners, now=now)

    def next_due(self, channel: str) -> float | None:
        return self.queue.next_due(channel)

    def unfinished_channels(self) -> list[str]:
        return self.queue.unfinished_channels()

    def deliveries(self, identifier: str | None = None) -> list[dict[str, Any]]:
        return self.queue.deliveries(identifier)

    def delivery_counts(self, mode: str | None = None) -> dict[str, int]:
        return self.queue.delivery_counts(mode)

    # -- audit ------------------------------------------------------------------------------------------
    def append_audit(self, actor: str, action: str, target: str, detail: dict[str, Any], source: str) -> int:
        return self.audit_chain.append_audit(actor, action, target, detail, source)

    def audit_entries(self, *, last: int | None = None, raw: bool = False) -> list[dict[str, Any]]:
        return self.audit_chain.audit_entries(last=last, raw=raw)

    def audit_numbered(self) -> int:
        return self.audit_chain.audit_numbered()

    # -- users, tokens, sign-in attempts ----------------------------------------------------------------
    def add_user(self, name: str, role: str, pw_hash: str, *, actor: str, source: str,
                 scope: str = "440000") -> None:
        self.accounts.add_user(name, role, pw_hash, actor=actor, source=source, scope=scope)

    def add_first_user(self, name: str, role: str, pw_hash: str, *, actor: str, source: str) -> bool:
        return self.accounts.add_first_user(name, role, pw_hash, actor=actor, source=source)

    def user(self, name: str) -> dict[str, Any] | None:
        return self.accounts.user(name)

    def users(self) -> list[dict[str, Any]]:
        return self.accounts.users()

    def update_user(self, name: str, *, actor: str, source: str, action: str, pw_hash: str | None = None,
                    disabled: bool | None = None, last_login: str | None = None, role: str | None = None,
                    scope: str | None = None, end_sessions: bool = True) -> bool:
        return self.accounts.update_user(name, actor=actor, source=source, action=action, pw_hash=pw_hash,
                                         disabled=disabled, last_login=last_login, role=role, scope=scope,
                                         end_sessions=end_sessions)

    def record_attempt(self, name: str, source: str, *, ok: bool, at: float) -> None:
        self.accounts.record_attempt(name, source, ok=ok, at=at)

    def recent_failures(self, *, name: str | None = None, source: str | None = None, since: float) -> list[float]:
        return self.accounts.recent_failures(name=name, source=source, since=since)

    def put_token(self, system: str, role: str, token_sha256: str, *, actor: str, source: str,
                  scope: str = "440000", expires_at: str | None = None) -> None:
        self.accounts.put_token(system, role, token_sha256, actor=actor, source=source, scope=scope,
                                expires_at=expires_at)

    def token_by_hash(self, token_sha256: str) -> dict[str, Any] | None:
        return self.accounts.token_by_hash(token_sha256)

    def revoke_token(self, system: str, *, actor: str, source: str) -> bool:
        return self.accounts.revoke_token(system, actor=actor, source=source)

    def tokens(self) -> list[dict[str, Any]]:
        return self.accounts.tokens()

    # -- the door: throttle counters, sessions, what the audit vouches for (command.security) -------------
    def record_signin(self, name: str, source: str, *, ok: bool, at: float, keys: list[tuple[str, str]]) -> None:
        self.security.record_signin(name, source, ok=ok, at=at, keys=keys)

    def record_token_refusal(self, source: str, *, at: float, keys: list[tuple[str, str]]) -> None:
        self.security.record_token_refusal(source, at=at, keys=keys)

    def throttle_failures(self, kind: str, key: str, *, since: float) -> list[float]:
        return self.security.throttle_failures(kind, key, since=since)

    def session_start(self, id_sha256: str, user: str, *, source: str, at: float) -> None:
        self.security.session_start(id_sha256, user, source=source, at=at)

    def session(self, id_sha256: str) -> dict[str, Any] | None:
        return self.security.session(id_sha256)

    def session_touch(self, id_sha256: str, *, at: float) -> None:
        self.security.session_touch(id_sha256, at=at)

    def session_end(self, id_sha256: str, *, at: float, why: str) -> None:
        self.security.session_end(id_sha256, at=at, why=why)

    def sessions_end_user(self, user: str, *, at: float, why: str) -> int:
        return self.security.sessions_end_user(user, at=at, why=why)

    def sessions_of(self, user: str) -> list[dict[str, Any]]:
        return self.security.sessions_of(user)

    def audited_rows(self) -> dict[str, dict[str, str]]:
        return self.security.audited_rows()
