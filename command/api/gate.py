"""What every blueprint of the HTTP API shares: the bearer-token check, the body reader and the JSON refusals.

    from command.api import gate
    @bp.get("/health")
    @gate.requires("view")                  # 401 without a valid token, 403 when its role may not "view"
    def health(): ... gate.service() ... flask.g.principal ...
    raise gate.ApiRefusal(422, "one line", "field")     # rendered {"error", "field"} by gate.refused
    raw = gate.read_json(limit)             # the body's bytes: 413 over limit, 400 when not application/json

``command.api.routes`` (the dispatch routes, and the wiring that registers every blueprint) and
``command.api.exercises`` both import this module; it imports neither, so their dependencies point one way.
Each blueprint registers the error answers below for itself with ``answer_errors(bp)`` (a blueprint's
handlers see only its own views' errors), so every blueprint answers a database outage with the same 503.
"""
from __future__ import annotations

import functools
import logging
from typing import Any, Callable

import flask
from pydantic import BaseModel, ValidationError
from werkzeug.exceptions import HTTPException

from command.api import schema as S
from command.errors import CommandError, PermissionDenied, StoreUnavailableError

log = logging.getLogger("command.api.routes")      # the name the API's log lines have always had


class ApiRefusal(Exception):
    """A refusal with its HTTP status and the field at fault; rendered as ``{"error", "field"}``."""

    def __init__(self, status: int, message: str, field: str | None = None, *,
                 retry_after: float | None = None) -> None:
        super().__init__(message)
        self.status, self.message, self.field, self.retry_after = status, message, field, retry_after


def error(status: int, message: str, field: str | None = None) -> flask.Response:
    """The one shape of every refusal: ``{"error": "one line", "field": ...}`` (401 names the scheme)."""
    resp = flask.Response(S.ErrorOut(error=" ".join(message.split()), field=field).model_dump_json(),
                          status=status, mimetype="application/json")
    if status == 401:
        resp.headers["WWW-Authenticate"] = 'Bearer realm="yzt"'
    return resp


def json_answer(model: BaseModel, status: int = 200) -> flask.Response:
    return flask.Response(model.model_dump_json(), status=status, mimetype="application/json")


# ------------------------------------------------------------------------------------------ auth
def service():
    """The ResponseService of this API app (``create_api_app``'s factory)."""
    return flask.current_app.extensions["yzt_api"]()


def principal():
    """The system behind the bearer token, or a 401 refusal."""
    from command.security import auth
    header = flask.request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise ApiRefusal(401, "send Authorization: Bearer <token> (a dispatch system token from yzt tokens issue)",
                         "Authorization")
    try:
        return auth.Tokens(service().store).verify(token.strip(), source=client_address())
    except auth.Throttled as e:
        raise ApiRefusal(429, str(e), "Authorization", retry_after=e.wait_s) from None
    except auth.PermissionDenied as e:
        raise ApiRefusal(401, str(e), "Authorization") from None


def client_address() -> str:
    """The caller's address for throttling and the audit log: the socket's, or the one the configured
    proxy header names (settings.trusted_proxy_header, set only when a proxy in front writes it)."""
    from command.security.throttle import client_address as pick
    door = flask.current_app.extensions.get("yzt_api_door")
    return pick(flask.request.remote_addr, flask.request.headers,
                header=getattr(door, "trusted_proxy_header", None), hops=getattr(door, "trusted_proxy_hops", 1))


def requires(action: str) -> Callable:
    """Decorator: the view runs only for a token whose role may do ``action``; the Principal is ``g.principal``."""
    def wrap(view: Callable) -> Callable:
        @functools.wraps(view)
        def inner(*args: Any, **kwargs: Any) -> flask.Response:
            from command.security import auth
            p = principal()
            try:
                flask.g.principal = auth.require(p, action)
            except auth.PermissionDenied as e:
                raise ApiRefusal(403, str(e)) from None
            return view(*args, **kwargs)
        inner.required_action = action      # type: ignore[attr-defined]
        return inner
    return wrap


# ------------------------------------------------------------------------------------------ bodies
def read_json(limit: int) -> bytes:
    """The request body, at most ``limit`` bytes (413 beyond), sent as application/json (400 otherwise)."""
    req = flask.request
    if req.content_length is not None and req.content_length > limit:
        raise ApiRefusal(413, f"request body of {req.content_length} bytes is over the {limit} byte limit")
    raw = req.stream.read(limit + 1)
    if len(raw) > limit:
        raise ApiRefusal(413, f"request body is over the {limit} byte limit")
    if req.mimetype != "application/json":
        raise ApiRefusal(400, f"send the body as application/json, not {req.mimetype or 'no content type'}")
    return raw


def read_model(model: type[BaseModel], limit: int) -> Any:
    """The body read as ``read_json`` does and validated by ``model``: 400 for JSON that does not parse, 422
    naming the first field that is wrong in the one wording of every file and form (settings.field_message)."""
    from settings import field_message, field_path
    try:
        return model.model_validate_json(read_json(limit))
    except ValidationError as e:
        err = e.errors(include_url=False)[0]
        if err["type"] == "json_invalid":
            raise ApiRefusal(400, f"the body is not valid JSON ({err['msg']})") from None
        where = field_path(tuple(err["loc"])) or None
        msg = f"{where}: {field_message(err)}" if where else field_message(err)
        raise ApiRefusal(422, msg, where) from None


# ------------------------------------------------------------------------------------------ error answers
def refused(e: ApiRefusal) -> flask.Response:
    resp = error(e.status, e.message, e.field)
    if e.retry_after is not None:
        resp.headers["Retry-After"] = str(max(1, int(e.retry_after + 0.999)))
    return resp


def http(e: HTTPException) -> flask.Response:
    resp = error(e.code or 500, e.description or e.name)
    allowed = getattr(e, "valid_methods", None)
    if allowed:
        resp.headers["Allow"] = ", ".join(allowed)
    return resp


def denied(e: PermissionDenied) -> flask.Response:
    return error(403, str(e))


def unavailable(e: StoreUnavailableError) -> flask.Response:
    log.warning("dispatch API: %s %s: %s", flask.request.method, flask.request.path, e)
    resp = error(503, f"the database is unavailable; the request did not complete, try again shortly ({e})")
    resp.headers["Retry-After"] = "5"
    return resp


def command(e: CommandError) -> flask.Response:
    return error(422, str(e))


def crash(e: Exception) -> flask.Response:
    log.exception("dispatch API: %s %s failed", flask.request.method, flask.request.path)
    return error(500, f"internal error ({type(e).__name__}); it is logged, the request changed nothing it could not finish")


def answer_errors(bp: flask.Blueprint) -> None:
    """Register the API's JSON error answers on ``bp``: refusals, HTTP errors, 403, 503 + Retry-After when the
    database is away, 422 for a refused command, 500 (logged) for anything else. Most specific first."""
    for exc, handler in ((ApiRefusal, refused), (HTTPException, http), (PermissionDenied, denied),
                         (StoreUnavailableError, unavailable), (CommandError, command), (Exception, crash)):
        bp.register_error_handler(exc, handler)
