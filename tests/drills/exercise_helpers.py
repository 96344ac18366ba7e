"""What the exercise tests share: a wall clock moved by hand, scenario text, a player's warning, a row."""
from __future__ import annotations

import yaml

from command.security.auth import Principal

PLAYER = Principal("cmd1", "commander")
REPORT_A = {"at": 0, "kind": "report", "incident": "A", "address": "广州市天河区天河路", "type": "gas_explosion",
            "casualties": {"serious_injuries": 3}}
BASIC = [REPORT_A,
         {"at": "4m", "kind": "alert", "incident": "A", "instruction": "请远离"},
         {"at": "10m", "kind": "update", "incident": "A", "casualties": {"deaths": 4, "serious_injuries": 15}},
         {"at": "30m", "kind": "cancel_alert", "incident": "A"},
         {"at": "1h", "kind": "close", "incident": "A"}]


class Wall:
    """A wall clock moved by hand (epoch seconds)."""

    def __init__(self) -> None:
        self.t = 1_000_000.0

    def __call__(self) -> float:
        return self.t

    def advance(self, seconds: float) -> None:
        self.t += seconds


def scenario_text(events: list[dict], name: str = "测试演练", **extra) -> str:
    return yaml.safe_dump({"format": 1, "name": name, "start": "2026-03-14T09:00:00+08:00", "events": events,
                           **extra}, allow_unicode=True)


def send_alert(ex, key="A", who=PLAYER):
    iid = ex.incident_ids[key]
    draft = ex.service.draft_alert(iid, actor=who, instruction_zh="请远离商场")
    ex.service.send_alert(iid, draft, actor=who, confirm=True)


def row(state, event):
    return next(r for r in state["expected"] if r["event"] == event)
