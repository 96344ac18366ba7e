"""Exports of an incident: a static situation map (folium HTML that opens with no internet) and the nearby
resource tables as CSV and GeoJSON.

    from command.dashboard import export
    html = export.situation_map_html(state)          # self-contained when the vendor files are present
    csv_text = export.resources_csv(state)           # layer, rank, id, name, lon, lat, distance_m, drive time...
    geojson_text = export.resources_geojson(state)   # the same rows as WGS84 points

Offline: folium's template loads Leaflet, jQuery, Bootstrap and awesome-markers from CDNs. This map uses
only Leaflet (circle markers, no icons), so the other links are dropped and Leaflet's JS and CSS are
inlined from ``command/dashboard/vendor/leaflet/`` (fetched at setup by ``scripts/fetch_js_assets.py`` from
the npm registry). Without them the map falls back to the CDN and says so in a banner.

Nothing a user or a data file supplies is inserted as HTML or script: folium writes a tooltip's text raw into
a JavaScript template literal that Leaflet then sets as innerHTML, so every text goes through ``_tip``
(HTML-escaped, and the characters that mean something in a template literal: backtick, dollar and
backslash, as entities). A hospital named ``<img src=x onerror=...>`` shows as those characters.
"""
from __future__ import annotations

import html as htmlmod
import io
import json
from pathlib import Path
from typing import Any

VENDOR_DIR = Path(__file__).resolve().parent / "vendor"        # command/dashboard/vendor
LAYER_COLOUR = {"hospital": "#c2185b", "fire_station": "#e65100", "shelter": "#2e7d32", "camera": "#5e35b1"}
LAYER_ZH = {"hospital": "医院", "fire_station": "消防站", "shelter": "避难场所", "camera": "摄像机"}
LEVEL_COLOUR = {"I": "#d7191c", "II": "#f28c28", "III": "#e6b800", "IV": "#1f6fd1"}
COLUMNS = ("layer", "synthetic", "rank", "id", "name", "lon", "lat", "distance_m", "drive_time_s",
           "drive_time_method")


def _tip(text: Any) -> str:
    """Text for a folium tooltip: inert as HTML and inside the JavaScript template literal folium writes."""
    return (htmlmod.escape(str(text), quote=True)
            .replace("`", "&#96;").replace("$", "&#36;").replace("\\", "&#92;"))


def _synthetic() -> dict[str, bool]:
    from command.dashboard import runtime
    return {i.name: i.synthetic for i in runtime.current().catalog.list_layers()}


def resource_rows(state: Any) -> list[dict]:
    """One row per nearby resource of the incident, in the service's ranking order per layer."""
    flags = _synthetic()
    rows = []
    for layer, items in (state.nearby or {}).items():
        for rank, it in enumerate(items, start=1):
            row = {"layer": layer, "synthetic": flags.get(layer, True), "rank": rank, "id": it["id"],
                   "name": it.get("name", ""), "lon": it["lon"], "lat": it["lat"],
                   "distance_m": round(float(it["distance_m"]), 1),
                   "drive_time_s": it.get("drive_time_s"), "drive_time_method": it.get("drive_time_method"),
                   "approximate": bool(it.get("approximate")),
                   "distance_uncertainty_m": it.get("distance_uncertainty_m")}
            rows.append(row)
    return rows


FORMULA_START = ("=", "+", "-", "@", "\t", "\r", "\uff1d", "\uff0b", "\uff0d", "\uff20")


def csv_cell(value: Any) -> Any:
    """A text cell a spreadsheet would run as a formula (=, +, -, @, tab, CR, or their full-width forms)
    is written with a leading apostrophe (OWASP CSV injection); numbers and other text stay as they are."""
    if not isinstance(value, str):
        return value
    text = value.replace("\r\n", "\n").replace("\r", "\n")   # a bare CR is not quoted and starts a new row
    return "'" + text if value.lstrip(" ").startswith(FORMULA_START) else text


def resources_csv(state: Any) -> str:
    import pandas as pd
    buf = io.StringIO()
    rows = [{k: csv_cell(v) for k, v in r.items()} for r in resource_rows(state)]
    pd.DataFrame(rows, columns=list(COLUMNS)).to_csv(buf, index=False)
    return buf.getvalue()


def resources_geojson(state: Any) -> str:
    import geopandas as gpd
    rows = resource_rows(state)
    gdf = gpd.GeoDataFrame(rows, columns=list(COLUMNS),
                           geometry=gpd.points_from_xy([r["lon"] for r in rows], [r["lat"] for r in rows]),
                           crs="EPSG:4326")
    data = json.loads(gdf.to_json(drop_id=True))
    data["properties"] = {"incident_id": state.id, "crs": "wgs84"}
    return json.dumps(data, ensure_ascii=False)


def vendor_files(vendor_dir: Path | None = None) -> tuple[str, str] | None:
    """(leaflet.js, leaflet.css) text when fetched, else None."""
    d = (vendor_dir or VENDOR_DIR) / "leaflet"
    js, css = d / "leaflet.js", d / "leaflet.css"
    if js.is_file() and css.is_file():
        return js.read_text(encoding="utf-8"), css.read_text(encoding="utf-8")
    return None


def _offline(m: Any, vendor_dir: Path | None) -> bool:
    from branca.element import Element
    files = vendor_files(vendor_dir)
    if files is None:
        m.default_js = [x for x in m.default_js if x[0] == "leaflet"]
        m.default_css = [x for x in m.default_css if x[0] == "leaflet_css"]
        return False
    js, css = files
    m.default_js, m.default_css = [], []
    root = m.get_root()
    root.header.add_child(Element(f"<style>{css}</style>"), name="leaflet_css_inline")
    safe_js = js.replace("</script", "<\\/script")
    root.header.add_child(Element(f"<script>{safe_js}</script>"), name="leaflet_js_inline")
    return True


def _title(state: Any, offline: bool) -> str:
    g, e = state.grade, htmlmod.escape
    warn = "" if offline else ('<div style="color:#b3261e">需联网加载地图库 (run scripts/fetch_js_assets.py for an '
                               'offline map)</div>')
    return (f'<div style="position:fixed;top:8px;left:50px;z-index:1000;background:#fff;padding:6px 10px;'
            f'border-radius:4px;box-shadow:0 1px 4px rgba(0,0,0,.3);font:13px sans-serif">'
            f'<b>{e(state.id)}</b> · <span style="background:{LEVEL_COLOUR[g.level]};color:#fff;padding:0 5px">'
            f'{e(g.colour)} {e(g.name)} {e(g.level)}</span> · {e(state.location.matched)}<br>'
            f'{e(g.rule.law)} {e(g.rule.article)} {e(g.rule.criterion)}<br>'
            f'死亡 {e(str(state.casualties.deaths))} 重伤 {e(str(state.casualties.serious_injuries))} '
            f'失踪 {e(str(state.casualties.missing))}'
            f' · 报告 {e(state.reported_at)} · 模拟图层已标注 synthetic layers marked{warn}</div>')


def _districts_near(lon: float, lat: float):
    from shapely.geometry import box

    from incidents import admin
    d = admin.districts()
    near = d[d.intersects(box(lon - 0.3, lat - 0.3, lon + 0.3, lat + 0.3))]   # display only
    out = near[["district_name", "geometry"]].copy()
    out["geometry"] = out.geometry.simplify(0.001, preserve_topology=True)
    return out


def situation_map_html(state: Any, *, vendor_dir: Path | None = None) -> str:
    """A static situation map of the incident: level, warned ring, nearby resources, district outlines."""
    import folium
    from branca.element import Element
    from command.alerts import area
    p, g = state.location.point, state.grade
    m = folium.Map(location=[p.lat, p.lon], zoom_start=14, tiles=None, control_scale=True)
    offline = _offline(m, vendor_dir)
    folium.GeoJson(_districts_near(p.lon, p.lat).to_json(), name="区县界 districts",
                   style_function=lambda _f: {"color": "#34567a", "weight": 1, "fill": False}).add_to(m)
    radius, reason = area.warning_radius_m(state.type, g.level)
    if radius:
        folium.Circle([p.lat, p.lon], radius=radius, color=LEVEL_COLOUR[g.level], fill=False, dash_array="6 6",
                      tooltip=_tip(f"预警范围 {radius:,.0f} m · {reason}")).add_to(m)
    flags = _synthetic()
    for row in resource_rows(state):
        tag = " · 模拟 synthetic" if flags.get(row["layer"], True) else ""
        folium.CircleMarker([row["lat"], row["lon"]], radius=6, color="#000", weight=1, fill=True, fill_opacity=1,
                            fill_color=LAYER_COLOUR.get(row["layer"], "#333"),
                            tooltip=_tip(f"{LAYER_ZH.get(row['layer'], row['layer'])} {row['name']} · "
                                         f"{row['distance_m']:,.0f} m{tag}")).add_to(m)
    folium.CircleMarker([p.lat, p.lon], radius=11, color="#000", weight=3, fill=True, fill_opacity=1,
                        fill_color=LEVEL_COLOUR[g.level],
                        tooltip=_tip(f"{g.name}({g.level}) {state.location.matched}")).add_to(m)
    m.get_root().html.add_child(Element(_title(state, offline)))
    return m.get_root().render()
