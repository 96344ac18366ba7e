"""No import circle between the trainer's page and playback: playback imports nothing of the page (neither at
the top nor inside a function); what both need lives in command.drills (examples, who is a trainer)."""
from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def imported(path: Path) -> set[str]:
    """Every module ``path`` imports anywhere in its text (``from a import b`` counts as a and a.b)."""
    out: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            out.add(node.module)
            out |= {f"{node.module}.{a.name}" for a in node.names}
    return out


def test_playback_does_not_import_the_trainers_page():
    mods = imported(ROOT / "command" / "dashboard" / "playback.py")
    assert "command.dashboard.trainer" not in mods
    assert "command.drills.exercise.example_scenarios" in mods and "command.drills.trainers" in mods


def test_the_trainers_page_shows_playback_and_takes_the_examples_from_the_drills_package():
    from command.dashboard import playback, trainer
    from command.drills.exercise import example_scenarios
    assert "command.dashboard.playback" in imported(ROOT / "command" / "dashboard" / "trainer.py")
    assert trainer.examples() == example_scenarios() and example_scenarios()
    assert all(p.suffix in (".yaml", ".yml", ".json") for p in example_scenarios().values())
    assert playback.PREFIX == "trainer-pb"
