"""Reading a caller's words (incidents/intake.py): type, counts, place, location and grade; unknown stays None."""
from __future__ import annotations

import json

import pytest
from hypothesis import given, settings as hsettings, strategies as st

from incidents import intake
from incidents.errors import IncidentError
from incidents.grading import incident_types
from incidents.intake import cn_number, read, read_batch, read_counts, read_type
from incidents.model import LEVELS

_DIGITS = "零一二三四五六七八九"


def to_chinese(n: int) -> str:
    """A plain Chinese numeral for 0 < n < 100000 (一百零五, 二十, 十二, 三千零一)."""
    if n < 10:
        return _DIGITS[n]
    out, zero = "", False
    for value, unit in ((10_000, "万"), (1000, "千"), (100, "百"), (10, "十"), (1, "")):
        d, n = divmod(n, value)
        if d:
            if zero:
                out += "零"
            out += ("" if (unit == "十" and d == 1 and not out) else _DIGITS[d]) + unit
            zero = False
        elif out and n:
            zero = True
    return out


# ------------------------------------------------------------------------------------------ the issue's call
def test_the_issues_call_fills_what_it_says_and_nothing_more():
    r = read("广州市天河区体育西路191号 写字楼火灾 5人被困")
    assert r.type == "fire" and r.casualties.trapped == 5
    assert r.casualties.deaths is None and r.casualties.injured is None and r.casualties.missing is None
    assert r.place == "广州市天河区体育西路191号"
    assert r.location.district_adcode == "440106" and r.location.uncertainty_m > 0
    assert r.level == "IV" and any("unknown" in n for n in r.notes)
    d = r.as_dict()
    assert set(d) >= {"type", "casualties", "place", "location", "level"}
    assert set(d["casualties"]) == {"deaths", "serious_injuries", "injured", "missing", "trapped"}
    assert set(d["unknown"]) == {"deaths", "serious_injuries", "injured", "missing"}
    json.dumps(d, ensure_ascii=False)


def test_a_road_named_after_its_district_places_the_call_as_a_flagged_guess():
    r = read("天河路太古汇附近着火了")
    assert r.type == "fire" and r.place == "天河路太古汇"
    assert r.location.district_adcode == "440106" and r.location.confidence < 0.5
    assert any("guess" in n for n in r.location.notes)


def test_township_words_place_the_call_at_the_township():
    r = read("东莞市虎门镇一厂房起火，无人员伤亡")
    assert r.type == "fire" and r.location.precision == "township" and r.location.district_adcode == "441900"
    assert (r.casualties.deaths, r.casualties.injured, r.casualties.serious_injuries) == (0, 0, 0)
    assert r.casualties.missing is None and r.casualties.trapped is None


# ------------------------------------------------------------------------------------------ type
@pytest.mark.parametrize("text, key", [
    ("仓库起火", "fire"), ("三楼着火了", "fire"), ("厂房失火", "fire"),
    ("餐馆燃气爆炸", "gas_explosion"), ("液化气罐泄漏发生爆炸", "gas_explosion"),
    ("两车追尾", "traffic"), ("货车与客车相撞", "traffic"), ("大巴翻车", "traffic"),
    ("学校食堂发生食物中毒", "public_health"), ("煤矿瓦斯爆炸", "mine_accident"),
    ("暴力恐怖袭击", "terror_attack"), ("村民聚众围堵村委会", "mass_incident"),
    ("山上起火，过火面积约10公顷", "forest_fire"), ("暴雨引发山体滑坡", "landslide"),
])
def test_type_from_the_catalogue_words(text, key):
    assert read_type(text)[0] == key


def test_a_cause_wins_over_its_consequence():
    assert read_type("货车追尾后起火")[0] == "traffic"
    assert read_type("燃气爆炸引发火灾，楼房部分坍塌")[0] == "gas_explosion"


def test_no_type_words_gives_no_type_and_no_level():
    r = read("广州市天河区 有情况 3人受伤")
    assert r.type is None and r.level is None and r.grade is None
    assert r.casualties.injured == 3


def test_a_type_without_a_national_standard_has_no_level():
    r = read("昆明火车站发生严重暴力恐怖事件，造成29人死亡、130余人受伤。")
    assert r.type == "terror_attack" and incident_types()["terror_attack"].table is None
    assert r.level is None and any("no national grading standard" in n for n in r.notes)


# ------------------------------------------------------------------------------------------ counts
@pytest.mark.parametrize("text, expect", [
    ("造成3死5伤", {"deaths": 3, "injured": 5}),
    ("一死两伤", {"deaths": 1, "injured": 2}),
    ("死亡人数升至十二人", {"deaths": 12}),
    ("两人失踪", {"missing": 2}),
    ("2名工人经抢救无效死亡", {"deaths": 2}),
    ("发现3具遗体", {"deaths": 3}),
    ("造成一名3岁女孩死亡", {"deaths": 1}),
    ("被困人员约30人", {"trapped": 30}),
    ("造成10人伤亡，其中3人死亡", {"deaths": 3, "injured": 7}),
    ("25人死亡、138人受伤，其中37人重伤", {"deaths": 25, "serious_injuries": 37, "injured": 101}),
    ("4人重伤、6人轻伤", {"serious_injuries": 4, "injured": 6}),
    ("1人当场死亡，1人抢救无效死亡，6人受伤", {"deaths": 2, "injured": 6}),
    ("现场死亡3人、受伤4人，其中1人经抢救无效死亡", {"deaths": 4, "injured": 3}),
])
def test_counts(text, expect):
    counts, _, _ = read_counts(text)
    got = counts.as_dict()
    assert got == {f: expect.get(f) for f in intake.FIELDS}


@pytest.mark.parametrize("text, field, value, bound", [
    ("十余人受伤", "injured", 10, "at_least"), ("20余人被困", "trapped", 20, "at_least"),
    ("20多人受伤", "injured", 20, "at_least"), ("数十人受伤", "injured", 10, "at_least"),
    ("近百人被困", "trapped", 100, "about"), ("超过50人死亡", "deaths", 50, "at_least"),
    ("上百人受伤", "injured", 100, "at_least"),
])
def test_vague_figures_are_lower_bounds_or_approximate_and_say_so(text, field, value, bound):
    counts, approx, _ = read_counts(text)
    assert getattr(counts, field) == value
    assert approx[field]["bound"] == bound and approx[field]["said"] in text


def test_rescuers_are_not_casualties():
    counts, _, _ = read_counts("出动30名消防员救出被困群众，100余名指战员赶赴现场")
    assert counts.as_dict() == {f: None for f in intake.FIELDS}


def test_some_said_without_a_count_is_unknown_with_a_note():
    counts, _, notes = read_counts("商场餐饮区燃气爆炸, 有人员被困")
    assert counts.trapped is None and any("no count given" in n for n in notes)


@given(st.text(alphabet="的了在是火灾路口现场消防车到达附近居民楼浓烟情况正在处置中广州深圳", max_size=40))
@hsettings(max_examples=200, deadline=None)
def test_words_without_counts_never_invent_a_count(text):
    counts, _, _ = read_counts(text)
    assert counts.as_dict() == {f: None for f in intake.FIELDS}


@given(st.integers(min_value=1, max_value=99_999))
@hsettings(max_examples=300, deadline=None)
def test_chinese_numerals_read_back(n):
    assert cn_number(to_chinese(n)) == n
    assert cn_number(str(n)) == n


@given(d=st.integers(0, 500), i=st.integers(0, 500), m=st.integers(0, 50), t=st.integers(0, 50),
       chinese=st.booleans())
@hsettings(max_examples=200, deadline=None)
def test_any_counts_said_in_a_report_sentence_are_read_exactly(d, i, m, t, chinese):
    say = to_chinese if chinese else str
    text = f"事故造成{say(d) if d else '零'}人死亡、{say(i) if i else '零'}人受伤，{say(m) if m else '零'}人失踪，" \
           f"另有{say(t) if t else '零'}人被困"
    counts, _, _ = read_counts(text)
    assert (counts.deaths, counts.injured, counts.missing, counts.trapped) == (d, i, m, t)


@given(st.integers(0, 200), st.integers(0, 200))
@hsettings(max_examples=100, deadline=None)
def test_the_grade_never_drops_when_more_deaths_are_said(a, b):
    lo, hi = sorted((a, b))
    g_lo = read(f"广州市天河区天河路商场燃气爆炸，造成{lo}人死亡").grade
    g_hi = read(f"广州市天河区天河路商场燃气爆炸，造成{hi}人死亡").grade
    assert LEVELS.index(g_hi.level) >= LEVELS.index(g_lo.level)


# ------------------------------------------------------------------------------------------ place
def test_outside_guangdong_the_place_is_read_but_not_located():
    r = read("宁夏银川市兴庆区一烧烤店发生燃气爆炸，造成31人死亡、7人受伤。")
    assert r.place and r.place.startswith("宁夏") and r.location is None
    assert any("outside Guangdong" in n for n in r.notes)
    assert r.level == "I"


def test_no_place_words_gives_no_location():
    r = read("高层住宅12楼起火, 浓烟蔓延")
    assert r.place is None and r.location is None and r.type == "fire"


# ------------------------------------------------------------------------------------------ refusals, batch
@pytest.mark.parametrize("text", ["", "   ", "火" * (intake.MAX_TEXT_CHARS + 1)])
def test_empty_or_huge_text_is_refused_in_one_line(text):
    with pytest.raises(IncidentError) as e:
        read(text)
    assert "\n" not in str(e.value)


def test_batch_keeps_order_and_goes_on_after_a_refusal():
    out = list(read_batch(["广州市天河区天河路商场燃气爆炸 3人重伤", "", "东莞市虎门镇起火"]))
    assert [("error" in d) for d in out] == [False, True, False]
    assert out[0]["casualties"]["serious_injuries"] == 3 and out[0]["type"] == "gas_explosion"
    assert out[2]["location"]["district_adcode"] == "441900"


def test_intake_reads_no_settings():
    from pathlib import Path
    src = (Path(intake.__file__)).read_text(encoding="utf-8")
    assert "get_settings" not in src


def test_a_report_in_traditional_characters_is_read():
    r = read("廣東東莞大朗鎮一個小區住宅清晨發生火警，造成七死四傷。")
    assert r.type == "fire" and (r.casualties.deaths, r.casualties.injured) == (7, 4)
    assert r.location.district_adcode == "441900" and r.location.precision == "township"


def test_vehicle_words_say_traffic_only_when_nothing_else_is_said():
    assert read_type("安徽一皮卡冲下80米深崖 12人遇难")[0] == "traffic"
    assert read_type("小区楼下一辆轿车起火")[0] == "fire"


def test_trapped_people_who_died_are_counted_as_deaths_too():
    counts, _, _ = read_counts("一小轿车突然起火，两名儿童被困车内不幸身亡。")
    assert counts.deaths == 2 and counts.trapped == 2
    counts, _, _ = read_counts("5人被困，已全部救出")
    assert counts.deaths is None and counts.trapped == 5
