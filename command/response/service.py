"""ResponseService: the one set of response services the CLI, drills and the dashboard call.

    from command.response.service import ResponseService
    from command.store.sqlite import Store
    svc = ResponseService(Store(path), exercise=False)          # settings, clock, outbox default
    state = svc.report(IncidentReport(type="gas_explosion", address="广州市天河区天河路"), actor="值班员")
    state = svc.update(state.id, actor="值班员", casualties=Casualties(deaths=4))   # regrade, group grows
    draft = svc.draft_alert(state.id, actor="值班员", instruction_zh="请远离商场")   # identifier reserved
    svc.approve_alert(state.id, draft.identifier, actor="另一指挥员")                # level I/II: a second one
    svc.send_alert(state.id, draft.identifier, actor="值班员", confirm=True)         # queued; Actual: confirm
    svc.outbox.run_until_idle()                 # CLI and drills; in the server the outbox's workers deliver

Every action appends timeline events (command.response.timeline) to the store; every read folds them. With
``exercise=True`` every message is CAP status Exercise and goes only to channels whose mode is exercise,
whatever the settings say; an Actual never goes without ``confirm=True``.

``actor`` is a ``command.security.auth.Principal`` (a signed-in user or a dispatch system) or a plain name (the
local operator at the terminal: a commander). Every action checks ``auth.require`` first.

One source of truth for a warning: the AlertDrafted event. ``send_alert`` takes an incident id and a draft's
identifier and queues exactly the stored CAP XML and channel texts; their sha256 (``content_sha256``) is what
an approval binds to and what the outbox keeps with the alert row. Identifiers are reserved in the store
when the draft is made, and the identifier's second is the message's ``<sent>``.

Two-person rule, decided here only: an Actual Alert/Update at the higher of the draft's level and the
incident's current level, if that level is in ``settings.two_person_levels``, needs ``approve_alert`` of that
very draft by a commander who neither drafted it nor sends it. A regrade voids every unsent draft and its
approvals (the fold does it, whichever door regraded). A Cancel never waits for a second person. Every
refusal is one line (AlertError), written to the timeline as AlertRefused before it is raised.
"""
from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from typing import Any


from command.response import group
from command.security import scopes
from command.security.auth import Principal, as_principal, require
from command.errors import AlertError, CommandError, IncidentExistsError, SessionError
from command.response.timeline import (BEIJING, AlertApproved, AlertCancelled, AlertDrafted, AlertRecord,
                                       AlertRefused, Clock, Closed, Event, Fold, IncidentState, NoteAdded, Reported,
                                       SystemClock, TaskDone, TaskSet, Updated, from_record, iso, location_to_dict,
                                       to_record)
from incidents.model import LEVELS, Casualties, IncidentReport, Point

NEARBY_LAYERS = ("hospital", "fire_station", "camera", "shelter")
NEARBY_K = 5


@dataclass(frozen=True)
class AlertDraft:
    """A validated CAP message not yet sent: what it says, where, to whom and through which channels."""

    incident_id: str
    identifier: str
    status: str                         # Actual | Exercise
    msg_type: str                       # Alert | Update | Cancel
    references: tuple[str, ...]
    sender: str
    sent: str
    cap_xml: str
    circle: str | None                  # CAP circle "lat,lon radius_km"
    radius_m: float | None
    population: int
    admin_units: tuple[dict[str, Any], ...]
    channels: tuple[str, ...]
    headline_zh: str
    text_zh: str
    area_desc: str
    reason: str = ""
    polygon: tuple[tuple[float, float], ...] | None = field(default=None)
    level: str = ""                     # the incident's level when drafted
    content_sha256: str = ""            # of the CAP XML and every channel text: what an approval binds to
    drafted_by: str = ""


def _plain(value: Any) -> Any:
    """A JSON round trip: numpy scalars and tuples become plain values the store keeps as is."""
    def default(o: Any) -> Any:
        if hasattr(o, "item"):
            return o.item()
        raise TypeError(f"not JSON serialisable: {type(o).__name__}")
    return json.loads(json.dumps(value, ensure_ascii=False, default=default))


class ResponseService:
    def __init__(self, store, *, settings, clock: Clock | None = None, exercise: bool = False,
                 outbox=None, catalog=None) -> None:
        from layers.catalog import Catalog
        self.store = store
        self.settings = settings                 # this service's own: every rule below reads them from here
        self.clock = clock or SystemClock()
        self.exercise = exercise
        if outbox is None:
            from command.alerts.outbox import Outbox
            outbox = Outbox(store, settings, clock=clock)
        self.outbox = outbox
        self.catalog = catalog or Catalog.of(settings)
        self.duty = group.rules(settings.data_dir)
        self._profile = None                     # the CAP profile, made on the first draft
        # incident -> (last seq read, the fold up to it): the log is append-only, so only newer rows are read and
        # only they are folded on (timeline.Fold.more); an unchanged timeline is not folded again
        self._timelines: dict[str, tuple[int, Fold]] = {}
        self._timelines_lock = threading.Lock()

    # ------------------------------------------------------------------ timeline plumbing
    def _append(self, incident_id: str, events: list[Event], who: Principal | None = None) -> None:
        """All ``events`` in ONE transaction, each with its audit entry (by ``who``, from its source)."""
        if not events:
            return
        records = []
        for ev in events:
            kind, payload = to_record(ev)
            records.append((kind, payload, ev.at, ev.actor))   # the store writes numpy scalars as numbers
        self.store.append_events(incident_id, records, source=who.source if who else "local",
                                 by=who.name if who else None)

    def _now(self) -> str:
        return iso(self.clock.now())

    def get(self, incident_id: str, *, viewer: Principal | str | None = None) -> IncidentState:
        """The incident's state: the pure fold of its whole timeline (new rows read since the last call and
        folded onto the fold held; it is reused while no new row has arrived). With ``viewer``: only inside the
        viewer's scope."""
        if viewer is not None:
            state = self.get(incident_id)
            scopes.require_incident(as_principal(viewer), state, "see")
            return state
        with self._timelines_lock:
            last, held = self._timelines.get(incident_id, (0, None))
        new = self.store.events(incident_id, since_seq=last)
        if not new:
            if held is None:
                raise SessionError(f"no incident {incident_id!r} in the store")
            return held.state
        events = tuple(from_record(e.kind, e.payload, at=e.at, actor=e.actor) for e in new)
        held = held.more(events) if held is not None else Fold.of(incident_id, events)
        last = new[-1].seq
        with self._timelines_lock:
            if self._timelines.get(incident_id, (0,))[0] <= last:
                self._timelines[incident_id] = (last, held)
        return held.state

    def _open(self, incident_id: str, who: Principal | None = None, doing: str = "") -> IncidentState:
        """The incident's state, refused when ``who`` may not do ``doing`` to it (its scope, checked first) or
        when it is closed: one read for both checks."""
        state = self.get(incident_id)
        if who is not None:
            scopes.require_incident(who, state, doing)
        if state.state == "closed":
            raise SessionError(f"incident {incident_id} was closed at {state.closed_at}; it takes no more actions")
        return state

    def list_incidents(self, *, level: str | None = None, state: str | None = None,
                       district: str | None = None, viewer: Principal | str | None = None, q: str | None = None,
                       limit: int | None = None, offset: int = 0,
                       newest_first: bool = False) -> list[IncidentState]:
        """Incidents in order of report (``newest_first``: the reverse), filtered by level, state, district
        (adcode or name) and text ``q`` (see ``command.response.listing``); with ``viewer`` only those inside
        the viewer's scope; then ``offset`` skipped and at most ``limit`` kept. Filters and paging are the
        store's projection's; only the incidents returned are folded."""
        from command.response import listing
        listing.check_page(limit, offset)
        asked = listing.filters(self, level=level, state=state, district=district, viewer=viewer, q=q)
        rows = self.store.incident_summaries(**asked, newest_first=newest_first, limit=limit, offset=offset)
        return listing.states_of(self, rows)

    # ------------------------------------------------------------------ report / update
    def report(self, report: IncidentReport, *, actor: Principal | str,
               incident_id: str | None = None) -> IncidentState:
        """Locate, grade, find what is nearby, open the response group; all recorded at once."""
        who = require(as_principal(actor), "incident.report")
        actor = who.name
        from incidents.geocode import locate_any
        location = locate_any(report.address, report.point, settings=self.settings,
                              data_dir=self.settings.data_dir)
        scopes.require_place(who, location, "report")
        g = self._grade(report.type, report.casualties, report.economic_loss_cny)
        now = self.clock.now()
        at = iso(now)
        nearby, problems = self._nearby(location.point, location.uncertainty_m or 0.0)
        for n in range(1, 101):  # the database allows one report per id; a same-second twin takes the next
            iid = incident_id or self._incident_id(location.district_adcode or "440000", now, n)
            if incident_id and self.store.events(iid):
                raise SessionError(f"incident {iid} already exists; use update")
            events: list[Event] = [Reported(
                at=at, actor=actor, type=report.type, location=location_to_dict(location),
                casualties=report.casualties.as_dict(), economic_loss_cny=float(report.economic_loss_cny),
                description=report.description, grade=g.as_dict(), address=report.address, nearby=nearby)]
            events += [NoteAdded(at=at, actor="system", text=p) for p in problems]
            events += group.open_group(iid, report.type, g, location, at=at, actor=actor,
                                       settings=self.settings, casualties=report.casualties, duty=self.duty)
            try:
                self._append(iid, events, who)
            except IncidentExistsError:
                if incident_id:
                    raise
                continue
            return self.get(iid)
        raise SessionError(f"could not find a free incident id near {iid}")

    @staticmethod
    def _incident_id(adcode: str, now, n: int) -> str:
        """The n-th candidate id of an incident reported in ``adcode`` at ``now`` (the store decides)."""
        base = f"{adcode}-{now.strftime('%Y%m%d%H%M%S')}"
        return base if n == 1 else f"{base}-{n}"

    def _grade(self, type: str, casualties: Casualties, loss: float):
        from incidents.grading import grade
        return grade(type, casualties, loss, missing_count_as_deaths=self.settings.missing_count_as_deaths,
                     data_dir=self.settings.data_dir)

    def _nearby(self, point: Point, uncertainty_m: float = 0.0) -> tuple[dict[str, list[dict]], list[str]]:
        """Each nearby layer around the located point; ``uncertainty_m`` (how far the place may lie from it)
        makes the answers approximate and widens the camera pull-up to the uncertainty area."""
        from layers.errors import LayerError
        from layers.nearby import around
        out: dict[str, list[dict]] = {}
        problems: list[str] = []
        for layer in NEARBY_LAYERS:
            try:
                items = around(layer, point, k=NEARBY_K, catalog=self.catalog, uncertainty_m=uncertainty_m)
            except LayerError as e:
                items = []
                problems.append(f"附近 {layer} 不可用: {e}")
            out[layer] = items
        return out, problems

    def update(self, incident_id: str, *, actor: Principal | str, type: str | None = None,
               casualties: Casualties | None = None, economic_loss_cny: float | None = None,
               description: str | None = None) -> IncidentState:
        """Record what changed, regrade, and say so; a higher level brings its government in."""
        who = require(as_principal(actor), "incident.update")
        actor = who.name
        state = self._open(incident_id, who, "update")
        changes: dict[str, Any] = {}
        if type is not None and type != state.type:
            changes["type"] = type
        if casualties is not None and casualties != state.casualties:
            changes["casualties"] = casualties.as_dict()
        if economic_loss_cny is not None and float(economic_loss_cny) != state.economic_loss_cny:
            changes["economic_loss_cny"] = float(economic_loss_cny)
        if description is not None and description != state.description:
            changes["description"] = description
        if not changes:
            return state
        new_type = changes.get("type", state.type)
        new_cas = casualties if "casualties" in changes else state.casualties
        new_loss = changes.get("economic_loss_cny", state.economic_loss_cny)
        g = self._grade(new_type, new_cas, new_loss)
        at = self._now()
        events: list[Event] = [Updated(at=at, actor=actor, changes=changes)]
        events += group.regrade(state, g, new_type, at=at, actor=actor, casualties=new_cas, duty=self.duty)
        self._append(incident_id, events, who)
        return self.get(incident_id)

    def note(self, incident_id: str, text: str, *, actor: Principal | str) -> IncidentState:
        who = require(as_principal(actor), "incident.note")
        scopes.require_incident(who, self.get(incident_id), "note")
        if not text.strip():
            raise SessionError("a note needs some text")
        self._append(incident_id, [NoteAdded(at=self._now(), actor=who.name, text=text)], who)
        return self.get(incident_id)

    def add_task(self, incident_id: str, role: str, text: str, *, actor: Principal | str) -> str:
        who = require(as_principal(actor), "task.set")
        state = self._open(incident_id, who, "set a task of")
        task_id = f"T{len(state.tasks) + 1}"
        self._append(incident_id, [TaskSet(at=self._now(), actor=who.name, task_id=task_id, role=role,
                                           text=text)], who)
        return task_id

    def complete_task(self, incident_id: str, task_id: str, *, actor: Principal | str) -> None:
        who = require(as_principal(actor), "task.done")
        state = self._open(incident_id, who, "complete a task of")
        task = next((t for t in state.tasks if t.id == task_id), None)
        if task is None:
            raise SessionError(f"incident {incident_id} has no task {task_id!r}")
        if task.done_at:
            raise SessionError(f"task {task_id} of incident {incident_id} is already done ({task.done_at})")
        self._append(incident_id, [TaskDone(at=self._now(), actor=who.name, task_id=task_id)], who)

    def close(self, incident_id: str, *, actor: Principal | str, reason: str = "") -> IncidentState:
        who = require(as_principal(actor), "incident.close")
        self._open(incident_id, who, "close")
        self._append(incident_id, [Closed(at=self._now(), actor=who.name, reason=reason)], who)
        return self.get(incident_id)

    # ------------------------------------------------------------------ alerts
    @property
    def _status(self) -> str:
        return "Exercise" if self.exercise else "Actual"

    def _channels(self, status: str) -> list[str]:
        mode = "exercise" if status == "Exercise" else "live"
        return [c.name for c in self.settings.channels if c.mode == mode]

    def _cap_profile(self):
        """The CAP profile of this service's settings (org code, contact, public page, signer), made once."""
        if self._profile is None:
            from command.alerts import cap
            self._profile = cap.CapProfile.from_settings(self.settings)
        return self._profile

    def _references_in_force(self, state: IncidentState, now) -> list[str]:
        """Every earlier message of the incident still in force ("sender,identifier,sent"), oldest first."""
        from command.alerts import cap
        return cap.references_in_force([a.cap_xml for a in state.alerts if a.was_sent], now)

    def _reserve_identifier(self, adcode: str, incident_id: str, now) -> tuple[str, Any]:
        """A GB/T 35965.1 identifier reserved for ``incident_id`` in the store (atomic, never reused, whatever
        other incident drafts in the same second), and its own second as the message's ``sent``."""
        from datetime import datetime
        from command.alerts import cap
        ident = cap.new_identifier(adcode, now, lambda i: not self.store.reserve_identifier(i, incident_id),
                                   org_code=self.settings.cap_org_code)
        sent = datetime.strptime(ident.split("_")[1], "%Y%m%d%H%M%S").replace(tzinfo=BEIJING)
        return ident, sent

    def draft_alert(self, incident_id: str, *, actor: Principal | str, radius_m: float | None = None,
                    polygon: list[tuple[float, float]] | None = None, instruction_zh: str = "",
                    instruction_en: str = "") -> AlertDraft:
        """Build and validate the CAP message (zh + en) for the incident's area; record the draft: from here
        on the stored draft is the only source of what a channel sends."""
        actor = require(as_principal(actor), "alert.draft")
        state = self._open(incident_id, actor, "draft a warning for")
        references = self._references_in_force(state, self.clock.now())
        msg_type = "Update" if references else "Alert"
        return self._draft(state, actor=actor, msg_type=msg_type, references=references,
                           radius_m=radius_m, polygon=polygon, instruction_zh=instruction_zh,
                           instruction_en=instruction_en)

    def _draft(self, state: IncidentState, *, actor: Principal, msg_type: str, references: list[str],
               radius_m, polygon, instruction_zh: str, instruction_en: str) -> AlertDraft:
        from command.alerts import area
        from command.alerts import cap
        from command.alerts.outbox import content_sha256
        from incidents.grading import incident_types
        area = area.build_area(state.location.point, radius_m=radius_m, polygon=polygon,
                                 type=state.type, level=state.grade.level, data_dir=self.settings.data_dir)
        units = _plain(area.admin_units)
        scopes.require_area(actor, units)               # a district desk never warns across its border
        adcode = state.location.district_adcode or "440000"
        identifier, now = self._reserve_identifier(adcode, state.id, self.clock.now())
        itype = incident_types(data_dir=self.settings.data_dir)[state.type]
        status = self._status
        sender = cap.default_sender(adcode)
        place = f"{state.location.city_name or ''}{state.location.district_name or ''}"
        tag = "【演练】" if status == "Exercise" else ""
        word = {"Cancel": "解除", "Update": "更新"}.get(msg_type, "")
        headline = f"{tag}{place}{itype.cap_event_zh}{state.grade.colour}色预警{word}"
        xml = cap.build_alert(
            identifier=identifier, sender=sender, sent=now, status=status, msg_type=msg_type,
            references=references, incident_type=state.type, grade=state.grade, area=area,
            instruction_zh=instruction_zh, instruction_en=instruction_en, headline_zh=headline,
            description_zh=state.description, incident_id=state.id,
            profile=self._cap_profile())    # validated against the XSD inside (and signed)
        area_desc = "、".join(u.get("name", u.get("adcode", "")) for u in units) or place
        text = f"{headline}：{state.location.matched}。{instruction_zh}".strip()
        digest = content_sha256({"identifier": identifier, "incident_id": state.id, "status": status,
                                 "msg_type": msg_type, "cap_xml": xml, "headline_zh": headline, "text_zh": text,
                                 "area_desc": area_desc})
        draft = AlertDraft(
            incident_id=state.id, identifier=identifier, status=status, msg_type=msg_type,
            references=tuple(references), sender=sender, sent=iso(now), cap_xml=xml,
            circle=area.as_dict()["area"].get("circle"), radius_m=area.radius_m, population=int(area.population),
            admin_units=tuple(units), channels=tuple(self._channels(status)), headline_zh=headline,
            text_zh=text, area_desc=area_desc, reason=area.reason,
            polygon=tuple(tuple(p) for p in polygon) if polygon else None, level=state.grade.level,
            content_sha256=digest, drafted_by=actor.name)
        self._append(state.id, [AlertDrafted(
            at=draft.sent, actor=actor.name, identifier=identifier, status=status, msg_type=msg_type,
            references=list(references), sender=sender, sent=draft.sent, cap_xml=xml,
            area={"circle": draft.circle, "radius_m": area.radius_m, "reason": area.reason,
                  "polygon": [list(p) for p in area.polygon] if area.polygon else None,
                  "more_polygons": [[list(p) for p in ring] for ring in area.more_polygons]},
            population=draft.population, admin_units=list(units), channels=list(draft.channels),
            headline_zh=headline, text_zh=text, radius_m=radius_m,
            polygon=[list(p) for p in polygon] if polygon else None, area_desc=area_desc,
            level=state.grade.level, content_sha256=digest)], actor)
        return draft

    def _refuse(self, state: IncidentState, who: Principal, action: str, identifier: str, reason: str) -> AlertError:
        """Write the refusal to the timeline (and so the audit log) and return the error that says it."""
        self._append(state.id, [AlertRefused(at=self._now(), actor=who.name, identifier=identifier or "",
                                             action=action, reason=reason)], who)
        return AlertError(reason)

    def rule_level(self, state: IncidentState, rec: AlertRecord) -> str:
        """The level the two-person rule applies to: the higher of the draft's and the incident's now."""
        levels = [lv for lv in (rec.level, state.grade.level) if lv in LEVELS]
        return max(levels, key=LEVELS.index) if levels else state.grade.level

    def needs_second_commander(self, state: IncidentState, rec: AlertRecord) -> bool:
        return (rec.status == "Actual" and rec.msg_type != "Cancel"
                and self.rule_level(state, rec) in self.settings.two_person_levels)

    def send_check(self, incident_id: str, identifier: str, *, sender: Principal | str | None = None) -> dict:
        """What sending draft ``identifier`` needs now, for a view to show (the service decides again at send):
        ``{identifier, level, needs_approval, approved_by, voided, sent, refusal}``; ``refusal`` is the one line
        ``send_alert`` would answer ``sender`` with (confirmation given), or None."""
        state = self.get(incident_id)
        rec = next((a for a in state.alerts if a.identifier == identifier), None)
        if rec is None:
            raise AlertError(f"alert {identifier} was not drafted for incident {incident_id}")
        who = as_principal(sender) if sender is not None else None
        return {"identifier": identifier, "level": self.rule_level(state, rec),
                "needs_approval": self.needs_second_commander(state, rec), "approved_by": list(rec.approvals),
                "drafted_by": rec.drafted_by, "voided": rec.voided, "sent": rec.was_sent,
                "refusal": self._send_refusal(state, rec, identifier, who, True) if who else None}

    def precheck_send(self, incident_id: str, identifier: str, *, actor: Principal | str) -> None:
        """Refuse now (AlertError, written to the timeline) what ``send_alert`` would refuse once confirmed,
        so a view asks for confirmation only of a send that can go. Queues nothing."""
        who = require(as_principal(actor), "alert.send")
        state = self._open(incident_id)
        scopes.require_incident(who, state, "send a warning of")
        rec = next((a for a in state.alerts if a.identifier == identifier), None)
        if rec is not None:
            scopes.require_area(who, rec.admin_units)
        why = self._send_refusal(state, rec, identifier, who, True)
        if why:
            raise self._refuse(state, who, "send", identifier, why)

    def refuse(self, incident_id: str, identifier: str, action: str, reason: str, *,
               actor: Principal | str) -> AlertError:
        """A door's own refusal of a warning action (e.g. an approval of a draft never shown in full): written
        to the timeline like the service's, returned to be raised."""
        who = as_principal(actor)
        return self._refuse(self.get(incident_id), who, action, identifier, reason)

    def approve_alert(self, incident_id: str, draft_identifier: str, *, actor: Principal | str,
                      content_sha256: str | None = None) -> IncidentState:
        """A commander's approval of the Actual draft named ``draft_identifier``, bound to its exact content
        (``content_sha256``: the digest of what the approver was shown; refused when it is not the draft's).
        Nobody approves their own draft; a regrade or any new draft needs a new approval."""
        who = require(as_principal(actor), "alert.approve")
        state = self._open(incident_id, who, "approve a warning of")
        rec = next((a for a in state.alerts if a.identifier == draft_identifier), None)
        why = None
        if rec is None:
            why = f"alert {draft_identifier} was not drafted for incident {incident_id}"
        elif rec.was_sent:
            why = f"alert {draft_identifier} was already sent; there is nothing to approve"
        elif rec.voided:
            why = f"alert {draft_identifier} was {rec.voided}"
        elif rec.status != "Actual":
            why = f"alert {draft_identifier} is an {rec.status}: only an Actual warning is approved"
        elif who.name == rec.drafted_by:
            why = (f"alert {draft_identifier} was drafted by {who.name}: nobody approves their own draft; "
                   "another commander approves it")
        elif content_sha256 is not None and content_sha256 != rec.content_sha256:
            why = (f"alert {draft_identifier}: the message approved is not the draft's content "
                   "(it was drafted again or changed); review it again")
        elif who.name in rec.approvals:
            why = f"alert {draft_identifier} is already approved by {who.name}"
        if why:
            raise self._refuse(state, who, "approve", draft_identifier, why)
        self._append(incident_id, [AlertApproved(at=self._now(), actor=who.name, identifier=draft_identifier,
                                                 confirmed=True, second=True,
                                                 content_sha256=rec.content_sha256)], who)
        return self.get(incident_id)

    def send_alert(self, incident_id: str, identifier: str, *, actor: Principal | str, confirm: bool) -> dict:
        """Queue the stored draft ``identifier`` for delivery, exactly as drafted and approved.

        Everything a channel sends (CAP XML, headline, text, area) comes from the AlertDrafted event; a
        caller names the draft, never its content (an ``AlertDraft`` given here counts only by its
        identifier). Every check runs before anything is queued, and a refusal is written to the timeline
        (AlertRefused) and raised as one line. Returns at once: the outbox's workers (the server's, or
        ``outbox.run_until_idle`` at the CLI and in drills) deliver; final outcomes reach the timeline through
        the ``yzt_alerts_delivered`` hook, written in the same transaction as the outcomes they tell of."""
        who = require(as_principal(actor), "alert.send")
        identifier = getattr(identifier, "identifier", identifier)
        state = self._open(incident_id)
        scopes.require_incident(who, state, "send a warning of")
        rec = next((a for a in state.alerts if a.identifier == identifier), None)
        if rec is not None:
            scopes.require_area(who, rec.admin_units)       # the stored draft's districts
        why = self._send_refusal(state, rec, identifier, who, confirm)
        if why:
            raise self._refuse(state, who, "send", identifier, why)
        return self._enqueue(state, rec, who, confirm, action="send")

    def _send_refusal(self, state: IncidentState, rec: AlertRecord | None, identifier: str,
                      who: Principal | None, confirm: bool) -> str | None:
        """Why the stored draft may not be queued now (None: it may)."""
        from command.alerts.outbox import content_sha256
        if rec is None:
            return f"alert {identifier} was not drafted for incident {state.id}"
        if rec.was_sent or self.store.alert(identifier) is not None:
            return f"alert {identifier} was already sent; an identifier is never reused"
        if rec.voided:
            return f"alert {identifier} was {rec.voided}"
        if rec.status != self._status:
            return (f"alert {identifier} is {rec.status} but this service is in "
                    f"{'exercise' if self.exercise else 'live'} mode; draft again")
        if rec.status == "Actual" and not confirm:
            return "an Actual public warning needs confirmation"
        if not self._channels(rec.status):
            mode = "exercise" if rec.status == "Exercise" else "live"
            return f"no {mode} channel in the settings: alert {identifier} not sent (add a channel with mode: {mode})"
        digest = content_sha256({"identifier": rec.identifier, "incident_id": state.id, "status": rec.status,
                                 "msg_type": rec.msg_type, "cap_xml": rec.cap_xml, "headline_zh": rec.headline_zh,
                                 "text_zh": rec.text_zh, "area_desc": rec.area_desc})
        if not rec.content_sha256 or digest != rec.content_sha256:
            return f"alert {identifier}: its stored content has no matching sha256; draft again"
        if rec.msg_type == "Cancel":
            return None
        if self.needs_second_commander(state, rec):
            others = [n for n in rec.approvals if who is None or n != who.name]
            if not others:
                level = self.rule_level(state, rec)
                own = who is not None and who.name in rec.approvals
                return (f"level {level} warning needs a second commander's approval"
                        + (" (the sender cannot approve their own warning)" if own else ""))
        in_force = {r.split(",")[1] for r in self._references_in_force(state, self.clock.now())}
        if in_force != {r.split(",")[1] for r in rec.references}:
            return f"draft {identifier} is out of date: another alert was sent or expired since; draft again"
        return None

    def _enqueue(self, state: IncidentState, rec: AlertRecord, who: Principal, confirm: bool, *, action: str,
                 cancels: list[str] | None = None) -> dict:
        """The alert and one delivery per channel in one transaction, then the send on the timeline."""
        from command.alerts.outbox import OutgoingAlert
        channels = self._channels(rec.status)
        outgoing = OutgoingAlert(identifier=rec.identifier, incident_id=state.id, status=rec.status,
                                 msg_type=rec.msg_type, cap_xml=rec.cap_xml, headline_zh=rec.headline_zh,
                                 text_zh=rec.text_zh, area_desc=rec.area_desc)
        try:
            ids = self.outbox.enqueue(outgoing, channels, expect_sha256=rec.content_sha256)
        except CommandError as e:      # a second send of the same draft, a channel that cannot be built...
            raise self._refuse(state, who, action, rec.identifier, str(e).splitlines()[0]) from None
        at = self._now()
        events: list[Event] = [AlertApproved(at=at, actor=who.name, identifier=rec.identifier, confirmed=confirm,
                                             content_sha256=rec.content_sha256)]
        if cancels is not None:
            events.append(AlertCancelled(at=at, actor=who.name, identifier=rec.identifier, cancels=cancels))
        self._append(state.id, events, who)
        return {"identifier": rec.identifier, "incident_id": state.id, "status": rec.status,
                "msg_type": rec.msg_type, "references": list(rec.references), "delivery_ids": list(ids),
                "channels": channels, "deliveries": _plain(self.outbox.deliveries(rec.identifier)),
                "cancels": cancels or [], "content_sha256": rec.content_sha256}

    def cancel_alert(self, incident_id: str, *, actor: Principal | str, confirm: bool) -> dict:
        """A CAP Cancel referencing every message of the incident still in force; queued at once (a false
        alarm is withdrawn without waiting for a second commander)."""
        actor = require(as_principal(actor), "alert.cancel")
        state = self._open(incident_id, actor, "cancel a warning of")
        active = state.active_alerts
        if not active:
            raise self._refuse(state, actor, "cancel", "", f"incident {incident_id} has no alert in force to cancel")
        if not self.exercise and not confirm:
            raise self._refuse(state, actor, "cancel", "",
                               "an Actual public warning needs confirmation (a Cancel too)")
        references = self._references_in_force(state, self.clock.now()) or [a.reference for a in active]
        last = active[-1]
        draft = self._draft(state, actor=actor, msg_type="Cancel", references=references,
                            radius_m=last.radius_m, polygon=[list(p) for p in last.polygon] if last.polygon
                            else None, instruction_zh="预警解除", instruction_en="The warning is cancelled.")
        state = self.get(incident_id)
        rec = next(a for a in state.alerts if a.identifier == draft.identifier)
        why = self._send_refusal(state, rec, rec.identifier, actor, confirm)
        if why:
            raise self._refuse(state, actor, "cancel", rec.identifier, why)
        cancels = list(dict.fromkeys([a.identifier for a in active] + [r.split(",")[1] for r in references]))
        return self._enqueue(state, rec, actor, confirm, action="cancel", cancels=cancels)
