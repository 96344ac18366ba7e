"""An inject that raises (an address that cannot be located, a store error, a bug) never stops an exercise:
it is recorded as a failed inject in the trainer's notes and the report, the later injects still arrive,
and the exercise still ends, by itself, by the trainer, or with the real conductor thread."""
from __future__ import annotations

import time

import pytest

from command.drills import evaluation, registry, replay
from command.errors import StoreError
from exercise_helpers import scenario_text
from settings import load_settings

EVENTS = [
    {"at": 0, "kind": "report", "incident": "X", "address": "火星市不存在区乌有路", "type": "fire"},
    {"at": "1m", "kind": "report", "incident": "B", "address": "广州市天河区天河路", "type": "fire"},
    {"at": "2m", "kind": "update", "incident": "B", "casualties": {"deaths": 1}},          # a store error
    {"at": "3m", "kind": "update", "incident": "B", "casualties": {"serious_injuries": 2}},  # a bug
    {"at": "4m", "kind": "note", "incident": "B", "text": "现场已封控"},
    {"at": "5m", "kind": "close", "incident": "B"},
]


@pytest.fixture
def faulty(monkeypatch):
    """The replay's step raises for the two updates: a StoreError, then a RuntimeError (an internal bug)."""
    real = replay._apply
    seen = []

    def apply(ev, svc, ids):
        if ev.kind == "update":
            seen.append(ev.index)
            if len(seen) == 1:
                raise StoreError("database is locked")
            raise RuntimeError("boom")
        return real(ev, svc, ids)
    monkeypatch.setattr(replay, "_apply", apply)
    return seen


def test_failed_injects_are_noted_the_later_ones_arrive_and_the_exercise_ends_by_itself(book, wall, faulty):
    ex = book.start(scenario_text(EVENTS), speed=60, players=["cmd1"], trainer="tr1")
    assert ex.state()["injects"] == {"total": 5, "delivered": 1, "failed": 1}
    wall.advance(5)
    assert ex.tick() == 4
    st = ex.state()
    assert st["injects"] == {"total": 5, "delivered": 5, "failed": 3}
    errors = {m["key"]: m["error"] for m in st["msel"]}
    assert errors["e2"] is None and errors["e5"] is None               # after the failures, still delivered
    assert "火星市不存在区乌有路" in errors["e1"] and "no Guangdong place name recognised" in errors["e1"]
    assert errors["e3"] == "database is locked" and errors["e4"] == "internal error (RuntimeError)"
    state = ex.service.get(ex.incident_ids["B"])
    assert [e.kind for e in state.events if e.kind == "NoteAdded"] == ["NoteAdded"]
    assert "X" not in ex.incident_ids

    notes = [n for n in ex.notes() if n.get("inject")]
    assert [(n["inject"], n["at_s"], n["by"]) for n in notes] == [
        ("e1", 0.0, "系统 system"), ("e3", 300.0, "系统 system"), ("e4", 300.0, "系统 system")]
    assert "database is locked" in notes[1]["text"] and "注入失败" in notes[1]["text"]

    wall.advance(6)                            # 11 min: past the close's target (5 + 5): nothing is left
    ex.tick()
    assert ex.finished and ex.report()["end_reason"] == "the scenario's last event and target have passed"
    rep = ex.report()
    assert [e["key"] for e in rep["inject_errors"]] == ["e1", "e3", "e4"]
    assert [n["text"].split(" failed")[0] for n in rep["notes"]] == ["inject e1", "inject e3", "inject e4"]
    md = evaluation.to_markdown(rep)
    assert "e3: inject failed: database is locked" in md and "inject e4 failed 注入失败: internal error" in md
    assert "inject e3 failed" in evaluation.to_html(rep)


def test_the_trainer_ends_an_exercise_whose_injects_fail_and_reads_them_on_the_page(book, wall, faulty):
    from command.dashboard.trainer import report_view
    ex = book.start(scenario_text(EVENTS), speed=60, players=["cmd1"], trainer="tr1")
    wall.advance(2.5)
    ex.tick()
    wall.advance(0.1)
    ex.note("更新失败, 人工补报", by="tr1")
    ex.end(by="tr1")
    assert ex.finished
    rep = ex.report()
    assert rep["end_reason"] == "ended by the trainer"
    assert [(n["by"], n["text"].split(" failed")[0]) for n in rep["notes"]] == [
        ("系统 system", "inject e1"), ("系统 system", "inject e3"), ("tr1", "更新失败, 人工补报")]
    view = str(report_view(rep).to_plotly_json())
    assert "e3: inject failed: database is locked" in view


def test_an_exercise_ending_while_every_remaining_inject_fails_still_ends(book, wall, monkeypatch):
    ex = book.start(scenario_text(EVENTS[1:]), speed=60, players=["cmd1"], trainer="tr1")
    monkeypatch.setattr(replay, "_apply", lambda ev, svc, ids: (_ for _ in ()).throw(RuntimeError("all down")))
    wall.advance(30)
    ex.end(by="tr1")                           # the last tick delivers all four, each failing
    assert ex.finished and ex.state()["injects"] == {"total": 4, "delivered": 4, "failed": 4}
    assert [n["inject"] for n in ex.notes()] == ["e1", "e2", "e3", "e4"]


def test_with_the_real_conductor_a_failing_inject_is_noted_and_the_exercise_ends(monkeypatch, faulty):
    book = registry.Exercises(load_settings())
    try:
        ex = book.start(scenario_text(EVENTS[:3] + [{"at": "2m30s", "kind": "note", "incident": "B",
                                                     "text": "仍在处置"},
                                                    {"at": "3m", "kind": "close", "incident": "B"}]),
                        speed=60, players=[], trainer="tr1")
        ex.jump(150, by="tr1")                  # at 2m30s: the update (store error) and the note are due
        book.wake()
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and ex.state()["injects"]["delivered"] < 4:
            time.sleep(0.05)
        st = ex.state()
        assert st["injects"] == {"total": 4, "delivered": 4, "failed": 2}
        assert {m["key"]: bool(m["error"]) for m in st["msel"]} == {"e1": True, "e2": False, "e3": True,
                                                                   "e4": False}
        ex.jump(10 * 60, by="tr1")              # past the close's target: the conductor ends it
        book.wake()
        while time.monotonic() < deadline and not ex.finished:
            time.sleep(0.05)
            ex.refresh()
        assert ex.finished and [n["inject"] for n in ex.notes() if n.get("inject")] == ["e1", "e3"]
    finally:
        book.close()
