"""Several officers at once: every browser polls the store's newest event seq (about once a second, one
lookup on the primary key, whatever the history holds) and bumps ``sync-seq`` when it moved, so an incident
reported in one browser shows in all others within the polling interval. The list and the markers follow
``sync-seq`` (as Patches, command.dashboard.live); the selected incident's panels follow ``focus-seq``, which
the list's answer sets to the seq only while an incident is selected (no round trip of its own), so a page
with nothing selected posts nothing for them. A new browser starts from the
newest seq: its first poll costs what every other poll costs, not a read of the whole history.

    new_seq(store, since) -> int | None     # the newest seq when it is after ``since``, None otherwise
"""
from __future__ import annotations

from typing import Any

from dash import Input, Output, State, callback, dcc, html
from dash.exceptions import PreventUpdate

from command.dashboard import runtime
from command.dashboard.security import guarded

POLL_MS = 1000
SEQ_MAX_AGE_S = 0.25     # a worker's polls share one read of the newest seq per quarter second


def sync_components() -> html.Div:
    return html.Div([dcc.Interval(id="sync-interval", interval=POLL_MS),
                     dcc.Store(id="sync-seq", data=0), dcc.Store(id="focus-seq"), dcc.Store(id="app-bump", data=0),
                     dcc.Store(id="incident-selected"), dcc.Store(id="warn-draft")])


def new_seq(store: Any, since: int) -> int | None:
    latest = store.last_seq(max_age_s=SEQ_MAX_AGE_S)
    return latest if latest > since else None


@callback(Output("sync-seq", "data"), Input("sync-interval", "n_intervals"), State("sync-seq", "data"))
@guarded("view")
def poll(_n: int | None, seq: int | None) -> int:
    latest = new_seq(runtime.current().store(), int(seq or 0))
    if latest is None:
        raise PreventUpdate
    return latest
