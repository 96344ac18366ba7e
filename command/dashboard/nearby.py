"""Around the incident: ranked tables of hospitals, fire stations (drive time on the road graph where it
covers the route, a labelled straight-line estimate otherwise), shelters and cameras, each with its
distance in metres. A click on a row flies the map there. Around an uncertain point (a township or district
match) a line says the distances are approximate (± the uncertainty), each distance reads "≈", and the cameras,
spread over the uncertainty circle by the service, are tagged when they lie inside it.

    nearby_tables(state, flags)      # the tables, from state.nearby (computed by the service at report)
"""
from __future__ import annotations

from typing import Any

from dash import ALL, Input, Output, callback, ctx, html
from dash.exceptions import PreventUpdate

from command.dashboard import runtime
from command.dashboard.common import fmt_duration, fmt_m
from command.dashboard.i18n import LL, L
from command.dashboard.security import guarded

ORDER = ("hospital", "fire_station", "shelter", "camera")


def _drive(item: dict) -> Any:
    if item.get("drive_time_s") is None:
        return "—"
    if item.get("drive_time_method") == "road_graph":
        return html.Span([fmt_duration(item["drive_time_s"]), " ", html.Span(L("drive.road"), className="yzt-tag real")])
    return html.Span(["≈", fmt_duration(item["drive_time_s"]), " ", html.Span(L("drive.estimate"), className="yzt-est")])


def _info(layer: str, item: dict) -> str:
    if layer == "hospital":
        return " ".join(str(x) for x in (item.get("grade") or "", f"{item['beds']}床" if item.get("beds") else "") if x)
    if layer == "camera":
        return f"{item.get('heading_deg', '')}° / {item.get('fov_deg', '')}°"
    return str(item.get("district_adcode") or "")


def uncertainty_of(nearby: dict[str, list[dict]] | None) -> float | None:
    """The ± metres of an approximate nearby answer (None when the point was sure)."""
    for items in (nearby or {}).values():
        for it in items:
            if it.get("approximate"):
                return float(it.get("distance_uncertainty_m") or 0)
    return None


def approximate_note(u: float) -> html.Div:
    return html.Div(LL(f"位置为约略位置：事发点可能在 {u:,.0f} 米范围内，距离均为近似值（± {u:,.0f} 米），"
                       f"摄像头覆盖整个范围",
                       f"Approximate place: the incident may lie anywhere within {u:,.0f} m, so every distance "
                       f"is ± {u:,.0f} m; the cameras cover that whole area"),
                    id="nearby-approximate", className="yzt-est")


def _distance(layer: str, it: dict) -> Any:
    """The distance; around an uncertain point "≈" it, and a camera inside the circle is tagged so."""
    if not it.get("approximate"):
        return fmt_m(it.get("distance_m"))
    cell: list = ["≈" + fmt_m(it.get("distance_m"))]
    if layer == "camera" and it.get("in_uncertainty_area"):
        cell += [" ", html.Span(LL("范围内", "in area"), className="yzt-tag")]
    return html.Span(cell)


def layer_table(layer: str, items: list[dict], synthetic: bool) -> html.Div:
    head = [html.Th(L("col.rank")), html.Th(L("col.name")), html.Th(L("col.distance"))]
    if layer == "fire_station":
        head.append(html.Th(L("col.drive")))
    head.append(html.Th(L("col.info")))
    rows = []
    for i, it in enumerate(items):
        cells = [html.Td(i + 1), html.Td(it.get("name") or it["id"]), html.Td(_distance(layer, it))]
        if layer == "fire_station":
            cells.append(html.Td(_drive(it)))
        cells.append(html.Td(_info(layer, it)))
        rows.append(html.Tr(cells, className="clickable", n_clicks=0,
                            id={"type": "nearby-row", "layer": layer, "index": i, "lat": it["lat"], "lon": it["lon"]}))
    tag = html.Span(L("synthetic" if synthetic else "real"), className="yzt-tag" + ("" if synthetic else " real"))
    return html.Div([html.H3([L("layer." + layer), tag]),
                     html.Table([html.Thead(html.Tr(head)), html.Tbody(rows)], className="yzt-table",
                                id=f"nearby-table-{layer}")])


def nearby_tables(state: Any, flags: dict[str, bool]) -> list:
    out: list = [html.Div(L("nearby.fly"), style={"color": "#4a5668", "fontSize": "11px"})]
    u = uncertainty_of(state.nearby)
    if u is not None:
        out.append(approximate_note(u))
    for layer in ORDER:
        items = (state.nearby or {}).get(layer)
        if items is not None:
            out.append(layer_table(layer, items, flags.get(layer, True)))
    return out


@callback(Output("map", "viewport", allow_duplicate=True),
          Input({"type": "nearby-row", "layer": ALL, "index": ALL, "lat": ALL, "lon": ALL}, "n_clicks"),
          prevent_initial_call=True)
@guarded("view")
def fly_to_row(clicks: list) -> dict:
    if not ctx.triggered_id or not any(clicks or []):
        raise PreventUpdate
    t = ctx.triggered_id
    return {"center": [t["lat"], t["lon"]], "zoom": 17, "transition": "flyTo"}


def synthetic_flags() -> dict[str, bool]:
    return {info.name: info.synthetic for info in runtime.current().catalog.list_layers()}


def render(incident_id: str | None) -> list:
    if not incident_id:
        return [html.Div(L("detail.none"))]
    state = runtime.current().service().get(incident_id)
    return nearby_tables(state, synthetic_flags())
