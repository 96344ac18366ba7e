"""``last_seq(max_age_s=...)``: the dashboard's polls share one read of the newest seq per worker, but an
append through the same store is seen at once, and a plain ``last_seq()`` always reads the database."""
from __future__ import annotations

AT = "2026-03-14T09:00:00+08:00"


def test_a_cached_seq_serves_readers_until_an_append_of_its_own_store(tmp_path, new_store):
    path = tmp_path / "db" / "yzt.db"
    mine, other = new_store(path), new_store(path)        # two workers on one database
    mine.append_event("GD-1", "NoteAdded", {"text": "a"}, at=AT, actor="t")
    first = mine.last_seq(max_age_s=3600)
    assert first == mine.last_seq() == other.last_seq()

    other.append_event("GD-2", "NoteAdded", {"text": "b"}, at=AT, actor="t")     # another worker's report
    assert mine.last_seq(max_age_s=3600) == first           # within the age: the shared read answers
    assert mine.last_seq() == first + 1                      # an uncached read sees it
    assert mine.last_seq(max_age_s=3600) == first + 1        # ... and refreshes what the polls share

    mine.append_events("GD-1", [("NoteAdded", {"text": "c"}, AT, "t")])
    assert mine.last_seq(max_age_s=3600) == first + 2        # its own append: never stale
    mine.append_events_of([("GD-3", [("NoteAdded", {"text": "d"}, AT, "t")])])
    assert mine.last_seq(max_age_s=3600) == first + 3


def test_a_failed_append_still_drops_the_cached_seq(tmp_path, new_store):
    store = new_store(tmp_path / "db" / "yzt.db")
    store.append_event("GD-1", "NoteAdded", {"text": "a"}, at=AT, actor="t")
    store.last_seq(max_age_s=3600)
    try:
        store.append_events("GD-1", [("NoteAdded", object(), AT, "t")])     # not JSON: refused
    except Exception:   # noqa: BLE001 - the refusal's type is the backend's; only the cache matters here
        pass
    assert store._seq_seen is None


def test_outcomes_recorded_with_their_timeline_drop_the_cached_seq(tmp_path, new_store):
    """The outbox writes AlertSent events inside finish_deliveries: a dashboard running its own outbox sees
    them at its next poll, not up to max_age_s later."""
    import time

    from command.alerts.outbox import Outbox
    from command.response.timeline import AlertSent, to_record
    from helpers_http import make_alert
    from settings import load_settings
    store = new_store(tmp_path / "db" / "yzt.db")
    channels = [{"name": "hook", "kind": "webhook", "mode": "live", "url": "http://127.0.0.1:9/", "secret": "s"}]
    ob = Outbox(store, load_settings(channels=channels))
    ob.enqueue(make_alert("GD-S1", "Actual", incident_id="GD-INC-S1"))
    job = store.claim_deliveries("hook", owner="host:1:a", now=time.time(), lease_s=60, limit=1)[0]
    before = store.last_seq(max_age_s=3600)
    kind, payload = to_record(AlertSent(at=AT, actor="outbox", identifier="GD-S1", channel="hook", mode="live",
                                        receipt="r"))
    done = [{"id": job["id"], "status": "sent", "receipt": "r",
             "timeline": [("GD-INC-S1", [(kind, payload, AT, "outbox")], "outbox", "outbox")]}]
    assert store.finish_deliveries(done, owner="host:1:a", now=time.time()) == {job["id"]}
    assert store.last_seq(max_age_s=3600) == before + 1 == store.last_seq()
    ob.close()
    store.close()
