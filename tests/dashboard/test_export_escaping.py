"""The folium situation map never runs what a user or a layer file supplies: hostile names come out as text,
in the tooltip's HTML and in the JavaScript template literal folium writes it into."""
from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import pytest
import yaml

import settings as settings_mod
from command.dashboard import export, report, runtime
from settings import load_settings

FORM = {"address": "广州市天河区天河路", "type": "gas_explosion", "serious": 3, "datum": "wgs84"}
CHROMIUM = Path("/usr/bin/chromium")
HOSTILE = [
    '<img src=x onerror="window.__pwned=1">',
    "`;window.__pwned=2;`",
    "${window.__pwned=3}",
    "\\u003cimg src=x onerror=window.__pwned=4\\u003e",
    "</script><script>window.__pwned=5</script>",
]


@pytest.fixture
def hostile_state(tmp_path, monkeypatch):
    cfg = tmp_path / "yzt.yaml"
    cfg.write_text(yaml.safe_dump({"channels": [{"name": "drill-box", "kind": "outbox", "mode": "exercise"}]}))
    monkeypatch.setenv("YZT_CONFIG", str(cfg))
    settings_mod.reset_settings_cache()
    rt = runtime.configure(load_settings())
    try:
        state = report.submit_report(rt.service(), FORM, actor="值班员")
        layer, items = next((k, v) for k, v in state.nearby.items() if v)
        bad = [dict(items[i % len(items)], name=name, id=f"H{i}") for i, name in enumerate(HOSTILE)]
        location = dataclasses.replace(state.location, matched=HOSTILE[0] + HOSTILE[2])
        yield dataclasses.replace(state, nearby={layer: bad}, location=location)
    finally:
        rt.close()
        settings_mod.reset_settings_cache()


def _tooltips(page: str) -> list[str]:
    return re.findall(r"\.bindTooltip\(\s*`(.*?)`,", page, flags=re.S)


def test_hostile_names_are_text_in_every_tooltip(hostile_state):
    page = export.situation_map_html(hostile_state)
    tips = _tooltips(page)
    assert len(tips) >= len(HOSTILE) + 1
    for tip in tips:
        inner = re.sub(r"^\s*<div>|</div>\s*$", "", tip.strip())
        assert "<" not in inner and "`" not in inner and "${" not in inner and "\\" not in inner, inner
    assert "&lt;img src=x onerror=&quot;window.__pwned=1&quot;&gt;" in page
    assert "<img src=x" not in page and "<script>window.__pwned" not in page
    assert "fetch_js_assets" not in page      # the vendored Leaflet is found: the map opens offline


@pytest.mark.browser
@pytest.mark.skipif(not CHROMIUM.exists(), reason="/usr/bin/chromium is absent")
def test_in_a_browser_the_names_show_and_nothing_runs(hostile_state, tmp_path):
    sync_api = pytest.importorskip("playwright.sync_api")
    out = tmp_path / "map.html"
    out.write_text(export.situation_map_html(hostile_state), encoding="utf-8")
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM),
                              args=["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"])
        try:
            page = b.new_page()
            errors: list[str] = []
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.goto(out.as_uri())
            page.wait_for_function("() => window.L !== undefined")
            texts = page.evaluate("""() => {
                const out = [];
                for (const k of Object.keys(window)) {
                    const v = window[k];
                    if (v && v._map && v.getTooltip && v.getTooltip()) { v.openTooltip(); out.push(v.getTooltip().getElement().textContent.trim()); }
                }
                return out;
            }""")
            assert page.evaluate("() => window.__pwned") is None
            assert page.locator("img[src=x]").count() == 0
            for name in HOSTILE:
                assert any(name in t for t in texts), (name, texts)
            assert not errors, errors
        finally:
            b.close()
