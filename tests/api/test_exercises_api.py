"""/api/v1/exercises (contracts/exercise.md): a trainer's token starts an exercise from a scenario and a
speed, reads its state and its report; with no player acting every expected action is missed."""
from __future__ import annotations

from pathlib import Path

import flask
import pytest
import yaml

from command.api.routes import register_api
from command.drills import registry
from command.security.auth import Tokens, Users
from command.store.sqlite import Store
from settings import load_settings

API = "/api/v1"
EXERCISE = {"name": "outbox-exercise", "kind": "outbox", "mode": "exercise"}
SCENARIOS = Path(__file__).resolve().parents[3] / "shared" / "scenarios"


class Env:
    def __init__(self, tmp_path) -> None:
        from command import compose
        self.settings = load_settings(channels=[EXERCISE], var_dir=tmp_path / "var")
        self.live = compose.open_app(self.settings)
        self.app = flask.Flask("test_exercises")
        register_api(self.app, lambda: self.live.service())
        self.client = self.app.test_client()
        tokens = Tokens(self.live.store)
        self.trainer = tokens.issue("drillbot", role="trainer")
        self.viewer = tokens.issue("gz110", role="viewer")
        self.officer = tokens.issue("gz119")
        Users(self.live.store).add("commander1", "commander", "commander-password-1")

    def call(self, method: str, path: str, token: str | None = None, **kw):
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return self.client.open(API + path, method=method, headers=headers, **kw)

    def close(self) -> None:
        registry.forget(self.settings)
        self.live.close()


@pytest.fixture
def env(tmp_path):
    e = Env(tmp_path)
    yield e
    e.close()


def tianhe() -> str:
    path = SCENARIOS / "tianhe-mall-gas-explosion.yaml"
    if not path.exists():
        pytest.skip("../shared/scenarios is not beside the checkout")
    return path.read_text(encoding="utf-8")


def refusal(resp, status: int) -> dict:
    assert resp.status_code == status, resp.get_data(as_text=True)
    body = resp.get_json()
    assert set(body) == {"error", "field"} and "\n" not in body["error"] and "Traceback" not in body["error"]
    return body


def test_trainer_starts_reads_and_ends_and_every_expected_action_is_missed(env):
    r = env.call("POST", "/exercises", env.trainer, json={"scenario": tianhe(), "speed": 1,
                                                         "players": ["commander1"]})
    assert r.status_code == 201, r.get_data(as_text=True)
    st = r.get_json()
    assert st["state"] == "running" and st["id"] and r.headers["Location"].endswith(st["id"])
    assert st["injects"] == {"total": 2, "delivered": 1, "failed": 0}
    assert [(x["event"], x["kind"], x["incident"], x["status"]) for x in st["expected"]] == [
        (2, "alert", "A", "pending"), (4, "alert", "A", "pending"), (5, "cancel_alert", "A", "pending"),
        (6, "close", "A", "pending")]
    assert st["expected"][0]["due"] == "2026-03-14T09:04:00+08:00" and st["clock"].startswith("2026-03-14T09:0")
    ex_id = st["id"]
    assert env.call("POST", f"/exercises/{ex_id}/pause", env.trainer).get_json()["state"] == "paused"
    assert env.call("POST", f"/exercises/{ex_id}/resume", env.trainer).get_json()["state"] == "running"
    got = env.call("GET", f"/exercises/{ex_id}", env.trainer).get_json()
    assert set(got) >= {"id", "state", "clock", "injects", "expected"}
    end = env.call("POST", f"/exercises/{ex_id}/end", env.trainer).get_json()
    assert end["state"] == "finished" and all(x["status"] == "missed" for x in end["expected"])
    rep = env.call("GET", f"/exercises/{ex_id}/report", env.trainer).get_json()
    assert [x["status"] for x in rep["expected"]] == ["missed"] * 4
    assert rep["unexpected"] == [] and rep["deliveries"] == {"live": 0, "exercise": 0}
    # the live list never held the exercise's incident
    assert env.live.service().list_incidents() == []
    md = env.call("GET", f"/exercises/{ex_id}/report?format=md", env.trainer)
    assert md.mimetype == "text/markdown" and "演练总结" in md.get_data(as_text=True)
    page = env.call("GET", f"/exercises/{ex_id}/report?format=html", env.trainer)
    assert page.mimetype == "text/html" and "exercise-timeline" in page.get_data(as_text=True)


def test_controller_actions_over_http(env):
    st = env.call("POST", "/exercises", env.trainer, json={"scenario": tianhe(), "speed": 1}).get_json()
    ex_id = st["id"]
    r = env.call("POST", f"/exercises/{ex_id}/injects/e3/fire", env.trainer)
    assert r.status_code == 200 and r.get_json()["injects"]["delivered"] == 2
    r = env.call("POST", f"/exercises/{ex_id}/injects", env.trainer,
                 json={"kind": "note", "incident": "A", "text": "第二处泄漏"})
    assert r.status_code == 201 and r.get_json()["injects"]["total"] == 3
    refusal(env.call("POST", f"/exercises/{ex_id}/injects", env.trainer,
                     json={"kind": "update", "incident": "A", "casualties": {"deaths": "many"}}), 422)
    r = env.call("POST", f"/exercises/{ex_id}/jump", env.trainer, json={"seconds": 600})
    assert r.get_json()["clock"] >= "2026-03-14T09:10:00+08:00"
    r = env.call("POST", f"/exercises/{ex_id}/players", env.trainer, json={"name": "commander1"})
    assert r.get_json()["players"] == ["commander1"]
    refusal(env.call("POST", f"/exercises/{ex_id}/players", env.trainer, json={"name": "nobody"}), 422)
    assert env.call("POST", f"/exercises/{ex_id}/notes", env.trainer, json={"text": "注意"}).status_code == 201
    env.call("POST", f"/exercises/{ex_id}/end", env.trainer)
    rep = env.call("POST", f"/exercises/{ex_id}/ratings", env.trainer,
                   json={"capability": "warning", "rating": "M", "comment": "导调延误"}).get_json()
    cap = next(c for c in rep["capabilities"] if c["capability"] == "warning")
    assert cap["rating"] == "M" and cap["adjusted"] and cap["by"] == "drillbot"
    assert [n["text"] for n in rep["notes"]] == ["注意"]
    body = refusal(env.call("POST", f"/exercises/{ex_id}/pause", env.trainer), 409)
    assert "ended" in body["error"]


def test_refusals(env):
    bad = yaml.safe_load(tianhe())
    bad["events"][2]["casualties"] = {"deaths": -4}
    body = refusal(env.call("POST", "/exercises", env.trainer,
                            json={"scenario": yaml.safe_dump(bad, allow_unicode=True), "speed": 60}), 422)
    assert "event 3" in body["error"] and body["field"] == "scenario.events[2].casualties.deaths"
    assert refusal(env.call("POST", "/exercises", env.trainer, json={"scenario": tianhe(), "speed": 120}),
                   422)["field"] == "speed"
    assert refusal(env.call("POST", "/exercises", env.trainer,
                            json={"scenario": tianhe(), "players": ["ghost"]}), 422)["field"] == "players"
    refusal(env.call("POST", "/exercises", env.officer, json={"scenario": tianhe()}), 403)
    refusal(env.call("GET", "/exercises/nope", env.officer), 403)
    refusal(env.call("GET", "/exercises", env.viewer), 403)      # a viewer: not a trainer
    refusal(env.call("GET", "/exercises/nope", None), 401)
    assert refusal(env.call("GET", "/exercises/ex-none", env.trainer), 404)["field"] == "id"
    # the same wording as the dispatch routes (gate.read_model): field path, then the rule in words
    odd = refusal(env.call("POST", "/exercises", env.trainer, json={"scenario": tianhe(), "surprise": 1}), 422)
    assert odd == {"error": "surprise: unknown key", "field": "surprise"}
    assert refusal(env.call("POST", "/exercises", env.trainer, json={"speed": 60}), 422) == {
        "error": "scenario: required", "field": "scenario"}
    # a trainer's token takes no response action
    refusal(env.call("POST", "/incidents", env.trainer, json={"external_id": "X1", "type": "fire",
                                                              "address": "广州市天河区天河路"}), 403)
    assert env.call("GET", "/exercises", env.trainer).get_json()["count"] == 0


def test_a_database_outage_is_one_503_with_retry_after_on_every_blueprint(env, monkeypatch):
    """The exercise routes answer a store outage as the dispatch routes do: 503, Retry-After, one line."""
    from command.api import exercises
    from command.errors import StoreUnavailableError
    from command.response import listing

    def away(*_a, **_k):
        raise StoreUnavailableError("connection refused at 127.0.0.1:5432")

    monkeypatch.setattr(exercises, "_book", away)
    monkeypatch.setattr(listing, "page", away)
    for path in ("/exercises", "/incidents"):
        r = env.call("GET", path, env.trainer)
        body = refusal(r, 503)
        assert r.headers["Retry-After"] == "5" and "database is unavailable" in body["error"], path
