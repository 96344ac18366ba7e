"""Names from data are TEXT on the map, never HTML: a layer row, a township or a road named
``<img src=x onerror=...>`` shows those characters and runs nothing (command/dashboard/assets/yzt.js).

A static page with the vendored Leaflet and the dashboard's yzt.js in a real headless chromium: each function
the GeoJSON layers call by name (point, cluster, label, road) is given a hostile name and its tooltip or icon
is opened. With the tooltip given as an HTML string (as before), the <img> is created and its onerror runs."""
from __future__ import annotations

from pathlib import Path

import pytest

CHROMIUM = Path("/usr/bin/chromium")
ROOT = Path(__file__).resolve().parents[3]
DASH = ROOT / "command" / "dashboard"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]
HOSTILE = '<img src=x onerror="window.__xss=(window.__xss||0)+1">'

pytestmark = [pytest.mark.browser,
              pytest.mark.skipif(not CHROMIUM.exists(), reason="/usr/bin/chromium is absent (run `make chromium`)")]
playwright_api = pytest.importorskip("playwright.sync_api", reason="the playwright package is not installed")

PAGE = """<!doctype html><html><head><meta charset="utf-8">
<link rel="stylesheet" href="{css}"><script src="{leaflet}"></script><script src="{yzt}"></script></head>
<body><div id="map" style="width:600px;height:400px"></div><script>
var map = L.map("map").setView([23.1, 113.3], 12);
var name = {name};
var ctx = {{hideout: {{color: "#333", radius: 5, tag: "", level: "township"}}}};
var pt = yzt.point({{type: "Feature", properties: {{n: name, id: "x1"}}}}, L.latLng(23.1, 113.3), ctx).addTo(map);
pt.openTooltip();
var lbl = yzt.label({{type: "Feature", properties: {{name: name}}}}, L.latLng(23.11, 113.31), ctx).addTo(map);
var cl = yzt.cluster({{type: "Feature", properties: {{point_count: 5, point_count_abbreviated: name}}}},
                     L.latLng(23.12, 113.32), null, ctx).addTo(map);
var road = L.polyline([[23.1, 113.3], [23.11, 113.31]]).addTo(map);
yzt.road({{type: "Feature", properties: {{name: name}}}}, road);
road.openTooltip(L.latLng(23.105, 113.305));
window.__done = true;
</script></body></html>"""


@pytest.fixture(scope="module")
def page(tmp_path_factory):
    import json
    html = PAGE.format(css=(DASH / "assets" / "yzt.css").as_uri(),
                       leaflet=(DASH / "vendor" / "leaflet" / "leaflet.js").as_uri(),
                       yzt=(DASH / "assets" / "yzt.js").as_uri(), name=json.dumps(HOSTILE))
    f = tmp_path_factory.mktemp("maptext") / "page.html"
    f.write_text(html, encoding="utf-8")
    with playwright_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        pg = b.new_page()
        pg.goto(f.as_uri())
        pg.wait_for_function("window.__done === true")
        pg.wait_for_timeout(300)          # an <img src=x> would have failed to load and fired onerror by now
        yield pg
        b.close()


def test_no_script_from_a_name_runs(page):
    assert page.evaluate("window.__xss") is None
    assert page.evaluate("document.querySelectorAll('#map img[src=x]').length") == 0


def test_the_names_are_shown_as_their_characters(page):
    tips = page.evaluate("Array.from(document.querySelectorAll('.leaflet-tooltip')).map(e => e.textContent)")
    assert HOSTILE in tips                                     # the point's and the road's tooltip
    labels = page.evaluate("Array.from(document.querySelectorAll('.yzt-lbl')).map(e => e.textContent)")
    assert labels == [HOSTILE]
    clusters = page.evaluate("Array.from(document.querySelectorAll('.yzt-cluster')).map(e => e.textContent)")
    assert clusters == [HOSTILE]
