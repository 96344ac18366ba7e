"""Channel kind ``wecom``: a WeCom (企业微信) group robot, markdown message.

    channels: [{name: gd-wecom, kind: wecom, mode: live, key: "ROBOT-KEY"}]       # or url: full webhook URL

``POST https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=KEY`` with
``{"msgtype": "markdown", "markdown": {"content": ...}}``; content at most 4096 UTF-8 bytes (cut at a
character boundary, ending with …). Response ``errcode`` 0 = delivered; 45009 (too many calls) = retried after a
minute; any other errcode = dead-lettered. A robot takes 20 messages a minute: the outbox enforces it (the
channel's default ``rate_per_minute``). WeCom ignores the Idempotency-Key header; it is sent anyway.
"""
from __future__ import annotations

from typing import Any
from urllib.parse import quote_plus

from command.alerts.channels import BaseChannel, OutgoingAlert, PermanentError, RetryableError, chat_markdown, truncate_bytes
from command.hookspecs import hookimpl

WECOM_URL = "https://qyapi.weixin.qq.com/cgi-bin/webhook/send"
MARKDOWN_MAX_BYTES = 4096
RATE_LIMITED = 45009


def robot_reply(kind: str, name: str, resp: Any, *, retry_codes: tuple[int, ...]) -> str:
    """Map a robot's JSON reply (``errcode``/``errmsg``) to a receipt or a delivery error."""
    try:
        data = resp.json()
        code = int(data.get("errcode"))
    except (ValueError, TypeError, AttributeError):
        raise RetryableError(f"{kind} {name}: reply is not the robot's JSON: {resp.text[:120]!r}") from None
    msg = str(data.get("errmsg", ""))
    if code == 0:
        return f"errcode 0 {msg}".strip()
    if code in retry_codes:
        raise RetryableError(f"{kind} {name}: rate limited (errcode {code} {msg})", retry_after=60.0)
    raise PermanentError(f"{kind} {name}: refused (errcode {code} {msg})")


class WeComChannel(BaseChannel):
    kind = "wecom"
    default_rate_per_minute = 20

    def __init__(self, cfg: Any, *, client: Any = None, settings: Any = None) -> None:
        super().__init__(cfg, client=client, settings=settings)
        url = self.option("url")
        self.url = url or f"{WECOM_URL}?key={quote_plus(self.option('key', required=True))}"

    def payload(self, alert: OutgoingAlert) -> dict[str, Any]:
        content = truncate_bytes(chat_markdown(alert), MARKDOWN_MAX_BYTES)
        return {"msgtype": "markdown", "markdown": {"content": content}}

    def send(self, alert: OutgoingAlert, *, idempotency_key: str) -> str:
        resp = self.post(self.url, json=self.payload(alert),
                         headers={"Idempotency-Key": idempotency_key})
        return robot_reply(self.kind, self.name, resp, retry_codes=(RATE_LIMITED,))


@hookimpl
def yzt_channel_kinds() -> dict[str, Any]:
    """The WeCom group robot."""
    return {"wecom": WeComChannel}
