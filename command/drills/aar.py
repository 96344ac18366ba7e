"""After-action report of a drill (Markdown or HTML), measured against reporting and dispatch targets.

    from command import drills

    from command.drills import aar
    result = drills.run_drill(drills.load_scenario("scenarios/x.yaml"))
    report.to_markdown(result)                   # str
    report.to_html(result)                       # str, one self-contained page (plotly.js inlined: opens offline)
    report.write_report(result, Path("aar.html"))  # .md or .html by suffix, written atomically

Targets (each row says its basis; pass/fail per incident):
- 条例 Art. 9 (国务院令第493号): the unit reports within 1 hour -> group formed <= 3600 s after the report.
- 条例 Art. 10: each step up takes at most 2 hours -> after a regrade upward, the new lead government is in
  the group <= 7200 s later.
- NFPA 1221 (secondary summary, standards §5): alarm processing 90% within 64 s -> group alerted <= 64 s.
- NFPA 1710 (secondary summary): first engine travel <= 240 s -> the best-ranked fire station's drive time.
- A drill never reaches a live channel -> live deliveries == 0; every exercise delivery delivered.
Time to first public warning is shown, with no target (no rule sets one).

Where each incident is (``location_rows``, also in the exercise report and the trainer's view): the address,
the precision, ``uncertainty_m`` (the radius around the point within which the place lies; 0 for a point
given as coordinates, "—" where nothing says), the district and the nearest township (approximate).

Nothing from the scenario, the layers or the replay is ever markup: in HTML every text is escaped; in
Markdown every text goes through ``md_text`` (HTML characters as entities, Markdown's punctuation
backslash-escaped, line breaks as spaces), so a station named ``<img src=x onerror=...>``, a link
``[x](javascript:...)`` or a ``|`` in a table cell comes out as the characters it is; texts given to plotly
(which reads a subset of HTML in labels) are escaped too.
"""
from __future__ import annotations

import html
import os
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ART9_S = 3600
ART10_S = 7200
NFPA1221_S = 64
NFPA1710_S = 240


@dataclass(frozen=True)
class Target:
    incident: str
    name: str
    basis: str
    target: str
    actual: str
    passed: bool | None          # None: informational, no target


def _fmt_s(seconds: float | None) -> str:
    if seconds is None:
        return "—"
    seconds = int(seconds)
    if seconds < 120:
        return f"{seconds} s"
    h, rem = divmod(seconds, 3600)
    return f"{h}h{rem // 60:02d}m" if h else f"{rem // 60}m{rem % 60:02d}s"


def _lead_joined(inc: dict[str, Any], gov: str, since: int) -> int | None:
    times = [m.get("joined_at_s") for m in inc["group"]["members"] if m.get("level_of_government") == gov]
    times = [t for t in times if t is not None]
    if not times:
        return None
    return max(0, min(times) - since)     # already in the group before the regrade: 0


def incident_targets(key: str, inc: dict[str, Any]) -> list[Target]:
    from command.response.group import lead_level
    from incidents.model import LEVELS
    out: list[Target] = []
    t0 = inc["levels"][0]["at_s"] if inc["levels"] else 0
    created = inc["group"].get("created_at_s")
    to_group = None if created is None else created - t0
    out.append(Target(key, "group formed (reported upward)", "条例 Art. 9: within 1 hour",
                      f"<= {_fmt_s(ART9_S)}", _fmt_s(to_group), to_group is not None and to_group <= ART9_S))
    out.append(Target(key, "group alerted", "NFPA 1221: alarm processing within 64 s (90%)",
                      f"<= {NFPA1221_S} s", _fmt_s(to_group), to_group is not None and to_group <= NFPA1221_S))
    for prev, cur in zip(inc["levels"], inc["levels"][1:]):
        if LEVELS.index(cur["level"]) <= LEVELS.index(prev["level"]):
            continue
        gov = lead_level(cur["level"])
        delay = _lead_joined(inc, gov, cur["at_s"])
        out.append(Target(key, f"{prev['level']}->{cur['level']}: {gov} leads", "条例 Art. 10: each step up "
                          "within 2 hours", f"<= {_fmt_s(ART10_S)}", _fmt_s(delay),
                          delay is not None and delay <= ART10_S))
    stations = [s for s in inc["nearby"].get("fire_station", []) if s.get("drive_time_s") is not None]
    best = min(stations, key=lambda s: s["drive_time_s"]) if stations else None
    out.append(Target(key, "first engine travel (best-ranked station)", "NFPA 1710: travel within 240 s",
                      f"<= {NFPA1710_S} s",
                      f"{_fmt_s(best['drive_time_s'])} {best['name']} ({best.get('drive_time_method', '')})"
                      if best else "no fire station", best is not None and best["drive_time_s"] <= NFPA1710_S))
    first = next((a["at_s"] - t0 for a in inc["alerts"] if a["msg_type"] in ("Alert", "Update")), None)
    out.append(Target(key, "first public warning", "no rule sets a target; shown for comparison", "—",
                      _fmt_s(first), None))
    return out


def targets(report: dict[str, Any]) -> list[Target]:
    out = [t for key, inc in report["incidents"].items() for t in incident_targets(key, inc)]
    live = report["deliveries"].get("live", 0)
    out.append(Target("*", "no live delivery from a drill", "CAP 1.2 status Exercise; drill contract",
                      "0", str(live), live == 0))
    for name, ch in report.get("deliveries_by_channel", {}).items():
        bad = ch.get("failed", 0) + ch.get("dead", 0) + ch.get("pending", 0)
        out.append(Target("*", f"channel {name} ({ch.get('mode')})", "every message delivered", "0 undelivered",
                          f"{ch.get('sent', 0)} sent, {bad} undelivered", bad == 0))
    return out


def _verdict(passed: bool | None) -> str:
    return "—" if passed is None else ("PASS" if passed else "FAIL")


def _summary_rows(report: dict[str, Any]) -> list[list[str]]:
    rows = []
    for key, inc in report["incidents"].items():
        loc = inc["location"]
        regrades = " -> ".join(f"{lv['level']}@{_fmt_s(lv['at_s'])}" for lv in inc["levels"])
        rows.append([key, f"{loc.get('matched')} ({loc.get('district_adcode')})", inc["level"], regrades,
                     str(len(inc["group"]["members"])), str(len(inc["alerts"])), _fmt_s(inc.get("closed_at_s"))])
    return rows


SUMMARY_HEAD = ["incident", "where", "level", "levels", "members", "messages", "closed"]
LOCATION_HEAD = ["incident", "address", "precision", "uncertainty_m", "district", "township"]


def _fmt_m(metres: Any) -> str:
    if metres is None:
        return "—"
    return f"{float(metres):,.0f} m" if float(metres) >= 10 else f"{float(metres):g} m"


def _township(t: Any) -> str:
    """The nearest township centre of a point ({"code", "name", "distance_m", "approximate"}), or a name."""
    if not t:
        return "—"
    if not isinstance(t, dict):
        return str(t)
    text = f"{t.get('name', '')} ({t.get('code', '')})"
    if t.get("distance_m") is not None:
        text += f", {_fmt_m(t['distance_m'])} from its centre"
    return text + (" (approximate)" if t.get("approximate") else "")


def location_rows(report: dict[str, Any]) -> list[list[str]]:
    """One row per incident: address (the reported text, else what the point stands for), precision,
    uncertainty_m, district, township."""
    rows = []
    for key, inc in report["incidents"].items():
        loc = inc.get("location") or {}
        district = " ".join(str(x) for x in (loc.get("city_name"), loc.get("district_name")) if x)
        if loc.get("district_adcode"):
            district = f"{district} ({loc['district_adcode']})".strip()
        rows.append([key, str(loc.get("address") or loc.get("matched") or "—"), str(loc.get("precision") or "—"),
                     _fmt_m(loc.get("uncertainty_m")), district or "—", _township(loc.get("township"))])
    return rows
TARGET_HEAD = ["incident", "measure", "basis", "target", "actual", "result"]
CHANNEL_HEAD = ["channel", "mode", "sent", "failed", "dead", "pending"]


def _channel_rows(report: dict[str, Any]) -> list[list[str]]:
    return [[n, c.get("mode", ""), *(str(c.get(k, 0)) for k in ("sent", "failed", "dead", "pending"))]
            for n, c in report.get("deliveries_by_channel", {}).items()]


_MD_PUNCT = re.compile(r"([\\`*_\[\]()|!~])")          # what can open markup inside a line
_AUTOLINK = re.compile(r"(?i)(?<=[a-z])(:)(?=//)|(?<=www)(\.)")    # GFM makes links of http://... and www.


def md_text(value: Any) -> str:
    """Any text as inert Markdown (CommonMark/GFM): shows as itself, never as a tag, link, emphasis or cell.

    HTML characters become entities, markup punctuation is backslash-escaped, an autolink is broken with a
    backslash, line breaks become spaces (a table row stays one row)."""
    one_line = " ".join(str(value).split())
    text = _MD_PUNCT.sub(r"\\\1", html.escape(one_line, quote=False))
    return _AUTOLINK.sub(lambda m: "\\" + (m.group(1) or m.group(2)), text)


def _md_table(head: list[str], rows: list[list[str]]) -> str:
    esc = [[md_text(c) for c in r] for r in rows]
    return "\n".join(["| " + " | ".join(md_text(h) for h in head) + " |", "|" + "---|" * len(head)] +
                     ["| " + " | ".join(r) + " |" for r in esc])


def to_markdown(report: dict[str, Any]) -> str:
    ts = targets(report)
    failed = sum(t.passed is False for t in ts)
    lines = [f"# 演练总结 After-action report: {md_text(report['scenario'])}", "",
             f"Status **{md_text(report['status'])}**; started {md_text(report.get('start', ''))}. "
             f"Targets: {sum(t.passed is True for t in ts)} passed, {failed} failed.", "",
             "## Incidents", "", _md_table(SUMMARY_HEAD, _summary_rows(report)), "",
             "## Locations", "", _md_table(LOCATION_HEAD, location_rows(report)), "",
             "## Against targets", "",
             _md_table(TARGET_HEAD, [[t.incident, t.name, t.basis, t.target, t.actual, _verdict(t.passed)]
                                     for t in ts]), "",
             "## Deliveries per channel", "",
             f"live: {report['deliveries'].get('live', 0)}, exercise: {report['deliveries'].get('exercise', 0)}", "",
             _md_table(CHANNEL_HEAD, _channel_rows(report)), ""]
    if report.get("checks"):
        lines += ["## Expected outcomes", "", _md_table(
            ["incident", "field", "expected", "actual", "result"],
            [[c["incident"], c["field"], str(c["expected"]), str(c["actual"]), _verdict(c["passed"])]
             for c in report["checks"]]), ""]
    if report.get("errors"):
        lines += ["## Refused during the replay", ""] + [
            f"- event {md_text(e['event'])} ({md_text(e['kind'])} {md_text(e['incident'])}): {md_text(e['error'])}"
            for e in report["errors"]] + [""]
    return "\n".join(lines)


def _plotly_text(value: Any) -> str:
    """Plotly reads <a href>, <b>, <br>... in labels and decodes &lt; &gt; &amp; (not &quot;): escape those."""
    return html.escape(str(value), quote=False)


def timeline_figure(report: dict[str, Any]):
    """A plotly figure: one row per incident, minutes from the start on x, a marker per step."""
    import plotly.graph_objects as go
    series: dict[str, tuple[list, list, list]] = {}

    def add(kind: str, key: str, at_s: int | None, text: str) -> None:
        if at_s is None:
            return
        xs, ys, ts = series.setdefault(kind, ([], [], []))
        xs.append(at_s / 60)
        ys.append(_plotly_text(key))
        ts.append(_plotly_text(text))

    for key, inc in report["incidents"].items():
        for i, lv in enumerate(inc["levels"]):
            add("report" if i == 0 else "regrade", key, lv["at_s"], f"{lv['level']}: {lv['rule']}")
        add("group", key, inc["group"].get("created_at_s"), f"{len(inc['group']['members'])} members")
        for a in inc["alerts"]:
            add(f"warning {a['msg_type']}", key, a["at_s"], f"{a['identifier']} pop {a['population']}")
        add("closed", key, inc.get("closed_at_s"), "closed")
    fig = go.Figure()
    for kind, (xs, ys, ts) in series.items():
        fig.add_trace(go.Scatter(x=xs, y=ys, mode="markers", name=kind, text=ts, marker={"size": 12},
                                 hovertemplate="%{y} %{x:.1f} min<br>%{text}<extra>" + _plotly_text(kind)
                                 + "</extra>"))
    fig.update_layout(title=f"Timeline: {_plotly_text(report['scenario'])}", xaxis_title="minutes from start",
                      yaxis_title="incident", height=260 + 40 * len(report["incidents"]))
    return fig


def _html_table(head: list[str], rows: list[list[str]]) -> str:
    th = "".join(f"<th>{html.escape(h)}</th>" for h in head)
    body = "".join("<tr>" + "".join(f'<td class="{html.escape(c.lower())}">{html.escape(c)}</td>'
                                    if c in ("PASS", "FAIL") else f"<td>{html.escape(str(c))}</td>"
                                    for c in r) + "</tr>" for r in rows)
    return f"<table><thead><tr>{th}</tr></thead><tbody>{body}</tbody></table>"


def to_html(report: dict[str, Any]) -> str:
    """One self-contained page: tables plus the timeline chart with plotly.js inlined (works offline)."""
    import plotly.io as pio
    ts = targets(report)
    chart = pio.to_html(timeline_figure(report), include_plotlyjs=True, full_html=False,
                        div_id="aar-timeline")   # a fixed id: the same report gives the same page
    title = html.escape(f"演练总结 After-action report: {report['scenario']}")
    style = ("body{font-family:sans-serif;margin:2em}table{border-collapse:collapse;margin:1em 0}"
             "td,th{border:1px solid #ccc;padding:4px 8px}.pass{background:#dfd}.fail{background:#fdd}")
    parts = [f"<!DOCTYPE html><html lang=\"zh\"><head><meta charset=\"utf-8\"><title>{title}</title>"
             f"<style>{style}</style></head><body><h1>{title}</h1>",
             f"<p>Status <b>{html.escape(report['status'])}</b>; started {html.escape(report.get('start', ''))}. "
             f"Targets: {sum(t.passed is True for t in ts)} passed, {sum(t.passed is False for t in ts)} failed.</p>",
             "<h2>Incidents</h2>", _html_table(SUMMARY_HEAD, _summary_rows(report)),
             "<h2>Locations</h2>", _html_table(LOCATION_HEAD, location_rows(report)),
             "<h2>Timeline</h2>", chart,
             "<h2>Against targets</h2>",
             _html_table(TARGET_HEAD, [[t.incident, t.name, t.basis, t.target, t.actual, _verdict(t.passed)]
                                       for t in ts]),
             "<h2>Deliveries per channel</h2>", _html_table(CHANNEL_HEAD, _channel_rows(report))]
    if report.get("errors"):
        parts.append("<h2>Refused during the replay</h2><ul>" + "".join(
            f"<li>{html.escape(str(e['event']))}: {html.escape(e['error'])}</li>" for e in report["errors"]) + "</ul>")
    parts.append("</body></html>")
    return "\n".join(parts)


def write_report(report: dict[str, Any], path: Path | str) -> Path:
    """Write the after-action report as .md or .html (by suffix) atomically: temp file, then rename."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in (".md", ".html", ".htm"):
        from command.errors import CommandError
        raise CommandError(f"{path}: an after-action report is .md or .html")
    return write_atomically(path, to_markdown(report) if suffix == ".md" else to_html(report))


def write_atomically(path: Path, text: str) -> Path:
    """``text`` to ``path`` through a temporary file beside it and a rename: a report is whole or absent."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path
