"""The default conference plugin: a room per incident on the bridge named in the settings.

    settings.conference_url_template = "https://meeting.example.gov.cn/join/{room}"
    open_conference("GD-20240501-001", "title", "II", settings)
    -> {"link": "https://meeting.example.gov.cn/join/yzt-gd-20240501-001", "dial": settings.conference_dial,
        "room": "yzt-gd-20240501-001", "provider": "default"}

Registered last (``trylast``) so a third-party bridge plugin answering ``yzt_conference_open`` wins.
Announcing the conference to the group's channel is the service's job, through the outbox.
"""
from __future__ import annotations

import hashlib
import re
from typing import Any
from urllib.parse import quote

from command.errors import ChannelError
from command.hookspecs import hookimpl


def room_name(incident_id: str) -> str:
    """``yzt-<incident>``: lower case, only [a-z0-9-], safe in any URL and readable on the phone; a short hash
    is added when characters had to be dropped, so two incidents never share a room."""
    if not incident_id.strip():
        raise ChannelError("conference: the incident id is empty, no room can be named after it")
    slug = re.sub(r"[^a-z0-9]+", "-", incident_id.lower()).strip("-")
    if slug != incident_id.lower():  # something was dropped (e.g. Chinese): keep rooms distinct
        slug = f"{slug}-{hashlib.sha1(incident_id.encode()).hexdigest()[:8]}".strip("-")
    return f"yzt-{slug}"


@hookimpl(trylast=True)
def yzt_conference_open(incident_id: str, title: str, level: str | None, settings: Any) -> dict[str, Any]:
    """The room of this incident on the configured bridge."""
    room = room_name(incident_id)
    template = settings.conference_url_template
    if "{room}" not in template:
        raise ChannelError(f"settings conference_url_template {template!r}: must contain {{room}}")
    return {"link": template.replace("{room}", quote(room)), "dial": settings.conference_dial,
            "room": room, "provider": "default"}
