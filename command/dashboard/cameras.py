"""The camera wall: nearest cameras first, those whose field of view covers the incident before the rest.
Each tile plays the camera's stream (HLS / MJPEG / image URL) or says plainly 无视频流 / no stream; with
"simulated feed" on, a camera without a stream shows the local generated snapshot labelled 模拟画面.

    wall_cameras(point, k=8)   # [{id, name, distance_m, bearing_deg, covers, stream_url, ...}]
    covers(cam, x, y)          # does the camera (heading_deg, fov_deg) look at the metric point x, y?

Bearings are measured in EPSG:4547 (grid north; within a degree of true north across Guangdong).
"""
from __future__ import annotations

import math
from typing import Any

from dash import Input, Output, State, callback, dcc, html
from dash.exceptions import PreventUpdate

from command.dashboard import runtime
from command.dashboard.common import fmt_m
from command.dashboard.i18n import L
from command.dashboard.security import guarded

VIEW_RANGE_M = 250.0      # a street camera does not identify much farther than this
CANDIDATES = 40
SNAPSHOT_MS = 2000


def bearing_deg(from_xy: tuple[float, float], to_xy: tuple[float, float]) -> float:
    dx, dy = to_xy[0] - from_xy[0], to_xy[1] - from_xy[1]
    return math.degrees(math.atan2(dx, dy)) % 360.0


def covers(cam: dict, cam_xy: tuple[float, float], target_xy: tuple[float, float]) -> bool:
    """True when the target lies within the camera's view cone (heading ± fov/2, up to VIEW_RANGE_M)."""
    dist = math.dist(cam_xy, target_xy)
    if dist > VIEW_RANGE_M:
        return False
    if dist < 1.0:
        return True
    heading, fov = cam.get("heading_deg"), cam.get("fov_deg")
    if heading is None or fov is None or (isinstance(heading, float) and math.isnan(heading)):
        return False
    off = abs((bearing_deg(cam_xy, target_xy) - float(heading) + 180.0) % 360.0 - 180.0)
    return off <= float(fov) / 2.0


def wall_cameras(point: Any, k: int = 8) -> list[dict]:
    from incidents.model import Point
    from layers.index import metric_xy, nearest
    target = metric_xy(point)
    out = []
    for cam in nearest("camera", point, k=CANDIDATES, catalog=runtime.current().catalog):
        xy = metric_xy(Point(cam["lon"], cam["lat"], "wgs84"))
        out.append(dict(cam, covers=covers(cam, xy, target), bearing_deg=round(bearing_deg(xy, target), 1)))
    out.sort(key=lambda c: (not c["covers"], c["distance_m"]))
    return out[:k]


def _media(cam: dict, simulate: bool, tick: int) -> Any:
    url = (cam.get("stream_url") or "").strip()
    if url:
        low = url.lower().split("?")[0]
        if low.endswith(".m3u8"):
            return html.Video(src=url, controls=True, autoPlay=True, muted=True)
        return html.Img(src=url, alt=cam["id"])
    if simulate:
        return html.Img(src=f"/yzt/sim/camera/{cam['id']}.svg?t={tick}", alt=f"模拟画面 {cam['id']}",
                        className="yzt-sim")
    return html.Div(L("cam.nostream"), className="nostream")


def tile(cam: dict, simulate: bool, tick: int) -> html.Div:
    flag = [" · ", html.B(L("cam.covers"))] if cam["covers"] else []
    sim = [" · ", L("cam.sim")] if simulate and not cam.get("stream_url") else []
    return html.Div([html.Div([cam["id"], f" · {fmt_m(cam['distance_m'])} m", *flag, *sim], className="head"),
                     _media(cam, simulate, tick)],
                    className="yzt-tile" + (" covers" if cam["covers"] else ""), **{"data-camera": cam["id"]})


def wall_panel() -> html.Div:
    return html.Div([
        dcc.Checklist(id="cam-simulate", options=[{"label": L("cam.simulate"), "value": "sim"}], value=["sim"]),
        dcc.Interval(id="cam-tick", interval=SNAPSHOT_MS),
        html.Div(id="cam-wall", className="yzt-wall"),
    ])


@callback(Output("cam-wall", "children"),
          Input("incident-selected", "data"), Input("cam-simulate", "value"), Input("cam-tick", "n_intervals"),
          State("right-tabs", "value"))
@guarded("view")
def render_wall(incident_id: str | None, simulate: list | None, tick: int | None, tab: str | None) -> list:
    from dash import ctx
    if ctx.triggered_id == "cam-tick" and (tab != "cameras" or not simulate):
        raise PreventUpdate
    if not incident_id:
        return [html.Div(L("detail.none"))]
    state = runtime.current().service().get(incident_id)
    return [tile(c, bool(simulate), int(tick or 0)) for c in wall_cameras(state.location.point)]
