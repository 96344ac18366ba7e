"""What the product asks of its storage, as four small interfaces (no SQL here):

- ``EventLog``: the append-only timeline of every incident (each event audited in its own transaction);
- ``DeliveryQueue``: CAP alerts, their identifier reservations and the durable delivery queue the outbox drains;
- ``Accounts``: users, API tokens and sign-in attempts (``command.security.auth`` decides, this only stores);
- ``AuditChain``: the hash-chained audit log every write above extends.

Each backend implements all four (``command.store.sqlite``: the embedded default; ``command.store.postgres``: a
shared PostgreSQL), and ``StoreBackend`` is the four together plus ``close``: the object callers hold, built by
``command.store.open_store``. The same tests run against every backend.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

# (kind, payload, at, actor): one event as a caller hands it to append_events
EventRecord = tuple[str, dict[str, Any], str, str]


@dataclass(frozen=True)
class StoredEvent:
    """One line of an incident's timeline as stored: ``seq`` is global and strictly increasing."""

    seq: int
    incident_id: str
    kind: str
    at: str
    payload: dict[str, Any]
    actor: str


@runtime_checkable
class EventLog(Protocol):
    def append_event(self, incident_id: str, kind: str, payload: dict[str, Any], *, at: str, actor: str,
                     source: str = "local", by: str | None = None) -> int:
        """Append one event (and its audit entry); returns its global sequence number."""

    def append_events(self, incident_id: str, records: list[EventRecord], *, source: str = "local",
                      by: str | None = None) -> list[int]:
        """Append events of one incident in ONE transaction, each with its audit entry. All or nothing; a
        second ``Reported`` of an incident raises ``IncidentExistsError``."""

    def append_events_of(self, groups: list[tuple[str, list[EventRecord]]], *, source: str = "local",
                         by: str | None = None) -> list[list[int]]:
        """Append several incidents' events, ``[(incident_id, records), ...]``, in ONE transaction (the audit
        chain's tip taken once, one commit), in the order given, each with its audit entry and each incident's
        projection row kept. All or nothing. Returns each group's seqs, in the groups' order."""

    def events(self, incident_id: str | None = None, since_seq: int = 0) -> list[StoredEvent]:
        """Events after ``since_seq`` in sequence order, of one incident or of all."""

    def incident_ids(self) -> list[str]:
        """Every incident that has at least one event, in order of first appearance."""

    def last_seq(self) -> int:
        """The newest event's seq (0 when there is none): what a new reader starts from, at no cost."""

    def event_digests(self) -> dict[int, str]:
        """seq -> sha256 of each stored event's payload text (what its audit entry recorded)."""

    def incident_summaries(self, *, level: str | None = None, state: str | None = None,
                           district: str | None = None, scope: str | None = None, q: str | None = None,
                           types: tuple[str, ...] = (), before: int | None = None, after: int | None = None,
                           newest_first: bool = False, limit: int | None = None,
                           offset: int = 0) -> list[dict[str, Any]]:
        """Rows of the incident list's projection (``command.store.summary``: kept in the transaction of each
        append), in order of report (``first_seq``; newest first on request), filtered: ``level``, ``state``,
        ``district`` (adcode or name), ``scope`` (a canonical scope adcode: what ``scopes.place_in`` lets it
        see), ``q`` (text in id, type, address, place or names, or an incident type among ``types``),
        ``before``/``after`` (a first_seq: the keyset cursor), then ``offset`` and ``limit``."""

    def incident_count(self, *, level: str | None = None, state: str | None = None, district: str | None = None,
                       scope: str | None = None, q: str | None = None, types: tuple[str, ...] = ()) -> int:
        """How many incidents the projection holds (filtered as ``incident_summaries``)."""


@runtime_checkable
class DeliveryQueue(Protocol):
    def identifier_used(self, identifier: str) -> bool:
        """True when a CAP identifier was reserved for a draft or stored as an alert."""

    def reserve_identifier(self, identifier: str, incident_id: str) -> bool:
        """Reserve an identifier for an incident atomically; False when reserved or used already."""

    def alert(self, identifier: str) -> dict[str, Any] | None:
        """The stored alert row, or None."""

    def insert_alert_with_deliveries(self, alert: dict[str, Any], deliveries: list[tuple[str, str]], *,
                                     created_at: str, now: float) -> list[int]:
        """One alert and one pending delivery per ``(channel, mode)`` in ONE transaction."""

    def claim_delivery(self, channel: str, *, owner: str, now: float, lease_s: float) -> dict[str, Any] | None:
        """Lease the next due delivery of ``channel`` to ``owner`` (per incident in enqueue order)."""

    def finish_delivery(self, delivery_id: int, *, owner: str, status: str, now: float, receipt: str | None = None,
                        last_error: str | None = None, next_attempt_at: float | None = None) -> bool:
        """Record a claimed send's outcome; False when the lease was lost meanwhile."""

    def claim_deliveries(self, channel: str, *, owner: str, now: float, lease_s: float,
                         limit: int) -> list[dict[str, Any]]:
        """Lease up to ``limit`` due deliveries of ``channel`` to ``owner`` (at most one per incident)."""

    def finish_deliveries(self, outcomes: list[dict[str, Any]], *, owner: str, now: float) -> set[int]:
        """Record claimed sends' outcomes in one transaction; the ids recorded (others lost their lease). An
        outcome's ``timeline`` (events of its incident, from the ``yzt_alerts_delivered`` hook) is written in
        the same transaction, only with an outcome that is recorded (see the hook's spec)."""

    def sending_owners(self) -> list[str]:
        """Owners currently holding a 'sending' lease."""

    def expire_leases(self, owners: list[str], *, now: float) -> int:
        """End the leases of owners known to be gone; returns how many deliveries were freed."""

    def next_due(self, channel: str) -> float | None:
        """When the next unfinished delivery of ``channel`` may be tried (None: nothing unfinished)."""

    def unfinished_channels(self) -> list[str]:
        """Channels with at least one delivery not yet sent or dead."""

    def deliveries(self, identifier: str | None = None) -> list[dict[str, Any]]:
        """Delivery rows (all, or of one alert) in insertion order."""

    def delivery_counts(self, mode: str | None = None) -> dict[str, int]:
        """Number of deliveries by status, of one mode or of all."""


@runtime_checkable
class Accounts(Protocol):
    def add_user(self, name: str, role: str, pw_hash: str, *, actor: str, source: str) -> None: ...

    def add_first_user(self, name: str, role: str, pw_hash: str, *, actor: str, source: str) -> bool: ...

    def user(self, name: str) -> dict[str, Any] | None: ...

    def users(self) -> list[dict[str, Any]]: ...

    def update_user(self, name: str, *, actor: str, source: str, action: str, pw_hash: str | None = None,
                    disabled: bool | None = None, last_login: str | None = None) -> bool: ...

    def record_attempt(self, name: str, source: str, *, ok: bool, at: float) -> None: ...

    def recent_failures(self, *, name: str | None = None, source: str | None = None,
                        since: float) -> list[float]: ...

    def put_token(self, system: str, role: str, token_sha256: str, *, actor: str, source: str) -> None: ...

    def token_by_hash(self, token_sha256: str) -> dict[str, Any] | None: ...

    def revoke_token(self, system: str, *, actor: str, source: str) -> bool: ...

    def tokens(self) -> list[dict[str, Any]]: ...


@runtime_checkable
class AuditChain(Protocol):
    def append_audit(self, actor: str, action: str, target: str, detail: dict[str, Any], source: str) -> int:
        """One audit entry in its own transaction; returns its id."""

    def audit_entries(self, *, last: int | None = None, raw: bool = False) -> list[dict[str, Any]]:
        """Audit rows in id order (``last`` N when given); ``raw`` keeps detail as the stored text."""

    def audit_numbered(self) -> int:
        """The highest audit id the database ever handed out (0 when none)."""


@runtime_checkable
class StoreBackend(EventLog, DeliveryQueue, Accounts, AuditChain, Protocol):
    """The four interfaces over one database: what ``open_store`` returns."""

    def close(self) -> None:
        """Close every connection this store opened."""
