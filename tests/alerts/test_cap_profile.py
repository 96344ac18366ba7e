"""The CAP profile receivers rely on: <expires> on every info (a Cancel's too), <web> to the public page,
<contact>, references to every message still in force, a signature, no placeholder organisation in an Actual."""
from __future__ import annotations

import shutil
from datetime import datetime, timedelta

import pytest
from lxml import etree

from command.alerts import cap, signing
from command.alerts.area import build_area
from command.errors import AlertError
from incidents.model import Grade, Point, Rule

NS = {"c": cap.CAP_NS}
TIANHE = Point(113.3186, 23.1391)
SENT = datetime(2026, 3, 14, 9, 12, 0, tzinfo=cap.BEIJING)
LEVEL = Grade("III", "较大", "黄", "Moderate", Rule("条例", "第三条", "test"))


@pytest.fixture(scope="module")
def itypes():
    from incidents.grading import incident_types
    return incident_types()


@pytest.fixture(scope="module")
def area():
    return build_area(TIANHE, type="gas_explosion", level="III")


@pytest.fixture(scope="module")
def signer(tmp_path_factory):
    return signing.load_signer(key=None, cert=None, var_dir=tmp_path_factory.mktemp("var"))


@pytest.fixture(scope="module")
def profile(signer):
    return cap.CapProfile(org_code="123", contact="广州市应急管理局值班室 020-83388110",
                          public_base_url="https://yzt.gd.example/", signer=signer)


def ident(minute: int = 12, org: str = "123") -> str:
    return f"440106{org}00000_202603140{9 if minute < 60 else ''}{minute:02d}00_0"


def make(itypes, area, profile=None, **kw) -> str:
    args = dict(identifier=ident(), sender="yzt@440106.gd.gov.cn", sent=SENT, status="Actual",
                msg_type="Alert", incident_type="gas_explosion", grade=LEVEL, area=area,
                instruction_zh="请向东侧疏散", instruction_en="Evacuate eastwards", incident_types=itypes,
                profile=profile)
    args.update(kw)
    return cap.build_alert(**args)


def infos(xml: str):
    return etree.fromstring(xml.encode()).findall("c:info", NS)


@pytest.mark.parametrize("type_,hours", [("gas_explosion", 6), ("hazmat_leak", 12), ("traffic", 3)])
def test_every_info_expires_after_the_types_hours(itypes, type_, hours):
    a = build_area(TIANHE, type=type_, level="III")
    alert = make(itypes, a, incident_type=type_)
    ref = cap.reference_of(alert)
    update = make(itypes, a, incident_type=type_, msg_type="Update", references=[ref], identifier=ident(30),
                  sent=SENT + timedelta(minutes=18))
    cancel = make(itypes, a, incident_type=type_, msg_type="Cancel", references=[ref, cap.reference_of(update)],
                  identifier=ident(45), sent=SENT + timedelta(minutes=33))
    for xml, sent, h in ((alert, SENT, hours), (update, SENT + timedelta(minutes=18), hours),
                         (cancel, SENT + timedelta(minutes=33), 1)):
        got = [i.findtext("c:expires", namespaces=NS) for i in infos(xml)]
        assert got == [cap.format_sent(sent + timedelta(hours=h))] * 2
        cap.validate(xml)


def test_expiry_hours_come_from_the_data_dir(tmp_path, itypes, area):
    from settings import ROOT
    data = tmp_path / "data"
    (data / "alerting").mkdir(parents=True)
    shutil.copy(ROOT / "data" / cap.EXPIRY_FILE, data / cap.EXPIRY_FILE)
    path = data / cap.EXPIRY_FILE
    path.write_text(path.read_text(encoding="utf-8").replace("gas_explosion: 6", "gas_explosion: 2"),
                    encoding="utf-8")
    xml = make(itypes, area, profile=cap.CapProfile(org_code="123", data_dir=data))
    assert infos(xml)[0].findtext("c:expires", namespaces=NS) == "2026-03-14T11:12:00+08:00"
    broken = tmp_path / "broken"
    (broken / "alerting").mkdir(parents=True)
    (broken / cap.EXPIRY_FILE).write_text("format: 1\ndefault_hours: 0\ncancel_hours: 1\n", encoding="utf-8")
    with pytest.raises(AlertError, match="default_hours"):
        make(itypes, area, profile=cap.CapProfile(org_code="123", data_dir=broken))


def test_an_explicit_expiry_must_come_after_sent(itypes, area):
    with pytest.raises(AlertError, match="not after sent"):
        make(itypes, area, expires=SENT)
    xml = make(itypes, area, expires=SENT + timedelta(hours=2))
    assert infos(xml)[1].findtext("c:expires", namespaces=NS) == "2026-03-14T11:12:00+08:00"


def test_web_links_the_public_page_and_contact_is_given(itypes, area, profile):
    xml = make(itypes, area, profile)
    for info in infos(xml):
        assert info.findtext("c:web", namespaces=NS) == f"https://yzt.gd.example/warnings/{ident()}"
        assert info.findtext("c:contact", namespaces=NS) == "广州市应急管理局值班室 020-83388110"
    signing.verify(xml, trusted=[profile.signer.cert_pem])     # signed, and valid CAP 1.2 with its signature
    with pytest.raises(AlertError, match="public_base_url"):
        make(itypes, area, cap.CapProfile(org_code="123", public_base_url="javascript:alert(1)//"))


def test_actual_with_the_placeholder_organisation_is_refused_naming_the_setting(itypes, area):
    with pytest.raises(AlertError, match="cap_org_code"):
        make(itypes, area, identifier=ident(org="000"))
    exercise = make(itypes, area, identifier=ident(org="000"), status="Exercise")   # drills may keep it
    cap.validate(exercise)
    # the identifier the product makes carries the configured code
    made = cap.new_identifier("440106", SENT, lambda i: False, org_code="123")
    assert cap.org_code_of(made) == "123"
    cap.validate(make(itypes, area, identifier=made))


def test_references_name_every_message_still_in_force(itypes, area):
    a = make(itypes, area)
    b = make(itypes, area, msg_type="Update", references=[cap.reference_of(a)], identifier=ident(20),
             sent=SENT + timedelta(minutes=8))
    # the Update replaced A, but a receiver that missed B still holds A: the next message names both
    now = SENT + timedelta(minutes=30)
    assert cap.references_in_force([b, a], now) == [cap.reference_of(a), cap.reference_of(b)]
    c = make(itypes, area, msg_type="Update", references=cap.references_in_force([a, b], now),
             identifier=ident(30), sent=now)
    assert etree.fromstring(c.encode()).findtext("c:references", namespaces=NS).split() == [
        cap.reference_of(a), cap.reference_of(b)]
    # A expires 6 h after it was sent; then only B and C are still in force
    later = SENT + timedelta(hours=6, minutes=1)
    assert cap.references_in_force([a, b, c], later) == [cap.reference_of(b), cap.reference_of(c)]
    # a Cancel ends what it names
    cancel = make(itypes, area, msg_type="Cancel", references=cap.references_in_force([a, b, c], now),
                  identifier=ident(40), sent=now + timedelta(minutes=10))
    assert cap.references_in_force([a, b, c, cancel], now + timedelta(minutes=11)) == []


def test_a_signed_message_is_validated_as_it_is_sent(itypes, area, profile):
    """The message is validated once, as sent (signed): what signing gives back is what is checked, so a
    signed text the XSD or CAP's rules refuse is never returned."""
    from dataclasses import replace
    from command.errors import CapValidationError

    class Mangling(signing.Signer):
        def sign(self, xml):
            return super().sign(xml).replace("+08:00</sent>", "Z</sent>", 1)

    bad = replace(profile, signer=Mangling(profile.signer.key_pem, profile.signer.cert_pem))
    with pytest.raises(CapValidationError, match="<sent>"):
        make(itypes, area, bad)
    xml = make(itypes, area, profile)
    cap.validate(xml)
    signing.verify(xml, trusted=[profile.signer.cert_pem])
