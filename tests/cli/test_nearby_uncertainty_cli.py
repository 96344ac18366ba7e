"""`yzt nearby --uncertainty-m`: the answer says approximate (JSON and text) and cameras cover the circle."""
from __future__ import annotations

import json

from command.cli.main import main

HUMEN = "113.67306,22.81899"    # 东莞市虎门镇's township point


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    cap = capsys.readouterr()
    return code, cap.out, cap.err


def test_json_says_approximate_and_cameras_cover_the_circle(capsys):
    code, out, err = run(capsys, "nearby", "--point", HUMEN, "--layer", "camera", "-k", "5",
                         "--uncertainty-m", "6000", "--json")
    assert code == 0, err
    d = json.loads(out)
    assert d["approximate"] is True and d["uncertainty_m"] == 6000
    items = d["items"]
    assert 5 < len(items) <= 50
    assert all(i["approximate"] is True and i["distance_uncertainty_m"] == 6000 for i in items)
    assert max(i["distance_m"] for i in items) > 4000    # not only the cameras next to the point
    dist = [i["distance_m"] for i in items]
    assert dist == sorted(dist)


def test_without_uncertainty_the_answer_is_unchanged_and_not_approximate(capsys):
    code, out, err = run(capsys, "nearby", "--point", HUMEN, "--layer", "camera", "-k", "5", "--json")
    assert code == 0, err
    d = json.loads(out)
    assert d["approximate"] is False and len(d["items"]) == 5
    assert not any("approximate" in i for i in d["items"])


def test_text_says_approximate_with_the_radius(capsys):
    code, out, err = run(capsys, "nearby", "--point", HUMEN, "--layer", "hospital", "-k", "3",
                         "--uncertainty-m", "2500")
    assert code == 0, err
    assert "approximate" in out and "2,500 m" in out and "in_uncertainty_area" in out
    code, out, err = run(capsys, "nearby", "--point", HUMEN, "--layer", "hospital", "-k", "3")
    assert code == 0 and "approximate" not in out


def test_a_negative_uncertainty_is_refused_with_exit_2(capsys):
    code, out, err = run(capsys, "nearby", "--point", HUMEN, "--layer", "camera", "--uncertainty-m", "-5")
    assert code == 2 and "uncertainty" in err and not out
