"""Channel kind ``sms``: an SMS gateway over HTTP. Gateways share no standard, so the request is a template.

    channels:
      - name: gd-sms
        kind: sms
        mode: live
        url: "https://sms-gateway.example/send"
        phones: ["13800000000", "13900000000"]
        template_id: "YJ-001"
        format: json                       # json (default) | form
        template: {"phones": "{phones}", "template_id": "{template_id}", "text": "{text}"}   # the default
        max_chars: 500                     # the text is cut to this many characters (…)
        headers: {"Authorization": "Bearer ..."}

Placeholders: ``{phones}`` alone as a value becomes the phone list (JSON) or a comma-joined string (form);
``{text}``, ``{headline}``, ``{identifier}``, ``{status}``, ``{msg_type}``, ``{area}``, ``{template_id}`` and
``{idempotency_key}`` are substituted inside any string value (nested dicts and lists included).
2xx = delivered; 408/429/5xx = retried; other 4xx = dead-lettered.
"""
from __future__ import annotations

import re
from typing import Any

from command.alerts.channels import BaseChannel, OutgoingAlert
from command.alerts.channels.webhook import receipt_of
from command.errors import ChannelError
from command.hookspecs import hookimpl

DEFAULT_TEMPLATE = {"phones": "{phones}", "template_id": "{template_id}", "text": "{text}"}
_PLACEHOLDER = re.compile(r"\{(\w+)\}")
FIELDS = {"phones", "text", "headline", "identifier", "status", "msg_type", "area", "template_id", "idempotency_key"}


def _check_template(name: str, value: Any) -> None:
    if isinstance(value, dict):
        for v in value.values():
            _check_template(name, v)
    elif isinstance(value, list):
        for v in value:
            _check_template(name, v)
    elif isinstance(value, str):
        unknown = set(_PLACEHOLDER.findall(value)) - FIELDS
        if unknown:
            raise ChannelError(f"channel {name!r} (kind sms): template placeholder(s) {sorted(unknown)} unknown; "
                               f"known: {sorted(FIELDS)}")


def fill(value: Any, fields: dict[str, Any]) -> Any:
    """The template with every placeholder substituted (``"{phones}"`` alone keeps the list)."""
    if isinstance(value, dict):
        return {k: fill(v, fields) for k, v in value.items()}
    if isinstance(value, list):
        return [fill(v, fields) for v in value]
    if isinstance(value, str):
        whole = _PLACEHOLDER.fullmatch(value)
        if whole:
            return fields[whole.group(1)]
        return _PLACEHOLDER.sub(lambda m: str(fields[m.group(1)]), value)
    return value


class SmsChannel(BaseChannel):
    kind = "sms"

    def __init__(self, cfg: Any, *, client: Any = None, settings: Any = None) -> None:
        super().__init__(cfg, client=client, settings=settings)
        self.url: str = self.option("url", required=True)
        phones = self.option("phones", required=True)
        if isinstance(phones, str):
            phones = [p.strip() for p in phones.split(",") if p.strip()]
        if not phones or not all(re.fullmatch(r"\+?\d{5,15}", str(p)) for p in phones):
            raise ChannelError(f"channel {self.name!r} (kind sms): phones must be a list of numbers, got {phones!r}")
        self.phones = [str(p) for p in phones]
        self.template = self.option("template", default=DEFAULT_TEMPLATE)
        _check_template(self.name, self.template)
        self.format = self.option("format", default="json")
        if self.format not in ("json", "form"):
            raise ChannelError(f"channel {self.name!r} (kind sms): format {self.format!r} must be json or form")
        self.max_chars = int(self.option("max_chars", default=500))
        self.headers = dict(self.option("headers", default={}) or {})

    def text(self, alert: OutgoingAlert) -> str:
        text = f"{alert.title()} {alert.text_zh}".strip()
        return text if len(text) <= self.max_chars else text[: self.max_chars - 1] + "…"

    def request_fields(self, alert: OutgoingAlert, idempotency_key: str) -> dict[str, Any]:
        phones: Any = self.phones if self.format == "json" else ",".join(self.phones)
        return {"phones": phones, "text": self.text(alert), "headline": alert.title(),
                "identifier": alert.identifier, "status": alert.status, "msg_type": alert.msg_type,
                "area": alert.area_desc, "template_id": self.option("template_id", default=""),
                "idempotency_key": idempotency_key}

    def send(self, alert: OutgoingAlert, *, idempotency_key: str) -> str:
        body = fill(self.template, self.request_fields(alert, idempotency_key))
        headers = {**self.headers, "Idempotency-Key": idempotency_key}
        if self.format == "json":
            resp = self.post(self.url, json=body, headers=headers)
        else:
            resp = self.post(self.url, data=body, headers=headers)
        return receipt_of(resp)


@hookimpl
def yzt_channel_kinds() -> dict[str, Any]:
    """The templated SMS gateway."""
    return {"sms": SmsChannel}
