"""Report an incident: what the 110/119 caller said (address), or a point (pasted or clicked) in its datum,
the type, casualties and loss. The service locates, grades and opens the response.

    report_form(types)                        # the form (types from incidents.grading.incident_types())
    build_report(form) -> IncidentReport      # refuses bad input with one clear line
    submit_report(svc, form, actor=...)       # -> IncidentState

The callback shows a refusal (address not found, outside Guangdong, bad number) as one alert line.
"""
from __future__ import annotations

from typing import Any

from dash import Input, Output, State, callback, dcc, html, no_update

from command.dashboard import runtime
from command.dashboard.common import alert_from, badge, ok_box
from command.dashboard.i18n import L, T
from command.dashboard.security import actor as acting, can, guarded
from incidents.errors import IncidentError
from incidents.model import Casualties, IncidentReport

DATUMS = [("wgs84", "WGS84 (GPS/天地图)"), ("gcj02", "GCJ-02 (高德/腾讯)"), ("bd09", "BD-09 (百度)")]
FORM_FIELDS = ("address", "coords", "datum", "type", "deaths", "serious", "missing", "loss", "desc")


def type_options() -> list[dict]:
    from incidents.grading import incident_types
    return [{"label": f"{t.zh} {t.en}", "value": key} for key, t in incident_types().items()]


def _number(label: str, fid: str) -> html.Div:
    return html.Div([html.Label(L(label)), dcc.Input(id=fid, type="number", min=0, step=1, value=0,
                                                     debounce=True)], className="yzt-field")


def report_form() -> html.Div:
    return html.Div([
        html.H2(L("report.title")),
        html.Div([html.Label(L("report.address")),
                  dcc.Textarea(id="report-address", rows=2, placeholder="例：广州市天河区天河路")],
                 className="yzt-field"),
        html.Div([html.Div([html.Label(L("report.coords")),
                            dcc.Input(id="report-coords", type="text", placeholder="113.32,23.13")],
                           className="yzt-field", style={"flex": 3}),
                  html.Div([html.Label(L("report.datum")),
                            dcc.Dropdown(id="report-datum", options=[{"label": lab, "value": v} for v, lab in DATUMS],
                                         value="wgs84", clearable=False)], style={"flex": 2})],
                 className="yzt-row"),
        html.Label(L("report.type")),
        dcc.Dropdown(id="report-type", options=type_options(), placeholder="…"),
        html.Div([_number("report.deaths", "report-deaths"), _number("report.serious", "report-serious"),
                  _number("report.missing", "report-missing")], className="yzt-row"),
        html.Div([html.Label(L("report.loss")), dcc.Input(id="report-loss", type="number", min=0, value=0,
                                                          debounce=True)], className="yzt-field"),
        html.Div([html.Label(L("report.desc")), dcc.Textarea(id="report-desc", rows=2)], className="yzt-field"),
        html.Button(L("report.submit"), id="report-submit", className="primary", n_clicks=0,
                    style=None if can("incident.report") else {"display": "none"}),
    ], id="report-panel")


def _count(value: Any, what: str) -> int:
    if value in (None, ""):
        return 0
    try:
        f = float(value)
    except (TypeError, ValueError):
        raise IncidentError(f"{what}: {value!r} is not a number") from None
    if f < 0 or f != int(f):
        raise IncidentError(f"{what}: {value!r} must be a whole number >= 0")
    return int(f)


def build_report(form: dict[str, Any]) -> IncidentReport:
    """An IncidentReport from the form's values; one clear IncidentError for anything unusable."""
    from incidents.coords import parse_point
    address = (form.get("address") or "").strip() or None
    coords = (form.get("coords") or "").strip()
    point = parse_point(coords, form.get("datum") or "wgs84") if coords else None
    if address is None and point is None:
        raise IncidentError(T("report.need_place") + " / " + T("report.need_place", "en"))
    if not form.get("type"):
        raise IncidentError(T("report.need_type") + " / " + T("report.need_type", "en"))
    loss = form.get("loss")
    try:
        loss_f = float(loss or 0)
    except (TypeError, ValueError):
        raise IncidentError(f"economic loss: {loss!r} is not a number") from None
    if loss_f < 0:
        raise IncidentError(f"economic loss: {loss_f:g} must be >= 0")
    casualties = Casualties(deaths=_count(form.get("deaths"), "deaths"),
                            serious_injuries=_count(form.get("serious"), "serious injuries"),
                            missing=_count(form.get("missing"), "missing"))
    return IncidentReport(type=form["type"], address=address, point=point, casualties=casualties,
                          economic_loss_cny=loss_f, description=(form.get("desc") or "").strip())


def submit_report(svc: Any, form: dict[str, Any], *, actor: str):
    return svc.report(build_report(form), actor=actor or T("app.actor"))


@callback(Output("incident-selected", "data", allow_duplicate=True),
          Output("app-alert", "children", allow_duplicate=True),
          Output("app-bump", "data", allow_duplicate=True),
          Input("report-submit", "n_clicks"),
          [State(f"report-{f}", "value") for f in FORM_FIELDS],
          State("app-actor", "value"), State("app-bump", "data"), prevent_initial_call=True)
@guarded("incident.report")
def on_report(_n: int, *values: Any):
    *fields, actor, bump = values
    form = dict(zip(FORM_FIELDS, fields))
    try:
        state = submit_report(runtime.current().service(), form, actor=acting(actor))
    except Exception as e:  # noqa: BLE001 - refusals become one line, bugs are logged
        return no_update, alert_from(e), no_update
    msg = html.Span([L("report.done"), f" {state.id} · {state.location.matched} ", badge(state.grade)])
    return state.id, ok_box(msg), (bump or 0) + 1

