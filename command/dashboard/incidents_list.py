"""The incident list: the newest incidents (``LIST_LIMIT`` of them) with their level badge, filtered by level,
state and district in the store's projection, so a year of history costs what a day does; a click selects it
(map flies there, the right-hand panels follow).

    list_panel()                          # filters + the list container
    incident_rows(states, selected)       # the rows, newest first (more=True: says older ones are not shown);
                                          # states: IncidentStates or command.response.listing.Listed rows
"""
from __future__ import annotations

from typing import Any

from dash import ALL, Input, Output, State, callback, ctx, dcc, html
from dash.exceptions import PreventUpdate

from command.dashboard import runtime
from command.dashboard.common import badge, short_time
from command.dashboard.i18n import LL, L, T
from command.dashboard.security import guarded

LIST_LIMIT = 200                # the newest incidents shown; the filters reach the older ones
LEVEL_OPTIONS = [{"label": f"{lv}", "value": lv} for lv in ("I", "II", "III", "IV")]


def _district_options() -> list[dict]:
    from incidents import admin
    d = admin.districts()[["district_adcode", "district_name", "city_name"]].sort_values("district_adcode")
    return [{"label": f"{r.city_name}{r.district_name}", "value": r.district_adcode} for r in d.itertuples()]


def list_panel() -> html.Div:
    return html.Div([
        html.H2(L("list.title")),
        html.Div([
            dcc.Dropdown(id="list-level", options=LEVEL_OPTIONS, placeholder=T("list.level") + " Level"),
            dcc.Dropdown(id="list-state", placeholder=T("list.state") + " State",
                         options=[{"label": f"{T('state.open')} open", "value": "open"},
                                  {"label": f"{T('state.closed')} closed", "value": "closed"}]),
        ], className="yzt-filters"),
        dcc.Dropdown(id="list-district", options=_district_options(), placeholder=T("list.district") + " District",
                     style={"marginTop": "4px"}),
        html.Div(id="list-items", className="yzt-inc-list"),
    ], id="list-panel")


def incident_rows(states: list, selected: str | None, *, more: bool = False) -> list:
    if not states:
        return [html.Div(L("list.empty"), className="yzt-inc-row")]
    rows = []
    for s in sorted(states, key=lambda s: s.reported_at, reverse=True):
        from incidents.grading import incident_types
        itype = incident_types().get(s.type)
        name = f"{itype.zh} {itype.en}" if itype else s.type
        rows.append(html.Div([
            html.Div([badge(s.grade), " ", html.B(name)]),
            html.Div(f"{s.location.matched} · {short_time(s.reported_at)} · "
                     f"{T('state.' + s.state)} {s.state}", className="where"),
            html.Div(s.id, className="where"),
        ], className="yzt-inc-row" + (" selected" if s.id == selected else ""),
            id={"type": "list-row", "id": s.id}, n_clicks=0, **{"data-incident": s.id}))
    if more:
        rows.append(html.Div(LL(f"仅显示最新 {len(states)} 起; 用筛选查看更早的事件",
                                f"The newest {len(states)} shown; filter to reach older ones"),
                             className="yzt-inc-row where"))
    return rows


@callback(Output("list-items", "children"),
          Input("sync-seq", "data"), Input("app-bump", "data"), Input("incident-selected", "data"),
          Input("list-level", "value"), Input("list-state", "value"), Input("list-district", "value"))
@guarded("view")
def refresh_list(_seq: Any, _bump: Any, selected: str | None, level: str | None, state: str | None,
                 district: str | None) -> list:
    from command.dashboard.security import principal
    from command.response import listing
    items = listing.listed(runtime.current().service(), level=level, state=state, district=district,
                           viewer=principal(),                      # the user's scope only
                           newest_first=True, limit=LIST_LIMIT + 1)     # the projection's rows: nothing folded
    return incident_rows(items[:LIST_LIMIT], selected, more=len(items) > LIST_LIMIT)


@callback(Output("incident-selected", "data", allow_duplicate=True),
          Input({"type": "list-row", "id": ALL}, "n_clicks"), State("incident-selected", "data"),
          prevent_initial_call=True)
@guarded("view")
def select_from_list(clicks: list, current: str | None) -> str:
    if not ctx.triggered_id or not any(clicks or []):
        raise PreventUpdate
    if ctx.triggered_id["id"] == current:
        raise PreventUpdate
    return ctx.triggered_id["id"]
