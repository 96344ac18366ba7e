"""Sign-in, sessions, CSRF and roles of the dashboard, through Flask's test client against the real app.

Walks every registered Dash callback and every Flask route: each refuses a request without a session;
every state-changing callback refuses a viewer (and changes nothing); every callback has a known action.
"""
from __future__ import annotations

import json
import re
import stat

import pytest
import yaml

import settings as settings_mod
from command.security import auth
from command.dashboard import report, runtime, security, warn
from settings import load_settings
from helpers_dash import PASSWORD, csrf_of, name_of, sign_in

FORM = {"address": "广州市天河区天河路", "type": "gas_explosion", "serious": 3, "datum": "wgs84"}

# Every Dash callback and the action it needs; a new callback without an entry here fails the walk.
EXPECTED_ACTIONS: dict[str, object] = {
    "layout.switch_language": "view", "layout.dismiss_alert": "view", "layout.render_nearby": "view",
    "sync.poll": "view",
    "report.on_report": "incident.report",
    "mapview.draw_focus": "view", "mapview.pick_point": "view",
    "mapview.fly_to_incident": "view",
    "mapview.search_places": "view", "mapview.fly_to_candidate": "view", "mapview.set_candidate": "view",
    "report.on_read_text": "view",
    "nearby.fly_to_row": "view", "cameras.render_wall": "view", "export_view.on_export": "view",
    "group.render": "view", "group.fill_update_form": "view",
    "group.on_group_action": {"group-update": "incident.update", "group-task-add": "task.set",
                              "group-task-done": "task.done", None: "incident.update"},
    "group.on_close": "incident.close",
    "warn.radius_hint": "view", "warn.poll_deliveries": "view", "warn.on_preview": "alert.draft",
    "warn.on_warn_action": {"warn-send": "alert.send", "warn-cancel": "alert.cancel",
                            "warn-confirm": "alert.send", "warn-abort": "view", None: "alert.send"},
    "warn.on_approve": "alert.approve", "warn.on_review": "view", "warn.list_awaiting": "view",
    # the trainer's page and playback: "view" at the gate, then exercise.run inside (an account with the
    # stored role "trainer"); the banner only reads the player's exercise
    "trainer.banner_tick": "view", "trainer.upload_name": "view", "trainer.start": "view",
    "trainer.refresh": "view", "trainer.control": "view", "trainer.render_report": "view",
    "trainer.download": "view", "playback.sources": "view", "playback.choose": "view", "playback.show": "view",
    "playback.play": "view", "playback.advance": "view",
}


@pytest.fixture
def dash_app(tmp_path, monkeypatch):
    import app
    cfg = tmp_path / "yzt.yaml"
    cfg.write_text(yaml.safe_dump({"channels": [{"name": "drill-box", "kind": "outbox", "mode": "exercise"}],
                                   "cap_org_code": "101"}))     # an Actual draft needs a real organisation code
    monkeypatch.setenv("YZT_CONFIG", str(cfg))
    settings_mod.reset_settings_cache()
    a = app.create_app(load_settings())
    users = auth.Users(runtime.current().store())
    for name, role in (("viewer1", "viewer"), ("officer1", "officer"), ("cmd1", "commander"), ("cmd2", "commander")):
        users.add(name, role, PASSWORD)
    yield a
    runtime.current().close()


def _action_of(cb: dict):
    return getattr(cb["callback"], "yzt_action", None)


def _outputs(key: str) -> list[dict] | dict:
    parts = key[2:-2].split("...") if key.startswith("..") else [key]
    outs = []
    for p in parts:
        ident, prop = p.rsplit(".", 1)
        outs.append({"id": json.loads(ident) if ident.startswith("{") else ident, "property": prop})
    return outs if key.startswith("..") else outs[0]


def _values(deps: list[dict], given: dict) -> list:
    out = []
    for d in deps:
        if d["id"].startswith("{"):          # pattern-matching (ALL): the matching components
            pid = json.loads(d["id"])
            out.append([dict(id=dict(pid, **k), property=d["property"], value=v) for k, v in
                        given.get(pid["type"], [])])
        else:
            out.append({"id": d["id"], "property": d["property"], "value": given.get(d["id"])})
    return out


def body(cb_key: str, cb: dict, trigger: str, given: dict) -> dict:
    changed = []
    for d in cb["inputs"]:
        if d["id"].startswith("{") and json.loads(d["id"])["type"] == trigger:
            for k, _v in given.get(trigger, []):
                changed.append(json.dumps(dict(json.loads(d["id"]), **k), separators=(",", ":"), sort_keys=True)
                               + "." + d["property"])
        elif d["id"] == trigger:
            changed.append(f"{d['id']}.{d['property']}")
    return {"output": cb_key, "outputs": _outputs(cb_key), "inputs": _values(cb["inputs"], given),
            "state": _values(cb.get("state", []), given), "changedPropIds": changed}


def _triggers(cb: dict) -> list[str]:
    return [json.loads(d["id"])["type"] if d["id"].startswith("{") else d["id"] for d in cb["inputs"]]


def _changing_triggers(cb: dict) -> list[str]:
    spec = _action_of(cb)
    if isinstance(spec, str):
        return _triggers(cb) if spec != "view" else []
    return [t for t in _triggers(cb) if spec.get(t, spec[None]) != "view"]


def test_every_callback_has_a_known_action(dash_app):
    with dash_app.server.test_client() as c:
        c.get("/login")                                 # dash sets its server up on the first request
    found = {name_of(cb): _action_of(cb) for cb in dash_app.callback_map.values()}
    missing = sorted(n for n, a in found.items() if a is None)
    assert not missing, f"callbacks without @security.guarded: {missing}"
    unknown = sorted(set(found) - set(EXPECTED_ACTIONS))
    assert not unknown, f"new callbacks: add them with their action to EXPECTED_ACTIONS: {unknown}"
    assert found == {k: v for k, v in EXPECTED_ACTIONS.items() if k in found}
    assert set(found) == set(EXPECTED_ACTIONS)
    for spec in found.values():
        for action in ([spec] if isinstance(spec, str) else spec.values()):
            assert action in auth.ACTIONS


def test_every_route_refuses_without_a_session(dash_app):
    client = dash_app.server.test_client()
    checked = 0
    for rule in dash_app.server.url_map.iter_rules():
        if rule.rule in security.PUBLIC_PATHS or rule.rule.startswith("/warnings/"):
            continue        # sign-in, and the public page of a sent warning (tests/dashboard/test_public_warning.py)
        url = re.sub(r"<(?:[^:>]+:)?([^>]+)>", "x", rule.rule)
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            resp = client.open(url, method=method)
            assert resp.status_code in (302, 401), (method, rule.rule, resp.status_code)
            if resp.status_code == 302:
                assert resp.headers["Location"].startswith("/login"), rule.rule
            checked += 1
    assert checked >= 12


def test_every_callback_refuses_without_a_session_and_without_csrf(dash_app):
    client = dash_app.server.test_client()
    client.get("/login")
    for key, cb in dash_app.callback_map.items():
        req = body(key, cb, _triggers(cb)[0], {})
        assert client.post("/_dash-update-component", json=req).status_code == 401, key
    sign_in(client, "cmd1")
    for key, cb in dash_app.callback_map.items():
        req = body(key, cb, _triggers(cb)[0], {})
        resp = client.post("/_dash-update-component", json=req)
        assert resp.status_code == 403 and b"CSRF" in resp.data, key
        resp = client.post("/_dash-update-component", json=req,
                           headers={"X-CSRF-Token": csrf_of(client), "Origin": "http://evil.example"})
        assert resp.status_code == 403, key


def test_every_state_changing_callback_refuses_a_viewer_and_changes_nothing(dash_app):
    rt = runtime.current()
    state = report.submit_report(rt.service(exercise=True), FORM, actor="seed")
    draft = warn.make_draft(rt, state.id, exercise=True, actor="seed", radius=800, zh="", en="")
    before = len(rt.store().events())
    given = {"incident-selected": state.id, "warn-draft": draft, "warn-pending": {"action": "send"},
             "report-address": FORM["address"], "report-type": FORM["type"], "report-datum": "wgs84",
             "group-task-text": "封控", "group-deaths": 9, "group-task-done": [({"id": "T1"}, 1)],
             "warn-mode": "exercise", "warn-radius": 800}
    client = dash_app.server.test_client()
    assert sign_in(client, "viewer1").status_code == 302
    headers = {"X-CSRF-Token": csrf_of(client)}
    tried = 0
    for key, cb in dash_app.callback_map.items():
        for trig in _changing_triggers(cb):
            g = dict(given, **({trig: 1} if trig != "group-task-done" else {}))
            resp = client.post("/_dash-update-component", json=body(key, cb, trig, g), headers=headers)
            assert resp.status_code == 200, (key, trig, resp.data[:200])
            text = resp.data.decode()
            assert "viewer1 (role viewer) may not" in text and "Traceback" not in text, (key, trig)
            tried += 1
    assert tried >= 9
    assert len(rt.store().events()) == before


def test_an_officer_reports_through_the_callback_as_himself(dash_app):
    client = dash_app.server.test_client()
    sign_in(client, "officer1")
    cb_key = next(k for k, cb in dash_app.callback_map.items() if name_of(cb) == "report.on_report")
    given = {"report-address": FORM["address"], "report-type": FORM["type"], "report-datum": "wgs84",
             "report-serious": 3, "report-submit": 1, "app-actor": "someone-else"}
    resp = client.post("/_dash-update-component", json=body(cb_key, dash_app.callback_map[cb_key], "report-submit",
                                                            given), headers={"X-CSRF-Token": csrf_of(client)})
    assert resp.status_code == 200 and "yzt-alert-ok" in resp.data.decode()
    events = runtime.current().store().events()
    assert events and {e.actor for e in events} == {"officer1"}
    # an officer may not send: the server says so in one line
    send_key = next(k for k, cb in dash_app.callback_map.items() if name_of(cb) == "warn.on_warn_action")
    resp = client.post("/_dash-update-component", json=body(send_key, dash_app.callback_map[send_key], "warn-send",
                                                            {"warn-send": 1, "incident-selected": events[0].incident_id}),
                       headers={"X-CSRF-Token": csrf_of(client)})
    assert "may not alert.send: needs commander" in resp.data.decode()


def test_login_page_is_chinese_first_and_refuses_bad_passwords(dash_app):
    client = dash_app.server.test_client()
    page = client.get("/login").data.decode()
    assert page.index("登录") < page.index("Sign in")
    resp = sign_in(client, "officer1", "wrong-password-123")
    assert resp.status_code == 401 and "sign-in refused" in resp.data.decode()
    assert client.get("/").status_code == 302
    # the form's own CSRF token is required
    resp = client.post("/login", data={"name": "officer1", "password": PASSWORD, "csrf": "forged"})
    assert resp.status_code == 403 and client.get("/").status_code == 302


def test_login_throttles_after_repeated_failures(dash_app):
    client = dash_app.server.test_client()
    for _ in range(auth.MAX_FAILURES):
        sign_in(client, "cmd2", "wrong-password-123")
    resp = sign_in(client, "cmd2")                  # the right password, but too many failures
    assert resp.status_code == 401
    assert client.get("/").status_code == 302


def test_signed_in_page_shows_user_role_and_hides_what_the_role_cannot_use(dash_app):
    client = dash_app.server.test_client()
    assert sign_in(client, "officer1").headers["Location"] == "/"
    assert client.get("/").status_code == 200
    layout = json.dumps(client.get("/_dash-layout").get_json(), ensure_ascii=False)
    assert '"officer1"' in layout and "值班员" in layout
    client2 = dash_app.server.test_client()
    sign_in(client2, "viewer1")
    viewer_layout = client2.get("/_dash-layout").get_json()
    hidden = _hidden_ids(viewer_layout)
    assert {"report-submit", "warn-send", "warn-preview", "warn-approve", "group-update"} <= hidden
    assert not {"report-submit", "warn-preview", "group-update"} & _hidden_ids(client.get("/_dash-layout").get_json())
    assert {"warn-send", "warn-approve"} <= _hidden_ids(client.get("/_dash-layout").get_json())


def _hidden_ids(node, hidden_parent: bool = False) -> set[str]:
    out: set[str] = set()
    if isinstance(node, list):
        for n in node:
            out |= _hidden_ids(n, hidden_parent)
        return out
    if not isinstance(node, dict) or "props" not in node:
        return out
    props = node["props"]
    hidden = hidden_parent or (props.get("style") or {}).get("display") == "none"
    if hidden and isinstance(props.get("id"), str):
        out.add(props["id"])
    for v in props.values():
        out |= _hidden_ids(v, hidden)
    return out


def test_session_cookie_flags_and_secret_key_file(dash_app, tmp_path):
    client = dash_app.server.test_client()
    resp = sign_in(client, "cmd1")
    cookies = resp.headers.getlist("Set-Cookie")
    session_cookie = next(c for c in cookies if c.startswith("yzt_session="))
    assert "HttpOnly" in session_cookie and "SameSite=Strict" in session_cookie and "Secure" not in session_cookie
    key_file = runtime.current().settings.var_dir / "secret_key"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert security.secret_key(key_file.parent) == dash_app.server.secret_key     # made once, then reused
    import app
    secure = app.create_app(runtime.current().settings, secure_cookies=True)
    assert secure.server.config["SESSION_COOKIE_SECURE"] is True


def test_disabled_user_loses_the_session_and_logout_ends_it(dash_app):
    client = dash_app.server.test_client()
    sign_in(client, "cmd1")
    assert client.get("/").status_code == 200
    resp = client.post("/logout", data={"csrf": csrf_of(client)})
    assert resp.status_code == 302 and client.get("/").status_code == 302
    sign_in(client, "officer1")
    assert client.get("/").status_code == 200
    auth.Users(runtime.current().store()).disable("officer1")
    assert client.get("/").status_code == 302


def test_next_never_leaves_the_site(dash_app):
    client = dash_app.server.test_client()
    resp = sign_in(client, "cmd1", next_url="//evil.example/x")
    assert resp.headers["Location"] == "/"


def test_two_person_levels_are_announced_in_the_composer(dash_app):
    rt = runtime.current()          # whether a draft needs a second commander: the service says (send_check)
    state = report.submit_report(rt.service(exercise=True), FORM, actor="seed")
    data = warn.make_draft(rt, state.id, exercise=True, actor="seed", radius=800, zh="", en="")
    text = json.dumps(warn.preview(dict(data, needs_approval=True)).to_plotly_json(), default=str,
                      ensure_ascii=False)
    assert "需第二名指挥员批准" in text and "second commander" in text


def test_a_second_commander_approves_the_actual_draft_through_the_button(dash_app):
    rt = runtime.current()
    cmd1 = auth.Principal(name="cmd1", role="commander", kind="user", source="127.0.0.1")
    state = report.submit_report(rt.service(), FORM, actor=cmd1)
    data = warn.make_draft(rt, state.id, exercise=False, actor=cmd1, radius=800, zh="", en="")
    client = dash_app.server.test_client()
    sign_in(client, "cmd2")
    shown = {"incident_id": state.id, "identifier": data["identifier"]}
    review = next(k for k, cb in dash_app.callback_map.items() if name_of(cb) == "warn.on_review")
    client.post("/_dash-update-component", headers={"X-CSRF-Token": csrf_of(client)},   # read it in full first
                json=body(review, dash_app.callback_map[review], "warn-approve-pick",
                          {"warn-approve-pick": data["identifier"], "incident-selected": state.id}))
    key = next(k for k, cb in dash_app.callback_map.items() if name_of(cb) == "warn.on_approve")
    resp = client.post("/_dash-update-component", headers={"X-CSRF-Token": csrf_of(client)},
                       json=body(key, dash_app.callback_map[key], "warn-approve",
                                 {"warn-approve": 1, "warn-approve-shown": shown}))
    assert data["identifier"] in resp.data.decode()
    approvals = [e for e in rt.store().events(state.id) if e.kind == "AlertApproved"]
    assert [(e.actor, e.payload["identifier"]) for e in approvals] == [("cmd2", data["identifier"])]


def test_workers_starting_together_on_a_fresh_var_dir_share_one_whole_secret_key(tmp_path):
    """gunicorn starts its workers at once: none may read another's half-written key file (which refused to
    boot), and all end up with the same key."""
    import multiprocessing
    ctx = multiprocessing.get_context("fork")
    for attempt in range(5):
        var = tmp_path / f"var{attempt}"
        with ctx.Pool(8) as pool:
            keys = pool.map(security.secret_key, [var] * 16)
        assert len(set(keys)) == 1 and len(keys[0]) == 64
        assert [p.name for p in var.iterdir()] == ["secret_key"]      # no temporary file left behind
        assert stat.S_IMODE((var / "secret_key").stat().st_mode) == 0o600
