"""/warnings/<identifier>: the public page a CAP <web> links. No sign-in; only messages actually delivered;
headline, instruction and a map of the area in zh-CN and English; nothing internal; every text escaped."""
from __future__ import annotations

import re
import time
from datetime import datetime, timedelta

import pytest
import yaml
from lxml import html as lhtml

import settings as settings_mod
from command.alerts import cap
from command.dashboard import public_warning, runtime
from settings import load_settings

HOSTILE = '<script>window.__pwned=1</script><img src=x onerror="window.__pwned=2">'


INCIDENT = "440106-20260314091200"
CHANNEL = "drill-box"


def _store_sent(store, xml: str, *, deliver: bool) -> str:
    """Store a message with one exercise delivery as the outbox does, and deliver it (or leave it pending)."""
    root = cap.parse(xml)
    ident = root.findtext(f"{{{cap.CAP_NS}}}identifier")
    store.insert_alert_with_deliveries(
        {"identifier": ident, "incident_id": INCIDENT, "status": root.findtext(f"{{{cap.CAP_NS}}}status"),
         "msg_type": root.findtext(f"{{{cap.CAP_NS}}}msgType"), "cap_xml": xml, "headline_zh": "h",
         "text_zh": "t", "area_desc": "天河区"}, [(CHANNEL, "exercise")],
        created_at="2026-03-14T09:12:00+08:00", now=time.time())
    if deliver:
        got = store.claim_delivery(CHANNEL, owner="test-outbox", now=time.time() + 1, lease_s=30)
        assert got and got["identifier"] == ident
        store.finish_delivery(got["id"], owner="test-outbox", status="sent", now=time.time(), receipt="ok")
    return ident


@pytest.fixture(scope="module")
def sent(tmp_path_factory):
    """The dashboard app over a store holding one Exercise warning that was delivered, and one that was not."""
    import app
    from command.alerts import signing
    from command.alerts.area import build_area
    from incidents.model import Grade, Point, Rule
    tmp = tmp_path_factory.mktemp("pub")
    cfg = tmp / "yzt.yaml"
    cfg.write_text(yaml.safe_dump({"channels": [{"name": CHANNEL, "kind": "outbox", "mode": "exercise"}]}))
    mp = pytest.MonkeyPatch()
    mp.setenv("YZT_CONFIG", str(cfg))
    mp.setenv("YZT_VAR_DIR", str(tmp / "var"))
    settings_mod.reset_settings_cache()
    a = app.create_app(load_settings())
    rt = runtime.current()
    profile = cap.CapProfile(org_code="123", contact="020-83388110", public_base_url="https://yzt.gd.example",
                             signer=signing.load_signer(key=None, cert=None, var_dir=tmp / "var"))
    area = build_area(Point(113.3186, 23.1391), type="gas_explosion", level="III")
    when = datetime.now(cap.BEIJING).replace(microsecond=0)

    def build(n: int) -> str:
        return cap.build_alert(
            identifier=cap.new_identifier("440106", when, lambda i: i.endswith(tuple(str(k) for k in range(n))),
                                          org_code="123"),
            sender="yzt@440106.gd.gov.cn", sent=when, status="Exercise", msg_type="Alert",
            incident_type="gas_explosion", grade=Grade("III", "较大", "黄", "Moderate", Rule("条例", "第三条", "t")),
            area=area, instruction_zh=HOSTILE + "请远离", instruction_en="Keep away " + HOSTILE,
            description_zh="天河路商场燃气爆炸 " + HOSTILE, incident_id=INCIDENT, profile=profile)
    delivered = _store_sent(rt.store(), build(0), deliver=True)
    pending = _store_sent(rt.store(), build(1), deliver=False)
    yield a, rt, delivered, pending
    rt.close()
    mp.undo()
    settings_mod.reset_settings_cache()


def test_the_page_of_a_sent_warning_needs_no_sign_in(sent):
    a, rt, ident, _ = sent
    resp = a.server.test_client().get(f"/warnings/{ident}")
    assert resp.status_code == 200, resp.status_code
    page = resp.data.decode()
    tree = lhtml.fromstring(page)
    zh, en = tree.xpath("//section[@lang='zh-CN']"), tree.xpath("//section[@lang='en']")
    assert zh and en
    root = cap.parse(rt.store().alert(ident)["cap_xml"])
    ns = {"c": cap.CAP_NS}
    for sec, lang in ((zh[0], "zh-CN"), (en[0], "en-US")):
        info = next(i for i in root.findall("c:info", ns) if i.findtext("c:language", namespaces=ns) == lang)
        assert sec.findtext(".//h1") == info.findtext("c:headline", namespaces=ns)
        assert sec.findtext(".//p[@class='instruction']") == info.findtext("c:instruction", namespaces=ns)
    assert "演练" in page and "EXERCISE" in page
    assert tree.xpath("//svg//circle") or tree.xpath("//svg//polygon")
    # escaped: the officer's hostile instruction is text, no script or image element exists
    assert not tree.xpath("//script | //img | //*[@onerror]")
    assert HOSTILE in zh[0].findtext(".//p[@class='instruction']")
    # nothing internal: no incident id, channel, delivery state or population estimate
    for secret in (INCIDENT, CHANNEL, "test-outbox", "sent", "影响人口估算", "POPULATION"):
        assert secret not in page.replace(ident, ""), secret
    assert resp.headers["Content-Security-Policy"] == public_warning.PAGE_CSP
    assert "script-src" not in resp.headers["Content-Security-Policy"]          # default-src 'none' covers it
    assert resp.headers["Referrer-Policy"] == "no-referrer"
    css = a.server.test_client().get(public_warning.CSS_PATH)
    assert css.status_code == 200 and css.mimetype == "text/css"


def test_the_cap_web_element_links_this_page(sent):
    a, rt, ident, _ = sent
    root = cap.parse(rt.store().alert(ident)["cap_xml"])
    webs = {w.text for w in root.iterfind(f"{{{cap.CAP_NS}}}info/{{{cap.CAP_NS}}}web")}
    assert webs == {f"https://yzt.gd.example/warnings/{ident}"}
    path = "/" + next(iter(webs)).split("/", 3)[3]
    assert a.server.test_client().get(path).status_code == 200


def test_unknown_unsent_and_odd_identifiers_are_404_or_the_sign_in(sent):
    a, rt, ident, pending = sent
    c = a.server.test_client()
    assert c.get("/warnings/44010612300000_20990101000000_0").status_code == 404
    # stored and queued but not delivered on any channel: not public
    assert rt.store().deliveries(pending)[0]["status"] == "pending"
    assert c.get(f"/warnings/{pending}").status_code == 404
    # only /warnings/<identifier> skips the sign-in: nothing below or beside it
    for path in ("/warnings/a/b", "/warnings/..%2f_dash-layout", "/warnings/", "/warnings/x%3Cy"):
        assert c.get(path).status_code in (302, 404), path
        assert not public_warning.is_public(path) or path == "/warnings/x%3Cy"
    assert c.get("/_dash-layout").status_code == 401
    assert c.post(f"/warnings/{ident}").status_code in (401, 403, 405)


def test_page_html_marks_expired_and_cancelled_messages(sent):
    _app, rt, ident, _ = sent
    row = rt.store().alert(ident)
    root = cap.parse(row["cap_xml"])
    expires = root.findtext(f"{{{cap.CAP_NS}}}info/{{{cap.CAP_NS}}}expires")
    later = datetime.fromisoformat(expires) + timedelta(minutes=1)
    assert "no longer in force" in public_warning.page_html(row, now=later)
    assert "no longer in force" not in public_warning.page_html(row, now=later - timedelta(minutes=2))
    cancelled = dict(row, cap_xml=re.sub(r"<msgType>\w+</msgType>", "<msgType>Cancel</msgType>", row["cap_xml"]))
    assert "cancelled" in public_warning.page_html(cancelled, now=later)


def test_publishable_needs_a_delivered_actual_or_exercise():
    row = {"status": "Exercise"}
    assert public_warning.publishable(row, [{"status": "failed"}, {"status": "sent"}])
    assert not public_warning.publishable(row, [{"status": "pending"}, {"status": "dead"}])
    assert not public_warning.publishable({"status": "Draft"}, [{"status": "sent"}])
    assert not public_warning.publishable(None, [{"status": "sent"}])
