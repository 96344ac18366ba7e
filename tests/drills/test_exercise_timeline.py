"""The report's plotly timeline of expected against actual: one trace per expected action with its time, its
target (the deadline) and the actual time, a missed one marked with a red x at its target and no actual
point; the same figure in the trainer's view and the HTML document."""
from __future__ import annotations

from command.drills import evaluation
from exercise_helpers import BASIC, PLAYER, row, scenario_text, send_alert


def points(trace) -> dict[str, tuple[float, str, str]]:
    """label -> (minute, symbol, colour) of a trace's markers (labels: due, target, missed, actual)."""
    out = {}
    for x, label, symbol, colour in zip(trace.x, trace.customdata, trace.marker.symbol, trace.marker.color):
        out[label.split(" ")[0]] = (x, symbol, colour)
    return out


def action_traces(fig) -> dict[int, object]:
    return {t.meta["event"]: t for t in fig.data if t.meta}


def played(book, wall):
    """BASIC at 60x: the warning sent at 3 min (due 4, in time), the cancel never (due 30: missed), the close
    at 70 min (due 60, target 65: late)."""
    ex = book.start(scenario_text(BASIC), speed=60, players=["cmd1"], trainer="tr1")
    wall.advance(3)
    ex.tick()
    send_alert(ex)
    wall.advance(67)
    ex.service.close(ex.incident_ids["A"], actor=PLAYER, reason="处置完毕")
    assert [row(ex.state(), e)["status"] for e in (2, 4, 5)] == ["done", "missed", "done"]
    ex.end()
    return ex


def test_one_trace_per_expected_action_with_its_due_target_and_actual_time(book, wall):
    rep = played(book, wall).report()
    fig = evaluation.timeline_figure(rep)
    traces = action_traces(fig)
    assert sorted(traces) == [r["event"] for r in rep["expected"]] == [2, 4, 5]
    alert, cancel, close = traces[2], traces[4], traces[5]

    assert alert.meta == {"event": 2, "kind": "alert", "incident": "A", "outcome": "in_time", "due_min": 4.0,
                          "target_min": 9.0, "actual_min": 3.0}
    p = points(alert)
    assert p["actual"] == (3.0, "circle", "#2a9d3a") and p["due"][:2] == (4.0, "circle-open")
    assert p["target"][:2] == (9.0, "line-ns-open")
    assert list(alert.x) == [3.0, 4.0, 9.0]                         # joined in time order
    assert "by cmd1" in next(c for c in alert.customdata if c.startswith("actual"))

    assert cancel.meta["outcome"] == "missed" and cancel.meta["actual_min"] is None
    p = points(cancel)
    assert set(p) == {"due", "missed"}                              # no actual point
    assert p["missed"] == (35.0, "x", "#d7191c") and p["due"][0] == 30.0
    assert "missed" in cancel.name and cancel.line.dash == "dot"

    assert close.meta["outcome"] == "late"
    p = points(close)
    assert (p["due"][0], p["target"][0]) == (60.0, 65.0) and p["actual"] == (70.0, "circle", "#e6a700")
    assert "late" in close.name and close.line.dash == "solid"

    rows = list(fig.layout.yaxis.categoryarray)[::-1]
    assert rows == ["A", "A · e2 alert", "A · e4 cancel_alert", "A · e5 close"]
    assert {t.y[0] for t in traces.values()} == set(rows[1:])
    inject = next(t for t in fig.data if t.name.startswith("inject"))
    assert list(inject.x) == [0.0, 70.0] and list(inject.y) == ["A", "A"]     # the update came at the end


def test_a_pending_action_shows_its_time_and_target_only(book, wall):
    ex = book.start(scenario_text(BASIC), speed=60, players=["cmd1"], trainer="tr1")
    fig = evaluation.timeline_figure(ex.report())
    for t in action_traces(fig).values():
        assert t.meta["outcome"] == "pending" and set(points(t)) == {"due", "target"}
        assert t.meta["target_min"] - t.meta["due_min"] == 5.0


def test_the_trainers_view_and_the_html_document_carry_the_same_traces(book, wall):
    from command.dashboard.trainer import report_view
    rep = played(book, wall).report()
    view = report_view(rep)
    graph = _find(view, "trainer-report-timeline")
    assert [t["meta"]["outcome"] for t in graph.figure.to_plotly_json()["data"]
            if t.get("meta")] == ["in_time", "missed", "late"]
    page = evaluation.to_html(rep)
    assert page.count('"outcome":"missed"') + page.count('"outcome": "missed"') == 1
    assert page.count('"outcome":"late"') + page.count('"outcome": "late"') == 1


def _find(node, ident):
    if getattr(node, "id", None) == ident:
        return node
    children = getattr(node, "children", None)
    for c in children if isinstance(children, (list, tuple)) else [children]:
        if c is not None and hasattr(c, "to_plotly_json"):
            hit = _find(c, ident)
            if hit is not None:
                return hit
    return None
