"""A pause holds the injects, not the players (docs/exercises.md): players act during a pause, their actions
are recorded and scored at the paused exercise time, in every worker; injects due in it come right after."""
from __future__ import annotations

import time

from command.drills import registry
from command.security.auth import Principal
from exercise_helpers import BASIC, PLAYER, REPORT_A, row, scenario_text, send_alert
from settings import load_settings

PAUSED_AT = "2026-03-14T09:02:00+08:00"


def events_of(ex, kind):
    return [e for e in ex.service.store.events() if e.kind == kind]


def test_players_act_during_a_pause_and_are_scored_at_the_paused_time(book, wall):
    tasks = [*BASIC, {"at": "3m", "kind": "task", "incident": "A", "role": "消防", "text": "搜救"}]
    ex = book.start(scenario_text(tasks), speed=60, players=["cmd1"], trainer="tr1")
    wall.advance(2)                                   # 09:02
    ex.pause()
    wall.advance(3600)                                # an hour paused: 60 exercise hours if it counted
    send_alert(ex)
    ex.service.add_task(ex.incident_ids["A"], "天河消防救援站", "搜救被困人员", actor=PLAYER)
    ex.service.outbox.run_until_idle(timeout_s=30)   # the exercise's outbox delivers during the pause
    st = ex.state()
    assert st["state"] == "paused" and st["clock"] == PAUSED_AT
    warned, tasked = row(st, 2), row(st, 6)
    assert (warned["status"], warned["done_at"], warned["in_time"], warned["by"]) == ("done", PAUSED_AT, True, "cmd1")
    assert (tasked["status"], tasked["done_at"], tasked["in_time"]) == ("done", PAUSED_AT, True)
    assert [e.at for e in events_of(ex, "AlertApproved")] == [PAUSED_AT]
    assert [d["status"] for d in ex.service.outbox.deliveries()] == ["sent"]
    assert row(st, 4)["status"] == "pending"         # the 30-min cancel: not missed, however long the pause
    ex.resume()
    wall.advance(1)
    assert ex.state()["clock"] == "2026-03-14T09:03:00+08:00"


def test_an_action_late_before_the_pause_is_late_by_exercise_time_only(book, wall):
    ex = book.start(scenario_text(BASIC), speed=60, players=["cmd1"], trainer="tr1")
    wall.advance(11)                                  # 09:11: the 4-min warning's deadline (09:09) has passed
    ex.pause()
    wall.advance(7200)
    send_alert(ex)
    r = row(ex.state(), 2)
    assert (r["status"], r["in_time"], r["late_by_s"], r["done_at"]) == (
        "done", False, 120, "2026-03-14T09:11:00+08:00")


def test_a_pause_in_one_worker_stamps_a_players_action_in_another_at_the_paused_time(wall):
    s = load_settings()
    a = registry.Exercises(s, wall=wall, conduct=False)
    b = registry.Exercises(s, wall=wall, conduct=False)     # a second web worker over the same var_dir
    try:
        ex = a.start(scenario_text(BASIC), speed=60, players=["cmd1"], trainer="tr1")
        played = b.of_user("cmd1")                             # the door every dashboard request goes through
        wall.advance(2)
        ex.pause(by="tr1")
        wall.advance(900)
        played = b.of_user("cmd1")                             # the next request, after the pause
        assert played is not ex and played.phase == "paused"
        send_alert(played)
        assert [e.at for e in events_of(played, "AlertApproved")] == [PAUSED_AT]
        assert row(ex.state(), 2)["done_at"] == PAUSED_AT and row(ex.state(), 2)["in_time"] is True
    finally:
        a.close()
        b.close()


def test_fire_now_during_a_pause_delivers_at_the_paused_time_and_stays_paused(book, wall):
    ex = book.start(scenario_text(BASIC), speed=60, players=["cmd1"], trainer="tr1")
    wall.advance(2)
    ex.pause()
    wall.advance(300)
    ex.fire_now("e3")
    upd = events_of(ex, "Updated")
    assert [e.at for e in upd] == [PAUSED_AT] and ex.state()["state"] == "paused"
    key = ex.add_inject({"kind": "note", "incident": "A", "text": "导调追加"})      # at: now, the paused time
    assert next(m for m in ex.state()["msel"] if m["key"] == key)["delivered_at"] == PAUSED_AT


def test_with_the_conductor_an_inject_due_in_a_pause_arrives_right_after_it():
    """Real wall time: 1.5 s paused at 60x would be 90 exercise seconds; the inject due at 30 s arrives at
    about its time, never 90 s later, and is delivered (not refused)."""
    events = [REPORT_A, {"at": 30, "kind": "update", "incident": "A", "casualties": {"deaths": 4}},
              {"at": "1h", "kind": "close", "incident": "A"}]
    book = registry.Exercises(load_settings(), conduct=True)
    try:
        ex = book.start(scenario_text(events), speed=60, players=["cmd1"], trainer="tr1")
        ex.pause()
        paused_at = ex.offset_s()
        time.sleep(1.5)
        assert ex.state()["injects"]["delivered"] == 1
        ex.resume()
        book.wake()
        deadline = time.monotonic() + 20
        while ex.state()["injects"]["delivered"] < 2 and time.monotonic() < deadline:
            time.sleep(0.02)
        m = next(m for m in ex.state()["msel"] if m["key"] == "e2")
        assert m["delivered_at"] is not None and m["error"] is None
        delivered = next(d for d in ex.deliveries().values() if d.key == "e2").at_s
        assert 30 <= delivered < paused_at + 30 + 45        # due 30 s; the paused 90 s are not added
        assert ex.pauses()[0][2] is not None
    finally:
        book.close()


def test_a_late_joiner_acts_during_a_pause(book, wall):
    ex = book.start(scenario_text(BASIC), speed=60, players=["cmd1"], trainer="tr1")
    wall.advance(2)
    ex.pause()
    ex.join("late1")
    send_alert(ex, who=Principal("late1", "commander"))
    r = row(ex.state(), 2)
    assert (r["by"], r["done_at"]) == ("late1", PAUSED_AT)
