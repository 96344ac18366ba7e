"""What must hold when several processes share one database (each store here is its own connection pool or
file handle, as a second server or outbox worker would hold): a delivery is claimed by one worker only, one
incident's messages go out in order on a channel, one report per incident, and the audit chain stays one chain
with events numbered in the order they were committed. Runs on both backends; the PostgreSQL-only tests at the
end upgrade a PostgreSQL database in place."""
from __future__ import annotations

import threading

import pytest

from command.errors import IncidentExistsError, StoreError
from command.security.audit import GENESIS, entry_hash
from command.store import open_store
from command.store.schema import SCHEMA_VERSION


def alert_row(identifier: str, incident_id: str) -> dict:
    return {"identifier": identifier, "incident_id": incident_id, "status": "Exercise", "msg_type": "Alert",
            "cap_xml": "<alert/>", "headline_zh": "预警", "text_zh": "", "area_desc": "天河区"}


def run_all(targets) -> None:
    threads = [threading.Thread(target=t) for t in targets]
    for t in threads:
        t.start()
    for t in threads:
        t.join()


@pytest.fixture
def two(tmp_path, new_store):
    path = tmp_path / "shared.db"
    return new_store(path), new_store(path)


def test_every_delivery_is_claimed_by_exactly_one_of_several_workers(two):
    a, b = two
    for n in range(24):
        a.insert_alert_with_deliveries(alert_row(f"A{n}", f"GD-{n}"), [("ch", "exercise")], created_at="t", now=1.0)
    claimed: list[tuple[str, int]] = []
    lock = threading.Lock()

    def worker(store, owner: str) -> None:
        while (job := store.claim_delivery("ch", owner=owner, now=2.0, lease_s=60)) is not None:
            assert store.finish_delivery(job["id"], owner=owner, status="sent", now=3.0, receipt=owner)
            with lock:
                claimed.append((owner, job["id"]))
    run_all([lambda s=s, o=f"w{i}": worker(s, o) for i, s in enumerate((a, b, a, b))])
    ids = [i for _, i in claimed]
    assert sorted(ids) == sorted(set(ids)) and len(ids) == 24
    assert a.delivery_counts() == {"sent": 24} and b.next_due("ch") is None


def test_one_incidents_messages_leave_in_order_whichever_worker_claims(two):
    a, b = two
    for ident in ("X1", "X2", "X3"):
        a.insert_alert_with_deliveries(alert_row(ident, "GD-X"), [("ch", "exercise")], created_at="t", now=1.0)
    first = a.claim_delivery("ch", owner="wa", now=2.0, lease_s=60)
    assert first["identifier"] == "X1"
    assert b.claim_delivery("ch", owner="wb", now=2.0, lease_s=60) is None      # X2 waits for X1
    assert a.finish_delivery(first["id"], owner="wa", status="sent", now=3.0)
    second = b.claim_delivery("ch", owner="wb", now=3.0, lease_s=60)
    assert second["identifier"] == "X2"
    # wb is killed: its lease runs out and the other worker takes X2 over before X3
    again = a.claim_delivery("ch", owner="wa", now=70.0, lease_s=60)
    assert again["identifier"] == "X2" and again["attempts"] == 2
    assert not b.finish_delivery(second["id"], owner="wb", status="sent", now=71.0)   # its lease is gone


def test_two_servers_reporting_one_incident_at_once_store_one_report(two):
    outcomes: list[str] = []
    barrier = threading.Barrier(2)

    def report(store, who: str) -> None:
        barrier.wait()
        try:
            store.append_event("GD-SAME", "Reported", {"by": who}, at="t", actor=who)
            outcomes.append("stored")
        except IncidentExistsError:
            outcomes.append("exists")
    a, b = two
    run_all([lambda: report(a, "甲"), lambda: report(b, "乙")])
    assert sorted(outcomes) == ["exists", "stored"]
    assert [e.kind for e in a.events("GD-SAME")] == ["Reported"]


def test_concurrent_writers_keep_one_audit_chain_and_number_events_in_commit_order(two):
    a, b = two

    def writer(store, n: int) -> None:
        for i in range(15):
            store.append_events(f"GD-{n}", [("Noted", {"i": i}, "t", f"w{n}"), ("Noted", {"j": i}, "t", f"w{n}")])
            store.record_attempt(f"u{n}", "10.0.0.1", ok=False, at=float(i))
    run_all([lambda s=s, n=n: writer(s, n) for n, s in enumerate((a, b, a, b))])
    entries = b.audit_entries(raw=True)
    assert [e["id"] for e in entries] == list(range(1, 4 * 15 * 3 + 1)) == list(range(1, a.audit_numbered() + 1))
    prev = GENESIS
    for e in entries:
        import json
        fields = dict(e, detail=json.loads(e["detail"]))
        assert e["prev_hash"] == prev and e["hash"] == entry_hash(prev, fields)
        prev = e["hash"]
    seqs_in_chain_order = [json_seq for json_seq in (__import__("json").loads(e["detail"]).get("seq")
                                                       for e in entries) if json_seq is not None]
    assert seqs_in_chain_order == sorted(seqs_in_chain_order) == [ev.seq for ev in a.events()]


# -- PostgreSQL only: its migrations and its URL -------------------------------------------------------
@pytest.fixture
def scratch_url():
    import helpers_store
    url = helpers_store.pg_slots().scratch("upgrade")
    yield url
    helpers_store.pg_slots().drop_scratch(url)


@pytest.mark.postgres_only
def test_a_version_3_postgresql_database_is_upgraded_in_place(scratch_url):
    import psycopg
    from command.store.postgres import PostgresStore, migrate
    with psycopg.connect(scratch_url) as conn:          # what a database of version 3 holds
        conn.execute("CREATE TABLE schema_version (version INTEGER NOT NULL)")
        migrate(conn, None, 3)
        conn.execute("INSERT INTO alerts (identifier, incident_id, status, msg_type, cap_xml, created_at)"
                     " VALUES ('GD-OLD', 'GD-1', 'Exercise', 'Alert', '<alert/>', 't')")
        assert conn.execute("SELECT to_regclass('cap_identifiers')").fetchone()[0] is None
    store = PostgresStore(scratch_url)
    try:
        assert store.db.row("SELECT version FROM schema_version")["version"] == SCHEMA_VERSION >= 4
        assert store.identifier_used("GD-OLD") and not store.reserve_identifier("GD-OLD", "GD-1")
        assert store.reserve_identifier("GD-NEW", "GD-1")
    finally:
        store.close()


@pytest.mark.postgres_only
def test_a_postgresql_database_newer_than_the_program_is_refused(scratch_url):
    from command.store.postgres import PostgresStore
    PostgresStore(scratch_url).close()
    import psycopg
    with psycopg.connect(scratch_url) as conn:
        conn.execute("UPDATE schema_version SET version = 99")
    with pytest.raises(StoreError, match=f"schema version 99, this program needs {SCHEMA_VERSION}"):
        PostgresStore(scratch_url)


@pytest.mark.postgres_only
def test_settings_with_a_postgresql_url_open_the_postgresql_store_and_a_bad_one_says_which(tmp_path):
    from command.store.postgres import PostgresStore
    from settings import load_settings
    store = open_store(load_settings())                  # YZT_DATABASE names this test's database
    try:
        assert isinstance(store, PostgresStore)
    finally:
        store.close()
    with pytest.raises(StoreError, match=r"database postgresql://yzt:\*\*\*@/nowhere.*cannot connect") as e:
        from command.store.postgres import PostgresDatabase
        PostgresDatabase(f"postgresql://yzt:secret@/nowhere?host={tmp_path}&port=1", timeout_s=2)
    assert "secret" not in str(e.value)
