"""The map: admin outlines and place names (always, no tiles needed: district names, township names from
zoom 11, community names from 14, the road graph where the data has one, shelters), optional basemap
(Tianditu when a key is configured), clustered resource layers served once from Flask, the incidents with
their level badge and a circle of their uncertainty, the focus (rings, warned area), and a place search
(the geocoder's candidates: choosing one flies there; "设为事件位置" puts it in the report form).

    map_panel(settings)            # the map and its legend, built when the page is served
    incident_markers(states)       # DivMarkers, one per incident, with the level in the badge
    focus_layer(state, draft)      # warning ring, warned area preview, nearby resources

    markers_answer(shown, tick=...)  # (seq, children, token): the sync poll's markers (command.dashboard.sync)

Callbacks: incidents redraw on every sync tick that brought events (as a Patch of the markers that changed,
``command.dashboard.live``, in the sync poll's answer); a click on a marker selects it (in the browser, assets/yzt.js); a click on the map
fills the report form's coordinates (WGS84); selecting an incident flies there.
"""
from __future__ import annotations

import math
from typing import Any

import dash_leaflet as dl
from dash import ALL, Input, Output, State, callback, ctx, dcc, html, no_update
from dash.exceptions import PreventUpdate

from command.dashboard import live, runtime
from command.dashboard.common import grade_dict
from command.dashboard.security import guarded
from command.dashboard.i18n import L, T

GD_CENTER = [23.2, 113.4]
TIANDITU = ("https://t{s}.tianditu.gov.cn/{layer}_w/wmts?SERVICE=WMTS&REQUEST=GetTile&VERSION=1.0.0&LAYER={layer}"
            "&STYLE=default&TILEMATRIXSET=w&FORMAT=tiles&TILEMATRIX={{z}}&TILEROW={{y}}&TILECOL={{x}}&tk={key}")
LAYER_STYLE = {"hospital": ("#c2185b", 5), "fire_station": ("#e65100", 5), "shelter": ("#2e7d32", 5),
               "camera": ("#5e35b1", 3)}
ADMIN_STYLE = {"province": ("#0f2a4a", 2.5), "city": ("#34567a", 1.5), "district": ("#8aa0b8", 0.7)}
LEVEL_COLOUR = {"I": "#d7191c", "II": "#f28c28", "III": "#e6b800", "IV": "#1f6fd1"}


def _synthetic_flags() -> dict[str, bool]:
    return {info.name: info.synthetic for info in runtime.current().catalog.list_layers()}


def _basemaps(settings: Any) -> list:
    out = []
    if settings.basemap_url:
        out.append(dl.BaseLayer(dl.TileLayer(url=settings.basemap_url, maxZoom=19), name=T("layer.basemap"),
                                checked=True))
    if settings.tianditu_key:
        tiles = [dl.TileLayer(url=TIANDITU.format(s="{s}", layer=lay, key=settings.tianditu_key),
                              subdomains="01234567", maxZoom=18) for lay in ("vec", "cva")]
        out.append(dl.BaseLayer(dl.LayerGroup(tiles), name="天地图 Tianditu", checked=not out))
    return out


def _admin_overlays() -> list:
    out = []
    for level, (colour, weight) in ADMIN_STYLE.items():
        out.append(dl.Overlay(dl.GeoJSON(
            url=f"/yzt/geo/admin/{level}.geojson", id=f"map-admin-{level}", interactive=False,
            style={"variable": "yzt.adminStyle"}, hideout={"color": colour, "weight": weight}),
            name=f"{T('layer.' + level)} {T('layer.' + level, 'en')}", checked=level != "district"))
    return out


LABELS = (("district", "区县名称 district names"), ("township", "乡镇街道名称 township names (zoom 11+)"),
          ("community", "村社区名称 community names (zoom 14+)"))


def _label_overlays() -> list:
    out = []
    for level, name in LABELS:
        out.append(dl.Overlay(dl.GeoJSON(
            url=f"/yzt/geo/labels/{level}.geojson", id=f"map-labels-{level}", interactive=False,
            pointToLayer={"variable": "yzt.label"}, hideout={"level": level}), name=name, checked=True))
    out.append(dl.Overlay(dl.GeoJSON(url="/yzt/geo/roads.geojson", id="map-roads",
                                     style={"variable": "yzt.roadStyle"}, onEachFeature={"variable": "yzt.road"}),
                          name="道路 roads (OSM, Futian)", checked=True))
    return out


def _layer_overlays(flags: dict[str, bool], *, has_tiles: bool = True) -> list:
    """Resource layers; without a basemap the 120k-camera clusters start hidden (they would cover the names
    and outlines the officer reads the map by) and are one click away in the layer control."""
    out = []
    for name, (colour, radius) in LAYER_STYLE.items():
        if name not in flags:
            continue
        tag = "模拟 synthetic" if flags[name] else ""
        label = f"{T('layer.' + name)} {T('layer.' + name, 'en')}" + (" (模拟 synthetic)" if flags[name] else "")
        out.append(dl.Overlay(dl.GeoJSON(
            url=f"/yzt/geo/layer/{name}.geojson", id=f"map-layer-{name}", cluster=True, zoomToBounds=False,
            superClusterOptions={"radius": 90 if name == "camera" else 60, "maxZoom": 17},
            pointToLayer={"variable": "yzt.point"}, clusterToLayer={"variable": "yzt.cluster"},
            hideout={"color": colour, "radius": radius, "tag": tag}),
            name=label, checked=name == "shelter" or (name == "camera" and has_tiles)))
    return out


def legend(flags: dict[str, bool], has_tiles: bool) -> html.Div:
    rows: list[Any] = [html.B(L("legend.title"))]
    for name, (colour, _) in LAYER_STYLE.items():
        if name in flags:
            tag = html.Span(L("synthetic" if flags[name] else "real"),
                            className="yzt-tag" + ("" if flags[name] else " real"))
            rows.append(html.Div([html.Span(className="dot", style={"background": colour}),
                                  L("layer." + name), tag]))
    rows.append(html.Div([html.Span(lv, className=f"yzt-badge lvl-{lv}", style={"marginRight": "2px"})
                          for lv in ("I", "II", "III", "IV")]))
    if not has_tiles:
        rows.append(html.Div(L("legend.no_tiles"), style={"color": "#4a5668"}))
    return html.Div(rows, className="yzt-legend", id="map-legend")


def map_panel(settings: Any) -> html.Div:
    flags = _synthetic_flags()
    bases = _basemaps(settings)
    overlays = _admin_overlays() + _label_overlays() + _layer_overlays(flags, has_tiles=bool(bases))
    the_map = dl.Map(
        id="map", center=GD_CENTER, zoom=8, minZoom=6, maxZoom=19, preferCanvas=True, trackViewport=True,
        children=[dl.LayersControl(bases + overlays, id="map-layers", collapsed=True, position="topright"),
                  dl.LayerGroup(id="map-focus"), dl.LayerGroup(id="map-incidents"),
                  dcc.Store(id="map-shown"),            # what map-incidents shows (live.answer's token)
                  dl.LayerGroup(id="map-pick"), dl.ScaleControl(position="bottomright", imperial=False)])
    return html.Div([the_map, search_box(), legend(flags, bool(bases))], className="yzt-mapwrap")


def search_box() -> html.Div:
    """The place search on the map: the geocoder's candidates for what is typed."""
    return html.Div([dcc.Input(id="map-search", type="search", debounce=True, placeholder="搜索地点 search a place",
                               maxLength=80),
                     dcc.Store(id="map-search-items"), html.Div(id="map-search-results")],
                    className="yzt-mapsearch")


def zoom_for(uncertainty_m: float | None, lat: float, *, pixels: int = 220, default: int = 14) -> int:
    """A zoom at which a circle of ``uncertainty_m`` fits in about ``pixels`` (the camera pull-up covers it)."""
    if not uncertainty_m or uncertainty_m <= 0:
        return default
    m_per_px = uncertainty_m / pixels
    z = math.log2(156543.03 * math.cos(math.radians(lat)) / m_per_px)
    return int(max(7, min(16, math.floor(z))))


def uncertainty_circle(lat: float, lon: float, uncertainty_m: float | None, label: str, cid: Any = None):
    """The area the located place may lie in, drawn around its marker (dashed, light fill)."""
    if not uncertainty_m or uncertainty_m <= 0:
        return None
    kw = {"id": cid} if cid is not None else {}
    return dl.Circle(center=[lat, lon], radius=float(uncertainty_m), color="#37474f", weight=1, dashArray="4 4",
                     fillColor="#90a4ae", fillOpacity=0.12, interactive=False,
                     children=dl.Tooltip(f"{label} ± {uncertainty_m:,.0f} m (approximate)"), **kw)


def _marker(s: Any):
    g = grade_dict(s.grade)
    html_icon = (f'<div class="yzt-inc-marker lvl-{g["level"]}" data-incident="{s.id}" '
                 f'title="{g["name"]} {g["level"]}">{g["level"]}</div>')
    return dl.DivMarker(
        position=[s.location.point.lat, s.location.point.lon], id={"type": "map-inc", "id": s.id}, zIndexOffset=10000,
        iconOptions={"className": "yzt-inc-icon", "html": html_icon, "iconSize": [28, 28], "iconAnchor": [14, 14]},
        children=dl.Tooltip(f"{g['colour']}色 {g['name']}({g['level']}) · {s.location.matched} · {s.id}"))


def _circle(s: Any):
    return uncertainty_circle(s.location.point.lat, s.location.point.lon, s.location.uncertainty_m,
                              f"位置不确定范围 uncertainty · {s.location.matched}", {"type": "map-inc-u", "id": s.id})


def incident_markers(states: list) -> list:
    """The markers of ``states`` (IncidentStates or listing rows; one without a point has none), then each
    one's uncertainty circle around its marker."""
    placed = [s for s in states if s.location.point is not None]
    return [_marker(s) for s in placed] + [c for c in (_circle(s) for s in placed) if c is not None]


def marker_items(states: list) -> list[tuple[str, str, Any]]:
    """(key, digest, build) per incident with a point: its marker, in a layer group with its circle when it
    has one (one child per incident, what live.answer diffs; a marker's pane keeps it above the circles)."""
    def build(s: Any):
        c = _circle(s)
        return _marker(s) if c is None else dl.LayerGroup([_marker(s), c], id={"type": "map-inc-g", "id": s.id})
    return [(f"mark:{s.id}", live.row_digest(s), lambda s=s: build(s))
            for s in states if s.location.point is not None]


def _ring(lat: float, lon: float, radius_m: float, colour: str, label: str, dash: str | None = None):
    return dl.Circle(center=[lat, lon], radius=radius_m, color=colour, weight=2, fill=False,
                     dashArray=dash, children=dl.Tooltip(label))


def focus_layer(state: Any, draft: dict | None = None) -> list:
    """Warning ring from the rules, the drafted warned area, and the nearby resources of ``state``."""
    from command.alerts import area
    lat, lon = state.location.point.lat, state.location.point.lon
    colour = LEVEL_COLOUR.get(state.grade.level, "#333")
    out: list = []
    u = uncertainty_circle(lat, lon, state.location.uncertainty_m, f"位置不确定范围 uncertainty · {state.location.matched}")
    if u is not None:
        out.append(u)
    try:
        radius, reason = area.warning_radius_m(state.type, state.grade.level)
    except ValueError:
        radius, reason = None, ""
    if radius:
        out.append(_ring(lat, lon, radius, colour, f"预警范围 warning radius {radius:,.0f} m · {reason}", "6 6"))
    for r in (1000, 3000):
        out.append(_ring(lat, lon, r, "#607d8b", f"{r // 1000} km", "2 6"))
    out += _draft_area(draft)
    for layer, items in (state.nearby or {}).items():
        colour_l = LAYER_STYLE.get(layer, ("#333", 5))[0]
        for it in items:
            about = "≈" if it.get("approximate") else ""        # around an uncertain point: say so
            out.append(dl.CircleMarker(center=[it["lat"], it["lon"]], radius=7, color="#000", weight=1,
                                       fillColor=colour_l, fillOpacity=1,
                                       children=dl.Tooltip(f"{it.get('name', it['id'])} · {about}"
                                                           f"{it['distance_m']:,.0f} m")))
    return out


def _draft_area(draft: dict | None) -> list:
    if not draft:
        return []
    if draft.get("area_polygon"):
        more = draft.get("area_more_polygons") or []
        return [dl.Polygon(positions=draft["area_polygon"], color="#b3261e", weight=2, fillOpacity=0.12,
                           id="map-warn-area", children=dl.Tooltip(draft.get("area_desc", "")))] + [
            dl.Polygon(positions=ring, color="#b3261e", weight=2, fillOpacity=0.12, id=f"map-warn-area-{i + 2}")
            for i, ring in enumerate(more)]
    if draft.get("circle"):
        latlon, km = draft["circle"].split(" ")
        la, lo = (float(v) for v in latlon.split(","))
        return [dl.Circle(center=[la, lo], radius=float(km) * 1000, color="#b3261e", weight=2, fillOpacity=0.12,
                          id="map-warn-area", children=dl.Tooltip(draft.get("area_desc", "")))]
    return []


def markers_answer(shown: Any, *, tick: bool) -> tuple[int, Any, Any]:
    """(seq, children, token): the markers of the newest incidents the user may see, as a Patch of what the
    map shows (``command.dashboard.live``; the rows are the list's when no filter is set), part of the sync
    poll's answer (command.dashboard.sync). ``tick``: a token made at this seq gets ``no_update``."""
    from command.dashboard.security import principal
    from command.dashboard.incidents_list import LIST_LIMIT      # the markers of the incidents the list shows
    from command.response import listing
    skey, svc = live.where()
    asked = listing.filters(svc, viewer=principal())             # the user's scope
    seq, rows = live.rows(svc, skey, asked, LIST_LIMIT + 1, lambda: listing.listed(
        svc, viewer=principal(), newest_first=True, limit=LIST_LIMIT + 1))
    view = live.view_of(skey, asked)
    if tick and live.unchanged(shown, seq, view):
        return seq, no_update, no_update
    now = live.made(("mark", view, seq), lambda: marker_items(rows[:LIST_LIMIT]))    # once per view and seq
    return (seq, *live.answer(now, shown, seq, view))


@callback(Output("map-focus", "children"),
          Input("incident-selected", "data"), Input("focus-seq", "data"), Input("warn-draft", "data"))
@guarded("view")
def draw_focus(incident_id: str | None, _seq: Any, draft: dict | None) -> list:
    """The selected incident's rings and nearby resources; ``focus-seq`` follows the store's seq only while an
    incident is selected (the list's answer sets it), so an officer with none selected posts nothing here."""
    if not incident_id:
        return []
    try:
        state = runtime.current().service().get(incident_id)
    except ValueError:
        return []
    return focus_layer(state, draft if draft and draft.get("incident_id") == incident_id else None)


def click_latlng(click: dict | None) -> tuple[float, float] | None:
    """(lat, lon) of a dash-leaflet clickData, whichever shape the version sends."""
    if not click:
        return None
    ll = click.get("latlng")
    if isinstance(ll, dict):
        return float(ll["lat"]), float(ll["lng"])
    if isinstance(ll, (list, tuple)) and len(ll) == 2:
        return float(ll[0]), float(ll[1])
    return None


@callback(Output("report-coords", "value"), Output("report-datum", "value"), Output("map-pick", "children"),
          Input("map", "clickData"), prevent_initial_call=True)
@guarded("view")
def pick_point(click: dict | None):
    ll = click_latlng(click)
    if ll is None:
        raise PreventUpdate
    lat, lon = ll
    pin = dl.CircleMarker(center=[lat, lon], radius=6, color="#000", fillColor="#fff", fillOpacity=1,
                          children=dl.Tooltip(f"{lon:.6f},{lat:.6f} WGS84"))
    return f"{lon:.6f},{lat:.6f}", "wgs84", [pin]


@callback(Output("map", "viewport", allow_duplicate=True),
          Input("incident-selected", "data"), prevent_initial_call=True)
@guarded("view")
def fly_to_incident(incident_id: str | None):
    if not incident_id:
        raise PreventUpdate
    try:
        state = runtime.current().service().get(incident_id)
    except ValueError:
        return no_update
    p = state.location.point
    return {"center": [p.lat, p.lon], "zoom": zoom_for(state.location.uncertainty_m, p.lat), "transition": "flyTo"}


@callback(Output("map-search-items", "data"), Output("map-search-results", "children"),
          Input("map-search", "value"), prevent_initial_call=True)
@guarded("view")
def search_places(q: str | None):
    from command.dashboard.routes import search_places as find
    items = find(q or "", runtime.current().settings.data_dir)
    if not q:
        return [], []
    if not items:
        return [], html.Div("无结果 no place found", className="yzt-cand")
    rows = []
    for i, it in enumerate(items):
        rows.append(html.Div([
            html.Span(it["name"], id={"type": "map-cand", "i": i}, n_clicks=0),
            html.Small(f" {it['precision']} ± {it['uncertainty_m'] or 0:,.0f} m "),
            html.Button("设为事件位置 set as incident point", id={"type": "map-cand-set", "i": i}, n_clicks=0,
                        style={"fontSize": "11px", "padding": "0 4px", "margin": "0"})], className="yzt-cand"))
    return items, rows


@callback(Output("map", "viewport", allow_duplicate=True),
          Input({"type": "map-cand", "i": ALL}, "n_clicks"), State("map-search-items", "data"),
          prevent_initial_call=True)
@guarded("view")
def fly_to_candidate(clicks: list, items: list | None):
    if not ctx.triggered_id or not any(clicks or []) or not items:
        raise PreventUpdate
    it = items[ctx.triggered_id["i"]]
    return {"center": [it["lat"], it["lon"]], "zoom": zoom_for(it.get("uncertainty_m"), it["lat"]),
            "transition": "flyTo"}


@callback(Output("report-coords", "value", allow_duplicate=True),
          Output("report-datum", "value", allow_duplicate=True),
          Output("report-address", "value", allow_duplicate=True),
          Output("map-pick", "children", allow_duplicate=True),
          Output("map", "viewport", allow_duplicate=True),
          Input({"type": "map-cand-set", "i": ALL}, "n_clicks"), State("map-search-items", "data"),
          prevent_initial_call=True)
@guarded("view")
def set_candidate(clicks: list, items: list | None):
    if not ctx.triggered_id or not any(clicks or []) or not items:
        raise PreventUpdate
    it = items[ctx.triggered_id["i"]]
    pin = [dl.CircleMarker(center=[it["lat"], it["lon"]], radius=6, color="#000", fillColor="#fff", fillOpacity=1,
                           children=dl.Tooltip(it["name"]))]
    circle = uncertainty_circle(it["lat"], it["lon"], it.get("uncertainty_m"), it["name"])
    if circle is not None:
        pin.append(circle)
    view = {"center": [it["lat"], it["lon"]], "zoom": zoom_for(it.get("uncertainty_m"), it["lat"]),
            "transition": "flyTo"}
    return f"{it['lon']:.6f},{it['lat']:.6f}", "wgs84", it["name"], pin, view


__all__ = ["map_panel", "incident_markers", "marker_items", "markers_answer", "focus_layer", "legend", "click_latlng", "zoom_for",
           "uncertainty_circle", "search_box"]
