"""The location table of the after-action reports: per incident its address, precision, uncertainty_m, district
and township, in the drill report's Markdown and HTML, in the exercise report's and in the trainer's view;
every text escaped (an address is a caller's words)."""
from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest
from lxml import html as lhtml
from markdown_it import MarkdownIt

from command import drills
from command.drills import aar, evaluation
from exercise_helpers import scenario_text
from settings import load_settings

DATA = Path(__file__).resolve().parents[1] / "data"
HOSTILE = '广州市天河区天河路<img src=x onerror="window.__pwned=1">|**粗**'
POINT = {"at": 0, "kind": "report", "incident": "P", "point": {"lon": 114.0596, "lat": 22.5429, "crs": "gcj02"},
         "type": "fire"}
ADDRESS = {"at": 0, "kind": "report", "incident": "A", "address": HOSTILE, "type": "gas_explosion",
           "casualties": {"serious_injuries": 3}}


def md_tables(md: str) -> dict[str, list[dict[str, str]]]:
    """The Markdown rendered as a viewer would (raw HTML allowed): each table after a heading, as dict rows."""
    tree = lhtml.fromstring("<div>" + MarkdownIt("commonmark", {"html": True}).enable("table").render(md) + "</div>")
    assert not tree.xpath("//img | //strong/ancestor::td | //a"), "markup from a text"
    return html_tables(tree)


def html_tables(tree) -> dict[str, list[dict[str, str]]]:
    out = {}
    for table in tree.xpath("//table"):
        heading = table.xpath("preceding::*[self::h2 or self::h3][1]")
        head = [" ".join(th.text_content().split()) for th in table.xpath(".//thead//th")]
        rows = [dict(zip(head, (" ".join(td.text_content().split()) for td in tr.xpath("./td"))))
                for tr in table.xpath(".//tbody/tr")]
        out[" ".join(heading[0].text_content().split()) if heading else ""] = rows
    return out


@pytest.fixture(scope="module")
def drill_report(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("aar-loc")
    sc = json.loads((DATA / "drill_point_gcj02.json").read_text(encoding="utf-8"))
    path = tmp / "point.json"
    path.write_text(json.dumps(sc, ensure_ascii=False), encoding="utf-8")
    rep = drills.run_drill(drills.load_scenario(path), settings=load_settings(var_dir=tmp / "var"))
    return copy.deepcopy(rep)


def test_the_drill_reports_locations_table_carries_precision_uncertainty_and_district(drill_report):
    loc = drill_report["incidents"]["P"]["location"]
    assert loc["precision"] == "point" and loc["uncertainty_m"] == 0
    town = loc["township"]          # a point is named by its nearest township, labelled approximate
    assert town["approximate"] is True and town["distance_m"] >= 0
    rows = md_tables(aar.to_markdown(drill_report))["Locations"]
    assert rows == [{"incident": "P", "address": loc["matched"], "precision": "point", "uncertainty_m": "0 m",
                     "district": f"{loc['city_name']} {loc['district_name']} ({loc['district_adcode']})",
                     "township": f"{town['name']} ({town['code']}), {town['distance_m']:,} m from its centre "
                                 "(approximate)"}]
    page = lhtml.fromstring(aar.to_html(drill_report))
    assert html_tables(page)["Locations"] == rows


def test_hostile_address_and_township_are_escaped_in_markdown_and_html(drill_report):
    rep = copy.deepcopy(drill_report)
    loc = rep["incidents"]["P"]["location"]
    loc.update(address=HOSTILE, uncertainty_m=9428.0, precision="district",
               township={"code": "440304001", "name": "<b>园岭街道</b>", "distance_m": 812, "approximate": True})
    rep["incidents"]["<i>K</i>|2"] = copy.deepcopy(rep["incidents"]["P"])
    rep["incidents"]["<i>K</i>|2"]["location"]["uncertainty_m"] = None
    md = aar.to_markdown(rep)
    assert "<img" not in md and "<b>" not in md
    rows = md_tables(md)["Locations"]
    want = {"address": " ".join(HOSTILE.split()), "precision": "district", "uncertainty_m": "9,428 m",
            "township": "<b>园岭街道</b> (440304001), 812 m from its centre (approximate)"}
    assert {k: rows[0][k] for k in want} == want
    assert rows[1]["incident"] == "<i>K</i>|2" and rows[1]["uncertainty_m"] == "—"
    page = aar.to_html(rep)
    tree = lhtml.fromstring(page)
    assert not tree.xpath("//img | //b[contains(., '园岭')] | //i")
    assert "&lt;img src=x onerror=&quot;window.__pwned=1&quot;&gt;" in page
    assert html_tables(tree)["Locations"] == rows


def test_the_exercise_report_has_each_incidents_address_and_township_escaped(book):
    ex = book.start(scenario_text([ADDRESS, POINT, {"at": "5m", "kind": "close", "incident": "A"}]), speed=1,
                    players=["cmd1"], trainer="t1")
    rep = ex.report()
    a, p = rep["incidents"]["A"]["location"], rep["incidents"]["P"]["location"]
    assert a["address"] == HOSTILE and a["uncertainty_m"] > 0 and a["precision"] == "district"
    assert p["precision"] == "point" and p["uncertainty_m"] == 0 and p["township"]["approximate"] is True
    md = evaluation.to_markdown(rep)
    assert "<img" not in md
    rows = {r["incident"]: r for r in md_tables(md)["事件位置 Incident locations"]}
    assert rows["A"]["address"] == " ".join(HOSTILE.split())
    assert rows["A"]["uncertainty_m"] == f"{a['uncertainty_m']:,.0f} m" and rows["P"]["uncertainty_m"] == "0 m"
    assert rows["P"]["township"].startswith(f"{p['township']['name']} ({p['township']['code']})")
    assert rows["A"]["district"].endswith("(440106)") and rows["P"]["district"].endswith("(440304)")
    page = evaluation.to_html(rep)
    tree = lhtml.fromstring(page)
    assert not tree.xpath("//img")
    assert {r["incident"]: r for r in html_tables(tree)["事件位置 Incident locations"]} == rows


def test_the_trainers_report_view_shows_the_locations(book):
    from command.dashboard.trainer import report_view
    ex = book.start(scenario_text([ADDRESS, POINT]), speed=1, players=[], trainer="t1")
    view = report_view(ex.report())
    table = next(c for c in _walk(view) if getattr(c, "id", None) == "trainer-report-locations")
    cells = [[str(td.children) for td in tr.children] for tr in table.children[1].children]
    assert [c[0] for c in cells] == ["A", "P"]
    assert cells[0][1] == HOSTILE and cells[1][2] == "point" and cells[1][3] == "0 m"


def _walk(node):
    yield node
    children = getattr(node, "children", None)
    for c in children if isinstance(children, (list, tuple)) else [children] if children is not None else []:
        if hasattr(c, "children") or hasattr(c, "id"):
            yield from _walk(c)


def test_a_missing_location_reads_as_dashes():
    rows = aar.location_rows({"incidents": {"X": {"location": {}}}})
    assert rows == [["X", "—", "—", "—", "—", "—"]]
