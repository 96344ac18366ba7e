"""The timeline events a batch finish writes with the outcomes it records (both backends' queues).

The outbox attaches to each final outcome it hands to ``finish_deliveries`` the events that record it on its
incident's timeline, ``outcome["timeline"] = [(incident_id, records, source, by), ...]`` (what the
``yzt_alerts_delivered`` hook appended for it). The queue writes them in the transaction that records the
outcomes, after the deliveries' rows and their audit entries, for the outcomes it recorded only (one whose
lease was lost is another worker's to send and to announce). They are written under a savepoint: a timeline
the database refuses is rolled back alone and logged, and the outcomes are committed without it (a timeline
never undoes or blocks a delivery); a database that goes away fails the whole transaction, so the outcomes
and their events are recorded together later or not at all."""
from __future__ import annotations

import logging
from typing import Any

from command.security.audit import FINAL_DELIVERY
from command.store._records import EventRecord

log = logging.getLogger(__name__)

TimelineGroup = tuple[str, list[EventRecord], str, "str | None"]    # (incident_id, records, source, by)


def timeline_of(outcomes: list[dict[str, Any]], recorded: set[int]) -> list[TimelineGroup]:
    """The events attached to the final outcomes that were recorded, in the outcomes' order."""
    return [group for o in outcomes if o["status"] in FINAL_DELIVERY and int(o["id"]) in recorded
            for group in o.get("timeline") or ()]


def refused(groups: list[TimelineGroup]) -> None:
    """Log a timeline the database refused (its outcomes are recorded without it)."""
    log.exception("outbox: the timeline events of %d recorded outcome(s) were refused and not written "
                  "(incidents %s); the deliveries are recorded", len(groups),
                  ", ".join(sorted({g[0] for g in groups})[:5]))
