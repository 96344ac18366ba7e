"""The dashboard's nearby tables say when the place is approximate (issue 14), over the real layers."""
from __future__ import annotations

import json
from types import SimpleNamespace

import plotly.utils

from command.dashboard.nearby import layer_table, nearby_tables
from incidents.geocode import locate
from layers.nearby import around

LAYERS = ("hospital", "fire_station", "shelter", "camera")


def _text(component) -> str:
    return json.dumps(component, cls=plotly.utils.PlotlyJSONEncoder, ensure_ascii=False)


def _distance_cells(components) -> list[str]:
    """The text of each row's distance cell (the third), in every table."""
    from dash import html
    out = []

    def walk(c):
        if isinstance(c, html.Tr) and isinstance(c.children, list) and isinstance(c.children[0], html.Td):
            out.append(_text(c.children[2]))
        kids = getattr(c, "children", None)
        for k in kids if isinstance(kids, list) else [kids] if kids is not None else []:
            walk(k)
    for c in components:
        walk(c)
    return out


def _state(uncertainty_m: float) -> SimpleNamespace:
    loc = locate("东莞市虎门镇")
    return SimpleNamespace(nearby={layer: around(layer, loc.point, k=5, uncertainty_m=uncertainty_m)
                                   for layer in LAYERS})


def test_an_uncertain_place_is_said_approximate_where_the_resources_are_listed():
    state = _state(6000)
    tables = nearby_tables(state, {})
    page = _text(tables)
    assert "nearby-approximate" in page and "6,000" in page and "Approximate place" in page
    cells = _distance_cells(tables)
    assert len(cells) == sum(len(v) for v in state.nearby.values()) > 20
    assert all("≈" in c for c in cells)
    inside = sum(d["in_uncertainty_area"] for d in state.nearby["camera"])
    assert sum("in area" in c for c in cells) == inside > 5           # the cameras inside the circle, only
    hospital = dict(state.nearby["hospital"][0], in_uncertainty_area=True)
    assert "in area" not in _text(layer_table("hospital", [hospital], True))


def test_a_sure_place_shows_plain_distances():
    tables = nearby_tables(_state(0), {})
    cells = _distance_cells(tables)
    assert len(cells) == 20 and not any("≈" in c or "in area" in c for c in cells)
    assert "nearby-approximate" not in _text(tables)
