"""Flask routes beside the Dash app: layers and outlines as GeoJSON (built once, gzipped, cached), and
the simulated camera feed.

    routes.register(app.server)
    GET /yzt/geo/admin/<province|city|district>.geojson   simplified outlines (props: name, adcode)
    GET /yzt/geo/layer/<name>.geojson                       all points of a layer (props: id, n = name)
    GET /yzt/sim/camera/<id>.svg                            a generated snapshot labelled 模拟画面 / simulated
    GET /yzt/geo/labels/<district|township|community>.geojson   name points (props: name, code, u = uncertainty m)
    GET /yzt/geo/roads.geojson                              the named roads of the bundled road graph (props: name)
    GET /yzt/geo/search?q=TEXT                              the geocoder's candidates for a place search (JSON)

Big layers (120k cameras) are sent once as one gzipped GeoJSON and clustered in the browser; they are
never turned into Dash components. Everything is built lazily at the first request and kept per process
(a layer is rebuilt when the catalogue hands back a different Layer, e.g. after an import).
"""
from __future__ import annotations

import gzip
import html as htmlmod
import json
import re
import threading
from datetime import datetime, timedelta, timezone
from typing import Any

import numpy as np
from flask import Flask, Response, abort, request

ADMIN_LEVELS = ("province", "city", "district")
SIMPLIFY_DEG = {"province": 0.004, "city": 0.003, "district": 0.002}   # display only, never measured
NAMES_UP_TO = 20_000
_CAM_ID = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")
_cache: dict[str, tuple[Any, bytes]] = {}
_lock = threading.Lock()
BEIJING = timezone(timedelta(hours=8))


def admin_geojson(level: str) -> bytes:
    """The outlines of ``level`` as compact GeoJSON bytes (WGS84, simplified for display)."""
    from incidents import admin
    gdf = {"province": admin.province, "city": admin.cities, "district": admin.districts}[level]()
    name_col = next((c for c in ("name", "district_name", "city_name", "province_name") if c in gdf.columns), None)
    code_col = next((c for c in ("adcode", "district_adcode", "city_adcode", "province_adcode")
                     if c in gdf.columns), None)
    out = gdf[[c for c in (name_col, code_col) if c] + ["geometry"]].copy()
    out["geometry"] = out.geometry.simplify(SIMPLIFY_DEG[level], preserve_topology=True)
    out = out.rename(columns={name_col: "name", code_col: "adcode"} if name_col and code_col else {})
    return out.to_json(drop_id=True, to_wgs84=False).encode("utf-8")


def layer_geojson(layer: Any) -> bytes:
    """Points of ``layer`` as GeoJSON bytes (fast for 120k rows). Names only for small layers: a camera's
    id says enough and halves what the browser must parse."""
    gdf = layer.gdf
    if len(gdf) > NAMES_UP_TO:
        return _ids_only(gdf)
    lon = np.round(gdf.geometry.x.to_numpy(), 6)
    lat = np.round(gdf.geometry.y.to_numpy(), 6)
    ids = [json.dumps(str(v), ensure_ascii=False) for v in gdf["id"]]
    names = [json.dumps(str(v), ensure_ascii=False) for v in gdf["name"]]
    feats = [f'{{"type":"Feature","geometry":{{"type":"Point","coordinates":[{x},{y}]}},'
             f'"properties":{{"id":{i},"n":{n}}}}}' for x, y, i, n in zip(lon, lat, ids, names)]
    return ('{"type":"FeatureCollection","features":[' + ",".join(feats) + "]}").encode("utf-8")


def _ids_only(gdf: Any) -> bytes:
    lon = np.round(gdf.geometry.x.to_numpy(), 6)
    lat = np.round(gdf.geometry.y.to_numpy(), 6)
    feats = [f'{{"type":"Feature","geometry":{{"type":"Point","coordinates":[{x},{y}]}},'
             f'"properties":{{"id":{json.dumps(str(i))}}}}}' for x, y, i in zip(lon, lat, gdf["id"])]
    return ('{"type":"FeatureCollection","features":[' + ",".join(feats) + "]}").encode("utf-8")


def _cached(key: str, token: Any, build) -> bytes:
    with _lock:
        hit = _cache.get(key)
        if hit is not None and hit[0] is token:
            return hit[1]
    body = gzip.compress(build(), compresslevel=5)
    with _lock:
        _cache[key] = (token, body)
    return body


_static: dict[str, bytes] = {}


def _cached_static(key: str, build) -> bytes:
    """Bytes that depend only on the data folder (named in ``key``), gzipped once per process."""
    with _lock:
        hit = _static.get(key)
    if hit is None:
        hit = gzip.compress(build(), compresslevel=5)
        with _lock:
            _static[key] = hit
    return hit


def _geojson_response(body_gz: bytes) -> Response:
    if "gzip" in (request.headers.get("Accept-Encoding") or ""):
        resp = Response(body_gz, mimetype="application/geo+json")
        resp.headers["Content-Encoding"] = "gzip"
    else:
        resp = Response(gzip.decompress(body_gz), mimetype="application/geo+json")
    resp.headers["Cache-Control"] = "private, max-age=300"
    resp.headers["Vary"] = "Accept-Encoding"
    return resp


def simulated_snapshot(cam_id: str, name: str, now: datetime) -> str:
    """An SVG frame labelled 模拟画面 / SIMULATED with the camera id and the time; it changes each second."""
    t = now.second + now.minute * 60
    x = 20 + (t * 13) % 280
    stamp = now.strftime("%Y-%m-%d %H:%M:%S")
    e = htmlmod.escape
    return (
        '<svg xmlns="http://www.w3.org/2000/svg" width="320" height="180" viewBox="0 0 320 180">'
        '<rect width="320" height="180" fill="#1d2633"/>'
        '<rect x="0" y="120" width="320" height="60" fill="#2c3a4d"/>'
        f'<rect x="{x}" y="128" width="34" height="16" rx="3" fill="#8aa4c8"/>'
        '<line x1="0" y1="150" x2="320" y2="150" stroke="#e0e6ef" stroke-dasharray="12 10"/>'
        '<text x="10" y="22" fill="#ffcc33" font-size="15" font-family="sans-serif" font-weight="bold">'
        '模拟画面 SIMULATED</text>'
        f'<text x="10" y="44" fill="#e0e6ef" font-size="12" font-family="monospace">{e(cam_id)}</text>'
        f'<text x="10" y="62" fill="#e0e6ef" font-size="12" font-family="sans-serif">{e(name)}</text>'
        f'<text x="10" y="112" fill="#e0e6ef" font-size="12" font-family="monospace">{stamp} +08:00</text>'
        '</svg>')


def _camera_names() -> dict[str, str]:
    from command.dashboard import runtime
    layer = runtime.current().catalog.load("camera")
    with _lock:
        hit = _cache.get("camera-names")
        if hit is not None and hit[0] is layer:
            return hit[1]  # type: ignore[return-value]
    names = dict(zip(layer.gdf["id"].astype(str), layer.gdf["name"].astype(str)))
    with _lock:
        _cache["camera-names"] = (layer, names)  # type: ignore[assignment]
    return names


LABEL_LEVELS = ("district", "township", "community")


def labels_geojson(level: str, data_dir: Any = None) -> bytes:
    """Name points of ``level`` from the gazetteer: districts at their inner point, townships and communities
    at their own points only (a unit with no point of its own is not drawn where it is not)."""
    from incidents.gazetteer import gazetteer
    g = gazetteer(data_dir)
    if level == "district":
        places = list(g.districts.values())
    elif level == "township":
        places = [p for p in g.towns.values() if p.point_level == "township"]
    else:
        seen: dict[str, Any] = {}
        for hits in g.index.values():
            for p, _ in hits:
                if p.level == "community" and p.point_level == "community":
                    seen.setdefault(p.code, p)
        places = list(seen.values())
    feats = [{"type": "Feature", "geometry": {"type": "Point", "coordinates": [round(p.lon, 6), round(p.lat, 6)]},
              "properties": {"name": p.name, "code": p.code, "u": round(p.uncertainty_m)}} for p in places]
    return json.dumps({"type": "FeatureCollection", "features": feats}, ensure_ascii=False).encode("utf-8")


def roads_geojson(data_dir: Any = None) -> bytes:
    """Named road lines of the bundled OSM graph (southern Futian), one feature per road (ODbL)."""
    from incidents.admin import data_dir as resolve
    from incidents.gazetteer import _road_lines
    from incidents.roads import ROAD_FILE
    path = resolve(data_dir) / ROAD_FILE
    if not path.is_file():
        return b'{"type":"FeatureCollection","features":[]}'
    feats = []
    for name, parts in sorted(_road_lines(path).items()):
        coords = [[[round(x, 6), round(y, 6)] for x, y in ln.coords] for ln in parts]
        feats.append({"type": "Feature", "geometry": {"type": "MultiLineString", "coordinates": coords},
                      "properties": {"name": name}})
    return json.dumps({"type": "FeatureCollection", "features": feats}, ensure_ascii=False).encode("utf-8")


def search_places(q: str, data_dir: Any = None, limit: int = 8) -> list[dict]:
    """The geocoder's candidates for a place search box: [{name, precision, lon, lat, uncertainty_m}]."""
    from incidents.errors import IncidentError
    from incidents.geocode import locate_offline
    q = (q or "").strip()[:80]
    if not q:
        return []
    try:
        loc = locate_offline(q, data_dir=data_dir)
    except IncidentError:
        return []
    return [{"name": c.name, "precision": c.precision, "lon": round(c.lon, 6), "lat": round(c.lat, 6),
             "uncertainty_m": c.uncertainty_m, "district_adcode": c.district_adcode}
            for c in loc.candidates[:limit]]


def _data_dir() -> Any:
    from command.dashboard import runtime
    try:
        return runtime.current().settings.data_dir
    except Exception:  # noqa: BLE001 - no runtime (a bare Flask test app): the bundled data
        return None


def register(server: Flask) -> None:
    """Add the routes to the Flask server of the Dash app."""

    @server.get("/yzt/geo/labels/<level>.geojson")
    def yzt_labels(level: str) -> Response:
        if level not in LABEL_LEVELS:
            abort(404)
        root = _data_dir()
        return _geojson_response(_cached_static(f"labels-{level}-{root}", lambda: labels_geojson(level, root)))

    @server.get("/yzt/geo/roads.geojson")
    def yzt_roads() -> Response:
        root = _data_dir()
        return _geojson_response(_cached_static(f"roads-{root}", lambda: roads_geojson(root)))

    @server.get("/yzt/geo/search")
    def yzt_search() -> Response:
        items = search_places(request.args.get("q", ""), _data_dir())
        resp = Response(json.dumps({"items": items}, ensure_ascii=False), mimetype="application/json")
        resp.headers["Cache-Control"] = "no-store"
        return resp

    @server.get("/yzt/geo/admin/<level>.geojson")
    def yzt_admin(level: str) -> Response:
        if level not in ADMIN_LEVELS:
            abort(404)
        return _geojson_response(_cached(f"admin-{level}", level, lambda: admin_geojson(level)))

    @server.get("/yzt/geo/layer/<name>.geojson")
    def yzt_layer(name: str) -> Response:
        from command.dashboard import runtime
        from layers.errors import UnknownLayerError
        try:
            layer = runtime.current().catalog.load(name)
        except UnknownLayerError:
            abort(404)
        return _geojson_response(_cached(f"layer-{name}", layer, lambda: layer_geojson(layer)))

    @server.get("/yzt/sim/camera/<cam_id>.svg")
    def yzt_sim_camera(cam_id: str) -> Response:
        if not _CAM_ID.match(cam_id):
            abort(404)
        name = _camera_names().get(cam_id)
        if name is None:
            abort(404)
        svg = simulated_snapshot(cam_id, name, datetime.now(BEIJING))
        resp = Response(svg, mimetype="image/svg+xml")
        resp.headers["Cache-Control"] = "no-store"
        return resp
