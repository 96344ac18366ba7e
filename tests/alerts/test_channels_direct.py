"""A channel given a PlainClient POSTs through its own httpx.HTTPTransport; every outcome must be the one the
client's own post gives (a real local receiver, both paths side by side)."""
from __future__ import annotations

import httpx
import pytest
from helpers_http import Receiver, make_alert

from command.alerts.channels import PermanentError, PlainClient, RetryableError, idempotency_key
from command.alerts.channels.sms import SmsChannel
from command.alerts.channels.webhook import WebhookChannel
from command.alerts.outbox import Outbox
from command.store.sqlite import Store
from settings import ChannelConfig, load_settings

KEY = idempotency_key("GD-1", "ch")


def webhook(url: str, client: httpx.Client) -> WebhookChannel:
    return WebhookChannel(ChannelConfig(name="hook", kind="webhook", mode="live", url=url, secret="s"), client=client)


def outcome(ch: WebhookChannel) -> tuple[str, str, float | None]:
    """(receipt or error class, message without the port, retry_after) of one send."""
    try:
        return "sent", ch.send(make_alert("GD-1", "Actual"), idempotency_key=KEY), None
    except (RetryableError, PermanentError) as e:
        return type(e).__name__, str(e).split(" (")[0], e.retry_after


@pytest.fixture
def both():
    """A channel on each path: PlainClient (its own transport) and a plain httpx.Client (client.post)."""
    with PlainClient(timeout=0.5) as plain, httpx.Client(timeout=0.5) as other:
        yield plain, other


def test_the_plain_client_takes_the_direct_path_and_any_other_client_does_not(both):
    plain, other = both
    assert webhook("http://127.0.0.1:9/x", plain)._transport is not None
    assert webhook("http://127.0.0.1:9/x", other)._transport is None
    mocked = httpx.Client(transport=httpx.MockTransport(lambda r: httpx.Response(200)))
    assert webhook("http://127.0.0.1:9/x", mocked)._transport is None


@pytest.mark.parametrize("status,retry_after", [(200, None), (503, "7"), (429, None), (400, None), (404, None),
                                                (302, None)])
def test_every_status_gives_the_outcome_of_the_clients_post(both, status, retry_after):
    got = []
    for client in both:
        with Receiver() as rx:
            if status != 200:
                rx.fail_next(1, status=status, retry_after=retry_after)
            got.append(outcome(webhook(f"{rx.url}/alerts", client)))
            (req,) = rx.requests
            got.append(sorted((k, v) for k, v in req.headers.items() if k not in ("host",)))
            got.append(req.body)
    assert got[0:3] == got[3:6]
    kind = got[0][0]
    assert kind == {200: "sent", 503: "RetryableError", 429: "RetryableError"}.get(status, "PermanentError")
    if retry_after:
        assert got[0][2] == 7


def test_a_timeout_and_a_refused_connection_are_retryable_on_both_paths(both):
    late = []
    for client in both:
        with Receiver() as rx:
            rx.delay_s = 1.5       # past the clients' 0.5 s
            late.append(outcome(webhook(f"{rx.url}/alerts", client)))
    with Receiver() as gone:
        url = gone.url             # a port that was just freed
    refused = [outcome(webhook(url, c)) for c in both]
    assert late[0] == late[1] and late[0][0] == "RetryableError" and "timeout" in late[0][1]
    assert refused[0] == refused[1] and refused[0][0] == "RetryableError" and "network error" in refused[0][1]


def test_form_and_json_bodies_go_out_as_the_client_sends_them(both):
    seen = []
    for client in both:
        with Receiver() as rx:
            for fmt in ("json", "form"):
                ch = SmsChannel(ChannelConfig(name="sms", kind="sms", mode="live", url=f"{rx.url}/sms",
                                              phones=["13800000000"], template_id="YJ-1", format=fmt), client=client)
                ch.send(make_alert("GD-1", "Actual"), idempotency_key=KEY)
            seen.append([(r.headers.get("content-type"), r.body) for r in rx.requests])
    assert seen[0] == seen[1] and len(seen[0]) == 2


def test_a_proxy_in_the_environment_sends_through_the_client(monkeypatch, both):
    monkeypatch.setenv("HTTPS_PROXY", "http://127.0.0.1:9")
    assert webhook("https://example.invalid/x", both[0])._transport is None


def test_closing_the_outbox_closes_its_channels_transports(tmp_path, monkeypatch):
    closed = []
    real_close = httpx.HTTPTransport.close
    monkeypatch.setattr(httpx.HTTPTransport, "close", lambda self: (closed.append(self), real_close(self))[1])
    with Receiver() as rx:
        chans = [{"name": "hook", "kind": "webhook", "mode": "exercise", "url": rx.url, "secret": "s"}]
        store = Store(tmp_path / "s.db")
        ob = Outbox(store, load_settings(channels=chans))
        ob.enqueue(make_alert("GD-EX-1"))
        ob.run_until_idle(timeout_s=10)
        transport = ob.channel("hook").inner._transport
        assert transport is not None and ob.counts()["sent"] == 1 and rx.accepted_count() == 1
        ob.close()
        store.close()
    assert transport in closed
