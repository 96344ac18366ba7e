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
