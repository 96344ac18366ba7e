"""Plugins: built-in channel kinds, third parties (registered and through entry points), the conference hook."""
from __future__ import annotations

import sys

import pytest
from helpers_http import make_alert

from command.alerts.channels import GuardedChannel
from command.response.conference import room_name
from command.errors import AlertError, ChannelError
from command.hookspecs import hookimpl
from command.alerts.channels import build_channel as channel, channel_kinds
from command.plugins import get_plugin_manager, make_plugin_manager, open_conference
from settings import ChannelConfig, load_settings

BUILT_IN = {"outbox", "webhook", "wecom", "dingtalk", "sms", "cell_broadcast"}


class RecordingChannel:
    kind = "recording"
    default_rate_per_minute = None

    def __init__(self, cfg, *, client=None, settings=None):
        self.name, self.mode, self.sent = cfg.name, cfg.mode, []

    def send(self, alert, *, idempotency_key):
        self.sent.append((alert.identifier, idempotency_key))
        return f"recorded {len(self.sent)}"


class RecordingPlugin:
    @hookimpl
    def yzt_channel_kinds(self):
        return {"recording": RecordingChannel}


def test_every_built_in_kind_is_a_plugin():
    assert BUILT_IN <= set(channel_kinds())
    assert get_plugin_manager() is get_plugin_manager()


def test_unknown_kind_names_the_known_ones():
    with pytest.raises(ChannelError, match=r"unknown kind 'pager'; known kinds: cell_broadcast, dingtalk, outbox"):
        channel(ChannelConfig(name="p", kind="pager", mode="live"), settings=load_settings())


def test_a_third_party_channel_is_built_and_guarded():
    pm = make_plugin_manager([RecordingPlugin()], entry_points=False)
    ch = channel(ChannelConfig(name="rec", kind="recording", mode="exercise"), settings=load_settings(), pm=pm)
    assert isinstance(ch, GuardedChannel)
    assert ch.send(make_alert("GD-1"), idempotency_key="k") == "recorded 1"
    with pytest.raises(AlertError):
        ch.send(make_alert("GD-2", "Actual"), idempotency_key="k2")
    assert ch.inner.sent == [("GD-1", "k")]


def test_two_plugins_claiming_one_kind_is_refused():
    class Clash:
        @hookimpl
        def yzt_channel_kinds(self):
            return {"webhook": RecordingChannel}
    with pytest.raises(ChannelError, match="'webhook' is provided by two plugins"):
        channel_kinds(make_plugin_manager([Clash()], entry_points=False))


def test_entry_point_plugins_are_loaded(tmp_path, monkeypatch):
    (tmp_path / "yzt_pager_plugin.py").write_text(
        "from command.hookspecs import hookimpl\n"
        "class Pager:\n"
        "    kind = 'pager'\n"
        "    def __init__(self, cfg, *, client=None, settings=None):\n"
        "        self.name, self.mode = cfg.name, cfg.mode\n"
        "    def send(self, alert, *, idempotency_key):\n"
        "        return 'paged'\n"
        "@hookimpl\n"
        "def yzt_channel_kinds():\n"
        "    return {'pager': Pager}\n", encoding="utf-8")
    dist = tmp_path / "yzt_pager_plugin-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: yzt-pager-plugin\nVersion: 1.0\n", encoding="utf-8")
    (dist / "entry_points.txt").write_text("[yzt]\npager = yzt_pager_plugin\n", encoding="utf-8")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "yzt_pager_plugin", raising=False)
    pm = make_plugin_manager()
    assert "pager" in channel_kinds(pm)
    ch = channel(ChannelConfig(name="pg", kind="pager", mode="live"), settings=load_settings(), pm=pm)
    assert ch.send(make_alert("GD-1", "Actual"), idempotency_key="k") == "paged"


def test_default_conference_room_from_the_settings():
    s = load_settings(conference_url_template="https://meet.gd.example/join/{room}", conference_dial="020-12345678")
    conf = open_conference("GD-20240501-001", "天河火灾", "II", s)
    assert conf == {"link": "https://meet.gd.example/join/yzt-gd-20240501-001", "dial": "020-12345678",
                    "room": "yzt-gd-20240501-001", "provider": "default"}


def test_rooms_stay_distinct_when_characters_are_dropped():
    assert room_name("粤-2024-1") != room_name("深-2024-1")
    assert room_name("粤-2024-1").startswith("yzt-2024-1-")
    with pytest.raises(ChannelError):
        room_name("  ")


def test_a_third_party_bridge_wins_over_the_default():
    class Bridge:
        @hookimpl
        def yzt_conference_open(self, incident_id, title, level, settings):
            return {"link": f"https://bridge.example/{incident_id}", "dial": None, "provider": "bridge"}
    pm = make_plugin_manager([Bridge()], entry_points=False)
    assert open_conference("GD-1", "t", "I", load_settings(), pm=pm)["provider"] == "bridge"
