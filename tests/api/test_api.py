"""The dispatch API: a 119 system reports, reads and updates; bad tokens, roles and bodies get one JSON line."""
from __future__ import annotations

import json

import flask
import pytest

from command.api.routes import bp, register_api
from command.security.auth import Tokens
from command.alerts.outbox import Outbox
from command.response.service import ResponseService
from helpers_store import new_store
from settings import load_settings

API = "/api/v1"
EXERCISE = {"name": "outbox-exercise", "kind": "outbox", "mode": "exercise"}
TIANHE = {"external_id": "F20260314-0001", "type": "gas_explosion", "address": "广州市天河区天河路",
          "casualties": {"serious_injuries": 3}, "description": "商场餐饮区燃气爆炸"}


class Env:
    def __init__(self, tmp_path) -> None:
        self.settings = load_settings(channels=[EXERCISE], var_dir=tmp_path / "var")
        self.store = new_store(self.settings.database_path)
        self.svc = ResponseService(self.store, settings=self.settings, exercise=True,
                                   outbox=Outbox(self.store, self.settings))
        self.app = flask.Flask("test_api")
        register_api(self.app, lambda: self.svc)
        self.client = self.app.test_client()
        tokens = Tokens(self.store)
        self.officer = tokens.issue("gz119")
        self.viewer = tokens.issue("gz110", role="viewer")

    def call(self, method: str, path: str, token: str | None = None, **kw):
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return self.client.open(API + path, method=method, headers=headers, **kw)


@pytest.fixture
def env(tmp_path):
    e = Env(tmp_path)
    yield e
    e.store.close()


def refusal(resp, status: int, field: str | None = "unset") -> str:
    """The response is the documented JSON refusal: right status, one line, the named field."""
    assert resp.status_code == status, resp.get_data(as_text=True)
    assert resp.mimetype == "application/json"
    body = resp.get_json()
    assert set(body) == {"error", "field"} and body["error"] and "\n" not in body["error"]
    assert "Traceback" not in body["error"]
    if field != "unset":
        assert body["field"] == field, body
    return body["error"]


def test_report_read_update_regrades(env):
    r = env.call("POST", "/incidents", env.officer, json=TIANHE)
    assert r.status_code == 201, r.get_json()
    inc = r.get_json()
    assert r.headers["Location"] == f"{API}/incidents/{inc['id']}"
    assert inc["id"] == "gz119-F20260314-0001" and inc["reported_by"] == "gz119"
    assert inc["grade"]["level"] == "IV" and inc["location"]["district_adcode"] == "440106"
    assert inc["location"]["crs"] == "wgs84" and inc["nearby"]["hospital"]
    assert inc["members"] and inc["state"] == "open"

    got = env.call("GET", f"/incidents/{inc['id']}", env.viewer).get_json()
    assert got["id"] == inc["id"] and got["casualties"] == {"deaths": 0, "serious_injuries": 3, "missing": 0}

    up = env.call("PATCH", f"/incidents/{inc['id']}", env.officer, json={"casualties": {"deaths": 4}})
    assert up.status_code == 200, up.get_json()
    after = up.get_json()
    assert after["grade"]["level"] == "III" and [lv["level"] for lv in after["levels"]] == ["IV", "III"]
    assert any(m["level_of_government"] == "city" for m in after["members"])
    # the regrade is on the timeline under the system's name
    assert env.svc.get(inc["id"]).events[-1].actor in ("gz119", "system")


def test_point_in_gcj02_is_stored_in_wgs84(env):
    body = {"external_id": "P1", "type": "fire", "point": {"lon": 113.3245, "lat": 23.1375, "crs": "gcj02"}}
    inc = env.call("POST", "/incidents", env.officer, json=body).get_json()
    assert inc["location"]["crs"] == "wgs84" and inc["location"]["district_adcode"] == "440106"
    assert abs(inc["location"]["lon"] - 113.3245) > 1e-3       # the datum shift was applied


def test_list_filters_by_level_state_and_district(env):
    env.call("POST", "/incidents", env.officer, json=TIANHE)
    env.call("POST", "/incidents", env.officer, json=dict(TIANHE, external_id="F2", address="深圳市福田区",
                                                          casualties={"deaths": 4}))
    every = env.call("GET", "/incidents", env.viewer).get_json()
    assert every["count"] == 2
    level3 = env.call("GET", "/incidents?level=III", env.viewer).get_json()
    assert [i["id"] for i in level3["incidents"]] == ["gz119-F2"]
    assert env.call("GET", "/incidents?district=440106", env.viewer).get_json()["count"] == 1
    assert env.call("GET", "/incidents?state=closed", env.viewer).get_json()["count"] == 0
    refusal(env.call("GET", "/incidents?level=V", env.viewer), 400, "level")
    refusal(env.call("GET", "/incidents?colour=red", env.viewer), 400, "colour")


def test_same_external_id_is_one_incident_per_system(env):
    first = env.call("POST", "/incidents", env.officer, json=TIANHE)
    again = env.call("POST", "/incidents", env.officer, json=TIANHE)
    assert (first.status_code, again.status_code) == (201, 200)
    assert first.get_json()["id"] == again.get_json()["id"]
    assert len(env.store.incident_ids()) == 1
    other = Tokens(env.store).issue("sz120")
    third = env.call("POST", "/incidents", other, json=TIANHE)
    assert third.status_code == 201 and third.get_json()["id"] == "sz120-F20260314-0001"
    assert len(env.store.incident_ids()) == 2


def test_missing_invalid_and_revoked_tokens_are_401(env):
    r = env.call("GET", "/incidents")
    assert "Bearer" in refusal(r, 401, "Authorization") and r.headers["WWW-Authenticate"].startswith("Bearer")
    refusal(env.client.get(API + "/incidents", headers={"Authorization": f"Basic {env.officer}"}), 401)
    refusal(env.call("GET", "/incidents", "yzt_not-a-real-token"), 401, "Authorization")
    assert env.call("GET", "/health", env.officer).status_code == 200
    Tokens(env.store).revoke("gz119")
    refusal(env.call("POST", "/incidents", env.officer, json=TIANHE), 401, "Authorization")
    assert env.store.incident_ids() == []


def test_a_viewer_token_reads_but_cannot_report_or_update(env):
    iid = env.call("POST", "/incidents", env.officer, json=TIANHE).get_json()["id"]
    msg = refusal(env.call("POST", "/incidents", env.viewer, json=dict(TIANHE, external_id="V1")), 403)
    assert "viewer" in msg and "incident.report" in msg
    refusal(env.call("PATCH", f"/incidents/{iid}", env.viewer, json={"description": "x"}), 403)
    assert env.call("GET", f"/incidents/{iid}", env.viewer).status_code == 200
    health = env.call("GET", "/health", env.viewer).get_json()
    assert health == {"status": "ok", "system": "gz110", "role": "viewer", "incidents": 1}


@pytest.mark.parametrize("change, status, field", [
    ({"colour": "red"}, 422, "colour"),
    ({"point": {"lon": 113.3, "lat": 95}}, 422, "point.lat"),
    ({"point": {"lon": 113.3, "lat": 23.1, "crs": "mars"}}, 422, "point.crs"),
    ({"type": "alien_landing"}, 422, "type"),
    ({"address": "湖南省长沙市岳麓区"}, 422, "address"),
    ({"address": "广州" * 101}, 422, "address"),
    ({"description": "火" * 2001}, 422, "description"),
    ({"casualties": {"deaths": -1}}, 422, "casualties.deaths"),
    ({"casualties": {"deaths": "3"}}, 422, "casualties.deaths"),
    ({"external_id": "../etc/passwd"}, 422, "external_id"),
    ({"address": None}, 422, None),
])
def test_bad_report_bodies_are_refused_in_one_json_line(env, change, status, field):
    body = {k: v for k, v in dict(TIANHE, **change).items() if v is not None}
    refusal(env.call("POST", "/incidents", env.officer, json=body), status, field)
    assert env.store.incident_ids() == []


def test_bodies_that_are_not_json_or_too_big(env):
    refusal(env.call("POST", "/incidents", env.officer, data="{not json", content_type="application/json"), 400)
    refusal(env.call("POST", "/incidents", env.officer, data="type=fire", content_type="text/plain"), 400)
    huge = json.dumps(dict(TIANHE, description="x" * 70_000))
    refusal(env.call("POST", "/incidents", env.officer, data=huge, content_type="application/json"), 413)
    refusal(env.call("POST", "/incidents", env.officer, data="[1e999]", content_type="application/json"), 422)
    assert env.store.incident_ids() == []


def test_update_refusals(env):
    iid = env.call("POST", "/incidents", env.officer, json=TIANHE).get_json()["id"]
    refusal(env.call("PATCH", f"/incidents/{iid}", env.officer, json={}), 422)
    refusal(env.call("PATCH", f"/incidents/{iid}", env.officer, json={"address": "深圳"}), 422, "address")
    refusal(env.call("PATCH", "/incidents/nope", env.officer, json={"description": "x"}), 404, "incident_id")
    env.svc.close(iid, actor="指挥长")
    refusal(env.call("PATCH", f"/incidents/{iid}", env.officer, json={"description": "x"}), 409)


def test_unknown_routes_and_methods_answer_json_but_only_on_api_paths(env):
    refusal(env.call("GET", "/nowhere", env.officer), 404)
    refusal(env.call("GET", "/incidents/nope", env.officer), 404, "incident_id")
    r = env.call("DELETE", "/incidents", env.officer)
    refusal(r, 405)
    assert "POST" in r.headers["Allow"]
    outside = env.client.get("/not-the-api")
    assert outside.status_code == 404 and outside.mimetype == "text/html"


def test_the_dashboards_sign_in_gate_does_not_stand_in_front_of_the_api(tmp_path):
    """The dashboard's session/CSRF hook refuses everything without a cookie; the API answers bearer tokens."""
    e = Env(tmp_path)
    e.app.before_request(lambda: flask.abort(401))
    e.app.add_url_rule("/page", "page", lambda: "dashboard page")
    assert e.call("POST", "/incidents", e.officer, json=TIANHE).status_code == 201
    assert e.client.get("/page").status_code == 401                  # the dashboard keeps its own gate
    e.store.close()


def test_standalone_app_serves_the_api_over_the_settings_store(tmp_path):
    from command.api.routes import make_api_app
    st = load_settings(channels=[EXERCISE], var_dir=tmp_path / "var")
    store = new_store(st.database_path)
    token = Tokens(store).issue("fs119")
    app = make_api_app(st)
    r = app.test_client().post(API + "/incidents", json=TIANHE, headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 201 and store.incident_ids() == ["fs119-F20260314-0001"]
    refusal(app.test_client().get("/elsewhere"), 404)
    store.close()


def test_a_crash_is_a_json_500_not_a_traceback(tmp_path):
    def broken():
        raise OSError("disk unavailable")
    app = flask.Flask("broken")
    register_api(app, broken)
    r = app.test_client().get(API + "/health", headers={"Authorization": "Bearer x"})
    assert "OSError" in refusal(r, 500)


def test_warnings_are_read_with_deliveries_and_never_sent_through_the_api(env):
    iid = env.call("POST", "/incidents", env.officer, json=TIANHE).get_json()["id"]
    assert env.call("GET", f"/incidents/{iid}/alerts", env.viewer).get_json() == {"incident_id": iid, "alerts": []}
    draft = env.svc.draft_alert(iid, actor="值班员", instruction_zh="请远离商场")
    env.svc.send_alert(iid, draft.identifier, actor="指挥长", confirm=True)   # queued; the outbox delivers
    env.svc.outbox.run_until_idle(timeout_s=20)
    listed = env.call("GET", f"/incidents/{iid}/alerts", env.viewer).get_json()["alerts"]
    assert [a["identifier"] for a in listed] == [draft.identifier]
    one = env.call("GET", f"/alerts/{draft.identifier}", env.viewer).get_json()
    assert one["status"] == "Exercise" and one["in_force"] and one["cap_xml"].startswith("<?xml")
    assert [(d["channel"], d["status"]) for d in one["deliveries"]] == [("outbox-exercise", "sent")]
    assert env.call("GET", f"/incidents/{iid}", env.viewer).get_json()["alerts_sent"] == [draft.identifier]
    refusal(env.call("GET", "/alerts/44010600000000000000", env.viewer), 404, "identifier")
    refusal(env.call("POST", f"/incidents/{iid}/alerts", env.officer, json={}), 405)
    methods = {m for rule in env.app.extensions["yzt_api_app"].url_map.iter_rules() if rule.rule.startswith(API)
               for m in rule.methods - {"HEAD", "OPTIONS"}}
    assert methods == {"GET", "POST", "PATCH"}


def test_a_warning_read_back_says_which_land_it_covers(env):
    """A circle that reaches the sea is warned as its land pieces: the API gives them, not just the circle."""
    body = {"external_id": "Z1", "type": "hazmat_leak", "point": {"lon": 110.45, "lat": 21.05}}
    iid = env.call("POST", "/incidents", env.officer, json=body).get_json()["id"]
    draft = env.svc.draft_alert(iid, actor="值班员", radius_m=15000, instruction_zh="撤离")
    env.svc.send_alert(iid, draft, actor="指挥长", confirm=True)
    one = env.call("GET", f"/alerts/{draft.identifier}", env.viewer).get_json()
    assert one["circle"] == "21.05000,110.45000 15" and len(one["polygons"]) > 1
    assert len(one["polygons"]) * 2 == one["cap_xml"].count("<polygon>")


def test_every_api_route_names_its_action_and_refuses_without_the_role(env):
    from command.security.auth import ACTIONS, role_at_least
    api = env.app.extensions["yzt_api_app"]
    views = dict(api.view_functions)        # the dispatch routes and the exercises' (command.api.exercises)
    assert len([name for name in views if name.startswith(bp.name + ".")]) == 8
    for rule in api.url_map.iter_rules():
        if not rule.rule.startswith(API):
            continue
        action = views[rule.endpoint].required_action
        assert action in ACTIONS
        path = rule.rule.removeprefix(API).replace("<incident_id>", "x").replace("<identifier>", "x")
        for method in rule.methods - {"HEAD", "OPTIONS"}:
            refusal(env.call(method, path, json={}), 401)
            if not role_at_least("viewer", ACTIONS[action]):
                refusal(env.call(method, path, env.viewer, json={}), 403)


def test_openapi_document_is_served_and_lists_the_types(env):
    doc = env.call("GET", "/openapi.json", env.viewer).get_json()
    assert doc["openapi"].startswith("3.1")
    assert set(doc["paths"]) == {"/health", "/incidents", "/incidents/{incident_id}",
                                 "/incidents/{incident_id}/alerts", "/alerts/{identifier}"}
    assert "gas_explosion" in doc["components"]["schemas"]["ReportIn"]["properties"]["type"]["enum"]
    assert doc["components"]["schemas"]["ReportIn"]["additionalProperties"] is False



def test_a_refused_body_says_what_and_where_in_the_one_wording_of_every_file(env):
    """The API words a refused field as the settings, duty rules and drill scenarios do: "<field>: <why>"."""
    body = dict(TIANHE, surprise=1)
    assert refusal(env.call("POST", "/incidents", env.officer, json=body), 422, "surprise") == "surprise: unknown key"
    body = dict(TIANHE, casualties={"deaths": -1})
    msg = refusal(env.call("POST", "/incidents", env.officer, json=body), 422, "casualties.deaths")
    assert msg.startswith("casualties.deaths: ")
