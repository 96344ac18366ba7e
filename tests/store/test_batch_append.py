"""Several incidents' events in one transaction (``append_events_of``), as the outbox's batch of final outcomes
writes them through ``yzt_alerts_delivered``: the right AlertSent/AlertFailed events, each incident's in the
order sent, one audit transaction for the whole batch, a chain that verifies, the projection equal to the fold;
a refused batch writes nothing."""
from __future__ import annotations

import pytest

from command.errors import IncidentExistsError
from command.response import delivery_log
from command.response.timeline import to_record
from command.security.audit import Anchor, AuditLog
from test_projection import a_history, expected, rows_by_id, service


@pytest.fixture
def store(tmp_path, new_store):
    s = new_store(tmp_path / "db" / "yzt.db")
    # a tip anchor of this test's own: on PostgreSQL a test database's name (and so its default anchor under
    # ~/.config/yzt) is used again by later tests, whose chains start over
    s.anchor = s.db.anchor = Anchor(tmp_path / "audit-anchor", database="test")
    yield s
    s.close()


def outcome(identifier: str, incident_id: str, status: str, channel: str = "hook", **kw) -> dict:
    return {"identifier": identifier, "channel": channel, "mode": "exercise", "status": status, "attempts": 1,
            "receipt": kw.get("receipt"), "error": kw.get("error"), "incident_id": incident_id,
            "at": kw.get("at", "2026-03-14T09:30:00+08:00")}


class Anchors:
    """Counts the audit tip's anchor writes: one per committed audit transaction, on either backend."""

    def __init__(self, store, monkeypatch) -> None:
        self.tips: list[int] = []
        write = store.anchor.write
        monkeypatch.setattr(store.anchor, "write", lambda entry_id, *a, **k: (self.tips.append(entry_id),
                                                                             write(entry_id, *a, **k))[1])


def test_a_batch_across_incidents_lands_in_order_in_one_transaction(store, monkeypatch):
    svc = service(store)
    ids = a_history(svc)
    a, b, c = ids[0], ids[1], ids[3]
    before = {i: len(store.events(i)) for i in ids}
    tip = store.audit_numbered()
    batch = [outcome("A-1", a, "sent", receipt={"msgid": 7}), outcome("B-1", b, "dead", error="permanent: 400"),
             outcome("A-2", a, "dead", error="gave up"), outcome("C-1", c, "sent", receipt="ok"),
             outcome("A-3", a, "sent", channel="other"), outcome("R-1", a, "failed"),    # not final: not written
             outcome("N-1", "", "sent")]                                                # no incident: not written
    anchors = Anchors(store, monkeypatch)
    delivery_log.yzt_alerts_delivered(outcomes=batch, store=store)
    assert len(anchors.tips) == 1 and anchors.tips[0] == tip + 5 == store.audit_numbered()   # ONE transaction
    new = {i: store.events(i)[before[i]:] for i in ids}
    assert [(e.kind, e.payload["identifier"]) for e in new[a]] == [("AlertSent", "A-1"), ("AlertFailed", "A-2"),
                                                                    ("AlertSent", "A-3")]
    assert [(e.kind, e.payload["identifier"], e.payload["error"]) for e in new[b]] == [
        ("AlertFailed", "B-1", "permanent: 400")]
    assert [(e.kind, e.payload["receipt"]) for e in new[c]] == [("AlertSent", "ok")]
    assert new[a][0].payload["receipt"] == '{"msgid": 7}' and new[a][2].payload["channel"] == "other"
    assert new[ids[2]] == []
    assert all(e.actor == "outbox" for e in new[a])
    seqs = [e.seq for e in new[a] + new[b] + new[c]]       # incidents in order of first outcome, each in order
    assert seqs == sorted(seqs)
    entries = store.audit_entries()[-5:]
    assert [(x["action"], x["target"], x["detail"]["seq"]) for x in entries] == [
        ("event.AlertSent", a, seqs[0]), ("event.AlertFailed", a, seqs[1]), ("event.AlertSent", a, seqs[2]),
        ("event.AlertFailed", b, seqs[3]), ("event.AlertSent", c, seqs[4])]
    assert AuditLog(store).verify().ok
    fresh = service(store)                                # folds from the store, no cache
    rows = rows_by_id(store)
    for iid in ids:
        assert rows[iid] == expected(store, fresh.get(iid)), iid
    assert rows[a]["events"] == before[a] + 3 and rows[a]["last_seq"] == seqs[2]


def test_groups_of_several_events_keep_their_order_and_rows(store):
    svc = service(store)
    ids = a_history(svc)
    out = store.append_events_of([(ids[0], [("NoteAdded", {"text": "1"}, "t1", "甲"), ("NoteAdded", {"text": "2"}, "t2", "甲")]),
                                  ("GD-NEW", [("NoteAdded", {"text": "no report"}, "t3", "乙")]),
                                  (ids[2], [("NoteAdded", {"text": "3"}, "t4", "甲")])], source="test", by="甲")
    assert [len(s) for s in out] == [2, 1, 1] and sum(out, []) == sorted(sum(out, []))
    assert [e.payload["text"] for e in store.events(ids[0])[-2:]] == ["1", "2"]
    assert [e.seq for e in store.events("GD-NEW")] == out[1]
    rows = rows_by_id(store)
    assert "GD-NEW" not in rows and store.incident_count() == 4     # a timeline without a report has no row
    fresh = service(store)
    for iid in ids:
        assert rows[iid] == expected(store, fresh.get(iid)), iid
    assert AuditLog(store).verify().ok
    assert store.append_events_of([]) == []


def test_a_report_in_a_batch_makes_its_row(store):
    svc = service(store)
    ids = a_history(svc)
    kind, payload = to_record(svc.get(ids[0]).events[0])
    store.append_events_of([(ids[1], [("NoteAdded", {"text": "x"}, "t", "a")]),
                            ("GD-R", [(kind, payload, "t", "a"), ("NoteAdded", {"text": "y"}, "t2", "a")])])
    rows = rows_by_id(store)
    assert list(rows) == ids + ["GD-R"] and rows["GD-R"]["events"] == 2 and store.incident_count() == 5
    assert rows["GD-R"] == expected(store, service(store).get("GD-R"))


def test_a_refused_batch_writes_nothing(store):
    svc = service(store)
    ids = a_history(svc)
    kind, payload = to_record(svc.get(ids[0]).events[0])
    rows, last, numbered = rows_by_id(store), store.last_seq(), store.audit_numbered()
    with pytest.raises(IncidentExistsError):                     # the second group reports an incident again
        store.append_events_of([(ids[1], [("NoteAdded", {"text": "x"}, "t", "a")]),
                                (ids[0], [(kind, payload, "t", "a")])])
    assert rows_by_id(store) == rows and store.last_seq() == last and store.audit_numbered() == numbered
    assert AuditLog(store).verify().ok
