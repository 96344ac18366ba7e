"""Grading by China's four levels: the statutory boundaries, the "or" rule, missing persons, refusals,
the incident type catalogue, broken tables, and the roster rules of data/command/duty_rules.yaml."""
from __future__ import annotations

import csv
import math
import re
import shutil
import string
from pathlib import Path

import pytest
import yaml
from hypothesis import given, settings as hsettings, strategies as st
from lxml import etree

import settings as settings_mod
from incidents import grading
from incidents.errors import GradingError, IncidentError
from incidents.grading import grade, incident_types, level_info, resolve_type
from incidents.model import LEVELS, Casualties

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT / "data"
RANK = {lv: i for i, lv in enumerate(LEVELS)}

# (casualties kwargs, loss, expected level) straight from the standards table (条例第三条).
DEATHS = [(2, "IV"), (3, "III"), (9, "III"), (10, "II"), (29, "II"), (30, "I")]
INJURIES = [(9, "IV"), (10, "III"), (49, "III"), (50, "II"), (99, "II"), (100, "I")]
LOSSES = [(9_999_999, "IV"), (10_000_000, "III"), (49_999_999, "III"), (50_000_000, "II"),
          (99_999_999, "II"), (100_000_000, "I")]
STATUTE_TYPES = [("gas_explosion", "production_safety"), ("fire", "fire")]


# ------------------------------------------------------------------------------------------ boundaries
@pytest.mark.parametrize("type_,table", STATUTE_TYPES)
@pytest.mark.parametrize("deaths,level", DEATHS)
def test_death_boundaries(type_, table, deaths, level):
    g = grade(type_, Casualties(deaths=deaths))
    assert (g.level, g.category) == (level, table)
    if level != "IV":
        assert f"deaths {deaths} >= " in g.rule.criterion
        assert g.rule.criterion.startswith("死亡")


@pytest.mark.parametrize("type_,table", STATUTE_TYPES)
@pytest.mark.parametrize("injuries,level", INJURIES)
def test_serious_injury_boundaries(type_, table, injuries, level):
    g = grade(type_, Casualties(serious_injuries=injuries))
    assert (g.level, g.category) == (level, table)
    if level != "IV":
        assert g.rule.criterion.startswith("重伤")


@pytest.mark.parametrize("type_,table", STATUTE_TYPES)
@pytest.mark.parametrize("loss,level", LOSSES)
def test_loss_boundaries(type_, table, loss, level):
    g = grade(type_, Casualties(), loss)
    assert (g.level, g.category) == (level, table)
    word = "直接财产损失" if table == "fire" else "直接经济损失"
    assert word in g.rule.criterion
    # a float just below a bound stays below it
    if level != "IV":
        below = grade(type_, Casualties(), loss - 0.5)
        assert RANK[below.level] in (RANK[level], RANK[level] - 1)


def test_rule_wording_names_the_band():
    assert grade("gas_explosion", Casualties(deaths=10)).rule.criterion.startswith("死亡10人以上30人以下")
    assert grade("gas_explosion", Casualties(deaths=30)).rule.criterion.startswith("死亡30人以上 ")
    g = grade("fire", Casualties(), 60_000_000)
    assert g.rule.criterion.startswith("直接财产损失5000万元以上1亿元以下")
    assert "60,000,000 >= 50,000,000" in g.rule.criterion


def test_level_names_colours_and_cap_severity():
    expect = {"I": ("特别重大", "红", "Extreme"), "II": ("重大", "橙", "Severe"),
              "III": ("较大", "黄", "Moderate"), "IV": ("一般", "蓝", "Minor")}
    for deaths, level in [(0, "IV"), (3, "III"), (10, "II"), (30, "I")]:
        g = grade("fire", Casualties(deaths=deaths))
        assert (g.name, g.colour, g.cap_severity) == expect[level]
        info = level_info(level)
        assert (info["name"], info["colour"], info["cap_severity"]) == expect[level]
        assert info["en"]
    with pytest.raises(GradingError, match="unknown level"):
        level_info("V")


# ------------------------------------------------------------------------------------------ "or" rule
def test_highest_criterion_wins_and_is_named():
    g = grade("gas_explosion", Casualties(deaths=1, serious_injuries=60))
    assert g.level == "II"
    assert g.rule.criterion.startswith("重伤（包括急性工业中毒）50人以上100人以下")
    assert "死亡" not in g.rule.criterion
    g = grade("fire", Casualties(deaths=4), 100_000_000)
    assert g.level == "I" and g.rule.criterion.startswith("直接财产损失1亿元以上")


def test_criteria_reaching_the_same_level_are_all_named():
    g = grade("gas_explosion", Casualties(deaths=4, serious_injuries=15))
    assert g.level == "III"
    assert "死亡3人以上10人以下" in g.rule.criterion and "重伤" in g.rule.criterion


def test_floor_is_general():
    g = grade("fire", Casualties())
    assert g.level == "IV" and g.name == "一般"
    assert "IV is the floor" in g.rule.criterion and "死亡3人以下" in g.rule.criterion


# ------------------------------------------------------------------------------------------ missing
def test_missing_counted_with_deaths_by_default():
    g = grade("fire", Casualties(deaths=8, missing=2))
    assert g.level == "II"
    assert "死亡（含失踪）10人以上30人以下" in g.rule.criterion
    assert "deaths 8 + missing 2 = 10" in g.rule.criterion and "missing counted with deaths" in g.rule.criterion


def test_missing_not_counted_when_the_option_is_off():
    g = grade("fire", Casualties(deaths=8, missing=2), missing_count_as_deaths=False)
    assert g.level == "III"
    assert "missing 2 not counted" in g.rule.criterion


def test_missing_option_is_passed_down_not_read_from_the_settings(tmp_path, monkeypatch):
    # the door reads the settings file and passes the flag; grading itself never reads settings
    cfg = tmp_path / "yzt.yaml"
    cfg.write_text("missing_count_as_deaths: false\n", encoding="utf-8")
    monkeypatch.setenv("YZT_CONFIG", str(cfg))
    settings_mod.reset_settings_cache()
    flag = settings_mod.get_settings().missing_count_as_deaths
    assert grade("gas_explosion", Casualties(deaths=2, missing=5), missing_count_as_deaths=flag).level == "IV"
    assert grade("gas_explosion", Casualties(deaths=2, missing=5)).level == "III"     # the default: True


def test_grading_reads_no_settings():
    src = (ROOT / "incidents" / "grading.py").read_text(encoding="utf-8")
    assert "get_settings" not in src


def test_earthquake_counts_missing_whatever_the_option():
    # 国家地震应急预案 3.1: 死亡（含失踪）
    g = grade("earthquake", Casualties(deaths=5, missing=5), missing_count_as_deaths=False)
    assert g.level == "III" and g.category == "earthquake"
    assert grade("earthquake", Casualties(deaths=49, missing=1)).level == "II"
    assert grade("earthquake", Casualties(deaths=299, missing=1)).level == "I"


# ------------------------------------------------------------------------------------------ citations
def test_rule_names_law_and_article():
    r = grade("gas_explosion", Casualties(deaths=3)).rule
    assert "生产安全事故报告和调查处理条例" in r.law and "493" in r.law and r.article == "第三条"
    r = grade("fire", Casualties(deaths=3)).rule
    assert "火灾等级标准" in r.law and "公安部" in r.law
    r = grade("landslide", Casualties(), 1_000_000).rule
    assert "国家突发地质灾害应急预案" in r.law


def test_every_table_is_cited_and_marks_secondary_sources():
    for key, table in grading.tables().items():
        s = table.source
        assert s.law and s.article and s.issuer and 1949 < s.year <= 2100, key
        assert isinstance(s.secondary, bool)
    assert grading.tables()["production_safety"].source.secondary is False
    assert grading.tables()["geological_disaster"].source.secondary is True


def test_other_national_tables():
    assert grade("landslide", Casualties(), 1_000_000).level == "III"       # 中型: 100万元以上
    assert grade("landslide", Casualties(), 10_000_000).level == "I"       # 特大型: 1000万元以上
    assert grade("env_pollution", Casualties(), 20_000_000).level == "II"  # 2000万元以上
    assert grade("forest_fire", Casualties(serious_injuries=50)).level == "II"


def test_shared_drill_expectation(shared_dir):
    """The drill's last update of incident A must grade to the level the scenario expects."""
    sc = yaml.safe_load((shared_dir / "scenarios" / "tianhe-mall-gas-explosion.yaml").read_text("utf-8"))
    events = [e for e in sc["events"] if e.get("incident") == "A" and "casualties" in e]
    type_ = next(e["type"] for e in sc["events"] if e.get("kind") == "report")
    expected = next(x["level"] for x in sc["expect"] if x["incident"] == "A")
    assert grade(type_, Casualties(**events[-1]["casualties"])).level == expected


# ------------------------------------------------------------------------------------------ property
TYPES = list(incident_types())
counts = st.integers(min_value=0, max_value=400)
losses = st.one_of(st.integers(min_value=0, max_value=300_000_000),
                   st.floats(min_value=0, max_value=3e8, allow_nan=False, allow_infinity=False))


@hsettings(max_examples=300, deadline=None)
@given(type_=st.sampled_from(TYPES), d=counts, s=counts, m=counts, loss=losses,
       bump=st.integers(min_value=1, max_value=200), which=st.sampled_from(["d", "s", "m", "loss"]),
       count_missing=st.booleans())
def test_level_never_drops_when_anything_rises(type_, d, s, m, loss, bump, which, count_missing):
    before = grade(type_, Casualties(d, s, m), loss, missing_count_as_deaths=count_missing)
    d2, s2, m2 = d + (which == "d") * bump, s + (which == "s") * bump, m + (which == "m") * bump
    loss2 = loss + (which == "loss") * bump * 1_000_000
    after = grade(type_, Casualties(d2, s2, m2), loss2, missing_count_as_deaths=count_missing)
    assert after.rank >= before.rank


# ------------------------------------------------------------------------------------------ refusals
def test_unknown_type_lists_the_known_ones():
    with pytest.raises(GradingError) as e:
        grade("volcano", Casualties())
    msg = str(e.value)
    assert "volcano" in msg and "fire" in msg and "gas_explosion" in msg and "\n" not in msg
    with pytest.raises(GradingError):
        grade("", Casualties())


@pytest.mark.parametrize("casualties", [
    {"deaths": -1}, {"serious_injuries": -3}, {"missing": -1}, {"deaths": 1.5}, {"deaths": True},
    {"deaths": "3"}, {"deaths": None}, {"dead": 3}])
def test_bad_counts_refused(casualties):
    with pytest.raises(GradingError, match="casualties"):
        grade("fire", casualties)


@pytest.mark.parametrize("loss", [-1, -0.01, math.nan, math.inf, "100", True, None])
def test_bad_loss_refused(loss):
    with pytest.raises(GradingError, match="economic_loss_cny"):
        grade("fire", Casualties(), loss)


def test_negative_casualties_refused_by_the_model_too():
    with pytest.raises(IncidentError):
        Casualties(deaths=-1)
    with pytest.raises(GradingError):
        grade("fire", object())


def test_mapping_and_aliases_accepted():
    assert grade("fire", {"deaths": 3}).level == "III"
    assert resolve_type("traffic_accident") == "traffic"
    assert resolve_type("交通事故") == "traffic"
    assert resolve_type(" Fire ") == "fire"
    assert resolve_type("火灾") == "fire"


# ------------------------------------------------------------------------------------------ catalogue
def _cap_categories() -> set[str]:
    xsd = etree.parse(str(DATA / "standards" / "CAP-v1.2-schema.xsd"))
    ns = {"xs": "http://www.w3.org/2001/XMLSchema"}
    el = xsd.xpath("//xs:element[@name='category']//xs:enumeration/@value", namespaces=ns)
    return set(el)


def test_catalogue_has_the_types_an_officer_expects():
    need = {"fire", "gas_explosion", "explosion", "hazmat_leak", "building_collapse", "traffic", "flood",
            "landslide", "typhoon", "mine_accident", "power_outage", "public_health", "crowd_crush",
            "waterlogging", "earthquake"}
    assert need <= set(incident_types())


def test_every_type_grades_and_has_a_valid_cap_category():
    cats = _cap_categories()
    assert cats == set(grading.CAP_CATEGORIES)
    for key, t in incident_types().items():
        assert t.key == key and t.zh and t.en and t.cap_event_zh and t.cap_event_en
        assert t.cap_category in cats
        assert grade(key, Casualties()).level == "IV"
        if t.table is None:           # no national standard: the floor, and the rule says why
            g = grade(key, Casualties(deaths=1000))
            assert g.level == "IV" and g.rule.law == grading.NO_STANDARD_LAW and t.no_standard in g.rule.criterion
            assert g.category == ""
            continue
        assert grade(key, Casualties(deaths=1000)).level == "I"
        assert grade(key, Casualties()).category == t.table


def test_catalogue_covers_the_four_categories_of_the_national_overall_plan():
    types = incident_types()
    by_cat = {c: [k for k, t in types.items() if t.category == c] for c in grading.CATEGORIES}
    assert all(by_cat.values()), by_cat
    assert {"terror_attack", "mass_incident"} <= set(by_cat["social_safety"])
    assert "public_health" in by_cat["public_health"] and "earthquake" in by_cat["natural_disaster"]
    for k in ("terror_attack", "mass_incident"):
        assert types[k].table is None and "not public" in types[k].no_standard


def test_a_type_needs_a_table_or_a_reason_for_none(data_copy):
    _edit(data_copy / "incident_types.yaml", "    category: social_safety\n    no_standard: >-\n",
          "    category: social_safety\n    note: >-\n")
    with pytest.raises(GradingError, match="either a grading table or no_standard"):
        grade("fire", Casualties(), data_dir=data_copy.parent)


def test_intake_words_are_unique_across_types(data_copy):
    _edit(data_copy / "incident_types.yaml", "words: [追尾,", "words: [起火, 追尾,")
    with pytest.raises(GradingError, match="word '起火' is also used"):
        grade("fire", Casualties(), data_dir=data_copy.parent)


def test_grade_as_dict_matches_the_cli_contract():
    d = grade("fire", Casualties(deaths=3)).as_dict()
    assert {"level", "name", "colour", "cap_severity", "rule"} <= set(d)
    assert set(d["rule"]) == {"law", "article", "criterion"}


# ------------------------------------------------------------------------------------------ broken tables
@pytest.fixture
def data_copy(tmp_path, monkeypatch):
    d = tmp_path / "data"
    shutil.copytree(DATA / "grading", d / "grading")
    return d / "grading"


def _edit(path: Path, old: str, new: str) -> None:
    text = path.read_text(encoding="utf-8")
    assert old in text
    path.write_text(text.replace(old, new, 1), encoding="utf-8")


def test_copied_tables_grade_the_same(data_copy):
    assert grade("fire", Casualties(deaths=10), data_dir=data_copy.parent).level == "II"


@pytest.mark.parametrize("file,old,new,expect", [
    ("fire.yaml", "{I: 30, II: 10, III: 3}", "{I: 30, II: ten, III: 3}", r"fire\.yaml: line \d+: criteria\.0\.bands\.II"),
    ("fire.yaml", "{I: 30, II: 10, III: 3}", "{I: 30, II: 3, III: 10}", r"fire\.yaml: line \d+: criteria\.0: .*band II"),
    ("fire.yaml", "measure: deaths", "measure: dead", r"fire\.yaml: line \d+: criteria\.0\.measure"),
    ("fire.yaml", "key: fire\n", "key: fires\n", r"fire\.yaml: key: 'fires' must match"),
    ("production_safety.yaml", "  article: 第三条\n", "", r"production_safety\.yaml: line \d+: source\.article: required"),
    ("incident_types.yaml", "table: geological_disaster", "table: geology",
     r"incident_types\.yaml: types\.landslide\.table: no grading table 'geology'"),
    ("incident_types.yaml", "cap_category: Geo", "cap_category: Geology", r"incident_types\.yaml: line \d+: types\.landslide\.cap_category"),
    ("incident_types.yaml", "aliases: [sinkhole, subsidence]", "aliases: [sinkhole, fire]", r"name 'fire' is also used"),
    ("levels.yaml", "cap_severity: Minor", "cap_severity: Small", r"levels\.yaml: line \d+: levels\.IV\.cap_severity"),
    ("earthquake.yaml", "bands: {I: 300", "bands: [I: 300", r"earthquake\.yaml: line \d+: not valid YAML"),
])
def test_broken_table_refused_with_file_and_key(data_copy, file, old, new, expect):
    _edit(data_copy / file, old, new)
    with pytest.raises(GradingError, match=expect) as e:
        grade("fire", Casualties(), data_dir=data_copy.parent)
    assert "\n" not in str(e.value)


# ------------------------------------------------------------------------------------------ duty rules
DUTY = DATA / "command" / "duty_rules.yaml"
PLACEHOLDERS = {"province", "province_short", "city", "city_short", "district", "district_short",
                "district_full"}


@pytest.fixture(scope="module")
def duty() -> dict:
    return yaml.safe_load(DUTY.read_text(encoding="utf-8"))


def test_duty_rules_cover_every_type_and_level(duty):
    assert set(duty["types"]) == set(incident_types())
    assert set(duty["levels"]) == set(LEVELS)
    expected_lead = {"IV": "district", "III": "city", "II": "province", "I": "province"}
    for lv, rule in duty["levels"].items():
        assert rule["lead"] == expected_lead[lv] and rule["lead"] in rule["join"]
        assert set(rule["join"]) <= set(duty["government_levels"])
    assert duty["levels"]["I"]["inform"]
    assert "emergency_management" in duty["always"]


def test_duty_departments_are_defined_with_roles_and_templates(duty):
    depts = duty["departments"]
    used = set(duty["always"]) | set(duty["when_casualties"]) | {d for v in duty["types"].values() for d in v}
    assert used <= set(depts)
    for key, d in depts.items():
        assert d["zh"] and d["role"], key
        assert {"district", "city", "province"} <= set(d["names"]), key
        templates = list(d["names"].values())
        templates += [t for city in duty["overrides"].values() for t in city.get(key, {}).values()]
        for t in templates:
            fields = {f for _, f, _, _ in string.Formatter().parse(t) if f}
            assert fields <= PLACEHOLDERS, (key, t)
            assert "{" not in re.sub(r"\{[a-z_]+\}", "", t), (key, t)
    for city, o in duty["overrides"].items():
        assert set(o) <= set(depts), city


def test_department_sets_per_type(duty):
    assert "fire_rescue" in duty["types"]["fire"]
    for t in ("flood", "typhoon", "waterlogging"):
        assert {"flood_control", "meteorology", "water"} <= set(duty["types"][t])
    assert "ecology_environment" in duty["types"]["hazmat_leak"]
    assert {"transport", "traffic_police"} <= set(duty["types"]["traffic"])
    assert "natural_resources" in duty["types"]["landslide"]
    assert "housing_construction" in duty["types"]["building_collapse"]
    assert "gas_regulator" in duty["types"]["gas_explosion"]


def _roster(duty: dict, type_: str, level: str, province: str, city: str, district: str,
            casualties: bool) -> list[tuple[str, str]]:
    """The README's recipe, followed literally: the test that the data can be rendered as documented."""
    short = (lambda n, suf: n[:-1] if n.endswith(suf) and len(n) > 2 else n)
    county = not district.endswith("区")
    ph = {"province": province, "province_short": short(province, "省"), "city": city,
          "city_short": short(city, "市"), "district": district,
          "district_short": district[:-1] if district[-1] in "区县市" and len(district) > 2 else district,
          "district_full": district if county else city + district}
    depts = list(dict.fromkeys([*duty["always"], *duty["types"][type_],
                                *(duty["when_casualties"] if casualties else [])]))
    rule, members = duty["levels"][level], []
    collapse = (lambda g: "city" if (g == "district" and district == city) else g)  # 东莞市, 中山市
    lead = collapse(rule["lead"])
    for gov in map(collapse, rule["join"]):
        for key in depts:
            d = duty["departments"][key]
            if d.get("only_at_lead") and gov != lead:
                continue
            names = {**d["names"], **duty["overrides"].get(city, {}).get(key, {})}
            tpl = names.get("county") if (gov == "district" and county and "county" in names) else names[gov]
            org = tpl.format(**ph)
            members.append((org, d["role"]))
            if gov == lead and d.get("lead_role"):
                members.append((org, d["lead_role"]))
    return list(dict.fromkeys(members))


def test_duty_roster_for_tianhe_gas_explosion(duty):
    m = _roster(duty, "gas_explosion", "III", "广东省", "广州市", "天河区", casualties=True)
    assert ("广州市应急管理局", "带班领导") in m and ("广州市应急管理局", "值班室") in m
    assert ("广州市天河区应急管理局", "值班室") in m
    assert ("广州市消防救援支队", "指挥中心") in m and ("广州市天河区消防救援大队", "指挥中心") in m
    assert ("广州市公安局天河区分局", "指挥中心") in m
    assert ("广州市急救医疗指挥中心", "调度指挥中心") in m
    assert not any(org == "广州市天河区人民政府" for org, _ in m)      # the city leads a III
    m = _roster(duty, "fire", "I", "广东省", "深圳市", "福田区", casualties=False)
    assert ("广东省应急管理厅", "带班领导") in m and ("广东省消防救援总队", "指挥中心") in m
    assert ("深圳市公安局福田分局", "指挥中心") in m


def test_duty_roster_renders_for_every_district_type_and_level(duty):
    rows = list(csv.DictReader((DATA / "gazetteer" / "guangdong_admin_units.csv").open(encoding="utf-8")))
    districts = [(r["province_name"], r["city_name"], r["name"]) for r in rows if r["level"] == "district"]
    assert len(districts) > 100
    for province, city, district in districts:
        for type_ in duty["types"]:
            for level in LEVELS:
                m = _roster(duty, type_, level, province, city, district, casualties=True)
                assert ("{" not in "".join(o for o, _ in m)) and all(o and r for o, r in m)
                assert any("应急管理" in o for o, _ in m)
    dg = _roster(duty, "fire", "IV", "广东省", "东莞市", "东莞市", casualties=False)
    assert ("东莞市应急管理局", "带班领导") in dg and not any("东莞市东莞市" in o for o, _ in dg)
    bl = _roster(duty, "traffic", "IV", "广东省", "惠州市", "博罗县", casualties=False)
    assert ("博罗县公安局", "指挥中心") in bl and ("博罗县应急管理局", "带班领导") in bl
