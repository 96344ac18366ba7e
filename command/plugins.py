"""The plugin manager: built-in default plugins plus third parties from the ``yzt`` entry-point group.

    from command.plugins import get_plugin_manager, open_conference
    conf = open_conference("GD-1", "广州天河火灾", "II", settings)         # {"link", "dial", "provider"}

Hooks are declared in ``command/hookspecs.py``; channels are built from the plugins' kinds in
``command.alerts.channels.build_channel``. ``make_plugin_manager()`` builds a fresh manager (tests add
their own plugins to it); ``get_plugin_manager()`` is the cached one of the process.
"""
from __future__ import annotations

import functools
import importlib
from collections.abc import Iterable
from typing import Any

import pluggy

from command import hookspecs
from command.errors import ChannelError

DEFAULT_PLUGINS = (
    "command.alerts.channels.outbox_file",
    "command.alerts.channels.webhook",
    "command.alerts.channels.wecom",
    "command.alerts.channels.dingtalk",
    "command.alerts.channels.sms",
    "command.alerts.channels.cell_broadcast",
    "command.response.conference",
    "command.response.delivery_log",       # final delivery outcomes into the incident's timeline
)


def make_plugin_manager(extra: Iterable[object] = (), *, entry_points: bool = True) -> pluggy.PluginManager:
    """A new manager with the default plugins, ``extra`` plugin objects and (optionally) entry points."""
    pm = pluggy.PluginManager(hookspecs.PROJECT)
    pm.add_hookspecs(hookspecs)
    for name in DEFAULT_PLUGINS:
        pm.register(importlib.import_module(name), name=name)
    for plugin in extra:
        pm.register(plugin)
    if entry_points:
        pm.load_setuptools_entrypoints(hookspecs.PROJECT)
    return pm


@functools.lru_cache(maxsize=1)
def get_plugin_manager() -> pluggy.PluginManager:
    """The process-wide plugin manager (built on first use)."""
    return make_plugin_manager()


def open_conference(incident_id: str, title: str, level: str | None, settings: Any,
                    pm: pluggy.PluginManager | None = None) -> dict[str, Any]:
    """The response group's conference from the first plugin that answers (the default one last)."""
    pm = pm or get_plugin_manager()
    result = pm.hook.yzt_conference_open(incident_id=incident_id, title=title, level=level, settings=settings)
    if not result or not result.get("link"):
        raise ChannelError(f"incident {incident_id}: no conference plugin returned a link")
    return result
