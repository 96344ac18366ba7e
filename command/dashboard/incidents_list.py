"""The incident list: the newest incidents (``LIST_LIMIT`` of them) with their level badge, filtered by level,
state and district in the store's projection, so a year of history costs what a day does; a click selects it
(map flies there, the right-hand panels follow; the click is
handled in the browser, assets/yzt.js). After each newer seq the browser gets only the rows that changed, as a
Dash Patch (``command.dashboard.live``), in the answer of the sync poll (command.dashboard.sync), which also
answers a filter change or a selection at once.

    list_panel()                          # filters + the list container
    incident_rows(states, selected)       # the rows, newest first (more=True: says older ones are not shown);
    row_items(states, selected)           # the same as (key, digest, build), what live.answer diffs;
                                          # states: IncidentStates or command.response.listing.Listed rows
    list_answer(selected, level, state, district, shown, tick=...)   # (seq, children, token, focus)
"""
from __future__ import annotations

from typing import Any

from dash import dcc, html, no_update

from command.dashboard import live
from command.dashboard.common import badge, short_time
from command.dashboard.i18n import LL, L, T

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
        dcc.Store(id="list-shown"),               # what the list shows (live.answer's token)
    ], id="list-panel")


def _row(s: Any, selected: bool) -> html.Div:
    from incidents.grading import incident_types
    itype = incident_types().get(s.type)
    name = f"{itype.zh} {itype.en}" if itype else s.type
    return html.Div([
        html.Div([badge(s.grade), " ", html.B(name)]),
        html.Div(f"{s.location.matched} · {short_time(s.reported_at)} · "
                 f"{T('state.' + s.state)} {s.state}", className="where"),
        html.Div(s.id, className="where"),
    ], className="yzt-inc-row" + (" selected" if selected else ""),
        id={"type": "list-row", "id": s.id}, **{"data-incident": s.id})    # a click selects (assets/yzt.js)


def _more(n: int) -> html.Div:
    return html.Div(LL(f"仅显示最新 {n} 起; 用筛选查看更早的事件", f"The newest {n} shown; filter to reach older ones"),
                    className="yzt-inc-row where")


def row_items(states: list, selected: str | None, *, more: bool = False) -> list[tuple[str, str, Any]]:
    """(key, digest, build) of each child of the list, newest first: the digest covers all a row is drawn from."""
    if not states:
        return [("empty:", "empty", lambda: html.Div(L("list.empty"), className="yzt-inc-row"))]
    items = []
    for s in sorted(states, key=lambda s: s.reported_at, reverse=True):
        sel = s.id == selected
        items.append((f"row:{s.id}", live.digest(live.row_digest(s), sel), lambda s=s, sel=sel: _row(s, sel)))
    if more:
        n = len(states)
        items.append(("more:", f"more{n}", lambda: _more(n)))
    return items


def incident_rows(states: list, selected: str | None, *, more: bool = False) -> list:
    return [build() for _, _, build in row_items(states, selected, more=more)]


def list_answer(selected: str | None, level: str | None, state: str | None, district: str | None, shown: Any,
                *, tick: bool) -> tuple[int, Any, Any, Any]:
    """(seq, children, token, focus): the list as a Patch of what the browser shows (``command.dashboard.live``;
    the projection's rows are read once per worker per store, filters, scope and seq; only the rows that
    changed are sent), part of the sync poll's answer (command.dashboard.sync). ``tick``: asked because the
    store's seq moved, so a token already made at this seq for this view gets ``no_update``. The selected
    incident's panels follow ``focus``, the seq while one is selected (``no_update`` otherwise)."""
    from command.dashboard.security import principal
    from command.response import listing
    skey, svc = live.where()
    asked = listing.filters(svc, level=level, state=state, district=district, viewer=principal())  # user's scope
    seq, items = live.rows(svc, skey, asked, LIST_LIMIT + 1, lambda: listing.listed(
        svc, level=level, state=state, district=district, viewer=principal(), newest_first=True,
        limit=LIST_LIMIT + 1))                                        # the projection's rows: nothing folded
    view = live.view_of(skey, asked, selected)
    focus = seq if selected else no_update
    if tick and live.unchanged(shown, seq, view):
        return seq, no_update, no_update, focus
    now = live.made(("list", view, seq),                              # made once per view and seq
                    lambda: row_items(items[:LIST_LIMIT], selected, more=len(items) > LIST_LIMIT))
    return (seq, *live.answer(now, shown, seq, view), focus)
