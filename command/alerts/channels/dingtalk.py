"""Channel kind ``dingtalk``: a DingTalk (钉钉) group robot with signed requests, markdown message.

    channels: [{name: gd-dingtalk, kind: dingtalk, mode: live, access_token: "T", secret: "SEC..."}]
    # or url: "https://oapi.dingtalk.com/robot/send?access_token=T"

Each request adds ``timestamp=MS&sign=S`` with ``S = urlencode(base64(HMAC-SHA256(secret, f"{MS}\\n{secret}")))``
(standards §4; ``sign()`` reproduces its vector). Body ``{"msgtype": "markdown", "markdown": {"title", "text"}}``.
``errcode`` 0 = delivered; 130101 (sending too fast) = retried after a minute; others dead-lettered.
20 messages a minute per robot (the outbox enforces it).
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import quote_plus

from command.alerts.channels import BaseChannel, OutgoingAlert, chat_markdown, truncate_bytes
from command.alerts.channels.wecom import robot_reply
from command.hookspecs import hookimpl

DINGTALK_URL = "https://oapi.dingtalk.com/robot/send"
MARKDOWN_MAX_BYTES = 20000
SENDING_TOO_FAST = 130101


def sign(secret: str, timestamp_ms: int) -> str:
    """The url-encoded ``sign`` parameter for ``timestamp_ms``."""
    digest = hmac.new(secret.encode("utf-8"), f"{timestamp_ms}\n{secret}".encode("utf-8"), hashlib.sha256).digest()
    return quote_plus(base64.b64encode(digest).decode("ascii"))


class DingTalkChannel(BaseChannel):
    kind = "dingtalk"
    default_rate_per_minute = 20

    def __init__(self, cfg: Any, *, client: Any = None, settings: Any = None,
                 clock_ms: Callable[[], int] | None = None) -> None:
        super().__init__(cfg, client=client, settings=settings)
        url = self.option("url")
        self.url = url or f"{DINGTALK_URL}?access_token={quote_plus(self.option('access_token', required=True))}"
        self.secret: str | None = self.option("secret")
        self.clock_ms = clock_ms or (lambda: int(time.time() * 1000))

    def signed_url(self) -> str:
        if not self.secret:
            return self.url
        ts = self.clock_ms()
        sep = "&" if "?" in self.url else "?"
        return f"{self.url}{sep}timestamp={ts}&sign={sign(self.secret, ts)}"

    def payload(self, alert: OutgoingAlert) -> dict[str, Any]:
        text = truncate_bytes(chat_markdown(alert), MARKDOWN_MAX_BYTES)
        return {"msgtype": "markdown", "markdown": {"title": truncate_bytes(alert.title(), 256), "text": text}}

    def send(self, alert: OutgoingAlert, *, idempotency_key: str) -> str:
        resp = self.post(self.signed_url(), json=self.payload(alert), headers={"Idempotency-Key": idempotency_key})
        return robot_reply(self.kind, self.name, resp, retry_codes=(SENDING_TOO_FAST,))


@hookimpl
def yzt_channel_kinds() -> dict[str, Any]:
    """The DingTalk group robot."""
    return {"dingtalk": DingTalkChannel}
