"""The one place where 粤政图's plugin hooks are declared (pluggy, project name ``yzt``).

Built-in behaviour ships as default plugins (each module in ``command/alerts/channels/`` and ``command/response/conference.py``,
listed in ``command/plugins.py``); third parties register through the ``yzt`` entry-point group::

    # pyproject.toml of a third-party package
    [project.entry-points.yzt]
    my_bridge = "my_package.yzt_plugin"

    # my_package/yzt_plugin.py
    from command.hookspecs import hookimpl

    @hookimpl
    def yzt_conference_open(incident_id, title, level, settings):
        return {"link": "...", "dial": "...", "provider": "my-bridge"}
"""
from __future__ import annotations

from typing import Any

import pluggy

PROJECT = "yzt"
hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)


@hookspec
def yzt_channel_kinds() -> dict[str, Any]:
    """Channel kinds this plugin provides: ``{kind: factory(cfg, *, client, settings) -> channel}``."""


@hookspec(firstresult=True)
def yzt_conference_open(incident_id: str, title: str, level: str | None, settings: Any) -> dict[str, Any] | None:
    """Open (or name) the response group's video conference: ``{"link", "dial", "provider"}``."""


@hookspec
def yzt_audit_anchor(entry_id: int, mac: str, at: str, database: str) -> None:
    """Receive the audit chain's tip after every write transaction (id and HMAC of its last entry), to keep
    it where whoever can edit the database cannot (a WORM store, a remote log, a notary). Return values are
    ignored; an exception is logged and never undoes the transaction. The append-only anchor file always
    gets the tip too (command/security/audit.py)."""


@hookspec
def yzt_alerts_delivered(outcomes: list[dict[str, Any]], store: Any) -> None:
    """Deliveries reaching a final state, a batch at a time, told BEFORE the outbox records them: one call per
    batch it is about to record (a batch holds at most one delivery per incident), in the order they were
    sent; return values are ignored. Each outcome is a dict with ``identifier``, ``channel``, ``mode``,
    ``status`` ("sent" or "dead"), ``attempts``, ``receipt``, ``error``, ``incident_id`` (the alert's
    incident) and ``at`` (the outbox's clock, a drill's virtual one, as ISO 8601 +08:00).

    ``store`` is NOT the store: it is the batch's timeline, with one method,
    ``store.append_events_of([(incident_id, [(kind, payload, at, actor), ...]), ...], source=..., by=...)``
    (returns nothing). What an implementation appends there for an outcome's incident is written in the
    SAME transaction that records the batch's outcomes: the deliveries' rows, their audit entries, the events
    and theirs, one audit transaction per batch (the built-in ``command.response.delivery_log`` appends one
    AlertSent/AlertFailed per outcome). Events are written only with the outcomes that transaction records:
    an outcome whose lease was lost to another worker is dropped with its events (that worker sends it
    again, same Idempotency-Key, and tells of it itself), and events for an incident with no outcome in the
    batch are not written. If the process dies before that commit, neither the outcomes nor the events are
    written; the deliveries are sent again with the same keys and told again: an implementation with effects
    outside the store is told at least once, possibly twice. If the database is away, the outcomes and their
    events are recorded together once it is back. A timeline the database refuses is rolled back alone
    (logged) and the outcomes are recorded without it; an exception from an implementation is logged and
    never undoes or holds up a delivery (what was appended before it is still written). An implementation
    may take fewer of these arguments."""
