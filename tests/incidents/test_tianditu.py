"""The optional Tianditu geocoder against a real local HTTP server on 127.0.0.1: shape, cache, fallbacks."""
from __future__ import annotations

import json
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from incidents.errors import GeocoderError, LocateError
from incidents.geocode import locate
from incidents.providers import Cache, configured
from incidents.providers.tianditu import TiandituGeocoder
from settings import load_settings

ZJXC = {"lon": 113.3245, "lat": 23.1190}        # 珠江新城, 天河区 (WGS84)


def answer(lon=ZJXC["lon"], lat=ZJXC["lat"], score=100, level="门址", kw="广州市天河区花城大道") -> dict:
    return {"location": {"lon": lon, "lat": lat, "score": score, "level": level, "keyWord": kw},
            "status": "0", "msg": "ok"}


class FakeTianditu:
    """A local server speaking the geocoder's GET shape; records every request."""

    def __init__(self, reply: Callable[[dict], tuple[int, bytes]]):
        self.reply = reply
        self.requests: list[dict] = []
        srv = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802
                q = parse_qs(urlsplit(self.path).query)
                srv.requests.append(q)
                status, body = srv.reply(q)
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *a):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/geocoder"

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()


def ok(body: dict) -> Callable[[dict], tuple[int, bytes]]:
    return lambda q: (200, json.dumps(body, ensure_ascii=False).encode())


@pytest.fixture
def client():
    with httpx.Client() as c:
        yield c


def settings_for(url: str, tmp_path, key: str | None = "test-key"):
    return load_settings(tianditu_key=key, tianditu_geocoder_url=url, var_dir=tmp_path / "var",
                         geocoder_timeout_s=2.0)


def test_request_shape_and_answer(tmp_path, client):
    with FakeTianditu(ok(answer())) as srv:
        g = TiandituGeocoder("k1", srv.url, client=client, cache=Cache(tmp_path / "c.sqlite"))
        res = g.geocode("广州市天河区花城大道")
    q = srv.requests[0]
    assert q["tk"] == ["k1"] and json.loads(q["ds"][0]) == {"keyWord": "广州市天河区花城大道"}
    assert (res.lon, res.lat, res.precision, res.score) == (113.3245, 23.119, "poi", 1.0)


def test_online_answer_used_and_cached(tmp_path, client):
    with FakeTianditu(ok(answer())) as srv:
        s = settings_for(srv.url, tmp_path)
        first = locate("广州市天河区花城大道", settings=s, client=client)
        second = locate("广州市天河区花城大道", settings=s, client=client)
    assert len(srv.requests) == 1                       # the second answer came from the cache
    assert first.source == second.source == "tianditu"
    assert first.district_adcode == "440106" and first.precision == "poi"
    assert (tmp_path / "var" / "geocoder_cache.sqlite").is_file()


def test_failing_server_falls_back_to_offline_with_a_note(tmp_path, client):
    with FakeTianditu(lambda q: (503, b"{}")) as srv:
        loc = locate("广州市天河区天河路", settings=settings_for(srv.url, tmp_path), client=client)
    assert loc.source == "offline" and loc.district_adcode == "440106"
    assert any("online geocoder unavailable" in n and "503" in n for n in loc.notes)


def test_unreachable_server_falls_back(tmp_path, client):
    with FakeTianditu(ok(answer())) as srv:
        url = srv.url
    loc = locate("深圳市福田区景田路", settings=settings_for(url, tmp_path), client=client)
    assert loc.source == "offline" and loc.precision == "road"
    assert any("unavailable" in n for n in loc.notes)


def test_service_refusal_is_not_cached(tmp_path, client):
    with FakeTianditu(ok({"status": "101", "msg": "key invalid"})) as srv:
        g = TiandituGeocoder("bad", srv.url, client=client, cache=Cache(tmp_path / "c.sqlite"))
        for _ in range(2):
            with pytest.raises(GeocoderError, match="key invalid"):
                g.geocode("广州市天河区")
    assert len(srv.requests) == 2


def test_answer_outside_guangdong_is_ignored(tmp_path, client):
    with FakeTianditu(ok(answer(lon=116.40, lat=39.90))) as srv:      # Beijing
        loc = locate("广州市天河区体育西路", settings=settings_for(srv.url, tmp_path), client=client)
    assert loc.source == "offline" and loc.district_adcode == "440106"
    assert any("outside Guangdong" in n for n in loc.notes)


def test_answer_in_another_district_loses_to_the_named_district(tmp_path, client):
    with FakeTianditu(ok(answer(lon=114.05, lat=22.54))) as srv:      # Futian
        loc = locate("广州市天河区体育西路", settings=settings_for(srv.url, tmp_path), client=client)
    assert loc.source == "offline" and loc.district_adcode == "440106"


def test_online_can_find_what_offline_cannot_and_offline_refusals_stay(tmp_path, client):
    with FakeTianditu(ok(answer(level="兴趣点"))) as srv:
        s = settings_for(srv.url, tmp_path)
        loc = locate("花城汇商场", settings=s, client=client)    # offline only guesses 花城街道 (花都区)
        assert loc.district_adcode == "440106" and loc.source == "tianditu"
        assert any("overruled" in n for n in loc.notes)
        with pytest.raises(LocateError, match="outside Guangdong"):
            locate("北京市朝阳区", settings=s, client=client)
    assert len(srv.requests) == 1            # the refused address never went online


def test_not_configured_without_a_key(tmp_path, client):
    with FakeTianditu(ok(answer())) as srv:
        s = settings_for(srv.url, tmp_path, key=None)
        assert configured(s, client) is None
        assert locate("广州市天河区", settings=s, client=client).source == "offline"
    assert srv.requests == []


@pytest.mark.parametrize("body, why", [({"status": "0"}, "no location"),
                                       (answer(lon="abc"), "not a number"),
                                       (answer(lat=95), "out of range")])
def test_bad_answers_are_geocoder_errors(tmp_path, client, body, why):
    with FakeTianditu(ok(body)) as srv:
        g = TiandituGeocoder("k", srv.url, client=client)
        with pytest.raises(GeocoderError, match=why):
            g.geocode("广州市")
