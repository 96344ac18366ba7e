"""Built-in plugin: deliveries' final outcomes go into their incidents' timelines, with the outcomes themselves.

The outbox calls ``yzt_alerts_delivered`` with each batch of deliveries it is about to record as ``sent`` or
``dead`` (a retry in between is not final and is not written). This plugin appends one ``AlertSent`` or
``AlertFailed`` event per outcome, at the outbox's clock (a drill's virtual clock, so a replay stays
deterministic), each incident's in the order they were sent, to the batch's timeline the hook is given as
``store``: they are written in the transaction that records the outcomes (the audit chain's tip taken once
per batch, not once per delivery and not twice per batch), so an outcome is never recorded without its
event nor its event without it. Nobody polls the outbox for it: a retry that succeeds an hour later still
reaches the timeline.
"""
from __future__ import annotations

import json
from typing import Any

from command.hookspecs import hookimpl
from command.response.timeline import AlertFailed, AlertSent, to_record

ACTOR = "outbox"


def _event(o: dict[str, Any]) -> Any:
    """The timeline event of one final outcome (None for a status that is not final)."""
    if o["status"] == "sent":
        receipt = o.get("receipt")
        if receipt is not None and not isinstance(receipt, str):
            receipt = json.dumps(receipt, ensure_ascii=False, sort_keys=True, default=str)
        return AlertSent(at=o["at"], actor=ACTOR, identifier=o["identifier"], channel=o["channel"], mode=o["mode"],
                         receipt=receipt)
    if o["status"] == "dead":
        return AlertFailed(at=o["at"], actor=ACTOR, identifier=o["identifier"], channel=o["channel"],
                           mode=o["mode"], error=o.get("error") or "", status="dead")
    return None


@hookimpl
def yzt_alerts_delivered(outcomes: list[dict[str, Any]], store: Any) -> None:
    if store is None:
        return
    groups: dict[str, list[Any]] = {}
    for o in outcomes:
        event = _event(o) if o.get("incident_id") else None
        if event is not None:
            kind, payload = to_record(event)
            groups.setdefault(o["incident_id"], []).append((kind, payload, o["at"], ACTOR))
    if groups:
        store.append_events_of(list(groups.items()), source="outbox", by=ACTOR)
