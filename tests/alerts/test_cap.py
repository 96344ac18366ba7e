"""CAP 1.2 messages: built Alert/Update/Cancel validate against the OASIS XSD; identifiers; refusals."""
from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from lxml import etree

from command.alerts import cap
from command.alerts.area import build_area
from command.errors import AlertError, CapValidationError
from incidents.model import Grade, Point, Rule

NS = {"c": cap.CAP_NS}
TIANHE = Point(113.3186, 23.1391)
NAMES = {"I": ("特别重大", "红"), "II": ("重大", "橙"), "III": ("较大", "黄"), "IV": ("一般", "蓝")}


@pytest.fixture(scope="module")
def itypes():
    from incidents.grading import incident_types
    return incident_types()


def grade(level: str) -> Grade:
    name, colour = NAMES[level]
    return Grade(level, name, colour, cap.SEVERITY[level], Rule("条例", "第三条", "test"))


@pytest.fixture(scope="module")
def area():
    return build_area(TIANHE, type="gas_explosion", level="III")


SENT = datetime(2026, 3, 14, 9, 12, 0, tzinfo=cap.BEIJING)


ORG = "123"     # an organisation code that is not the placeholder 000, so Actual messages may be built


def make(itypes, area, **kw) -> str:
    args = dict(identifier=f"440106{ORG}00000_20260314091200_0", sender=cap.default_sender("440106"), sent=SENT,
                status="Actual", msg_type="Alert", incident_type="gas_explosion", grade=grade("III"),
                area=area, instruction_zh="请附近居民立即向东侧疏散", instruction_en="Evacuate eastwards",
                incident_types=itypes)
    args.update(kw)
    return cap.build_alert(**args)


def root(xml: str):
    return etree.fromstring(xml.encode())


@pytest.mark.parametrize("type_,level", [("gas_explosion", "IV"), ("gas_explosion", "I"),
                                         ("hazmat_leak", "II"), ("fire", "III")])
def test_alert_update_cancel_validate_against_the_xsd(itypes, type_, level):
    a = build_area(TIANHE, type=type_, level=level)
    alert = make(itypes, a, incident_type=type_, grade=grade(level))
    ref = cap.reference_of(alert)
    assert ref == f"yzt@440106.gd.gov.cn,440106{ORG}00000_20260314091200_0,2026-03-14T09:12:00+08:00"
    update = make(itypes, a, incident_type=type_, grade=grade(level), msg_type="Update", references=[ref],
                  identifier=f"440106{ORG}00000_20260314093000_0")
    cancel = make(itypes, a, incident_type=type_, grade=grade(level), msg_type="Cancel",
                  references=[ref, cap.reference_of(update)], identifier=f"440106{ORG}00000_20260314100000_0")
    for xml in (alert, update, cancel):
        cap.validate(xml)
        assert cap.schema().validate(root(xml))      # the XSD alone agrees
    r = root(cancel)
    assert r.findtext("c:references", namespaces=NS).split() == [ref, cap.reference_of(update)]
    assert {e.text for e in r.iterfind("c:info/c:responseType", NS)} == {"AllClear"}
    r = root(alert)
    assert r.findtext("c:info/c:severity", namespaces=NS) == cap.SEVERITY[level]
    assert r.findtext("c:info/c:urgency", namespaces=NS) == ("Expected" if level == "IV" else "Immediate")
    assert "AllClear" not in {e.text for e in r.iterfind("c:info/c:responseType", NS)}


def test_two_info_blocks_zh_and_en_with_level_and_area(itypes, area):
    r = root(make(itypes, area))
    infos = r.findall("c:info", NS)
    assert [i.findtext("c:language", namespaces=NS) for i in infos] == ["zh-CN", "en-US"]
    zh, en = infos
    assert zh.findtext("c:event", namespaces=NS) == itypes["gas_explosion"].cap_event_zh
    assert en.findtext("c:event", namespaces=NS) == itypes["gas_explosion"].cap_event_en
    assert zh.findtext("c:category", namespaces=NS) == itypes["gas_explosion"].cap_category
    params = {p.findtext("c:valueName", namespaces=NS): p.findtext("c:value", namespaces=NS)
              for p in zh.iterfind("c:parameter", NS)}
    assert params["预警级别"] == "Ⅲ级" and params["预警颜色"] == "黄色"
    assert "黄色预警" in zh.findtext("c:headline", namespaces=NS)
    assert "Yellow" in en.findtext("c:headline", namespaces=NS)
    assert zh.findtext("c:instruction", namespaces=NS) == "请附近居民立即向东侧疏散"
    assert en.findtext("c:instruction", namespaces=NS) == "Evacuate eastwards"
    for info in infos:
        assert info.findtext("c:area/c:circle", namespaces=NS) == "23.13910,113.31860 0.8"
        # CAP reads the shapes and geocodes of an <area> as a union: a district geocode would widen the
        # 800 m circle to all of 天河区, so the districts touched travel as a parameter instead
        assert info.find("c:area/c:geocode", NS) is None
        touched = {p.findtext("c:valueName", namespaces=NS): p.findtext("c:value", namespaces=NS)
                   for p in info.iterfind("c:parameter", NS)}
        assert "440106" in (touched.get("涉及行政区划") or touched.get("ADMIN_UNITS_TOUCHED")).split()
    assert zh.findtext("c:area/c:areaDesc", namespaces=NS) == "天河区"


def test_exercise_says_so_everywhere(itypes, area):
    xml = make(itypes, area, status="Exercise")
    r = root(xml)
    assert r.findtext("c:status", namespaces=NS) == "Exercise"
    zh, en = r.findall("c:info", NS)
    assert "演练" in zh.findtext("c:headline", namespaces=NS)
    assert "EXERCISE" in en.findtext("c:headline", namespaces=NS)
    assert cap.summary_zh(xml).startswith("【演练】")
    actual = make(itypes, area)
    assert "演练" not in actual and "【演练】" not in cap.summary_zh(actual)
    # an officer's own headline gets the tag once, not twice
    once = make(itypes, area, status="Exercise", headline_zh="【演练】天河区燃气爆炸黄色预警")
    assert root(once).findtext("c:info/c:headline", namespaces=NS).count("演练") == 1


def test_sent_is_beijing_time_whole_seconds(itypes, area):
    utc = datetime(2026, 3, 14, 1, 12, 0, 987654, tzinfo=timezone.utc)
    xml = make(itypes, area, sent=utc)
    assert root(xml).findtext("c:sent", namespaces=NS) == "2026-03-14T09:12:00+08:00"
    assert cap.format_sent(datetime(2026, 1, 1, tzinfo=timezone(timedelta(hours=-5)))) == "2026-01-01T13:00:00+08:00"
    with pytest.raises(AlertError, match="time zone"):
        cap.format_sent(datetime(2026, 3, 14, 9, 12))


def test_identifier_format_and_never_reused():
    used: set[str] = set()
    when = datetime(2026, 3, 14, 9, 12, 0, 400000, tzinfo=cap.BEIJING)
    ids = []
    for _ in range(25):
        i = cap.new_identifier("440106", when, used.__contains__)
        used.add(i)
        ids.append(i)
    assert len(set(ids)) == 25
    assert all(len(i) == 31 and cap.IDENT_RE.match(i) for i in ids)
    assert ids[0] == "44010600000000_20260314091200_0"
    assert ids[9].endswith("091200_9") and ids[10].endswith("091201_0") and ids[24].endswith("091202_4")
    with pytest.raises(AlertError, match="6-digit"):
        cap.new_identifier("4401", when, used.__contains__)


@settings(max_examples=30, deadline=None)
@given(st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2090, 1, 1),
                    timezones=st.just(timezone.utc)), st.integers(0, 30))
def test_identifier_is_beijing_time_and_skips_used(when, taken):
    used = {f"44030400000000_{(when.astimezone(cap.BEIJING) + timedelta(seconds=n // 10)):%Y%m%d%H%M%S}_{n % 10}"
            for n in range(taken)}
    got = cap.new_identifier("440304", when, used.__contains__)
    assert got not in used and len(got) == 31
    bj = when.astimezone(cap.BEIJING)
    assert got[15:29] == f"{bj + timedelta(seconds=taken // 10):%Y%m%d%H%M%S}" and got[-1] == str(taken % 10)


def test_update_and_cancel_need_references(itypes, area):
    for mt in ("Update", "Cancel"):
        with pytest.raises(AlertError, match="reference"):
            make(itypes, area, msg_type=mt)
    with pytest.raises(AlertError, match="references nothing"):
        make(itypes, area, references=["a,b,2026-03-14T09:12:00+08:00"])
    with pytest.raises(AlertError, match="sender,identifier,sent"):
        make(itypes, area, msg_type="Update", references=["just-an-identifier"])
    xml = make(itypes, area)
    no_refs = xml.replace("<msgType>Alert</msgType>", "<msgType>Update</msgType>")
    with pytest.raises(CapValidationError, match="references"):
        cap.validate(no_refs)


def test_refusals_of_bad_arguments(itypes, area):
    with pytest.raises(AlertError, match="status"):
        make(itypes, area, status="Test")
    with pytest.raises(AlertError, match="msgType"):
        make(itypes, area, msg_type="Ack")
    with pytest.raises(AlertError, match="identifier"):
        make(itypes, area, identifier="has space")
    with pytest.raises(AlertError, match="unknown"):
        make(itypes, area, incident_type="no_such_type")


@pytest.mark.parametrize("old,new,element", [
    ("<severity>Moderate</severity>", "<severity>Bad</severity>", "severity"),
    ("<sent>2026-03-14T09:12:00+08:00</sent>", "<sent>2026-03-14T01:12:00Z</sent>", "sent"),
    ("<sent>2026-03-14T09:12:00+08:00</sent>", "<sent>2026-03-14T09:12:00.5+08:00</sent>", "sent"),
    ("<scope>Public</scope>", "", "info"),
    ("<circle>23.13910,113.31860 0.8</circle>", "<circle>23.1391 113.3186</circle>", "circle"),
])
def test_broken_message_names_element_and_line(itypes, area, old, new, element):
    xml = make(itypes, area)
    assert old in xml
    bad = xml.replace(old, new, 1)
    with pytest.raises(CapValidationError) as e:
        cap.validate(bad)
    msg = str(e.value)
    assert f"<{element}>" in msg and re.search(r"line \d+", msg) and "\n" not in msg


def test_open_polygon_and_doctype_refused(itypes, area):
    xml = make(itypes, area).replace(
        "<circle>", "<polygon>23.1,113.3 23.2,113.3 23.2,113.4</polygon><circle>", 1)
    with pytest.raises(CapValidationError, match="<polygon>"):
        cap.validate(xml)
    evil = '<?xml version="1.0"?><!DOCTYPE alert [<!ENTITY x "y">]>' + make(itypes, area).split("?>", 1)[1]
    with pytest.raises(CapValidationError, match="DOCTYPE"):
        cap.validate(evil)


def test_polygon_area_is_written_closed_lat_lon(itypes):
    ring = [(23.13, 113.31), (23.15, 113.31), (23.15, 113.34), (23.13, 113.34), (23.13, 113.31)]
    a = build_area(TIANHE, polygon=ring, type="flood", level="II")
    xml = make(itypes, a, incident_type="flood", grade=grade("II"))
    r = root(xml)
    text = r.findtext("c:info/c:area/c:polygon", namespaces=NS)
    pairs = text.split()
    assert pairs[0] == pairs[-1] == "23.13000,113.31000" and len(pairs) == 5
    assert r.find("c:info/c:area/c:circle", NS) is None


def test_summary_fits_cell_broadcast(itypes, area):
    long_instruction = "请立即撤离。" * 120
    xml = make(itypes, area, status="Exercise", instruction_zh=long_instruction)
    s = cap.summary_zh(xml)
    assert len(s) <= 360
    assert s.startswith("【演练】【黄色预警】") and "Ⅲ级" in s and itypes["gas_explosion"].cap_event_zh in s
    assert "天河区" in s and "请立即撤离" in s and "…" in s
    short = cap.summary_zh(make(itypes, area))
    assert "请附近居民立即向东侧疏散" in short and "0.8公里" in short


def test_the_shipped_schema_is_the_shared_one(shared_dir):
    from settings import ROOT
    shipped = (ROOT / "data" / cap.SCHEMA_FILE).read_bytes()
    assert shipped == (shared_dir / "standards/cap/CAP-v1.2-schema.xsd").read_bytes()
    assert b"Copyright OASIS" in shipped


def test_real_messages_validate(shared_dir):
    for f in sorted((shared_dir / "standards/cap/valid").iterdir()):
        cap.validate(f.read_bytes())
