"""Tasks in a scenario (docs/exercises.md): set for a role or unit and completed; replayed by `yzt drill
run`, expected of the players in a live exercise and scored like the warning and the close."""
from __future__ import annotations

from pathlib import Path

import pytest

from command import drills
from command.drills import evaluation
from command.drills.evaluation import role_matches
from command.drills.exercise import scenario_from_text
from command.errors import ScenarioError
from command.security.auth import Principal
from exercise_helpers import PLAYER, REPORT_A, row, scenario_text
from settings import load_settings

EXAMPLE = Path(__file__).resolve().parents[2] / "data" / "scenarios" / "tianhe-mall-gas-explosion-tasks.yaml"
RESCUE = {"at": "3m", "kind": "task", "incident": "A", "task": "rescue", "role": "消防救援", "text": "搜救被困人员"}
RESCUED = {"at": "20m", "kind": "task_done", "incident": "A", "task": "rescue"}
CORDON = {"at": "5m", "kind": "task", "incident": "A", "role": "交警", "text": "封闭天河路"}
TASKS = [REPORT_A, RESCUE, CORDON, RESCUED, {"at": "1h", "kind": "close", "incident": "A"}]


# ---------------------------------------------------------------- the file
def test_a_scenario_with_tasks_loads_and_keeps_their_fields():
    sc = scenario_from_text(scenario_text(TASKS))
    kinds = [(e.kind, e.fields) for e in sc.events if e.kind.startswith("task")]
    assert kinds == [("task", {"task": "rescue", "role": "消防救援", "text": "搜救被困人员"}),
                     ("task", {"role": "交警", "text": "封闭天河路"}), ("task_done", {"task": "rescue"})]


@pytest.mark.parametrize("events, fragment", [
    ([REPORT_A, {**RESCUE, "role": None}], "event 2 (line"),
    ([REPORT_A, {k: v for k, v in RESCUE.items() if k != "role"}], "role: a task needs role"),
    ([REPORT_A, {k: v for k, v in RESCUE.items() if k != "text"}], "text: a task needs text"),
    ([REPORT_A, {**RESCUE, "text": "   "}], "text: a task needs text"),
    ([REPORT_A, {"at": 0, "kind": "task_done", "incident": "A"}], "task: a task_done needs task"),
    ([REPORT_A, RESCUED], "task_done before a task 'rescue'"),
    ([REPORT_A, RESCUE, {**RESCUE, "at": "4m"}], "already has a task 'rescue'"),
    ([REPORT_A, RESCUE, RESCUED, {**RESCUED, "at": "30m"}], "task 'rescue' of incident 'A' is already done"),
    ([REPORT_A, RESCUE, {**RESCUED, "role": "消防"}], "role: not a field of a task_done event"),
    ([REPORT_A, {**RESCUE, "radius_m": 5}], "radius_m: not a field of a task event"),
    ([REPORT_A, {"at": "2m", "kind": "close", "incident": "A"}, RESCUE], "task after incident 'A' is closed"),
    ([REPORT_A, {**RESCUE, "incident": "Z"}], "task before the report of incident 'Z'"),
])
def test_bad_tasks_are_refused_naming_event_and_field(events, fragment):
    with pytest.raises(ScenarioError) as err:
        scenario_from_text(scenario_text(events))
    assert fragment in str(err.value) and "\n" not in str(err.value)


def test_a_task_done_names_a_task_of_its_own_incident():
    other = {**REPORT_A, "incident": "B", "address": "广州市越秀区北京路"}
    with pytest.raises(ScenarioError, match="task_done before a task 'rescue' of incident 'B'"):
        scenario_from_text(scenario_text([REPORT_A, other, RESCUE, {**RESCUED, "incident": "B"}]))


# ---------------------------------------------------------------- yzt drill run: the file scripts them
def test_the_replay_sets_and_completes_the_tasks_at_their_times():
    report = drills.run_drill(drills.load_scenario(EXAMPLE), settings=load_settings())
    tasks = report["incidents"]["A"]["tasks"]
    assert [(t["role"], t["set_at_s"], t["done_at_s"]) for t in tasks] == [
        ("消防救援", 180, 5400), ("公安交警", 300, None), ("燃气公司", 720, 2400)]
    assert report["errors"] == [] and drills.report_exit_code(report) == 0


# ---------------------------------------------------------------- a live exercise: expected of the players
def set_task(ex, role, text="任务", who=PLAYER):
    return ex.service.add_task(ex.incident_ids["A"], role, text, actor=who)


def done_task(ex, task_id, who=PLAYER):
    ex.service.complete_task(ex.incident_ids["A"], task_id, actor=who)


def test_no_player_acting_misses_every_task(book):
    ex = book.start(scenario_text(TASKS), speed=60, players=["cmd1"], trainer="tr1")
    st = ex.state()
    assert [(r["event"], r["kind"], r["role"], r["status"]) for r in st["expected"]] == [
        (2, "task", "消防救援", "pending"), (3, "task", "交警", "pending"), (4, "task_done", "消防救援", "pending"),
        (5, "close", None, "pending")]
    # the system performs none of them: the incident has no task
    assert ex.service.get(ex.incident_ids["A"]).tasks == ()
    ex.end()
    assert [r["status"] for r in ex.report()["expected"]] == ["missed"] * 4
    cap = next(c for c in ex.report()["capabilities"] if c["capability"] == "coordination")
    assert (cap["expected"], cap["rating"]) == (4, "U")


def test_players_tasks_are_matched_by_role_in_time_late_and_unexpected(book, wall):
    ex = book.start(scenario_text(TASKS), speed=60, players=["cmd1", "cmd2"], trainer="tr1")
    wall.advance(2)                                     # 09:02
    police = set_task(ex, "市公安局", "封路")           # a role the scenario never expected here
    fire = set_task(ex, "天河区消防救援大队", "搜救")    # contains 消防救援: the expected rescue task
    wall.advance(10)                                    # 09:12: the 交警 task (due 09:05, deadline 09:10) is late
    traffic = set_task(ex, " 交警 ", who=Principal("cmd2", "commander"))
    wall.advance(20)                                    # 09:32: the rescue is done, deadline 09:25: late by 7 min
    done_task(ex, fire)
    done_task(ex, police)                               # completing the unexpected task is unexpected too
    st = ex.state()
    r2, r3, r4 = row(st, 2), row(st, 3), row(st, 4)
    assert (r2["status"], r2["by"], r2["done_at"], r2["in_time"]) == ("done", "cmd1", "2026-03-14T09:02:00+08:00", True)
    assert (r3["status"], r3["by"], r3["in_time"], r3["late_by_s"]) == ("done", "cmd2", False, 120)
    assert (r4["status"], r4["done_at"], r4["in_time"], r4["late_by_s"]) == (
        "done", "2026-03-14T09:32:00+08:00", False, 420)
    rep = ex.report()
    assert [(u["kind"], u["detail"]) for u in rep["unexpected"]] == [
        ("task", f"{police} 市公安局: 封路"), ("task_done", f"{police} 市公安局 done")]
    assert traffic not in {u["detail"].split()[0] for u in rep["unexpected"]}
    text = evaluation.to_markdown(rep)
    assert "下达任务 set the task: 消防救援 — 搜救被困人员" in text and "完成任务 complete the task: 消防救援" in text
    assert "下达任务" in evaluation.to_html(rep)


def test_a_task_done_counts_only_for_the_task_it_completes(book, wall):
    both = [REPORT_A, RESCUE, {**RESCUE, "at": "4m", "task": "rescue2", "text": "二次搜救"},
            {**RESCUED, "task": "rescue2", "at": "10m"}, {"at": "1h", "kind": "close", "incident": "A"}]
    ex = book.start(scenario_text(both), speed=60, players=["cmd1"], trainer="tr1")
    first = set_task(ex, "消防救援")
    second = set_task(ex, "消防救援")
    done_task(ex, first)                                # the first task, not the one the scenario completes
    assert row(ex.state(), 4)["status"] == "pending"
    done_task(ex, second)
    r = row(ex.report(), 4)
    assert r["status"] == "done" and r["detail"].startswith(second)


@pytest.mark.parametrize("expected, actual, same", [
    ("消防", "消防救援支队", True), ("市交警支队", "交警", True), ("Fire Brigade", "fire brigade", True),
    ("消防", "公安", False), ("消防", "", False), (None, "任何", True), ("燃气 公司", "燃气公司", True),
])
def test_role_matches(expected, actual, same):
    assert role_matches(expected, actual) is same
