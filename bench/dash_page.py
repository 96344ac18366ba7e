"""What a chromium dashboard page posts, for the load bench's officers (bench/locustfile.py) to post the same.
A module of its own without locust (importing locust patches the process with gevent), so the browser test
that records a real page (tests/dashboard/browser/test_dashboard_browser.py) can compare them.

    poll_body(n, held) -> dict      # the sync.poll body at the n-th tick, with what the page's stores hold
"""
from __future__ import annotations

POLL_OUTPUTS = [("sync-seq", "data"), ("list-items", "children"), ("list-shown", "data"), ("focus-seq", "data"),
                ("map-incidents", "children"), ("map-shown", "data")]
POLL_INPUTS = [("sync-interval", "n_intervals"), ("app-bump", "data"), ("incident-selected", "data"),
               ("list-level", "value"), ("list-state", "value"), ("list-district", "value")]
POLL_STATE = [("sync-seq", "data"), ("list-shown", "data"), ("map-shown", "data")]
TICK = "sync-interval.n_intervals"


def _value(ident: str, prop: str, value: object) -> dict:
    """One input or state as the renderer sends it: a component property the page never set has no value."""
    return {"id": ident, "property": prop} if value is None else {"id": ident, "property": prop, "value": value}


def poll_body(n: int, held: dict[str, object]) -> dict:
    """The body a chromium page posts for sync.poll at its ``n``-th tick, nothing selected and no filter set:
    ``held`` is what its dcc.Stores hold ({"sync-seq": ..., "list-shown": ..., "map-shown": ...}; empty at
    first). Recorded from the real page by tests/dashboard/browser/test_dashboard_browser.py."""
    given = {"sync-interval": n, "app-bump": 0, "sync-seq": 0, **held}     # the layout's initial data
    return {"output": ".." + "...".join(f"{i}.{p}" for i, p in POLL_OUTPUTS) + "..",
            "outputs": [{"id": i, "property": p} for i, p in POLL_OUTPUTS],
            "inputs": [_value(i, p, given.get(i)) for i, p in POLL_INPUTS],
            "changedPropIds": [TICK], "parsedChangedPropsIds": [TICK],
            "state": [_value(i, p, given.get(i)) for i, p in POLL_STATE]}
