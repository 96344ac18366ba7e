"""The public page of a warning, the one a CAP message's ``<web>`` links: ``GET /warnings/<identifier>``.

    public_warning.register(app.server, store=lambda: runtime.current().store())   # app.create_app does this
    public_warning.page_html(row, now=now)          # the page of one stored alert row (pure)
    public_warning.is_public(path)                  # the sign-in gate lets these through

What 12379 would link: the headline, the instruction, the area on a map, in zh-CN and English, with the
issuer, the times and the contact, and a banner for an exercise. No sign-in, and nothing internal: the page
is built only from the public CAP message (never the incident's timeline, actors, notes or deliveries), and
it exists only for an Actual or Exercise message that was actually delivered on at least one channel; every
other identifier is a 404, the same 404 as one never made. The map is an SVG drawn from the message's own
polygons and circles (no tile server, no script); district outlines, when given, are context only.
Every text is escaped by Jinja2's autoescape; the page sends its own strict Content-Security-Policy (no
script at all, styles from /warnings/warning.css).
"""
from __future__ import annotations

import math
import re
from datetime import datetime
from typing import Any, Callable, Iterable

from markupsafe import Markup, escape

IDENT = re.compile(r"^[0-9A-Za-z_-]{1,64}$")
CSS_PATH = "/warnings/warning.css"
PAGE_CSP = ("default-src 'none'; style-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'; "
            "frame-ancestors 'none'")
SVG_W, SVG_H = 640, 420
COLOUR = {"Extreme": "#d7191c", "Severe": "#f28c28", "Moderate": "#e6b800", "Minor": "#1f6fd1"}

CSS = """body{font-family:system-ui,"PingFang SC","Microsoft YaHei",sans-serif;margin:0;color:#1b1f24;background:#f5f6f8}
main{max-width:760px;margin:0 auto;padding:16px}
.banner{padding:10px 14px;border-radius:6px;margin:8px 0;font-weight:bold}
.exercise{background:#fff3cd;border:1px solid #e0b800}
.over{background:#e8eaed;border:1px solid #9aa0a6}
.level{display:inline-block;color:#fff;background:#5f6368;border-radius:4px;padding:2px 8px;font-weight:bold}
.sev-Extreme{background:#d7191c}.sev-Severe{background:#f28c28}.sev-Moderate{background:#b38f00}.sev-Minor{background:#1f6fd1}
section{background:#fff;border-radius:8px;padding:12px 16px;margin:12px 0;box-shadow:0 1px 3px rgba(0,0,0,.12)}
h1{font-size:1.35em;margin:.3em 0}h2{font-size:1.1em}
.instruction{font-size:1.15em;font-weight:bold;border-left:4px solid #b3261e;padding-left:10px}
dl{display:grid;grid-template-columns:max-content 1fr;gap:4px 12px}dt{color:#5f6368}
svg{width:100%;height:auto;background:#eef3f7;border-radius:6px}
.small{color:#5f6368;font-size:.85em}
"""

_TEMPLATE = """<!DOCTYPE html>
<html lang="zh-CN"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<meta name="referrer" content="no-referrer">
<title>{{ blocks[0].headline }}</title><link rel="stylesheet" href="{{ css }}"></head>
<body><main>
{% if exercise %}<div class="banner exercise">【演练】演练信息, 非真实事件 · EXERCISE - not a real emergency</div>{% endif %}
{% if over %}<div class="banner over">{{ over }}</div>{% endif %}
{% for b in blocks %}
<section lang="{{ b.lang }}">
  <p><span class="level sev-{{ b.severity }}">{{ b.level }}</span> {{ b.kind }}</p>
  <h1>{{ b.headline }}</h1>
  {% if b.instruction %}<p class="instruction">{{ b.instruction }}</p>{% endif %}
  {% if b.description %}<p>{{ b.description }}</p>{% endif %}
  <dl>
    <dt>{{ b.t.area }}</dt><dd>{{ b.area }}</dd>
    <dt>{{ b.t.event }}</dt><dd>{{ b.event }}</dd>
    <dt>{{ b.t.sent }}</dt><dd>{{ sent }}</dd>
    {% if b.expires %}<dt>{{ b.t.expires }}</dt><dd>{{ b.expires }}</dd>{% endif %}
    <dt>{{ b.t.sender }}</dt><dd>{{ b.sender }}</dd>
    {% if b.contact %}<dt>{{ b.t.contact }}</dt><dd>{{ b.contact }}</dd>{% endif %}
  </dl>
</section>
{% if loop.first %}<section><h2>预警范围 Warned area</h2>{{ svg }}
<p class="small">{{ shapes_note }}</p></section>{% endif %}
{% endfor %}
<p class="small">{{ identifier }} · 粤政图 Yue Zheng Tu</p>
</main></body></html>
"""

LABELS = {
    "zh": {"area": "范围", "event": "事件", "sent": "发布时间", "expires": "有效期至", "sender": "发布单位",
           "contact": "咨询", "Alert": "预警发布", "Update": "预警更新", "Cancel": "预警解除"},
    "en": {"area": "Area", "event": "Event", "sent": "Issued", "expires": "In force until", "sender": "Issued by",
           "contact": "Contact", "Alert": "Warning", "Update": "Updated warning", "Cancel": "Warning cancelled"},
}


def is_public(path: str) -> bool:
    """The paths served without sign-in: exactly ``/warnings/<identifier>`` and the page's stylesheet."""
    if path == CSS_PATH:
        return True
    head, _, ident = path.rpartition("/")
    return head == "/warnings" and bool(IDENT.match(ident))


def publishable(row: dict[str, Any] | None, deliveries: Iterable[dict[str, Any]]) -> bool:
    """Only an Actual or Exercise message that at least one channel actually delivered is public."""
    return bool(row) and row.get("status") in ("Actual", "Exercise") and any(
        d.get("status") == "sent" for d in deliveries)


# ---------------------------------------------------------------- reading the message


def _blocks(root) -> list[dict]:
    from command.alerts.cap import CAP_NS
    ns = {"c": CAP_NS}
    msg_type = root.findtext("c:msgType", namespaces=ns) or "Alert"
    out = []
    infos = root.findall("c:info", ns)
    infos.sort(key=lambda i: 0 if (i.findtext("c:language", namespaces=ns) or "").lower().startswith("zh") else 1)
    for info in infos:
        lang = info.findtext("c:language", namespaces=ns) or "en-US"
        key = "zh" if lang.lower().startswith("zh") else "en"
        params = {p.findtext("c:valueName", namespaces=ns): p.findtext("c:value", namespaces=ns) or ""
                  for p in info.iterfind("c:parameter", ns)}
        level = (f"{params.get('预警级别', '')} {params.get('预警颜色', '')}".strip() if key == "zh" else
                 f"Level {params.get('LEVEL', '')} {params.get('COLOUR', '')}".strip())
        descs = [d.text for d in info.iterfind("c:area/c:areaDesc", ns) if d.text]
        out.append({"lang": "zh-CN" if key == "zh" else "en", "t": LABELS[key],
                    "kind": LABELS[key].get(msg_type, msg_type),
                    "level": level or (info.findtext("c:severity", namespaces=ns) or ""),
                    "headline": info.findtext("c:headline", namespaces=ns) or "",
                    "instruction": info.findtext("c:instruction", namespaces=ns) or "",
                    "description": info.findtext("c:description", namespaces=ns) or "",
                    "event": info.findtext("c:event", namespaces=ns) or "",
                    "area": "; ".join(descs), "expires": info.findtext("c:expires", namespaces=ns) or "",
                    "sender": info.findtext("c:senderName", namespaces=ns) or root.findtext("c:sender", namespaces=ns),
                    "contact": info.findtext("c:contact", namespaces=ns) or "",
                    "severity": info.findtext("c:severity", namespaces=ns) or ""})
    return out


def _shapes(root) -> tuple[list[list[tuple[float, float]]], list[tuple[float, float, float]]]:
    """(polygons as [(lon, lat)], circles as (lon, lat, radius_km)) of the first info block's areas."""
    from command.alerts.cap import CAP_NS
    ns = {"c": CAP_NS}
    info = root.find("c:info", ns)
    polys, circles = [], []
    if info is None:
        return polys, circles
    for el in info.iterfind("c:area/c:polygon", ns):
        try:
            ring = [(float(lo), float(la)) for la, lo in (p.split(",") for p in (el.text or "").split())]
        except ValueError:
            continue
        if len(ring) >= 3:
            polys.append(ring)
    for el in info.iterfind("c:area/c:circle", ns):
        try:
            centre, r = (el.text or "").split()
            la, lo = centre.split(",")
            circles.append((float(lo), float(la), float(r)))
        except ValueError:
            continue
    return polys, circles


# ---------------------------------------------------------------- the map


def _bbox(polys, circles, geocoded) -> tuple[float, float, float, float] | None:
    xs, ys = [], []
    for ring in polys:
        xs += [p[0] for p in ring]
        ys += [p[1] for p in ring]
    for lo, la, r in circles:
        dlat = r / 111.32
        dlon = dlat / max(math.cos(math.radians(la)), 0.1)
        xs += [lo - dlon, lo + dlon]
        ys += [la - dlat, la + dlat]
    for geom in geocoded:
        x0, y0, x1, y1 = geom.bounds
        xs += [x0, x1]
        ys += [y0, y1]
    if not xs:
        return None
    return min(xs), min(ys), max(xs), max(ys)


def area_svg(polys, circles, *, geocoded: Iterable[Any] = (), context: Iterable[tuple[str, Any]] = (),
             colour: str = "#d7191c", label: str = "") -> Markup:
    """An SVG map of the warned area: CAP polygons and circles (lon/lat), optional district outlines."""
    geocoded = list(geocoded)
    box = _bbox(polys, circles, geocoded)
    if box is None:
        return Markup('<p>—</p>')
    x0, y0, x1, y1 = box
    pad_x, pad_y = max((x1 - x0) * 0.25, 0.005), max((y1 - y0) * 0.25, 0.005)
    x0, x1, y0, y1 = x0 - pad_x, x1 + pad_x, y0 - pad_y, y1 + pad_y
    k = math.cos(math.radians((y0 + y1) / 2))
    scale = min(SVG_W / ((x1 - x0) * k), SVG_H / (y1 - y0))
    ox = (SVG_W - (x1 - x0) * k * scale) / 2
    oy = (SVG_H - (y1 - y0) * scale) / 2

    def pt(lon: float, lat: float) -> str:
        return f"{ox + (lon - x0) * k * scale:.1f},{oy + (y1 - lat) * scale:.1f}"

    def rings_of(geom) -> list:
        parts = getattr(geom, "geoms", [geom])
        return [list(p.exterior.coords) for p in parts if hasattr(p, "exterior")]

    out = [f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {SVG_W} {SVG_H}" role="img" '
           f'aria-label="{escape(label)}">']
    for name, geom in context:
        for ring in rings_of(geom):
            out.append(f'<polygon points="{" ".join(pt(x, y) for x, y in ring)}" fill="#fff" stroke="#8a97a8" '
                       'stroke-width="1"/>')
        c = geom.representative_point()
        if x0 < c.x < x1 and y0 < c.y < y1:
            out.append(f'<text x="{pt(c.x, c.y).split(",")[0]}" y="{pt(c.x, c.y).split(",")[1]}" font-size="12" '
                       f'fill="#5f6368" text-anchor="middle">{escape(name)}</text>')
    for geom in geocoded:
        for ring in rings_of(geom):
            out.append(f'<polygon points="{" ".join(pt(x, y) for x, y in ring)}" fill="{colour}" '
                       f'fill-opacity="0.3" stroke="{colour}" stroke-width="2"/>')
    for ring in polys:
        out.append(f'<polygon points="{" ".join(pt(x, y) for x, y in ring)}" fill="{colour}" fill-opacity="0.35" '
                   f'stroke="{colour}" stroke-width="2"/>')
    for lo, la, r in circles:
        cx, cy = pt(lo, la).split(",")
        out.append(f'<circle cx="{cx}" cy="{cy}" r="{r / 111.32 * scale:.1f}" fill="{colour}" fill-opacity="0.2" '
                   f'stroke="{colour}" stroke-width="2" stroke-dasharray="6 4"/>')
        out.append(f'<circle cx="{cx}" cy="{cy}" r="4" fill="{colour}"/>')
    # a scale bar of a round number of km, about a fifth of the width
    km_per_px = 111.32 / scale
    want = km_per_px * SVG_W / 5
    bar_km = min((m * 10 ** e for e in range(-2, 4) for m in (1, 2, 5)), key=lambda v: abs(v - want))
    px = bar_km / km_per_px
    out.append(f'<line x1="16" y1="{SVG_H - 18}" x2="{16 + px:.1f}" y2="{SVG_H - 18}" stroke="#1b1f24" '
               'stroke-width="3"/>')
    out.append(f'<text x="16" y="{SVG_H - 26}" font-size="12" fill="#1b1f24">{bar_km:g} km</text>')
    out.append(f'<text x="{SVG_W - 16}" y="22" font-size="14" fill="#1b1f24" text-anchor="end">N ↑</text>')
    out.append("</svg>")
    return Markup("".join(out))


# ---------------------------------------------------------------- the page


def page_html(row: dict[str, Any], *, now: datetime, context: Callable[[tuple], list] | None = None,
              geocoded: Callable[[list[str]], list] | None = None) -> str:
    """The public page of one stored alert row (``Store.alert``), built from its CAP XML only.

    ``context(bbox)`` may give (name, shapely geometry) district outlines to draw beneath the area;
    ``geocoded(adcodes)`` the outlines of a district-wide warning that carries codes but no shape."""
    from jinja2 import Environment

    from command.alerts.cap import CAP_NS, parse
    root = parse(row["cap_xml"])
    ns = {"c": CAP_NS}
    blocks = _blocks(root)
    if not blocks:
        raise ValueError(f"alert {row.get('identifier')}: no info block")
    polys, circles = _shapes(root)
    codes = [v.text for v in root.iterfind("c:info[1]/c:area/c:geocode/c:value", ns) if v.text]
    shapes_geo = geocoded(codes) if (geocoded and codes and not polys and not circles) else []
    box = _bbox(polys, circles, shapes_geo)
    ctx = context(box) if (context and box) else []
    colour = COLOUR.get(blocks[0]["severity"], "#d7191c")
    msg_type = root.findtext("c:msgType", namespaces=ns)
    expires = [datetime.fromisoformat(b["expires"]) for b in blocks if b["expires"]]
    over = ""
    if msg_type == "Cancel":
        over = "此预警已解除 · This warning has been cancelled"
    elif expires and max(expires) <= now:
        over = "此预警已过有效期 · This warning is no longer in force"
    note = ("图中实线为预警范围, 虚线圆为所请求的范围 · Shaded: the warned area; dashed circle: the requested radius"
            if circles else "图中阴影为预警范围 · Shaded: the warned area")
    env = Environment(autoescape=True)
    return env.from_string(_TEMPLATE).render(
        blocks=blocks, exercise=root.findtext("c:status", namespaces=ns) == "Exercise", over=over,
        colour=colour, sent=root.findtext("c:sent", namespaces=ns), identifier=row.get("identifier", ""),
        svg=area_svg(polys, circles, geocoded=shapes_geo, context=ctx, colour=colour, label=blocks[0]["area"]),
        shapes_note=note, css=CSS_PATH)


def _district_context(box: tuple) -> list:
    from shapely.geometry import box as make_box

    from incidents import admin
    d = admin.districts()
    x0, y0, x1, y1 = box
    w, h = max(x1 - x0, 0.01), max(y1 - y0, 0.01)
    near = d[d.intersects(make_box(x0 - w, y0 - h, x1 + w, y1 + h))]
    name_col = "district_name" if "district_name" in near.columns else "name"
    return [(str(n), g.simplify(0.0005, preserve_topology=True)) for n, g in zip(near[name_col], near.geometry)]


def _district_shapes(codes: list[str]) -> list:
    from incidents import admin
    d = admin.districts()
    col = "district_adcode" if "district_adcode" in d.columns else "adcode"
    return [g.simplify(0.0005, preserve_topology=True) for g in d[d[col].astype(str).isin(codes)].geometry]


def register(server: Any, *, store: Callable[[], Any], clock: Callable[[], datetime] | None = None,
             context: bool = True) -> None:
    """``GET /warnings/<identifier>`` and its stylesheet on the dashboard's Flask server."""
    from flask import Response, abort

    from command.alerts.cap import BEIJING

    def now() -> datetime:
        return clock() if clock else datetime.now(BEIJING)

    def _headers(resp: Response, cache: str) -> Response:
        resp.headers["Content-Security-Policy"] = PAGE_CSP
        resp.headers["Referrer-Policy"] = "no-referrer"
        resp.headers["X-Content-Type-Options"] = "nosniff"
        resp.headers["Cache-Control"] = cache
        return resp

    @server.get(CSS_PATH)
    def yzt_public_warning_css() -> Response:
        return _headers(Response(CSS, mimetype="text/css"), "public, max-age=3600")

    @server.get("/warnings/<identifier>")
    def yzt_public_warning(identifier: str) -> Response:
        if not IDENT.match(identifier):
            abort(404)
        s = store()
        row = s.alert(identifier)
        if not publishable(row, s.deliveries(identifier) if row else []):
            abort(404)
        page = page_html(row, now=now(), context=_district_context if context else None,
                         geocoded=_district_shapes if context else None)
        return _headers(Response(page, mimetype="text/html"), "public, max-age=60")
