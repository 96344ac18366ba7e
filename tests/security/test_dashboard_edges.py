"""Findings at the dashboard's edges: no request-size limit (a 20 MB task text was stored and then served by
the API), no field limits, an Origin check that ignored the scheme (and the port), a crafted path under
/_dash-component-suites answering 500 with a traceback, and pages without CSP, frame-ancestors or
Referrer-Policy."""
from __future__ import annotations

import pytest

from command.dashboard import runtime
from incidents.model import IncidentReport
from helpers_dash import body, csrf_of, sign_in


def _incident() -> str:
    return runtime.current().service().report(IncidentReport(type="fire", address="广州市天河区天河路"),
                                              actor="值班员").id


def _task_body(app, iid: str, text: str) -> dict:
    return body(app, "group.on_group_action", "group-task-add",
                {"group-task-add": 1, "incident-selected": iid, "group-task-role": "消防", "group-task-text": text})


def test_a_20_mb_body_is_refused_before_it_is_read(dash_app):
    iid = _incident()
    client = dash_app.server.test_client()
    sign_in(client, "officer1")
    resp = client.post("/_dash-update-component", json=_task_body(dash_app, iid, "火" * (20 * 1024 * 1024)),
                       headers={"X-CSRF-Token": csrf_of(client)})
    assert resp.status_code == 413
    assert "Traceback" not in resp.data.decode()
    assert runtime.current().service().get(iid).tasks == ()


@pytest.mark.parametrize("field,limit", [("group-task-text", 2000), ("group-task-role", 40)])
def test_the_apis_field_limits_hold_on_the_dashboard(dash_app, field, limit):
    iid = _incident()
    client = dash_app.server.test_client()
    sign_in(client, "officer1")
    given = {"group-task-add": 1, "incident-selected": iid, "group-task-role": "消防", "group-task-text": "出动"}
    given[field] = "长" * (limit + 1)
    resp = client.post("/_dash-update-component", json=body(dash_app, "group.on_group_action", "group-task-add",
                                                            given), headers={"X-CSRF-Token": csrf_of(client)})
    assert resp.status_code == 413 and field in resp.get_json()["error"]
    assert runtime.current().service().get(iid).tasks == ()
    given[field] = "长" * min(limit, 30)
    resp = client.post("/_dash-update-component", json=body(dash_app, "group.on_group_action", "group-task-add",
                                                            given), headers={"X-CSRF-Token": csrf_of(client)})
    assert resp.status_code == 200 and len(runtime.current().service().get(iid).tasks) == 1


def test_a_huge_description_cannot_reach_the_report(dash_app):
    client = dash_app.server.test_client()
    sign_in(client, "officer1")
    given = {"report-address": "广州市天河区天河路", "report-type": "fire", "report-datum": "wgs84",
             "report-submit": 1, "report-desc": "x" * 2001}
    resp = client.post("/_dash-update-component", json=body(dash_app, "report.on_report", "report-submit", given),
                       headers={"X-CSRF-Token": csrf_of(client)})
    assert resp.status_code == 413 and runtime.current().store().incident_ids() == []


@pytest.mark.parametrize("origin", ["https://localhost", "http://localhost:8443", "http://localhost.evil.example",
                                    "http://evil.example", "ftp://localhost", "http://localhost@evil.example"])
def test_the_origin_check_compares_scheme_host_and_port(dash_app, origin):
    iid = _incident()
    client = dash_app.server.test_client()
    sign_in(client, "officer1")
    resp = client.post("/_dash-update-component", json=_task_body(dash_app, iid, "跨站"),
                       headers={"X-CSRF-Token": csrf_of(client), "Origin": origin})
    assert resp.status_code == 403, origin
    assert runtime.current().service().get(iid).tasks == ()


def test_the_same_origin_passes_with_its_default_port_spelled_out(dash_app):
    iid = _incident()
    client = dash_app.server.test_client()
    sign_in(client, "officer1")
    for origin in ("http://localhost", "http://localhost:80", "HTTP://LOCALHOST"):
        resp = client.post("/_dash-update-component", json=_task_body(dash_app, iid, origin),
                           headers={"X-CSRF-Token": csrf_of(client), "Origin": origin})
        assert resp.status_code == 200, origin


@pytest.mark.parametrize("path", ["/_dash-component-suites/dash/no_such_file.v1_0_0m1.js",
                                  "/_dash-component-suites/no_such_package/x.js",
                                  "/_dash-component-suites/dash/..%2f..%2fsettings.py",
                                  "/_dash-component-suites/dash/deps/%00.js",
                                  "/_dash-component-suites/dash_leaflet/../../../../etc/passwd"])
def test_an_unknown_asset_path_answers_404_without_a_traceback(dash_app, path):
    client = dash_app.server.test_client()
    sign_in(client, "viewer1")
    resp = client.get(path)
    assert resp.status_code == 404, (path, resp.status_code)
    text = resp.data.decode(errors="replace")
    assert "Traceback" not in text and "File \"" not in text


def test_a_real_asset_still_loads(dash_app):
    client = dash_app.server.test_client()
    sign_in(client, "viewer1")
    page = client.get("/").data.decode()
    import re
    src = re.search(r'src="(/_dash-component-suites/[^"]+)"', page).group(1)
    assert client.get(src).status_code == 200


@pytest.mark.parametrize("path", ["/", "/login", "/_dash-layout"])
def test_every_page_has_csp_frame_ancestors_and_referrer_policy(dash_app, path):
    client = dash_app.server.test_client()
    if path != "/login":
        sign_in(client, "viewer1")
    resp = client.get(path)
    csp = resp.headers.get("Content-Security-Policy", "")
    assert "frame-ancestors 'none'" in csp or "frame-ancestors 'self'" in csp, (path, csp)
    assert "default-src" in csp and "object-src 'none'" in csp, (path, csp)
    assert resp.headers.get("Referrer-Policy") in ("no-referrer", "same-origin", "strict-origin"), path
