"""A drill replayed on the configured store (SQLite, or PostgreSQL under make test's second pass) leaves an
audit chain `yzt audit verify` accepts, and the same report as a drill on its own throwaway store."""
from __future__ import annotations

import json

from command import drills
from command.cli.main import main
from command.store import open_store
from settings import get_settings


def test_a_drill_on_the_settings_store_passes_yzt_audit_verify(capsys, shared_dir):
    settings = get_settings()
    scenario = drills.load_scenario(shared_dir / "scenarios" / "tianhe-mall-gas-explosion.yaml")
    store = open_store(settings)
    try:
        report = drills.run_drill(scenario, settings=settings, store=store)
        events = len(store.events())
    finally:
        store.close()
    assert not report["errors"] and report["incidents"] and events > 20
    code = main(["audit", "verify", "--json"])
    verdict = json.loads(capsys.readouterr().out)
    assert code == 0 and verdict["ok"] and verdict["entries"] >= events, verdict
    assert drills.run_drill(scenario, settings=settings) == report
