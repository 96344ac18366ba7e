"""The response group: roles in real organisations from the duty rules, growing (never shrinking) on regrades."""
from __future__ import annotations

import pytest

from command.response import group
from command.response.timeline import ConferenceOpened, MemberJoined, Reported, Regraded, fold, location_to_dict
from incidents.grading import grade
from incidents.model import Casualties, Location, Point
from settings import get_settings

TIANHE = Location(point=Point(113.3186, 23.1391), precision="road", matched="广州市天河区天河路",
                  district_adcode="440106", city_adcode="440100", confidence=0.9,
                  district_name="天河区", city_name="广州市")
AT = "2026-03-14T09:00:00+08:00"


def test_the_lead_government_follows_the_level():
    assert group.lead_level("IV") == "district"
    assert group.lead_level("III") == "city"
    assert group.lead_level("II") == "province" and group.lead_level("I") == "province"


@pytest.mark.parametrize("level, govs, name", [
    ("IV", {"district"}, "天河区"), ("III", {"district", "city"}, "广州市"),
    ("II", {"district", "city", "province"}, "广东省")])
def test_roster_fills_org_templates_from_the_incident_names(level, govs, name):
    members = group.roster("gas_explosion", level, TIANHE)
    assert members
    assert {m.level_of_government for m in members} == govs
    assert all(m.role and m.org and "{" not in m.org and "}" not in m.org for m in members)
    lead = group.lead_level(level)
    assert any(m.level_of_government == lead and name in m.org for m in members)
    assert any(name in m.reason and "牵头" in m.reason for m in members)
    assert len({(m.role, m.org) for m in members}) == len(members)


def test_the_type_brings_its_departments():
    gas = {(m.role, m.org) for m in group.roster("gas_explosion", "IV", TIANHE)}
    flood = {(m.role, m.org) for m in group.roster("flood", "IV", TIANHE)}
    assert gas != flood


def _state(level_casualties: Casualties):
    g = grade("gas_explosion", level_casualties)
    events = [Reported(at=AT, actor="x", type="gas_explosion", location=location_to_dict(TIANHE),
                       casualties=level_casualties.as_dict(), economic_loss_cny=0.0, description="",
                       grade=g.as_dict())]
    events += group.open_group("440106-1", "gas_explosion", g, TIANHE, at=AT, actor="x",
                                 settings=get_settings())
    return fold("440106-1", events), events


def test_open_group_joins_everyone_and_opens_the_conference():
    state, events = _state(Casualties(serious_injuries=3))
    conf = [e for e in events if isinstance(e, ConferenceOpened)]
    assert len(conf) == 1 and "yzt-440106-1" in conf[0].link
    assert len(state.group.members) == len(group.roster("gas_explosion", "IV", TIANHE))


def test_regrade_up_brings_the_city_and_down_removes_nobody():
    state, events = _state(Casualties(serious_injuries=3))
    up = group.regrade(state, grade("gas_explosion", Casualties(deaths=4)), "gas_explosion",
                         at="2026-03-14T09:10:00+08:00", actor="x")
    assert isinstance(up[0], Regraded) and up[0].reason == "升级为较大(III)：广州市 牵头"
    joined = [e for e in up if isinstance(e, MemberJoined)]
    assert joined and {e.level_of_government for e in joined} == {"city"}
    assert any(e.reason == "升级为较大(III)：广州市 牵头" for e in joined)
    higher = fold("440106-1", events + up)
    down = group.regrade(higher, grade("gas_explosion", Casualties()), "gas_explosion",
                           at="2026-03-14T09:20:00+08:00", actor="x")
    assert [type(e) for e in down] == [Regraded] and "降级" in down[0].reason
    assert len(fold("440106-1", events + up + down).group.members) == len(higher.group.members)
