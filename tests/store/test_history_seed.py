"""bench.history bulk-writes a year of history past the store's own append path (events, audit rows and the
projection in big statements), so what it seeds must be a history the product accepts: the audit chain it
extends verifies (hash chain, HMAC, anchor, every event vouched for) and the incidents read back folded."""
from __future__ import annotations

from bench import history
from command.alerts.outbox import Outbox
from command.response.service import ResponseService
from command.security.audit import AuditLog
from settings import load_settings


def test_a_seeded_history_verifies_and_reads_back(new_store, tmp_path):
    settings = load_settings(channels=[{"name": "outbox-exercise", "kind": "outbox", "mode": "exercise"}],
                             var_dir=tmp_path / "var")
    store = new_store(tmp_path / "history.db")
    svc = ResponseService(store, settings=settings, exercise=True, outbox=Outbox(store, settings))
    out = history.seed(store, svc, 30, 400)
    assert out["incidents"] == 30 and out["events"] >= 360
    report = AuditLog(store).verify()
    assert report.ok, report.line()
    assert report.entries >= out["events"]
    first = svc.get("440000-H0000000")
    assert first.id == "440000-H0000000" and first.events and first.grade.level
