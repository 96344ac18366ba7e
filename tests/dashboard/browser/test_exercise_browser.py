"""A live exercise in a real headless chromium: a trainer starts the Tianhe scenario at 60x, a player sends
the expected warning from the normal dashboard (in exercise mode), and the report shows it done in time and
the rest missed; an officer outside the exercise never sees its incident.

Same server set-up as test_dashboard_browser.py (its own YZT_VAR_DIR, one exercise channel, users added to
the store first); the trainer is a user stored with the role trainer (schema 7).
"""
from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
import yaml

from test_dashboard_browser import ARGS, CHROMIUM, PASSWORD, ROOT, _free_port

pytestmark = [pytest.mark.browser, pytest.mark.slow,
              pytest.mark.skipif(not CHROMIUM.exists(), reason="/usr/bin/chromium is absent (run `make chromium`)")]
playwright_api = pytest.importorskip("playwright.sync_api", reason="the playwright package is not installed")

USERS = {"trainer1": "trainer", "commander1": "commander", "officer1": "officer"}
SCENARIO = "tianhe-mall-gas-explosion.yaml"


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    from command.security.auth import Users
    from command.store.sqlite import Store
    if not (ROOT.parent / "shared" / "scenarios" / SCENARIO).exists() and \
            not (ROOT / "data" / "scenarios" / SCENARIO).exists():
        pytest.skip(f"the example scenario {SCENARIO} is not beside the checkout")
    tmp = tmp_path_factory.mktemp("exercise")
    cfg = tmp / "yzt.yaml"
    cfg.write_text(yaml.safe_dump({"channels": [{"name": "outbox-exercise", "kind": "outbox", "mode": "exercise"}]}))
    var = tmp / "var"
    var.mkdir()
    store = Store(var / "yzt.db")
    try:
        for name, role in USERS.items():
            Users(store).add(name, role, PASSWORD)
    finally:
        store.close()
    port = _free_port()
    env = dict(os.environ, YZT_VAR_DIR=str(var), YZT_CONFIG=str(cfg))
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
    proc.terminate()                         # gunicorn stops its workers gracefully (up to 20 s)
    try:
        proc.wait(timeout=40)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=10)


@pytest.fixture(scope="module")
def browser():
    with playwright_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        yield b
        b.close()


def _sign_in(browser, url: str, user: str, ready: str):
    ctx = browser.new_context(viewport={"width": 1366, "height": 900})
    page = ctx.new_page()
    page.goto(url)
    page.fill("#login-name", user)
    page.fill("#login-password", PASSWORD)
    page.click("#login-submit")
    playwright_api.expect(page.locator(ready)).to_be_visible(timeout=30_000)
    return ctx, page


def _choose(page, dropdown: str, option: str) -> None:
    page.click(dropdown)
    page.locator(".dash-dropdown-content .dash-options-list label").filter(has_text=option).first.click()
    page.keyboard.press("Escape")           # a multi-select stays open after choosing
    playwright_api.expect(page.locator(dropdown)).to_contain_text(option)


def test_trainer_runs_an_exercise_and_the_player_warning_is_scored(server, browser):
    expect = playwright_api.expect
    ctx_t, t = _sign_in(browser, server, "trainer1", "#trainer-root")
    _choose(t, "#trainer-example", SCENARIO)
    _choose(t, "#trainer-players", "commander1")
    t.fill("#trainer-speed", "60")
    t.fill("#trainer-tolerance", "30")          # 30 exercise minutes: 30 s of wall time at 60x to respond
    t.click("#trainer-start")
    expect(t.locator("#trainer-state")).to_have_text("running", timeout=60_000)
    expect(t.locator("#trainer-msel-table tbody tr").first).to_contain_text("e1")
    t.click("#trainer-pause")                   # the controller holds time while the player gets ready
    expect(t.locator("#trainer-state")).to_have_text("paused", timeout=20_000)

    # the player: the normal dashboard in exercise mode
    ctx_p, p = _sign_in(browser, server, "commander1", "#report-submit")
    expect(p.locator("#exercise-banner")).to_contain_text("演练 EXERCISE")
    expect(p.locator("#exercise-banner-name")).to_have_text("天河区商场燃气爆炸演练")
    expect(p.locator("#exercise-banner-state")).to_have_text("paused")
    row = p.locator("#list-items .yzt-inc-row[data-incident]").first
    expect(row).to_be_visible(timeout=20_000)
    row.click()
    p.click("#right-tabs >> text=预警 Warn", timeout=90_000)   # a worker's first layer load can be slow
    expect(p.locator("#warn-preview")).to_be_visible(timeout=30_000)
    t.click("#trainer-resume")
    expect(t.locator("#trainer-state")).to_have_text("running", timeout=20_000)
    p.click("#warn-preview")
    expect(p.locator("#warn-identifier")).to_contain_text("Exercise", timeout=20_000)
    p.click("#warn-send")
    expect(p.locator("#warn-deliv-table tbody tr").first).to_contain_text("outbox-exercise", timeout=20_000)

    # an officer outside the exercise: the live list never shows its incident, and there is no banner
    ctx_o, o = _sign_in(browser, server, "officer1", "#report-submit")
    expect(o.locator("#exercise-banner")).to_have_count(0)
    o.wait_for_timeout(1500)
    expect(o.locator("#list-items .yzt-inc-row[data-incident]")).to_have_count(0)

    # the trainer sees the warning scored, ends, and the report says done in time and the rest missed
    first = t.locator("#trainer-expected-table tbody tr").first
    expect(first).to_contain_text("done in time", timeout=20_000)
    expect(first).to_contain_text("commander1")
    t.click("#trainer-end")
    expect(t.locator("#trainer-state")).to_have_text("finished", timeout=20_000)
    rows = t.locator("#trainer-report-expected tbody tr")
    expect(rows).to_have_count(4, timeout=20_000)
    for i in (1, 2, 3):                      # the report is drawn again once the end has reached it
        expect(rows.nth(i)).to_contain_text("missed", timeout=30_000)
    expect(rows.nth(0)).to_contain_text("done in time")
    expect(rows.nth(0)).to_contain_text("commander1")
    expect(t.locator("#trainer-report-timeline")).to_be_visible()
    for c in (ctx_t, ctx_p, ctx_o):
        c.close()
