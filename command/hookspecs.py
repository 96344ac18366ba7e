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
    """Observe deliveries reaching a final state, a batch at a time, after the outbox recorded them (one call
    per recorded batch, in the order they were sent); return values are ignored. Each outcome is a dict with
    ``identifier``, ``channel``, ``mode``, ``status`` ("sent" or "dead"), ``attempts``, ``receipt``, ``error``,
    ``incident_id`` (the alert's incident) and ``at`` (the outbox's clock, a drill's virtual one, as ISO 8601
    +08:00). ``store`` is the store the outbox works on (the built-in ``command.response.delivery_log`` writes
    the whole batch to the incidents' timelines there in one transaction). An exception is logged and never
    undoes a delivery. An implementation may take fewer of these arguments."""
