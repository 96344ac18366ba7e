"""A delivery process of its own (``yzt outbox work``): the outbox's workers, until a signal or the parent
that started it ends. ``yzt serve`` runs one beside its web workers, so that in the server only this
process sends; more can run on any machine that reaches the database (every claim carries a lease, and a
dead worker's deliveries are taken over)."""
from __future__ import annotations

import logging
import os
import signal
import threading
from typing import Any

log = logging.getLogger(__name__)


def _alive(pid: int, *, parent: bool) -> bool:
    """Whether process ``pid`` still runs; for our parent, also that we were not re-parented (pid reuse)."""
    from command.alerts.outbox import pid_alive
    return not (parent and os.getppid() != pid) and pid_alive(pid)


def work_until_stopped(app: Any, *, exit_with: int | None = None, poll_s: float = 1.0) -> None:
    """Run ``app.outbox``'s background workers until SIGTERM/SIGINT, or until process ``exit_with`` ends;
    then stop them (a send in progress finishes first) and close the app."""
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    parent = exit_with is not None and exit_with == os.getppid()
    outbox = app.outbox
    outbox.start()
    log.info("outbox worker %s: delivering on %s", outbox.owner, ", ".join(c.name for c in app.settings.channels))
    try:
        while not stop.wait(poll_s):
            if exit_with is not None and not _alive(exit_with, parent=parent):
                log.info("outbox worker %s: process %s ended; stopping", outbox.owner, exit_with)
                break
    finally:
        outbox.stop()
        app.close()
