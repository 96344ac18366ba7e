"""Live exercises over HTTP (contracts/exercise.md): a trainer's token starts, steers and reads exercises.

    POST /api/v1/exercises                {"scenario": "<YAML text>", "speed": 60, "players": ["name"], "tolerance_s": 300}
    GET  /api/v1/exercises                the exercises of this server, newest first
    GET  /api/v1/exercises/{id}           the state: clock, injects, expected actions and their status
    POST /api/v1/exercises/{id}/pause | /resume | /end
    POST /api/v1/exercises/{id}/jump      {"seconds": 600}
    POST /api/v1/exercises/{id}/injects   {"kind": "update", "incident": "A", ...}   an inject not in the file
    POST /api/v1/exercises/{id}/injects/{key}/fire                                    an inject now
    POST /api/v1/exercises/{id}/players   {"name": "..."}                            a player joining late
    POST /api/v1/exercises/{id}/notes     {"text": "..."}                            the trainer's note
    POST /api/v1/exercises/{id}/ratings   {"capability": "warning", "rating": "S", "comment": "..."}
    GET  /api/v1/exercises/{id}/report    the after-action report (JSON; ?format=md or html for the documents)

Every route needs a token whose role may ``exercise.run``: a trainer's (``yzt tokens issue SYSTEM --role
trainer``; ``command.drills.trainers.require``, which still honours a viewer token granted before the role was
stored). An officer's, a commander's or a viewer's token is refused with 403. The dispatch API's checks and
refusals (``command.api.gate``) apply: 401/403/404/405/413/422 as ``{"error", "field"}``. Registered by
``command.api.routes.create_api_app``; this module does not import routes.
"""
from __future__ import annotations

import json
import re
from typing import Any

import flask
from pydantic import BaseModel, ConfigDict, Field

from command.api import gate
from command.api import schema as S
from command.api.gate import ApiRefusal

MAX_BODY = 1_200_000                  # a scenario of up to 1 MB (the loader's limit), quoted in JSON

bp = flask.Blueprint("yzt_exercises", __name__, url_prefix=S.PREFIX + "/exercises")


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid")


class StartIn(_In):
    scenario: str = Field(min_length=1)
    speed: float = 60
    players: list[str] = []
    tolerance_s: int = 300


class JumpIn(_In):
    seconds: float = Field(gt=0)


class PlayerIn(_In):
    name: str = Field(min_length=1, max_length=64)


class NoteIn(_In):
    text: str = Field(min_length=1, max_length=2000)


class RatingIn(_In):
    capability: str
    rating: str
    comment: str = Field(min_length=1, max_length=2000)


def trainer_only(view):
    """The view runs only for a token whose role may ``exercise.run`` (a trainer's); the Principal is
    ``g.principal``."""
    import functools

    @functools.wraps(view)
    def inner(*args: Any, **kwargs: Any) -> flask.Response:
        from command.drills import trainers
        from command.security import auth
        try:
            flask.g.principal = trainers.require(gate.service().settings, gate.principal())
        except auth.PermissionDenied as e:
            raise ApiRefusal(403, str(e)) from None
        return view(*args, **kwargs)
    inner.required_action = "exercise.run"      # type: ignore[attr-defined]
    return inner


def _book():
    from command.drills.registry import registry
    return registry(gate.service().settings)


def _raw() -> bytes:
    return gate.read_json(MAX_BODY)


def _body(model: type[BaseModel]) -> Any:
    return gate.read_model(model, MAX_BODY)


def _refuse_scenario(e: Exception) -> ApiRefusal:
    """422 naming the event and field: 'scenario: event 2 (line 7): casualties.deaths: ...'."""
    msg = str(e)
    m = re.search(r"event (\d+)(?: \(line \d+\))?: ([\w.]+):", msg)
    field = f"scenario.events[{int(m.group(1)) - 1}].{m.group(2)}" if m else "scenario"
    return ApiRefusal(422, msg, field)


def _exercise(ex_id: str):
    from command.drills.exercise import ExerciseNotFound
    try:
        return _book().get(ex_id)
    except ExerciseNotFound as e:
        raise ApiRefusal(404, str(e), "id") from None


def _state(ex, status: int = 200) -> flask.Response:
    return flask.Response(json.dumps(ex.state(), ensure_ascii=False), status=status, mimetype="application/json")


def _by() -> str:
    return flask.g.principal.name


def _act(fn, *args, **kwargs) -> None:
    """Run a controller action; a refusal of the engine (ScenarioError, SessionError) is a 422 / 409."""
    from command.errors import ScenarioError, SessionError
    try:
        fn(*args, **kwargs)
    except ScenarioError as e:
        raise ApiRefusal(422, str(e)) from None
    except SessionError as e:
        raise ApiRefusal(409, str(e)) from None


@bp.post("")
@trainer_only
def start() -> flask.Response:
    from command.errors import ScenarioError
    body: StartIn = _body(StartIn)
    store = gate.service().store
    for name in body.players:
        if not isinstance(name, str) or len(name) > 64 or store.user(name) is None:
            raise ApiRefusal(422, f"players: no user {str(name)[:64]!r} (add them with yzt users add)", "players")
    try:
        ex = _book().start(body.scenario, speed=body.speed, players=body.players, trainer=_by(),
                           tolerance_s=body.tolerance_s)
    except ScenarioError as e:
        msg = str(e)
        if msg.startswith("scenario"):
            raise _refuse_scenario(e) from None
        field = next((f for f in ("speed", "players", "tolerance_s") if msg.startswith(f)), None)
        raise ApiRefusal(422, msg, field) from None
    resp = _state(ex, 201)
    resp.headers["Location"] = f"{S.PREFIX}/exercises/{ex.id}"
    return resp


@bp.get("")
@trainer_only
def list_all() -> flask.Response:
    items = [{"id": ex.id, "name": ex.name, "state": ex.state()["state"], "trainer": ex.trainer,
              "players": list(ex.players)} for ex in _book().all()]
    return flask.Response(json.dumps({"count": len(items), "exercises": items}, ensure_ascii=False),
                          mimetype="application/json")


@bp.get("/<ex_id>")
@trainer_only
def get(ex_id: str) -> flask.Response:
    return _state(_exercise(ex_id))


@bp.post("/<ex_id>/pause")
@trainer_only
def pause(ex_id: str) -> flask.Response:
    ex = _exercise(ex_id)
    _act(ex.pause, by=_by())
    return _state(ex)


@bp.post("/<ex_id>/resume")
@trainer_only
def resume(ex_id: str) -> flask.Response:
    ex = _exercise(ex_id)
    _act(ex.resume, by=_by())
    _book().wake()
    return _state(ex)


@bp.post("/<ex_id>/end")
@trainer_only
def end(ex_id: str) -> flask.Response:
    ex = _exercise(ex_id)
    _act(ex.end, by=_by())
    return _state(ex)


@bp.post("/<ex_id>/jump")
@trainer_only
def jump(ex_id: str) -> flask.Response:
    ex = _exercise(ex_id)
    body: JumpIn = _body(JumpIn)
    _act(ex.jump, body.seconds, by=_by())
    return _state(ex)


@bp.post("/<ex_id>/injects")
@trainer_only
def add_inject(ex_id: str) -> flask.Response:
    ex = _exercise(ex_id)
    try:
        spec = json.loads(_raw())
    except (ValueError, UnicodeDecodeError) as e:
        raise ApiRefusal(400, f"the body is not valid JSON ({e})") from None
    _act(ex.add_inject, spec, by=_by())
    _book().wake()
    return _state(ex, 201)


@bp.post("/<ex_id>/injects/<key>/fire")
@trainer_only
def fire(ex_id: str, key: str) -> flask.Response:
    ex = _exercise(ex_id)
    _act(ex.fire_now, key[:40], by=_by())
    return _state(ex)


@bp.post("/<ex_id>/players")
@trainer_only
def join(ex_id: str) -> flask.Response:
    ex = _exercise(ex_id)
    body: PlayerIn = _body(PlayerIn)
    if gate.service().store.user(body.name) is None:
        raise ApiRefusal(422, f"no user {body.name!r}", "name")
    if _book().playing(body.name) not in (None, ex):
        raise ApiRefusal(409, f"{body.name} already plays another exercise", "name")
    _act(ex.join, body.name, by=_by())
    return _state(ex)


@bp.post("/<ex_id>/notes")
@trainer_only
def note(ex_id: str) -> flask.Response:
    ex = _exercise(ex_id)
    body: NoteIn = _body(NoteIn)
    _act(ex.note, body.text, by=_by())
    return _state(ex, 201)


@bp.post("/<ex_id>/ratings")
@trainer_only
def rate(ex_id: str) -> flask.Response:
    ex = _exercise(ex_id)
    body: RatingIn = _body(RatingIn)
    _act(ex.rate, body.capability, body.rating, body.comment, by=_by())
    return report(ex_id)


@bp.get("/<ex_id>/report")
@trainer_only
def report(ex_id: str) -> flask.Response:
    from command.drills import evaluation
    ex = _exercise(ex_id)
    fmt = flask.request.args.get("format", "json")
    rep = ex.report()
    if fmt == "json":
        return flask.Response(json.dumps(rep, ensure_ascii=False), mimetype="application/json")
    if fmt == "md":
        return flask.Response(evaluation.to_markdown(rep), mimetype="text/markdown")
    if fmt == "html":
        resp = flask.Response(evaluation.to_html(rep), mimetype="text/html")
        resp.headers["Content-Security-Policy"] = "default-src 'none'; script-src 'unsafe-inline'; " \
                                                  "style-src 'unsafe-inline'; img-src data:"
        return resp
    raise ApiRefusal(400, f"format {fmt[:20]!r}: json, md or html", "format")


gate.answer_errors(bp)
