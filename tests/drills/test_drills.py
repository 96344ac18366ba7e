"""Drills: strict scenario loading, replay as an Exercise, the contract's report, determinism."""
from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
import yaml

from command import drills
from settings import load_settings
from command.errors import ScenarioError
from command.drills.aar import targets, to_html, to_markdown, write_report
from helpers_store import new_store

DATA = Path(__file__).resolve().parents[1] / "data"



def run(scenario, **kw):
    """A drill replayed with this test's settings (its own var_dir), as the CLI door passes them."""
    return drills.run_drill(scenario, settings=load_settings(), **kw)

@pytest.fixture
def scenarios(shared_dir) -> Path:
    return shared_dir / "scenarios"


# ---------------------------------------------------------------- refusals name file, event, line, field

@pytest.mark.parametrize("name, expected", [
    ("drill_unknown_key.yaml", "drill_unknown_key.yaml: event 2 (line 14): casualtys: unknown key"),
    ("drill_unknown_kind.yaml", "drill_unknown_kind.yaml: event 2 (line 12): kind: must be one of report, update"),
    ("drill_unknown_type.yaml", "drill_unknown_type.yaml: event 1 (line 9): type: unknown incident type "
                                "'alien_invasion'"),
    ("drill_update_before_report.yaml", "drill_update_before_report.yaml: event 2 (line 13): incident: update "
                                        "before the report of incident 'B'"),
    ("drill_bad_time.yaml", "drill_bad_time.yaml: event 2 (line 11): at: '5x' is not a time"),
    ("drill_bad_lat.yaml", "drill_bad_lat.yaml: event 2 (line 13): point.lat: lat 95.5 is out of range"),
    ("drill_bad_deaths.yaml", "drill_bad_deaths.yaml: event 2 (line 15): casualties.deaths: must be a whole "
                              "number >= 0"),
])
def test_bad_scenarios_are_refused_naming_file_event_line_and_field(name, expected):
    with pytest.raises(ScenarioError) as err:
        drills.load_scenario(DATA / name)
    msg = str(err.value)
    assert expected in msg
    assert msg.startswith(str(DATA / name)) and "\n" not in msg


def test_refused_scenario_runs_nothing(tmp_path):
    store = new_store(tmp_path / "d.db")
    with pytest.raises(ScenarioError):
        run(drills.load_scenario(DATA / "drill_update_before_report.yaml"), store=store)
    assert store.incident_ids() == []


@pytest.mark.parametrize("bad, fragment", [
    ({"format": 2}, "format"),
    ({"events": []}, "events"),
    ({"start": "2026-03-14T09:00:00"}, "start: must be an ISO 8601 time with its UTC offset"),
    ({"extra": 1}, "extra: unknown key"),
])
def test_top_level_refusals(tmp_path, bad, fragment):
    doc = {"format": 1, "name": "x", "start": "2026-03-14T09:00:00+08:00",
           "events": [{"at": 0, "kind": "report", "incident": "A", "address": "广州市天河区", "type": "fire"}]}
    doc.update(bad)
    p = tmp_path / "s.yaml"
    p.write_text(yaml.safe_dump(doc, allow_unicode=True), encoding="utf-8")
    with pytest.raises(ScenarioError, match=fragment):
        drills.load_scenario(p)


@pytest.mark.parametrize("text, fragment", [
    ("format: 1\nname: x\nstart: 2024-02-30\nevents: []\n", "day is out of range"),
    ("format: 1\nname: x\nevents:\n  - at: " + "9" * 5000 + "\n", "4300 digits"),
])
def test_values_yaml_cannot_build_are_refused_in_one_line(tmp_path, text, fragment):
    p = tmp_path / "s.yaml"
    p.write_text(text, encoding="utf-8")
    with pytest.raises(ScenarioError, match=fragment) as e:
        drills.load_scenario(p)
    assert "\n" not in str(e.value) and str(e.value).startswith(str(p))


def test_field_not_of_its_kind_is_refused(tmp_path):
    p = tmp_path / "s.yaml"
    p.write_text("format: 1\nname: x\nstart: '2026-03-14T09:00:00+08:00'\nevents:\n"
                 "  - {at: 0, kind: report, incident: A, address: 广州市天河区, type: fire}\n"
                 "  - {at: 60, kind: close, incident: A, radius_m: 500}\n", encoding="utf-8")
    with pytest.raises(ScenarioError, match=r"event 2 \(line 6\): radius_m: not a field of a close event"):
        drills.load_scenario(p)


@pytest.mark.parametrize("text, seconds", [(0, 0), (90, 90), ("90s", 90), ("5m", 300), ("1h30m", 5400),
                                           ("2h", 7200), ("120", 120)])
def test_times(text, seconds):
    assert drills.parse_time(text) == seconds


@pytest.mark.parametrize("text", ["5x", "", "m", "-5", "1.5h", True, -1])
def test_bad_times(text):
    with pytest.raises(ValueError, match="not a time"):
        drills.parse_time(text)


def test_json_scenario_is_ordered_by_time(tmp_path):
    sc = drills.load_scenario(DATA / "drill_point_gcj02.json")
    assert [e.kind for e in sc.events] == ["report", "alert", "note", "close"]
    assert [e.index for e in sc.events] == [2, 1, 3, 4] and sc.events[0].line is None


# ---------------------------------------------------------------- replays

@pytest.mark.slow
def test_tianhe_scenario_runs_and_its_expects_pass(scenarios):
    report = run(drills.load_scenario(scenarios / "tianhe-mall-gas-explosion.yaml"))
    assert drills.report_exit_code(report) == 0, report["checks"] or report["errors"]
    a = report["incidents"]["A"]
    assert report["status"] == "Exercise" and a["level"] == "III"
    assert a["location"]["district_adcode"] == "440106"
    assert [lv["level"] for lv in a["levels"]] == ["IV", "III"] and a["levels"][1]["at_s"] == 600
    for layer in ("hospital", "fire_station", "camera"):
        d = [x["distance_m"] for x in a["nearby"][layer]]
        assert d and d == sorted(d)
    assert a["group"]["created_at_s"] == 0
    assert any(m["level_of_government"] == "city" and m["joined_at_s"] == 600 for m in a["group"]["members"])
    assert [x["msg_type"] for x in a["alerts"]] == ["Alert", "Update", "Cancel"]
    assert [x["at_s"] for x in a["alerts"]] == [240, 660, 7200]
    assert all(x["status"] == "Exercise" and "<status>Exercise</status>" in x["cap_xml"] for x in a["alerts"])
    assert a["alerts"][1]["area"]["circle"].endswith(" 1.2")
    assert a["alerts"][1]["population"] > 0 and "440106" in a["alerts"][1]["admin_units"]
    assert a["closed_at_s"] == 10800
    assert report["deliveries"]["live"] == 0 and report["deliveries"]["exercise"] == 3
    assert all(c["passed"] for c in report["checks"])


@pytest.mark.slow
def test_futian_scenario_runs_and_its_expects_pass(scenarios):
    report = run(drills.load_scenario(scenarios / "futian-residential-fire.yaml"))
    assert drills.report_exit_code(report) == 0, report["checks"] or report["errors"]
    f = report["incidents"]["F"]
    assert f["level"] == "III" and f["location"]["district_adcode"] == "440304"
    assert f["alerts"][0]["msg_type"] == "Alert" and f["alerts"][0]["area"]["circle"].endswith(" 0.3")
    assert report["deliveries"] == {"live": 0, "exercise": 1}


@pytest.mark.slow
def test_same_file_twice_gives_the_identical_report(scenarios):
    sc = drills.load_scenario(scenarios / "tianhe-mall-gas-explosion.yaml")
    one = json.dumps(run(sc), ensure_ascii=False, sort_keys=True)
    two = json.dumps(run(drills.load_scenario(scenarios / "tianhe-mall-gas-explosion.yaml")),
                     ensure_ascii=False, sort_keys=True)
    assert one == two


def test_speed_replays_on_the_scenario_timeline_with_the_same_report(tmp_path):
    p = tmp_path / "quick.yaml"
    p.write_text("format: 1\nname: quick\nstart: '2026-03-14T09:00:00+08:00'\nevents:\n"
                 "  - {at: 0, kind: report, incident: Q, point: {lon: 113.3245, lat: 23.1365}, type: fire}\n"
                 "  - {at: 2s, kind: note, incident: Q, text: 到场}\n"
                 "  - {at: 4s, kind: close, incident: Q}\n", encoding="utf-8")
    sc = drills.load_scenario(p)
    began = time.monotonic()
    fast = run(sc, speed=10)
    assert time.monotonic() - began >= 0.4 - 0.05    # it waited on the scenario's timeline (4 s / 10)
    assert fast == run(sc)
    assert fast["incidents"]["Q"]["closed_at_s"] == 4


def test_json_drill_with_gcj02_point(tmp_path):
    report = run(drills.load_scenario(DATA / "drill_point_gcj02.json"))
    assert drills.report_exit_code(report) == 0, report["checks"] or report["errors"]
    p = report["incidents"]["P"]
    assert p["location"]["crs"] == "wgs84" and p["location"]["lon"] < 114.0596   # GCJ-02 shifted back
    assert p["alerts"][0]["at_s"] == 30


def test_a_drill_never_reaches_a_live_channel(tmp_path, monkeypatch):
    """Even when the only configured channel is live, a drill sends nothing live."""
    cfg = tmp_path / "yzt.yaml"
    cfg.write_text("channels:\n  - {name: gd-webhook, kind: webhook, mode: live, url: 'http://127.0.0.1:9/x'}\n",
                   encoding="utf-8")
    monkeypatch.setenv("YZT_CONFIG", str(cfg))
    import settings as settings_mod
    settings_mod.reset_settings_cache()
    store = new_store(tmp_path / "d.db")
    report = run(drills.load_scenario(DATA / "drill_point_gcj02.json"), store=store)
    assert report["deliveries"]["live"] == 0 and report["deliveries"]["exercise"] == 0
    assert store.deliveries() == []
    assert report["errors"] and "no exercise channel" in report["errors"][0]["error"]
    assert drills.report_exit_code(report) == 1


def test_a_failed_expect_exits_1(tmp_path):
    doc = yaml.safe_load((DATA / "drill_point_gcj02.json").read_text(encoding="utf-8"))
    doc["expect"] = [{"incident": "P", "level": "I"}]
    p = tmp_path / "s.json"
    p.write_text(json.dumps(doc, ensure_ascii=False), encoding="utf-8")
    report = run(drills.load_scenario(p))
    assert report["checks"] == [{"incident": "P", "field": "level", "expected": "I", "actual": "IV",
                                 "passed": False}]
    assert drills.report_exit_code(report) == 1


# ---------------------------------------------------------------- after-action report

def test_after_action_report_markdown_and_html(tmp_path):
    report = run(drills.load_scenario(DATA / "drill_point_gcj02.json"))
    ts = targets(report)
    names = {t.name for t in ts}
    assert {"group formed (reported upward)", "group alerted", "first public warning",
            "no live delivery from a drill"} <= names
    assert next(t for t in ts if t.name == "group formed (reported upward)").passed is True
    assert next(t for t in ts if t.name == "first public warning").actual == "30 s"
    md = to_markdown(report)
    assert "条例 Art. 9" in md and "NFPA 1710" in md and "| P |" in md
    page = to_html(report)
    assert "plotly" in page.lower() and "Plotly.newPlot" in page and "<script src=\"http" not in page
    out = write_report(report, tmp_path / "aar.html")
    assert out.read_text(encoding="utf-8") == page
    assert write_report(report, tmp_path / "aar.md").read_text(encoding="utf-8") == md


# ---------------------------------------------------------------- a large generated scenario

ADDRESSES = ["广州市天河区", "广州市越秀区", "深圳市福田区", "深圳市南山区", "佛山市禅城区", "东莞市", "珠海市香洲区",
             "汕头市金平区"]


def generated(n_incidents: int, per_incident: int) -> dict:
    events = []
    for i in range(n_incidents):
        key, t0 = f"I{i}", i * 60
        events.append({"at": t0, "kind": "report", "incident": key, "address": ADDRESSES[i % len(ADDRESSES)],
                       "type": "fire", "casualties": {"serious_injuries": 1}})
        for j in range(per_incident - 3):
            if j % 4 == 0:
                events.append({"at": t0 + 10 + j, "kind": "update", "incident": key,
                               "casualties": {"serious_injuries": 1 + j // 4}})
            else:
                events.append({"at": t0 + 10 + j, "kind": "note", "incident": key, "text": f"进展 {j}"})
        events.append({"at": t0 + 40, "kind": "alert", "incident": key, "radius_m": 500, "instruction": "远离"})
        events.append({"at": t0 + 3600, "kind": "close", "incident": key})
    return {"format": 1, "name": "生成的千条事件演练", "start": "2026-01-01T08:00:00+08:00", "events": events}


@pytest.mark.slow
def test_a_generated_1000_event_scenario_replays(tmp_path, capsys):
    p = tmp_path / "big.yaml"
    p.write_text(yaml.safe_dump(generated(50, 20), allow_unicode=True), encoding="utf-8")
    began = time.perf_counter()
    sc = drills.load_scenario(p)
    loaded = time.perf_counter()
    report = run(sc)
    done = time.perf_counter()
    assert len(sc.events) == 1000
    assert not report["errors"] and len(report["incidents"]) == 50
    assert report["deliveries"] == {"live": 0, "exercise": 50}
    assert all(i["closed_at_s"] is not None for i in report["incidents"].values())
    with capsys.disabled():
        print(f"\n1000-event scenario: load {loaded - began:.2f} s, replay {done - loaded:.2f} s")


def test_an_address_not_found_is_listed_and_the_drill_goes_on(tmp_path):
    p = tmp_path / "s.yaml"
    p.write_text("format: 1\nname: x\nstart: '2026-03-14T09:00:00+08:00'\nevents:\n"
                 "  - {at: 0, kind: report, incident: X, address: 火星市不存在路, type: fire}\n"
                 "  - {at: 0, kind: report, incident: F, address: 深圳市福田区景田路, type: fire}\n"
                 "  - {at: 60, kind: close, incident: X}\n", encoding="utf-8")
    report = run(drills.load_scenario(p))
    assert [e["event"] for e in report["errors"]] == [1, 3]
    assert "火星市不存在路" in report["errors"][0]["error"]
    assert list(report["incidents"]) == ["F"] and drills.report_exit_code(report) == 1
