"""Built-in plugin: a delivery's final outcome goes into its incident's timeline, when the outbox learns it.

The outbox calls ``yzt_alert_delivered`` after it has recorded a delivery as ``sent`` or ``dead`` (a retry in
between is not final and is not written). This plugin appends one ``AlertSent`` or ``AlertFailed`` event, at
the outbox's clock (a drill's virtual clock, so a replay stays deterministic), in the store's own
transaction with its audit entry. Nobody polls the outbox for it: a retry that succeeds an hour later still
reaches the timeline.
"""
from __future__ import annotations

import json
from typing import Any

from command.hookspecs import hookimpl
from command.response.timeline import AlertFailed, AlertSent, to_record

ACTOR = "outbox"


@hookimpl
def yzt_alert_delivered(identifier: str, channel: str, mode: str, status: str, receipt: str | None,
                        error: str | None, incident_id: str, at: str, store: Any) -> None:
    if store is None or not incident_id:
        return
    if status == "sent":
        if receipt is not None and not isinstance(receipt, str):
            receipt = json.dumps(receipt, ensure_ascii=False, sort_keys=True, default=str)
        event: Any = AlertSent(at=at, actor=ACTOR, identifier=identifier, channel=channel, mode=mode,
                               receipt=receipt)
    elif status == "dead":
        event = AlertFailed(at=at, actor=ACTOR, identifier=identifier, channel=channel, mode=mode,
                            error=error or "", status="dead")
    else:
        return
    kind, payload = to_record(event)
    store.append_events(incident_id, [(kind, payload, at, ACTOR)], source="outbox", by=ACTOR)
