"""Channel kind ``webhook``: POST the alert as JSON (fields + CAP XML), signed, with an idempotency key.

    channels: [{name: gd-webhook, kind: webhook, mode: live, url: "https://receiver/alerts", secret: "..."}]

Headers: ``X-YZT-Signature: sha256=<hex HMAC-SHA256(secret, body)>`` (the receiver recomputes it over the raw
body), ``Idempotency-Key: sha256(identifier + channel)``. 2xx = delivered (the receipt is the response's
``id``/``receipt`` field or the first 200 characters of its body); 408/429/5xx/network = retried; other 4xx =
dead-lettered at once.
"""
from __future__ import annotations

import hashlib
import hmac
import json
from typing import Any

import httpx

from command.alerts.channels import BaseChannel, OutgoingAlert
from command.errors import ChannelError
from command.hookspecs import hookimpl


def signature(secret: str, body: bytes) -> str:
    """The X-YZT-Signature value of ``body``."""
    return "sha256=" + hmac.new(secret.encode("utf-8"), body, hashlib.sha256).hexdigest()


def receipt_of(resp: Any) -> str:
    """A short receipt from a 2xx response: a JSON id field when present, else the start of the body."""
    try:
        data = resp.json()
    except ValueError:
        data = None
    if isinstance(data, dict):
        for key in ("receipt", "id", "msgid", "message_id", "request_id"):
            if data.get(key) not in (None, ""):
                return f"HTTP {resp.status_code} {key}={data[key]}"
    text = resp.text.strip()[:200]
    return f"HTTP {resp.status_code} {text}".rstrip()


class WebhookChannel(BaseChannel):
    kind = "webhook"

    def __init__(self, cfg: Any, *, client: Any = None, settings: Any = None) -> None:
        super().__init__(cfg, client=client, settings=settings)
        self.url: str = self.option("url", required=True)
        self.secret: str = self.option("secret", required=True)
        try:
            self._target = httpx.URL(self.url)            # parsed once, not on every POST
        except httpx.InvalidURL as e:
            raise ChannelError(f"channel {self.name!r} (kind webhook): url {self.url!r} is not a URL ({e})") from None
        self._key = self.secret.encode("utf-8")

    def send(self, alert: OutgoingAlert, *, idempotency_key: str) -> str:
        body = json.dumps({**alert.as_dict(), "channel": self.name}, ensure_ascii=False).encode("utf-8")
        headers = {"Content-Type": "application/json; charset=utf-8", "Idempotency-Key": idempotency_key,
                   "X-YZT-Signature": "sha256=" + hmac.new(self._key, body, hashlib.sha256).hexdigest()}
        return receipt_of(self.post(self._target, content=body, headers=headers))


@hookimpl
def yzt_channel_kinds() -> dict[str, Any]:
    """The generic signed JSON webhook."""
    return {"webhook": WebhookChannel}
