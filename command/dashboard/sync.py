"""Several officers at once: every browser polls about once a second, and ONE callback (``poll``) answers
all it needs: the store's newest event seq (one lookup on the primary key, whatever the history holds) and,
when it moved, the incident list and the map's markers as Patches of what the browser shows
(command.dashboard.live), so an incident reported in one browser shows in all others within the polling
interval. Under 200 officers at 20 reports/s that is one request per officer-second instead of three (the
poll, then the list and the markers because ``sync-seq`` moved). Nothing moved: 204.

The officer's own inputs answer at once through the same callback: a filter change or a selection redraws
the list (only), ``app-bump`` (an action of this page) the list and the markers. The selected incident's
panels follow ``focus-seq``, which the answer sets to the seq only while an incident is selected, so a page
with nothing selected posts nothing for them. ``sync-seq`` holds the seq both the list and the markers were
made at. A new browser starts from the newest seq: its first poll costs what every other poll costs, not a
read of the whole history.

    new_seq(store, since) -> int | None     # the newest seq when it is after ``since``, None otherwise
"""
from __future__ import annotations

from typing import Any

from dash import Input, Output, State, callback, ctx, dcc, html, no_update
from dash.exceptions import PreventUpdate

from command.dashboard import incidents_list, mapview, runtime
from command.dashboard.live import SEQ_MAX_AGE_S
from command.dashboard.security import guarded, recent_session_for

POLL_MS = 1000
TICK = "sync-interval"
LIST_ONLY = frozenset({"incident-selected", "list-level", "list-state", "list-district"})   # the list's own inputs


def sync_components() -> html.Div:
    return html.Div([dcc.Interval(id=TICK, interval=POLL_MS),
                     dcc.Store(id="sync-seq", data=0), dcc.Store(id="focus-seq"), dcc.Store(id="app-bump", data=0),
                     dcc.Store(id="incident-selected"), dcc.Store(id="warn-draft")])


def new_seq(store: Any, since: int) -> int | None:
    latest = store.last_seq(max_age_s=SEQ_MAX_AGE_S)
    return latest if latest > since else None


def _triggers() -> set[str]:
    """The ids of the inputs that fired (several when Dash batches them; none on the page's first call)."""
    return {p.rsplit(".", 1)[0] for p in ctx.triggered_prop_ids} if ctx.triggered_id is not None else set()


OUTPUTS = [Output("sync-seq", "data"), Output("list-items", "children"), Output("list-shown", "data"),
           Output("focus-seq", "data"), Output("map-incidents", "children"), Output("map-shown", "data")]
recent_session_for(OUTPUTS)       # read-only, every second: a worker's read of the session up to 2 s old may do


@callback(*OUTPUTS, Input(TICK, "n_intervals"), Input("app-bump", "data"), Input("incident-selected", "data"),
          Input("list-level", "value"), Input("list-state", "value"), Input("list-district", "value"),
          State("sync-seq", "data"), State("list-shown", "data"), State("map-shown", "data"))
@guarded("view")
def poll(_n: int | None, _bump: Any, selected: str | None, level: str | None, state: str | None,
         district: str | None, seq: int | None, list_shown: Any, map_shown: Any) -> tuple:
    """(seq, list, list token, focus seq, markers, markers token); PreventUpdate when nothing moved."""
    fired = _triggers()
    tick = fired == {TICK}
    if tick and new_seq(runtime.current().store(), int(seq or 0)) is None:
        raise PreventUpdate
    list_seq, *listed = incidents_list.list_answer(selected, level, state, district, list_shown, tick=tick)
    if fired and fired <= LIST_ONLY:              # a filter or a selection: the markers do not depend on it
        return (no_update, *listed, no_update, no_update)
    map_seq, *markers = mapview.markers_answer(map_shown, tick=tick)
    made = min(list_seq, map_seq)                 # the seq both answers are at least as new as
    out = (made if made != int(seq or 0) else no_update, *listed, *markers)
    if all(v is no_update for v in out):
        raise PreventUpdate
    return out
