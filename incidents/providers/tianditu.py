"""The Tianditu (天地图) geocoder: address -> CGCS2000 point (treated as WGS84).

    g = TiandituGeocoder(key, url, timeout_s=3.0, client=httpx.Client(), cache=Cache(path))
    g.geocode("广州市天河区体育西路")   # -> OnlineResult, or GeocoderError (one line)

Request:  GET {url}?ds={"keyWord":"..."}&tk=KEY
Answer:   {"location": {"lon": .., "lat": .., "score": .., "level": "..", "keyWord": ".."},
           "status": "0", "msg": "ok"}   (status other than "0" is a refusal by the service)
Enabled only when settings.tianditu_key is set (``from_settings``). Successful answers are cached.
"""
from __future__ import annotations

import json
import math
import unicodedata

import httpx

from incidents.errors import GeocoderError
from incidents.providers import Cache, OnlineResult, cache_for

NAME = "tianditu"
# Tianditu's level words -> our precision; anything else is taken as a point of interest.
LEVELS = (("门址", "poi"), ("兴趣点", "poi"), ("POI", "poi"), ("道路", "road"), ("交叉", "road"),
          ("乡镇", "township"), ("街道", "township"), ("村", "community"), ("社区", "community"),
          ("区县", "district"), ("县", "district"), ("地级", "city"), ("城市", "city"), ("市", "city"),
          ("省", "province"))


def _precision(level: str) -> str:
    for word, precision in LEVELS:
        if word in level:
            return precision
    return "poi"


def _number(v, what: str) -> float:
    try:
        x = float(v)
    except (TypeError, ValueError):
        raise GeocoderError(f"tianditu geocoder: {what} {v!r} is not a number") from None
    if not math.isfinite(x):
        raise GeocoderError(f"tianditu geocoder: {what} {v!r} is not finite")
    return x


class TiandituGeocoder:
    name = NAME

    def __init__(self, key: str, url: str, *, timeout_s: float = 3.0, client: httpx.Client | None = None,
                 cache: Cache | None = None) -> None:
        self.key, self.url, self.timeout_s = key, url, timeout_s
        self.client = client
        self.cache = cache

    def _fetch(self, query: str) -> dict:
        params = {"ds": json.dumps({"keyWord": query}, ensure_ascii=False), "tk": self.key}
        client = self.client or httpx.Client()
        try:
            r = client.get(self.url, params=params, timeout=self.timeout_s)
        except httpx.HTTPError as e:
            raise GeocoderError(f"tianditu geocoder at {self.url}: {type(e).__name__}") from None
        finally:
            if self.client is None:
                client.close()
        if r.status_code != 200:
            raise GeocoderError(f"tianditu geocoder at {self.url}: HTTP {r.status_code}")
        try:
            body = r.json()
        except ValueError:
            raise GeocoderError(f"tianditu geocoder at {self.url}: answer is not JSON") from None
        if not isinstance(body, dict):
            raise GeocoderError(f"tianditu geocoder at {self.url}: answer is not a JSON object")
        if str(body.get("status")) != "0":
            raise GeocoderError(f"tianditu geocoder: status {body.get('status')!r} {body.get('msg', '')}")
        return body

    def geocode(self, text: str) -> OnlineResult:
        query = " ".join(unicodedata.normalize("NFKC", text or "").split())
        if not query:
            raise GeocoderError("tianditu geocoder: empty address")
        body = self.cache.get(NAME, query) if self.cache else None
        if body is None:
            body = self._fetch(query)
            result = self._parse(body, query)      # only answers that parse are cached
            if self.cache:
                self.cache.put(NAME, query, body)
            return result
        return self._parse(body, query)

    @staticmethod
    def _parse(body: dict, query: str) -> OnlineResult:
        loc = body.get("location")
        if not isinstance(loc, dict):
            raise GeocoderError("tianditu geocoder: answer has no location")
        lon, lat = _number(loc.get("lon"), "lon"), _number(loc.get("lat"), "lat")
        if not (-180 <= lon <= 180 and -90 <= lat <= 90):
            raise GeocoderError(f"tianditu geocoder: location {lon},{lat} is out of range")
        score = loc.get("score")
        score = None if score in (None, "") else _number(score, "score")
        if score is not None and score > 1:
            score = score / 100.0                  # the service scores 0..100
        level = str(loc.get("level") or "")
        return OnlineResult(lon=lon, lat=lat, crs="wgs84", precision=_precision(level),
                            score=None if score is None else max(0.0, min(1.0, score)),
                            keyword=str(loc.get("keyWord") or query), provider=NAME, level=level)


def from_settings(settings, client: httpx.Client | None = None) -> TiandituGeocoder | None:
    """The geocoder the settings enable (tianditu_key set), or None: offline stays the default."""
    if not settings.tianditu_key:
        return None
    return TiandituGeocoder(settings.tianditu_key, settings.tianditu_geocoder_url,
                            timeout_s=settings.geocoder_timeout_s, client=client, cache=cache_for(settings))
