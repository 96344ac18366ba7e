"""Channel kind ``cell_broadcast``: hand the CAP XML itself to a cell-broadcast (or any CAP) gateway.

    channels: [{name: gd-cbc, kind: cell_broadcast, mode: live, url: "https://cbc-gateway/cap", token: "..."}]

``POST url`` with the CAP 1.2 document as the body, ``Content-Type: application/cap+xml``, an
``Idempotency-Key`` and, when ``token`` is set, ``Authorization: Bearer <token>``. 2xx = delivered;
408/429/5xx = retried; other 4xx = dead-lettered.
"""
from __future__ import annotations

from typing import Any

from command.alerts.channels import BaseChannel, OutgoingAlert
from command.alerts.channels.webhook import receipt_of
from command.hookspecs import hookimpl

CAP_CONTENT_TYPE = "application/cap+xml"


class CellBroadcastChannel(BaseChannel):
    kind = "cell_broadcast"

    def __init__(self, cfg: Any, *, client: Any = None, settings: Any = None) -> None:
        super().__init__(cfg, client=client, settings=settings)
        self.url: str = self.option("url", required=True)
        self.token: str | None = self.option("token")

    def send(self, alert: OutgoingAlert, *, idempotency_key: str) -> str:
        headers = {"Content-Type": f"{CAP_CONTENT_TYPE}; charset=utf-8", "Idempotency-Key": idempotency_key}
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        return receipt_of(self.post(self.url, content=alert.cap_xml.encode("utf-8"), headers=headers))


@hookimpl
def yzt_channel_kinds() -> dict[str, Any]:
    """The CAP-over-HTTP cell broadcast gateway."""
    return {"cell_broadcast": CellBroadcastChannel}
