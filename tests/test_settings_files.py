"""The product's YAML files are read one way (settings.read_yaml / validated): one message shape, in the
error class of the package that asked, for the settings file, the duty rules and a drill scenario alike."""
from __future__ import annotations

import pytest

import settings as S
from command.errors import ScenarioError, SessionError
from command.response import group


def test_one_shape_for_every_file(tmp_path, monkeypatch):
    bad = tmp_path / "yzt.yaml"
    bad.write_text("two_person_levels: [V]\n", encoding="utf-8")
    monkeypatch.setenv("YZT_CONFIG", str(bad))
    with pytest.raises(S.SettingsError, match=r"^settings file .*yzt.yaml: two_person_levels.0: input should be"):
        S.load_settings()
    rules = tmp_path / "command" / "duty_rules.yaml"
    rules.parent.mkdir()
    real = (S.ROOT / "data" / "command" / "duty_rules.yaml").read_text(encoding="utf-8")
    rules.write_text(real + "surprise: 1\n", encoding="utf-8")
    line = real.count("\n") + 1
    with pytest.raises(SessionError, match=rf"^duty rules .*duty_rules.yaml: line {line}: surprise: unknown key$"):
        group.rules(tmp_path)


@pytest.mark.parametrize("text, fragment", [
    ("a: 1\na: 2\n", "line 2: duplicate key 'a'"),
    ("a: &x [*x]\n", "alias refers to a node that contains it"),
    ("a: [\n", "not valid YAML"),
    ("d: 2024-02-30\n", "a value cannot be read"),
])
def test_hostile_files_are_one_line_in_the_callers_error(tmp_path, text, fragment):
    p = tmp_path / "f.yaml"
    p.write_text(text, encoding="utf-8")
    for error in (S.SettingsError, SessionError, ScenarioError):
        with pytest.raises(error, match=fragment) as e:
            S.read_yaml(p, what="file", error=error)
        assert "\n" not in str(e.value) and str(p) in str(e.value)


def test_a_file_too_big_is_refused_unread(tmp_path):
    p = tmp_path / "big.yaml"
    p.write_bytes(b"a: 1\n" * 10)
    with pytest.raises(SessionError, match="over the 20-byte limit"):
        S.read_yaml(p, what="duty rules", error=SessionError, max_bytes=20)
