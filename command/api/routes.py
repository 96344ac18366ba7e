"""The HTTP API of the 110/119/120 dispatch systems: a Flask blueprint under ``/api/v1``.

    from command.api.routes import register_api, make_api_app
    register_api(server, service_factory)      # app.py: server is the dashboard's Flask, factory -> ResponseService
    app = make_api_app()                       # a standalone Flask app over settings' store (tests, tools)

``register_api`` puts the API in front of the dashboard's WSGI callable, so the dashboard's sign-in and CSRF
hooks never see API requests and the dashboard never sees API 404s; see its docstring.

Routes (JSON; the OpenAPI 3.1 document at ``GET /api/v1/openapi.json`` is generated from
``command.api.schema``): ``POST /incidents`` (report; idempotent on the system's ``external_id``: 201 the
first time, 200 with the same incident after), ``PATCH /incidents/{id}`` (update, regrade),
``GET /incidents`` (filters level/state/district, search q, paged: limit + cursor), ``GET /incidents/{id}``, ``GET /incidents/{id}/alerts``,
``GET /alerts/{identifier}`` (with its deliveries), ``GET /health``. There is no route that sends a warning.

Every request carries ``Authorization: Bearer <token>``; ``command.security.auth.Tokens(store).verify`` turns it into
a system Principal (401 otherwise) and every view checks ``command.security.auth.require(principal, action)`` (403);
each view function carries its action as ``view.required_action``. Bodies are read at most 64 KB (413) and
validated strictly with pydantic (422); every refusal is ``{"error": "one line", "field": ...}``, never HTML
or a traceback (404/405/500 on ``/api/`` paths included). The token check, the body reader and the refusals
are ``command.api.gate``'s, shared with the exercises' blueprint (``command.api.exercises``), which this
module registers; neither of those imports this one.
"""
from __future__ import annotations

import hashlib
import re
import threading
from typing import Any, Callable

import flask
from pydantic import BaseModel

from command.api import exercises, gate
from command.api import schema as S
from command.api.gate import ApiRefusal, requires
from command.api.gate import json_answer as _json
from command.api.gate import service as _service
from command.errors import IncidentExistsError, SessionError
from incidents.errors import IncidentError

_SYSTEM_NAME = re.compile(r"^[A-Za-z0-9_.]{1,40}$")


def _actor(principal) -> Any:
    """What the service records (and audits) as the actor: the Principal itself, with its source."""
    return principal


# ------------------------------------------------------------------------------------------ bodies
def _body(model: type[BaseModel]) -> Any:
    return gate.read_model(model, S.MAX_BODY_BYTES)


def _incident_or_404(svc, incident_id: str):
    """The incident, when it exists and lies in the token's scope (else 404: existence is not told)."""
    from command.security import scopes
    if len(incident_id) > 120 or not svc.store.events(incident_id):
        raise ApiRefusal(404, f"no incident {incident_id!r}", "incident_id")
    state = svc.get(incident_id)
    if not scopes.visible(flask.g.principal, state):
        raise ApiRefusal(404, f"no incident {incident_id!r} in this token's scope", "incident_id")
    return state


def _incident_id(principal, external_id: str) -> str:
    """One incident per (system, external_id): the id is derived from both, so a retry finds it."""
    name = principal.name if _SYSTEM_NAME.match(principal.name) else \
        "sys" + hashlib.sha256(principal.name.encode("utf-8")).hexdigest()[:10]
    return f"{name}-{external_id}"


# ------------------------------------------------------------------------------------------ views
bp = flask.Blueprint("yzt_api", __name__, url_prefix=S.PREFIX)


@bp.get("/health")
@requires("view")
def health() -> flask.Response:
    p = flask.g.principal
    n = _service().store.incident_count()       # the projection's rows: one count, not every timeline
    return _json(S.HealthOut(status="ok", system=p.name, role=p.role, incidents=n))


@bp.get("/openapi.json")
@requires("view")
def openapi() -> flask.Response:
    return flask.jsonify(S.openapi_document())


@bp.post("/incidents")
@requires("incident.report")
def report_incident() -> flask.Response:
    from incidents.model import Casualties, IncidentReport, Point
    body: S.ReportIn = _body(S.ReportIn)
    svc, p = _service(), flask.g.principal
    incident_id = _incident_id(p, body.external_id)
    if svc.store.events(incident_id):          # a retry: the incident as it stands, before any work
        return _json(_views().incident_out(_incident_or_404(svc, incident_id)), 200)
    point = Point(body.point.lon, body.point.lat, body.point.crs) if body.point else None
    kind, address, casualties, description = body.type, body.address, body.casualties.model_dump(), body.description
    try:
        if body.text:
            kind, address, casualties, description = _from_text(body, svc.settings, point)
        report = IncidentReport(type=kind, address=address, point=point, casualties=Casualties(**casualties),
                                economic_loss_cny=body.economic_loss_cny, description=description)
    except IncidentError as e:
        raise ApiRefusal(422, str(e), "text" if body.text else "type") from None
    try:        # the database holds one report per incident id: a retry racing on another server loses here
        state = svc.report(report, actor=_actor(p), incident_id=incident_id)
    except IncidentError as e:
        raise ApiRefusal(422, str(e), "point" if point is not None else "address") from None
    except (IncidentExistsError, SessionError):
        if not svc.store.events(incident_id):
            raise
        return _json(_views().incident_out(_incident_or_404(svc, incident_id)), 200)
    resp = _json(_views().incident_out(state), 201)
    resp.headers["Location"] = f"{S.PREFIX}/incidents/{state.id}"
    return resp


def _from_text(body, settings, point) -> tuple:
    """`text` read by incidents.intake; what the request gives wins, field by field."""
    from incidents import intake
    r = intake.read(body.text, data_dir=settings.data_dir, missing_count_as_deaths=settings.missing_count_as_deaths,
                    settings=settings if settings.tianditu_key else None)
    kind = body.type or r.type
    if kind is None:
        raise ApiRefusal(422, "the text names no incident type: give type", "type")
    address = body.address or (r.place if r.place else None)
    if point is None and not address:
        raise ApiRefusal(422, "the text names no place: give address or point", "address")
    given = body.casualties.model_fields_set if "casualties" in body.model_fields_set else set()
    said = r.casualties
    casualties = {f: (getattr(body.casualties, f) if f in given else (getattr(said, f) or 0))
                  for f in ("deaths", "serious_injuries", "missing")}
    return kind, address, casualties, body.description or body.text


@bp.patch("/incidents/<incident_id>")
@requires("incident.update")
def update_incident(incident_id: str) -> flask.Response:
    from incidents.model import Casualties
    body: S.UpdateIn = _body(S.UpdateIn)
    svc = _service()
    state = _incident_or_404(svc, incident_id)
    if state.state == "closed":
        raise ApiRefusal(409, f"incident {incident_id} was closed at {state.closed_at}; it takes no more updates")
    try:
        state = svc.update(incident_id, actor=_actor(flask.g.principal), type=body.type,
                           casualties=Casualties(**body.casualties.model_dump()) if body.casualties else None,
                           economic_loss_cny=body.economic_loss_cny, description=body.description)
    except IncidentError as e:
        raise ApiRefusal(422, str(e)) from None
    except SessionError as e:
        raise ApiRefusal(409, str(e)) from None
    return _json(_views().incident_out(state))


@bp.get("/incidents")
@requires("view")
def list_incidents() -> flask.Response:
    """One page of incidents, newest report first: filters, search and paging are the store's projection's
    (command.response.listing); ``next`` is the cursor of the following page (null on the last)."""
    from command.response import listing
    args = flask.request.args
    unknown = sorted(set(args) - set(S.LIST_PARAMS))
    if unknown:
        raise ApiRefusal(400, f"unknown query parameter {unknown[0]!r} (use {', '.join(S.LIST_PARAMS)})", unknown[0])
    level, state, district, q = args.get("level"), args.get("state"), args.get("district"), args.get("q")
    if level is not None and level not in ("I", "II", "III", "IV"):
        raise ApiRefusal(400, f"level {level!r} must be one of I, II, III, IV", "level")
    if state is not None and state not in ("open", "closed"):
        raise ApiRefusal(400, f"state {state!r} must be open or closed", "state")
    if district is not None and not 1 <= len(district) <= 50:
        raise ApiRefusal(400, "district must be an adcode or a name of 1 to 50 characters", "district")
    if q is not None and (not 1 <= len(q) <= listing.MAX_Q or not q.strip()):
        raise ApiRefusal(400, f"q must be a search text of 1 to {listing.MAX_Q} characters", "q")
    limit, cursor = _limit(args.get("limit")), _cursor(args.get("cursor"))
    rows, nxt = listing.page(_service(), limit=limit, cursor=cursor, level=level, state=state, district=district,
                             q=q, viewer=flask.g.principal)
    items = [_summary_out(r) for r in rows]
    return _json(S.IncidentListOut(count=len(items), incidents=items, next=str(nxt) if nxt else None))


def _limit(text: str | None) -> int:
    if text is None:
        return S.LIST_LIMIT
    if not text.isascii() or not text.isdigit() or not 1 <= int(text) <= S.LIST_MAX:
        raise ApiRefusal(400, f"limit {text[:20]!r} must be a whole number from 1 to {S.LIST_MAX}", "limit")
    return int(text)


def _cursor(text: str | None) -> int | None:
    if text is None:
        return None
    if not text.isascii() or not text.isdigit() or not 1 <= int(text) < 2 ** 63:
        raise ApiRefusal(400, f"cursor {text[:20]!r} is not one this API gave: use the 'next' of the page before",
                         "cursor")
    return int(text)


def _summary_out(row: dict[str, Any]) -> S.IncidentSummaryOut:
    return S.IncidentSummaryOut(id=row["id"], type=row["type"], state=row["state"], level=row["level"],
                                reported_at=row["reported_at"], updated_at=row["updated_at"],
                                district_adcode=row["district_adcode"], district_name=row["district_name"],
                                matched=row["matched"])


@bp.get("/incidents/<incident_id>")
@requires("view")
def get_incident(incident_id: str) -> flask.Response:
    return _json(_views().incident_out(_incident_or_404(_service(), incident_id)))


@bp.get("/incidents/<incident_id>/alerts")
@requires("view")
def incident_alerts(incident_id: str) -> flask.Response:
    svc = _service()
    state = _incident_or_404(svc, incident_id)
    alerts = [_views().alert_out(state, a, svc.outbox.deliveries(a.identifier)) for a in state.alerts if a.was_sent]
    return _json(S.AlertListOut(incident_id=state.id, alerts=alerts))


@bp.get("/alerts/<identifier>")
@requires("view")
def get_alert(identifier: str) -> flask.Response:
    svc = _service()
    row = svc.store.alert(identifier) if len(identifier) <= 120 else None
    state = svc.get(row["incident_id"]) if row else None
    from command.security import scopes
    if state is not None and not scopes.visible(flask.g.principal, state):
        state = None
    rec = next((a for a in state.alerts if a.identifier == identifier and a.was_sent), None) if state else None
    if rec is None:
        raise ApiRefusal(404, f"no sent warning {identifier!r}", "identifier")
    return _json(_views().alert_out(state, rec, svc.outbox.deliveries(identifier)))


def _views():
    from command.api import views
    return views


# ------------------------------------------------------------------------------------------ errors
gate.answer_errors(bp)


# ------------------------------------------------------------------------------------------ wiring
def create_api_app(service_factory: Callable[[], Any], settings: Any = None) -> flask.Flask:
    """A Flask app holding only the dispatch API; ``service_factory()`` returns the ResponseService to use
    (its ``store`` also holds the tokens). Every 404/405 of this app is a JSON refusal. ``settings`` gives
    the door's trusted proxy header (None: the socket's address counts)."""
    app = flask.Flask("yzt_api")
    app.extensions["yzt_api"] = service_factory
    app.extensions["yzt_api_door"] = settings
    app.register_blueprint(bp)
    app.register_blueprint(exercises.bp)        # live exercises (contracts/exercise.md)
    app.register_error_handler(404, gate.http)      # routing errors never reach a blueprint's handlers
    app.register_error_handler(405, gate.http)
    return app


def register_api(server: flask.Flask, service_factory: Callable[[], Any], settings: Any = None) -> None:
    """Serve the dispatch API under ``/api/v1`` of ``server`` (the dashboard's Flask app).

    The API runs as its own Flask app in front of ``server``'s WSGI callable: requests under the prefix never
    pass the dashboard's session, sign-in redirect or CSRF hooks (a bearer token is not a cookie, so CSRF does
    not apply) and get only JSON answers; every other path goes to ``server`` untouched. The API app is kept
    in ``server.extensions["yzt_api_app"]`` (its ``url_map`` lists the API routes)."""
    api = create_api_app(service_factory, settings if settings is not None else server.extensions.get("yzt_door"))
    outer = server.wsgi_app

    def dispatch(environ: dict, start_response: Callable) -> Any:
        path = environ.get("PATH_INFO", "")
        if path == S.PREFIX or path.startswith(S.PREFIX + "/"):
            return api.wsgi_app(environ, start_response)
        return outer(environ, start_response)

    server.wsgi_app = dispatch          # type: ignore[method-assign]
    server.extensions["yzt_api_app"] = api


def make_api_app(settings: Any) -> flask.Flask:
    """A Flask app serving only the dispatch API over the store of ``settings`` (opened on first request)."""
    lock = threading.Lock()
    holder: dict[str, Any] = {}

    def factory():
        with lock:
            if "svc" not in holder:
                from command import compose
                holder["svc"] = compose.open_app(settings).service()
            return holder["svc"]

    return create_api_app(factory, settings)
