"""The dashboard in a real headless chromium (Debian's /usr/bin/chromium; `make chromium` installs it).

A server subprocess runs on 127.0.0.1 with a free port, its own YZT_VAR_DIR and a settings file giving
one exercise outbox channel; users are added to its store first and every browser signs in on /login. Waits use playwright's expect (auto-retrying), never sleeps as assertions.
"""
from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
import yaml

from helpers_store import dedicated_database

CHROMIUM = Path("/usr/bin/chromium")
ROOT = Path(__file__).resolve().parents[3]
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]

pytestmark = [pytest.mark.browser, pytest.mark.slow,
              pytest.mark.skipif(not CHROMIUM.exists(), reason="/usr/bin/chromium is absent (run `make chromium`)")]
playwright_api = pytest.importorskip("playwright.sync_api", reason="the playwright package is not installed")


PASSWORD = "browser-test-password"
USERS = {"officer1": "officer", "officer2": "officer", "commander1": "commander"}


def _add_users(db) -> None:
    from command.security.auth import Users
    from command.store import open_store
    if not isinstance(db, str):
        db.parent.mkdir(parents=True, exist_ok=True)
    store = open_store(db)
    try:
        for name, role in USERS.items():
            Users(store).add(name, role, PASSWORD)
    finally:
        store.close()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("dash")
    cfg = tmp / "yzt.yaml"
    cfg.write_text(yaml.safe_dump({"channels": [{"name": "outbox-exercise", "kind": "outbox", "mode": "exercise"},
                                                {"name": "outbox-live", "kind": "outbox", "mode": "live"}],
                                   "cap_org_code": "101"}))   # a deployment's code: 000 refuses an Actual draft
    database = dedicated_database("browser")       # PostgreSQL on make test's second pass, else None
    _add_users(database or tmp / "var" / "yzt.db")
    port = _free_port()
    env = dict(os.environ, YZT_VAR_DIR=str(tmp / "var"), YZT_CONFIG=str(cfg))
    env.pop("YZT_DATABASE", None)
    if database:
        env["YZT_DATABASE"] = database
    proc = subprocess.Popen([sys.executable, "-c", f"import app; app.serve(port={port})"], cwd=ROOT, env=env,
                            stdout=subprocess.DEVNULL, stderr=open(tmp / "server.log", "w"))
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(url + "/login", timeout=1).status_code == 200:
                break
        except httpx.HTTPError:
            time.sleep(0.2)
    else:
        proc.kill()
        pytest.fail(f"dashboard did not start: {(tmp / 'server.log').read_text()[-2000:]}")
    yield url
    proc.terminate()
    proc.wait(timeout=15)


@pytest.fixture(scope="module")
def browser():
    with playwright_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        yield b
        b.close()


def _open(browser, url, user: str = "officer1"):
    ctx = browser.new_context(viewport={"width": 1366, "height": 768})
    page = ctx.new_page()
    page.goto(url)                                   # redirected to the sign-in page
    page.fill("#login-name", user)
    page.fill("#login-password", PASSWORD)
    page.click("#login-submit")
    playwright_api.expect(page.locator("#app-user")).to_have_text(user, timeout=30_000)
    playwright_api.expect(page.locator("#report-submit")).to_be_visible(timeout=30_000)
    return ctx, page


def _report(page, address: str, type_text: str, serious: int) -> None:
    page.fill("#report-address", address)
    page.click("#report-type")
    page.keyboard.type(type_text)
    page.keyboard.press("Enter")
    page.fill("#report-serious", str(serious))
    page.click("#report-submit")


def test_report_shows_marker_and_badge_and_second_officer_sees_it(server, browser):
    expect = playwright_api.expect
    ctx_a, a = _open(browser, server)
    ctx_b, b = _open(browser, server, "officer2")
    before = b.locator("#list-items .yzt-inc-row[data-incident]").count()
    _report(a, "广州市天河区天河路", "Gas explosion", 3)
    expect(a.locator(".yzt-alert-ok")).to_contain_text("一般", timeout=60_000)
    expect(a.locator(".yzt-inc-marker.lvl-IV").first).to_be_visible(timeout=10_000)
    expect(a.locator("#list-items .yzt-badge.lvl-IV").first).to_contain_text("IV")
    expect(a.locator("#nearby-table-hospital tbody tr")).to_have_count(5)
    # the other officer's browser, polling the store about once a second
    expect(b.locator("#list-items .yzt-inc-row[data-incident]")).to_have_count(before + 1, timeout=5_000)
    expect(b.locator(".yzt-inc-marker.lvl-IV").first).to_be_attached(timeout=5_000)
    if os.environ.get("YZT_SCREENSHOT"):  # YZT_SCREENSHOT=1 make test refreshes the README's picture
        _screenshot(a, ROOT / "docs" / "dashboard.png")
    ctx_a.close()
    ctx_b.close()


def test_a_page_posts_one_callback_a_tick_and_the_load_bench_posts_the_same(server, browser):
    """While another officer's report arrives, a page with nothing selected posts only sync.poll (its answer
    carries the list and the markers), and bench/load.py's officers post exactly its body."""
    from bench.dash_page import poll_body
    expect = playwright_api.expect
    ctx_a, a = _open(browser, server)
    ctx_b, b = _open(browser, server, "officer2")
    rows = b.locator("#list-items .yzt-inc-row[data-incident]")
    expect(b.locator("#list-items > *").first).to_be_attached(timeout=10_000)
    before = rows.count()
    posts: list[dict] = []
    b.on("request", lambda r: posts.append(r.post_data_json) if "/_dash-update-component" in r.url else None)
    _report(a, "深圳市福田区深南大道", "Fire", 1)
    expect(rows).to_have_count(before + 1, timeout=10_000)
    n = len(posts)
    expect(b.locator(".yzt-inc-marker")).to_have_count(before + 1, timeout=5_000)
    b.wait_for_function("() => true")            # let the page's request events reach us
    ticks = [p for p in posts if p["changedPropIds"] == ["sync-interval.n_intervals"]]
    assert n and len(ticks) == len(posts), [p["output"] for p in posts if p not in ticks]
    last = ticks[-1]
    held = {s["id"]: s["value"] for s in last["state"] if "value" in s}
    assert set(held) == {"sync-seq", "list-shown", "map-shown"}
    assert poll_body(last["inputs"][0]["value"], held) == last
    ctx_a.close()
    ctx_b.close()


def _screenshot(page, path: Path) -> None:
    """docs/dashboard.png once the fly-to has landed and the clusters have redrawn (not an assertion)."""
    page.wait_for_function("() => !document.querySelector('#map .leaflet-zoom-anim')", timeout=15_000)
    page.wait_for_timeout(2500)
    page.wait_for_function("() => !document.querySelector('#map .leaflet-zoom-anim')", timeout=15_000)
    page.screenshot(path=str(path))


def test_bad_address_is_one_clear_alert(server, browser):
    ctx, page = _open(browser, server)
    _report(page, "火星基地一号", "Fire", 0)
    alert = page.locator(".yzt-alert-error")
    playwright_api.expect(alert).to_be_visible(timeout=60_000)
    assert "Traceback" not in alert.inner_text()
    ctx.close()


def test_wrong_password_stays_on_the_login_page(server, browser):
    ctx = browser.new_context()
    page = ctx.new_page()
    page.goto(server)
    page.fill("#login-name", "officer1")
    page.fill("#login-password", "not-the-password")
    page.click("#login-submit")
    playwright_api.expect(page.locator("#login-error")).to_contain_text("sign-in refused")
    assert page.locator("#report-submit").count() == 0
    ctx.close()


def test_officer_cannot_see_send_and_exercise_warning_reaches_its_channel(server, browser):
    expect = playwright_api.expect
    ctx_o, officer = _open(browser, server, "officer1")
    expect(officer.locator("#warn-send")).to_be_hidden()
    expect(officer.locator("#app-role")).to_be_attached()
    ctx_o.close()
    ctx, page = _open(browser, server, "commander1")
    _report(page, "广州市天河区天河路", "Gas explosion", 3)
    expect(page.locator(".yzt-alert-ok")).to_be_visible(timeout=60_000)
    page.click("#right-tabs >> text=预警 Warn")
    page.click("#warn-preview")
    expect(page.locator("#warn-identifier")).to_contain_text("Exercise", timeout=60_000)
    expect(page.locator("#warn-population")).to_be_visible()
    page.click("#warn-send")
    row = page.locator("#warn-deliv-table tbody tr").first
    expect(row).to_contain_text("outbox-exercise", timeout=60_000)
    expect(row.locator("td.sent")).to_be_visible(timeout=60_000)
    page.locator("#warn-mode >> text=正式 Actual").click()
    page.click("#warn-preview")
    expect(page.locator("#warn-identifier")).to_contain_text("Actual", timeout=60_000)
    page.click("#warn-send")
    expect(page.locator("#warn-modal")).to_be_visible()
    expect(page.locator("#warn-modal-title")).to_contain_text("确认发布正式预警")
    page.click("#warn-abort")
    expect(page.locator("#warn-modal")).to_be_hidden()
    ctx.close()
