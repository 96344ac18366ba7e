"""Broadcast channels against a real local receiver (and httpx.MockTransport where a status is all we need)."""
from __future__ import annotations

import base64
import hashlib
import hmac
import json
from urllib.parse import parse_qs, unquote_plus

import httpx
import pytest
from helpers_http import Receiver, make_alert
from hypothesis import given
from hypothesis import strategies as st

from command.alerts.channels import (GuardedChannel, PermanentError, RateLimiter, RetryableError, idempotency_key,
                              truncate_bytes)
from command.alerts.channels.cell_broadcast import CellBroadcastChannel
from command.alerts.channels.dingtalk import DingTalkChannel, sign
from command.alerts.channels.outbox_file import OutboxFileChannel
from command.alerts.channels.sms import SmsChannel
from command.alerts.channels.webhook import WebhookChannel, signature
from command.alerts.channels.wecom import MARKDOWN_MAX_BYTES, WeComChannel
from command.errors import AlertError, ChannelError
from settings import ChannelConfig, load_settings

KEY = idempotency_key("GD-1", "ch")


def cfg(kind: str, mode: str = "live", **opts) -> ChannelConfig:
    return ChannelConfig(name=f"test-{kind}", kind=kind, mode=mode, **opts)


@pytest.fixture
def rx():
    with Receiver() as r:
        yield r


@pytest.fixture
def client():
    with httpx.Client(timeout=5) as c:
        yield c


def mock_client(status: int, body: dict | None = None, headers: dict | None = None) -> httpx.Client:
    return httpx.Client(transport=httpx.MockTransport(lambda req: httpx.Response(status, json=body or {},
                                                                                headers=headers)))


def test_dingtalk_sign_matches_the_standards_vector():
    assert sign("SECtestsecret", 1700000000000) == "7LVwF0dAF3%2F%2BMRRulbpE4y72Ogzykc6bS2nG4I99T4s%3D"


def test_dingtalk_request_carries_a_verifiable_signature(rx, client):
    rx.reply = lambda req: (200, {"errcode": 0, "errmsg": "ok"})
    ch = DingTalkChannel(cfg("dingtalk", url=f"{rx.url}/robot/send?access_token=TOK", secret="SECabc"),
                         client=client, clock_ms=lambda: 1700000000000)
    receipt = ch.send(make_alert("GD-1", "Actual"), idempotency_key=KEY)
    assert receipt.startswith("errcode 0")
    req = rx.requests[0]
    assert req.query["access_token"] == ["TOK"] and req.query["timestamp"] == ["1700000000000"]
    raw_sign = dict(p.split("=", 1) for p in req.raw_query.split("&"))["sign"]
    expected = base64.b64encode(hmac.new(b"SECabc", b"1700000000000\nSECabc", hashlib.sha256).digest()).decode()
    assert unquote_plus(raw_sign) == expected
    body = req.json()
    assert body["msgtype"] == "markdown" and "天河区火灾预警" in body["markdown"]["text"]


def test_dingtalk_rate_limit_errcode_is_retryable_and_others_permanent():
    ch = DingTalkChannel(cfg("dingtalk", access_token="T"), client=mock_client(200, {"errcode": 130101}))
    with pytest.raises(RetryableError) as e:
        ch.send(make_alert("GD-1", "Actual"), idempotency_key=KEY)
    assert e.value.retry_after == 60
    ch = DingTalkChannel(cfg("dingtalk", access_token="T"), client=mock_client(200, {"errcode": 310000}))
    with pytest.raises(PermanentError, match="310000"):
        ch.send(make_alert("GD-1", "Actual"), idempotency_key=KEY)
    assert DingTalkChannel.default_rate_per_minute == 20


def test_wecom_markdown_and_errcodes(rx, client):
    rx.reply = lambda req: (200, {"errcode": 0, "errmsg": "ok"})
    ch = WeComChannel(cfg("wecom", mode="exercise", url=f"{rx.url}/cgi-bin/webhook/send?key=K1"), client=client)
    assert ch.send(make_alert("GD-1"), idempotency_key=KEY) == "errcode 0 ok"
    body = rx.requests[0].json()
    assert rx.requests[0].query["key"] == ["K1"]
    assert body["msgtype"] == "markdown"
    assert body["markdown"]["content"].startswith("### 【演练 EXERCISE】天河区火灾预警")
    for code, err in ((45009, RetryableError), (93000, PermanentError)):
        bad = WeComChannel(cfg("wecom", key="K"), client=mock_client(200, {"errcode": code, "errmsg": "x"}))
        with pytest.raises(err, match=str(code)):
            bad.send(make_alert("GD-1", "Actual"), idempotency_key=KEY)
    assert WeComChannel.default_rate_per_minute == 20


def test_wecom_long_content_is_cut_to_4096_bytes_at_a_character_boundary():
    seen = []

    def handler(req: httpx.Request) -> httpx.Response:
        seen.append(json.loads(req.content))
        return httpx.Response(200, json={"errcode": 0})
    ch = WeComChannel(cfg("wecom", key="K"), client=httpx.Client(transport=httpx.MockTransport(handler)))
    ch.send(make_alert("GD-1", "Actual", text_zh="疏散" * 3000), idempotency_key=KEY)
    content = seen[0]["markdown"]["content"]
    assert len(content.encode("utf-8")) <= MARKDOWN_MAX_BYTES
    assert content.endswith("…") and "\ufffd" not in content


@given(st.text(max_size=300), st.integers(min_value=3, max_value=400))
def test_truncate_bytes_never_exceeds_the_limit_nor_splits_a_character(text, limit):
    out = truncate_bytes(text, limit)
    assert len(out.encode("utf-8")) <= limit
    if len(text.encode("utf-8")) <= limit:
        assert out == text
    else:
        assert out.endswith("…") and text.startswith(out[:-1])


def test_webhook_signs_the_body_and_sends_the_idempotency_key(rx, client):
    ch = WebhookChannel(cfg("webhook", url=f"{rx.url}/alerts", secret="s3cret"), client=client)
    receipt = ch.send(make_alert("GD-1", "Actual"), idempotency_key=KEY)
    assert receipt == "HTTP 200 receipt=r-1"
    req = rx.requests[0]
    assert req.headers["x-yzt-signature"] == signature("s3cret", req.body)
    assert req.headers["x-yzt-signature"] == "sha256=" + hmac.new(b"s3cret", req.body, hashlib.sha256).hexdigest()
    assert req.headers["idempotency-key"] == KEY
    body = req.json()
    assert body["identifier"] == "GD-1" and body["status"] == "Actual" and "<alert" in body["cap_xml"]


@pytest.mark.parametrize("status,error", [(400, PermanentError), (401, PermanentError), (404, PermanentError),
                                          (408, RetryableError), (429, RetryableError), (500, RetryableError),
                                          (503, RetryableError)])
def test_webhook_maps_http_statuses(status, error):
    ch = WebhookChannel(cfg("webhook", url="http://127.0.0.1:9/x", secret="s"),
                        client=mock_client(status, headers={"Retry-After": "7"}))
    with pytest.raises(error) as e:
        ch.send(make_alert("GD-1", "Actual"), idempotency_key=KEY)
    assert str(status) in str(e.value)
    if error is RetryableError:
        assert e.value.retry_after == 7


def test_webhook_refuses_a_url_that_does_not_parse_when_it_is_built():
    with pytest.raises(ChannelError, match=r"test-webhook.*'http://\[::1' is not a URL"):
        WebhookChannel(cfg("webhook", url="http://[::1", secret="s"))


def test_webhook_unreachable_receiver_is_retryable(client):
    with Receiver() as r:
        url = r.url  # a port that was just freed
    ch = WebhookChannel(cfg("webhook", url=url, secret="s"), client=client)
    with pytest.raises(RetryableError, match="network error"):
        ch.send(make_alert("GD-1", "Actual"), idempotency_key=KEY)


def test_sms_fills_the_json_and_form_templates(rx, client):
    ch = SmsChannel(cfg("sms", url=f"{rx.url}/sms", phones=["13800000000", "13900000000"], template_id="YJ-1"),
                    client=client)
    ch.send(make_alert("GD-1", "Actual"), idempotency_key=KEY)
    body = rx.requests[0].json()
    assert body == {"phones": ["13800000000", "13900000000"], "template_id": "YJ-1",
                    "text": "天河区火灾预警 请远离珠江新城一带。"}
    form = SmsChannel(cfg("sms", url=f"{rx.url}/sms", phones="13800000000", format="form", max_chars=8,
                          template={"mobile": "{phones}", "msg": "{text}", "ref": "yzt-{identifier}"}), client=client)
    form.send(make_alert("GD-2", "Actual"), idempotency_key=KEY + "x")
    sent = parse_qs(rx.requests[1].body.decode())
    assert sent == {"mobile": ["13800000000"], "msg": ["天河区火灾预警…"], "ref": ["yzt-GD-2"]}


def test_sms_refuses_unknown_placeholders_and_bad_phones():
    with pytest.raises(ChannelError, match="placeholder"):
        SmsChannel(cfg("sms", url="http://x", phones=["13800000000"], template={"t": "{body}"}))
    with pytest.raises(ChannelError, match="phones"):
        SmsChannel(cfg("sms", url="http://x", phones=["call me"]))


def test_cell_broadcast_posts_the_cap_xml(rx, client):
    ch = CellBroadcastChannel(cfg("cell_broadcast", url=f"{rx.url}/cap", token="T0K"), client=client)
    alert = make_alert("GD-9", "Actual")
    ch.send(alert, idempotency_key=KEY)
    req = rx.requests[0]
    assert req.headers["content-type"].startswith("application/cap+xml")
    assert req.headers["authorization"] == "Bearer T0K"
    assert req.body.decode("utf-8") == alert.cap_xml


@pytest.mark.parametrize("kind,opts,missing", [
    ("webhook", {"secret": "s"}, "url"), ("webhook", {"url": "http://x"}, "secret"),
    ("wecom", {}, "key"), ("dingtalk", {}, "access_token"), ("sms", {"phones": ["13800000000"]}, "url"),
    ("sms", {"url": "http://x"}, "phones"), ("cell_broadcast", {}, "url")])
def test_missing_options_are_refused_at_construction(kind, opts, missing):
    cls = {"webhook": WebhookChannel, "wecom": WeComChannel, "dingtalk": DingTalkChannel, "sms": SmsChannel,
           "cell_broadcast": CellBroadcastChannel}[kind]
    with pytest.raises(ChannelError, match=f"option '{missing}' is required"):
        cls(cfg(kind, **opts))


def test_file_channel_writes_each_key_once_even_across_instances(tmp_path):
    s = load_settings(var_dir=tmp_path / "var")
    ch = OutboxFileChannel(cfg("outbox", mode="exercise"), settings=s)
    assert ch.path == tmp_path / "var" / "outbox-test-outbox.jsonl"
    first = ch.send(make_alert("GD-1"), idempotency_key="k1")
    assert ch.send(make_alert("GD-1"), idempotency_key="k1") == f"{first} (already written)"
    other = OutboxFileChannel(cfg("outbox", mode="exercise"), settings=s)  # e.g. another process
    assert other.send(make_alert("GD-1"), idempotency_key="k1").endswith("(already written)")
    other.send(make_alert("GD-2"), idempotency_key="k2")
    ch.send(make_alert("GD-2"), idempotency_key="k2")
    lines = [json.loads(x) for x in ch.path.read_text(encoding="utf-8").splitlines()]
    assert [x["identifier"] for x in lines] == ["GD-1", "GD-2"]
    assert lines[0]["headline_zh"] == "天河区火灾预警" and lines[0]["mode"] == "exercise"


def test_file_channel_survives_a_torn_last_line(tmp_path):
    path = tmp_path / "o.jsonl"
    path.write_bytes(b'{"idempotency_key": "k0", "identifier": "GD-0"}\n{"idempotency_key": "k1", "ident')
    ch = OutboxFileChannel(cfg("outbox", mode="exercise", path=str(path)))
    assert ch.send(make_alert("GD-0"), idempotency_key="k0").endswith("(already written)")
    ch.send(make_alert("GD-1"), idempotency_key="k1")
    lines = path.read_bytes().splitlines()
    assert json.loads(lines[-1])["identifier"] == "GD-1" and len(lines) == 3


class Recording:
    name, kind, mode, default_rate_per_minute = "rec", "rec", "live", None

    def __init__(self):
        self.sent = []

    def send(self, alert, *, idempotency_key):
        self.sent.append(alert.identifier)
        return "ok"


@pytest.mark.parametrize("mode,status", [("live", "Exercise"), ("exercise", "Actual")])
def test_the_drill_guard_refuses_before_the_channel_is_touched(mode, status):
    inner = Recording()
    guarded = GuardedChannel(inner, mode)
    with pytest.raises(AlertError, match="may not go to channel 'rec'"):
        guarded.send(make_alert("GD-1", status), idempotency_key=KEY)
    assert inner.sent == []


def test_rate_limiter_allows_n_per_sliding_minute():
    now = [1000.0]
    lim = RateLimiter(3, clock=lambda: now[0])
    for _ in range(3):
        assert lim.acquire()[0] == 0
        now[0] += 1
    assert lim.acquire() == (pytest.approx(57.0), None)
    now[0] = 1060.0
    assert lim.acquire()[0] == 0


def test_rate_limiter_acquire_takes_and_gives_back_in_one_step():
    now = [1000.0]
    lim = RateLimiter(2, clock=lambda: now[0])
    wait_a, a = lim.acquire()
    now[0] = 1005.0
    wait_b, b = lim.acquire()
    assert wait_a == wait_b == 0 and (a, b) == (1000.0, 1005.0)
    assert lim.acquire() == (pytest.approx(55.0), None)      # full: nothing taken
    lim.give_back(a)                                          # A found nothing to send: ITS slot comes back
    now[0] = 1060.0
    assert lim.acquire()[0] == 0                              # A's slot, then B's (taken at 1005) still counts
    assert lim.acquire()[0] == pytest.approx(5.0)             # so no third send inside (1005, 1065]
    assert RateLimiter(None).acquire() == (0.0, None)
