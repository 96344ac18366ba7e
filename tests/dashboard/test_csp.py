"""A Content-Security-Policy on every page of the dashboard and on the public warning page: no inline script
runs (only Dash's own, by hash), nobody may frame the pages, and the dashboard still works under it in a real
browser with no CSP violation."""
from __future__ import annotations

import base64
import hashlib
import os
import re
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
import yaml

import settings as settings_mod
from command.dashboard import headers, runtime
from command.security import auth
from settings import load_settings

PASSWORD = "browser-test-password"
ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = Path("/usr/bin/chromium")


def directives(csp: str) -> dict[str, list[str]]:
    out = {}
    for part in csp.split(";"):
        words = part.split()
        if words:
            out[words[0]] = words[1:]
    return out


@pytest.fixture
def dash_app(tmp_path, monkeypatch):
    import app
    cfg = tmp_path / "yzt.yaml"
    cfg.write_text(yaml.safe_dump({"channels": [{"name": "drill-box", "kind": "outbox", "mode": "exercise"}],
                                   "basemap_url": "https://{s}.tiles.example.org/{z}/{x}/{y}.png"}))
    monkeypatch.setenv("YZT_CONFIG", str(cfg))
    settings_mod.reset_settings_cache()
    a = app.create_app(load_settings())
    auth.Users(runtime.current().store()).add("cmd1", "commander", PASSWORD)
    yield a
    runtime.current().close()
    settings_mod.reset_settings_cache()


def sign_in(client) -> None:
    page = client.get("/login").data.decode()
    token = re.search(r'name="csrf" value="([^"]+)"', page).group(1)
    assert client.post("/login", data={"name": "cmd1", "password": PASSWORD, "csrf": token,
                                       "next": "/"}).status_code == 302


def test_every_response_carries_the_policy_without_inline_script(dash_app):
    client = dash_app.server.test_client()
    anonymous = [client.get("/login"), client.get("/"), client.get("/_dash-layout"), client.get("/nowhere")]
    sign_in(client)
    signed = [client.get("/"), client.get("/_dash-layout"), client.get("/_dash-dependencies"),
              client.get("/yzt/geo/admin/nowhere.geojson")]
    for resp in anonymous + signed:
        csp = resp.headers.get("Content-Security-Policy")
        assert csp, (resp.request.path, resp.status_code)
        d = directives(csp)
        assert "'unsafe-inline'" not in d["script-src"] and "'unsafe-eval'" not in d["script-src"]
        assert "*" not in d["script-src"] and "data:" not in d["script-src"]
        assert d["frame-ancestors"] == ["'none'"] and d["object-src"] == ["'none'"] and d["base-uri"] == ["'none'"]
        assert resp.headers["Referrer-Policy"] == "same-origin"
        assert resp.headers["X-Content-Type-Options"] == "nosniff"


def test_only_dashs_own_inline_scripts_are_allowed_by_hash(dash_app):
    client = dash_app.server.test_client()
    sign_in(client)
    resp = client.get("/")
    page = re.sub(r"<!--.*?-->", "", resp.data.decode(), flags=re.S)    # IE conditional comments never run
    allowed = set(directives(resp.headers["Content-Security-Policy"])["script-src"])
    inline = [(attrs, body) for attrs, body in re.findall(r"<script([^>]*)>(.*?)</script>", page, flags=re.S)
              if "src=" not in attrs]
    executable = [body for attrs, body in inline if "application/json" not in attrs]
    assert executable, "Dash's renderer line is inline: the test would prove nothing"
    for body in executable:
        digest = base64.b64encode(hashlib.sha256(body.encode()).digest()).decode()
        assert f"'sha256-{digest}'" in allowed, body[:80]
    # and nothing else inline is allowed: one hash per inline script Dash writes, no more
    assert len([a for a in allowed if a.startswith("'sha256-")]) == len(executable)


def test_tiles_only_from_the_configured_basemap():
    assert headers.tile_origins("https://{s}.tiles.example.org/{z}/{x}/{y}.png", None) == [
        "https://*.tiles.example.org"]
    assert headers.tile_origins("https://tiles.example.org/{z}/{x}/{y}.png", "KEY") == [
        "https://tiles.example.org", headers.TIANDITU_TILES]
    assert headers.tile_origins(None, None) == []
    d = directives(headers.policy(["sha256-x"], ["https://tiles.example.org"]))
    assert d["img-src"] == ["'self'", "data:", "blob:", "https://tiles.example.org"]
    assert d["script-src"] == ["'self'", "'sha256-x'"]


# ------------------------------------------------------------------------------------- in a real browser


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("csp")
    cfg = tmp / "yzt.yaml"
    cfg.write_text(yaml.safe_dump({"channels": [{"name": "outbox-exercise", "kind": "outbox", "mode": "exercise"}]}))
    from command.store.sqlite import Store
    (tmp / "var").mkdir()
    store = Store(tmp / "var" / "yzt.db")
    try:
        auth.Users(store).add("commander1", "commander", PASSWORD)
    finally:
        store.close()
    port = _free_port()
    env = dict(os.environ, YZT_VAR_DIR=str(tmp / "var"), YZT_CONFIG=str(cfg))
    code = f"import app; app.create_app().run(host='127.0.0.1', port={port}, debug=False, threaded=True)"
    log = open(tmp / "server.log", "w")
    proc = subprocess.Popen([sys.executable, "-c", code], cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=log)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        try:
            if httpx.get(url + "/login", timeout=1).status_code == 200:
                break
        except httpx.HTTPError:
            time.sleep(0.3)
    else:
        proc.kill()
        pytest.fail(f"dashboard did not start: {(tmp / 'server.log').read_text()[-2000:]}")
    yield url
    proc.terminate()
    proc.wait(timeout=15)


WATCH = """() => { window.__csp = []; document.addEventListener('securitypolicyviolation',
    e => window.__csp.push(e.violatedDirective + ' ' + e.blockedURI + ' ' + (e.sample || ''))); }"""


@pytest.mark.browser
@pytest.mark.slow
@pytest.mark.skipif(not CHROMIUM.exists(), reason="/usr/bin/chromium is absent")
def test_dashboard_and_public_page_work_with_no_csp_violation(server):
    sync_api = pytest.importorskip("playwright.sync_api")
    expect = sync_api.expect
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM),
                              args=["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"])
        try:
            ctx = b.new_context(viewport={"width": 1366, "height": 768})
            ctx.add_init_script(f"({WATCH})()")
            console: list[str] = []
            page = ctx.new_page()
            page.on("console", lambda m: console.append(m.text) if m.type in ("error", "warning") else None)
            page.goto(server)
            page.fill("#login-name", "commander1")
            page.fill("#login-password", PASSWORD)
            page.click("#login-submit")
            expect(page.locator("#app-user")).to_have_text("commander1", timeout=40_000)
            expect(page.locator("#report-submit")).to_be_visible(timeout=30_000)
            expect(page.locator("#map .leaflet-pane").first).to_be_attached(timeout=30_000)
            # an injection that slipped through is refused by the browser, and says so
            page.evaluate("""() => { const d = document.createElement('div');
                d.innerHTML = '<img src="data:," onerror="window.__ran = 1">'; document.body.appendChild(d); }""")
            page.wait_for_function("() => window.__csp.some(v => v.startsWith('script-src'))", timeout=10_000)
            assert page.evaluate("() => window.__ran") is None
            assert page.evaluate("() => window.__csp.length") == 1      # ours only: the page itself had none
            page.evaluate("() => { window.__csp = []; }")
            console.clear()
            # a whole round trip through callbacks: report, then an exercise warning sent
            page.fill("#report-address", "广州市天河区天河路")
            page.click("#report-type")
            page.keyboard.type("Gas explosion")
            page.keyboard.press("Enter")
            page.fill("#report-serious", "3")
            page.click("#report-submit")
            expect(page.locator(".yzt-alert-ok")).to_be_visible(timeout=120_000)
            page.click("#right-tabs >> text=预警 Warn")
            page.click("#warn-preview")
            expect(page.locator("#warn-identifier")).to_contain_text("Exercise", timeout=90_000)
            page.click("#warn-send")
            row = page.locator("#warn-deliv-table tbody tr").first
            expect(row.locator("td.sent")).to_be_visible(timeout=90_000)
            ident = re.search(r"\d{14}_\d{14}_\d", page.locator("#warn-identifier").inner_text()).group(0)
            assert page.evaluate("() => window.__csp") == []
            assert not [m for m in console if "Content Security Policy" in m], console
            # the public page of that warning: no sign-in, no violation, the area drawn
            anon = b.new_context()
            anon.add_init_script(f"({WATCH})()")
            pub = anon.new_page()
            resp = pub.goto(f"{server}/warnings/{ident}")
            assert resp.status == 200
            expect(pub.locator("h1").first).to_contain_text("演练")
            expect(pub.locator("svg circle, svg polygon").first).to_be_attached()
            assert pub.evaluate("getComputedStyle(document.body).margin") == "0px"   # the stylesheet loaded
            assert pub.evaluate("() => window.__csp") == []
            anon.close()
            ctx.close()
        finally:
            b.close()


@pytest.mark.browser
@pytest.mark.skipif(not CHROMIUM.exists(), reason="/usr/bin/chromium is absent")
def test_plotly_graphs_draw_under_the_policy_without_unsafe_eval(tmp_path):
    """The trainer's and reports' dcc.Graph: plotly.js must draw with script-src 'self' + Dash's hashes."""
    import threading

    import dash
    from dash import dcc, html
    from werkzeug.serving import make_server
    sync_api = pytest.importorskip("playwright.sync_api")
    app = dash.Dash("csp_plotly", serve_locally=True)
    app.layout = html.Div([dcc.Graph(id="g", figure={"data": [{"x": [1, 2, 3], "y": [3, 1, 2], "type": "scatter"}],
                                                     "layout": {"title": {"text": "csp"}}})])
    csp = headers.install(app)
    assert "'unsafe-eval'" not in csp
    srv = make_server("127.0.0.1", 0, app.server, threaded=True)
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    try:
        with sync_api.sync_playwright() as p:
            b = p.chromium.launch(executable_path=str(CHROMIUM),
                                  args=["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"])
            try:
                ctx = b.new_context()
                ctx.add_init_script(f"({WATCH})()")
                page = ctx.new_page()
                page.goto(f"http://127.0.0.1:{srv.server_port}/")
                sync_api.expect(page.locator("#g .main-svg .scatterlayer .trace").first).to_be_attached(timeout=60_000)
                assert page.evaluate("() => window.__csp") == []
            finally:
                b.close()
    finally:
        srv.shutdown()
