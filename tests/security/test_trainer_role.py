"""The stored trainer role (schema 7): a user added with ``--role trainer`` signs into the dashboard and gets
the trainer's page and no response action; a trainer token runs an exercise through /api/v1/exercises and
an officer's cannot; a viewer granted in the pre-schema-7 log (command.drills.trainers) is still a trainer."""
from __future__ import annotations

import io

import flask
import pytest
import yaml

from command.api.routes import register_api
from command.drills import registry, trainers
from command.security import auth
from helpers_dash import PASSWORD, body, csrf_of, name_of, sign_in
from settings import load_settings

API = "/api/v1"
FORM = {"address": "广州市天河区天河路", "type": "gas_explosion", "serious": 3, "datum": "wgs84"}
SCENARIO = yaml.safe_dump({"format": 1, "name": "训练员演练", "start": "2026-03-14T09:00:00+08:00", "events": [
    {"at": 0, "kind": "report", "incident": "A", "address": "广州市天河区天河路", "type": "gas_explosion",
     "casualties": {"serious_injuries": 3}},
    {"at": "4m", "kind": "alert", "incident": "A", "instruction": "请远离"},
    {"at": "1h", "kind": "close", "incident": "A"}]}, allow_unicode=True)


def _ids(node, out: set[str] | None = None) -> set[str]:
    out = set() if out is None else out
    if isinstance(node, dict):
        props = node.get("props", node)
        if isinstance(props.get("id"), str):
            out.add(props["id"])
        for v in node.values():
            _ids(v, out)
    elif isinstance(node, list):
        for v in node:
            _ids(v, out)
    return out


def _actions(spec) -> set[str]:
    return {spec} if isinstance(spec, str) else set(spec.values())


def test_a_user_added_with_role_trainer_on_the_cli_gets_the_trainers_page(make_dash, capsys, monkeypatch):
    from command.cli.main import main
    from command.dashboard import runtime
    app = make_dash()
    monkeypatch.setattr("sys.stdin", io.StringIO(PASSWORD + "\n"))
    assert main(["users", "add", "trainer1", "--role", "trainer", "--password-stdin"]) == 0, capsys.readouterr()
    assert "trainer1 (trainer" in capsys.readouterr().out
    assert {u["name"]: u["role"] for u in auth.Users(runtime.current().store()).list()}["trainer1"] == "trainer"
    client = app.server.test_client()
    assert sign_in(client, "trainer1").headers["Location"] == "/"
    ids = _ids(client.get("/_dash-layout").get_json())
    assert {"trainer-root", "trainer-start", "trainer-report", "trainer-pb-source"} <= ids
    assert not {"report-submit", "warn-send", "warn-preview", "warn-approve", "group-update", "group-close"} & ids
    officer = app.server.test_client()
    sign_in(officer, "officer1")
    ids = _ids(officer.get("/_dash-layout").get_json())
    assert "report-submit" in ids and "trainer-root" not in ids


def test_a_trainer_is_refused_every_report_task_and_alert_callback_and_changes_nothing(dash_app):
    from command.dashboard import report, runtime, warn
    rt = runtime.current()
    auth.Users(rt.store()).add("trainer1", "trainer", PASSWORD)
    state = report.submit_report(rt.service(exercise=True), FORM, actor="seed")
    draft = warn.make_draft(rt, state.id, exercise=True, actor="seed", radius=800, zh="", en="")
    before = len(rt.store().events())
    given = {"incident-selected": state.id, "warn-draft": draft, "warn-pending": {"action": "send"},
             "report-address": FORM["address"], "report-type": FORM["type"], "report-datum": "wgs84",
             "group-task-role": "消防", "group-task-text": "封控", "group-deaths": 9, "warn-radius": 800}
    client = dash_app.server.test_client()
    sign_in(client, "trainer1")
    headers = {"X-CSRF-Token": csrf_of(client)}
    refused = set()
    for cb in dash_app.callback_map.values():
        spec = getattr(cb["callback"], "yzt_action", None)
        assert spec is not None, name_of(cb)
        triggers = [d["id"] for d in cb["inputs"] if not d["id"].startswith("{")]
        for trig in triggers:
            action = spec if isinstance(spec, str) else spec.get(trig, spec[None])
            if action in auth.TRAINER_ACTIONS:
                continue
            resp = client.post("/_dash-update-component", json=body(dash_app, name_of(cb), trig, dict(given, **{
                trig: 1})), headers=headers)
            text = resp.data.decode()
            assert resp.status_code == 200 and f"trainer1 (role trainer) may not {action}" in text, (name_of(cb), trig)
            refused.add(action)
    assert {"incident.report", "incident.update", "task.set", "alert.draft", "alert.send", "alert.approve",
            "incident.close"} <= refused
    assert len(rt.store().events()) == before


def test_only_a_trainer_starts_an_exercise_from_the_dashboard(dash_app):
    from command.dashboard import runtime
    from command.drills.exercise import example_scenarios
    rt = runtime.current()
    auth.Users(rt.store()).add("trainer1", "trainer", PASSWORD)
    example = next(iter(example_scenarios()))
    given = {"trainer-start": 1, "trainer-example": example, "trainer-speed": 1, "trainer-tolerance": 5}
    try:
        for name in ("officer1", "cmd1", "viewer1"):
            client = dash_app.server.test_client()
            sign_in(client, name)
            resp = client.post("/_dash-update-component", json=body(dash_app, "trainer.start", "trainer-start", given),
                               headers={"X-CSRF-Token": csrf_of(client)})
            assert "may not exercise.run" in resp.data.decode(), name
            assert registry.registry(rt.settings).all() == []
        client = dash_app.server.test_client()
        sign_in(client, "trainer1")
        resp = client.post("/_dash-update-component", json=body(dash_app, "trainer.start", "trainer-start", given),
                           headers={"X-CSRF-Token": csrf_of(client)})
        assert "yzt-alert-ok" in resp.data.decode(), resp.data[:300]
        [ex] = registry.registry(rt.settings).all()
        assert ex.trainer == "trainer1" and ex.phase == "running"
    finally:
        registry.forget(rt.settings)


class Api:
    def __init__(self, tmp_path) -> None:
        from command import compose
        self.settings = load_settings(channels=[{"name": "outbox-exercise", "kind": "outbox", "mode": "exercise"}],
                                      var_dir=tmp_path / "var")
        self.live = compose.open_app(self.settings)
        app = flask.Flask("test_trainer_role")
        register_api(app, lambda: self.live.service())
        self.client = app.test_client()
        tokens = auth.Tokens(self.live.store)
        self.trainer = tokens.issue("drillbot", role="trainer")
        self.officer = tokens.issue("gz119", role="officer")
        self.commander = tokens.issue("gz110", role="commander")
        self.viewer = tokens.issue("gz120", role="viewer")
        auth.Users(self.live.store).add("commander1", "commander", PASSWORD)

    def call(self, method: str, path: str, token: str, **kw):
        return self.client.open(API + path, method=method, headers={"Authorization": f"Bearer {token}"}, **kw)

    def close(self) -> None:
        registry.forget(self.settings)
        trainers.forget(self.settings)
        self.live.close()


@pytest.fixture
def api(tmp_path):
    a = Api(tmp_path)
    yield a
    a.close()


def test_a_trainer_token_starts_an_exercise_and_reads_its_state_and_report(api):
    r = api.call("POST", "/exercises", api.trainer, json={"scenario": SCENARIO, "speed": 1, "players": ["commander1"]})
    assert r.status_code == 201, r.get_data(as_text=True)
    st = r.get_json()
    assert st["trainer"] == "drillbot" and st["players"] == ["commander1"]
    assert st["injects"] == {"total": 1, "delivered": 1, "failed": 0}
    got = api.call("GET", f"/exercises/{st['id']}", api.trainer)
    assert got.status_code == 200 and [x["kind"] for x in got.get_json()["expected"]] == ["alert", "close"]
    rep = api.call("GET", f"/exercises/{st['id']}/report", api.trainer)
    assert rep.status_code == 200 and rep.get_json()["exercise"] == st["id"]
    assert rep.get_json()["trainer"] == "drillbot" and "A" in rep.get_json()["incidents"]
    md = api.call("GET", f"/exercises/{st['id']}/report?format=md", api.trainer)
    assert md.status_code == 200 and "训练员演练" in md.get_data(as_text=True)


@pytest.mark.parametrize("who", ["officer", "commander", "viewer"])
def test_no_other_token_starts_or_reads_an_exercise(api, who):
    token = getattr(api, who)
    r = api.call("POST", "/exercises", token, json={"scenario": SCENARIO, "speed": 1})
    assert r.status_code == 403 and f"(role {who}) may not exercise.run" in r.get_json()["error"]
    assert registry.registry(api.settings).all() == []
    ex = api.call("POST", "/exercises", api.trainer, json={"scenario": SCENARIO, "speed": 1}).get_json()
    for path in (f"/exercises/{ex['id']}", f"/exercises/{ex['id']}/report", "/exercises"):
        assert api.call("GET", path, token).status_code == 403, path
    assert api.call("POST", f"/exercises/{ex['id']}/end", token).status_code == 403
    assert registry.registry(api.settings).get(ex["id"]).phase == "running"


def test_a_trainer_token_reports_no_incident_and_reads_what_a_viewer_reads(api):
    r = api.call("POST", "/incidents", api.trainer, json={"address": "广州市天河区天河路", "type": "fire",
                                                         "external_id": "t-1"})
    assert r.status_code == 403 and "(role trainer) may not incident.report" in r.get_json()["error"]
    assert api.live.store.incident_ids() == []
    assert api.call("GET", "/incidents", api.trainer).status_code == 200


def _old_grant_log(settings, *entries: tuple[str, str]) -> None:
    """Append (event kind, system name) entries to the pre-schema-7 grant log, as the release before the
    stored role wrote it (``var_dir/exercises/trainers.db``, stream ``trainers``); this release only reads it."""
    from command.store.sqlite import Store
    path = settings.var_dir / "exercises" / "trainers.db"
    store = Store(path)
    try:
        for kind, name in entries:
            store.append_event(trainers.STREAM, kind, {"name": name, "kind": "system"},
                               at="2026-01-05T09:00:00+08:00", actor="cli", source="cli")
    finally:
        store.close()


def test_a_viewer_granted_before_schema_7_is_still_a_trainer_and_nobody_else_is_lifted(api):
    assert trainers.legacy_grants(api.settings) == set()
    assert not (api.settings.var_dir / "exercises" / "trainers.db").exists()     # reading creates nothing
    _old_grant_log(api.settings, ("TrainerGranted", "gz120"),
                   ("TrainerGranted", "gz119"))        # an officer: a grant only lifts a viewer
    r = api.call("POST", "/exercises", api.viewer, json={"scenario": SCENARIO, "speed": 1})
    assert r.status_code == 201, r.get_data(as_text=True)
    assert r.get_json()["trainer"] == "gz120"
    r = api.call("POST", "/exercises", api.officer, json={"scenario": SCENARIO, "speed": 1})
    assert r.status_code == 403
    _old_grant_log(api.settings, ("TrainerRevoked", "gz120"))
    assert api.call("GET", "/exercises", api.viewer).status_code == 403
    p = auth.Principal("gz119", "officer", kind="system")
    assert trainers.resolve(api.settings, p) is p and not trainers.is_trainer(api.settings, p)
    stored = auth.Principal("t1", "trainer")
    assert trainers.require(api.settings, stored) is stored and trainers.is_trainer(api.settings, stored)
    assert not trainers.is_trainer(api.settings, auth.Principal("root", "admin"))
    with pytest.raises(auth.PermissionDenied):
        trainers.require(api.settings, None)


def test_the_cli_issues_a_trainer_token_and_never_an_admin_one(capsys):
    from command.cli.main import main
    assert main(["tokens", "issue", "drillbot", "--role", "trainer"]) == 0, capsys.readouterr().err
    out = capsys.readouterr().out
    assert "drillbot (trainer" in out
    code = main(["tokens", "issue", "root", "--role", "admin"])
    assert code == 2 and "role 'admin' refused" in capsys.readouterr().err
