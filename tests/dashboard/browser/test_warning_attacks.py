"""The warning composer in a real headless chromium, driven as an attacker and as a careless commander would.

The attacker signs in as a commander, previews a warning, then posts the send callback from the page itself
(fetch with the page's CSRF cookie), carrying an edited headline, text and area in every store the old page
read: what the residents' channel writes is still the stored draft. The careless commander sends a level II
Actual warning alone (one clear refusal at once, no confirmation), and a second commander cannot approve until
the whole message is on the screen. Same start as test_dashboard_browser.py: a server subprocess on a free
port with its own YZT_VAR_DIR and settings, Debian's /usr/bin/chromium, users added to the store first.
"""
from __future__ import annotations

import json
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

CHROMIUM = Path("/usr/bin/chromium")
ROOT = Path(__file__).resolve().parents[3]
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]

pytestmark = [pytest.mark.browser, pytest.mark.slow,
              pytest.mark.skipif(not CHROMIUM.exists(), reason="/usr/bin/chromium is absent (run `make chromium`)")]
playwright_api = pytest.importorskip("playwright.sync_api", reason="the playwright package is not installed")

PASSWORD = "Warn-attack-Pw-2026-long!"
USERS = {"officer1": "officer", "cmd1": "commander", "cmd2": "commander"}
CHANNELS = [{"name": "drill-box", "kind": "outbox", "mode": "exercise"},
            {"name": "live-box", "kind": "outbox", "mode": "live"}]
FORGED = {"headline_zh": "全市立即撤离", "text_zh": "全市立即撤离，详见 http://evil.example/x", "area_desc": "广东省全境"}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _seed(var: Path, cfg: Path) -> dict[str, str]:
    """Users, and two incidents (level IV and level II) reported before the server starts."""
    os.environ["YZT_VAR_DIR"], os.environ["YZT_CONFIG"] = str(var), str(cfg)
    import settings as settings_mod
    settings_mod.reset_settings_cache()
    from command import compose
    from command.security.auth import Users
    from incidents.model import Casualties, IncidentReport
    app = compose.open_app(settings_mod.get_settings())
    try:
        for name, role in USERS.items():
            Users(app.store).add(name, role, PASSWORD)
        svc = app.service()
        iv = svc.report(IncidentReport(type="gas_explosion", address="广州市天河区天河路",
                                       casualties=Casualties(serious_injuries=3)), actor="seed")
        ii = svc.report(IncidentReport(type="gas_explosion", address="广州市天河区体育西路",
                                       casualties=Casualties(deaths=12)), actor="seed")
        return {"IV": iv.id, "II": ii.id}
    finally:
        app.close()


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("warn")
    cfg = tmp / "yzt.yaml"
    cfg.write_text(yaml.safe_dump({"channels": CHANNELS, "cap_org_code": "101"}))
    var = tmp / "var"
    saved = {k: os.environ.get(k) for k in ("YZT_VAR_DIR", "YZT_CONFIG")}
    try:
        ids = _seed(var, cfg)
    finally:
        for k, v in saved.items():
            os.environ.pop(k, None) if v is None else os.environ.__setitem__(k, v)
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
    yield {"url": url, "var": var, "ids": ids}
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


def _open(browser, url: str, user: str):
    ctx = browser.new_context(viewport={"width": 1366, "height": 900})
    page = ctx.new_page()
    page.goto(url)
    page.fill("#login-name", user)
    page.fill("#login-password", PASSWORD)
    page.click("#login-submit")
    playwright_api.expect(page.locator("#app-user")).to_have_text(user, timeout=30_000)
    return ctx, page


def _warn_tab(page, incident_id: str) -> None:
    expect = playwright_api.expect
    row = page.locator(f'#list-items .yzt-inc-row[data-incident="{incident_id}"]')
    expect(row).to_be_visible(timeout=30_000)
    for _ in range(5):      # the list's click callback may not be wired yet on a page that just loaded
        row.click()
        try:
            expect(row).to_have_class(re.compile(r"\bselected\b"), timeout=4_000)
            break
        except AssertionError:
            continue
    expect(row).to_have_class(re.compile(r"\bselected\b"))
    page.get_by_text("预警 Warn", exact=True).click()
    expect(page.locator("#warn-preview")).to_be_visible(timeout=10_000)


def _preview(page, *, actual: bool) -> str:
    expect = playwright_api.expect
    if actual:
        page.get_by_text("正式 Actual", exact=True).click()
    page.click("#warn-preview")
    refusal = page.locator("#app-alert .yzt-alert-error")
    expect(page.locator("#warn-identifier").or_(refusal).first).to_be_visible(timeout=30_000)
    assert refusal.count() == 0, refusal.inner_text()
    text = page.locator("#warn-identifier").inner_text()
    return text.split("·")[1].strip().split(" ")[0]


# the attacker's tool: the page's own send callback, posted with whatever the attacker wants in its stores
_POST_SEND = """async ([incidentId, identifier, forged]) => {
  const deps = await (await fetch('/_dash-dependencies')).json();
  const cb = deps.find(d => d.output.includes('warn-modal.style'));
  const csrf = document.cookie.split('; ').find(c => c.startsWith('yzt_csrf=')).split('=')[1];
  const fake = Object.assign({incident_id: incidentId, identifier: identifier}, forged);
  const value = {'warn-send': 1, 'incident-selected': incidentId, 'warn-ident': fake, 'warn-draft': fake,
                 'warn-pending': null, 'app-bump': 0, 'app-actor': null};
  const dep = d => ({id: d.id, property: d.property, value: value[d.id] === undefined ? null : value[d.id]});
  const parts = cb.output.slice(2, -2).split('...').map(p => {
    const i = p.lastIndexOf('.'); return {id: p.slice(0, i), property: p.slice(i + 1)}; });
  const r = await fetch('/_dash-update-component', {method: 'POST',
    headers: {'Content-Type': 'application/json', 'X-CSRF-Token': decodeURIComponent(csrf)},
    body: JSON.stringify({output: cb.output, outputs: parts, inputs: cb.inputs.map(dep),
                          state: cb.state.map(dep), changedPropIds: ['warn-send.n_clicks']})});
  return [r.status, await r.text()];
}"""


def _lines(var: Path, channel: str) -> list[dict]:
    path = var / f"outbox-{channel}.jsonl"
    return [json.loads(x) for x in path.read_text(encoding="utf-8").splitlines()] if path.exists() else []


def test_an_attacker_posting_the_send_callback_with_forged_content_sends_the_stored_draft(server, browser):
    ctx, page = _open(browser, server["url"], "cmd1")
    iid = server["ids"]["IV"]
    _warn_tab(page, iid)
    identifier = _preview(page, actual=False)
    stored_headline = page.locator("#warn-sent-headline").inner_text()
    stored_area = page.locator("#warn-sent-area").inner_text()
    status, body = page.evaluate(_POST_SEND, [iid, identifier, FORGED])
    assert status == 200 and "queued" in body and "已提交发送" not in body
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and not _lines(server["var"], "drill-box"):
        time.sleep(0.2)
    [line] = [x for x in _lines(server["var"], "drill-box") if x["identifier"] == identifier]
    assert line["headline_zh"] == stored_headline and line["area_desc"] == stored_area
    assert not any(v in json.dumps(line, ensure_ascii=False) for v in FORGED.values())
    # the page shows the delivery from the store, as sent
    playwright_api.expect(page.locator(f'#warn-deliv-table tr[data-identifier="{identifier}"] td.sent')) \
        .to_be_visible(timeout=30_000)
    ctx.close()


def test_a_careless_commander_is_told_at_once_and_the_approver_reads_it_all_first(server, browser):
    expect = playwright_api.expect
    iid = server["ids"]["II"]
    ctx_o, officer = _open(browser, server["url"], "officer1")
    _warn_tab(officer, iid)
    identifier = _preview(officer, actual=True)
    expect(officer.locator("#warn-two-person")).to_be_visible()
    ctx_o.close()

    ctx_a, cmd1 = _open(browser, server["url"], "cmd1")
    _warn_tab(cmd1, iid)
    identifier_a = _preview(cmd1, actual=True)         # the commander's own draft of the same warning
    cmd1.click("#warn-send")
    alert = cmd1.locator("#app-alert .yzt-alert-error .yzt-alert-text")
    expect(alert).to_contain_text("level II warning needs a second commander's approval", timeout=10_000)
    assert "已提交发送" not in cmd1.content()
    expect(cmd1.locator("#warn-modal")).to_be_hidden()

    ctx_b, cmd2 = _open(browser, server["url"], "cmd2")
    _warn_tab(cmd2, iid)
    expect(cmd2.locator("#warn-approve")).to_be_disabled()           # nothing shown: nothing to approve
    cmd2.click("#warn-approve-pick")
    cmd2.get_by_text(identifier_a, exact=False).first.click()        # the commander's draft, by name
    body = cmd2.locator("#warn-approve-body")
    expect(body.locator("#warn-sent-headline")).to_be_visible(timeout=15_000)
    expect(body).to_contain_text("live-box")
    expect(body.locator("#warn-population")).to_be_visible()
    expect(cmd2.locator("#warn-approve")).to_be_enabled()
    cmd2.click("#warn-approve")
    expect(cmd2.locator("#app-alert .yzt-alert-ok")).to_contain_text(f"approved {identifier_a}", timeout=10_000)
    ctx_b.close()

    # cmd1's own preview is still the one on its page: now it goes, after the confirmation
    cmd1.click("#warn-send")
    expect(cmd1.locator("#warn-modal")).to_be_visible(timeout=10_000)
    cmd1.click("#warn-confirm")
    expect(cmd1.locator("#app-alert .yzt-alert-ok")).to_contain_text("queued", timeout=10_000)
    expect(cmd1.locator(f'#warn-deliv-table tr[data-identifier="{identifier_a}"] td.sent')) \
        .to_be_visible(timeout=30_000)
    lines = [x for x in _lines(server["var"], "live-box") if x["identifier"] in (identifier, identifier_a)]
    assert [x["identifier"] for x in lines] == [identifier_a]      # the officer's unapproved draft never left
    ctx_a.close()
