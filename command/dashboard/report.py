"""Report an incident: what the 110/119 caller said (address), or a point (pasted or clicked) in its datum,
the type, casualties and loss. The service locates, grades and opens the response.

    report_form(types)                        # the form (types from incidents.grading.incident_types())
    build_report(form) -> IncidentReport      # refuses bad input with one clear line
    submit_report(svc, form, actor=...)       # -> IncidentState

The callback shows a refusal (address not found, outside Guangdong, bad number) as one alert line.

The "来电内容 call text" box reads the caller's words (incidents.intake) and FILLS the form: type, casualties,
address, description; what the words do not say is left as it was and listed as unknown. It never reports:
the officer checks the form and presses 上报.
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
        html.Div([html.Label("来电内容 call text"),
                  dcc.Textarea(id="report-calltext", rows=3, maxLength=2000,
                               placeholder="例：广州市天河区体育西路191号 写字楼火灾 5人被困"),
                  html.Button("读取填表 read into the form", id="report-read", n_clicks=0),
                  html.Div(id="report-read-info", className="yzt-rule")], className="yzt-field"),
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



def fill_from_text(text: str, *, data_dir: Any = None, missing_count_as_deaths: bool | None = None) -> dict:
    """What the call text gives for each form field (None: the words say nothing, leave the field as it is),
    and the lines that tell the officer what was read and what is unknown."""
    from incidents import intake
    r = intake.read(text, data_dir=data_dir, missing_count_as_deaths=missing_count_as_deaths)
    c = r.casualties
    info = [f"类型 type: {r.type or '未知 unknown'}"]
    zh = {"deaths": "死亡", "serious_injuries": "重伤", "injured": "其他受伤", "missing": "失踪", "trapped": "被困"}
    for f, name in zh.items():
        v = getattr(c, f)
        extra = f" ({r.approximate[f]['said']})" if f in r.approximate else ""
        info.append(f"{name} {f}: {'未知 unknown' if v is None else v}{extra}")
    if r.location is not None:
        info.append(f"位置 place: {r.location.matched} ± {r.location.uncertainty_m or 0:,.0f} m")
    else:
        info.append(f"位置 place: {r.place or '未知 unknown'}")
    if r.level:
        info.append(f"等级 level: {r.grade.name} ({r.level})")
    info += [f"注 note: {n}" for n in r.notes]
    return {"type": r.type, "address": r.place, "deaths": c.deaths, "serious": c.serious_injuries,
            "missing": c.missing, "desc": text.strip(), "info": info}


@callback(Output("report-type", "value", allow_duplicate=True),
          Output("report-address", "value", allow_duplicate=True),
          Output("report-deaths", "value", allow_duplicate=True),
          Output("report-serious", "value", allow_duplicate=True),
          Output("report-missing", "value", allow_duplicate=True),
          Output("report-desc", "value", allow_duplicate=True),
          Output("report-read-info", "children"),
          Input("report-read", "n_clicks"), State("report-calltext", "value"), prevent_initial_call=True)
@guarded("view")
def on_read_text(_n: int, text: str | None):
    if not text or not text.strip():
        return (no_update,) * 6 + ("来电内容为空 the call text is empty",)
    s = runtime.current().settings
    try:
        got = fill_from_text(text, data_dir=s.data_dir, missing_count_as_deaths=s.missing_count_as_deaths)
    except IncidentError as e:
        return (no_update,) * 6 + (str(e),)
    keep = (lambda v: no_update if v is None else v)
    return (keep(got["type"]), keep(got["address"]), keep(got["deaths"]), keep(got["serious"]),
            keep(got["missing"]), got["desc"], [html.Div(line) for line in got["info"]])
