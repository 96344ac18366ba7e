"""The response group: roster, conference link, tasks (add / complete), the timeline, and the casualty
update that makes the service regrade (the Regraded event shows on the timeline and the badge follows).

    group_panel()            # static forms + containers filled by ``render``
    render(incident_id)      # roster, conference, tasks, timeline of the incident
    on_close                 # a commander closes the incident ("incident.close")
    event_line(event)        # one timeline line for any event kind
"""
from __future__ import annotations

from typing import Any

from dash import ALL, Input, Output, State, callback, ctx, dcc, html, no_update
from dash.exceptions import PreventUpdate

from command.dashboard import runtime
from command.dashboard.common import alert_from, badge, ok_box, short_time
from command.dashboard.i18n import L, T
from command.dashboard.report import _count
from command.dashboard.security import actor as acting, can, guarded
from incidents.model import Casualties


def _num(fid: str, label: str) -> html.Div:
    return html.Div([html.Label(L(label)), dcc.Input(id=fid, type="number", min=0, step=1)], className="yzt-field")


def _shown(action: str, display: str = "inline-block") -> dict:
    """Hide what the signed-in role cannot use (the server checks again on every callback)."""
    return {"display": display} if can(action) else {"display": "none"}


def group_panel() -> html.Div:
    return html.Div([
        html.Div(id="group-summary"),
        html.H3(L("group.update")),
        html.Div([_num("group-deaths", "report.deaths"), _num("group-serious", "report.serious"),
                  _num("group-missing", "report.missing"), _num("group-loss", "report.loss")], className="yzt-row"),
        html.Button(L("group.update"), id="group-update", n_clicks=0, style=_shown("incident.update")),
        html.Div(id="group-roster"),
        html.H3(L("group.tasks")),
        html.Div(id="group-tasks"),
        html.Div([dcc.Input(id="group-task-role", placeholder=T("group.role") + " role", style={"flex": 1}),
                  dcc.Input(id="group-task-text", placeholder=T("group.task_text") + " task", style={"flex": 2}),
                  html.Button(L("group.add_task"), id="group-task-add", n_clicks=0)], className="yzt-row",
                 style=_shown("task.set", "flex")),
        html.Div([dcc.Input(id="group-close-reason", placeholder="关闭原因 reason", style={"flex": 2}),
                  html.Button(["关闭事件 ", html.Span("Close incident", className="i18n-en")], id="group-close",
                              n_clicks=0, className="danger")], className="yzt-row", style=_shown("incident.close", "flex")),
        html.H3(L("group.timeline")),
        html.Ul(id="group-timeline", className="yzt-timeline"),
    ])


def event_line(ev: Any) -> str:
    """A one-line description of a timeline event (kinds from command.response.timeline)."""
    k = ev.kind
    if k == "Reported":
        return f"首报 reported: {ev.location.get('matched', '')} · {ev.grade['name']}({ev.grade['level']})"
    if k == "Regraded":
        return f"{ev.from_level} → {ev.to_level}: {ev.reason}"
    if k == "Updated":
        return "更新 updated: " + ", ".join(f"{a}={b}" for a, b in ev.changes.items())
    if k == "MemberJoined":
        return f"加入 joined: {ev.role} {ev.org} ({ev.reason})"
    if k == "ConferenceOpened":
        return f"会议 conference: {ev.link}"
    if k == "TaskSet":
        return f"任务 task {ev.task_id} [{ev.role}] {ev.text}"
    if k == "TaskDone":
        return f"完成 done {ev.task_id}"
    if k.startswith("Alert"):
        extra = getattr(ev, "channel", "") or getattr(ev, "msg_type", "")
        return f"{k} {ev.identifier} {extra} {getattr(ev, 'error', '')}".strip()
    if k == "NoteAdded":
        return f"备注 note: {ev.text}"
    if k == "Closed":
        return f"关闭 closed {ev.reason}"
    return k


def _css(kind: str) -> str:
    return "Alert" if kind.startswith("Alert") else kind


def timeline_items(state: Any) -> list:
    return [html.Li([html.Span(short_time(ev.at), className="where"), " ", html.Span(ev.actor), ": ", event_line(ev)],
                    className=_css(ev.kind)) for ev in reversed(state.events)]


def roster(state: Any) -> html.Div:
    rows = [html.Tr([html.Td(m.role), html.Td(m.org), html.Td(m.level_of_government)]) for m in state.group.members]
    conf = state.group.conference
    link = [html.A(conf.link, href=conf.link, target="_blank")] + ([f" ☎ {conf.dial}"] if conf and conf.dial else []) \
        if conf else ["—"]
    return html.Div([html.H3(L("group.roster")), html.Table(html.Tbody(rows), className="yzt-table"),
                     html.Div([html.B(L("group.conference")), ": ", *link], id="group-conference")])


def tasks(state: Any) -> list:
    out = []
    for t in state.tasks:
        done = html.Span(f"✓ {short_time(t.done_at)}") if t.done_at else html.Button(
            L("group.done"), id={"type": "group-task-done", "id": t.id}, n_clicks=0)
        out.append(html.Div([html.B(t.id), f" [{t.role}] {t.text} ", done], className="yzt-inc-row"))
    return out or [html.Div("—")]


def summary(state: Any) -> html.Div:
    c = state.casualties
    return html.Div([badge(state.grade, with_rule=True),
                     html.Div(f"{state.id} · {state.location.matched} · 死亡 {c.deaths} 重伤 {c.serious_injuries} "
                              f"失踪 {c.missing} · ¥{state.economic_loss_cny:,.0f}", className="where")],
                    id="group-badge")


@callback(Output("group-summary", "children"), Output("group-roster", "children"), Output("group-tasks", "children"),
          Output("group-timeline", "children"),
          Input("incident-selected", "data"), Input("focus-seq", "data"), Input("app-bump", "data"))
@guarded("view")
def render(incident_id: str | None, _seq: Any, _bump: Any):
    if not incident_id:
        return html.Div(L("detail.none")), [], [], []
    state = runtime.current().service().get(incident_id)
    return summary(state), roster(state), tasks(state), timeline_items(state)


@callback(Output("group-deaths", "value"), Output("group-serious", "value"), Output("group-missing", "value"),
          Output("group-loss", "value"), Input("incident-selected", "data"))
@guarded("view")
def fill_update_form(incident_id: str | None):
    if not incident_id:
        raise PreventUpdate
    s = runtime.current().service().get(incident_id)
    return s.casualties.deaths, s.casualties.serious_injuries, s.casualties.missing, s.economic_loss_cny


def update_casualties(svc: Any, incident_id: str, values: dict, *, actor: str):
    cas = Casualties(deaths=_count(values.get("deaths"), "deaths"),
                     serious_injuries=_count(values.get("serious"), "serious injuries"),
                     missing=_count(values.get("missing"), "missing"))
    loss = values.get("loss")
    return svc.update(incident_id, actor=actor, casualties=cas,
                      economic_loss_cny=float(loss) if loss not in (None, "") else None)


@callback(Output("app-alert", "children", allow_duplicate=True), Output("app-bump", "data", allow_duplicate=True),
          Input("group-update", "n_clicks"), Input("group-task-add", "n_clicks"),
          Input({"type": "group-task-done", "id": ALL}, "n_clicks"),
          State("incident-selected", "data"), State("group-deaths", "value"), State("group-serious", "value"),
          State("group-missing", "value"), State("group-loss", "value"), State("group-task-role", "value"),
          State("group-task-text", "value"), State("app-actor", "value"), State("app-bump", "data"),
          prevent_initial_call=True)
@guarded({"group-update": "incident.update", "group-task-add": "task.set", "group-task-done": "task.done",
          None: "incident.update"})
def on_group_action(_u, _a, done_clicks, incident_id, deaths, serious, missing, loss, role, text, actor, bump):
    trig = ctx.triggered_id
    if not incident_id or trig is None or (isinstance(trig, dict) and not any(done_clicks or [])):
        raise PreventUpdate
    svc, actor = runtime.current().service(), acting(actor or T("app.actor"))
    try:
        if trig == "group-update":
            s = update_casualties(svc, incident_id, {"deaths": deaths, "serious": serious, "missing": missing,
                                                     "loss": loss}, actor=actor)
            msg: Any = html.Span([s.id, " ", badge(s.grade)])
        elif trig == "group-task-add":
            if not (text or "").strip():
                raise ValueError("任务内容为空 / the task needs some text")
            msg = svc.add_task(incident_id, (role or "").strip() or "指挥部", text.strip(), actor=actor)
        else:
            svc.complete_task(incident_id, trig["id"], actor=actor)
            msg = f"✓ {trig['id']}"
    except Exception as e:  # noqa: BLE001 - refusals become one line, bugs are logged
        return alert_from(e), no_update
    return ok_box(msg), (bump or 0) + 1


@callback(Output("app-alert", "children", allow_duplicate=True), Output("app-bump", "data", allow_duplicate=True),
          Input("group-close", "n_clicks"), State("incident-selected", "data"), State("group-close-reason", "value"),
          State("app-actor", "value"), State("app-bump", "data"), prevent_initial_call=True)
@guarded("incident.close")
def on_close(n: int | None, incident_id: str | None, reason: str | None, actor: str | None, bump: Any):
    if not n or not incident_id:
        raise PreventUpdate
    try:
        state = runtime.current().service().close(incident_id, actor=acting(actor or T("app.actor")),
                                                  reason=(reason or "").strip())
    except Exception as e:  # noqa: BLE001 - refusals become one line, bugs are logged
        return alert_from(e), no_update
    return ok_box(f"{state.id} 已关闭 closed"), (bump or 0) + 1
