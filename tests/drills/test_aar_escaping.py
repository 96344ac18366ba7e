"""The after-action report never turns a scenario's, a layer's or a caller's text into markup: in HTML, in
Markdown (rendered as a Markdown viewer would, raw HTML allowed) and in the plotly chart."""
from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest
from lxml import html as lhtml
from markdown_it import MarkdownIt

from command import drills
from command.drills.aar import md_text, to_html, to_markdown
from settings import load_settings

DATA = Path(__file__).resolve().parents[1] / "data"
CHROMIUM = Path("/usr/bin/chromium")
IMG = '<img src=x onerror="window.__pwned=1">'
LINK = "[点此 click](javascript:window.__pwned=2)"
PIPE = "景田|路 **站** `code`\n第二行"
AUTO = "https://evil.example/login www.evil.example"
HOSTILE = (IMG, LINK, PIPE, AUTO)


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("aar")
    sc = json.loads((DATA / "drill_point_gcj02.json").read_text(encoding="utf-8"))
    sc["name"] = f"{IMG} {LINK}"
    path = tmp / "hostile.json"
    path.write_text(json.dumps(sc, ensure_ascii=False), encoding="utf-8")
    import os
    os.environ["YZT_VAR_DIR"] = str(tmp / "var")
    try:
        rep = drills.run_drill(drills.load_scenario(path), settings=load_settings(var_dir=tmp / "var"))
    finally:
        os.environ.pop("YZT_VAR_DIR", None)
    rep = copy.deepcopy(rep)
    inc = next(iter(rep["incidents"].values()))
    inc["location"]["matched"] = PIPE
    stations = inc["nearby"].setdefault("fire_station", [])
    stations.insert(0, {"id": "FS-H", "name": f"{IMG}{PIPE}", "drive_time_s": 100, "drive_time_method": AUTO,
                        "lon": 114.05, "lat": 22.54, "distance_m": 10})
    rep["incidents"][f"{IMG}|K"] = rep["incidents"].pop(next(iter(rep["incidents"])))
    rep.setdefault("errors", []).append({"event": 9, "kind": LINK, "incident": "P", "error": f"{IMG} {AUTO}"})
    return rep


def test_markdown_renders_the_names_as_text(report):
    md = to_markdown(report)
    rendered = MarkdownIt("commonmark", {"html": True}).enable("table").render(md)
    tree = lhtml.fromstring(f"<div>{rendered}</div>")
    assert not tree.xpath("//img | //script | //a | //code | //em"), rendered[:2000]
    assert [e.text for e in tree.xpath("//strong")] == [report["status"]]      # the report's own bold only
    text = " ".join(tree.text_content().split())
    for s in (IMG, LINK, " ".join(PIPE.split()), AUTO):
        assert s in text, s
    for table in tree.xpath("//table"):
        width = len(table.xpath(".//thead//th"))
        assert all(len(tr.xpath("./td")) == width for tr in table.xpath(".//tbody/tr"))
    # and the raw file does not offer a link or a tag to a lesser renderer either
    assert "<img" not in md and "](" not in md and "https://" not in md


def test_md_text_is_inert_and_faithful():
    for s in HOSTILE + ("&lt;b&gt; &amp; 10.5 #1", "a\\|b"):
        out = md_text(s)
        rendered = MarkdownIt("commonmark", {"html": True}).render(out)
        assert lhtml.fromstring(rendered).text_content().strip() == " ".join(s.split())


def test_html_report_shows_the_names_as_text(report):
    page = to_html(report)
    tree = lhtml.fromstring(page)
    assert not tree.xpath("//img | //a | //*[@onerror]")
    scripts = tree.xpath("//script")
    assert all("window.__pwned" not in (s.text or "") or "\\u003c" in s.text for s in scripts)
    cells = " ".join(" ".join(td.text_content().split()) for td in tree.xpath("//td"))
    assert IMG in cells and " ".join(PIPE.split()) in cells
    assert IMG in tree.findtext(".//title")


@pytest.mark.browser
@pytest.mark.skipif(not CHROMIUM.exists(), reason="/usr/bin/chromium is absent")
def test_in_a_browser_nothing_runs_and_the_chart_has_no_links(report, tmp_path):
    sync_api = pytest.importorskip("playwright.sync_api")
    out = tmp_path / "aar.html"
    out.write_text(to_html(report), encoding="utf-8")
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM),
                              args=["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"])
        try:
            page = b.new_page()
            page.goto(out.as_uri())
            page.wait_for_selector("#aar-timeline .main-svg")
            assert page.evaluate("() => window.__pwned") is None
            assert page.locator("img").count() == 0
            hrefs = page.eval_on_selector_all("#aar-timeline a", "els => els.map(e => e.getAttribute('href') || e.getAttribute('xlink:href'))")
            assert all(h == "https://plotly.com/" for h in hrefs), hrefs     # only plotly's own logo link
            assert IMG in page.locator("#aar-timeline").inner_text() or IMG in page.locator(
                "#aar-timeline .gtitle").text_content()
        finally:
            b.close()
