"""Security headers on every response of the dashboard's Flask server: one ``after_request``.

    headers.install(app)          # app.create_app does this, after every callback is defined

Content-Security-Policy with no inline script: ``script-src 'self'`` plus the hashes Dash gives of its own
inline scripts (``Dash.csp_hashes()``: the ``new DashRenderer()`` line; ``_dash-config`` is a JSON data
block, which a browser never runs). No 'unsafe-inline' and no 'unsafe-eval' for scripts: an injected
``<script>`` or ``onerror=`` does not run. Styles allow 'unsafe-inline' because Dash and Leaflet set
style attributes on elements; styles cannot run script. Images and tiles: 'self', data:/blob: (Leaflet's
marker icons and cluster bubbles) and the configured basemap's and Tianditu's hosts only. Frames: none, and
no one may frame the dashboard (``frame-ancestors 'none'``, clickjacking). ``Referrer-Policy:
same-origin`` keeps incident URLs off other sites; ``X-Content-Type-Options: nosniff``.

A response that set its own CSP (the public warning page's stricter one) keeps it.
"""
from __future__ import annotations

from typing import Any, Iterable
from urllib.parse import urlsplit

TIANDITU_TILES = "https://*.tianditu.gov.cn"


def tile_origins(basemap_url: str | None, tianditu_key: str | None) -> list[str]:
    """The origins the map may load tiles from: the configured basemap's, and Tianditu's with a key."""
    out = []
    if basemap_url:
        parts = urlsplit(basemap_url.replace("{s}", "a"))
        if parts.scheme in ("http", "https") and parts.netloc:
            host = parts.netloc
            if "{" in basemap_url.split("//", 1)[-1].split("/", 1)[0]:     # {s}.tile.example: any subdomain
                host = "*." + host.split(".", 1)[1]
            out.append(f"{parts.scheme}://{host}")
    if tianditu_key:
        out.append(TIANDITU_TILES)
    return out


def policy(script_hashes: Iterable[str], img_origins: Iterable[str] = ()) -> str:
    """The dashboard's Content-Security-Policy header value."""
    hashes = " ".join(f"'{h}'" if not h.startswith("'") else h for h in script_hashes)
    imgs = " ".join(img_origins)
    directives = [
        "default-src 'self'",
        f"script-src 'self' {hashes}".strip(),
        "style-src 'self' 'unsafe-inline'",
        f"img-src 'self' data: blob: {imgs}".strip(),
        "font-src 'self' data:",
        "connect-src 'self'",
        "media-src 'self'",
        "object-src 'none'",
        "frame-src 'none'",
        "worker-src 'self' blob:",
        "frame-ancestors 'none'",
        "base-uri 'none'",
        "form-action 'self'",
    ]
    return "; ".join(directives)


def install(app: Any, settings: Any = None) -> str:
    """One after_request on ``app.server`` (a Dash app) setting the headers; returns the CSP it sends."""
    csp = policy(app.csp_hashes(), tile_origins(getattr(settings, "basemap_url", None),
                                                getattr(settings, "tianditu_key", None)))

    def _security_headers(resp):
        resp.headers.setdefault("Content-Security-Policy", csp)
        resp.headers.setdefault("Referrer-Policy", "same-origin")
        resp.headers.setdefault("X-Content-Type-Options", "nosniff")
        resp.headers.setdefault("X-Frame-Options", "DENY")
        return resp

    app.server.after_request(_security_headers)
    return csp
