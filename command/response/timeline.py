"""An incident's timeline: small frozen events, their store form, and the fold into the current state.

A live incident and a replayed drill are the same fold::

    from command.response.timeline import Reported, fold, to_record, from_record
    kind, payload = to_record(event)                  # what command.store.sqlite.Store.append_event takes
    event = from_record(kind, payload, at=at, actor=actor)
    state = fold(incident_id, events)                 # pure: same events -> same IncidentState

Every event has ``at`` (ISO 8601 with +08:00, seconds) and ``actor`` (a role, e.g. "天河区应急管理局 值班室"
or "drill"). Payloads are plain JSON values (dicts, lists, str, numbers) so the store can keep them as is.

Clocks: ``SystemClock`` for live work; ``VirtualClock`` for drills (starts at the scenario's start, moved
by the replayer, so a replay is deterministic).
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any, ClassVar, Iterable, Protocol

from command.errors import SessionError
from incidents.model import Candidate, Casualties, Grade, Location, Point, Rule

BEIJING = timezone(timedelta(hours=8))


# ---------------------------------------------------------------- clocks

class Clock(Protocol):
    def now(self) -> datetime:
        """The current time, timezone-aware (+08:00), whole seconds."""


class SystemClock:
    """Wall-clock time in Beijing time, truncated to the second (CAP ``sent`` allows no fractions)."""

    def now(self) -> datetime:
        return datetime.now(BEIJING).replace(microsecond=0)


class VirtualClock:
    """A drill's clock: starts at ``start`` and only moves when the replayer moves it."""

    def __init__(self, start: datetime) -> None:
        if start.tzinfo is None:
            raise SessionError("a virtual clock needs a start time with a UTC offset")
        self._start = start.astimezone(BEIJING).replace(microsecond=0)
        self._now = self._start

    @property
    def start(self) -> datetime:
        return self._start

    def now(self) -> datetime:
        return self._now

    def set_offset(self, seconds: float) -> None:
        """Move to ``start + seconds``; time never runs backwards."""
        target = self._start + timedelta(seconds=int(seconds))
        if target < self._now:
            raise SessionError(f"virtual clock cannot go back from {iso(self._now)} to {iso(target)}")
        self._now = target

    def advance(self, seconds: float) -> None:
        self.set_offset((self._now - self._start).total_seconds() + seconds)


def iso(when: datetime) -> str:
    """ISO 8601, seconds, +08:00: the one time format of timelines and CAP."""
    return when.astimezone(BEIJING).replace(microsecond=0).isoformat()


def parse_iso(text: str) -> datetime:
    return datetime.fromisoformat(text)


# ---------------------------------------------------------------- events

@dataclass(frozen=True)
class Event:
    at: str
    actor: str
    kind: ClassVar[str] = "Event"


@dataclass(frozen=True)
class Reported(Event):
    type: str
    location: dict[str, Any]
    casualties: dict[str, int]
    economic_loss_cny: float
    description: str
    grade: dict[str, Any]
    address: str | None = None
    nearby: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    kind: ClassVar[str] = "Reported"


@dataclass(frozen=True)
class Updated(Event):
    changes: dict[str, Any]            # any of type, casualties, economic_loss_cny, description
    kind: ClassVar[str] = "Updated"


@dataclass(frozen=True)
class Regraded(Event):
    from_level: str
    to_level: str
    grade: dict[str, Any]
    reason: str                        # one sentence for the timeline: "升级为较大(III)：广州市 牵头"
    kind: ClassVar[str] = "Regraded"


@dataclass(frozen=True)
class MemberJoined(Event):
    role: str
    org: str
    level_of_government: str           # district | city | province
    reason: str
    kind: ClassVar[str] = "MemberJoined"


@dataclass(frozen=True)
class ConferenceOpened(Event):
    link: str
    dial: str | None = None
    room: str = ""
    kind: ClassVar[str] = "ConferenceOpened"


@dataclass(frozen=True)
class TaskSet(Event):
    task_id: str
    role: str
    text: str
    kind: ClassVar[str] = "TaskSet"


@dataclass(frozen=True)
class TaskDone(Event):
    task_id: str
    kind: ClassVar[str] = "TaskDone"


@dataclass(frozen=True)
class AlertDrafted(Event):
    identifier: str
    status: str                        # Actual | Exercise
    msg_type: str                      # Alert | Update | Cancel
    references: list[str]              # "sender,identifier,sent" of the messages replaced
    sender: str
    sent: str
    cap_xml: str
    area: dict[str, Any]               # circle "lat,lon km", polygon, radius_m, reason
    population: int
    admin_units: list[dict[str, Any]]
    channels: list[str]
    headline_zh: str = ""
    text_zh: str = ""
    radius_m: float | None = None      # what was asked, so the area can be rebuilt for a Cancel
    polygon: list[list[float]] | None = None
    area_desc: str = ""                # the area as channels say it (SMS, robots)
    level: str = ""                    # the incident's level when drafted (the two-person rule takes the higher)
    content_sha256: str = ""           # of the CAP XML and every channel text: what an approval binds to
    kind: ClassVar[str] = "AlertDrafted"


@dataclass(frozen=True)
class AlertApproved(Event):
    identifier: str
    confirmed: bool
    second: bool = False               # a second commander's approval (two-person rule), not the send
    content_sha256: str = ""           # the content approved; an approval of other content counts for nothing
    kind: ClassVar[str] = "AlertApproved"


@dataclass(frozen=True)
class AlertRefused(Event):
    """A send, approval or cancel the service refused, in the one line the officer was shown."""
    identifier: str                    # "" when the refusal named no draft
    action: str                        # send | approve | cancel
    reason: str
    kind: ClassVar[str] = "AlertRefused"


@dataclass(frozen=True)
class AlertSent(Event):
    identifier: str
    channel: str
    mode: str                          # live | exercise
    receipt: str | None = None
    kind: ClassVar[str] = "AlertSent"


@dataclass(frozen=True)
class AlertFailed(Event):
    identifier: str
    channel: str
    mode: str
    error: str
    status: str = "failed"             # failed | dead | pending
    kind: ClassVar[str] = "AlertFailed"


@dataclass(frozen=True)
class AlertCancelled(Event):
    identifier: str                    # the Cancel message
    cancels: list[str]                 # identifiers of the alerts it cancels
    kind: ClassVar[str] = "AlertCancelled"


@dataclass(frozen=True)
class NoteAdded(Event):
    text: str
    kind: ClassVar[str] = "NoteAdded"


@dataclass(frozen=True)
class Closed(Event):
    reason: str = ""
    kind: ClassVar[str] = "Closed"


EVENT_TYPES: dict[str, type[Event]] = {c.kind: c for c in (
    Reported, Updated, Regraded, MemberJoined, ConferenceOpened, TaskSet, TaskDone, AlertDrafted,
    AlertApproved, AlertRefused, AlertSent, AlertFailed, AlertCancelled, NoteAdded, Closed)}


def to_record(event: Event) -> tuple[str, dict[str, Any]]:
    """The store's (kind, payload); ``at`` and ``actor`` travel beside the payload."""
    payload = {f.name: getattr(event, f.name) for f in dataclasses.fields(event)
               if f.name not in ("at", "actor")}
    return event.kind, payload


def from_record(kind: str, payload: dict[str, Any], *, at: str, actor: str) -> Event:
    cls = EVENT_TYPES.get(kind)
    if cls is None:
        raise SessionError(f"timeline event kind {kind!r} is unknown (known: {', '.join(EVENT_TYPES)})")
    names = {f.name for f in dataclasses.fields(cls)}
    return cls(at=at, actor=actor, **{k: v for k, v in payload.items() if k in names})


# ---------------------------------------------------------------- value conversions

def location_to_dict(loc: Location) -> dict[str, Any]:
    d = loc.as_dict()
    d["candidates"] = [c.as_dict() for c in loc.candidates]
    d["notes"] = list(loc.notes)
    return d


def location_from_dict(d: dict[str, Any]) -> Location:
    inp = d.get("input")
    return Location(
        point=Point(d["lon"], d["lat"], "wgs84"), precision=d["precision"], matched=d["matched"],
        district_adcode=d.get("district_adcode"), city_adcode=d.get("city_adcode"),
        confidence=d["confidence"], candidates=tuple(Candidate(**c) for c in d.get("candidates", [])),
        source=d.get("source", "offline"), district_name=d.get("district_name"),
        city_name=d.get("city_name"), input_point=Point(**inp) if inp else None,
        matched_level=d.get("matched_level"), notes=tuple(d.get("notes", ())),
        uncertainty_m=d.get("uncertainty_m"), township=d.get("township"))


def grade_from_dict(d: dict[str, Any]) -> Grade:
    return Grade(level=d["level"], name=d["name"], colour=d["colour"], cap_severity=d["cap_severity"],
                 rule=Rule(**d["rule"]), category=d.get("category", ""))


# ---------------------------------------------------------------- state

@dataclass(frozen=True)
class LevelChange:
    at: str
    level: str
    rule: dict[str, str]
    reason: str = ""


@dataclass(frozen=True)
class Member:
    role: str
    org: str
    level_of_government: str
    reason: str = ""
    joined_at: str = ""


@dataclass(frozen=True)
class Conference:
    link: str
    dial: str | None
    room: str
    opened_at: str


@dataclass(frozen=True)
class Group:
    members: tuple[Member, ...] = ()
    conference: Conference | None = None
    created_at: str | None = None


@dataclass(frozen=True)
class Task:
    id: str
    role: str
    text: str
    set_at: str
    done_at: str | None = None


@dataclass(frozen=True)
class AlertRecord:
    identifier: str
    status: str
    msg_type: str
    references: tuple[str, ...]
    sender: str
    sent: str
    cap_xml: str
    area: dict[str, Any]
    population: int
    admin_units: tuple[dict[str, Any], ...]
    channels: tuple[str, ...]
    drafted_at: str
    radius_m: float | None = None
    polygon: tuple[tuple[float, ...], ...] | None = None
    approved_at: str | None = None
    deliveries: tuple[dict[str, Any], ...] = ()   # {channel, mode, ok, at, receipt|error}
    cancelled_by: str | None = None
    cancels: tuple[str, ...] = ()
    approvals: tuple[str, ...] = ()               # commanders who approved exactly this content, not yet void
    drafted_by: str = ""
    headline_zh: str = ""
    text_zh: str = ""
    area_desc: str = ""
    level: str = ""                               # the incident's level when it was drafted
    content_sha256: str = ""
    voided: str | None = None                     # why an unsent draft can no longer be approved or sent
    sent_by: str | None = None

    @property
    def was_sent(self) -> bool:
        return self.approved_at is not None

    @property
    def reference(self) -> str:
        """How a later Update or Cancel names this message (CAP ``references`` entry)."""
        return f"{self.sender},{self.identifier},{self.sent}"


@dataclass(frozen=True)
class IncidentState:
    id: str
    type: str
    location: Location
    casualties: Casualties
    economic_loss_cny: float
    description: str
    grade: Grade
    levels: tuple[LevelChange, ...]
    group: Group
    tasks: tuple[Task, ...]
    alerts: tuple[AlertRecord, ...]
    events: tuple[Event, ...]
    state: str                          # open | closed
    nearby: dict[str, list[dict[str, Any]]]
    reported_at: str
    closed_at: str | None
    address: str | None = None

    @property
    def active_alerts(self) -> tuple[AlertRecord, ...]:
        """Sent Alert/Update messages not yet cancelled or superseded by a later Update."""
        sent = [a for a in self.alerts if a.was_sent and a.msg_type in ("Alert", "Update")]
        replaced = {r.split(",")[1] for a in sent for r in a.references if r.count(",") >= 2}
        return tuple(a for a in sent if a.cancelled_by is None and a.identifier not in replaced)

    @property
    def members(self) -> tuple[Member, ...]:
        return self.group.members


def fold(incident_id: str, events: Iterable[Event]) -> IncidentState:
    """The state of one incident after ``events`` (in timeline order). Pure: no I/O, no clock."""
    return Fold.of(incident_id, events).state


class Fold:
    """A fold that takes more events: ``Fold.of(id, events).more(new).state == fold(id, events + new)``.

    The service keeps one per incident and folds only the rows that arrived since (a timeline is append-only),
    instead of every event again on each update, note, close or send. ``more`` never changes the fold it is
    called on (it works on a copy of the running values), so two threads may extend the same one."""

    __slots__ = ("incident_id", "state", "_first", "_s")

    def __init__(self, incident_id: str, first: Reported, s: dict[str, Any], events: tuple[Event, ...],
                 location: Location, grade: Grade | None = None) -> None:
        self.incident_id, self._first, self._s = incident_id, first, s
        members = tuple(s["members"])
        times = [m.joined_at for m in members] + ([s["conference"].opened_at] if s["conference"] else [])
        self.state = IncidentState(
            id=incident_id, type=s["type"], location=location,
            casualties=Casualties(**s["casualties"]), economic_loss_cny=s["loss"],
            description=s["description"], grade=grade or grade_from_dict(s["grade"]), levels=tuple(s["levels"]),
            group=Group(members, s["conference"], min(times) if times else None),
            tasks=tuple(s["tasks"].values()), alerts=tuple(s["alerts"].values()), events=events,
            state="closed" if s["closed_at"] else "open", nearby=first.nearby, reported_at=first.at,
            closed_at=s["closed_at"], address=first.address)

    @classmethod
    def of(cls, incident_id: str, events: Iterable[Event]) -> Fold:
        events = tuple(events)
        if not events or not isinstance(events[0], Reported):
            raise SessionError(f"incident {incident_id}: its timeline does not start with a report")
        first: Reported = events[0]
        s: dict[str, Any] = {
            "type": first.type, "casualties": first.casualties, "loss": first.economic_loss_cny,
            "description": first.description, "grade": first.grade, "closed_at": None,
            "levels": [LevelChange(first.at, first.grade["level"], first.grade["rule"], "首报")],
            "members": [], "conference": None, "tasks": {}, "alerts": {}}
        for ev in events[1:]:
            _apply(s, ev)
        return cls(incident_id, first, s, events, location_from_dict(first.location))

    def more(self, new: Iterable[Event]) -> Fold:
        """This fold with ``new`` (the events after the last one folded) folded on."""
        new = tuple(new)
        if not new:
            return self
        old = self._s
        s = dict(old, levels=list(old["levels"]), members=list(old["members"]), tasks=dict(old["tasks"]),
                 alerts=dict(old["alerts"]))
        for ev in new:
            _apply(s, ev)
        grade = self.state.grade if s["grade"] is old["grade"] else None     # a regrade sets a new dict
        return Fold(self.incident_id, self._first, s, self.state.events + new, self.state.location, grade)


def _apply(s: dict[str, Any], ev: Event) -> None:
    if isinstance(ev, Updated):
        c = ev.changes
        s["type"] = c.get("type", s["type"])
        s["casualties"] = c.get("casualties", s["casualties"])
        s["loss"] = c.get("economic_loss_cny", s["loss"])
        s["description"] = c.get("description", s["description"])
    elif isinstance(ev, Regraded):
        s["grade"] = ev.grade
        if ev.to_level != s["levels"][-1].level:     # `levels` holds changes of level only
            s["levels"].append(LevelChange(ev.at, ev.to_level, ev.grade["rule"], ev.reason))
        if ev.to_level != ev.from_level:             # whatever door regraded: no unsent draft survives it
            why = f"voided by the regrade {ev.from_level} -> {ev.to_level} at {ev.at}; draft again"
            for ident, rec in list(s["alerts"].items()):
                if not rec.was_sent and rec.voided is None:
                    s["alerts"][ident] = dataclasses.replace(rec, voided=why, approvals=())
    elif isinstance(ev, MemberJoined):
        s["members"].append(Member(ev.role, ev.org, ev.level_of_government, ev.reason, ev.at))
    elif isinstance(ev, ConferenceOpened):
        s["conference"] = Conference(ev.link, ev.dial, ev.room, ev.at)
    elif isinstance(ev, TaskSet):
        s["tasks"][ev.task_id] = Task(ev.task_id, ev.role, ev.text, ev.at)
    elif isinstance(ev, TaskDone) and ev.task_id in s["tasks"]:
        s["tasks"][ev.task_id] = dataclasses.replace(s["tasks"][ev.task_id], done_at=ev.at)
    elif isinstance(ev, (AlertDrafted, AlertApproved, AlertSent, AlertFailed, AlertCancelled)):
        _apply_alert(s["alerts"], ev)
    elif isinstance(ev, Closed):
        s["closed_at"] = ev.at


def _apply_alert(alerts: dict[str, AlertRecord], ev: Event) -> None:
    if isinstance(ev, AlertDrafted):
        alerts[ev.identifier] = AlertRecord(
            identifier=ev.identifier, status=ev.status, msg_type=ev.msg_type,
            references=tuple(ev.references), sender=ev.sender, sent=ev.sent, cap_xml=ev.cap_xml,
            area=ev.area, population=ev.population, admin_units=tuple(ev.admin_units),
            channels=tuple(ev.channels), drafted_at=ev.at, radius_m=ev.radius_m,
            polygon=tuple(tuple(p) for p in ev.polygon) if ev.polygon else None, drafted_by=ev.actor,
            headline_zh=ev.headline_zh, text_zh=ev.text_zh, area_desc=ev.area_desc, level=ev.level,
            content_sha256=ev.content_sha256)
        return
    rec = alerts.get(ev.identifier)
    if rec is None:
        return
    if isinstance(ev, AlertApproved) and ev.second:
        # an approval counts only for the content it names, of a draft still unsent and not voided
        if (not rec.was_sent and rec.voided is None and ev.content_sha256 == rec.content_sha256
                and ev.actor not in rec.approvals):
            alerts[ev.identifier] = dataclasses.replace(rec, approvals=rec.approvals + (ev.actor,))
    elif isinstance(ev, AlertApproved):
        alerts[ev.identifier] = dataclasses.replace(rec, approved_at=ev.at, sent_by=ev.actor)
    elif isinstance(ev, AlertSent):
        d = {"channel": ev.channel, "mode": ev.mode, "ok": True, "at": ev.at, "receipt": ev.receipt}
        alerts[ev.identifier] = dataclasses.replace(rec, deliveries=rec.deliveries + (d,))
    elif isinstance(ev, AlertFailed):
        d = {"channel": ev.channel, "mode": ev.mode, "ok": False, "at": ev.at, "error": ev.error,
             "status": ev.status}
        alerts[ev.identifier] = dataclasses.replace(rec, deliveries=rec.deliveries + (d,))
    elif isinstance(ev, AlertCancelled):
        alerts[ev.identifier] = dataclasses.replace(rec, cancels=tuple(ev.cancels))
        for ident in ev.cancels:
            if ident in alerts:
                alerts[ident] = dataclasses.replace(alerts[ident], cancelled_by=ev.identifier)
