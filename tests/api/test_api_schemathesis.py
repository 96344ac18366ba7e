"""The dispatch API against its own OpenAPI document (schemathesis over WSGI): whatever a client sends, no
response is a 5xx, and every response (status, content type, body) is one the document describes.

Generated requests carry a valid officer token; an incident with a sent Exercise warning exists, and the
real ids are also fed through the same checks so the 200 bodies are held to the document too.
"""
from __future__ import annotations

import flask
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (content_type_conformance, response_schema_conformance,
                                               status_code_conformance)

from command.api.routes import register_api
from command.security.auth import Tokens
from command.alerts.outbox import Outbox
from command.response.service import ResponseService
from helpers_store import new_store
from settings import load_settings

CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]
EXERCISE = {"name": "outbox-exercise", "kind": "outbox", "mode": "exercise"}


class Api:
    def __init__(self, tmp_path) -> None:
        st = load_settings(channels=[EXERCISE], var_dir=tmp_path / "var")
        self.store = new_store(st.database_path)
        self.svc = ResponseService(self.store, settings=st, exercise=True, outbox=Outbox(self.store, st))
        self.app = flask.Flask("test_api_schemathesis")
        register_api(self.app, lambda: self.svc)
        self.headers = {"Authorization": f"Bearer {Tokens(self.store).issue('gz119')}"}
        r = self.app.test_client().post("/api/v1/incidents", headers=self.headers, json={
            "external_id": "F1", "type": "fire", "address": "广州市天河区天河路", "casualties": {"deaths": 1}})
        assert r.status_code == 201, r.get_json()
        self.incident_id = r.get_json()["id"]
        draft = self.svc.draft_alert(self.incident_id, actor="值班员", instruction_zh="请远离")
        self.svc.send_alert(self.incident_id, draft, actor="指挥长", confirm=True)
        self.identifier = draft.identifier


@pytest.fixture
def api(tmp_path):
    a = Api(tmp_path)
    yield a
    a.store.close()


@pytest.mark.slow
def test_no_5xx_and_every_response_conforms(api):
    doc = schemathesis.openapi.from_wsgi("/api/v1/openapi.json", api.app, headers=api.headers)
    operations = [r.ok() for r in doc.get_all_operations()]
    assert len(operations) == 7
    for op in operations:
        @given(case=op.as_strategy())
        @settings(max_examples=25, deadline=None, database=None, suppress_health_check=list(HealthCheck))
        def run(case) -> None:
            case.call_and_validate(headers=api.headers, checks=CHECKS)
        run()


def test_real_incident_and_warning_responses_conform(api):
    doc = schemathesis.openapi.from_wsgi("/api/v1/openapi.json", api.app, headers=api.headers)
    calls = [("/incidents", "GET", {}), ("/health", "GET", {}),
             ("/incidents/{incident_id}", "GET", {"incident_id": api.incident_id}),
             ("/incidents/{incident_id}/alerts", "GET", {"incident_id": api.incident_id}),
             ("/alerts/{identifier}", "GET", {"identifier": api.identifier})]
    for path, method, params in calls:
        case = doc[path][method].Case(path_parameters=params)
        resp = case.call_and_validate(headers=api.headers, checks=CHECKS)
        assert resp.status_code == 200, (path, resp.text)
    update = doc["/incidents/{incident_id}"]["PATCH"].Case(path_parameters={"incident_id": api.incident_id},
                                                           body={"casualties": {"deaths": 4}})
    resp = update.call_and_validate(headers=api.headers, checks=CHECKS)
    assert resp.status_code == 200 and resp.json()["grade"]["level"] == "III"
    again = doc["/incidents"]["POST"].Case(body={"external_id": "F1", "type": "fire", "address": "广州市天河区天河路"})
    resp = again.call_and_validate(headers=api.headers, checks=CHECKS)
    assert resp.status_code == 200 and resp.json()["id"] == api.incident_id
