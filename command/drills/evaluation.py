"""The after-action report of a live exercise: what the players were expected to do against what they did.

    from command.drills import evaluation
    rows = evaluation.score(ex)                  # one row per expected action: done / missed / pending
    report = evaluation.build_report(ex)         # the whole report as plain JSON values
    evaluation.to_markdown(report); evaluation.to_html(report)   # every text escaped: a name cannot run
    evaluation.write(report, Path("aar.html"))   # .md or .html by suffix, atomically

Scoring. The scenario's ``alert``, ``cancel_alert``, ``close``, ``task`` and ``task_done`` events are the
expected actions (HSEEP: the MSEL's expected player actions). A player's sent Alert/Update warning on the
incident, its Cancel, its close, a task they set, a task they marked done are the actions; within one
incident and kind they match in order of time. A task matches a player's task for the same role or unit
(``role_matches``: equal once spaces and case are ignored, or one names the other, 消防 ~ 消防救援支队); a
task_done matches the completion of the task its task event was matched to, else of any task for that role. An expected action is in time
when done by its deadline: its time plus the exercise's tolerance (``tolerance_s``), both in exercise time,
so a pause never counts against it; an action due inside a jump is measured from where the jump landed.
Nobody did it: ``missed`` once the deadline has passed, and at the end. Every other player action (a
report of their own, an update, a note, a task, an approval, a draft never sent, a second warning the
scenario did not ask for) is listed as unexpected.

Ratings per capability on HSEEP's scale: P (performed without challenges: every action done in time),
S (with some challenges: all done, some late), M (with major challenges: some missed), U (unable to be
performed: none done). The evaluator may replace a rating, with a comment (``Exercise.rate``).

Layout as the Chinese guides ask (AQ/T 9009-2015 生产安全事故应急演练评估规范; GB/T 46792-2025): 现场点评
(the on-site debrief right after the exercise), 评估报告 (the evaluation report: overview, actions against
targets, ratings, the drill report's system targets with their bases, the timeline), 演练总结 (the summary:
conclusion and what to improve). The trainer's notes come in their own section, never in the timeline.
"""
from __future__ import annotations

import html
import re
from collections import defaultdict
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Callable

from command.drills.aar import LOCATION_HEAD, location_rows
from command.response.timeline import iso

RATINGS = {"P": "Performed without challenges 顺利完成", "S": "Performed with some challenges 基本完成",
           "M": "Performed with major challenges 存在较大问题", "U": "Unable to be performed 未能完成"}
CAPABILITIES = {
    "warning": ("公众信息与预警", "Public Information and Warning"),
    "coordination": ("行动协调", "Operational Coordination"),
}
KIND_CAPABILITY = {"alert": "warning", "cancel_alert": "warning", "close": "coordination",
                   "task": "coordination", "task_done": "coordination"}
KIND_NAME = {"alert": "发布预警 send the warning", "cancel_alert": "解除预警 cancel the warning",
             "close": "结束响应 close the incident", "task": "下达任务 set the task",
             "task_done": "完成任务 complete the task"}
BASIS = "HSEEP MSEL: the scenario's time for the action plus the exercise's tolerance, in exercise time"


@dataclass(frozen=True)
class Action:
    """One player action read from the exercise's store, at exercise seconds ``at_s``."""

    at_s: int
    kind: str                  # alert | cancel_alert | close | report | update | note | task | approve | draft
    incident: str              # the scenario's key, or the incident id for one the players opened
    by: str
    detail: str
    seq: int
    role: str = ""             # a task's role or unit (task, task_done)
    task_id: str = ""          # the service's task id (task, task_done)


def _norm(text: str | None) -> str:
    return "".join(str(text or "").split()).casefold()


def role_matches(expected: str | None, actual: str | None) -> bool:
    """A player's task role stands for the scenario's: equal without spaces and case, or one contains the
    other (消防 ~ 消防救援支队, 交警 ~ 市交警支队). An expected task without a role takes any."""
    want, got = _norm(expected), _norm(actual)
    if not want:
        return True
    return bool(got) and (want == got or want in got or got in want)


def _offset(start: datetime, at: str) -> int:
    return int((datetime.fromisoformat(at) - start).total_seconds())


def player_actions(ex) -> list[Action]:
    """Every action of the exercise's players in its store, in order."""
    events = ex.service.store.events()
    keys = {iid: key for key, iid in ex.incident_ids.items()}
    players = set(ex.players)
    start = ex.scenario.start
    drafted = {e.payload.get("identifier"): e for e in events if e.kind == "AlertDrafted"}
    sent = {e.payload.get("identifier") for e in events if e.kind == "AlertApproved"
            and not e.payload.get("second")}
    tasks_set = {(e.incident_id, e.payload.get("task_id")): e.payload for e in events if e.kind == "TaskSet"}
    out: list[Action] = []
    for e in events:
        if e.actor not in players:
            continue
        p, key = e.payload, keys.get(e.incident_id, e.incident_id)
        kind = detail = None
        if e.kind == "AlertApproved" and not p.get("second"):
            d = drafted.get(p.get("identifier"))
            if d is not None and d.payload.get("msg_type") in ("Alert", "Update"):
                kind = "alert"
                detail = f"{d.payload.get('msg_type')} {p.get('identifier')} ({d.payload.get('status')})"
        elif e.kind == "AlertApproved":
            kind, detail = "approve", f"approved {p.get('identifier')}"
        elif e.kind == "AlertCancelled":
            kind, detail = "cancel_alert", f"Cancel {p.get('identifier')}"
        elif e.kind == "Closed":
            kind, detail = "close", p.get("reason") or "closed"
        elif e.kind == "Reported":
            kind, detail = "report", f"{p.get('type')} {p.get('address') or ''}".strip()
        elif e.kind == "Updated":
            kind, detail = "update", ", ".join(sorted(p.get("changes", {})))
        elif e.kind == "NoteAdded":
            kind, detail = "note", str(p.get("text", ""))
        elif e.kind in ("TaskSet", "TaskDone"):
            out.append(_task_action(e, key, start, tasks_set))
            continue
        elif e.kind == "AlertDrafted" and p.get("identifier") not in sent:
            kind, detail = "draft", f"{p.get('msg_type')} {p.get('identifier')} drafted, never sent"
        if kind is not None:
            out.append(Action(_offset(start, e.at), kind, key, e.actor, detail or "", e.seq))
    return out


def _task_action(e, key: str, start: datetime, tasks: dict[tuple[str, str], dict]) -> Action:
    """A task a player set (its role and text) or marked done (the role of the task it completes)."""
    task_id = str(e.payload.get("task_id", ""))
    task = tasks.get((e.incident_id, task_id), {})
    role = str(task.get("role", ""))
    if e.kind == "TaskSet":
        return Action(_offset(start, e.at), "task", key, e.actor, f"{task_id} {role}: {task.get('text', '')}",
                      e.seq, role=role, task_id=task_id)
    return Action(_offset(start, e.at), "task_done", key, e.actor, f"{task_id} {role} done", e.seq,
                  role=role, task_id=task_id)


def _deadline(due_s: int, target_s: int, jumps: list[tuple[float, float]]) -> int:
    due = float(due_s)
    for before, after in jumps:
        if before < due <= after:
            due = max(due, after)
    return int(due) + target_s


def score(ex, actions: list[Action] | None = None) -> list[dict[str, Any]]:
    """One row per expected action, in the scenario's order of time (see the module docstring)."""
    actions = player_actions(ex) if actions is None else actions
    now, finished, jumps = ex.offset_s(), ex.finished, ex.jumps()
    free: dict[tuple[str, str], list[Action]] = defaultdict(list)     # (incident, kind) -> unmatched, in order
    for a in actions:
        if a.kind in KIND_CAPABILITY:
            free[(a.incident, a.kind)].append(a)
    task_ids: dict[tuple[str, str | None], str] = {}                 # (incident, task key) -> matched task id
    rows = []
    for x in sorted(ex.expected, key=lambda x: (x.due_s, x.event)):
        deadline = _deadline(x.due_s, x.target_s, jumps)
        row = {"event": x.event, "kind": x.kind, "incident": x.incident, "due_s": x.due_s,
               "target_s": x.target_s, "deadline_s": deadline, "capability": KIND_CAPABILITY[x.kind],
               "basis": BASIS, "status": "pending", "done_at_s": None, "by": None, "in_time": None,
               "late_by_s": None, "seq": None, "role": x.role, "text": x.text}
        a = _match(x, free[(x.incident, x.kind)], task_ids)
        if a is not None:
            if x.kind == "task" and x.task is not None:
                task_ids[(x.incident, x.task)] = a.task_id
            row.update(status="done", done_at_s=a.at_s, by=a.by, in_time=a.at_s <= deadline,
                       late_by_s=max(0, a.at_s - deadline), seq=a.seq, detail=a.detail)
        elif finished or now > deadline:
            row["status"] = "missed"
        rows.append(row)
    return rows


def _match(x, free: list[Action], task_ids: dict[tuple[str, str | None], str]) -> Action | None:
    """The first unmatched action that does ``x`` (taken off ``free``): in order of time; a task for its role;
    a task_done of the task its task was matched to (only that one), or when no player set that task, of a
    task for its role."""
    if x.kind == "task_done" and (x.incident, x.task) in task_ids:
        pick = next((a for a in free if a.task_id == task_ids[(x.incident, x.task)]), None)
    elif x.kind in ("task", "task_done"):
        pick = next((a for a in free if role_matches(x.role, a.role)), None)
    else:
        pick = free[0] if free else None
    if pick is not None:
        free.remove(pick)
    return pick


def unexpected(ex, actions: list[Action], rows: list[dict[str, Any]]) -> list[Action]:
    matched = {r["seq"] for r in rows if r["seq"] is not None}
    return [a for a in actions if a.seq not in matched]


def contract_row(row: dict[str, Any]) -> dict[str, Any]:
    """A scored row with its times (``with_times``) as contracts/exercise.md spells it, plus the target."""
    return {"event": row["event"], "kind": row["kind"], "incident": row["incident"], "due": row["due"],
            "status": row["status"], "done_at": row["done_at"], "by": row["by"],
            "deadline": row["deadline"], "in_time": row["in_time"], "late_by_s": row["late_by_s"],
            "target_s": row["target_s"], "capability": row["capability"],
            "role": row.get("role"), "text": row.get("text")}


def with_times(row: dict[str, Any], at) -> dict[str, Any]:
    out = dict(row)
    out["due"] = at(row["due_s"])
    out["deadline"] = at(row["deadline_s"])
    out["done_at"] = None if row["done_at_s"] is None else at(row["done_at_s"])
    return out


def rate(rows: list[dict[str, Any]]) -> str | None:
    """P/S/M/U from a capability's rows (pending ones wait); None while nothing is decided."""
    decided = [r for r in rows if r["status"] != "pending"]
    if not decided:
        return None
    done = [r for r in decided if r["status"] == "done"]
    if not done:
        return "U"
    if len(done) < len(decided):
        return "M"
    return "P" if all(r["in_time"] for r in done) else "S"


def _drill_report(ex) -> dict[str, Any]:
    """The drill report (contracts/drill-scenario.md) of what happened in the exercise's store."""
    from command.drills.replay import _report
    ids = dict(ex.incident_ids)
    for iid in ex.service.store.incident_ids():
        if iid not in ids.values():
            ids[iid] = iid                        # an incident the players opened themselves
    errors = [{"event": d.key, "line": None, "incident": "", "kind": "inject", "error": d.error}
              for d in ex.deliveries().values() if d.error]
    report = _report(ex.scenario, ex.service, ids, errors)
    for key, inc in report["incidents"].items():       # the address as reported and the nearest township
        state = ex.service.get(ids[key])
        inc["location"].setdefault("address", state.address)
        inc["location"].setdefault("township", state.location.township)
    return report


def build_report(ex) -> dict[str, Any]:
    """The after-action report of ``ex`` as plain JSON values (the API's ``/report``)."""
    from command.drills import aar
    at = lambda s: iso(ex.clock.at(s))  # noqa: E731
    actions = player_actions(ex)
    rows = score(ex, actions)
    extra = unexpected(ex, actions, rows)
    drill = _drill_report(ex)
    ratings = ex.ratings()
    caps = []
    for cap_id, (zh, en) in CAPABILITIES.items():
        mine = [r for r in rows if r["capability"] == cap_id]
        if not mine:
            continue
        computed = rate(mine)
        adj = ratings.get(cap_id)
        caps.append({"capability": cap_id, "name_zh": zh, "name_en": en, "computed": computed,
                     "rating": adj["rating"] if adj else computed, "adjusted": adj is not None,
                     "comment": adj["comment"] if adj else "", "by": adj["by"] if adj else None,
                     "done": sum(r["status"] == "done" for r in mine),
                     "in_time": sum(bool(r["in_time"]) for r in mine),
                     "missed": sum(r["status"] == "missed" for r in mine), "expected": len(mine)})
    deliveries = ex.deliveries()
    state = ex.state()
    return {
        "format": 1, "kind": "exercise", "exercise": ex.id, "scenario": ex.name, "status": "Exercise",
        "state": state["state"], "start": ex.scenario.start.isoformat(), "clock": state["clock"],
        "speed": ex.clock.speed, "tolerance_s": ex.tolerance_s, "trainer": ex.trainer,
        "players": list(ex.players), "joined": {n: at(o) for n, o in ex.joined().items()},
        "end_reason": ex._s.end_reason,
        "pauses": [{"at": at(p[0]), "wall_s": None if p[2] is None else round(p[2] - p[1], 1)}
                   for p in ex.pauses()],
        "jumps": [{"from": at(a), "to": at(b)} for a, b in ex.jumps()],
        "injects": state["msel"],
        "expected": [contract_row(with_times(r, at)) | {"basis": r["basis"], "detail": r.get("detail", "")}
                     for r in rows],
        "unexpected": [{"at": at(a.at_s), "kind": a.kind, "incident": a.incident, "by": a.by,
                        "detail": a.detail} for a in extra],
        "capabilities": caps,
        "targets": [asdict(t) for t in aar.targets(drill)],
        "checks": drill["checks"],
        "deliveries": drill["deliveries"],
        "deliveries_by_channel": drill["deliveries_by_channel"],
        "inject_errors": [{"key": d.key, "at": at(d.at_s), "error": d.error}
                          for d in deliveries.values() if d.error],
        "notes": [{"at": at(n["at_s"]), "by": n["by"], "text": n["text"]} for n in ex.notes()],
        "incidents": drill["incidents"],
    }


# ---------------------------------------------------------------------- rendering (every text escaped)
_MD_SPECIAL = "\\`*_[]|#!~"


def md(text: Any) -> str:
    """Inert Markdown text on one line: HTML entities for & < >, a backslash before every sign that could
    start emphasis, a link, an image, code or a table cell, and before a leading list or heading mark."""
    s = html.escape(" ".join(str("" if text is None else text).split()), quote=False)
    s = "".join("\\" + c if c in _MD_SPECIAL else c for c in s)
    m = re.match(r"^\d+(?=[.)])", s)          # "1." / "1)" would open a list: escape its dot, not the digit
    if m:
        return s[:m.end()] + "\\" + s[m.end():]
    return "\\" + s if s[:1] in ("-", "+", ">", "=") else s


def _md_table(head: list[str], rows: list[list[Any]]) -> str:
    return "\n".join(["| " + " | ".join(md(h) for h in head) + " |", "|" + "---|" * len(head)] +
                     ["| " + " | ".join(md(c) for c in r) + " |" for r in rows]) if rows else "—"


def _verdict(row: dict[str, Any]) -> str:
    if row["status"] == "done":
        return "done in time 按时完成" if row["in_time"] else f"done late 超时完成 (+{row['late_by_s']} s)"
    return {"missed": "missed 未完成", "pending": "pending 待完成"}[row["status"]]


EXPECTED_HEAD = ["event", "incident", "action", "due", "deadline", "done at", "by", "result", "basis"]
UNEXPECTED_HEAD = ["at", "incident", "action", "by", "detail"]
CAP_HEAD = ["capability", "expected", "done", "in time", "missed", "computed", "rating", "comment"]
TARGET_HEAD = ["incident", "measure", "basis", "target", "actual", "result"]


def action_name(row: dict[str, Any]) -> str:
    """"发布预警 send the warning", or for a task "下达任务 set the task: 消防 — 搜救被困人员"."""
    name = KIND_NAME.get(row["kind"], row["kind"])
    if row.get("role"):
        name += f": {row['role']}" + (f" — {row['text']}" if row.get("text") else "")
    return name


def _expected_rows(report: dict[str, Any]) -> list[list[Any]]:
    return [[r["event"], r["incident"], action_name(r), r["due"], r["deadline"],
             r["done_at"] or "—", r["by"] or "—", _verdict(r), r["basis"]] for r in report["expected"]]


def _cap_rows(report: dict[str, Any]) -> list[list[Any]]:
    return [[f"{c['name_zh']} {c['name_en']}", c["expected"], c["done"], c["in_time"], c["missed"],
             c["computed"] or "—", (c["rating"] or "—") + (" (adjusted 评估员调整)" if c["adjusted"] else ""),
             (f"{c['comment']} — {c['by']}" if c["adjusted"] else "")] for c in report["capabilities"]]


def _target_rows(report: dict[str, Any]) -> list[list[Any]]:
    res = {True: "PASS", False: "FAIL", None: "—"}
    return [[t["incident"], t["name"], t["basis"], t["target"], t["actual"], res[t["passed"]]]
            for t in report["targets"]]


def _overview(report: dict[str, Any]) -> list[list[Any]]:
    inj = report["injects"]
    return [["scenario 演练名称", report["scenario"]], ["exercise 编号", report["exercise"]],
            ["state 状态", report["state"]], ["start 开始 (exercise time)", report["start"]],
            ["clock 演练时钟", report["clock"]], ["speed 倍速", f"{report['speed']:g}x"],
            ["trainer 导调", report["trainer"]], ["players 参演人员", ", ".join(report["players"]) or "—"],
            ["tolerance 容差", f"{report['tolerance_s']} s"],
            ["injects 注入", f"{sum(1 for i in inj if i['delivered_at'])}/{len(inj)} delivered, "
                             f"{sum(1 for i in inj if i['error'])} failed"],
            ["pauses 暂停", len(report["pauses"])], ["jumps 跳转", len(report["jumps"])],
            ["deliveries 发送", f"live {report['deliveries'].get('live', 0)}, "
                                f"exercise {report['deliveries'].get('exercise', 0)}"],
            ["ended 结束", report.get("end_reason") or "—"]]


def _debrief(report: dict[str, Any]) -> tuple[list[str], list[str]]:
    good = [f"{r['incident']}: {action_name(r)} by {r['by']} at {r['done_at']}"
            for r in report["expected"] if r["status"] == "done" and r["in_time"]]
    bad = [f"{r['incident']}: {action_name(r)} — {_verdict(r)} (due {r['due']})"
           for r in report["expected"] if not (r["status"] == "done" and r["in_time"])]
    bad += [f"{e['key']}: inject failed: {e['error']}" for e in report["inject_errors"]]
    return good, bad


def _counts(report: dict[str, Any]) -> str:
    ex = report["expected"]
    return (f"{sum(r['status'] == 'done' and bool(r['in_time']) for r in ex)} in time, "
            f"{sum(r['status'] == 'done' and not r['in_time'] for r in ex)} late, "
            f"{sum(r['status'] == 'missed' for r in ex)} missed, "
            f"{sum(r['status'] == 'pending' for r in ex)} pending of {len(ex)} expected actions; "
            f"{len(report['unexpected'])} unexpected player actions")


def to_markdown(report: dict[str, Any]) -> str:
    good, bad = _debrief(report)
    lines = [f"# 演练评估 Exercise evaluation: {md(report['scenario'])}", "",
             f"Status **{md(report['status'])}**, {md(report['state'])}. {md(_counts(report))}.", "",
             "## 一、现场点评 On-site debrief", "",
             "**做得好的 Strengths**", ""] + [f"- {md(g)}" for g in good or ["—"]] + [
             "", "**待改进 Areas for improvement**", ""] + [f"- {md(b)}" for b in bad or ["—"]] + [
             "", "## 二、评估报告 Evaluation report", "",
             "### 演练基本情况 Overview", "", _md_table(["item", "value"], _overview(report)), "",
             "### 事件位置 Incident locations", "", _md_table(LOCATION_HEAD, location_rows(report)), "",
             "### 预期行动与目标 Expected actions against targets", "",
             _md_table(EXPECTED_HEAD, _expected_rows(report)), "",
             "### 计划外行动 Unexpected player actions", "",
             _md_table(UNEXPECTED_HEAD, [[u["at"], u["incident"], u["kind"], u["by"], u["detail"]]
                                         for u in report["unexpected"]]), "",
             "### 能力评定 Capability ratings (HSEEP P/S/M/U)", "",
             _md_table(CAP_HEAD, _cap_rows(report)), "",
             "### 系统指标 System targets (the drill report's targets and bases)", "",
             _md_table(TARGET_HEAD, _target_rows(report)), "",
             "## 三、演练总结 Summary", "", md(_conclusion(report)), ""] + \
            [f"- {md(b)}" for b in bad] + ["", "## 导调记录 Controller notes (not on the players' timeline)", ""] + \
            [f"- {md(n['at'])} {md(n['by'])}: {md(n['text'])}" for n in report["notes"] or
             [{"at": "", "by": "", "text": "—"}]] + [""]
    return "\n".join(lines)


def _conclusion(report: dict[str, Any]) -> str:
    rated = [c for c in report["capabilities"] if c["rating"]]
    caps = "; ".join(f"{c['name_zh']} {c['name_en']}: {c['rating']}" for c in rated) or "not yet rated"
    return f"{_counts(report)}. Ratings 能力评定: {caps}."


OUTCOME_STYLE = {"in_time": ("#2a9d3a", "done in time 按时"), "late": ("#e6a700", "done late 超时"),
                 "missed": ("#d7191c", "missed 未完成"), "pending": ("#888888", "pending 待完成")}


def outcome(row: dict[str, Any]) -> str:
    """in_time | late | missed | pending: what became of an expected action."""
    if row["status"] == "done":
        return "in_time" if row["in_time"] else "late"
    return row["status"]


def _esc(value: Any) -> str:
    return html.escape(str(value))


def _action_trace(r: dict[str, Any], minutes: Callable[[str | None], float | None]):
    """One expected action on its own row: its time (hollow circle), its target (the deadline, a bar; a red x
    when missed) and, when done, the actual time (filled: green in time, amber late), joined in time order."""
    import plotly.graph_objects as go
    out = outcome(r)
    colour, label = OUTCOME_STYLE[out]
    points = [(minutes(r["due"]), "due 预期", "circle-open", "#1f6fd1"),
              (minutes(r["deadline"]), "missed 未完成 (target 时限)" if out == "missed" else "target 时限",
               "x" if out == "missed" else "line-ns-open", colour if out == "missed" else "#555555")]
    if r["done_at"]:
        points.append((minutes(r["done_at"]), f"actual 实际 by {r['by']}", "circle", colour))
    points.sort(key=lambda pt: pt[0])
    name = f"e{r['event']} {r['kind']} {r['incident']}: {label}"
    return go.Scatter(
        x=[pt[0] for pt in points], y=[_esc(f"{r['incident']} · e{r['event']} {r['kind']}")] * len(points),
        mode="lines+markers", name=_esc(name), legendgroup=out,
        customdata=[_esc(pt[1]) for pt in points],
        line={"color": colour, "dash": "dot" if out == "missed" else "solid"},
        marker={"symbol": [pt[2] for pt in points], "color": [pt[3] for pt in points], "size": 13},
        hovertemplate="%{customdata} %{x:.1f} min<extra>" + _esc(name) + "</extra>",
        meta={"event": r["event"], "kind": r["kind"], "incident": r["incident"], "outcome": out,
              "due_min": minutes(r["due"]), "target_min": minutes(r["deadline"]),
              "actual_min": minutes(r["done_at"])})


def timeline_figure(report: dict[str, Any]):
    """Expected against actual: one trace per expected action (``_action_trace``, its ``meta`` says the
    event, kind, incident, outcome and the due, target and actual minutes), each on a row of its own under its
    incident's row, where the injects (grey diamonds) and the unexpected player actions (purple triangles)
    are. Every text escaped (plotly reads a subset of HTML in labels)."""
    import plotly.graph_objects as go
    start = datetime.fromisoformat(report["start"])

    def minutes(at: str | None) -> float | None:
        return None if at is None else (datetime.fromisoformat(at) - start).total_seconds() / 60

    fig = go.Figure()
    inj = [i for i in report["injects"] if i["delivered_at"]]
    fig.add_trace(go.Scatter(x=[minutes(i["delivered_at"]) for i in inj], y=[_esc(i["incident"]) for i in inj],
                             mode="markers", name="inject 注入", marker={"symbol": "diamond", "color": "#888",
                                                                       "size": 10},
                             text=[_esc(f"{i['key']} {i['kind']}") for i in inj],
                             hovertemplate="%{text} %{x:.1f} min<extra></extra>"))
    ex, un = report["expected"], report["unexpected"]
    rows: list[str] = []                  # top down: each incident's row, then a row per expected action
    for inc in dict.fromkeys(str(x["incident"]) for x in [*inj, *ex, *un]):
        rows += [_esc(inc)] + [_esc(f"{inc} · e{r['event']} {r['kind']}")
                               for r in sorted(ex, key=lambda r: r["due"]) if str(r["incident"]) == inc]
    for r in ex:
        fig.add_trace(_action_trace(r, minutes))
    fig.add_trace(go.Scatter(x=[minutes(u["at"]) for u in un], y=[_esc(u["incident"]) for u in un],
                             mode="markers", name="unexpected 计划外", marker={"symbol": "triangle-up", "size": 9,
                                                                             "color": "#7b3fa0"},
                             text=[_esc(f"{u['kind']} by {u['by']}") for u in un],
                             hovertemplate="%{text}<extra></extra>"))
    fig.update_layout(title=_esc(f"Expected vs actual 预期与实际: {report['scenario']}"),
                      xaxis_title="exercise minutes 演练分钟", yaxis_title="incident · expected action",
                      yaxis={"categoryorder": "array", "categoryarray": rows[::-1]} if rows else {},
                      height=160 + 32 * max(len(rows), 3), margin={"l": 160, "r": 20, "t": 50, "b": 40})
    return fig


def _html_table(head: list[str], rows: list[list[Any]]) -> str:
    if not rows:
        return "<p>—</p>"
    th = "".join(f"<th>{html.escape(h)}</th>" for h in head)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in r) + "</tr>" for r in rows)
    return f"<table><thead><tr>{th}</tr></thead><tbody>{body}</tbody></table>"


def _html_list(items: list[str]) -> str:
    return "<ul>" + "".join(f"<li>{html.escape(i)}</li>" for i in items or ["—"]) + "</ul>"


def to_html(report: dict[str, Any]) -> str:
    """One self-contained page (plotly.js inlined: opens offline); every text from the exercise escaped."""
    import plotly.io as pio
    good, bad = _debrief(report)
    chart = pio.to_html(timeline_figure(report), include_plotlyjs=True, full_html=False,
                        div_id="exercise-timeline")
    title = html.escape(f"演练评估 Exercise evaluation: {report['scenario']}")
    style = ("body{font-family:sans-serif;margin:2em}table{border-collapse:collapse;margin:1em 0}"
             "td,th{border:1px solid #ccc;padding:4px 8px;vertical-align:top}h2{border-bottom:2px solid #333}")
    notes = [f"{n['at']} {n['by']}: {n['text']}" for n in report["notes"]]
    parts = [f"<!DOCTYPE html><html lang=\"zh\"><head><meta charset=\"utf-8\"><title>{title}</title>"
             f"<style>{style}</style></head><body><h1>{title}</h1>",
             f"<p>Status <b>{html.escape(report['status'])}</b>, {html.escape(report['state'])}. "
             f"{html.escape(_counts(report))}.</p>",
             "<h2>一、现场点评 On-site debrief</h2><h3>做得好的 Strengths</h3>", _html_list(good),
             "<h3>待改进 Areas for improvement</h3>", _html_list(bad),
             "<h2>二、评估报告 Evaluation report</h2><h3>演练基本情况 Overview</h3>",
             _html_table(["item", "value"], _overview(report)),
             "<h3>事件位置 Incident locations</h3>", _html_table(LOCATION_HEAD, location_rows(report)),
             "<h3>预期行动与目标 Expected actions against targets</h3>",
             _html_table(EXPECTED_HEAD, _expected_rows(report)),
             "<h3>时间线 Timeline: expected against actual</h3>", chart,
             "<h3>计划外行动 Unexpected player actions</h3>",
             _html_table(UNEXPECTED_HEAD, [[u["at"], u["incident"], u["kind"], u["by"], u["detail"]]
                                           for u in report["unexpected"]]),
             "<h3>能力评定 Capability ratings (HSEEP P/S/M/U)</h3>", _html_table(CAP_HEAD, _cap_rows(report)),
             "<h3>系统指标 System targets (the drill report's targets and bases)</h3>",
             _html_table(TARGET_HEAD, _target_rows(report)),
             "<h2>三、演练总结 Summary</h2>", f"<p>{html.escape(_conclusion(report))}</p>", _html_list(bad),
             "<h2>导调记录 Controller notes (not on the players' timeline)</h2>", _html_list(notes),
             "</body></html>"]
    return "\n".join(parts)


def write(report: dict[str, Any], path: Path | str) -> Path:
    """Write the report as .md or .html (by suffix) atomically: temp file, then rename."""
    from command.errors import CommandError
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in (".md", ".html", ".htm"):
        raise CommandError(f"{path}: an after-action report is .md or .html")
    from command.drills.aar import write_atomically
    return write_atomically(path, to_markdown(report) if suffix == ".md" else to_html(report))
