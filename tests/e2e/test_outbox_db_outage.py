"""The database going away between a send and its record: the worker keeps the outcome and records it once the
database is back, so the delivery is neither sent again nor left 'sending' until its lease runs out.

A store whose finish fails as an unreachable PostgreSQL does (StoreUnavailableError) the first
times it is called, under a background outbox whose lease is far longer than the test: without the owed
outcome, the delivery would wait out the lease and go again.
"""
from __future__ import annotations

import time

import pytest
from helpers_http import Receiver, make_alert

from bench.load import until
from command.alerts.channels import idempotency_key
from command.alerts.outbox import Outbox
from command.errors import StoreUnavailableError
from settings import load_settings


class _FinishFails:
    """The store, except that recording outcomes (``finish_deliveries``, which the outbox uses for one outcome
    too, since the outcome carries its timeline events; or ``finish_delivery``) raises for the first ``times``
    calls between them (the database away)."""

    def __init__(self, store, times: int) -> None:
        self._store, self.left, self.refused = store, times, 0

    def _away(self) -> None:
        if self.left > 0:
            self.left -= 1
            self.refused += 1
            raise StoreUnavailableError("database test: unavailable (server closed the connection unexpectedly)")

    def finish_delivery(self, *args, **kw):
        self._away()
        return self._store.finish_delivery(*args, **kw)

    def finish_deliveries(self, *args, **kw):
        self._away()
        return self._store.finish_deliveries(*args, **kw)

    def __getattr__(self, name):
        return getattr(self._store, name)


@pytest.mark.parametrize("times", [1, 3])
def test_an_outcome_the_database_missed_is_recorded_when_it_is_back(tmp_path, new_store, times):
    store = _FinishFails(new_store(tmp_path / "outage.db"), times)
    with Receiver() as rx:
        settings = load_settings(var_dir=tmp_path / "var", channels=[
            {"name": "hook", "kind": "webhook", "mode": "exercise", "url": f"{rx.url}/hook", "secret": "s"}])
        ob = Outbox(store, settings, lease_s=600, backoff_base_s=0.05)
        ob.enqueue(make_alert("44010600000_outage_1", incident_id="GD-OUTAGE-1"))
        ob.enqueue(make_alert("44010600000_outage_2", incident_id="GD-OUTAGE-2"))
        t0 = time.monotonic()
        ob.start()
        try:
            done = until(lambda: ob.counts()["sent"] == 2, 20, every_s=0.05)
        finally:
            ob.stop()
            ob.close()
        took = time.monotonic() - t0
        rows = {r["identifier"]: r for r in ob.deliveries()}
    assert store.refused == times
    assert done, rows
    assert took < 20 and all(r["attempts"] == 1 for r in rows.values()), rows   # recorded, not sent again
    assert len(rx.requests) == 2 and rx.repeats == 0
    assert set(rx.accepted_keys) == {idempotency_key(f"44010600000_outage_{i}", "hook") for i in (1, 2)}
    # the owed outcomes kept their timeline events: recorded with them, once
    told = sorted(e.payload["identifier"] for e in store.events() if e.kind == "AlertSent")
    assert told == ["44010600000_outage_1", "44010600000_outage_2"]
