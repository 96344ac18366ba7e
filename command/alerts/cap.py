"""CAP 1.2 public warnings (GB/T 35965.1 profile): build, validate, summarise.

    from command.alerts.cap import new_identifier, build_alert, validate, summary_zh, default_sender
    ident = new_identifier("440106", now, is_used=store_knows)       # 44010600000000_20260314091200_0
    xml = build_alert(identifier=ident, sender=default_sender("440106"), sent=now, status="Exercise",
                      msg_type="Alert", incident_type="gas_explosion", grade=grade, area=area,
                      instruction_zh="请附近居民立即向东侧疏散", instruction_en="Evacuate eastwards")
    validate(xml)                        # XSD + the rules the XSD cannot say; raises CapValidationError
    summary_zh(xml)                      # <= 360 characters for chat robots, SMS and cell broadcast

    profile = CapProfile.from_settings(settings)    # at the door: org code, contact, public URL, signer
    xml = build_alert(..., references=references_in_force(sent_xmls, now), profile=profile)

Every message has two ``info`` blocks (zh-CN, en-US). Update and Cancel must reference the messages they
replace ("sender,identifier,sent"); an Exercise says 演练 in its headline and note. The schema is the OASIS
XSD shipped in ``data/standards/``; XML is parsed with entities, DTDs and the network off.

The profile receivers rely on (Google's public-alert CAP profile, 12379's own messages): every ``info`` has
``<expires>`` (``data/alerting/expiry.yaml`` by incident type; a Cancel's too), ``<web>`` (the public page
``{public_base_url}/warnings/{identifier}``) and ``<contact>``; the message carries an XML-DSig enveloped
signature (``command.alerts.signing``); an Actual message with the placeholder organisation code ``000`` in
its identifier is refused (set ``cap_org_code``).
"""
from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterable, Literal, Mapping
from urllib.parse import quote, urlsplit

from lxml import etree
from lxml.builder import ElementMaker
from pydantic import BaseModel, ConfigDict, Field

from command.alerts.cap_schema import (  # noqa: F401  (re-exported: the public face of CAP reading)
    CAP_NS, SCHEMA_FILE, SENT_RE, check_references, check_tree, data_file, parse,
    safe_parser, schema, validate)
from command.errors import AlertError, CapValidationError
from incidents.model import LEVELS, Grade
from settings import load_yaml_model

if TYPE_CHECKING:
    from command.alerts.area import AlertArea
    from command.alerts.signing import Signer
    from settings import Settings

EXPIRY_FILE = "alerting/expiry.yaml"
PLACEHOLDER_ORG_CODE = "000"
BEIJING = timezone(timedelta(hours=8), "Asia/Shanghai")
IDENT_RE = re.compile(r"^\d{6}\d{3}000\d{2}_\d{14}_\d$")   # GB/T 35965.1 Annex A, 31 characters
SENDER_TEMPLATE = "yzt@{adcode}.gd.gov.cn"
DEFAULT_ORG_CODE = "000"                                   # the issuing organisation's 3-digit code
SENDER_NAME = ("粤政图应急指挥平台", "Yue Zheng Tu emergency command (Guangdong)")
SUMMARY_MAX = 360                                          # WEA / cell-broadcast length
_E = ElementMaker(namespace=CAP_NS, nsmap={None: CAP_NS})

SEVERITY = {"I": "Extreme", "II": "Severe", "III": "Moderate", "IV": "Minor"}
ROMAN_ZH = {"I": "Ⅰ", "II": "Ⅱ", "III": "Ⅲ", "IV": "Ⅳ"}
COLOUR_EN = {"红": "Red", "橙": "Orange", "黄": "Yellow", "蓝": "Blue"}
VERB = {"Alert": ("发布", "issued"), "Update": ("更新", "updated"), "Cancel": ("解除", "cancelled")}
DEFAULT_INSTRUCTION = {   # used when the officer gave none: keyed by the first CAP responseType
    "Evacuate": ("请立即撤离至安全区域, 听从现场人员指挥。", "Leave the area now and follow responders' directions."),
    "Shelter": ("请留在室内, 关闭门窗和通风设备。", "Stay indoors, close windows and turn off ventilation."),
    "Avoid": ("请远离事发区域, 为救援车辆让出通道。", "Keep away from the area and leave roads clear for responders."),
    "Prepare": ("请做好防范准备, 留意官方通知。", "Get ready to act and follow official updates."),
    "Monitor": ("请留意官方通知。", "Follow official updates."),
    "AllClear": ("预警已解除, 可恢复正常活动。", "The warning is over; normal activity may resume."),
}


# ---------------------------------------------------------------- identifiers and times


def format_sent(when: datetime) -> str:
    """``2026-03-14T09:12:00+08:00``: Beijing time, whole seconds. Naive datetimes are refused."""
    if when.tzinfo is None or when.utcoffset() is None:
        raise AlertError(f"time {when.isoformat()} has no time zone: give an aware datetime")
    return when.astimezone(BEIJING).replace(microsecond=0).isoformat()


def default_sender(district_adcode: str, template: str = SENDER_TEMPLATE) -> str:
    """The sender address of messages issued for a district, e.g. yzt@440106.gd.gov.cn."""
    return template.format(adcode=district_adcode)


def new_identifier(district_adcode: str, when: datetime, is_used: Callable[[str], bool], *,
                   org_code: str = DEFAULT_ORG_CODE, max_seconds: int = 3600) -> str:
    """A fresh GB/T 35965.1 identifier: adcode + org + 000 + 00 + _YYYYMMDDhhmmss_N (Beijing time).

    Tries N = 0..9, then the next second; ``is_used`` (the store) says which are taken."""
    if not re.fullmatch(r"\d{6}", district_adcode or ""):
        raise AlertError(f"area code {district_adcode!r} is not a 6-digit GB/T 2260 code")
    if not re.fullmatch(r"\d{3}", org_code):
        raise AlertError(f"organisation code {org_code!r} is not 3 digits")
    t = datetime.fromisoformat(format_sent(when))
    for _ in range(max_seconds):
        for n in range(10):
            ident = f"{district_adcode}{org_code}00000_{t:%Y%m%d%H%M%S}_{n}"
            if not is_used(ident):
                return ident
        t += timedelta(seconds=1)
    raise AlertError(f"no free identifier for {district_adcode} within {max_seconds} s of {format_sent(when)}")


# ---------------------------------------------------------------- the profile: expiry, web, contact, signer


class ExpiryRules(BaseModel):
    """``data/alerting/expiry.yaml``: hours a warning stays in force by incident type."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    format: Literal[1]
    default_hours: float = Field(gt=0, le=24 * 30)
    cancel_hours: float = Field(gt=0, le=24 * 30)
    hours: dict[str, float] = {}


@functools.lru_cache(maxsize=4)
def _load_expiry(path: Path) -> ExpiryRules:
    if not path.is_file():
        raise AlertError(f"warning expiry rules {path}: file not found")
    rules = load_yaml_model(path, ExpiryRules, what="warning expiry rules", error=AlertError)
    bad = {k: v for k, v in rules.hours.items() if not 0 < v <= 24 * 30}
    if bad:
        raise AlertError(f"warning expiry rules {path}: hours must be > 0 and <= 720: {bad}")
    return rules


def expiry_hours(incident_type: str, msg_type: str, *, data_dir: Path | None = None) -> float:
    """How long a message of this type stays in force (``data/alerting/expiry.yaml``)."""
    rules = _load_expiry(data_file(data_dir, EXPIRY_FILE))
    if msg_type == "Cancel":
        return rules.cancel_hours
    return rules.hours.get(incident_type, rules.default_hours)


@dataclass(frozen=True)
class CapProfile:
    """What every message of one deployment carries, read from the settings once at the door.

    ``org_code`` goes into identifiers (``new_identifier(..., org_code=profile.org_code)``); an Actual message
    whose identifier has the placeholder ``000`` is refused. ``public_base_url`` makes ``<web>``
    (``{public_base_url}/warnings/{identifier}``), ``contact`` is ``<contact>``, ``signer`` signs the message
    (XML-DSig), ``data_dir`` is where the schema and the expiry rules are read."""

    org_code: str = PLACEHOLDER_ORG_CODE
    contact: str | None = None
    public_base_url: str | None = None
    signer: Signer | None = None
    data_dir: Path | None = None

    @classmethod
    def from_settings(cls, settings: Settings, *, signer: Signer | None = None) -> CapProfile:
        """From a Settings object; the signer from its key/cert paths (self-signed in var_dir if unset)."""
        if signer is None:
            from command.alerts.signing import load_signer
            signer = load_signer(key=settings.cap_signing_key, cert=settings.cap_signing_cert,
                                 var_dir=settings.var_dir)
        return cls(org_code=settings.cap_org_code, contact=settings.cap_contact,
                   public_base_url=settings.public_base_url, signer=signer, data_dir=settings.data_dir)

    def web(self, identifier: str) -> str | None:
        """The public page of a message: ``{public_base_url}/warnings/{identifier}``."""
        if not self.public_base_url:
            return None
        return public_url(self.public_base_url, identifier)


def public_url(base_url: str, identifier: str) -> str:
    """``{base_url}/warnings/{identifier}``; the base must be an absolute http(s) URL."""
    parts = urlsplit(base_url)
    if parts.scheme not in ("http", "https") or not parts.netloc or parts.query or parts.fragment:
        raise AlertError(f"public_base_url {base_url!r} is not an absolute http(s) URL without query: "
                         "set public_base_url in the settings")
    return f"{base_url.rstrip('/')}/warnings/{quote(identifier, safe='')}"


def org_code_of(identifier: str) -> str | None:
    """The organisation code inside a GB/T 35965.1 identifier (characters 7-9), or None for another form."""
    return identifier[6:9] if IDENT_RE.match(identifier or "") else None


def _expires_of(root: etree._Element) -> datetime | None:
    ns = {"c": CAP_NS}
    times = [datetime.fromisoformat(t) for t in (e.text for e in root.iterfind("c:info/c:expires", ns)) if t]
    return max(times) if times else None


def references_in_force(messages: Iterable[str | bytes], now: datetime) -> list[str]:
    """The ``sender,identifier,sent`` of every message still in force, for the next Update or Cancel.

    ``messages``: the CAP XML of every message of one incident that was actually sent, in any order. In force:
    an Alert or Update not yet expired (``<expires>`` after ``now``; a message without one never expires) and not
    named by a sent Cancel. An Alert that a later Update replaced still counts until it expires: a receiver that
    missed the Update still holds it, so the next message must name it too (12379 and Google's profile)."""
    ns = {"c": CAP_NS}
    parsed = [parse(m) for m in messages]
    cancelled = {ref.split(",")[1] for r in parsed if r.findtext("c:msgType", namespaces=ns) == "Cancel"
                 for ref in (r.findtext("c:references", namespaces=ns) or "").split() if ref.count(",") == 2}
    out: list[tuple[str, str]] = []
    for r in parsed:
        if r.findtext("c:msgType", namespaces=ns) not in ("Alert", "Update"):
            continue
        if r.findtext("c:identifier", namespaces=ns) in cancelled:
            continue
        expires = _expires_of(r)
        if expires is not None and expires <= now:
            continue
        out.append((r.findtext("c:sent", namespaces=ns) or "", reference_of_tree(r)))
    return [ref for _, ref in sorted(out, key=lambda t: (datetime.fromisoformat(t[0]), t[1]))]


# ---------------------------------------------------------------- building


def _incident_type(key: str, types: Mapping[str, Any] | None = None):
    if types is None:
        from incidents.grading import incident_types
        types = incident_types()
    if key not in types:
        raise AlertError(f"incident type {key!r} is unknown: use one of {', '.join(sorted(types))}")
    return types[key]


def _check_token(name: str, value: str) -> None:
    if not value or re.search(r"[\s,<&]", value):
        raise AlertError(f"CAP {name} {value!r} must be non-empty, without spaces, commas, < or &")


def _area_el(area: AlertArea, lang: str):
    from command.alerts.area import ring_text
    names = [u["name"] for u in area.admin_units]
    desc = "、".join(names) if lang == "zh-CN" else ", ".join(
        f"{u['name']} ({u['adcode']})" for u in area.admin_units)
    if not desc:
        desc = "广东省" if lang == "zh-CN" else "Guangdong"
    kids = [_E.areaDesc(desc)]
    # CAP reads several shapes in one <area> as their union: a circle clipped to land is sent as its land
    # polygon alone, or the circle would put the sea and Hong Kong back into the warned area.
    if area.polygon:
        for ring in (area.polygon, *area.more_polygons):   # every land piece: an island is warned too
            kids.append(_E.polygon(ring_text(ring)))
    elif area.circle:
        lat, lon, r = area.circle
        kids.append(_E.circle(f"{lat:.5f},{lon:.5f} {r:g}"))
    # The same union rule: a district <geocode> next to a 500 m circle would warn the whole district. Codes
    # are the area only for a district-wide warning; otherwise the districts touched go in a <parameter>.
    if area.whole_units or not (area.polygon or area.circle):
        kids += [_E.geocode(_E.valueName("GB/T2260"), _E.value(u["adcode"])) for u in area.admin_units]
    return _E.area(*kids)


def _where_text(area: AlertArea, zh: bool) -> str:
    if area.circle:
        lat, lon, r = area.circle
        if area.polygon:      # clipped: the land part of the circle
            return (f"以{lat:.5f},{lon:.5f}为中心半径{r:g}公里内的广东陆地" if zh
                    else f"Guangdong's land within {r:g} km of {lat:.5f},{lon:.5f}")
        return (f"以{lat:.5f},{lon:.5f}为中心半径{r:g}公里" if zh
                else f"within {r:g} km of {lat:.5f},{lon:.5f}")
    return "图示多边形范围" if zh else "the polygon shown"


def _texts(msg: dict, it, grade: Grade, area: AlertArea, zh: bool) -> tuple[str, str]:
    """(headline, description) in one language."""
    exercise = msg["status"] == "Exercise"
    verb = VERB[msg["msg_type"]][0 if zh else 1]
    people = f"{area.population:,}"
    if zh:
        head = (f"{'【演练】' if exercise else ''}{SENDER_NAME[0]}{verb}{it.cap_event_zh}"
                f"{grade.colour}色预警[{ROMAN_ZH[grade.level]}级/{grade.name}]")
        desc = (f"{'【演练】' if exercise else ''}{it.cap_event_zh}, 预警级别{ROMAN_ZH[grade.level]}级"
                f"({grade.colour}色)。预警范围: {area.area_desc}{_where_text(area, True)}, 约{people}人。")
    else:
        colour = COLOUR_EN.get(grade.colour, grade.colour)
        head = (f"{'EXERCISE: ' if exercise else ''}{colour} warning (level {grade.level}, "
                f"{SEVERITY[grade.level]}) {verb}: {it.cap_event_en}")
        desc = (f"{'EXERCISE, not a real emergency. ' if exercise else ''}{it.cap_event_en}, warning level "
                f"{grade.level} ({colour}). Area: {_where_text(area, False)}, about {people} people.")
    return head, desc


def _info(msg: dict, lang: str, it, grade: Grade, area: AlertArea):
    zh = lang == "zh-CN"
    responses = ["AllClear"] if msg["msg_type"] == "Cancel" else msg["responses"]
    head, desc = _texts(msg, it, grade, area, zh)
    if zh and msg.get("headline_zh"):
        head = ("【演练】" if msg["status"] == "Exercise" and "演练" not in msg["headline_zh"] else "") \
            + msg["headline_zh"]
    if zh and msg.get("description_zh"):
        desc = msg["description_zh"]
    instruction = msg["instruction_zh" if zh else "instruction_en"].strip()
    if msg["msg_type"] == "Cancel" or not instruction:
        instruction = DEFAULT_INSTRUCTION.get(responses[0], DEFAULT_INSTRUCTION["Monitor"])[0 if zh else 1]
    colour = f"{grade.colour}色" if zh else COLOUR_EN.get(grade.colour, grade.colour)
    params = ([("预警级别", f"{ROMAN_ZH[grade.level]}级"), ("预警颜色", colour), ("事件等级", grade.name),
               ("影响人口估算", str(area.population))] if zh else
              [("LEVEL", grade.level), ("COLOUR", colour), ("POPULATION_ESTIMATE", str(area.population))])
    if area.admin_units and not area.whole_units and (area.polygon or area.circle):
        params.append(("涉及行政区划" if zh else "ADMIN_UNITS_TOUCHED",
                       " ".join(u["adcode"] for u in area.admin_units)))
    kids = [_E.language(lang), _E.category(it.cap_category),
            _E.event(it.cap_event_zh if zh else it.cap_event_en),
            *[_E.responseType(r) for r in responses],
            _E.urgency("Immediate" if grade.level != "IV" else "Expected"),
            _E.severity(SEVERITY[grade.level]), _E.certainty("Observed"),
            _E.eventCode(_E.valueName("YZT_TYPE"), _E.value(it.key)),
            _E.effective(msg["sent"])]
    if msg.get("expires"):
        kids.append(_E.expires(msg["expires"]))
    kids += [_E.senderName(SENDER_NAME[0 if zh else 1]), _E.headline(head), _E.description(desc),
             _E.instruction(instruction)]
    if msg.get("web"):
        kids.append(_E.web(msg["web"]))
    if msg.get("contact"):
        kids.append(_E.contact(msg["contact"]))
    kids += [_E.parameter(_E.valueName(n), _E.value(v)) for n, v in params]
    kids.append(_area_el(area, lang))
    return _E.info(*kids)


def build_alert(*, identifier: str, sender: str, sent: datetime, status: str, msg_type: str,
                references: list[str] = [], incident_type: str, grade: Grade, area: AlertArea,  # noqa: B006
                instruction_zh: str, instruction_en: str, headline_zh: str | None = None,
                description_zh: str = "", web: str | None = None, expires: datetime | None = None,
                incident_id: str | None = None, incident_types: Mapping[str, Any] | None = None,
                profile: CapProfile | None = None, contact: str | None = None) -> str:
    """A CAP 1.2 message (XML text, UTF-8 declaration) with zh-CN and en-US info blocks; validated.

    ``incident_types`` (key -> IncidentType) defaults to ``incidents.grading.incident_types()``.
    ``references``: every earlier message of the incident still in force (``references_in_force``).
    ``profile`` (``CapProfile.from_settings``) gives ``<web>``, ``<contact>`` and the signature; ``expires``
    defaults to ``sent`` + the type's hours in ``data/alerting/expiry.yaml``; ``web`` and ``contact`` given
    here win over the profile's. With a signer the returned message is signed and still valid CAP 1.2."""
    profile = profile or CapProfile()
    if status not in ("Actual", "Exercise"):
        raise AlertError(f"CAP status {status!r}: the product sends only Actual or Exercise")
    if status == "Actual" and org_code_of(identifier) == PLACEHOLDER_ORG_CODE:
        raise AlertError(f"identifier {identifier} has the placeholder organisation code {PLACEHOLDER_ORG_CODE}: "
                         "an Actual warning needs the issuing organisation's GB/T 35965.1 code; set cap_org_code "
                         "in the settings (yzt.yaml)")
    if msg_type not in VERB:
        raise AlertError(f"CAP msgType {msg_type!r}: use Alert, Update or Cancel")
    if msg_type in ("Update", "Cancel") and not references:
        raise AlertError(f"a CAP {msg_type} must reference the message(s) it replaces (sender,identifier,sent)")
    if msg_type == "Alert" and references:
        raise AlertError("a new CAP Alert references nothing: send an Update to replace a message")
    if grade.level not in LEVELS:
        raise AlertError(f"grade level {grade.level!r} is not one of I..IV")
    _check_token("identifier", identifier)
    _check_token("sender", sender)
    try:
        if references:
            check_references(list(references), None)
    except CapValidationError as e:
        raise AlertError(str(e).replace(" line None", "")) from None
    if area.circle is None and not area.polygon and not area.admin_units:
        raise AlertError("the warning area has no circle, polygon or admin unit")
    it = _incident_type(incident_type, incident_types)
    from command.alerts.area import response_types
    if expires is None:
        expires = sent + timedelta(hours=expiry_hours(incident_type, msg_type, data_dir=profile.data_dir))
    if format_sent(expires) and expires <= sent:     # format_sent refuses a naive time
        raise AlertError(f"CAP expires {format_sent(expires)} is not after sent {format_sent(sent)}")
    web = web or profile.web(identifier)
    if web is not None and urlsplit(web).scheme not in ("http", "https"):
        raise AlertError(f"CAP web {web!r} is not an http(s) URL")
    msg = {"status": status, "msg_type": msg_type, "sent": format_sent(sent),
           "responses": response_types(incident_type), "instruction_zh": instruction_zh or "",
           "instruction_en": instruction_en or "", "headline_zh": headline_zh,
           "description_zh": description_zh, "web": web, "contact": contact or profile.contact,
           "expires": format_sent(expires)}
    head = [_E.identifier(identifier), _E.sender(sender), _E.sent(msg["sent"]), _E.status(status),
            _E.msgType(msg_type), _E.scope("Public")]
    if status == "Exercise":
        head.append(_E.note("演练信息, 非真实事件。EXERCISE - not a real emergency."))
    if references:
        head.append(_E.references(" ".join(references)))
    if incident_id:
        _check_token("incident id", incident_id)
        head.append(_E.incidents(incident_id))
    root = _E.alert(*head, _info(msg, "zh-CN", it, grade, area), _info(msg, "en-US", it, grade, area))
    xml = etree.tostring(root, encoding="UTF-8", xml_declaration=True, pretty_print=True).decode("utf-8")
    if profile.signer is not None:
        # the message as sent is validated, once: the signature only adds ds:Signature at the end of <alert>
        # (which the XSD takes), so the signed text is valid exactly when the unsigned one is
        xml = profile.signer.sign(xml)
    validate(xml, data_dir=profile.data_dir)
    return xml


def reference_of_tree(root: etree._Element) -> str:
    ns = {"c": CAP_NS}
    return ",".join(root.findtext(f"c:{t}", namespaces=ns) or "" for t in ("sender", "identifier", "sent"))


def reference_of(xml: str | bytes) -> str:
    """The "sender,identifier,sent" triple an Update or Cancel uses to point at this message."""
    return reference_of_tree(parse(xml))


# ---------------------------------------------------------------- the short text


def _fit(text: str, room: int) -> str:
    if room <= 1:
        return ""
    return text if len(text) <= room else text[: room - 1] + "…"


def summary_zh(xml: str | bytes, max_chars: int = SUMMARY_MAX) -> str:
    """A plain zh summary (<= max_chars) for chat robots, SMS and cell broadcast: 【演练】, level, event,
    area, instruction, issuer and time. Built from the message itself, so it never says something else."""
    root = parse(xml)
    ns = {"c": CAP_NS}
    infos = root.findall("c:info", ns)
    info = next((i for i in infos if (i.findtext("c:language", namespaces=ns) or "").startswith("zh")),
                infos[0] if infos else None)
    if info is None:
        raise CapValidationError("CAP message has no <info> block to summarise")
    params = {p.findtext("c:valueName", namespaces=ns): p.findtext("c:value", namespaces=ns)
              for p in info.iterfind("c:parameter", ns)}
    status = root.findtext("c:status", namespaces=ns)
    msg_type = root.findtext("c:msgType", namespaces=ns)
    level = params.get("预警级别") or info.findtext("c:severity", namespaces=ns)
    colour = params.get("预警颜色", "")
    tag = {"Update": "预警更新", "Cancel": "预警解除"}.get(msg_type, f"{colour}预警")
    head = f"{'【演练】' if status == 'Exercise' else ''}【{tag}】{info.findtext('c:event', namespaces=ns)}"
    head += f"({level})。"
    area = info.find("c:area", ns)
    where = area.findtext("c:areaDesc", namespaces=ns) if area is not None else ""
    circle = area.findtext("c:circle", namespaces=ns) if area is not None else None
    if circle:
        centre, r = circle.split()
        where += f", 事发点{centre}周边{r}公里"
    sent = root.findtext("c:sent", namespaces=ns)
    tail = f"({info.findtext('c:senderName', namespaces=ns) or ''} {sent[5:10]} {sent[11:16]})"
    instruction = info.findtext("c:instruction", namespaces=ns) or ""
    room = max_chars - len(head) - len(tail) - len("范围: 。")
    where = _fit(where, max(room // 3, room - len(instruction)))
    instruction = _fit(instruction, room - len(where))
    return _fit(f"{head}范围: {where}。{instruction}{tail}", max_chars)
