"""The one-screen layout: header (signed-in user and role, sign-out, language, mode), left (report + incident list), centre (map),
right (tabs: nearby, cameras, group, warn, export). ``layout()`` is a function: it reads live state
(types, layers, districts) when a page is served, never at import.
"""
from __future__ import annotations

from typing import Any

from dash import Input, Output, callback, dcc, html

from command.dashboard import (cameras, export_view, group, incidents_list, mapview, nearby, playback, report, runtime,
                               sync, trainer, warn)
from command.dashboard.i18n import L
from command.dashboard.security import csrf_token, guarded, principal


def _header(settings: Any) -> html.Div:
    live = [c.name for c in settings.channels if c.mode == "live"]
    mode = f"渠道 channels: {len(live)} live · {len(settings.channels) - len(live)} exercise"
    return html.Div([
        html.H1(L("app.title")),
        *_who(),
        html.Span(style={"flex": 1}),
        dcc.RadioItems(id="app-lang", value="zh", inline=True, persistence=True, className="yzt-lang",
                       options=[{"label": " 中文 ", "value": "zh"}, {"label": " EN ", "value": "en"}]),
        html.Span(mode, className="yzt-mode"),
    ], className="yzt-header")


ROLE_ZH = {"viewer": "只读", "officer": "值班员", "commander": "指挥员", "admin": "管理员", "trainer": "导调"}


def _who() -> list:
    """The signed-in user and role, and the sign-out form (the actor of every action is this user)."""
    p = principal()
    if p is None:
        return [dcc.Input(id="app-actor", type="hidden", value="")]
    return [
        html.Span([html.B(p.name, id="app-user"), f" · {ROLE_ZH.get(p.role, p.role)} ",
                   html.Span(p.role, id="app-role", className="i18n-en")],
                  style={"color": "#cfd8e3"}),
        dcc.Input(id="app-actor", type="hidden", value=p.name),
        html.Form([dcc.Input(type="hidden", name="csrf", value=csrf_token()),
                   html.Button(["退出 ", html.Span("Sign out", className="i18n-en")], id="app-logout", type="submit")],
                  action="/logout", method="POST", style={"margin": 0}),
    ]


def _tabs() -> dcc.Tabs:
    def tab(key: str, label: str, body: Any) -> dcc.Tab:
        return dcc.Tab(body, label=label, value=key, className="tab", selected_className="tab")
    return dcc.Tabs(id="right-tabs", value="nearby", className="yzt-tabs", children=[
        tab("nearby", "周边 Nearby", html.Div(id="nearby-body")),
        tab("cameras", "视频 Cameras", cameras.wall_panel()),
        tab("group", "工作组 Group", group.group_panel()),
        tab("warn", "预警 Warn", warn.warn_panel()),
        tab("export", "导出 Export", export_view.export_panel()),
    ])


def layout() -> html.Div:
    settings = runtime.current().settings
    if trainer.is_trainer(principal()):          # the trainer's page: start, control, report, playback (its own
        # ticks; no sync poll: that callback draws the list and the markers this page has not, and a callback
        # whose inputs are missing is a renderer error on every tick)
        return html.Div([trainer.page(settings, _header(settings)), html.Div(id="app-alert")],
                        id="app-root", className="lang-zh", style={"display": "block"})
    played = runtime.current().exercise()        # a player of a live exercise: the banner on every view
    return html.Div([
        trainer.banner(played) if played is not None else None,
        _header(settings),
        html.Div([
            html.Div([report.report_form(), incidents_list.list_panel()], className="yzt-left"),
            html.Div([mapview.map_panel(settings), html.Div(id="app-alert")], className="yzt-center"),
            html.Div([_tabs()], className="yzt-right"),
        ], className="yzt-main"),
        sync.sync_components(),
    ], id="app-root", className="lang-zh",
        style={"gridTemplateRows": "26px 40px 1fr"} if played is not None else None)


@callback(Output("app-root", "className"), Input("app-lang", "value"))
@guarded("view")
def switch_language(lang: str | None) -> str:
    return "lang-en" if lang == "en" else "lang-zh"


@callback(Output("app-alert", "children", allow_duplicate=True), Input("app-alert-close", "n_clicks"),
          prevent_initial_call=True)
@guarded("view")
def dismiss_alert(n: int | None):
    from dash.exceptions import PreventUpdate
    if not n:
        raise PreventUpdate
    return None


@callback(Output("nearby-body", "children"), Input("incident-selected", "data"))
@guarded("view")
def render_nearby(incident_id: str | None) -> list:
    return nearby.render(incident_id)
