"""POST /api/v1/incidents with the call's text alone: type, casualties and place read from the words."""
from __future__ import annotations

from test_api import API, env, refusal  # noqa: F401  (the fixture and helpers of the API tests)

from command.api.schema import openapi_document


def test_text_alone_reports_a_located_graded_incident(env):
    r = env.call("POST", "/incidents", env.officer,
                 json={"external_id": "T-1", "text": "广州市天河区体育西路191号 写字楼火灾 3人死亡 5人被困"})
    assert r.status_code == 201, r.get_json()
    inc = r.get_json()
    assert inc["type"] == "fire" and inc["grade"]["level"] == "III"
    assert inc["casualties"] == {"deaths": 3, "serious_injuries": 0, "missing": 0}
    assert inc["location"]["district_adcode"] == "440106" and inc["location"]["uncertainty_m"] > 0
    assert "写字楼火灾" in inc["description"]


def test_fields_given_win_over_the_text(env):
    r = env.call("POST", "/incidents", env.officer,
                 json={"external_id": "T-2", "text": "广州市天河区体育西路 写字楼火灾 3人死亡",
                       "type": "gas_explosion", "casualties": {"deaths": 0}})
    assert r.status_code == 201, r.get_json()
    inc = r.get_json()
    assert inc["type"] == "gas_explosion" and inc["casualties"]["deaths"] == 0 and inc["grade"]["level"] == "IV"


def test_text_without_a_type_or_place_is_refused_naming_the_field(env):
    refusal(env.call("POST", "/incidents", env.officer, json={"external_id": "T-3", "text": "广州市天河区 3人受伤"}),
            422, "type")
    refusal(env.call("POST", "/incidents", env.officer, json={"external_id": "T-4", "text": "写字楼火灾"}),
            422, "address")


def test_text_the_reader_refuses_is_a_422_naming_the_text_not_an_internal_error(env, monkeypatch):
    from incidents import intake
    from incidents.errors import IncidentError

    def refuse(*a, **k):
        raise IncidentError("intake: the text is empty; give what the caller said")
    monkeypatch.setattr(intake, "read", refuse)
    msg = refusal(env.call("POST", "/incidents", env.officer, json={"external_id": "T-6", "text": "\u200b",
                                                                    "type": "fire"}), 422, "text")
    assert "text is empty" in msg


def test_a_retry_of_a_text_report_answers_the_incident_without_reading_again(env, monkeypatch):
    body = {"external_id": "T-7", "text": "广州市天河区体育西路191号 写字楼火灾 3人死亡"}
    first = env.call("POST", "/incidents", env.officer, json=body)
    assert first.status_code == 201, first.get_json()
    from incidents import intake
    monkeypatch.setattr(intake, "read", lambda *a, **k: (_ for _ in ()).throw(AssertionError("read again")))
    again = env.call("POST", "/incidents", env.officer, json=body)
    assert again.status_code == 200 and again.get_json()["id"] == first.get_json()["id"]


def test_no_type_and_no_text_is_still_refused(env):
    refusal(env.call("POST", "/incidents", env.officer, json={"external_id": "T-5", "address": "广州市天河区"}), 422)


def test_openapi_documents_text_and_uncertainty():
    doc = openapi_document()
    report = doc["components"]["schemas"]["ReportIn"]
    assert "text" in report["properties"] and "type" not in report.get("required", [])
    assert "uncertainty_m" in doc["components"]["schemas"]["LocationOut"]["properties"]


def test_nearby_around_an_uncertain_place_is_marked_approximate(env):
    r = env.call("POST", "/incidents", env.officer,
                 json={"external_id": "T-8", "type": "fire", "address": "东莞市虎门镇"})
    assert r.status_code == 201, r.get_json()
    inc = r.get_json()
    u = inc["location"]["uncertainty_m"]
    assert inc["location"]["precision"] == "township" and u > 1000
    items = [it for layer in inc["nearby"].values() for it in layer]
    assert items and all(it["approximate"] and it["distance_uncertainty_m"] == round(u) for it in items)
    assert any(it["in_uncertainty_area"] for it in inc["nearby"]["camera"])
