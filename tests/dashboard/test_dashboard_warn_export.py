"""Warning composer, export and routes of the dashboard, over a real store, outbox and Flask test client."""
from __future__ import annotations

from layers.catalog import Catalog
from settings import load_settings

import gzip
import hashlib
import base64
import io
import json
import tarfile
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import yaml

import settings as settings_mod
from command.dashboard import export
from command.dashboard import report, runtime, warn

FORM = {"address": "广州市天河区天河路", "type": "gas_explosion", "serious": 3, "datum": "wgs84"}



def cat():
    """The layer catalogue of this test's settings (its own var_dir), as a door builds it."""
    return Catalog.of(load_settings())


@pytest.fixture
def rt(tmp_path, monkeypatch):
    cfg = tmp_path / "yzt.yaml"
    cfg.write_text(yaml.safe_dump({"channels": [{"name": "drill-box", "kind": "outbox", "mode": "exercise"}],
                                   "cap_org_code": "101"}))
    monkeypatch.setenv("YZT_CONFIG", str(cfg))
    settings_mod.reset_settings_cache()
    r = runtime.configure(load_settings())
    yield r
    r.close()


def test_exercise_warning_is_drafted_previewed_and_delivered(rt):
    state = report.submit_report(rt.service(), FORM, actor="值班员")
    data = warn.make_draft(rt, state.id, exercise=True, actor="值班员", radius=800, zh="请远离", en="Keep away")
    assert data["status"] == "Exercise" and data["channels"] == ["drill-box"]
    assert json.loads(json.dumps(data)) == data                      # survives a dcc.Store
    texts = warn.cap_texts(data["cap_xml"])
    assert {t["language"][:2] for t in texts} == {"zh", "en"}
    assert data["area_polygon"] or data["circle"]
    body = json.dumps(warn.preview(data).to_plotly_json(), default=str, ensure_ascii=False)
    assert "drill-box (exercise)" in body
    assert set(warn.ids_of(data)) == {"incident_id", "identifier"}      # all the browser keeps for the send
    assert "已排队 queued" in warn.send_warning(rt, state.id, data["identifier"], actor="值班员", confirm=False)
    deadline = __import__("time").monotonic() + 20
    while __import__("time").monotonic() < deadline:
        rows = rt.outbox().deliveries(data["identifier"])
        if rows and all(r["status"] == "sent" for r in rows):
            break
        __import__("time").sleep(0.1)
    assert [(r["channel"], r["status"]) for r in rows] == [("drill-box", "sent")]
    after = rt.service().get(state.id)
    assert [a.identifier for a in after.active_alerts] == [data["identifier"]]


def test_an_actual_send_without_a_live_channel_is_refused_at_once_and_recorded(rt):
    state = report.submit_report(rt.service(), FORM, actor="值班员")
    ident = rt.service().draft_alert(state.id, actor="t").identifier
    draft = warn.record_data(rt.service().get(state.id), ident)
    assert draft["status"] == "Actual"
    with warn_ctx("warn-send"):       # no live channel configured: the service refuses at once, one line
        style, *_rest, alert, _bump = warn.on_warn_action(1, 0, 0, 0, warn.ids_of(draft), state.id, None, "t", 0)
    assert style == warn.HIDDEN and "no live channel" in json.dumps(alert.to_plotly_json(), default=str)
    assert rt.outbox().deliveries(draft["identifier"]) == []
    refused = [e for e in rt.store().events(state.id) if e.kind == "AlertRefused"]
    assert [(e.payload["identifier"], e.payload["action"]) for e in refused] == [(draft["identifier"], "send")]


class warn_ctx:
    """Run a callback as if ``prop_id`` had fired (dash's context var, as the server sets it)."""

    def __init__(self, component_id: str) -> None:
        self.component_id = component_id

    def __enter__(self):
        from dash._callback_context import context_value
        from dash._utils import AttributeDict
        self.token = context_value.set(AttributeDict(
            triggered_inputs=[{"prop_id": f"{self.component_id}.n_clicks", "value": 1}]))

    def __exit__(self, *exc):
        from dash._callback_context import context_value
        context_value.reset(self.token)


def test_export_tables_and_offline_map(rt, tmp_path):
    state = report.submit_report(rt.service(), FORM, actor="值班员")
    rows = export.resource_rows(state)
    assert len(rows) == sum(len(v) for v in state.nearby.values())
    uncertain = bool(state.location.uncertainty_m)       # around an uncertain point every row says approximate
    assert rows and all(r["approximate"] is uncertain for r in rows)
    assert all((r["distance_uncertainty_m"] is not None) is uncertain for r in rows)
    csv_text = export.resources_csv(state)
    assert csv_text.splitlines()[0].startswith("layer,synthetic,rank,id,name,lon,lat,distance_m")
    gj = json.loads(export.resources_geojson(state))
    assert len(gj["features"]) == len(rows) and gj["properties"]["incident_id"] == state.id
    vendor = tmp_path / "vendor" / "leaflet"
    vendor.mkdir(parents=True)
    (vendor / "leaflet.js").write_text("window.L_MARK='inlined-leaflet';")
    (vendor / "leaflet.css").write_text(".leaflet-MARK{}")
    page = export.situation_map_html(state, vendor_dir=tmp_path / "vendor")
    assert "inlined-leaflet" in page and ".leaflet-MARK" in page
    assert "cdn.jsdelivr" not in page and "code.jquery" not in page and "<script src=" not in page
    online = export.situation_map_html(state, vendor_dir=tmp_path / "missing")
    assert "fetch_js_assets" in online and "code.jquery" not in online


def test_routes_serve_layers_outlines_and_simulated_feed(rt):
    import app
    import re
    from command.security import auth
    client = app.create_app(rt.settings).server.test_client()
    assert client.get("/yzt/geo/layer/shelter.geojson").status_code == 302       # sign in first
    password = auth.Users(rt.store()).add("viewer1", "viewer")
    token = re.search(r'name="csrf" value="([^"]+)"', client.get("/login").data.decode()).group(1)
    client.post("/login", data={"name": "viewer1", "password": password, "csrf": token})
    resp = client.get("/yzt/geo/layer/shelter.geojson", headers={"Accept-Encoding": "gzip"})
    assert resp.headers["Content-Encoding"] == "gzip"
    data = json.loads(gzip.decompress(resp.data))
    assert len(data["features"]) == len(cat().load("shelter").gdf)
    assert client.get("/yzt/geo/layer/nope.geojson").status_code == 404
    prov = json.loads(client.get("/yzt/geo/admin/province.geojson").data)
    assert prov["features"][0]["properties"]["adcode"] == "440000"
    cam_id = str(cat().load("camera").gdf["id"].iloc[0])
    svg = client.get(f"/yzt/sim/camera/{cam_id}.svg").data.decode()
    assert "模拟画面" in svg and cam_id in svg
    assert client.get("/yzt/sim/camera/CAM-NOPE.svg").status_code == 404
    runtime.current().close()


def _tarball(files: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for name, body in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(body)
            tar.addfile(info, io.BytesIO(body))
    return buf.getvalue()


def _registry(tgz: bytes, integrity: str):
    class H(BaseHTTPRequestHandler):
        def do_GET(self):
            port = self.server.server_address[1]
            if self.path == "/leaflet/1.9.3":
                body = json.dumps({"dist": {"tarball": f"http://127.0.0.1:{port}/leaflet.tgz",
                                            "integrity": integrity}}).encode()
            elif self.path == "/leaflet.tgz":
                body = tgz
            else:
                self.send_response(404)
                self.end_headers()
                return
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *a):
            pass
    srv = ThreadingHTTPServer(("127.0.0.1", 0), H)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    return srv


def test_fetch_js_assets_checks_integrity_and_writes_all_or_nothing(tmp_path):
    import importlib.util
    from pathlib import Path
    spec = importlib.util.spec_from_file_location(
        "fetch_js_assets", Path(__file__).resolve().parents[2] / "scripts" / "fetch_js_assets.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    tgz = _tarball({"package/dist/leaflet.js": b"L=1", "package/dist/leaflet.css": b".x{}",
                    "package/LICENSE": b"BSD"})
    good = "sha512-" + base64.b64encode(hashlib.sha512(tgz).digest()).decode()
    bad_srv = _registry(tgz, "sha512-" + base64.b64encode(hashlib.sha512(b"other").digest()).decode())
    dest = tmp_path / "vendor"
    assert mod.main(["--registry", f"http://127.0.0.1:{bad_srv.server_address[1]}", "--dest", str(dest)]) == 1
    assert not dest.exists()
    bad_srv.shutdown()
    srv = _registry(tgz, good)
    assert mod.main(["--registry", f"http://127.0.0.1:{srv.server_address[1]}", "--dest", str(dest)]) == 0
    assert (dest / "leaflet" / "leaflet.js").read_bytes() == b"L=1"
    assert export.vendor_files(dest) == ("L=1", ".x{}")
    srv.shutdown()


def test_a_coastal_warning_in_pieces_is_previewed_piece_by_piece(rt):
    """Every land piece CAP will warn is drawn in the composer's preview, not only the largest."""
    from command.dashboard import mapview
    form = {"coords": "110.45,21.05", "datum": "wgs84", "type": "hazmat_leak", "deaths": 40}
    state = report.submit_report(rt.service(), form, actor="值班员")
    data = warn.make_draft(rt, state.id, exercise=True, actor="值班员", radius=15000, zh="撤离", en="Leave")
    assert data["area_polygon"] and data["area_more_polygons"]
    shapes = mapview._draft_area(data)
    assert len(shapes) == 1 + len(data["area_more_polygons"])
    assert data["cap_xml"].count("<polygon>") == 2 * len(shapes)        # zh-CN and en-US blocks
