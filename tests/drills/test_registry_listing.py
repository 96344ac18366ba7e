"""Which exercise a viewer sees is asked on every dashboard request: the registry lists the exercises folder
again only when it may have changed (its mtime moved, the last listing was too close to that change, or a
folder was still waiting for its meta.json), and an exercise started by another worker is found at once."""
from __future__ import annotations

import os
from pathlib import Path

from command.drills import registry
from exercise_helpers import BASIC, scenario_text
from settings import load_settings


def _age(folder: Path) -> None:
    """The folder's mtime an hour back: its last listing is then long past any racy window."""
    old = os.stat(folder).st_mtime - 3600
    os.utime(folder, (old, old))


def _count_listings(monkeypatch) -> list[Path]:
    seen: list[Path] = []
    real = Path.iterdir
    monkeypatch.setattr(Path, "iterdir", lambda self: seen.append(self) or real(self))
    return seen


def test_an_unchanged_folder_is_not_listed_again_and_another_workers_start_is_seen_at_once(wall, monkeypatch):
    s = load_settings()
    first = registry.Exercises(s, wall=wall, conduct=False)
    other = registry.Exercises(s, wall=wall, conduct=False)           # a second worker over the same var_dir
    try:
        ex = first.start(scenario_text(BASIC), speed=60, players=["cmd1"], trainer="tr1")
        assert other.of_user("cmd1").id == ex.id                      # listed again: the folder changed
        _age(first.root)
        assert other.of_user("cmd1").id == ex.id                      # listed once more (mtime moved)
        listings = _count_listings(monkeypatch)
        for _ in range(5):
            assert other.of_user("cmd1").id == ex.id and other.of_user("tr1").id == ex.id
        assert listings == []                                         # one stat each, no listing
        again = first.start(scenario_text(BASIC, name="第二场"), speed=60, players=["cmd2"], trainer="tr2")
        assert other.of_user("cmd2").id == again.id and other.of_user("nobody") is None
        assert listings                                               # the folder changed: listed
        ex.end(reason="done")
        assert other.of_user("cmd1") is None                          # its end read from the log
    finally:
        first.close()
        other.close()


def test_a_listing_within_the_racy_window_is_not_trusted(wall, monkeypatch):
    s = load_settings()
    first = registry.Exercises(s, wall=wall, conduct=False)
    other = registry.Exercises(s, wall=wall, conduct=False)
    try:
        first.start(scenario_text(BASIC), speed=60, players=["cmd1"], trainer="tr1")
        other.of_user("cmd1")                                          # listed just after the change
        listings = _count_listings(monkeypatch)
        other.of_user("cmd1")
        assert listings == [other.root]                               # too soon to trust: listed again
    finally:
        first.close()
        other.close()


def test_a_folder_listed_before_its_meta_json_is_looked_at_again(wall, monkeypatch):
    s = load_settings()
    first = registry.Exercises(s, wall=wall, conduct=False)
    try:
        ex = first.start(scenario_text(BASIC), speed=60, players=["cmd1"], trainer="tr1")
        meta = first.root / ex.id / "meta.json"
        hidden = meta.with_name("meta.json.away")
        meta.rename(hidden)                                            # as another worker's start, mid-way
        _age(first.root)                  # the exercises folder's mtime is old and will not move again
        late = registry.Exercises(s, wall=wall, conduct=False)
        try:
            assert late.of_user("cmd1") is None
            hidden.rename(meta)                                        # the start completes
            assert late.of_user("cmd1").id == ex.id
        finally:
            late.close()
    finally:
        first.close()


def test_a_file_where_the_folder_should_be_is_no_exercise_and_no_error(tmp_path, wall):
    s = load_settings(var_dir=tmp_path / "var")
    (tmp_path / "var").mkdir()
    (tmp_path / "var" / "exercises").write_text("not a folder")
    book = registry.Exercises(s, wall=wall, conduct=False)
    try:
        assert book.all() == [] and book.of_user("cmd1") is None
    finally:
        book.close()
