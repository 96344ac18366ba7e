"""The audit log: every change of state chained by hash; `yzt audit verify` finds an edit or a deletion."""
from __future__ import annotations

import json
import sqlite3
from datetime import datetime

import pytest

pytestmark = pytest.mark.sqlite_only     # tampers with the SQLite file itself (PostgreSQL: tests/store)
import typer

from command.cli import output
from command.security.audit import GENESIS, AuditLog, canonical, entry_hash
from command.security.auth import Principal, Users
from command.cli.admin import audit_app
from command.errors import StoreError
from command.alerts.outbox import Outbox
from command.response.service import ResponseService
from helpers_store import new_store
from command.response.timeline import BEIJING, VirtualClock
from incidents.model import Casualties, IncidentReport
from settings import load_settings

START = datetime(2026, 3, 14, 9, 0, tzinfo=BEIJING)
CHANNELS = [{"name": "outbox-exercise", "kind": "outbox", "mode": "exercise"},
            {"name": "outbox-live", "kind": "outbox", "mode": "live"}]
OFFICER = Principal("王五", "officer", "user", "10.0.0.5")
COMMANDER = Principal("张指挥", "commander", "user", "10.0.0.6")
REPORT = IncidentReport(type="gas_explosion", address="广州市天河区天河路", casualties=Casualties(serious_injuries=3))


@pytest.fixture
def db(tmp_path):
    path = tmp_path / "var" / "yzt.db"
    store = new_store(path)
    st = load_settings(channels=CHANNELS, cap_org_code="101")     # an Actual warning needs the real org code
    svc = ResponseService(store, settings=st, clock=VirtualClock(START), outbox=Outbox(store, st))
    s = svc.report(REPORT, actor=OFFICER)
    svc.update(s.id, actor=OFFICER, casualties=Casualties(deaths=1, serious_injuries=5))
    draft = svc.draft_alert(s.id, actor=OFFICER, radius_m=800, instruction_zh="请远离商场")
    svc.send_alert(s.id, draft, actor=COMMANDER, confirm=True)
    svc.outbox.run_until_idle(timeout_s=30)          # send only queues; the outcome reaches the timeline after
    Users(store).add("赵六", "viewer")
    yield path, store
    store.close()


def _raw(path, *sql):
    con = sqlite3.connect(path)
    con.execute("DROP TRIGGER IF EXISTS audit_no_update")
    con.execute("DROP TRIGGER IF EXISTS audit_no_delete")
    con.execute("DROP TRIGGER IF EXISTS events_no_update")
    for s in sql:
        con.execute(s)
    con.commit()
    con.close()


def _verify_cli(capsys):
    code = output.run_guarded(typer.main.get_command(_app()), ["audit", "verify"])
    cap = capsys.readouterr()
    return code, cap.out, cap.err


def _app():
    app = typer.Typer()
    app.add_typer(audit_app, name="audit")
    return app


def test_every_event_is_audited_with_who_and_from_where_and_the_chain_holds(db):
    path, store = db
    log = AuditLog(store)
    entries = log.entries()
    events = store.events()
    audited = [e for e in entries if e["action"].startswith("event.")]
    assert [e["detail"]["seq"] for e in audited] == [e.seq for e in events]
    assert {e["action"] for e in audited} >= {"event.Reported", "event.Updated", "event.AlertDrafted",
                                             "event.AlertApproved", "event.AlertSent"}
    sent = next(e for e in audited if e["action"] == "event.AlertApproved")
    assert (sent["actor"], sent["source"]) == ("张指挥", "10.0.0.6")
    report = next(e for e in audited if e["action"] == "event.Reported")
    assert (report["actor"], report["source"], report["target"]) == ("王五", "10.0.0.5", events[0].incident_id)
    assert entries[-1]["action"] == "users.add" and entries[-1]["target"] == "赵六"
    assert entries[0]["prev_hash"] == GENESIS
    for before, after in zip(entries, entries[1:]):
        assert after["prev_hash"] == before["hash"] == entry_hash(before["prev_hash"], before)
    assert log.verify().ok and log.verify().entries == len(entries)


def test_the_hash_is_sha256_of_the_previous_hash_and_the_canonical_entry():
    import hashlib
    e = {"id": 1, "at": "t", "actor": "甲", "action": "a", "target": "x", "detail": {"b": 1, "a": [1]},
         "source": "cli"}
    assert canonical(e["detail"]) == '{"a":[1],"b":1}'
    want = hashlib.sha256((GENESIS + canonical(e)).encode()).hexdigest()
    assert entry_hash(GENESIS, e) == want


def test_the_database_refuses_to_edit_or_delete_an_entry(db):
    path, store = db
    con = sqlite3.connect(path)
    with pytest.raises(sqlite3.IntegrityError, match="append-only"):
        con.execute("UPDATE audit SET actor = 'x' WHERE id = 1")
    with pytest.raises(sqlite3.IntegrityError, match="append-only"):
        con.execute("DELETE FROM audit WHERE id = 1")
    con.close()


def test_an_edited_detail_is_named(db, capsys):
    path, store = db
    _raw(path, "UPDATE audit SET detail = json_set(detail, '$.role', 'admin') WHERE id = 3")
    report = AuditLog(store).verify()
    assert not report.ok and report.first_bad == 3 and "edited" in report.reason
    code, out, err = _verify_cli(capsys)
    assert code == 1 and err.strip() == f"yzt: audit log broken at entry 3: {report.reason}"
    assert len(err.strip().splitlines()) == 1


def test_an_edited_actor_is_named(db):
    path, store = db
    _raw(path, "UPDATE audit SET actor = '无名氏' WHERE id = 2")
    report = AuditLog(store).verify()
    assert (report.ok, report.first_bad) == (False, 2)


def test_a_deleted_entry_is_found_as_a_gap(db, capsys):
    path, store = db
    _raw(path, "DELETE FROM audit WHERE id = 4")
    report = AuditLog(store).verify()
    assert not report.ok and report.first_bad == 5
    assert report.reason == "entry 4 before it is missing (deleted)"
    assert _verify_cli(capsys)[0] == 1


def test_deleting_the_newest_entries_is_found_too(db):
    path, store = db
    last = store.audit_numbered()
    _raw(path, f"DELETE FROM audit WHERE id >= {last - 1}")
    report = AuditLog(store).verify()
    assert not report.ok and report.first_bad == last - 1 and "gone" in report.reason


def test_an_event_edited_behind_the_logs_back_is_found(db):
    path, store = db
    seq = store.events()[0].seq
    _raw(path, f"UPDATE events SET payload = json_set(payload, '$.description', '无事') "
               f"WHERE seq = {seq}")
    report = AuditLog(store).verify()
    assert not report.ok and f"event seq {seq} was changed" in report.reason


def test_a_clean_log_verifies_from_the_cli(db, capsys):
    code, out, _ = _verify_cli(capsys)
    assert code == 0 and out.startswith("audit log ok:")


@pytest.mark.sqlite_only
def test_report_writes_all_its_events_in_one_transaction(tmp_path):
    """A report is many events (report, group, conference): none may be stored without the rest."""
    store = new_store(tmp_path / "one.db")
    records = [("Reported", {"a": 1}, "t", "甲"), ("MemberJoined", {"b": object()}, "t", "甲")]
    with pytest.raises(StoreError, match="not JSON"):
        store.append_events("GD-1", records)
    assert store.events() == [] and store.audit_entries() == []
    con = sqlite3.connect(tmp_path / "one.db")
    con.execute("CREATE TRIGGER fail_second BEFORE INSERT ON events WHEN NEW.kind = 'Boom' "
                "BEGIN SELECT RAISE(ABORT, 'boom'); END")
    con.commit()
    con.close()
    with pytest.raises(sqlite3.IntegrityError, match="boom"):
        store.append_events("GD-1", [("Reported", {}, "t", "甲"), ("Boom", {}, "t", "甲")])
    assert store.events() == [] and store.audit_entries() == []
    assert AuditLog(store).verify().ok
    store.close()


@pytest.mark.sqlite_only
def test_a_version_1_database_is_upgraded(tmp_path):
    path = tmp_path / "v1.db"
    new_store(path).close()
    con = sqlite3.connect(path)
    con.execute("UPDATE schema_version SET version = 1")
    con.execute("DROP TABLE audit")
    con.commit()
    con.close()
    store = new_store(path)
    store.append_event("GD-1", "NoteAdded", {"text": "x"}, at="t", actor="甲")
    assert AuditLog(store).verify().ok and json.loads(json.dumps(store.audit_entries()))[0]["actor"] == "甲"
    store.close()


@pytest.mark.parametrize("detail", [{"seq": 7, "at": "2026-03-14T09:00:00+08:00", "sha256": "ab" * 32},
                                    {"table": "users", "key": "王五", "row": None, "rows": {"3": "x", "10": "y"}},
                                    {"说明": "燃气爆炸 \u2028 \"引号\"", "n": [1, 2.5, -0.0, 1e21], "t": (1, "二")}])
def test_an_entry_sealed_at_once_has_the_hash_and_hmac_of_the_two_made_apart(detail):
    """sealed_entry (one canonical body for both chains) writes exactly what audit_entry + entry_mac did."""
    from command.security.audit import entry_mac, entry_seal
    from command.store._records import audit_entry, sealed_entry
    key, prev_hash, prev_mac = b"k" * 32, "1f" * 32, "e0" * 32
    entry, digest, mac, text = sealed_entry(41, prev_hash, prev_mac, key, "王五", "event.reported", "GD-1", detail,
                                            "cli")
    assert entry["id"] == 42 and (digest, mac) == (entry_hash(prev_hash, entry), entry_mac(key, prev_mac, entry))
    assert (digest, mac) == entry_seal(key, prev_hash, prev_mac, dict(entry, detail=json.loads(text)))
    old, old_digest, old_text = audit_entry(41, prev_hash, "王五", "event.reported", "GD-1", detail, "cli")
    assert old_text == text and old["detail"] == entry["detail"]
    assert old_digest == entry_hash(prev_hash, dict(entry, at=old["at"]))


TRICKY = ["", "王五", 'quote " backslash \\ slash /', "\u2028\u2029 \x00\x1f\x7f tab\t nl\n", "\ud800 lone",
          "emoji 🚒", "</script>"]


@pytest.mark.parametrize("text", TRICKY)
@pytest.mark.parametrize("detail", [{}, {"seq": 7, "at": "t", "sha256": "ab" * 32, "event_actor": "甲"},
                                    {"n": [1, 2.5, -0.0, 1e21, None, True], "d": {"z": 1, "a": {"b": "二"}}}])
def test_an_entry_body_spelled_from_its_parts_is_its_canonical_json(text, detail):
    """_body's plain-field spelling is canonical's text exactly (the bytes every hash and HMAC is over); an
    entry with a field of another type goes through canonical itself."""
    from command.security.audit import ENTRY_FIELDS, _body
    for i in (0, 1, 42, -3, 10 ** 20):
        entry = {"id": i, "at": text + "2026-03-14T01:00:00.000+00:00", "actor": text, "action": "event." + text,
                 "target": text + "GD-1", "detail": dict(detail, x=text), "source": text or "local"}
        assert _body(entry) == canonical({k: entry[k] for k in ENTRY_FIELDS})
    for odd in ({"id": True}, {"id": 1.5}, {"actor": None}, {"target": 7}, {"source": ["a"]}):
        entry = dict({"id": 1, "at": "t", "actor": "a", "action": "x", "target": "y", "detail": detail,
                      "source": "cli"}, **odd)
        assert _body(entry) == canonical({k: entry[k] for k in ENTRY_FIELDS})


@pytest.mark.parametrize("detail", [{"seq": 7, "at": "t", "sha256": "ab", "event_actor": "甲", "ok": True,
                                     "none": None},
                                    {"t": (1, "二")}, {"nested": {"a": [1]}}, {1: "int key"}, {"f": 2.5}])
def test_an_entry_detail_is_what_json_reads_back_with_or_without_the_round_trip(detail):
    """A flat detail of plain values skips the JSON round trip; every detail is stored as the round trip
    would have made it (tuples as lists, int keys as strings), and the entry holds its own copy."""
    from command.store._records import sealed_entry
    entry, _digest, _mac, text = sealed_entry(1, GENESIS, GENESIS, b"k" * 32, "甲", "event.x", "GD-1", detail, "cli")
    trip = json.loads(json.dumps(detail, ensure_ascii=False))
    assert entry["detail"] == trip and text == json.dumps(trip, ensure_ascii=False, sort_keys=True)
    assert entry["detail"] is not detail


def test_the_anchor_makes_its_folder_when_it_is_missing_and_appends_every_tip(tmp_path, caplog):
    """The anchor's folder is made on the first tip, and again if it is removed later; tips are only added."""
    import shutil
    from command.security.audit import Anchor
    seen = []
    anchor = Anchor(tmp_path / "a" / "b" / "tips", hook=lambda **kw: seen.append(kw["entry_id"]), database="x")
    anchor.write(1, "m1", "t1")
    anchor.write(2, "m2", "t2")
    assert [t["id"] for t in anchor.tips()] == [1, 2] and (anchor.path.stat().st_mode & 0o777) == 0o600
    shutil.rmtree(tmp_path / "a")
    anchor.write(3, "m3", "t3")
    assert anchor.tips() == [{"id": 3, "mac": "m3", "at": "t3"}] and seen == [1, 2, 3]
    assert "not written" not in caplog.text
