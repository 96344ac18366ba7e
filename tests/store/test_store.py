"""The store on the backend under test (SQLite files, or PostgreSQL on make test's second pass): append-only
events, schema versions and in-place upgrades, atomic alert+deliveries, the drill guard in the schema, identifier
reservation, and what must hold between several processes on one database (each store below is its own
connection pool, as a second server would hold)."""
from __future__ import annotations

import sqlite3
import threading

import pytest

from command.errors import StoreError
from command.store.sqlite import SCHEMA_VERSION, Store
from settings import load_settings


@pytest.fixture
def store(tmp_path, new_store):
    s = new_store(tmp_path / "db" / "yzt.db")
    yield s
    s.close()


def integrity_error(store) -> type[Exception]:
    if isinstance(store, Store):
        return sqlite3.IntegrityError
    import psycopg
    return psycopg.IntegrityError


def raw_sql(store, sql: str) -> None:
    """One statement behind the store's back, as someone with the database's password could run it."""
    if isinstance(store, Store):
        store._conn().execute(sql)
    else:
        with store.db.tx() as conn:
            conn.execute(sql)


def alert_row(identifier: str, status: str = "Exercise") -> dict:
    return {"identifier": identifier, "incident_id": "GD-1", "status": status, "msg_type": "Alert",
            "cap_xml": "<alert/>", "headline_zh": "预警", "text_zh": "", "area_desc": "天河区"}


def test_events_round_trip_in_sequence_order(store):
    a = store.append_event("GD-1", "Reported", {"地址": "天河路", "n": 1}, at="2024-05-01T08:00:00+08:00", actor="张三")
    b = store.append_event("GD-2", "Reported", {}, at="2024-05-01T08:01:00+08:00", actor="李四")
    c = store.append_event("GD-1", "Noted", {"text": "到场"}, at="2024-05-01T08:02:00+08:00", actor="张三")
    assert a < b < c
    assert [e.kind for e in store.events("GD-1")] == ["Reported", "Noted"]
    assert store.events("GD-1")[0].payload == {"地址": "天河路", "n": 1}
    assert [e.seq for e in store.events(since_seq=a)] == [b, c]
    assert store.incident_ids() == ["GD-1", "GD-2"]


def test_events_cannot_be_changed_or_removed(store):
    store.append_event("GD-1", "Reported", {}, at="t", actor="a")
    assert not hasattr(store, "update_event") and not hasattr(store, "delete_event")
    for sql in ("UPDATE events SET kind = 'Forged'", "DELETE FROM events", "UPDATE audit SET actor = 'x'",
                "DELETE FROM audit"):
        with pytest.raises(integrity_error(store), match="append-only"):
            raw_sql(store, sql)
    assert [e.kind for e in store.events()] == ["Reported"]


def test_bad_events_are_refused(store):
    with pytest.raises(StoreError, match="not JSON"):
        store.append_event("GD-1", "Reported", {"x": object()}, at="t", actor="a")
    with pytest.raises(StoreError, match="non-empty"):
        store.append_event("", "Reported", {}, at="t", actor="a")
    assert store.events() == []


def test_concurrent_appends_from_threads_get_distinct_increasing_seqs(store):
    seqs: list[int] = []
    lock = threading.Lock()

    def worker(n: int) -> None:
        for i in range(50):
            s = store.append_event(f"GD-{n}", "Noted", {"i": i}, at="t", actor=f"w{n}")
            with lock:
                seqs.append(s)
    threads = [threading.Thread(target=worker, args=(n,)) for n in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(set(seqs)) == 300
    for n in range(6):
        assert [e.payload["i"] for e in store.events(f"GD-{n}")] == list(range(50))


@pytest.mark.sqlite_only
def test_schema_version_is_checked(tmp_path):
    path = tmp_path / "yzt.db"
    Store(path).close()
    conn = sqlite3.connect(path)
    conn.execute("UPDATE schema_version SET version = 99")
    conn.commit()
    conn.close()
    with pytest.raises(StoreError, match=f"schema version 99, this program needs {SCHEMA_VERSION}"):
        Store(path)


@pytest.mark.sqlite_only
def test_a_version_2_file_is_upgraded_and_its_deliveries_learn_their_incident(tmp_path):
    path = tmp_path / "v2.db"
    s = Store(path)
    s.insert_alert_with_deliveries(alert_row("GD-A"), [("hook", "exercise")], created_at="t", now=1.0)
    s.close()
    conn = sqlite3.connect(path)      # what a version 2 file looks like: no incident column on deliveries
    conn.executescript("DROP INDEX deliveries_open_incident; ALTER TABLE deliveries DROP COLUMN incident_id;"
                       "UPDATE schema_version SET version = 2;")
    conn.close()
    s = Store(path)
    rows = s._conn().execute("SELECT incident_id FROM deliveries").fetchall()
    version = s._conn().execute("SELECT version FROM schema_version").fetchone()[0]
    job = s.claim_delivery("hook", owner="me", now=2.0, lease_s=60)
    s.close()
    assert [r[0] for r in rows] == ["GD-1"] and version == SCHEMA_VERSION
    assert job is not None and job["identifier"] == "GD-A"


@pytest.mark.sqlite_only
def test_a_file_that_is_not_a_database_is_refused(tmp_path):
    path = tmp_path / "notes.db"
    path.write_text("这不是数据库" * 200, encoding="utf-8")
    with pytest.raises(StoreError, match="notes.db"):
        Store(path)


@pytest.mark.sqlite_only
def test_open_default_uses_the_settings_database_path(tmp_path):
    s = load_settings(var_dir=tmp_path / "deep" / "var")
    store = Store.open_default(s)
    assert store.path == tmp_path / "deep" / "var" / "yzt.db" and store.path.exists()
    pragmas = store._conn()
    assert pragmas.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert pragmas.execute("PRAGMA foreign_keys").fetchone()[0] == 1
    store.close()


def test_alert_and_deliveries_are_written_together_or_not_at_all(store):
    ids = store.insert_alert_with_deliveries(alert_row("A1"), [("ex1", "exercise"), ("ex2", "exercise")],
                                             created_at="t", now=1.0)
    assert len(ids) == 2 and store.identifier_used("A1")
    with pytest.raises(StoreError, match="A2"):  # the second row repeats a channel: the whole alert is refused
        store.insert_alert_with_deliveries(alert_row("A2"), [("ex1", "exercise"), ("ex1", "exercise")],
                                           created_at="t", now=1.0)
    assert not store.identifier_used("A2")
    assert [d["identifier"] for d in store.deliveries()] == ["A1", "A1"]


@pytest.mark.parametrize("status,mode", [("Exercise", "live"), ("Actual", "exercise")])
def test_the_schema_refuses_a_drill_on_a_live_channel(store, status, mode):
    with pytest.raises(StoreError, match="drill guard"):
        store.insert_alert_with_deliveries(alert_row("A1", status), [(f"{mode}-ch", mode)], created_at="t", now=1.0)
    assert not store.identifier_used("A1")


def test_claim_and_finish_follow_the_lease(store):
    store.insert_alert_with_deliveries(alert_row("A1"), [("ch", "exercise")], created_at="t", now=1.0)
    job = store.claim_delivery("ch", owner="o1", now=2.0, lease_s=10)
    assert job["attempts"] == 1 and job["alert_identifier"] == "A1"
    assert store.claim_delivery("ch", owner="o2", now=5.0, lease_s=10) is None  # leased to o1
    again = store.claim_delivery("ch", owner="o2", now=12.5, lease_s=10)  # o1's lease ran out
    assert again["attempts"] == 2
    assert not store.finish_delivery(job["id"], owner="o1", status="sent", now=13.0, receipt="late")
    assert store.finish_delivery(job["id"], owner="o2", status="sent", now=13.0, receipt="r")
    row = store.deliveries("A1")[0]
    assert (row["status"], row["receipt"], row["owner"]) == ("sent", "r", None)
    assert store.delivery_counts("exercise") == {"sent": 1} and store.delivery_counts("live") == {}


def test_an_identifier_is_reserved_once_and_never_after_an_alert_used_it(store):
    assert not store.identifier_used("GD-R1")
    assert store.reserve_identifier("GD-R1", "GD-1")
    assert store.identifier_used("GD-R1") and store.alert("GD-R1") is None      # reserved, not sent
    assert not store.reserve_identifier("GD-R1", "GD-1")                        # never twice
    assert not store.reserve_identifier("GD-R1", "GD-2")                        # nor for another incident
    store.insert_alert_with_deliveries(alert_row("GD-A1"), [("ch", "exercise")], created_at="t", now=1.0)
    assert not store.reserve_identifier("GD-A1", "GD-1")                        # an alert already used it
    store.insert_alert_with_deliveries(alert_row("GD-R1"), [("ch", "exercise")], created_at="t", now=1.0)
    assert store.alert("GD-R1") is not None                                     # its own incident may send it


def test_an_identifier_reserved_for_one_incident_cannot_carry_another_incidents_alert(store):
    assert store.reserve_identifier("GD-R2", "GD-9")
    with pytest.raises(StoreError, match="reserved for incident GD-9"):
        store.insert_alert_with_deliveries(alert_row("GD-R2"), [("ch", "exercise")], created_at="t", now=1.0)
    assert store.alert("GD-R2") is None and store.deliveries() == []


def test_concurrent_reservations_of_one_identifier_give_it_to_exactly_one(tmp_path, new_store):
    path = tmp_path / "race.db"
    stores = [new_store(path) for _ in range(4)]      # four connections, as four processes would hold
    results: list[bool] = []
    lock = threading.Lock()
    barrier = threading.Barrier(len(stores))

    def reserve(s, n: int) -> None:
        barrier.wait()
        ok = s.reserve_identifier("GD-RACE", f"GD-{n}")
        with lock:
            results.append(ok)
    threads = [threading.Thread(target=reserve, args=(s, n)) for n, s in enumerate(stores)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for s in stores:
        s.close()
    assert sorted(results) == [False, False, False, True]


@pytest.mark.sqlite_only
def test_a_version_3_file_is_upgraded_and_can_reserve_identifiers(tmp_path):
    path = tmp_path / "v3.db"
    s = Store(path)
    s.insert_alert_with_deliveries(alert_row("GD-OLD"), [("hook", "exercise")], created_at="t", now=1.0)
    s.close()
    conn = sqlite3.connect(path)      # what a version 3 file looks like: no cap_identifiers table
    conn.executescript("DROP TABLE cap_identifiers; UPDATE schema_version SET version = 3;")
    conn.close()
    s = Store(path)
    version = s._conn().execute("SELECT version FROM schema_version").fetchone()[0]
    assert version == SCHEMA_VERSION
    assert s.identifier_used("GD-OLD") and not s.reserve_identifier("GD-OLD", "GD-1")
    assert s.reserve_identifier("GD-NEW", "GD-1") and s.identifier_used("GD-NEW")
    s.close()


def test_the_store_package_shows_its_interfaces_and_each_backend_implements_them(tmp_path, new_store):
    import command.store as face
    from command.store.interfaces import Accounts, AuditChain, DeliveryQueue, EventLog, StoreBackend
    assert set(face.__all__) <= set(dir(face)) and all(getattr(face, n) is not None for n in face.__all__)
    s = new_store(tmp_path / "face.db")
    assert isinstance(s, StoreBackend)
    for part, interface in ((s.event_log, EventLog), (s.queue, DeliveryQueue), (s.accounts, Accounts),
                            (s.audit_chain, AuditChain)):
        assert isinstance(part, interface)


def test_each_backends_migrations_are_numbered_in_order_and_reach_the_schema_version():
    """A version added to one backend only would leave the other recording a version it never built."""
    from command.store import schema
    for migrations in (schema.SQLITE_MIGRATIONS, schema.PG_MIGRATIONS):
        versions = [m.version for m in migrations]
        assert versions == sorted(set(versions)) and versions[-1] == schema.SCHEMA_VERSION
