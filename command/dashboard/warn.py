"""Warn residents: compose, preview (area on the map, admin units, population, the CAP text in zh and en, what
each channel sends), confirm (a modal before anything Actual goes out), send, update, cancel, and a second
commander's review and approval; delivery status per channel as the outbox works (read from the store).

    cap_texts(xml) -> [{lang, event, headline, description, instruction, severity, area}]
    record_data(state, identifier)            # the stored draft as the preview and the map show it
    make_draft(rt, incident_id, ...)          # the service drafts; the page gets what it stored
    send_warning(rt, incident_id, identifier, actor=, confirm=)     # queue the stored draft, one-line answer
    review(rt, incident_id, identifier, actor=) / approve_shown(rt, shown, actor=)   # approval, bound to content

One source of truth: the browser holds only ids. ``warn-ident`` ({incident_id, identifier}) is all the send
callback reads, and ``warn-approve-shown`` ({incident_id, identifier}) all the approve callback reads (the
content's sha256 the commander was shown is kept in the signed session, never taken from the request); the texts, the area and the CAP XML are looked up in the stored draft on the server, so a posted
headline, text or area is never read. ``warn-draft`` carries the preview to the map only.

Roles (checked on the server by security.guarded): officers preview (draft); commanders send, cancel and
approve. Whether a draft needs a second commander, and whether a send may go, is decided only by
ResponseService (``send_check`` for what to show, ``send_alert`` for the decision); this module shows it.
An approval is accepted only for a draft this commander was shown in full (the review, remembered in the signed
session with the content's sha256) and the service binds it to that content.
"""
from __future__ import annotations

import threading
from typing import Any

from dash import Input, Output, State, callback, ctx, dcc, html, no_update
from dash.exceptions import PreventUpdate

from command.dashboard import runtime
from command.dashboard.common import alert_from, alert_box, fmt_m, ok_box, short_time
from command.dashboard.i18n import L, T
from command.dashboard.security import actor as acting, can, guarded, require
from command.errors import AlertError

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


def _record(state: Any, identifier: str) -> Any:
    rec = next((a for a in state.alerts if a.identifier == identifier), None)
    if rec is None:
        raise AlertError(f"alert {identifier} was not drafted for incident {state.id}")
    return rec


def record_data(state: Any, identifier: str) -> dict:
    """The stored draft ``identifier`` of ``state`` as the preview and the map show it (server-side only)."""
    rec = _record(state, identifier)
    area = rec.area or {}
    return {"incident_id": state.id, "identifier": rec.identifier, "status": rec.status, "msg_type": rec.msg_type,
            "cap_xml": rec.cap_xml, "headline_zh": rec.headline_zh, "text_zh": rec.text_zh,
            "area_desc": rec.area_desc, "population": int(rec.population or 0),
            "admin_units": [dict(u) for u in rec.admin_units], "channels": list(rec.channels),
            "circle": area.get("circle"), "radius_m": area.get("radius_m"), "reason": area.get("reason") or "",
            "area_polygon": [list(p) for p in area["polygon"]] if area.get("polygon") else None,
            # the other land pieces of a clipped area: CAP warns them too, so the preview shows them
            "area_more_polygons": [[list(p) for p in ring] for ring in (area.get("more_polygons") or [])],
            "content_sha256": rec.content_sha256, "drafted_by": rec.drafted_by, "level": rec.level}


def ids_of(data: dict) -> dict:
    """What the browser keeps of a draft: its incident and identifier, nothing it could edit into a message."""
    return {"incident_id": data["incident_id"], "identifier": data["identifier"]}


def _name(who: Any) -> str:
    return getattr(who, "name", None) or str(who)


def _shown(action: str) -> dict:
    """Hide a button the signed-in role cannot use (the server checks again on every callback)."""
    return {} if can(action) else {"display": "none"}


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
                  html.Button(L("warn.cancel"), id="warn-cancel", n_clicks=0, style=_shown("alert.cancel"))],
                 style={"display": "flex", "gap": "6px"}),
        html.Div(id="warn-preview-body"),
        html.Div([
            html.H3(["审阅并批准 ", html.Span("Review and approve", className="i18n-en")]),
            dcc.Dropdown(id="warn-approve-pick", placeholder="待批准的正式预警 / Actual drafts awaiting approval",
                         clearable=True),
            html.Div(id="warn-approve-body"),
            html.Button(["批准 ", html.Span("Approve", className="i18n-en")], id="warn-approve", n_clicks=0,
                        disabled=True,
                        title="第二名指挥员审阅全文后批准 / a second commander approves after reading it all"),
        ], id="warn-approve-panel", style=_shown("alert.approve")),
        html.H3(L("warn.deliveries")),
        html.Div(id="warn-deliveries"),
        dcc.Interval(id="warn-poll", interval=1000),
        dcc.Store(id="warn-pending"),
        dcc.Store(id="warn-ident"),
        dcc.Store(id="warn-approve-shown"),
        html.Div(id="warn-modal", style={"display": "none"}, className="yzt-modal", children=html.Div([
            html.H2(id="warn-modal-title"), html.Div(id="warn-modal-text"),
            html.Div([html.Button(L("warn.confirm"), id="warn-confirm", n_clicks=0, className="danger"),
                      html.Button(L("warn.abort"), id="warn-abort", n_clicks=0)], style={"display": "flex", "gap": "8px"}),
        ], className="yzt-modal-box")),
    ])


def preview(data: dict) -> html.Div:
    """The whole message: what each channel sends (headline, text, area), the CAP texts, the districts and
    population, the channels, and the two-person rule's state as the service reports it."""
    units = [html.Tr([html.Td(u.get("name", u.get("adcode"))), html.Td(f"{int(u.get('population', 0)):,}")])
             for u in data.get("admin_units") or ()]
    chans = runtime.current().channel_modes()
    chan_items = [html.Li(f"{c} ({chans.get(c, '?')})") for c in data.get("channels") or ()] or \
        [html.Li(L("warn.no_channel"), style={"color": "#b3261e"})]
    texts = [html.Div([html.B(t["language"]), f" · {t['severity']} · {t['event']}",
                       html.Div(f"{t['headline']}\n{t['description']}\n{t['instruction']}", className="yzt-cap")])
             for t in cap_texts(data["cap_xml"])]
    radius = f" · {fmt_m(data.get('radius_m'))} m" if data.get("radius_m") else ""
    check = data.get("check") or {}
    approval = None
    if data.get("needs_approval"):
        by = "、".join(check.get("approved_by") or ())
        approval = html.Div(["⚠ 需第二名指挥员批准 ", html.Span("needs a second commander's approval",
                                                           className="i18n-en"),
                             f" (level {check.get('level', '')}" + (f"; approved by {by}" if by else "") + ")"],
                            id="warn-two-person", className="yzt-alert yzt-alert-error")
    return html.Div([
        html.Div([html.B(f"{data['status']} {data['msg_type']}"), f" · {data['identifier']}{radius}"],
                 id="warn-identifier"),
        html.Div(data.get("reason") or "", className="where"),
        approval,
        html.Div(check["voided"], className="yzt-alert yzt-alert-error") if check.get("voided") else None,
        html.Div([html.B(L("warn.population")), f": {int(data.get('population') or 0):,}"], id="warn-population"),
        html.Div([html.B("短信/群机器人 SMS, robots: "),
                  html.Div(data.get("headline_zh") or "", className="yzt-cap", id="warn-sent-headline"),
                  html.Div(data.get("text_zh") or "", className="yzt-cap", id="warn-sent-text"),
                  html.Div(data.get("area_desc") or "", className="yzt-cap", id="warn-sent-area")]),
        html.B(L("warn.units")), html.Table(html.Tbody(units), className="yzt-table"),
        html.B(L("warn.channels")), html.Ul(chan_items),
        *texts,
        html.Div(f"sha256 {data.get('content_sha256', '')}", className="where", id="warn-sha"),
        html.Details([html.Summary("CAP XML"), html.Pre(data["cap_xml"], className="yzt-cap")]),
    ])


def _with_check(rt: Any, data: dict) -> dict:
    """``data`` with what the service says sending it needs (``check``) and whether to show that a second
    commander's approval is still missing (``needs_approval``)."""
    svc = rt.service(exercise=data["status"] == "Exercise")
    check = svc.send_check(data["incident_id"], data["identifier"])
    return dict(data, check=check, needs_approval=check["needs_approval"] and not check["approved_by"])


def make_draft(rt: Any, incident_id: str, *, exercise: bool, actor: Any, radius: Any, zh: str, en: str) -> dict:
    """The service drafts (and stores) the message; the preview shows what it stored."""
    svc = rt.service(exercise=exercise)
    r = float(radius) if radius not in (None, "") else None
    draft = svc.draft_alert(incident_id, actor=actor, radius_m=r, instruction_zh=zh or "", instruction_en=en or "")
    data = record_data(svc.get(incident_id), draft.identifier)
    return _with_check(rt, data)


def send_warning(rt: Any, incident_id: str, identifier: str, *, actor: Any, confirm: bool) -> str:
    """Queue the stored draft ``identifier``; the one line the officer reads. Raises the service's refusal."""
    state = rt.service().get(incident_id)
    rec = _record(state, identifier)
    svc = rt.service(exercise=rec.status == "Exercise")
    result = svc.send_alert(incident_id, identifier, actor=actor, confirm=confirm)
    return (f"已排队 queued {result['msg_type']} {result['identifier']} → {', '.join(result['channels'])}"
            " (投递状态见下 delivery below)")


def cancel_active(rt: Any, incident_id: str, *, actor: Any, confirm: bool) -> str:
    state = rt.service().get(incident_id)
    if not state.active_alerts:
        raise AlertError(f"incident {incident_id} has no alert in force to cancel / 无生效预警")
    svc = rt.service(exercise=state.active_alerts[-1].status == "Exercise")
    result = svc.cancel_alert(incident_id, actor=actor, confirm=confirm)
    return (f"已排队 queued Cancel {result['identifier']} → {', '.join(result['channels'])}"
            " (投递状态见下 delivery below)")


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
          Output("app-alert", "children", allow_duplicate=True), Output("warn-ident", "data"),
          Input("warn-preview", "n_clicks"), State("incident-selected", "data"), State("warn-mode", "value"),
          State("warn-radius", "value"), State("warn-instr-zh", "value"), State("warn-instr-en", "value"),
          State("app-actor", "value"), prevent_initial_call=True)
@guarded("alert.draft")
def on_preview(_n: int, incident_id: str | None, mode: str, radius: Any, zh: str, en: str, actor: str):
    if not incident_id:
        return no_update, no_update, alert_box(L("detail.none")), no_update
    try:
        data = make_draft(runtime.current(), incident_id, exercise=mode != "actual",
                          actor=acting(actor or T("app.actor")), radius=radius, zh=zh, en=en)
    except Exception as e:  # noqa: BLE001 - refusals become one line, bugs are logged
        return no_update, no_update, alert_from(e), no_update
    return data, preview(data), no_update, ids_of(data)


HIDDEN, SHOWN = {"display": "none"}, {"display": "flex"}


def _modal(action: str, data: dict | None) -> tuple:
    title = L("warn.confirm_q" if action == "send" else "warn.confirm_cancel_q")
    text = html.Div([data["headline_zh"], html.Br(), data["text_zh"], html.Br(),
                     f"{data['area_desc']} · {int(data['population']):,}"]) if data else ""
    return SHOWN, title, text, {"action": action}


def _act(rt: Any, action: str, ident: dict | None, incident_id: str, actor: Any, confirm: bool) -> str:
    if action == "send":
        return send_warning(rt, incident_id, ident["identifier"], actor=actor, confirm=confirm)
    return cancel_active(rt, incident_id, actor=actor, confirm=confirm)


@callback(Output("warn-modal", "style"), Output("warn-modal-title", "children"), Output("warn-modal-text", "children"),
          Output("warn-pending", "data"), Output("app-alert", "children", allow_duplicate=True),
          Output("app-bump", "data", allow_duplicate=True),
          Input("warn-send", "n_clicks"), Input("warn-cancel", "n_clicks"), Input("warn-confirm", "n_clicks"),
          Input("warn-abort", "n_clicks"), State("warn-ident", "data"), State("incident-selected", "data"),
          State("warn-pending", "data"), State("app-actor", "value"), State("app-bump", "data"),
          prevent_initial_call=True)
@guarded({"warn-send": "alert.send", "warn-cancel": "alert.cancel", "warn-confirm": "alert.send",
          "warn-abort": "view", None: "alert.send"})
def on_warn_action(_s, _c, _ok, _abort, ident, incident_id, pending, actor, bump):
    """Send or cancel. Reads only ids (``warn-ident``): whatever else a request carries is never read."""
    trig, rt, actor = ctx.triggered_id, runtime.current(), acting(actor or T("app.actor"))
    keep = (no_update,) * 3
    if trig == "warn-abort":
        return HIDDEN, "", "", None, no_update, no_update
    if not incident_id:
        return (*keep, no_update, alert_box(L("detail.none")), no_update)
    try:
        action = pending.get("action") if trig == "warn-confirm" and pending else \
            ("send" if trig == "warn-send" else "cancel")
        if trig == "warn-confirm" and not pending:
            raise PreventUpdate
        if action == "send":
            if not isinstance(ident, dict) or ident.get("incident_id") != incident_id or \
                    not isinstance(ident.get("identifier"), str):
                return (*keep, no_update, alert_box(L("warn.need_preview")), no_update)
            ident = {"incident_id": incident_id, "identifier": ident["identifier"]}
        if trig == "warn-confirm":
            require("alert.cancel" if action == "cancel" else "alert.send")
            msg = _act(rt, action, ident, incident_id, actor, True)
            return HIDDEN, "", "", None, ok_box(msg), (bump or 0) + 1
        if action == "send":
            data = record_data(rt.service().get(incident_id), ident["identifier"])
            # the service's answer at once (two-person, regraded, out of date...), written to the timeline,
            # instead of a confirmation that could only end in a refusal
            rt.service(exercise=data["status"] == "Exercise").precheck_send(incident_id, data["identifier"],
                                                                            actor=actor)
            if data["status"] == "Actual":
                return (*_modal("send", data), no_update, no_update)
        elif _cancel_is_actual(rt, incident_id):
            return (*_modal("cancel", None), no_update, no_update)
        msg = _act(rt, action, ident, incident_id, actor, False)
    except PreventUpdate:
        raise
    except Exception as e:  # noqa: BLE001 - refusals become one line, bugs are logged
        return HIDDEN, "", "", None, alert_from(e), (bump or 0) + 1
    return (*keep, no_update, ok_box(msg), (bump or 0) + 1)


def _cancel_is_actual(rt: Any, incident_id: str) -> bool:
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
    """Delivery state from its one source, the store's deliveries (through the outbox)."""
    if ctx.triggered_id == "warn-poll" and tab != "warn":
        raise PreventUpdate
    if not incident_id:
        return html.Div("—")
    rt = runtime.current()
    state = rt.service().get(incident_id)
    sent = [a.identifier for a in state.alerts if a.was_sent]
    rows = [d for ident in sent for d in rt.outbox().deliveries(ident)]
    return delivery_rows(state, rows)


# ------------------------------------------------------------------ the second commander's review

_SHOWN_LOCK = threading.Lock()
_SHOWN_TO: dict[tuple[str, str], str] = {}        # in-process callers: (commander, identifier) -> sha256 shown
_SHOWN_KEY = "yzt_warn_shown"                     # over HTTP: in the signed session, whichever worker answers
_SHOWN_KEEP = 8


def _remember_shown(actor: Any, identifier: str, sha: str) -> None:
    from flask import has_request_context, session
    if has_request_context():
        seen = {k: v for k, v in (session.get(_SHOWN_KEY) or {}).items() if k != identifier}
        seen[identifier] = [_name(actor), sha]
        session[_SHOWN_KEY] = dict(list(seen.items())[-_SHOWN_KEEP:])
        return
    with _SHOWN_LOCK:
        _SHOWN_TO[(_name(actor), identifier)] = sha


def _shown_sha(actor: Any, identifier: str) -> str | None:
    """The sha256 of draft ``identifier`` as ``actor`` was shown it in full (None: never shown to them)."""
    from flask import has_request_context, session
    if has_request_context():
        who, sha = (session.get(_SHOWN_KEY) or {}).get(identifier) or (None, None)
        return sha if who == _name(actor) else None
    with _SHOWN_LOCK:
        return _SHOWN_TO.get((_name(actor), identifier))


def awaiting_approval(rt: Any, incident_id: str) -> list[dict]:
    """The incident's unsent Actual drafts the service says need a second commander, newest first."""
    svc = rt.service(exercise=False)
    state = svc.get(incident_id)
    out = []
    for rec in reversed(state.alerts):
        if rec.was_sent or rec.voided or rec.status != "Actual" or not svc.needs_second_commander(state, rec):
            continue
        out.append({"label": f"{rec.identifier} · {rec.headline_zh} · {rec.drafted_by} {short_time(rec.drafted_at)}",
                    "value": rec.identifier})
    return out


def review(rt: Any, incident_id: str, identifier: str, *, actor: Any) -> dict:
    """Show ``actor`` the whole stored draft and remember, on the server, the content's sha256 they saw."""
    data = _with_check(rt, record_data(rt.service().get(incident_id), identifier))
    _remember_shown(actor, identifier, data["content_sha256"])
    return data


def approve_shown(rt: Any, shown: dict | None, *, actor: Any) -> str:
    """Approve the draft named in ``shown`` ({incident_id, identifier}); only if this commander was shown it
    in full, and bound to the content they were shown."""
    if not isinstance(shown, dict) or not isinstance(shown.get("identifier"), str) \
            or not isinstance(shown.get("incident_id"), str):
        raise AlertError("choose the draft to approve and read it first / 请先选择并审阅预警")
    ident = shown["identifier"]
    seen = _shown_sha(actor, ident)
    svc = rt.service(exercise=False)
    if seen is None:
        raise svc.refuse(shown["incident_id"], ident, "approve", f"alert {ident} was not shown to {_name(actor)} "
                         "in full: review it before approving / 请先审阅全文", actor=actor)
    svc.approve_alert(shown["incident_id"], ident, actor=actor, content_sha256=seen)
    return ident


@callback(Output("warn-approve-pick", "options"), Output("warn-approve-pick", "value"),
          Input("incident-selected", "data"), Input("app-bump", "data"), Input("warn-poll", "n_intervals"),
          State("warn-approve-pick", "value"), State("right-tabs", "value"))
@guarded("view")
def list_awaiting(incident_id: str | None, _bump, _n, picked: str | None, tab: str | None):
    if ctx.triggered_id == "warn-poll" and tab != "warn":
        raise PreventUpdate
    if not incident_id or not can_approve():
        return [], (None if picked else no_update)
    options = awaiting_approval(runtime.current(), incident_id)
    keep = picked if any(o["value"] == picked for o in options) else None
    return options, (keep if keep != picked else no_update)     # an unchanged pick fires no review


def can_approve() -> bool:
    from flask import has_request_context
    return can("alert.approve") if has_request_context() else True


@callback(Output("warn-approve-body", "children"), Output("warn-approve-shown", "data"),
          Output("warn-approve", "disabled"), Output("warn-draft", "data", allow_duplicate=True),
          Input("warn-approve-pick", "value"), State("incident-selected", "data"), State("app-actor", "value"),
          prevent_initial_call=True)
@guarded("view")
def on_review(identifier: str | None, incident_id: str | None, actor: str | None):
    """The whole message for the approving commander, its area on the map; only then the button works.
    (Guarded as a view so that clearing the pick is never a refusal; a review itself needs alert.approve.)"""
    if not identifier or not incident_id:
        return None, None, True, no_update
    try:
        require("alert.approve")
        data = review(runtime.current(), incident_id, identifier, actor=acting(actor or T("app.actor")))
    except Exception as e:  # noqa: BLE001 - refusals become one line, bugs are logged
        return alert_from(e), None, True, no_update
    return preview(data), ids_of(data), False, data


@callback(Output("app-alert", "children", allow_duplicate=True), Output("app-bump", "data", allow_duplicate=True),
          Output("warn-approve", "disabled", allow_duplicate=True),
          Input("warn-approve", "n_clicks"), State("warn-approve-shown", "data"), State("app-actor", "value"),
          State("app-bump", "data"), prevent_initial_call=True)
@guarded("alert.approve")
def on_approve(n: int | None, shown: dict | None, actor: str | None, bump: Any):
    if not n:
        raise PreventUpdate
    try:
        ident = approve_shown(runtime.current(), shown, actor=acting(actor or T("app.actor")))
    except Exception as e:  # noqa: BLE001 - refusals become one line, bugs are logged
        return alert_from(e), (bump or 0) + 1, no_update
    return ok_box(f"已批准 approved {ident}"), (bump or 0) + 1, True
