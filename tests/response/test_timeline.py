"""The timeline: events round-trip through the store's (kind, payload), and the fold is pure."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from hypothesis import given, settings as hsettings, strategies as st

from command.errors import SessionError
from helpers_store import new_store
from command.response.timeline import (BEIJING, EVENT_TYPES, AlertApproved, AlertCancelled, AlertDrafted, AlertFailed, AlertRefused,
                              AlertSent, Closed, ConferenceOpened, MemberJoined, NoteAdded, Regraded, Reported,
                              SystemClock, TaskDone, TaskSet, Updated, VirtualClock, Fold, fold, from_record, iso,
                              to_record)

T0 = datetime(2026, 3, 14, 9, 0, tzinfo=BEIJING)
RULE = {"law": "生产安全事故报告和调查处理条例", "article": "第三条", "criterion": "重伤 3 人"}
GRADE_IV = {"level": "IV", "name": "一般", "colour": "蓝", "cap_severity": "Minor", "category": "accident",
            "rule": RULE}
GRADE_III = dict(GRADE_IV, level="III", name="较大", colour="黄", cap_severity="Moderate",
                 rule=dict(RULE, criterion="死亡 4 人 (3..9)"))
LOCATION = {"lon": 113.3186, "lat": 23.1391, "crs": "wgs84", "precision": "road", "matched": "广州市天河区天河路",
            "district_adcode": "440106", "city_adcode": "440100", "district_name": "天河区",
            "city_name": "广州市", "confidence": 0.9, "source": "offline", "candidates": [], "notes": []}


def at(s: int) -> str:
    return iso(T0 + timedelta(seconds=s))


def alert(ident: str, s: int, msg_type: str = "Alert", refs: list[str] | None = None) -> AlertDrafted:
    return AlertDrafted(at=at(s), actor="值班员", identifier=ident, status="Exercise", msg_type=msg_type,
                        references=refs or [], sender="yzt-440106", sent=at(s), cap_xml="<alert/>",
                        area={"circle": "23.1391,113.3186 0.8"}, population=1000,
                        admin_units=[{"adcode": "440106", "name": "天河区", "population": 1000}],
                        channels=["outbox-exercise"], radius_m=800.0)


def sample_events() -> list:
    return [
        Reported(at=at(0), actor="值班员", type="gas_explosion", location=LOCATION,
                 casualties={"deaths": 0, "serious_injuries": 3, "missing": 0}, economic_loss_cny=0.0,
                 description="燃气爆炸", grade=GRADE_IV, address="广州市天河区天河路",
                 nearby={"hospital": [{"id": "h1", "name": "医院", "distance_m": 10.0}]}),
        MemberJoined(at=at(0), actor="值班员", role="值班室", org="天河区应急管理局", level_of_government="district",
                     reason="一般(IV)：天河区 牵头"),
        ConferenceOpened(at=at(0), actor="值班员", link="https://meeting.example.invalid/yzt/a", dial=None, room="a"),
        TaskSet(at=at(30), actor="值班员", task_id="T1", role="消防", text="搜救"),
        alert("A1", 240),
        AlertApproved(at=at(240), actor="值班员", identifier="A1", confirmed=True),
        AlertSent(at=at(241), actor="outbox", identifier="A1", channel="outbox-exercise", mode="exercise",
                  receipt="file"),
        Updated(at=at(600), actor="值班员", changes={"casualties": {"deaths": 4, "serious_injuries": 15,
                                                                    "missing": 0}}),
        Regraded(at=at(600), actor="值班员", from_level="IV", to_level="III", grade=GRADE_III,
                 reason="升级为较大(III)：广州市 牵头"),
        MemberJoined(at=at(600), actor="值班员", role="值班室", org="广州市应急管理局", level_of_government="city",
                     reason="升级为较大(III)：广州市 牵头"),
        alert("A2", 660, "Update", ["yzt-440106,A1," + at(240)]),
        AlertApproved(at=at(660), actor="值班员", identifier="A2", confirmed=True),
        AlertRefused(at=at(660), actor="值班员", identifier="A2", action="send", reason="already sent"),
        AlertFailed(at=at(661), actor="outbox", identifier="A2", channel="outbox-exercise", mode="exercise",
                    error="disk full", status="dead"),
        TaskDone(at=at(900), actor="消防", task_id="T1"),
        NoteAdded(at=at(1000), actor="值班员", text="现场已控制"),
        alert("C1", 7200, "Cancel", ["yzt-440106,A2," + at(660)]),
        AlertApproved(at=at(7200), actor="值班员", identifier="C1", confirmed=True),
        AlertCancelled(at=at(7200), actor="值班员", identifier="C1", cancels=["A2"]),
        Closed(at=at(10800), actor="值班员", reason="处置完毕"),
    ]


def test_every_kind_round_trips_through_the_store_record():
    events = sample_events()
    assert {type(e) for e in events} == set(EVENT_TYPES.values())
    for ev in events:
        kind, payload = to_record(ev)
        assert "at" not in payload and "actor" not in payload
        assert from_record(kind, payload, at=ev.at, actor=ev.actor) == ev


def test_unknown_kind_is_refused():
    with pytest.raises(SessionError, match="unknown"):
        from_record("Exploded", {}, at=at(0), actor="x")


def test_fold_reads_like_the_incident():
    s = fold("440106-1", sample_events())
    assert s.type == "gas_explosion" and s.state == "closed" and s.closed_at == at(10800)
    assert s.grade.level == "III" and [lv.level for lv in s.levels] == ["IV", "III"]
    assert s.levels[1].reason == "升级为较大(III)：广州市 牵头"
    assert [m.org for m in s.group.members] == ["天河区应急管理局", "广州市应急管理局"]
    assert s.group.created_at == at(0) and s.group.conference.room == "a"
    assert s.casualties.deaths == 4
    assert s.tasks[0].done_at == at(900)
    by_id = {a.identifier: a for a in s.alerts}
    assert by_id["A2"].cancelled_by == "C1" and by_id["C1"].cancels == ("A2",)
    assert by_id["A1"].deliveries[0]["ok"] and not by_id["A2"].deliveries[0]["ok"]
    assert s.active_alerts == ()            # A1 replaced by the Update A2, A2 cancelled


def test_active_alerts_before_the_cancel():
    s = fold("x", sample_events()[:12])
    assert [a.identifier for a in s.active_alerts] == ["A2"]
    assert s.active_alerts[0].reference == "yzt-440106,A2," + at(660)


def test_a_timeline_must_start_with_a_report():
    with pytest.raises(SessionError, match="does not start with a report"):
        fold("x", sample_events()[1:])


@hsettings(max_examples=40, deadline=None)
@given(st.integers(min_value=1, max_value=len(sample_events())))
def test_fold_is_pure_and_prefix_consistent(n):
    events = sample_events()[:n]
    assert fold("x", events) == fold("x", list(events))
    assert fold("x", events).events == tuple(events)


@hsettings(max_examples=60, deadline=None)
@given(st.lists(st.integers(min_value=1, max_value=len(sample_events())), max_size=6))
def test_folding_on_new_events_equals_folding_the_whole_timeline(cuts):
    """However the timeline arrives in pieces (the service folds each read's new rows onto what it holds), the
    state is the fold of all of it, and a fold extended is left as it was (two threads may extend one)."""
    events = sample_events()
    bounds = sorted(set(cuts) | {1, len(events)})
    held = Fold.of("x", events[:bounds[0]])
    for a, b in zip(bounds, bounds[1:]):
        before = held.state
        assert held.more(events[a:b]).state == held.more(events[a:b]).state    # the first left `held` as it was
        held = held.more(events[a:b])
        assert held.state == fold("x", events[:b]) and held.state.events == tuple(events[:b])
        assert before == fold("x", events[:a])
    assert held.more([]) is held and held.state == fold("x", events)


def test_replaying_stored_events_gives_the_same_state(tmp_path):
    store = new_store(tmp_path / "t.db")
    events = sample_events()
    for ev in events:
        kind, payload = to_record(ev)
        store.append_event("I1", kind, payload, at=ev.at, actor=ev.actor)
    replayed = [from_record(e.kind, e.payload, at=e.at, actor=e.actor) for e in store.events("I1")]
    store.close()
    assert fold("I1", replayed) == fold("I1", events)


def test_virtual_clock_is_deterministic_and_never_goes_back():
    c = VirtualClock(datetime(2026, 3, 14, 1, 0, tzinfo=timezone.utc))
    assert iso(c.now()) == "2026-03-14T09:00:00+08:00"
    c.set_offset(90)
    assert iso(c.now()) == "2026-03-14T09:01:30+08:00"
    c.advance(30)
    assert iso(c.now()) == "2026-03-14T09:02:00+08:00"
    with pytest.raises(SessionError, match="cannot go back"):
        c.set_offset(10)
    with pytest.raises(SessionError):
        VirtualClock(datetime(2026, 3, 14, 9, 0))


def test_system_clock_is_beijing_time_in_whole_seconds():
    now = SystemClock().now()
    assert now.utcoffset() == timedelta(hours=8) and now.microsecond == 0
    assert iso(now).endswith("+08:00")
