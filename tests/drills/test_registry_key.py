"""The registry of a var_dir: one per folder whatever its spelling, found without resolving the path again."""
from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

from command.drills import registry


def test_two_spellings_of_one_folder_share_one_registry_and_the_path_is_resolved_once(tmp_path, monkeypatch):
    (tmp_path / "var").mkdir()
    (tmp_path / "link").symlink_to(tmp_path / "var")
    plain, dotted, linked = (SimpleNamespace(var_dir=p) for p in
                             (tmp_path / "var", f"{tmp_path}/./var", tmp_path / "link"))
    try:
        book = registry.registry(plain)
        assert registry.registry(dotted) is book and registry.registry(linked) is book
        resolved = []
        real = Path.resolve
        monkeypatch.setattr(Path, "resolve", lambda self, *a, **kw: resolved.append(self) or real(self, *a, **kw))
        for _ in range(3):
            assert registry.registry(plain) is book
        assert resolved == []
        other = tmp_path / "other"
        other.mkdir()
        assert registry.registry(SimpleNamespace(var_dir=other)) is not book
    finally:
        registry.forget(plain)
        registry.forget(SimpleNamespace(var_dir=tmp_path / "other"))
    assert registry.registry(plain) is not book          # forgotten under the same key
    registry.forget(plain)


def test_a_relative_var_dir_follows_the_working_directory(tmp_path, monkeypatch):
    for d in ("a", "b"):
        (tmp_path / d / "var").mkdir(parents=True)
    rel = SimpleNamespace(var_dir=Path("var"))
    monkeypatch.chdir(tmp_path / "a")
    first = registry.registry(rel)
    monkeypatch.chdir(tmp_path / "b")
    try:
        assert registry.registry(rel) is not first
    finally:
        registry.forget(rel)
        monkeypatch.chdir(tmp_path / "a")
        registry.forget(rel)
