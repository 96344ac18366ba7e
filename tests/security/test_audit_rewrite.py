"""Finding: `yzt audit verify` said OK after deleting the last entries and resetting sqlite_sequence, after
editing an event and recomputing the whole chain (the hash had no key), after inserting an event with no
audit entry (which the service honoured), after users.role was changed in SQL, a token row was added, or a
queued warning's text_zh or cap_xml was edited.

Each test below does what someone holding only the database file could do, then asks verify (and the
service) what they make of it."""
from __future__ import annotations

import hashlib
import json
import sqlite3
from datetime import datetime

import pytest
import typer

from command.alerts.outbox import Outbox, OutgoingAlert
from command.cli import output
from command.cli.admin import audit_app
from command.response.service import ResponseService
from command.response.timeline import BEIJING, VirtualClock
from command.security.audit import GENESIS, AuditLog, canonical, entry_hash
from command.security.auth import Principal, Tokens, Users
from command.store.sqlite import Store
from incidents.model import IncidentReport
from settings import load_settings

START = datetime(2026, 3, 14, 9, 0, tzinfo=BEIJING)
CHANNELS = [{"name": "outbox-exercise", "kind": "outbox", "mode": "exercise"}]
OFFICER = Principal("王五", "officer", "user", "10.0.0.5")


@pytest.fixture
def db(tmp_path):
    path = tmp_path / "var" / "yzt.db"
    store = Store(path)
    st = load_settings(channels=CHANNELS)
    svc = ResponseService(store, settings=st, clock=VirtualClock(START), outbox=Outbox(store, st), exercise=True)
    s = svc.report(IncidentReport(type="fire", address="广州市天河区天河路"), actor=OFFICER)
    svc.add_task(s.id, "消防", "出动两车", actor=OFFICER)
    users = Users(store)
    users.add("赵六", "viewer", "correct-horse-battery")
    Tokens(store).issue("119", "officer")
    assert AuditLog(store).verify().ok, AuditLog(store).verify().line()
    yield path, store, svc, s.id
    store.close()


def _sql(path, *statements, params=()):
    con = sqlite3.connect(path)
    for name in ("audit_no_update", "audit_no_delete", "events_no_update", "events_no_delete"):
        con.execute(f"DROP TRIGGER IF EXISTS {name}")
    for s in statements:
        con.execute(s, params) if params else con.execute(s)
    con.commit()
    con.close()


def _verify(store):
    return AuditLog(store).verify()


def test_deleting_the_tail_and_resetting_the_sequence_is_found(db):
    path, store, _, _ = db
    last = store.audit_numbered()
    _sql(path, f"DELETE FROM audit WHERE id > {last - 3}",
         f"UPDATE sqlite_sequence SET seq = {last - 3} WHERE name = 'audit'")
    report = _verify(store)
    assert not report.ok and "gone" in report.reason
    assert report.first_bad == last - 2


def test_a_whole_chain_recomputed_after_an_edit_is_found(db):
    path, store, _, iid = db
    seq = store.events(iid)[0].seq
    _sql(path, "UPDATE events SET payload = json_set(payload, '$.description', '无事') WHERE seq = ?",
         params=(seq,))
    # the attacker knows the documented recipe: recompute every payload digest and every hash
    con = sqlite3.connect(path)
    con.row_factory = sqlite3.Row
    payload = con.execute("SELECT payload FROM events WHERE seq = ?", (seq,)).fetchone()[0]
    rows = [dict(r) for r in con.execute("SELECT * FROM audit ORDER BY id")]
    con.close()
    prev, prev_mac, fixed = GENESIS, GENESIS, []
    for r in rows:
        detail = json.loads(r["detail"])
        if detail.get("seq") == seq and r["action"].startswith("event."):
            detail["sha256"] = hashlib.sha256(payload.encode()).hexdigest()
        entry = dict(r, detail=detail)
        h = entry_hash(prev, entry)
        fake_mac = hashlib.sha256((prev_mac + canonical({k: entry[k] for k in
                                   ("id", "at", "actor", "action", "target", "detail", "source")})).encode()).hexdigest()
        fixed.append((json.dumps(detail, ensure_ascii=False, sort_keys=True), prev, h, prev_mac, fake_mac, r["id"]))
        prev, prev_mac = h, fake_mac
    cols = {c[1] for c in sqlite3.connect(path).execute("PRAGMA table_info(audit)")}
    for detail, p, h, pm, m, i in fixed:
        if "mac" in cols:
            _sql(path, "UPDATE audit SET detail = ?, prev_hash = ?, hash = ?, prev_mac = ?, mac = ? WHERE id = ?",
                 params=(detail, p, h, pm, m, i))
        else:
            _sql(path, "UPDATE audit SET detail = ?, prev_hash = ?, hash = ? WHERE id = ?", params=(detail, p, h, i))
    report = _verify(store)
    assert not report.ok and "HMAC" in report.reason


def test_an_event_without_its_audit_entry_is_reported_and_ignored(db):
    path, store, svc, iid = db
    before = svc.get(iid)
    assert before.state == "open"
    _sql(path, "INSERT INTO events (incident_id, kind, at, payload, actor) VALUES (?, 'Closed', ?, ?, '局长')",
         params=(iid, "2026-03-14T09:30:00+08:00", json.dumps({"reason": "无事"})))
    report = _verify(store)
    assert not report.ok and "has no audit entry" in report.reason
    fresh = ResponseService(store, settings=svc.settings, clock=VirtualClock(START), outbox=svc.outbox,
                            exercise=True)
    assert fresh.get(iid).state == "open"                  # the service ignores what was never audited
    assert svc.get(iid).state == "open"
    assert len(fresh.get(iid).events) == len(before.events)


def test_an_event_with_a_forged_audit_entry_is_ignored_too(db):
    path, store, svc, iid = db
    _sql(path, "INSERT INTO events (incident_id, kind, at, payload, actor) VALUES (?, 'Closed', ?, ?, '局长')",
         params=(iid, "2026-03-14T09:30:00+08:00", json.dumps({"reason": "无事"})))
    con = sqlite3.connect(path)
    seq = con.execute("SELECT max(seq) FROM events").fetchone()[0]
    cols = [c[1] for c in con.execute("PRAGMA table_info(audit)")]
    con.close()
    values = {"at": "2026-03-14T01:30:00.000+00:00", "actor": "局长", "action": "event.Closed", "target": iid,
              "detail": json.dumps({"seq": seq, "sha256": "0" * 64}), "source": "local", "prev_hash": "x",
              "hash": "y", "prev_mac": "0" * 64, "mac": "f" * 64, "event_seq": seq}
    use = [c for c in cols if c in values]
    _sql(path, f"INSERT INTO audit ({', '.join(use)}) VALUES ({', '.join('?' * len(use))})",
         params=tuple(values[c] for c in use))
    assert not _verify(store).ok
    fresh = ResponseService(store, settings=svc.settings, clock=VirtualClock(START), outbox=svc.outbox,
                            exercise=True)
    assert fresh.get(iid).state == "open"


def test_a_role_changed_in_sql_is_found(db):
    path, store, _, _ = db
    _sql(path, "UPDATE users SET role = 'admin' WHERE name = '赵六'")
    report = _verify(store)
    assert not report.ok and "users row '赵六'" in report.reason


def test_a_token_row_added_in_sql_is_found(db):
    path, store, _, _ = db
    con = sqlite3.connect(path)
    cols = [c[1] for c in con.execute("PRAGMA table_info(tokens)")]
    con.close()
    values = {"system": "evil", "role": "commander", "token_sha256": hashlib.sha256(b"yzt_x").hexdigest(),
              "created_at": "2026-01-01T00:00:00+00:00", "scope": "440000",
              "expires_at": "2030-01-01T00:00:00+00:00"}
    use = [c for c in cols if c in values]
    _sql(path, f"INSERT INTO tokens ({', '.join(use)}) VALUES ({', '.join('?' * len(use))})",
         params=tuple(values[c] for c in use))
    report = _verify(store)
    assert not report.ok and "tokens row 'evil' has no audit entry" in report.reason


def _queue(svc, iid):
    """A real warning drafted by the service, queued in the outbox and not yet sent (no worker runs)."""
    draft = svc.draft_alert(iid, actor=OFFICER, radius_m=500, instruction_zh="请远离")
    outbox = Outbox(svc.store, svc.settings)
    outbox.enqueue(OutgoingAlert(identifier=draft.identifier, incident_id=iid, status=draft.status,
                                 msg_type=draft.msg_type, cap_xml=draft.cap_xml, headline_zh=draft.headline_zh,
                                 text_zh=draft.text_zh, area_desc=draft.area_desc), list(draft.channels))
    return draft.identifier, outbox


@pytest.mark.parametrize("column,value", [("text_zh", "【紧急】全市撤离"), ("cap_xml", None)])
def test_a_queued_warning_edited_in_sql_is_found_and_never_sent(db, column, value):
    path, store, svc, iid = db
    ident, outbox = _queue(svc, iid)
    assert _verify(store).ok
    if value is None:                            # a cap_xml that still parses, with the public text changed
        value = store.alert(ident)["cap_xml"].replace("请远离", "请立即撤离全市")
    _sql(path, f"UPDATE alerts SET {column} = ? WHERE identifier = ?", params=(value, ident))
    report = _verify(store)
    assert not report.ok and f"alerts row '{ident}'" in report.reason
    outbox.run_until_idle(timeout_s=10)
    rows = store.deliveries(ident)
    assert rows and all(r["status"] == "dead" for r in rows), rows
    assert "changed after it was queued" in rows[0]["last_error"]


def test_an_untouched_queued_warning_is_sent(db):
    path, store, svc, iid = db
    ident, outbox = _queue(svc, iid)
    outbox.run_until_idle(timeout_s=10)
    assert {r["status"] for r in store.deliveries(ident)} == {"sent"}
    assert _verify(store).ok


def test_a_delivery_marked_sent_in_sql_is_found(db):
    path, store, svc, iid = db
    ident, _ = _queue(svc, iid)
    _sql(path, "UPDATE deliveries SET status = 'sent', receipt = 'fake' WHERE identifier = ?", params=(ident,))
    report = _verify(store)
    assert not report.ok and "deliveries row" in report.reason


def test_the_key_lives_outside_the_database_with_mode_0600(db):
    path, store, _, _ = db
    key_file = path.parent / "audit_key"
    assert key_file.is_file() and (key_file.stat().st_mode & 0o777) == 0o600
    raw = path.read_bytes()
    assert key_file.read_text().strip().encode() not in raw
    anchor = path.with_name(path.name + ".audit-anchor")
    tips = [json.loads(x) for x in anchor.read_text().splitlines()]
    assert tips[-1]["id"] == store.audit_numbered()


def test_verify_from_the_cli_names_the_problem_in_one_line(db, capsys, monkeypatch):
    path, store, _, _ = db
    monkeypatch.setenv("YZT_DATABASE", str(path))
    app = typer.Typer()
    app.add_typer(audit_app, name="audit")
    assert output.run_guarded(typer.main.get_command(app), ["audit", "verify"]) == 0
    _sql(path, "UPDATE users SET role = 'admin' WHERE name = '赵六'")
    capsys.readouterr()
    assert output.run_guarded(typer.main.get_command(app), ["audit", "verify"]) == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "users row '赵六'" in err
