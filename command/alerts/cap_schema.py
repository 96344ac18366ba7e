"""CAP 1.2 messages read safely and checked: the OASIS XSD plus the rules the XSD cannot say.

    from command.alerts.cap_schema import parse, validate, check_tree
    root = parse(xml)          # entities, DTDs and the network off; a DOCTYPE is refused
    validate(xml)              # raises CapValidationError naming the element and its line

Apart from ``command.alerts.cap`` (which builds messages) so that signature checking
(``command.alerts.signing``) can validate what a signature covers without importing the builder.
"""
from __future__ import annotations

import functools
import re
from pathlib import Path

from lxml import etree

from command.errors import CapValidationError
from settings import ROOT

CAP_NS = "urn:oasis:names:tc:emergency:cap:1.2"
SCHEMA_FILE = "standards/CAP-v1.2-schema.xsd"
SENT_RE = re.compile(r"^\d\d\d\d-\d\d-\d\dT\d\d:\d\d:\d\d[-+]\d\d:\d\d$")


def safe_parser() -> etree.XMLParser:
    """An XML parser that never resolves entities, loads a DTD or reaches the network."""
    return etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False, huge_tree=False,
                           dtd_validation=False)


def data_file(data_dir: Path | None, name: str) -> Path:
    """``data_dir/name``, or the bundled copy when the deployment's data_dir does not have it."""
    if data_dir is not None:
        path = Path(data_dir) / name
        if path.is_file():
            return path
    return ROOT / "data" / name


def _schema_path(data_dir: Path | None = None) -> Path:
    return data_file(data_dir, SCHEMA_FILE)


@functools.lru_cache(maxsize=2)
def _load_schema(path: Path) -> etree.XMLSchema:
    return etree.XMLSchema(etree.parse(str(path), safe_parser()))


def schema(data_dir: Path | None = None) -> etree.XMLSchema:
    """The OASIS CAP 1.2 XML schema (cached)."""
    return _load_schema(_schema_path(data_dir))


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def _schema_error(log) -> CapValidationError:
    e = log[0]
    m = re.match(r"Element '(?:\{[^}]*\})?([^']+)'(?:, attribute '([^']+)')?: (.*)", e.message)
    elem, msg = (m.group(1), m.group(3)) if m else ("?", e.message)
    msg = msg.replace("{" + CAP_NS + "}", "")
    return CapValidationError(f"CAP <{elem}> line {e.line}: {msg}")


def check_tree(root: etree._Element, *, require_references: bool = True, data_dir: Path | None = None) -> None:
    """XSD validation plus the CAP 1.2 rules the XSD cannot say. Raises CapValidationError."""
    if root.tag != f"{{{CAP_NS}}}alert":
        raise CapValidationError(f"CAP root element is <{_local(root.tag)}> in namespace "
                                 f"{etree.QName(root).namespace or 'none'}, not a CAP 1.2 <alert>")
    xsd = schema(data_dir)
    if not xsd.validate(root):
        raise _schema_error(xsd.error_log)
    ns = {"c": CAP_NS}
    sent = root.find("c:sent", ns)
    if not SENT_RE.match(sent.text or ""):
        raise CapValidationError(f"CAP <sent> line {sent.sourceline}: {sent.text!r} is not "
                                 "YYYY-MM-DDThh:mm:ss+hh:mm (no Z, no fractions)")
    for tag in ("identifier", "sender"):
        el = root.find(f"c:{tag}", ns)
        if not el.text or re.search(r"[\s,<&]", el.text):
            raise CapValidationError(f"CAP <{tag}> line {el.sourceline}: must be non-empty, without "
                                     "spaces, commas, < or &")
    refs = root.find("c:references", ns)
    msg_type = root.findtext("c:msgType", namespaces=ns)
    if refs is not None:
        check_references((refs.text or "").split(), refs.sourceline)
    elif require_references and msg_type in ("Update", "Cancel"):
        raise CapValidationError(f"CAP <msgType> {msg_type}: <references> to the replaced message is required")
    for el in root.iterfind("c:info/c:area/c:polygon", ns):
        _check_polygon(el.text or "", el.sourceline)
    for el in root.iterfind("c:info/c:area/c:circle", ns):
        if not re.fullmatch(r"\s*-?\d+(\.\d+)?,-?\d+(\.\d+)?\s+\d+(\.\d+)?\s*", el.text or ""):
            raise CapValidationError(f"CAP <circle> line {el.sourceline}: {el.text!r} is not 'lat,lon radius_km'")


def check_references(refs: list[str], line: int | None) -> None:
    if not refs:
        raise CapValidationError(f"CAP <references> line {line}: empty")
    for ref in refs:
        parts = ref.split(",")
        if len(parts) != 3 or not all(parts) or not SENT_RE.match(parts[2]):
            raise CapValidationError(f"CAP <references> line {line}: {ref!r} is not 'sender,identifier,sent'")


def _check_polygon(text: str, line: int | None) -> None:
    try:
        pairs = [tuple(float(v) for v in tok.split(",")) for tok in text.split()]
    except ValueError:
        raise CapValidationError(f"CAP <polygon> line {line}: not 'lat,lon lat,lon ...'") from None
    if len(pairs) < 4 or any(len(p) != 2 for p in pairs) or pairs[0] != pairs[-1]:
        raise CapValidationError(f"CAP <polygon> line {line}: needs >= 4 lat,lon pairs, first = last")
    if any(abs(la) > 90 or abs(lo) > 180 for la, lo in pairs):
        raise CapValidationError(f"CAP <polygon> line {line}: a coordinate is out of range")


def parse(xml: str | bytes) -> etree._Element:
    """Parse CAP XML safely; a DOCTYPE (entities) is refused. Raises CapValidationError."""
    data = xml.encode("utf-8") if isinstance(xml, str) else xml
    try:
        tree = etree.fromstring(data, safe_parser()).getroottree()
    except etree.XMLSyntaxError as e:
        raise CapValidationError(f"CAP XML line {e.lineno}: not well-formed: {e.msg}") from None
    if tree.docinfo.doctype or tree.docinfo.internalDTD is not None:
        raise CapValidationError("CAP XML declares a DOCTYPE (entities): refused")
    return tree.getroot()


def validate(xml: str | bytes, *, data_dir: Path | None = None) -> None:
    """Check a CAP message against the XSD and CAP's extra rules. Raises CapValidationError."""
    check_tree(parse(xml), data_dir=data_dir)
