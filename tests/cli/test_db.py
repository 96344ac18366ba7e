"""yzt db backup / restore on the backend under test: the copy is one moment of the database, a restore
brings that moment back and ``yzt audit verify`` accepts the restored chain."""
from __future__ import annotations

import json

import pytest

from command.cli.main import main
from command.security.auth import Users
from command.store import open_store
from settings import get_settings


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    cap = capsys.readouterr()
    return code, cap.out, cap.err


def seed() -> list:
    store = open_store(get_settings())
    try:
        store.append_events("GD-1", [("Reported", {"地址": "天河路"}, "t1", "张三"), ("Noted", {"n": 1}, "t2", "张三")])
        Users(store).add("李四", "officer", "a long enough pass phrase 1")
        return store.events()
    finally:
        store.close()


def current_events() -> list:
    store = open_store(get_settings())
    try:
        return store.events()
    finally:
        store.close()


def test_a_backup_restored_over_the_database_verifies_and_holds_the_same_events(tmp_path, capsys):
    before = seed()
    backup = tmp_path / "backups" / "yzt.bak"
    code, out, err = run(capsys, "db", "backup", str(backup), "--json")
    assert code == 0, err
    assert json.loads(out)["bytes"] > 0 and backup.is_file()
    code, _, err = run(capsys, "db", "backup", str(backup))
    assert code == 2 and "already exists" in err                     # never overwrites a backup
    code, _, err = run(capsys, "db", "restore", str(backup))
    assert code == 2 and "--replace" in err and len(err.strip().splitlines()) == 1
    code, out, err = run(capsys, "db", "restore", str(backup), "--replace")
    assert code == 0 and "yzt audit verify" in out, err
    assert current_events() == before
    code, out, err = run(capsys, "audit", "verify")
    assert code == 0 and out.startswith("audit log ok"), (out, err)


@pytest.mark.sqlite_only
def test_a_lost_sqlite_file_comes_back_from_its_backup(tmp_path, capsys):
    before = seed()
    backup = tmp_path / "yzt.bak"
    assert run(capsys, "db", "backup", str(backup))[0] == 0
    db = get_settings().database_path
    for leftover in (db, db.with_name(db.name + "-wal"), db.with_name(db.name + "-shm")):
        leftover.unlink(missing_ok=True)                              # the disk that held it is gone
    code, out, err = run(capsys, "db", "restore", str(backup))
    assert code == 0, err
    assert current_events() == before
    assert run(capsys, "audit", "verify")[0] == 0


@pytest.mark.sqlite_only
def test_restoring_a_file_that_is_not_a_backup_is_refused_in_one_line(tmp_path, capsys):
    junk = tmp_path / "notes.bak"
    junk.write_text("不是备份" * 500, encoding="utf-8")
    code, _, err = run(capsys, "db", "restore", str(junk))
    assert code == 2 and "notes.bak: not a backup" in err and len(err.strip().splitlines()) == 1
