"""Finding 1 through every door: a token, a dashboard user and a CLI-made account carry their scope, and
the service's rule (test_jurisdiction.py) holds behind each door. The matrix: door x (inside | outside)."""
from __future__ import annotations

import flask
import pytest
import typer

from command.alerts.outbox import Outbox
from command.api.routes import register_api
from command.cli import output
from command.cli.admin import tokens_app, users_app
from command.dashboard import runtime
from command.response.service import ResponseService
from command.security.auth import Tokens, Users
from command.store.sqlite import Store
from incidents.model import IncidentReport
from settings import load_settings
from helpers_dash import PASSWORD, body, csrf_of, sign_in

API = "/api/v1"
TIANHE = {"external_id": "F-0001", "type": "fire", "address": "广州市天河区天河路"}
FUTIAN = {"external_id": "F-0002", "type": "fire", "address": "深圳市福田区福华路"}


@pytest.fixture
def api(tmp_path):
    st = load_settings(channels=[{"name": "outbox-exercise", "kind": "outbox", "mode": "exercise"}],
                       var_dir=tmp_path / "var")
    store = Store(st.database_path)
    svc = ResponseService(store, settings=st, exercise=True, outbox=Outbox(store, st))
    app = flask.Flask("t")
    register_api(app, lambda: svc)
    tokens = Tokens(store)
    keys = {"gz": tokens.issue("gz119", scope="440100"), "th": tokens.issue("th119", scope="440106"),
            "sz": tokens.issue("sz119", scope="440300"), "gd": tokens.issue("gd119")}
    client = app.test_client()

    def call(method, path, who, **kw):
        return client.open(API + path, method=method, headers={"Authorization": f"Bearer {keys[who]}"}, **kw)
    yield call, svc
    store.close()


@pytest.mark.parametrize("who,body_,status", [("th", TIANHE, 201), ("gz", TIANHE, 201), ("gd", TIANHE, 201),
                                              ("sz", TIANHE, 403), ("th", FUTIAN, 403), ("sz", FUTIAN, 201)])
def test_api_reports_only_inside_the_tokens_scope(api, who, body_, status):
    call, svc = api
    resp = call("POST", "/incidents", who, json=body_)
    assert resp.status_code == status, resp.get_json()
    if status == 403:
        assert "outside the jurisdiction" in resp.get_json()["error"]
        assert svc.store.incident_ids() == []


def test_api_reads_and_updates_only_inside_the_scope(api):
    call, svc = api
    iid = call("POST", "/incidents", "th", json=TIANHE).get_json()["id"]
    assert call("GET", f"/incidents/{iid}", "gz").status_code == 200
    assert call("GET", f"/incidents/{iid}", "sz").status_code == 404
    assert [i["id"] for i in call("GET", "/incidents", "sz").get_json()["incidents"]] == []
    assert [i["id"] for i in call("GET", "/incidents", "gd").get_json()["incidents"]] == [iid]
    resp = call("PATCH", f"/incidents/{iid}", "sz", json={"description": "我来改"})
    assert resp.status_code in (403, 404)
    assert svc.get(iid).description != "我来改"


def _cli(app_, args, capsys):
    cli = typer.Typer()
    cli.add_typer(app_, name="x")
    code = output.run_guarded(typer.main.get_command(cli), ["x", *args])
    cap = capsys.readouterr()
    return code, cap.out, cap.err


def test_cli_adds_users_and_tokens_with_a_scope_and_refuses_a_bad_one(capsys):
    code, out, err = _cli(users_app, ["add", "wang", "--role", "officer", "--scope", "440106"], capsys)
    assert code == 0 and "scope 440106" in out
    code, out, err = _cli(users_app, ["add", "li", "--role", "officer", "--scope", "110101"], capsys)
    assert code != 0 and "scope" in err and len(err.strip().splitlines()) == 1
    code, out, err = _cli(tokens_app, ["issue", "th119", "--scope", "440106"], capsys)
    assert code == 0 and "scope 440106" in out
    code, out, _ = _cli(users_app, ["list", "--json"], capsys)
    assert '"scope": "440106"' in out
    from command import compose
    from settings import get_settings
    store = compose.open_store(get_settings())
    try:
        assert Users(store).list()[0]["scope"] == "440106"
        assert next(t for t in Tokens(store).list() if t["system"] == "th119")["scope"] == "440106"
    finally:
        store.close()


def test_dashboard_user_of_futian_cannot_report_or_see_tianhe(dash_app):
    client = dash_app.server.test_client()
    sign_in(client, "futian1")
    given = {"report-address": "广州市天河区天河路", "report-type": "fire", "report-datum": "wgs84",
             "report-submit": 1}
    resp = client.post("/_dash-update-component", json=body(dash_app, "report.on_report", "report-submit", given),
                       headers={"X-CSRF-Token": csrf_of(client)})
    assert "outside the jurisdiction" in resp.data.decode()
    assert runtime.current().store().incident_ids() == []
    svc = runtime.current().service()
    iid = svc.report(IncidentReport(type="fire", address="广州市天河区天河路"), actor="值班员").id
    resp = client.post("/_dash-update-component", json=body(dash_app, "group.on_group_action", "group-task-add",
                       {"group-task-add": 1, "incident-selected": iid, "group-task-role": "消防",
                        "group-task-text": "越界"}), headers={"X-CSRF-Token": csrf_of(client)})
    assert svc.get(iid).tasks == ()
    resp = client.post("/_dash-update-component", json=body(dash_app, "sync.poll", "app-bump",
                                                            {"app-bump": 1}), headers={"X-CSRF-Token": csrf_of(client)})
    assert iid not in resp.data.decode()
