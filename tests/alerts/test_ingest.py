"""Reading incoming CAP files: the real valid/invalid corpus, entity attacks, limits, and no network ever."""
from __future__ import annotations

import http.server
import threading
from datetime import datetime

import pytest
from shapely.geometry import Point as ShapelyPoint
from shapely.geometry import Polygon

from command.alerts import cap

from command.alerts import ingest
from command.alerts.ingest import ingest_file
from command.errors import CapIngestError
from incidents.grading import incident_types

REASONS = {   # what each refusal must say
    "google-invalid.cap": "<info>",                 # <scope> missing before <info>
    "google-noaa_errors.cap": "cap:1.1",
    "google-xee.cap": "DOCTYPE or ENTITY",
    "sc-no-identifier.xml": "<schema>",
    "tg-invalid-schema.xml": "<audience>",          # <certainty> missing
}


def test_every_valid_message_is_accepted(shared_dir):
    files = sorted((shared_dir / "standards/cap/valid").iterdir())
    assert len(files) >= 6
    for f in files:
        got = ingest_file(f)
        assert got.identifier and got.sender and cap.SENT_RE.match(got.sent), f.name
        assert got.status == "Actual" and got.msg_type in ("Alert", "Update") and got.event, f.name
        assert got.incident_type is None or got.incident_type in incident_types(), f.name


def test_every_invalid_message_is_refused_in_one_line(shared_dir):
    files = sorted((shared_dir / "standards/cap/invalid").iterdir())
    assert {f.name for f in files} == set(REASONS)
    for f in files:
        with pytest.raises(CapIngestError) as e:
            ingest_file(f)
        msg = str(e.value)
        assert "\n" not in msg and f.name in msg and REASONS[f.name] in msg, msg


def test_chinese_update(shared_dir):
    got = ingest_file(shared_dir / "standards/cap/valid/cn-baoding-update.xml")
    assert got.language == "zh-CN" and got.event == "雷电" and got.category == ["Met"]
    assert got.severity == "Moderate" and got.msg_type == "Update" and len(got.references) == 1
    assert got.geocodes == [("CPEAS Geographic Code", "130602000000")] and got.area_desc == "新市区"
    assert got.point is None                 # geocode only: no geometry to place it
    assert got.as_dict()["point"] is None and got.as_dict()["identifier"] == got.identifier


def test_polygon_message_has_a_point_inside(shared_dir):
    got = ingest_file(shared_dir / "standards/cap/valid/de.xml")
    assert len(got.polygons) == 2 and all(r[0] == r[-1] for r in got.polygons)
    union = Polygon([(lo, la) for la, lo in got.polygons[0]]).union(
        Polygon([(lo, la) for la, lo in got.polygons[1]]))
    assert got.point.crs == "wgs84" and union.covers(ShapelyPoint(got.point.lon, got.point.lat))
    assert 50 < got.point.lat < 52 and 10 < got.point.lon < 12


def test_proposed_types():
    assert ingest.propose_type(["Met"], "台风橙色预警", None)[0] == "typhoon"
    assert ingest.propose_type(["Met"], "暴雨红色预警", None)[0] == "flood"
    assert ingest.propose_type(["Fire"], "Fire", None)[0] == "fire"
    assert ingest.propose_type(["CBRNE"], "Chemical release", None)[0] == "hazmat_leak"
    assert ingest.propose_type(["Transport"], "交通事故", None)[0] == "traffic"
    assert ingest.propose_type(["Met"], "城市内涝黄色预警", None)[0] == "waterlogging"
    assert ingest.propose_type(["Met"], "Traffic jam", None)[0] is None     # category narrows
    kind, why = ingest.propose_type(["Met"], "Small Craft Advisory", None)
    assert kind is None and "no rule" in why


def test_ingest_and_warning_rules_use_grading_types():
    from command.alerts.area import rules
    known = set(incident_types())
    assert {r.type for r in rules().ingest} <= known
    assert set(rules().types) <= known


def test_our_own_message_round_trips(tmp_path):
    from command.alerts.area import build_area
    from incidents.model import Grade, Point, Rule
    severe = Grade("II", "重大", "橙", "Severe", Rule("条例", "第三条", "test"))
    area = build_area(Point(114.3080, 22.5940), radius_m=5000, type="gas_explosion", level="II")
    xml = cap.build_alert(identifier="44030800000000_20260314091200_0", sender="yzt@440308.gd.gov.cn",
                          sent=datetime(2026, 3, 14, 9, 12, tzinfo=cap.BEIJING), status="Exercise",
                          msg_type="Alert", incident_type="gas_explosion", grade=severe, area=area,
                          instruction_zh="立即撤离", instruction_en="Leave now",)
    f = tmp_path / "ours.xml"
    f.write_text(xml, encoding="utf-8")
    got = ingest_file(f)
    assert got.identifier == "44030800000000_20260314091200_0" and got.status == "Exercise"
    assert got.language == "zh-CN" and got.incident_type == "gas_explosion"
    assert got.circles == [] and len(got.polygons) == 1     # clipped: the land polygon alone, no geocode
    assert got.geocodes == []
    ring = Polygon([(lo, la) for la, lo in got.polygons[0]])
    assert ring.covers(ShapelyPoint(got.point.lon, got.point.lat))


def _server():
    hits: list[str] = []

    class H(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            hits.append(self.path)
            self.send_response(200)
            self.end_headers()
            self.wfile.write(b'<!ENTITY leak "LEAKED">')

        def log_message(self, *a):
            pass

    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    return srv, hits


def test_no_entity_and_no_network_even_past_the_byte_check(shared_dir, tmp_path):
    srv, hits = _server()
    url = f"http://127.0.0.1:{srv.server_address[1]}"
    try:
        body = (shared_dir / "standards/cap/valid/cn-baoding-update.xml").read_text(encoding="utf-8")
        body = body.split("?>", 1)[1]
        xxe = (f'<?xml version="1.0"?>\n<!DOCTYPE alert [<!ENTITY xxe SYSTEM "{url}/xxe">'
               f'<!ENTITY % p SYSTEM "{url}/dtd"> %p;]>' + body.replace("Show area", "&xxe;"))
        # the file check refuses it unread ...
        f = tmp_path / "xxe.xml"
        f.write_text(xxe, encoding="utf-8")
        with pytest.raises(CapIngestError, match="DOCTYPE or ENTITY"):
            ingest_file(f)
        # ... and the parser behind it would neither fetch nor expand anything
        with pytest.raises(cap.CapValidationError, match="DOCTYPE"):
            cap.parse(xxe)
        root = ingest.etree.fromstring(xxe.encode(), cap.safe_parser())
        assert "LEAKED" not in ingest.etree.tostring(root).decode()
        # XInclude and schemaLocation pointing at the network are never followed
        inc = body.replace("<note></note>", f'<note xmlns:xi="http://www.w3.org/2001/XInclude">'
                                            f'<xi:include href="{url}/xi"/></note>')
        inc = inc.replace('<alert xmlns="urn:oasis:names:tc:emergency:cap:1.2">',
                          '<alert xmlns="urn:oasis:names:tc:emergency:cap:1.2" xmlns:xsi='
                          f'"http://www.w3.org/2001/XMLSchema-instance" xsi:schemaLocation="x {url}/a.xsd">')
        g = tmp_path / "xinclude.xml"
        g.write_text(inc, encoding="utf-8")
        with pytest.raises(CapIngestError, match="<note>"):
            ingest_file(g)
    finally:
        srv.shutdown()
    assert hits == []


def test_utf16_doctype_and_billion_laughs_refused(tmp_path):
    laughs = ('<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">'
              '<!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">]><alert>&lol2;</alert>')
    f = tmp_path / "laughs.xml"
    f.write_text(laughs, encoding="utf-8")
    with pytest.raises(CapIngestError, match="DOCTYPE"):
        ingest_file(f)
    g = tmp_path / "utf16.xml"
    g.write_bytes(laughs.replace('"1.0"?>', '"1.0" encoding="UTF-16"?>').encode("utf-16"))
    with pytest.raises(CapIngestError, match="DOCTYPE"):
        ingest_file(g)


def test_size_limit_malformed_and_missing(tmp_path):
    big = tmp_path / "big.xml"
    big.write_bytes(b"<alert>" + b" " * ingest.MAX_BYTES + b"</alert>")
    with pytest.raises(CapIngestError, match="over the 1,000,000-byte limit"):
        ingest_file(big)
    bad = tmp_path / "bad.xml"
    bad.write_text('<alert xmlns="urn:oasis:names:tc:emergency:cap:1.2"><identifier>x</alert>')
    with pytest.raises(CapIngestError, match="not well-formed XML at line 1"):
        ingest_file(bad)
    with pytest.raises(CapIngestError, match="not found"):
        ingest_file(tmp_path / "nope.xml")
