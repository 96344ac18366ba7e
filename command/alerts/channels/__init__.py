"""Broadcast channels: what every channel shares (the alert it carries, its errors, HTTP mapping, rate limits).

A channel is a small object built from a ``ChannelConfig`` by a factory that a plugin returns from the
``yzt_channel_kinds`` hook (see ``command/hookspecs.py``)::

    class MyChannel(BaseChannel):
        kind = "my"
        def send(self, alert: OutgoingAlert, *, idempotency_key: str) -> str:
            ...            # returns a receipt; raises RetryableError or PermanentError

    @hookimpl
    def yzt_channel_kinds():
        return {"my": MyChannel}          # factory(cfg, *, client, settings) -> channel

Channels never decide about drills: ``build_channel`` wraps every channel in ``GuardedChannel``, which
refuses an Exercise on a live channel and an Actual on an exercise one, whatever the channel class does.
Delivery errors are not user errors (they are recorded by the outbox and retried), so they are not part of
``command.errors``; configuration mistakes are, and raise ``ChannelError`` at construction.
"""
from __future__ import annotations

import hashlib
import threading
import time
import urllib.request
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from typing import Any, Protocol

import httpx
import pluggy

from command.errors import AlertError, ChannelError

STATUSES = ("Actual", "Exercise")
EXERCISE_TAG = "【演练 EXERCISE】"


@dataclass(frozen=True)
class OutgoingAlert:
    """One alert as handed to the outbox: the CAP XML plus short texts for chat robots and SMS."""

    identifier: str
    incident_id: str
    status: str  # "Actual" | "Exercise"
    msg_type: str  # "Alert" | "Update" | "Cancel"
    cap_xml: str
    headline_zh: str = ""
    text_zh: str = ""
    area_desc: str = ""

    def __post_init__(self) -> None:
        if self.status not in STATUSES:
            raise AlertError(f"alert {self.identifier}: status {self.status!r} cannot be broadcast "
                             f"(only {' or '.join(STATUSES)})")
        if not self.identifier or not self.cap_xml.strip():
            raise AlertError(f"alert {self.identifier!r}: identifier and CAP XML are both required")

    @property
    def is_exercise(self) -> bool:
        return self.status == "Exercise"

    def title(self) -> str:
        """The headline, tagged as an exercise when it is one, so no reader can take a drill for real."""
        head = self.headline_zh or self.identifier
        return f"{EXERCISE_TAG}{head}" if self.is_exercise else head

    def as_dict(self) -> dict[str, str]:
        return {k: getattr(self, k) for k in ("identifier", "incident_id", "status", "msg_type", "headline_zh",
                                              "text_zh", "area_desc", "cap_xml")}


class DeliveryError(Exception):
    """A send did not succeed. ``retry_after`` (seconds) is the receiver's own hint, when it gave one."""

    def __init__(self, message: str, *, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class RetryableError(DeliveryError):
    """Worth trying again later (network, timeout, 5xx, 408/429, a robot's rate limit)."""


class PermanentError(DeliveryError):
    """Trying again cannot help (4xx, a robot refusing the key or the content): dead-lettered at once."""


class Channel(Protocol):
    name: str
    kind: str
    mode: str
    default_rate_per_minute: int | None

    def send(self, alert: OutgoingAlert, *, idempotency_key: str) -> str: ...


ChannelFactory = Callable[..., Channel]


def idempotency_key(identifier: str, channel: str) -> str:
    """sha256(identifier + channel): the same alert on the same channel always carries the same key."""
    return hashlib.sha256(f"{identifier}\n{channel}".encode()).hexdigest()


class PlainClient(httpx.Client):
    """An ``httpx.Client`` as httpx makes it (no auth, event hooks, base URL, cookies or redirects followed)
    with a timeout: what the outbox and a channel built without a client use. A ``BaseChannel`` given one
    POSTs past the client's per-request machinery, through an ``httpx.HTTPTransport`` of its own (``post``),
    unless the environment names a proxy (then through the client, which honours it). Any other client a
    caller hands a channel (a mock transport, a proxy, auth) is used as it is."""

    def __init__(self, *, timeout: float = 10.0) -> None:
        super().__init__(timeout=timeout)


_DIRECT_ARGS = frozenset(("content", "data", "json", "headers"))


class BaseChannel:
    """Common construction: keeps the config, the HTTP client and the settings; reads options."""

    kind = "base"
    default_rate_per_minute: int | None = None

    def __init__(self, cfg: Any, *, client: httpx.Client | None = None, settings: Any = None) -> None:
        self.cfg = cfg
        self.name: str = cfg.name
        self.mode: str = cfg.mode
        self.options: dict[str, Any] = cfg.options
        self._own_client = client is None
        self.client = client if client is not None else PlainClient()
        self.settings = settings
        self._transport: httpx.HTTPTransport | None = None
        if type(self.client) is PlainClient and not urllib.request.getproxies():
            # what the client's own transport is (same TLS verification, limits, SSL_CERT_FILE/DIR), and what
            # its send adds to every request: its default headers and its timeout
            self._transport = httpx.HTTPTransport(verify=True, trust_env=True)
            self._headers = self.client.headers
            self._extensions = {"timeout": self.client.timeout.as_dict()}

    def close(self) -> None:
        """Close this channel's transport, and its client if it made it."""
        if self._transport is not None:
            self._transport.close()
        if self._own_client:
            self.client.close()

    def option(self, key: str, *, required: bool = False, default: Any = None) -> Any:
        value = self.options.get(key, default)
        if required and (value is None or value == ""):
            raise ChannelError(f"channel {self.name!r} (kind {self.kind}): option {key!r} is required")
        return value

    def post(self, url: str | httpx.URL, **kwargs: Any) -> httpx.Response:
        """POST and map the outcome: 2xx returned; 408/429/5xx/network retryable; other statuses permanent."""
        try:
            if self._transport is None or not kwargs.keys() <= _DIRECT_ARGS:
                resp = self.client.post(url, **kwargs)
            else:
                resp = self._post_direct(url, **kwargs)
        except httpx.TimeoutException as e:
            raise RetryableError(f"{self.kind} {self.name}: timeout ({type(e).__name__})") from None
        except httpx.TransportError as e:
            raise RetryableError(f"{self.kind} {self.name}: network error ({type(e).__name__}: {e})") from None
        code = resp.status_code
        if 200 <= code < 300:
            return resp
        detail = f"{self.kind} {self.name}: HTTP {code} {resp.text[:200]!r}"
        if code in (408, 429) or code >= 500:
            raise RetryableError(detail, retry_after=retry_after_s(resp))
        raise PermanentError(detail)

    def _post_direct(self, url: str | httpx.URL, *, headers: Any = None, **body: Any) -> httpx.Response:
        """The POST that ``PlainClient.post`` makes (its headers and timeout, body read, connection back to the
        pool), through this channel's transport: httpx's exceptions are the same (``HTTPTransport`` maps
        httpcore's, for the body too); only the client's auth, redirect, hook and cookie steps, which a
        PlainClient has nothing for, are skipped."""
        merged = self._headers.copy()
        if headers:
            merged.update(headers)
        request = httpx.Request("POST", url, headers=merged, extensions=self._extensions, **body)
        response = self._transport.handle_request(request)          # type: ignore[union-attr]
        response.request = request
        try:
            response.read()
        except BaseException:
            response.close()
            raise
        return response


def retry_after_s(resp: httpx.Response) -> float | None:
    """The Retry-After header in seconds (either form), or None."""
    value = resp.headers.get("retry-after")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        return max(0.0, parsedate_to_datetime(value).timestamp() - time.time())
    except (TypeError, ValueError):
        return None


def truncate_bytes(text: str, limit: int, *, ellipsis: str = "…") -> str:
    """``text`` cut to at most ``limit`` UTF-8 bytes at a character boundary, ending with ``ellipsis`` if cut."""
    data = text.encode("utf-8")
    if len(data) <= limit:
        return text
    room = limit - len(ellipsis.encode("utf-8"))
    return data[:max(room, 0)].decode("utf-8", errors="ignore") + ellipsis


def chat_markdown(alert: OutgoingAlert) -> str:
    """The markdown a chat robot shows: tagged headline, message type, the short text, area and identifier."""
    lines = [f"### {alert.title()}", f"**{alert.msg_type}** · {alert.status}"]
    if alert.area_desc:
        lines.append(f"> 区域: {alert.area_desc}")
    if alert.text_zh:
        lines.append(alert.text_zh)
    lines.append(f"<font color=\"comment\">{alert.identifier}</font>")
    return "\n".join(lines)


class GuardedChannel:
    """The drill guard around any channel: an Exercise never reaches a live channel, an Actual never an
    exercise one. Raises ``AlertError`` before the wrapped channel is touched."""

    def __init__(self, inner: Channel, mode: str) -> None:
        if mode not in ("live", "exercise"):
            raise ChannelError(f"channel {inner.name!r}: mode {mode!r} must be 'live' or 'exercise'")
        self.inner = inner
        self.name = inner.name
        self.kind = inner.kind
        self.mode = mode
        self.default_rate_per_minute = getattr(inner, "default_rate_per_minute", None)

    def send(self, alert: OutgoingAlert, *, idempotency_key: str) -> str:
        check_drill_guard(alert.status, self.mode, self.name, alert.identifier)
        return self.inner.send(alert, idempotency_key=idempotency_key)

    def close(self) -> None:
        """Close the wrapped channel, if it has anything to close."""
        close = getattr(self.inner, "close", None)
        if callable(close):
            close()


def check_drill_guard(status: str, mode: str, channel: str, identifier: str) -> None:
    """Refuse an Exercise to a live channel and an Actual to an exercise channel (AlertError)."""
    if status == "Exercise" and mode != "exercise":
        raise AlertError(f"alert {identifier}: an Exercise may not go to channel {channel!r}, which is {mode}")
    if status == "Actual" and mode != "live":
        raise AlertError(f"alert {identifier}: an Actual alert may not go to channel {channel!r}, which is {mode}")
    if status not in STATUSES:
        raise AlertError(f"alert {identifier}: status {status!r} cannot be broadcast")


class RateLimiter:
    """At most ``per_minute`` sends in any sliding 60 s window (the robots' own rule). Thread-safe."""

    def __init__(self, per_minute: int | None, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.per_minute = per_minute
        self._clock = clock
        self._sent: deque[float] = deque()
        self._lock = threading.Lock()

    def acquire(self) -> tuple[float, float | None]:
        """Take one send now if the window has room: (0.0, token); else (seconds to wait, None), nothing
        taken. Check and take are one step, so workers sharing the channel never exceed the limit together."""
        if not self.per_minute:
            return 0.0, None
        with self._lock:
            now = self._clock()
            while self._sent and self._sent[0] <= now - 60.0:
                self._sent.popleft()
            if len(self._sent) < self.per_minute:
                self._sent.append(now)
                return 0.0, now
            return self._sent[0] + 60.0 - now, None

    def give_back(self, token: float | None) -> None:
        """Return the send that ``acquire`` took (its token) when there turned out to be nothing to send."""
        if token is None:
            return
        with self._lock:
            try:
                self._sent.remove(token)
            except ValueError:
                pass            # already out of the window


# ------------------------------------------------------------------ building a channel from the plugins
def channel_kinds(pm: pluggy.PluginManager | None = None) -> dict[str, ChannelFactory]:
    """Every channel kind known to the plugins. Two plugins claiming one kind is a configuration error."""
    if pm is None:
        from command.plugins import get_plugin_manager
        pm = get_plugin_manager()
    kinds: dict[str, ChannelFactory] = {}
    for provided in pm.hook.yzt_channel_kinds():
        for kind, factory in (provided or {}).items():
            if kind in kinds and kinds[kind] is not factory:
                raise ChannelError(f"channel kind {kind!r} is provided by two plugins; uninstall one")
            kinds[kind] = factory
    return kinds


def build_channel(cfg: Any, *, settings: Any, client: httpx.Client | None = None,
                  pm: pluggy.PluginManager | None = None) -> GuardedChannel:
    """Build the channel of ``cfg`` (a ``ChannelConfig``), wrapped in the drill guard of its mode."""
    kinds = channel_kinds(pm)
    factory = kinds.get(cfg.kind)
    if factory is None:
        raise ChannelError(f"channel {cfg.name!r}: unknown kind {cfg.kind!r}; known kinds: {', '.join(sorted(kinds))}")
    inner = factory(cfg, client=client, settings=settings)
    if getattr(inner, "mode", cfg.mode) != cfg.mode:
        raise ChannelError(f"channel {cfg.name!r}: the {cfg.kind} plugin changed the mode from {cfg.mode}")
    return GuardedChannel(inner, cfg.mode)
