"""The dispatch API's request and response models (pydantic) and the OpenAPI 3.1 document built from them.

    from command.api.schema import ReportIn, UpdateIn, IncidentOut, openapi_document
    body = ReportIn.model_validate_json(raw)           # strict: unknown fields, bad types, out of range refused
    doc = openapi_document()                           # dict, served as GET /api/v1/openapi.json

The models are the single source of the contract: ``command.api.routes`` validates requests and shapes responses
with them, and the OpenAPI document is generated from the same classes, so the document cannot drift from
what the server does. The incident type enumeration comes from ``incidents.grading.incident_types()`` when
the document is built (lazily, never at import).
"""
from __future__ import annotations

import functools
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from pydantic.json_schema import models_json_schema

PREFIX = "/api/v1"
MAX_BODY_BYTES = 64 * 1024
EXTERNAL_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$"
LevelName = Literal["I", "II", "III", "IV"]


# ------------------------------------------------------------------------------------------ requests
class _In(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, allow_inf_nan=False, frozen=True)


class PointIn(_In):
    """A position and its datum: what the dispatch system's map gives (wgs84 GPS, gcj02 AMap/Tencent, bd09 Baidu)."""

    lon: float = Field(ge=-180, le=180)
    lat: float = Field(ge=-90, le=90)
    crs: Literal["wgs84", "gcj02", "bd09"] = "wgs84"


class CasualtiesIn(_In):
    deaths: int = Field(default=0, ge=0, le=1_000_000)
    serious_injuries: int = Field(default=0, ge=0, le=1_000_000)
    missing: int = Field(default=0, ge=0, le=1_000_000)


def _known_type(value: str | None) -> str | None:
    from incidents.grading import incident_types
    if value is not None and value not in incident_types():
        raise ValueError(f"unknown incident type {value!r}; GET {PREFIX}/openapi.json lists the known ones")
    return value


class ReportIn(_In):
    """A new incident from a 110/119/120 dispatch system. ``external_id`` is the system's own case number:
    sending the same one again returns the incident already made (safe retries). ``text`` is the call's words:
    type, casualties and place are read from it (incidents.intake) where the request does not give them."""

    external_id: str = Field(pattern=EXTERNAL_ID_PATTERN, description="the dispatch system's case number")
    type: str | None = Field(default=None, min_length=1, max_length=40,
                             description="required unless `text` names the incident type")
    text: str | None = Field(default=None, min_length=1, max_length=2000,
                             description="the caller's words; fills type, casualties and address not given")
    address: str | None = Field(default=None, min_length=1, max_length=200)
    point: PointIn | None = None
    casualties: CasualtiesIn = Field(default_factory=CasualtiesIn)
    economic_loss_cny: float = Field(default=0, ge=0, le=1e13)
    description: str = Field(default="", max_length=2000)

    _type_known = field_validator("type")(_known_type)

    @model_validator(mode="after")
    def _somewhere(self) -> ReportIn:
        if self.text is not None and self.text.strip():
            return self                  # what the words leave out is refused once they are read
        if self.type is None:
            raise ValueError("give the incident type, or the call's text")
        if self.point is None and (self.address is None or not self.address.strip()):
            raise ValueError("give an address, a point, or both")
        return self


class UpdateIn(_In):
    """What changed; at least one field. The incident is regraded from the new figures."""

    model_config = ConfigDict(json_schema_extra={"minProperties": 1})

    type: str | None = Field(default=None, min_length=1, max_length=40)
    casualties: CasualtiesIn | None = None
    economic_loss_cny: float | None = Field(default=None, ge=0, le=1e13)
    description: str | None = Field(default=None, max_length=2000)

    _type_known = field_validator("type")(_known_type)

    @model_validator(mode="after")
    def _something(self) -> UpdateIn:
        if not self.model_fields_set:
            raise ValueError("nothing to update: give type, casualties, economic_loss_cny or description")
        return self


# ------------------------------------------------------------------------------------------ responses
class _Out(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ErrorOut(_Out):
    error: str = Field(description="one line: what was refused and why")
    field: str | None = Field(default=None, description="the request field at fault, when there is one")


class HealthOut(_Out):
    status: Literal["ok"]
    system: str
    role: str
    incidents: int = Field(ge=0)


class LocationOut(_Out):
    lon: float
    lat: float
    crs: Literal["wgs84"]
    precision: str
    matched: str
    confidence: float
    district_adcode: str | None
    city_adcode: str | None
    district_name: str | None
    city_name: str | None
    uncertainty_m: float | None = Field(default=None, description="radius in metres around the point within "
                                        "which the place lies (0 for a point given as coordinates)")


class CasualtiesOut(_Out):
    deaths: int
    serious_injuries: int
    missing: int


class GradeOut(_Out):
    level: LevelName
    name: str
    colour: str
    cap_severity: str
    category: str
    law: str
    article: str
    criterion: str


class LevelChangeOut(_Out):
    at: str
    level: LevelName
    reason: str


class MemberOut(_Out):
    role: str
    org: str
    level_of_government: str


class TaskOut(_Out):
    id: str
    role: str
    text: str
    set_at: str
    done_at: str | None


class NearbyOut(_Out):
    id: str
    name: str
    lon: float
    lat: float
    distance_m: float
    drive_time_s: float | None = None
    approximate: bool = False                     # around an uncertain point: the distance is ± the next field
    distance_uncertainty_m: float | None = None
    in_uncertainty_area: bool | None = None       # a camera inside the area the incident may be in


class AdminUnitOut(_Out):
    adcode: str
    name: str
    population: int | None


class DeliveryOut(_Out):
    channel: str
    mode: Literal["live", "exercise"]
    status: Literal["pending", "sent", "failed", "dead"]
    attempts: int
    updated_at: str | None
    last_error: str | None


class AlertOut(_Out):
    identifier: str
    incident_id: str
    status: Literal["Actual", "Exercise"]
    msg_type: Literal["Alert", "Update", "Cancel"]
    sent: str
    approved_at: str | None
    in_force: bool
    references: list[str]
    circle: str | None = Field(description='the requested circle "lat,lon radius_km"; when part of it was sea '
                                           'or outside Guangdong, CAP carries `polygons` instead')
    polygons: list[str] = Field(default_factory=list, description='the CAP polygons "lat,lon lat,lon ...": '
                                'the land warned, one per piece; the area is their union (with the circle '
                                'when no polygon is given)')
    radius_m: float | None
    population: int
    admin_units: list[AdminUnitOut]
    cancelled_by: str | None
    cancels: list[str]
    cap_xml: str
    deliveries: list[DeliveryOut]


class AlertListOut(_Out):
    incident_id: str
    alerts: list[AlertOut]


class IncidentOut(_Out):
    id: str
    type: str
    state: Literal["open", "closed"]
    reported_at: str
    reported_by: str
    closed_at: str | None
    address: str | None
    location: LocationOut
    casualties: CasualtiesOut
    economic_loss_cny: float
    description: str
    grade: GradeOut
    levels: list[LevelChangeOut]
    members: list[MemberOut]
    conference_link: str | None
    tasks: list[TaskOut]
    alerts_sent: list[str] = Field(description="identifiers of the warnings sent for this incident")
    nearby: dict[str, list[NearbyOut]]


class IncidentSummaryOut(_Out):
    id: str
    type: str
    state: Literal["open", "closed"]
    level: LevelName
    reported_at: str
    updated_at: str | None = Field(default=None, description="when the incident's newest event was written")
    district_adcode: str | None
    district_name: str | None
    matched: str


class IncidentListOut(_Out):
    count: int = Field(ge=0, description="incidents on this page")
    incidents: list[IncidentSummaryOut] = Field(description="newest report first")
    next: str | None = Field(default=None, description="the cursor of the next page (pass it as `cursor`); "
                             "null on the last page")


# GET /incidents: its query parameters, the page size when none is given and the largest one allowed
LIST_PARAMS = ("level", "state", "district", "q", "limit", "cursor")
LIST_LIMIT, LIST_MAX = 100, 500


# ------------------------------------------------------------------------------------------ document
_MODELS = (ReportIn, UpdateIn, ErrorOut, HealthOut, AlertOut, AlertListOut, IncidentOut, IncidentListOut)
_ERRORS = {"400": "the body is not JSON", "401": "no valid bearer token", "403": "the token's role may not do this",
           "404": "no such incident, alert or route", "405": "method not allowed here",
           "409": "the incident is closed", "413": f"the body is over {MAX_BODY_BYTES} bytes",
           "422": "the request is well formed but refused (fields, place, type)"}


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _json(name: str, description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": _ref(name)}}}


def _operation(op_id: str, summary: str, ok: dict[str, dict], errors: tuple[str, ...], *,
               body: str | None = None, params: list[dict] | None = None) -> dict[str, Any]:
    responses = dict(ok)
    for code in ("401", "403", "404", "405", *errors):
        responses[code] = _json("ErrorOut", _ERRORS[code])
    op: dict[str, Any] = {"operationId": op_id, "summary": summary, "responses": responses,
                          "security": [{"bearer": []}]}
    if body:
        op["requestBody"] = {"required": True, "content": {"application/json": {"schema": _ref(body)}}}
    if params:
        op["parameters"] = params
    return op


def _path_param(name: str, description: str) -> dict[str, Any]:
    return {"name": name, "in": "path", "required": True, "description": description,
            "schema": {"type": "string", "minLength": 1, "maxLength": 120, "pattern": r"^[^/]+$"}}


def _query_params() -> list[dict[str, Any]]:
    return [{"name": "level", "in": "query", "required": False, "schema": {"enum": ["I", "II", "III", "IV"]}},
            {"name": "state", "in": "query", "required": False, "schema": {"enum": ["open", "closed"]}},
            {"name": "district", "in": "query", "required": False, "description": "adcode or name",
             "schema": {"type": "string", "minLength": 1, "maxLength": 50}},
            {"name": "q", "in": "query", "required": False, "description": "text in the id, type, address, "
             "place or names; or an incident type's name", "schema": {"type": "string", "minLength": 1,
                                                                     "maxLength": 100, "pattern": r"\S"}},
            {"name": "limit", "in": "query", "required": False, "description": "incidents per page",
             "schema": {"type": "integer", "minimum": 1, "maximum": LIST_MAX, "default": LIST_LIMIT}},
            {"name": "cursor", "in": "query", "required": False, "description": "the `next` of the page before",
             "schema": {"type": "string", "pattern": "^[1-9][0-9]{0,18}$"}}]


def _paths() -> dict[str, Any]:
    iid = _path_param("incident_id", "the incident id")
    body_errors = ("400", "413", "422")
    return {
        "/health": {"get": _operation("health", "Is the API up, and who am I", {"200": _json("HealthOut", "ok")},
                                      ())},
        "/incidents": {
            "post": _operation("reportIncident", "Report an incident (idempotent on external_id)",
                               {"201": _json("IncidentOut", "created"),
                                "200": _json("IncidentOut", "already reported with this external_id")},
                               body_errors, body="ReportIn"),
            "get": _operation("listIncidents", "Incidents, filtered and searched, a page at a time", {"200": _json("IncidentListOut", "ok")},
                              ("400",), params=_query_params())},
        "/incidents/{incident_id}": {
            "get": _operation("getIncident", "One incident", {"200": _json("IncidentOut", "ok")}, (),
                              params=[iid]),
            "patch": _operation("updateIncident", "Update an incident; it is regraded",
                                {"200": _json("IncidentOut", "updated")}, (*body_errors, "409"),
                                body="UpdateIn", params=[iid])},
        "/incidents/{incident_id}/alerts": {
            "get": _operation("listIncidentAlerts", "Warnings sent for an incident",
                              {"200": _json("AlertListOut", "ok")}, (), params=[iid])},
        "/alerts/{identifier}": {
            "get": _operation("getAlert", "One sent warning with its deliveries",
                              {"200": _json("AlertOut", "ok")}, (),
                              params=[_path_param("identifier", "the CAP identifier")])},
    }


@functools.lru_cache(maxsize=1)
def openapi_document() -> dict[str, Any]:
    """The OpenAPI 3.1 document of the dispatch API (built once per process)."""
    from incidents.grading import incident_types
    _, top = models_json_schema([(m, "validation") for m in _MODELS],
                                ref_template="#/components/schemas/{model}")
    schemas = top["$defs"]
    types = sorted(incident_types())
    rtype = schemas["ReportIn"]["properties"]["type"]        # optional when `text` names the type
    desc = rtype.get("description", "")
    rtype.clear()
    rtype.update({"enum": [*types, None], "default": None, "description": desc})
    upd = schemas["UpdateIn"]["properties"]["type"]
    upd["anyOf"] = [{"type": "string", "enum": types}, {"type": "null"}]
    return {
        "openapi": "3.1.0",
        "info": {"title": "粤政图 dispatch API (110/119/120)", "version": "1.0.0",
                 "description": "Dispatch systems report and update incidents and read incidents and warnings. "
                                "Every request carries `Authorization: Bearer <token>` (yzt tokens issue). "
                                "Refusals are JSON {error, field}. Warnings cannot be sent through this API."},
        "servers": [{"url": PREFIX}],
        "paths": _paths(),
        "components": {"schemas": schemas,
                       "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}}},
        "security": [{"bearer": []}],
    }
