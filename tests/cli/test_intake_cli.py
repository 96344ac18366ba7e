"""`yzt intake TEXT` and `yzt intake --batch FILE` (contracts/cli.md)."""
from __future__ import annotations

import json

from command.cli.main import main


def run(capsys, *argv: str):
    code = main(list(argv))
    cap = capsys.readouterr()
    return code, cap.out, cap.err


def test_intake_json_has_the_contract_shape(capsys):
    code, body, err = run(capsys, "intake", "广州市天河区体育西路191号 写字楼火灾 5人被困", "--json")
    assert code == 0, err
    d = json.loads(body)
    assert {"type", "casualties", "place", "location", "level"} <= set(d)
    assert d["type"] == "fire" and d["level"] == "IV" and d["place"] == "广州市天河区体育西路191号"
    assert d["casualties"] == {"deaths": None, "serious_injuries": None, "injured": None, "missing": None,
                               "trapped": 5}
    assert d["location"]["district_adcode"] == "440106" and d["location"]["uncertainty_m"] > 0


def test_intake_text_says_unknown_where_the_words_say_nothing(capsys):
    code, body, _ = run(capsys, "intake", "东莞市虎门镇一厂房起火")
    assert code == 0
    assert "deaths: unknown" in body and "trapped: unknown" in body and "± " in body


def test_intake_batch_one_line_out_per_line_in_and_goes_on_after_a_refusal(tmp_path, capsys):
    f = tmp_path / "calls.txt"
    f.write_text("东莞市虎门镇起火\n\n十余人受伤\n", encoding="utf-8")
    code, body, _ = run(capsys, "intake", "--batch", str(f))
    assert code == 0
    rows = [json.loads(x) for x in body.splitlines()]
    assert len(rows) == 3 and "error" in rows[1]
    assert rows[0]["location"]["precision"] == "township" and rows[2]["casualties"]["injured"] == 10


def test_intake_refusal_is_one_line_and_exit_2(capsys):
    code, body, err = run(capsys, "intake", "  ")
    assert code == 2 and body == "" and len(err.strip().splitlines()) == 1


def test_intake_needs_text_or_batch(capsys):
    code, _, _ = run(capsys, "intake")
    assert code == 2


def test_incident_report_from_the_call_text_alone(capsys):
    code, body, err = run(capsys, "incident", "report", "--text",
                          "广州市天河区体育西路191号 写字楼火灾 3人死亡 5人被困", "--json")
    assert code == 0, err
    d = json.loads(body)
    assert d["type"] == "fire" and d["location"]["district_adcode"] == "440106"
    assert d["grade"]["level"] == "III"                 # 3 deaths read from the words
    assert d["location"]["uncertainty_m"] > 0           # carried through the timeline


def test_incident_report_given_values_win_over_the_text(capsys):
    code, body, err = run(capsys, "incident", "report", "--text", "广州市天河区体育西路 写字楼火灾 3人死亡",
                          "--type", "gas_explosion", "--deaths", "0", "--json")
    assert code == 0, err
    d = json.loads(body)
    assert d["type"] == "gas_explosion" and d["grade"]["level"] == "IV"


def test_incident_report_text_without_a_type_is_refused(capsys):
    code, _, err = run(capsys, "incident", "report", "--text", "广州市天河区 有人受伤")
    assert code == 2 and "--type" in err
