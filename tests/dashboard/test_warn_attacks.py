"""The warning callbacks as an attacker and a careless commander use them: posted directly over HTTP, signed in,
with the page's CSRF token, whatever the page would have sent (issue 11, findings 1-4 through the dashboard).

On 24ff98e the send callback read the whole draft from the browser's ``warn-draft`` store (so an edited
headline, text and area left as posted), the modal opened for a send the service would refuse, a refused
send said "已提交发送 submitted", and Approve approved the latest pending draft, unseen.
"""
from __future__ import annotations

import dataclasses
import json
import re
import time

import pytest
import yaml

import settings as settings_mod
from command.dashboard import runtime, warn
from command.security import auth
from incidents.model import Casualties, IncidentReport
from settings import load_settings

PASSWORD = "warn-attack-Pw-2026-long"
CHANNELS = [{"name": "drill-box", "kind": "outbox", "mode": "exercise"},
            {"name": "live-box", "kind": "outbox", "mode": "live"}]
LEVEL_II = IncidentReport(type="gas_explosion", address="广州市天河区天河路", casualties=Casualties(deaths=12))
LEVEL_IV = IncidentReport(type="gas_explosion", address="广州市天河区天河路", casualties=Casualties(serious_injuries=3))
FORGED = {"headline_zh": "全市立即撤离", "text_zh": "全市立即撤离，详见 http://evil.example/x", "area_desc": "广东省全境"}


@pytest.fixture
def dash_app(tmp_path, monkeypatch):
    import app
    cfg = tmp_path / "yzt.yaml"
    cfg.write_text(yaml.safe_dump({"channels": CHANNELS, "cap_org_code": "101"}))
    monkeypatch.setenv("YZT_CONFIG", str(cfg))
    settings_mod.reset_settings_cache()
    a = app.create_app(load_settings())
    users = auth.Users(runtime.current().store())
    for name, role in (("officer1", "officer"), ("cmd1", "commander"), ("cmd2", "commander")):
        users.add(name, role, PASSWORD)
    yield a
    runtime.current().close()


def client_of(dash_app, name: str):
    client = dash_app.server.test_client()
    page = client.get("/login").data.decode()
    token = re.search(r'name="csrf" value="([^"]+)"', page).group(1)
    client.post("/login", data={"name": name, "password": PASSWORD, "csrf": token, "next": "/"})
    return client


def _key(dash_app, name: str) -> str:
    def unwrap(fn):
        while hasattr(fn, "__wrapped__"):
            fn = fn.__wrapped__
        return f"{fn.__module__.rsplit('.', 1)[-1]}.{fn.__name__}"
    return next(k for k, cb in dash_app.callback_map.items() if unwrap(cb["callback"]) == name)


def post(dash_app, client, name: str, trigger: str, given: dict) -> str:
    """POST the callback ``name`` as the browser would, with ``given`` as the values of its inputs/states."""
    key = _key(dash_app, name)
    cb = dash_app.callback_map[key]
    parts = key[2:-2].split("...") if key.startswith("..") else [key]
    outputs = [{"id": p.rsplit(".", 1)[0], "property": p.rsplit(".", 1)[1]} for p in parts]
    def values(deps):
        return [{"id": d["id"], "property": d["property"], "value": given.get(d["id"])} for d in deps]
    body = {"output": key, "outputs": outputs if key.startswith("..") else outputs[0],
            "inputs": values(cb["inputs"]), "state": values(cb.get("state", [])),
            "changedPropIds": [f"{trigger}.n_clicks" if trigger.startswith("warn-") and trigger != "warn-approve-pick"
                               else f"{trigger}.value"]}
    resp = client.post("/_dash-update-component", json=body,
                       headers={"X-CSRF-Token": client.get_cookie("yzt_csrf").value})
    assert resp.status_code in (200, 204), resp.data[:300]
    return resp.data.decode()


def wait_sent(rt, identifier: str) -> list[dict]:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        rows = rt.outbox().deliveries(identifier)
        if rows and all(r["status"] in ("sent", "dead") for r in rows):
            return rows
        time.sleep(0.05)
    raise AssertionError(f"not delivered: {rt.outbox().deliveries(identifier)}")


def forged_post(draft) -> dict:
    """The draft as the old page kept it, with the forger's texts: every field a store could hand back."""
    return json.loads(json.dumps(dict(dataclasses.asdict(draft), **FORGED), ensure_ascii=False))


def test_a_forged_headline_text_and_area_posted_to_the_send_callback_never_leave(dash_app):
    rt = runtime.current()
    state = rt.service(exercise=True).report(LEVEL_IV, actor="seed")
    draft = rt.service(exercise=True).draft_alert(state.id, actor="seed", radius_m=800, instruction_zh="请远离")
    cmd = client_of(dash_app, "cmd1")
    forged = forged_post(draft)
    out = post(dash_app, cmd, "warn.on_warn_action", "warn-send",
               {"warn-send": 1, "incident-selected": state.id, "warn-ident": forged, "warn-draft": forged,
                "app-bump": 0})
    assert "已提交发送" not in out and "queued" in out
    [row] = wait_sent(rt, draft.identifier)
    assert row["status"] == "sent"
    path = rt.settings.var_dir / "outbox-drill-box.jsonl"
    [line] = [json.loads(x) for x in path.read_text(encoding="utf-8").splitlines()]
    assert (line["headline_zh"], line["text_zh"], line["area_desc"]) == (draft.headline_zh, draft.text_zh,
                                                                          draft.area_desc)
    assert not any(v in path.read_text(encoding="utf-8") for v in FORGED.values())


def test_the_send_callback_takes_only_ids(dash_app):
    key = _key(dash_app, "warn.on_warn_action")
    states = {d["id"] for d in dash_app.callback_map[key]["state"]}
    assert "warn-draft" not in states and "warn-ident" in states
    assert set(warn.ids_of({"incident_id": "x", "identifier": "y", **FORGED})) == {"incident_id", "identifier"}


def test_a_careless_commander_sending_a_level_ii_alone_gets_one_line_at_once(dash_app):
    rt = runtime.current()
    state = rt.service().report(LEVEL_II, actor="seed")
    draft = rt.service().draft_alert(state.id, actor="officer1", radius_m=1000)
    cmd = client_of(dash_app, "cmd1")
    out = post(dash_app, cmd, "warn.on_warn_action", "warn-send",
               {"warn-send": 1, "incident-selected": state.id,
                "warn-ident": {"incident_id": state.id, "identifier": draft.identifier}, "app-bump": 0})
    resp = json.loads(out)["response"]
    assert resp["warn-modal"]["style"] == {"display": "none"}                  # no confirmation of a refusal
    assert "level II warning needs a second commander's approval" in json.dumps(resp["app-alert"],
                                                                                ensure_ascii=False)
    assert "已提交发送" not in out and rt.outbox().deliveries(draft.identifier) == []
    refused = [e for e in rt.store().events(state.id) if e.kind == "AlertRefused"]
    assert [(e.actor, e.payload["action"]) for e in refused] == [("cmd1", "send")]


def test_approve_needs_the_named_draft_shown_in_full_and_approves_that_one(dash_app):
    rt = runtime.current()
    state = rt.service().report(LEVEL_II, actor="seed")
    older = rt.service().draft_alert(state.id, actor="officer1", radius_m=1000, instruction_zh="请远离")
    newer = rt.service().draft_alert(state.id, actor="officer1", radius_m=3000, instruction_zh="全区撤离")
    cmd2 = client_of(dash_app, "cmd2")
    # an attacker posts Approve directly, naming a draft never shown to them: refused, nothing approved
    out = post(dash_app, cmd2, "warn.on_approve", "warn-approve",
               {"warn-approve": 1, "warn-approve-shown": {"incident_id": state.id, "identifier": newer.identifier}})
    assert "review it before approving" in out
    assert all(a.approvals == () for a in rt.service().get(state.id).alerts)
    # the review shows the whole message: what each channel sends, the area on the map, channels, population
    shown = post(dash_app, cmd2, "warn.on_review", "warn-approve-pick",
                 {"warn-approve-pick": older.identifier, "incident-selected": state.id})
    resp = json.loads(shown)["response"]
    text = json.dumps(resp["warn-approve-body"], ensure_ascii=False)
    assert older.headline_zh in text and older.text_zh in text and older.area_desc in text and "live-box" in text
    assert f"{older.population:,}" in text and resp["warn-approve"]["disabled"] is False
    assert resp["warn-draft"]["data"]["identifier"] == older.identifier             # the map draws its area
    from command.dashboard import mapview
    drawn = json.dumps([c.to_plotly_json() for c in mapview.focus_layer(rt.service().get(state.id),
                                                                         resp["warn-draft"]["data"])], default=str)
    assert "map-warn-area" in drawn
    post(dash_app, cmd2, "warn.on_approve", "warn-approve",
         {"warn-approve": 1, "warn-approve-shown": {"incident_id": state.id, "identifier": older.identifier}})
    by_id = {a.identifier: a for a in rt.service().get(state.id).alerts}
    assert by_id[older.identifier].approvals == ("cmd2",) and by_id[newer.identifier].approvals == ()
    # and the commander who approved may not also be the one who sends it
    out = post(dash_app, cmd2, "warn.on_warn_action", "warn-send",
               {"warn-send": 1, "incident-selected": state.id,
                "warn-ident": {"incident_id": state.id, "identifier": older.identifier}, "app-bump": 0})
    assert "the sender cannot approve their own warning" in out


def test_a_review_of_another_session_does_not_count(dash_app):
    rt = runtime.current()
    state = rt.service().report(LEVEL_II, actor="seed")
    draft = rt.service().draft_alert(state.id, actor="officer1", radius_m=1000)
    cmd1, cmd2 = client_of(dash_app, "cmd1"), client_of(dash_app, "cmd2")
    post(dash_app, cmd1, "warn.on_review", "warn-approve-pick",
         {"warn-approve-pick": draft.identifier, "incident-selected": state.id})
    out = post(dash_app, cmd2, "warn.on_approve", "warn-approve",
               {"warn-approve": 1, "warn-approve-shown": {"incident_id": state.id, "identifier": draft.identifier}})
    assert "review it before approving" in out and rt.service().get(state.id).alerts[0].approvals == ()


def test_an_officer_token_regrading_through_the_api_voids_the_draft(dash_app):
    rt = runtime.current()
    state = rt.service().report(LEVEL_II, actor="seed")
    draft = rt.service().draft_alert(state.id, actor="officer1", radius_m=1000)
    token = auth.Tokens(rt.store()).issue("gz119")                       # an officer-role dispatch token
    api = dash_app.server.test_client()
    r = api.patch(f"/api/v1/incidents/{state.id}", json={"casualties": {"deaths": 0}},
                  headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 200 and r.get_json()["grade"]["level"] == "IV"
    cmd = client_of(dash_app, "cmd1")
    out = post(dash_app, cmd, "warn.on_warn_action", "warn-send",
               {"warn-send": 1, "incident-selected": state.id,
                "warn-ident": {"incident_id": state.id, "identifier": draft.identifier}, "app-bump": 0})
    assert "voided by the regrade II -\\u003e IV" in out
    assert rt.outbox().deliveries(draft.identifier) == []
