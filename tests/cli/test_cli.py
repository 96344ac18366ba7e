"""The `yzt` CLI contract (../shared/contracts/cli.md) on the real bundled data."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from command.cli.main import main

ROOT = Path(__file__).resolve().parents[2]


def run(capsys, *argv: str) -> tuple[int, dict | str, str]:
    code = main(list(argv))
    cap = capsys.readouterr()
    body: dict | str = cap.out
    if "--json" in argv and cap.out.strip():
        body = json.loads(cap.out)
    return code, body, cap.err


def test_locate_text_gives_district_and_honest_precision(capsys):
    code, d, err = run(capsys, "locate", "广州市天河区天河路 商场燃气爆炸 3人重伤", "--json")
    assert code == 0, err
    assert d["district_adcode"] == "440106"
    assert d["crs"] == "wgs84"
    assert d["precision"] in {"district", "road"}
    assert 0 < d["confidence"] <= 1


def test_locate_point_in_gcj02_is_converted_and_reverse_located(capsys):
    code, d, err = run(capsys, "locate", "--point", "113.3245,23.1365", "--crs", "gcj02", "--json")
    assert code == 0, err
    assert d["district_adcode"] == "440106"
    assert d["precision"] == "point"
    # GCJ-02 is shifted several hundred metres from WGS84 in Guangdong: the answer must be the WGS84 one
    assert abs(d["lon"] - 113.3245) > 0.003


def test_locate_refuses_outside_guangdong_with_one_line_and_exit_2(capsys):
    code, _, err = run(capsys, "locate", "北京市朝阳区建国路88号", "--json")
    assert code == 2
    assert err.startswith("yzt: ") and err.count("\n") == 1


def test_locate_refuses_out_of_range_point(capsys):
    code, _, err = run(capsys, "locate", "--point", "200,23", "--json")
    assert code == 2 and "lon" in err


def test_locate_batch_goes_on_after_a_bad_line(capsys, tmp_path):
    f = tmp_path / "calls.txt"
    f.write_text("深圳市福田区景田路\n火星市奥林匹斯山\n广州市越秀区\n", encoding="utf-8")
    code, out, err = run(capsys, "locate", "--batch", str(f))
    assert code == 0, err
    lines = [json.loads(x) for x in out.splitlines()]
    assert len(lines) == 3
    assert lines[0]["district_adcode"] == "440304"
    assert "error" in lines[1]
    assert lines[2]["district_adcode"] == "440104"


def test_grade_fires_the_highest_criterion(capsys):
    code, d, err = run(capsys, "grade", "--type", "fire", "--deaths", "1", "--serious-injuries", "60", "--json")
    assert code == 0, err
    assert d["level"] == "II" and d["name"] == "重大" and d["colour"] == "橙"
    assert d["cap_severity"] == "Severe"
    assert set(d["rule"]) >= {"law", "article", "criterion"}


def test_grade_unknown_type_refused(capsys):
    code, _, err = run(capsys, "grade", "--type", "alien_invasion", "--json")
    assert code == 2 and "alien_invasion" in err


def test_nearby_sorted_in_metres_and_marked_synthetic(capsys):
    code, d, err = run(capsys, "nearby", "--point", "114.0579,22.5431", "--layer", "hospital", "-k", "5",
                       "--json")
    assert code == 0, err
    assert d["layer"] == "hospital" and d["synthetic"] is True
    dist = [i["distance_m"] for i in d["items"]]
    assert len(dist) == 5 and dist == sorted(dist)
    assert all({"id", "name", "lon", "lat", "distance_m"} <= set(i) for i in d["items"])


def test_nearby_unknown_layer_refused(capsys):
    code, _, err = run(capsys, "nearby", "--point", "114.0579,22.5431", "--layer", "unicorns", "--json")
    assert code == 2 and "unicorns" in err


def test_layers_list_says_which_are_synthetic(capsys):
    code, d, err = run(capsys, "layers", "list", "--json")
    assert code == 0, err
    by_name = {x["name"]: x for x in d["layers"]}
    assert by_name["camera"]["synthetic"] is True and by_name["camera"]["rows"] >= 100_000
    assert by_name["shelter"]["synthetic"] is False and by_name["shelter"]["rows"] == 584
    assert all(x["crs"] == "wgs84" for x in d["layers"])


def test_layers_export_writes_geojson(capsys, tmp_path):
    target = tmp_path / "fire.geojson"
    code, _, err = run(capsys, "layers", "export", "fire_station", str(target), "--json")
    assert code == 0, err
    fc = json.loads(target.read_text(encoding="utf-8"))
    assert fc["type"] == "FeatureCollection" and len(fc["features"]) > 100


def test_drill_run_example_scenario_passes_its_expects(capsys, shared_dir):
    code, d, err = run(capsys, "drill", "run", str(shared_dir / "scenarios/futian-residential-fire.yaml"),
                       "--json")
    assert code == 0, err
    assert d["format"] == 1 and d["status"] == "Exercise"
    assert d["deliveries"]["live"] == 0
    assert all(c["passed"] for c in d["checks"])


def test_drill_run_refuses_a_malformed_file_with_exit_2(capsys, tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("format: 1\nname: x\nstart: '2026-01-01T00:00:00+08:00'\nevents:\n"
                   "  - at: 0\n    kind: explode\n    incident: A\n", encoding="utf-8")
    code, _, err = run(capsys, "drill", "run", str(bad), "--json")
    assert code == 2
    assert "bad.yaml" in err and "kind" in err


def test_missing_file_is_a_clear_refusal(capsys, tmp_path):
    code, _, err = run(capsys, "locate", "--batch", str(tmp_path / "nope.txt"))
    assert code == 2 and "nope.txt" in err


def test_console_script_is_installed_and_answers_help():
    exe = Path(sys.executable).with_name("yzt")
    assert exe.exists(), "pip install -e . must install the yzt console command"
    r = subprocess.run([str(exe), "--help"], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0 and "locate" in r.stdout


FROZEN_AT_EXIT = r"""
import atexit, gc, os, sys
atexit.register(lambda: os.write(2, f"frozen={gc.get_freeze_count()}\n".encode()))
sys.argv[0] = "yzt"
from command.cli.main import main
main()
"""


def test_a_command_run_as_its_own_process_freezes_what_it_loaded_and_in_process_nothing(capsys, tmp_path):
    """`yzt` as a process keeps its loaded data out of the collector's passes (incidents.cache.freeze_loaded)
    and answers as before; main(argv) inside another program (these tests) leaves the collector alone."""
    import gc
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "YZT_VAR_DIR": str(tmp_path / "var"),
           "PYTHONPATH": str(ROOT)}
    r = subprocess.run([sys.executable, "-c", FROZEN_AT_EXIT, "locate", "广州市天河区天河路", "--json"], cwd=ROOT,
                       env=env, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    assert json.loads(r.stdout)["district_adcode"] == "440106"
    assert int(r.stderr.rsplit("frozen=", 1)[1]) > 100_000
    before = gc.get_freeze_count()
    code, body, _ = run(capsys, "locate", "广州市天河区天河路", "--json")
    assert code == 0 and body["district_adcode"] == "440106" and gc.get_freeze_count() == before
