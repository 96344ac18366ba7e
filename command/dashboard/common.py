"""Small pieces shared by the dashboard features: the level badge, the one alert line, formatting.

    badge(state.grade)                         # 一般 IV, coloured, with the rule that fired as a tooltip
    alert_from(err)                            # a refusal -> one clear line; anything else -> logged
    fmt_m(1234.5) == "1,235"
"""
from __future__ import annotations

import logging
from typing import Any

from dash import html

from command.dashboard.i18n import LL, L

log = logging.getLogger("yzt.dashboard")

LEVEL_EN = {"I": "Particularly serious", "II": "Serious", "III": "Relatively serious", "IV": "General"}
LEVEL_CSS = {"I": "#d7191c", "II": "#f28c28", "III": "#e6b800", "IV": "#1f6fd1"}


def grade_dict(grade: Any) -> dict:
    return grade if isinstance(grade, dict) else grade.as_dict()


def badge(grade: Any, *, with_rule: bool = False) -> html.Span:
    """The level badge: colour word, name and roman level; the rule that fired beside or on hover."""
    g = grade_dict(grade)
    rule = g.get("rule") or {}
    rule_text = " ".join(x for x in (rule.get("law", ""), rule.get("article", ""), rule.get("criterion", "")) if x)
    parts: list[Any] = [html.Span(
        [f"{g['colour']} ", LL(g["name"], LEVEL_EN.get(g["level"], g["name"])), f" {g['level']}"],
        className=f"yzt-badge lvl-{g['level']}", title=rule_text)]
    if with_rule and rule_text:
        parts.append(html.Span(rule_text, className="yzt-rule"))
    return html.Span(parts, className="yzt-badge-wrap")


def alert_box(message: Any, kind: str = "error") -> html.Div:
    return html.Div([html.Span(message, className="yzt-alert-text"),
                     html.Button("×", className="yzt-alert-close", id="app-alert-close", n_clicks=0)],
                    className=f"yzt-alert yzt-alert-{kind}", role="alert")


def alert_from(err: BaseException) -> html.Div:
    """One clear line for a refusal (our error trees are ValueErrors); a bug is logged, not shown."""
    if isinstance(err, ValueError):
        return alert_box(str(err).splitlines()[0] if str(err) else type(err).__name__)
    log.exception("dashboard action failed", exc_info=err)
    return alert_box(L("app.internal"))


def ok_box(message: Any) -> html.Div:
    return alert_box(message, "ok")


def fmt_m(metres: float | None) -> str:
    return "—" if metres is None else f"{metres:,.0f}"


def fmt_duration(seconds: float | None) -> str:
    if seconds is None:
        return "—"
    m, s = divmod(int(round(seconds)), 60)
    return f"{m}′{s:02d}″"


def short_time(iso_text: str | None) -> str:
    """'2026-11-23T10:13:07+08:00' -> '11-23 10:13:07' (Beijing time is the stored offset)."""
    if not iso_text:
        return ""
    return iso_text[5:19].replace("T", " ")
