"""Channel kind ``outbox``: append each alert as one JSON line to a local file (drills, audits, air-gapped use).

    channels: [{name: outbox-exercise, kind: outbox, mode: exercise, path: var/outbox-exercise.jsonl}]

``path`` defaults to ``settings.var_dir/outbox-<name>.jsonl``. Each line carries the alert fields, the CAP XML
and the idempotency key; a retry with a key already in the file writes nothing and returns the first receipt,
so a file channel is exactly-once even across processes (the file is locked while it is read and appended).
"""
from __future__ import annotations

import fcntl
import json
import os
import threading
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from command.alerts.channels import BaseChannel, OutgoingAlert, PermanentError, RetryableError
from command.errors import ChannelError
from command.hookspecs import hookimpl


class OutboxFileChannel(BaseChannel):
    kind = "outbox"

    def __init__(self, cfg: Any, *, client: Any = None, settings: Any = None) -> None:
        super().__init__(cfg, client=client, settings=settings)
        path = self.option("path")
        if path is None:
            if settings is None:
                raise ChannelError(f"channel {self.name!r} (kind outbox): no path and no settings to default it")
            path = Path(settings.var_dir) / f"outbox-{self.name}.jsonl"
        self.path = Path(path)
        self._lock = threading.Lock()
        self._seen: dict[str, int] = {}  # idempotency key -> line number
        self._lines = 0
        self._offset = 0

    def _catch_up(self, fh: Any) -> None:
        """Read lines appended since the last look (by this or another process)."""
        fh.seek(self._offset)
        for raw in fh:
            if not raw.endswith(b"\n"):
                break  # a torn last line from a crash: ignored, and closed off before the next append
            self._offset += len(raw)
            self._lines += 1
            try:
                key = json.loads(raw).get("idempotency_key")
            except ValueError:
                continue
            if key:
                self._seen.setdefault(key, self._lines)

    def send(self, alert: OutgoingAlert, *, idempotency_key: str) -> str:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with self._lock, open(self.path, "a+b") as fh:
                fcntl.flock(fh, fcntl.LOCK_EX)
                self._catch_up(fh)
                if idempotency_key in self._seen:
                    return f"{self.path}:{self._seen[idempotency_key]} (already written)"
                record = {"idempotency_key": idempotency_key, "channel": self.name, "mode": self.mode,
                          "written_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                          **alert.as_dict()}
                line = json.dumps(record, ensure_ascii=False).encode("utf-8") + b"\n"
                end = fh.seek(0, os.SEEK_END)
                if end > self._offset:  # torn line left by a crash: end it so ours stays whole
                    line = b"\n" + line
                    self._lines += 1
                fh.write(line)
                fh.flush()
                os.fsync(fh.fileno())
                self._offset = fh.tell()
                self._lines += 1
                self._seen[idempotency_key] = self._lines
                return f"{self.path}:{self._lines}"
        except PermissionError as e:
            raise PermanentError(f"outbox {self.name}: cannot write {self.path} ({e.strerror})") from None
        except OSError as e:
            raise RetryableError(f"outbox {self.name}: cannot write {self.path} ({e.strerror})") from None


@hookimpl
def yzt_channel_kinds() -> dict[str, Any]:
    """The local JSON-lines file channel."""
    return {"outbox": OutboxFileChannel}
