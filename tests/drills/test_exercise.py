"""Live exercises: injects at their exercise time, expected player actions scored, the controller's
pause/resume/jump/fire-now/add-inject/late join, and the after-action report (escaped, P/S/M/U)."""
from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from command.drills import evaluation, registry
from command.errors import ScenarioError, SessionError
from command.security.auth import Principal
from exercise_helpers import BASIC, PLAYER, REPORT_A, row, scenario_text, send_alert
from settings import load_settings


def test_with_no_player_acting_every_expected_action_is_missed(book):
    ex = book.start(scenario_text(BASIC), speed=60, players=["cmd1"], trainer="tr1")
    st = ex.state()
    assert st["state"] == "running" and st["injects"] == {"total": 2, "delivered": 1, "failed": 0}
    assert [r["status"] for r in st["expected"]] == ["pending"] * 3
    ex.end()
    rep = ex.report()
    assert rep["state"] == "finished"
    assert [(r["event"], r["kind"], r["status"]) for r in rep["expected"]] == [
        (2, "alert", "missed"), (4, "cancel_alert", "missed"), (5, "close", "missed")]
    assert rep["unexpected"] == [] and rep["deliveries"] == {"live": 0, "exercise": 0}
    assert {c["capability"]: c["rating"] for c in rep["capabilities"]} == {"warning": "U", "coordination": "U"}


def test_injects_arrive_at_their_time_and_a_player_warning_in_time_is_done(book, wall):
    ex = book.start(scenario_text(BASIC), speed=60, players=["cmd1"], trainer="tr1")
    wall.advance(3)                         # 3 exercise minutes at 60x
    ex.tick()
    send_alert(ex)
    assert row(ex.state(), 2)["status"] == "done"
    assert ex.state()["injects"]["delivered"] == 1
    wall.advance(8)                         # 11 min: the update (10 min) is delivered
    assert ex.tick() == 1
    state = ex.service.get(ex.incident_ids["A"])
    assert state.grade.level == "III"
    upd = next(e for e in state.events if e.kind == "Updated")
    assert upd.at == "2026-03-14T09:11:00+08:00" and upd.actor == "演练导调"
    r = row(ex.state(), 2)
    assert (r["done_at"], r["by"], r["in_time"], r["due"]) == (
        "2026-03-14T09:03:00+08:00", "cmd1", True, "2026-03-14T09:04:00+08:00")
    # the warning is an Exercise on the exercise channel, and the scenario's alert was not performed
    alerts = [a for a in state.alerts if a.was_sent]
    assert [(a.status, a.msg_type) for a in alerts] == [("Exercise", "Alert")]
    assert all(d["mode"] == "exercise" for d in ex.service.outbox.deliveries())


def test_a_late_action_is_done_but_not_in_time(book, wall):
    ex = book.start(scenario_text(BASIC), speed=60, players=["cmd1"], trainer="tr1")
    wall.advance(11)                        # 11 min: past 4 min + 5 min tolerance
    ex.tick()
    assert row(ex.state(), 2)["status"] == "missed"
    send_alert(ex)
    r = row(ex.state(), 2)
    assert r["status"] == "done" and r["in_time"] is False and r["late_by_s"] == 120
    ex.end()
    cap = next(c for c in ex.report()["capabilities"] if c["capability"] == "warning")
    assert cap["computed"] == "M"           # one done late, the cancel missed


def test_paused_time_is_excluded_from_injects_and_targets(book, wall):
    ex = book.start(scenario_text(BASIC), speed=60, players=["cmd1"], trainer="tr1")
    wall.advance(9.5)                       # 9m30s
    ex.pause()
    wall.advance(3600)                      # an hour of wall time paused: 60 exercise hours if it counted
    assert ex.tick() == 0 and ex.state()["state"] == "paused"
    assert ex.state()["clock"] == "2026-03-14T09:09:30+08:00"
    ex.resume()
    wall.advance(0.75)                      # 10m15s: the 10 min update arrives right after, not refused
    assert ex.tick() == 1
    upd = next(e for e in ex.service.get(ex.incident_ids["A"]).events if e.kind == "Updated")
    assert upd.at == "2026-03-14T09:10:15+08:00"
    assert ex.state()["injects"]["failed"] == 0
    # the 4-minute warning: its deadline (9 min) passed before the pause; the close (1 h) is still ahead
    assert row(ex.state(), 2)["status"] == "missed" and row(ex.state(), 5)["status"] == "pending"
    assert ex.report()["pauses"][0]["wall_s"] == 3600.0


def test_an_action_within_tolerance_after_a_long_pause_is_in_time(book, wall):
    ex = book.start(scenario_text(BASIC), speed=60, players=["cmd1"], trainer="tr1")
    wall.advance(5)
    ex.pause()
    wall.advance(7200)
    ex.resume()
    wall.advance(1)                         # 6 exercise minutes: within 4 min + 5 min
    send_alert(ex)
    r = row(ex.state(), 2)
    assert r["status"] == "done" and r["in_time"] is True and r["done_at"] == "2026-03-14T09:06:00+08:00"


def test_fire_now_add_inject_and_refusals(book, wall):
    ex = book.start(scenario_text(BASIC), speed=60, players=["cmd1"], trainer="tr1")
    ex.fire_now("e3")                       # the 10-minute update, now (exercise time 0)
    st = ex.state()
    assert st["injects"]["delivered"] == 2 and next(m for m in st["msel"] if m["key"] == "e3")["fired"]
    assert ex.service.get(ex.incident_ids["A"]).grade.level == "III"
    with pytest.raises(SessionError, match="already delivered"):
        ex.fire_now("e3")
    with pytest.raises(ScenarioError, match="no inject"):
        ex.fire_now("e9")
    key = ex.add_inject({"kind": "note", "incident": "A", "text": "现场发现第二处泄漏"})
    assert key == "x1" and ex.state()["injects"] == {"total": 3, "delivered": 3, "failed": 0}
    notes = [e for e in ex.service.get(ex.incident_ids["A"]).events if e.kind == "NoteAdded"]
    assert notes[-1].text == "现场发现第二处泄漏"
    later = ex.add_inject({"kind": "update", "incident": "A", "at": "20m", "casualties": {"deaths": 12}})
    assert ex.tick() == 0 and later in [m["key"] for m in ex.state()["msel"] if m["delivered_at"] is None]
    wall.advance(20)
    assert ex.tick() == 1 and ex.service.get(ex.incident_ids["A"]).grade.level == "II"
    with pytest.raises(ScenarioError, match="casualties.deaths"):
        ex.add_inject({"kind": "update", "incident": "A", "casualties": {"deaths": -1}})
    with pytest.raises(ScenarioError, match="before the report"):
        ex.add_inject({"kind": "update", "incident": "Z", "casualties": {"deaths": 1}})
    with pytest.raises(ScenarioError, match="added inject is one of"):
        ex.add_inject({"kind": "alert", "incident": "A"})


def test_jump_ahead_delivers_what_is_due_and_measures_from_the_landing(book, wall):
    ex = book.start(scenario_text(BASIC), speed=60, players=["cmd1"], trainer="tr1")
    ex.jump(15 * 60)                        # 15 min: the update is due, the 4-min warning skipped over
    st = ex.state()
    assert st["clock"] == "2026-03-14T09:15:00+08:00" and st["injects"]["delivered"] == 2
    r = row(st, 2)
    assert r["status"] == "pending" and r["deadline"] == "2026-03-14T09:20:00+08:00"
    send_alert(ex)
    assert row(ex.state(), 2)["in_time"] is True
    with pytest.raises(ScenarioError, match="only jumps ahead"):
        ex.jump(-60)


def test_a_failed_inject_is_recorded_and_the_exercise_still_ends(book, wall):
    events = [{"at": 0, "kind": "report", "incident": "B", "address": "火星市不存在区乌有路", "type": "fire"},
              {"at": "2m", "kind": "update", "incident": "B", "casualties": {"deaths": 1}},
              {"at": "5m", "kind": "close", "incident": "B"}]
    ex = book.start(scenario_text(events), speed=60, players=["cmd1"], trainer="tr1")
    wall.advance(3)
    ex.tick()
    st = ex.state()
    assert st["injects"] == {"total": 2, "delivered": 2, "failed": 2}
    assert all(m["error"] for m in st["msel"])
    wall.advance(10)                        # past the close's deadline: nothing is left, the exercise ends
    ex.tick()
    assert ex.finished
    rep = ex.report()
    assert [r["status"] for r in rep["expected"]] == ["missed"]
    assert len(rep["inject_errors"]) == 2 and "inject failed" in evaluation.to_markdown(rep)


def test_a_player_joining_late_sees_the_exercise_and_counts(book, wall):
    ex = book.start(scenario_text(BASIC), speed=60, players=["cmd1"], trainer="tr1")
    assert book.playing("late1") is None
    wall.advance(2)
    ex.join("late1")
    assert book.playing("late1") is ex and book.of_user("tr1") is ex
    send_alert(ex, who=Principal("late1", "commander"))
    assert row(ex.state(), 2)["by"] == "late1"
    assert ex.report()["joined"]["late1"] == "2026-03-14T09:02:00+08:00"


def test_two_exercises_at_once_never_see_each_other_nor_the_live_store(book, wall):
    from command import compose
    a = book.start(scenario_text(BASIC, name="甲"), speed=60, players=["cmd1"], trainer="tr1")
    b = book.start(scenario_text(BASIC, name="乙"), speed=30, players=["cmd2"], trainer="tr2")
    assert a.service.store is not b.service.store
    assert len(a.service.list_incidents()) == 1 and len(b.service.list_incidents()) == 1
    send_alert(a)
    assert b.service.outbox.deliveries() == [] and len(a.service.outbox.deliveries()) == 1
    live = compose.open_app(load_settings())
    try:
        assert live.service().list_incidents() == []
    finally:
        live.close()
    with pytest.raises(ScenarioError, match="already plays"):
        book.start(scenario_text(BASIC), speed=60, players=["cmd1"], trainer="tr3")
    assert book.of_user("cmd2") is b and book.of_user("cmd1") is a


def test_trainer_notes_stay_off_the_players_timeline(book):
    ex = book.start(scenario_text(BASIC), speed=60, players=["cmd1"], trainer="tr1")
    ex.note("玩家犹豫了两分钟", by="tr1")
    texts = [e.payload.get("text") for e in ex.service.store.events()]
    assert "玩家犹豫了两分钟" not in texts
    assert [n["text"] for n in ex.report()["notes"]] == ["玩家犹豫了两分钟"]
    with pytest.raises(ScenarioError):
        ex.note("   ", by="tr1")


def test_evaluator_adjusts_a_rating_with_a_comment(book):
    ex = book.start(scenario_text(BASIC), speed=60, players=["cmd1"], trainer="tr1")
    ex.end()
    with pytest.raises(ScenarioError, match="comment"):
        ex.rate("warning", "M", "", by="tr1")
    with pytest.raises(ScenarioError, match="rating"):
        ex.rate("warning", "X", "why", by="tr1")
    ex.rate("warning", "M", "通信中断是导调造成的", by="eval1")
    cap = next(c for c in ex.report()["capabilities"] if c["capability"] == "warning")
    assert (cap["computed"], cap["rating"], cap["adjusted"], cap["by"]) == ("U", "M", True, "eval1")
    assert "通信中断是导调造成的" in evaluation.to_markdown(ex.report())


def test_unexpected_player_actions_are_listed(book, wall):
    ex = book.start(scenario_text(BASIC), speed=60, players=["cmd1"], trainer="tr1")
    iid = ex.incident_ids["A"]
    ex.service.note(iid, "已通知交警", actor=PLAYER)
    ex.service.add_task(iid, "消防", "搜救被困人员", actor=PLAYER)
    send_alert(ex)
    send_alert(ex)                          # a second warning the scenario did not ask for (an Update)
    ex.service.draft_alert(iid, actor=PLAYER, instruction_zh="草稿")
    kinds = [u["kind"] for u in ex.report()["unexpected"]]
    assert kinds == ["note", "task", "alert", "draft"]


def test_hostile_names_and_notes_come_out_inert(book):
    name = "<script>alert('x')</script>[link](javascript:alert(1))"
    ex = book.start(scenario_text(BASIC, name=name), speed=60, players=["cmd1"], trainer="tr1")
    ex.service.note(ex.incident_ids["A"], "<img src=x onerror=alert(2)>", actor=PLAYER)
    ex.note("**bold** <iframe src=//evil>", by="tr1")
    ex.end()
    rep = ex.report()
    page = evaluation.to_html(rep)
    for raw in ("<script>alert('x')", "<img src=x", "<iframe"):
        assert raw not in page
    assert "&lt;script&gt;" in page and "&lt;img src=x onerror=alert(2)&gt;" in page
    text = evaluation.to_markdown(rep)
    assert "<script>" not in text and "<img" not in text and "<iframe" not in text
    assert "\\[link\\](javascript:alert(1))" in text and "\\*\\*bold\\*\\*" in text


def test_report_is_written_as_html_and_markdown(book, tmp_path):
    ex = book.start(scenario_text(BASIC), speed=60, players=["cmd1"], trainer="tr1")
    ex.end()
    rep = ex.report()
    html_text = evaluation.write(rep, tmp_path / "aar.html").read_text(encoding="utf-8")
    md_text = evaluation.write(rep, tmp_path / "aar.md").read_text(encoding="utf-8")
    for section in ("现场点评", "评估报告", "演练总结"):
        assert section in html_text and section in md_text
    assert 'id="exercise-timeline"' in html_text
    json.dumps(rep)                          # plain JSON values only


def test_an_exercise_ends_by_itself_and_another_process_reads_it_from_its_log(wall):
    s = load_settings()
    first = registry.Exercises(s, wall=wall, conduct=False)
    ex = first.start(scenario_text(BASIC), speed=60, players=["cmd1"], trainer="tr1")
    wall.advance(2)
    ex.note("第一段", by="tr1")
    other = registry.Exercises(s, wall=wall, conduct=False)      # a second worker over the same var_dir
    try:
        twin = other.get(ex.id)
        assert twin is not ex and twin.phase == "running" and twin.state()["clock"] == "2026-03-14T09:02:00+08:00"
        assert [n["text"] for n in twin.notes()] == ["第一段"] and twin.incident_ids == ex.incident_ids
        twin.pause(by="tr1")                                     # a pause in one worker is a pause in all
        wall.advance(600)
        assert ex.state()["state"] == "paused" and ex.state()["clock"] == "2026-03-14T09:02:00+08:00"
        ex.resume()
        wall.advance(9)                                          # 11 min: the update is due
        assert twin.tick() == 1 and ex.tick() == 0               # delivered once, whichever worker ticks
        assert ex.state()["injects"]["delivered"] == 2
        first.close()
        wall.advance(49)                                         # 1h00m: the close is due, its deadline not
        twin.tick()
        assert not twin.finished
        wall.advance(5.5)                                        # past 1h05m: nothing is left, it ends
        twin.tick()
        assert twin.finished and twin.state()["state"] == "finished"
        with pytest.raises(SessionError, match="has ended"):
            twin.pause()
    finally:
        other.close()


def test_the_conductor_delivers_in_real_time(tmp_path):
    events = [REPORT_A, {"at": 60, "kind": "update", "incident": "A", "casualties": {"deaths": 4}},
              {"at": 90, "kind": "close", "incident": "A"}]
    b = registry.Exercises(load_settings(), conduct=True)
    try:
        ex = b.start(scenario_text(events), speed=60, players=["cmd1"], trainer="tr1", tolerance_s=0)
        deadline = time.monotonic() + 20
        while ex.state()["injects"]["delivered"] < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert ex.state()["injects"]["delivered"] == 2
        while not ex.finished and time.monotonic() < deadline:
            time.sleep(0.05)
        assert ex.finished and row(ex.state(), 3)["status"] == "missed"
    finally:
        b.close()


def test_start_refuses_bad_input_before_anything_runs(book):
    with pytest.raises(ScenarioError, match=r"scenario: event 2 \(line \d+\): casualties.deaths"):
        book.start(scenario_text([REPORT_A, {"at": 5, "kind": "update", "incident": "A",
                                             "casualties": {"deaths": -2}}]), speed=60, players=[], trainer="t")
    with pytest.raises(ScenarioError, match="speed"):
        book.start(scenario_text(BASIC), speed=61, players=[], trainer="t")
    with pytest.raises(ScenarioError, match="players"):
        book.start(scenario_text(BASIC), speed=60, players="cmd1", trainer="t")
    assert book.all() == [] and not (Path(book.root)).exists()
