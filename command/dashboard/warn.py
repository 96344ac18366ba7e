"""Warn residents: compose, preview (area on the map, admin units, population, the CAP text in zh and en,
the channels), confirm (a modal before anything Actual goes out), send, update, cancel; delivery status
per channel updates as the outbox works (polled from the store).

    cap_texts(xml) -> [{lang, event, headline, description, instruction, severity, area}]
    draft_to_data(draft, state) / draft_from_data(data)    # an AlertDraft through a dcc.Store and back
    send_draft(rt, data, *, actor, confirm)                # hand to the service on the worker pool

Roles (checked on the server by security.guarded): officers preview (draft); commanders send, cancel and
approve. An Actual warning at a level in settings.two_person_levels needs a second commander's approval
(``approve_pending``, the Approve button) before the service lets it go out.

Drafting, CAP building, channel choice and the Exercise/Actual guard all live in ResponseService; this
module only shows them and asks the officer.
"""
from __future__ import annotations

import dataclasses
import json
from concurrent.futures import TimeoutError as FutureTimeout
from typing import Any

from dash import Input, Output, State, callback, ctx, dcc, html, no_update
from dash.exceptions import PreventUpdate

from command.dashboard import runtime
from command.dashboard.common import alert_from, alert_box, fmt_m, ok_box, short_time
from command.dashboard.i18n import L, T
from command.dashboard.security import actor as acting, can, guarded, require

WAIT_FOR_REFUSAL_S = 3.0     # a refusal comes back at once; delivery goes on in the background
CAP_FIELDS = ("language", "event", "headline", "description", "instruction", "severity", "urgency", "senderName")


def cap_texts(xml: str) -> list[dict[str, str]]:
    """The human texts of every <info> block (zh-CN first as written), parsed without entities/network."""
    from command.alerts.cap import CAP_NS, parse
    ns = {"c": CAP_NS}
    out = []
    for info in parse(xml).findall("c:info", ns):
        d = {f: (info.findtext(f"c:{f}", namespaces=ns) or "") for f in CAP_FIELDS}
        d["area"] = info.findtext("c:area/c:areaDesc", namespaces=ns) or ""
        out.append(d)
    return out


def draft_to_data(draft: Any, state: Any) -> dict:
    d = dataclasses.asdict(draft)
    rec = next((a for a in state.alerts if a.identifier == draft.identifier), None)
    poly = (rec.area or {}).get("polygon") if rec else None
    d["area_polygon"] = [list(p) for p in poly] if poly else None
    # the other land pieces of a clipped area: CAP warns them too, so the preview shows them
    d["area_more_polygons"] = [[list(p) for p in ring] for ring in ((rec.area or {}).get("more_polygons") or [])] \
        if rec else []
    return json.loads(json.dumps(d, ensure_ascii=False))       # exactly what a dcc.Store hands back


def draft_from_data(data: dict) -> Any:
    from command.response.service import AlertDraft
    names = {f.name for f in dataclasses.fields(AlertDraft)}
    d = {k: v for k, v in data.items() if k in names}
    d["references"] = tuple(d.get("references") or ())
    d["admin_units"] = tuple(d.get("admin_units") or ())
    d["channels"] = tuple(d.get("channels") or ())
    if d.get("polygon"):
        d["polygon"] = tuple(tuple(p) for p in d["polygon"])
    return AlertDraft(**d)


def _shown(action: str) -> dict:
    """Hide a button the signed-in role cannot use (the server checks again on every callback)."""
    return {} if can(action) else {"display": "none"}


def needs_second_approval(rt: Any, status: str, level: str) -> bool:
    return status == "Actual" and level in (getattr(rt.settings, "two_person_levels", None) or ())


def warn_panel() -> html.Div:
    return html.Div([
        html.Div([html.Div([html.Label(L("warn.radius")), dcc.Input(id="warn-radius", type="number", min=50)],
                           className="yzt-field"),
                  html.Div([html.Label(L("warn.mode")),
                            dcc.RadioItems(id="warn-mode", value="exercise", inline=True,
                                           options=[{"label": L("warn.exercise"), "value": "exercise"},
                                                    {"label": L("warn.actual"), "value": "actual"}])])],
                 className="yzt-row"),
        html.Div([html.Label(L("warn.instr_zh")), dcc.Textarea(id="warn-instr-zh", rows=2,
                                                               value="请远离事发区域，听从现场指挥。")],
                 className="yzt-field"),
        html.Div([html.Label(L("warn.instr_en")), dcc.Textarea(id="warn-instr-en", rows=2,
                                                               value="Keep away from the area; follow instructions on site.")],
                 className="yzt-field"),
        html.Div([html.Button(L("warn.preview"), id="warn-preview", n_clicks=0, style=_shown("alert.draft")),
                  html.Button(L("warn.send"), id="warn-send", n_clicks=0, className="danger",
                              style=_shown("alert.send")),
                  html.Button(L("warn.cancel"), id="warn-cancel", n_clicks=0, style=_shown("alert.cancel")),
                  html.Button(["批准 ", html.Span("Approve", className="i18n-en")], id="warn-approve", n_clicks=0,
                              title="第二名指挥员批准正式预警 / a second commander approves the Actual warning",
                              style=_shown("alert.approve"))],
                 style={"display": "flex", "gap": "6px"}),
        html.Div(id="warn-preview-body"),
        html.H3(L("warn.deliveries")),
        html.Div(id="warn-deliveries"),
        dcc.Interval(id="warn-poll", interval=1000),
        dcc.Store(id="warn-pending"),
        html.Div(id="warn-modal", style={"display": "none"}, className="yzt-modal", children=html.Div([
            html.H2(id="warn-modal-title"), html.Div(id="warn-modal-text"),
            html.Div([html.Button(L("warn.confirm"), id="warn-confirm", n_clicks=0, className="danger"),
                      html.Button(L("warn.abort"), id="warn-abort", n_clicks=0)], style={"display": "flex", "gap": "8px"}),
        ], className="yzt-modal-box")),
    ])


def preview(data: dict) -> html.Div:
    units = [html.Tr([html.Td(u.get("name", u.get("adcode"))), html.Td(f"{int(u.get('population', 0)):,}")])
             for u in data.get("admin_units") or ()]
    chans = runtime.current().channel_modes()
    chan_items = [html.Li(f"{c} ({chans.get(c, '?')})") for c in data.get("channels") or ()] or \
        [html.Li(L("warn.no_channel"), style={"color": "#b3261e"})]
    texts = [html.Div([html.B(t["language"]), f" · {t['severity']} · {t['event']}",
                       html.Div(f"{t['headline']}\n{t['description']}\n{t['instruction']}", className="yzt-cap")])
             for t in cap_texts(data["cap_xml"])]
    radius = f" · {fmt_m(data.get('radius_m'))} m" if data.get("radius_m") else ""
    return html.Div([
        html.Div([html.B(f"{data['status']} {data['msg_type']}"), f" · {data['identifier']}{radius}"],
                 id="warn-identifier"),
        html.Div(data.get("reason") or "", className="where"),
        html.Div(["⚠ 需第二名指挥员批准 ", html.Span("needs a second commander's approval", className="i18n-en")],
                 id="warn-two-person", className="yzt-alert yzt-alert-error") if data.get("needs_approval") else None,
        html.Div([html.B(L("warn.population")), f": {int(data.get('population') or 0):,}"], id="warn-population"),
        html.B(L("warn.units")), html.Table(html.Tbody(units), className="yzt-table"),
        html.B(L("warn.channels")), html.Ul(chan_items),
        *texts,
        html.Details([html.Summary("CAP XML"), html.Pre(data["cap_xml"], className="yzt-cap")]),
    ])


def make_draft(rt: Any, incident_id: str, *, exercise: bool, actor: str, radius: Any, zh: str, en: str) -> dict:
    svc = rt.service(exercise=exercise)
    r = float(radius) if radius not in (None, "") else None
    draft = svc.draft_alert(incident_id, actor=actor, radius_m=r, instruction_zh=zh or "", instruction_en=en or "")
    state = svc.get(incident_id)
    data = draft_to_data(draft, state)
    data["needs_approval"] = needs_second_approval(rt, data["status"], state.grade.level)
    return data


def _wait(future: Any) -> None:
    """Raise the worker's refusal if it comes at once; otherwise delivery goes on in the background."""
    try:
        future.result(timeout=WAIT_FOR_REFUSAL_S)
    except FutureTimeout:
        return


def send_draft(rt: Any, data: dict, *, actor: str, confirm: bool) -> None:
    svc = rt.service(exercise=data["status"] == "Exercise")
    _wait(rt.submit(svc.send_alert, data["incident_id"], draft_from_data(data), actor=actor, confirm=confirm))


def cancel_active(rt: Any, incident_id: str, *, actor: str, confirm: bool) -> None:
    state = rt.service().get(incident_id)
    if not state.active_alerts:
        raise ValueError(f"incident {incident_id} has no alert in force to cancel / 无生效预警")
    svc = rt.service(exercise=state.active_alerts[-1].status == "Exercise")
    _wait(rt.submit(svc.cancel_alert, incident_id, actor=actor, confirm=confirm))


@callback(Output("warn-radius", "placeholder"), Input("incident-selected", "data"))
@guarded("view")
def radius_hint(incident_id: str | None) -> str:
    from command.alerts import area
    if not incident_id:
        return ""
    s = runtime.current().service().get(incident_id)
    try:
        radius, _ = area.warning_radius_m(s.type, s.grade.level)
    except ValueError:
        return ""
    return f"{radius:,.0f}" if radius else ""


@callback(Output("warn-draft", "data"), Output("warn-preview-body", "children"),
          Output("app-alert", "children", allow_duplicate=True),
          Input("warn-preview", "n_clicks"), State("incident-selected", "data"), State("warn-mode", "value"),
          State("warn-radius", "value"), State("warn-instr-zh", "value"), State("warn-instr-en", "value"),
          State("app-actor", "value"), prevent_initial_call=True)
@guarded("alert.draft")
def on_preview(_n: int, incident_id: str | None, mode: str, radius: Any, zh: str, en: str, actor: str):
    if not incident_id:
        return no_update, no_update, alert_box(L("detail.none"))
    try:
        data = make_draft(runtime.current(), incident_id, exercise=mode != "actual", actor=acting(actor or T("app.actor")),
                          radius=radius, zh=zh, en=en)
    except Exception as e:  # noqa: BLE001 - refusals become one line, bugs are logged
        return no_update, no_update, alert_from(e)
    return data, preview(data), no_update


HIDDEN, SHOWN = {"display": "none"}, {"display": "flex"}


def _modal(action: str, data: dict | None) -> tuple:
    title = L("warn.confirm_q" if action == "send" else "warn.confirm_cancel_q")
    text = html.Div([data["headline_zh"], html.Br(), f"{data['area_desc']} · {int(data['population']):,}"]) \
        if data else ""
    return SHOWN, title, text, {"action": action}


def _act(rt: Any, action: str, draft: dict | None, incident_id: str, actor: str, confirm: bool) -> Any:
    if action == "send":
        send_draft(rt, draft, actor=actor, confirm=confirm)
        return L("warn.submitted")
    cancel_active(rt, incident_id, actor=actor, confirm=confirm)
    return L("warn.cancel_submitted")


@callback(Output("warn-modal", "style"), Output("warn-modal-title", "children"), Output("warn-modal-text", "children"),
          Output("warn-pending", "data"), Output("app-alert", "children", allow_duplicate=True),
          Output("app-bump", "data", allow_duplicate=True),
          Input("warn-send", "n_clicks"), Input("warn-cancel", "n_clicks"), Input("warn-confirm", "n_clicks"),
          Input("warn-abort", "n_clicks"), State("warn-draft", "data"), State("incident-selected", "data"),
          State("warn-pending", "data"), State("app-actor", "value"), State("app-bump", "data"),
          prevent_initial_call=True)
@guarded({"warn-send": "alert.send", "warn-cancel": "alert.cancel", "warn-confirm": "alert.send",
          "warn-abort": "view", None: "alert.send"})
def on_warn_action(_s, _c, _ok, _abort, draft, incident_id, pending, actor, bump):
    trig, rt, actor = ctx.triggered_id, runtime.current(), acting(actor or T("app.actor"))
    keep = (no_update,) * 3
    if trig == "warn-abort":
        return HIDDEN, "", "", None, no_update, no_update
    if not incident_id:
        return (*keep, no_update, alert_box(L("detail.none")), no_update)
    try:
        if trig == "warn-confirm":
            if not pending:
                raise PreventUpdate
            require("alert.cancel" if pending.get("action") == "cancel" else "alert.send")
            msg = _act(rt, pending["action"], draft, incident_id, actor, True)
            return HIDDEN, "", "", None, ok_box(msg), (bump or 0) + 1
        action = "send" if trig == "warn-send" else "cancel"
        if action == "send" and (not draft or draft.get("incident_id") != incident_id):
            return (*keep, no_update, alert_box(L("warn.need_preview")), no_update)
        if _is_actual(rt, action, draft, incident_id):
            return (*_modal(action, draft if action == "send" else None), no_update, no_update)
        msg = _act(rt, action, draft, incident_id, actor, False)
    except PreventUpdate:
        raise
    except Exception as e:  # noqa: BLE001 - refusals become one line, bugs are logged
        return HIDDEN, "", "", None, alert_from(e), no_update
    return (*keep, no_update, ok_box(msg), (bump or 0) + 1)


def _is_actual(rt: Any, action: str, draft: dict | None, incident_id: str) -> bool:
    if action == "send":
        return draft["status"] == "Actual"
    active = rt.service().get(incident_id).active_alerts
    return bool(active) and active[-1].status == "Actual"


def delivery_rows(state: Any, deliveries: list[dict]) -> html.Table | html.Div:
    by_id = {a.identifier: a for a in state.alerts}
    rows = []
    for d in deliveries:
        a = by_id.get(d["identifier"])
        if a is None:
            continue
        note = d.get("last_error") or d.get("receipt") or ""
        rows.append(html.Tr([html.Td(f"{a.msg_type} {a.status}"), html.Td(d["channel"]), html.Td(d["mode"]),
                             html.Td(d["status"], className=d["status"]), html.Td(d["attempts"]),
                             html.Td(short_time(d.get("updated_at"))), html.Td(str(note)[:60])],
                            **{"data-identifier": d["identifier"]}))
    if not rows:
        return html.Div("—")
    head = html.Tr([html.Th(x) for x in ("msg", "channel", "mode", "status", "#", "time", "")])
    return html.Table([html.Thead(head), html.Tbody(rows)], className="yzt-table yzt-deliv", id="warn-deliv-table")


@callback(Output("warn-deliveries", "children"),
          Input("warn-poll", "n_intervals"), Input("incident-selected", "data"), Input("app-bump", "data"),
          State("right-tabs", "value"))
@guarded("view")
def poll_deliveries(_n, incident_id: str | None, _bump, tab: str | None):
    if ctx.triggered_id == "warn-poll" and tab != "warn":
        raise PreventUpdate
    if not incident_id:
        return html.Div("—")
    rt = runtime.current()
    state = rt.service().get(incident_id)
    sent = [a.identifier for a in state.alerts if a.was_sent]
    rows = [d for ident in sent for d in rt.outbox().deliveries(ident)]
    return delivery_rows(state, rows)


def approve_pending(rt: Any, incident_id: str, *, actor: Any) -> str:
    """A second commander approves the latest Actual draft of the incident that is not sent yet."""
    svc = rt.service(exercise=False)
    state = svc.get(incident_id)
    pending = [a for a in state.alerts if a.status == "Actual" and not a.was_sent]
    if not pending:
        raise ValueError(f"incident {incident_id} has no Actual warning waiting for approval / 无待批准的正式预警")
    ident = pending[-1].identifier
    svc.approve_alert(incident_id, ident, actor=actor)
    return ident


@callback(Output("app-alert", "children", allow_duplicate=True), Output("app-bump", "data", allow_duplicate=True),
          Input("warn-approve", "n_clicks"), State("incident-selected", "data"), State("app-actor", "value"),
          State("app-bump", "data"), prevent_initial_call=True)
@guarded("alert.approve")
def on_approve(n: int | None, incident_id: str | None, actor: str | None, bump: Any):
    if not n:
        raise PreventUpdate
    if not incident_id:
        return alert_box(L("detail.none")), no_update
    try:
        ident = approve_pending(runtime.current(), incident_id, actor=acting(actor or T("app.actor")))
    except Exception as e:  # noqa: BLE001 - refusals become one line, bugs are logged
        return alert_from(e), no_update
    return ok_box(f"已批准 approved {ident}"), (bump or 0) + 1
