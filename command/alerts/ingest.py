"""Read an incoming CAP 1.2 warning safely and turn it into what an incident can be opened from.

    from command.alerts.ingest import ingest_file
    got = ingest_file("warning.xml")          # IngestedAlert, or CapIngestError with one clear line
    got.identifier, got.event, got.severity, got.point, got.incident_type, got.as_dict()

Safety first: files over ``MAX_BYTES`` are refused unread; any DOCTYPE or ENTITY declaration is refused
outright (XML external-entity and billion-laughs attacks, e.g. ``google-xee.cap``); the parser never
resolves entities, loads a DTD, reaches the network or expands XInclude. Then the message must pass the
OASIS CAP 1.2 schema (``command.alerts.cap.check_tree``). The proposed incident type comes from the keyword
rules in ``data/alerting/warning_rules.yaml`` (``ingest:``), or None when nothing matches.
"""
from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from pathlib import Path

import shapely
from lxml import etree
from shapely.geometry import Polygon

from command.alerts.area import rules
from command.alerts.cap import CAP_NS, check_tree, safe_parser
from command.errors import CapIngestError, CapValidationError
from incidents.model import Point

MAX_BYTES = 1_000_000
_NS = {"c": CAP_NS}
_DECLARATION = re.compile(rb"<!\s*(DOCTYPE|ENTITY)", re.IGNORECASE)


@dataclass(frozen=True)
class IngestedAlert:
    """The parts of a CAP message an officer needs, from its preferred (zh, else first) info block."""

    path: str
    identifier: str
    sender: str
    sent: str
    status: str
    msg_type: str
    scope: str
    references: list[str]
    language: str | None
    event: str | None
    category: list[str]
    severity: str | None
    urgency: str | None
    certainty: str | None
    headline: str | None
    description: str | None
    instruction: str | None
    area_desc: str | None
    polygons: list[list[tuple[float, float]]] = field(default_factory=list)   # (lat, lon) rings
    circles: list[tuple[float, float, float]] = field(default_factory=list)   # (lat, lon, radius_km)
    geocodes: list[tuple[str, str]] = field(default_factory=list)             # (valueName, value)
    point: Point | None = None            # WGS84 representative point of the area geometry
    incident_type: str | None = None      # proposed type for an incident (a grading table key), if any
    type_reason: str = ""

    def as_dict(self) -> dict:
        d = asdict(self)
        d["point"] = self.point.as_dict() if self.point else None
        return d


def _refuse(path: Path, why: str) -> CapIngestError:
    """One line, whatever the parser or the schema said (libxml2 messages may hold newlines, long text)."""
    why = " ".join(why.split())
    return CapIngestError(f"CAP file {path.name}: {why if len(why) <= 240 else why[:237] + '...'}")


def _read(path: Path) -> bytes:
    if not path.is_file():
        raise CapIngestError(f"CAP file {path}: not found")
    size = path.stat().st_size
    if size > MAX_BYTES:
        raise _refuse(path, f"{size:,} bytes is over the {MAX_BYTES:,}-byte limit")
    data = path.read_bytes()
    # Also catch UTF-16/32 files: look at the bytes with the NULs removed.
    if _DECLARATION.search(data) or _DECLARATION.search(data.replace(b"\x00", b"")):
        raise _refuse(path, "declares a DOCTYPE or ENTITY (XML external-entity attack?): refused unread")
    return data


def _parse(path: Path, data: bytes) -> etree._Element:
    try:
        tree = etree.fromstring(data, safe_parser()).getroottree()
    except etree.XMLSyntaxError as e:
        raise _refuse(path, f"not well-formed XML at line {e.lineno}: {e.msg}") from None
    if tree.docinfo.doctype or tree.docinfo.internalDTD is not None:
        raise _refuse(path, "declares a DOCTYPE: refused")
    root = tree.getroot()
    if any(isinstance(n, etree._Entity) for n in root.iter()):
        raise _refuse(path, "contains entity references: refused")
    return root


def _floats(text: str, what: str, path: Path, line: int | None) -> list[tuple[float, ...]]:
    try:
        return [tuple(float(v) for v in tok.split(",")) for tok in text.split()]
    except ValueError:
        raise _refuse(path, f"<{what}> line {line}: not numbers") from None


def _geometry(info, path: Path) -> tuple[list, list, list]:
    polygons, circles, geocodes = [], [], []
    for el in info.iterfind("c:area/c:polygon", _NS):
        polygons.append([(p[0], p[1]) for p in _floats(el.text or "", "polygon", path, el.sourceline)])
    for el in info.iterfind("c:area/c:circle", _NS):
        parts = (el.text or "").split()
        pair = _floats(parts[0] if parts else "", "circle", path, el.sourceline)
        if len(parts) != 2 or len(pair) != 1 or len(pair[0]) != 2:
            raise _refuse(path, f"<circle> line {el.sourceline}: not 'lat,lon radius_km'")
        circles.append((pair[0][0], pair[0][1], float(parts[1])))
    for el in info.iterfind("c:area/c:geocode", _NS):
        geocodes.append((el.findtext("c:valueName", namespaces=_NS) or "",
                         el.findtext("c:value", namespaces=_NS) or ""))
    return polygons, circles, geocodes


def _representative(polygons: list, circles: list) -> Point | None:
    """A WGS84 point inside the area: the polygons' union (centroid if inside), else the first circle."""
    rings = [Polygon([(lon, lat) for lat, lon in ring]) for ring in polygons if len(ring) >= 4]
    rings = [r if r.is_valid else shapely.make_valid(r) for r in rings]
    rings = [r for r in rings if not r.is_empty and r.area > 0]
    if rings:
        union = shapely.union_all(rings)
        c = union.centroid
        p = c if union.covers(c) else union.representative_point()
        return Point(round(p.x, 6), round(p.y, 6), "wgs84")
    if circles:
        lat, lon, _ = circles[0]
        return Point(lon, lat, "wgs84")
    return None


def propose_type(category: list[str], event: str | None, headline: str | None) -> tuple[str | None, str]:
    """(incident type, why) from the keyword rules; (None, why) when none matches: the officer chooses."""
    from incidents.grading import incident_types
    known = incident_types()
    text = f"{event or ''} {headline or ''}".lower()
    for rule in rules().ingest:
        if rule.type not in known or (rule.categories and not set(rule.categories) & set(category)):
            continue
        for kw in rule.keywords:
            if kw.lower() in text:
                return rule.type, f"keyword {kw!r} in the event/headline"
    return None, f"no rule matches category {'/'.join(category) or '?'} and event {event!r}: choose a type"


def _pick_info(root):
    infos = root.findall("c:info", _NS)
    for i in infos:
        if (i.findtext("c:language", namespaces=_NS) or "").lower().startswith("zh"):
            return i
    return infos[0] if infos else None


def ingest_file(path: str | Path) -> IngestedAlert:
    """Read, check and summarise one CAP 1.2 file. Raises CapIngestError (one line) when refused."""
    path = Path(path)
    root = _parse(path, _read(path))
    try:
        check_tree(root, require_references=False)
    except CapValidationError as e:
        raise _refuse(path, str(e)) from None
    info = _pick_info(root)

    def text(el, tag):
        return el.findtext(f"c:{tag}", namespaces=_NS) if el is not None else None

    polygons, circles, geocodes = _geometry(info, path) if info is not None else ([], [], [])
    category = [c.text for c in info.iterfind("c:category", _NS)] if info is not None else []
    event, headline = text(info, "event"), text(info, "headline")
    itype, why = propose_type(category, event, headline)
    descs = [d.text for d in info.iterfind("c:area/c:areaDesc", _NS) if d.text] if info is not None else []
    try:
        point = _representative(polygons, circles)
    except (ValueError, TypeError) as e:
        raise _refuse(path, f"area geometry unusable: {e}") from None
    return IngestedAlert(
        path=str(path), identifier=text(root, "identifier"), sender=text(root, "sender"),
        sent=text(root, "sent"), status=text(root, "status"), msg_type=text(root, "msgType"),
        scope=text(root, "scope"), references=(text(root, "references") or "").split(),
        language=text(info, "language"), event=event, category=category,
        severity=text(info, "severity"), urgency=text(info, "urgency"), certainty=text(info, "certainty"),
        headline=headline, description=text(info, "description"), instruction=text(info, "instruction"),
        area_desc="; ".join(descs) or None, polygons=polygons, circles=circles, geocodes=geocodes,
        point=point, incident_type=itype, type_reason=why)
