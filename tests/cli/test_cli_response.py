"""A CLI-reported incident from report to close: group, regrade, warnings through local channels."""
from __future__ import annotations

import json

import pytest

import settings as settings_mod
from command.cli.main import main


@pytest.fixture
def configured(tmp_path, monkeypatch):
    """A settings file with one exercise file channel and one live file channel."""
    cfg = tmp_path / "yzt.yaml"
    live = tmp_path / "live.jsonl"
    drill = tmp_path / "drill.jsonl"
    cfg.write_text(
        "cap_org_code: '123'\n"            # a live deployment's organisation code (000 refuses Actual)
        "channels:\n"
        f"  - {{name: drill-file, kind: outbox, mode: exercise, path: '{drill}'}}\n"
        f"  - {{name: live-file, kind: outbox, mode: live, path: '{live}'}}\n", encoding="utf-8")
    monkeypatch.setenv("YZT_CONFIG", str(cfg))
    settings_mod.reset_settings_cache()
    return {"live": live, "drill": drill}


def run(capsys, *argv):
    code = main(list(argv) + ["--json"])
    cap = capsys.readouterr()
    return code, (json.loads(cap.out) if cap.out.strip() else None), cap.err


def _lines(path):
    return [json.loads(x) for x in path.read_text(encoding="utf-8").splitlines()] if path.exists() else []


def test_incident_report_update_warn_close(capsys, configured):
    code, inc, err = run(capsys, "incident", "report", "--address", "深圳市福田区景田路", "--type", "fire",
                         "--serious-injuries", "2")
    assert code == 0, err
    iid = inc["id"]
    assert inc["grade"]["level"] == "IV"
    orgs = {m["org"] for m in inc["group"]["members"]}
    assert any("福田区" in o for o in orgs)
    assert inc["group"]["conference"]["link"]

    code, inc, err = run(capsys, "incident", "update", iid, "--deaths", "4")
    assert code == 0, err
    assert inc["grade"]["level"] == "III"
    orgs = {m["org"] for m in inc["group"]["members"]}
    assert "深圳市应急管理局" in orgs, "a regrade to III brings the city in"

    code, listed, err = run(capsys, "incident", "list", "--level", "III")
    assert code == 0, err
    assert [i["id"] for i in listed["incidents"]] == [iid]
    assert main(["incident", "list"]) == 0 and "福田区" in capsys.readouterr().out
    code, other, err = run(capsys, "incident", "report", "--address", "广州市天河区天河路", "--type", "fire")
    assert code == 0, err
    code, listed, err = run(capsys, "incident", "list", "--limit", "1")     # newest first, at most --limit
    assert code == 0 and [i["id"] for i in listed["incidents"]] == [other["id"]], err
    code, listed, err = run(capsys, "incident", "list", "--search", "景田")
    assert code == 0 and [i["id"] for i in listed["incidents"]] == [iid], err

    # An Actual warning without --confirm is refused, and nothing reaches the live channel.
    code, _, err = run(capsys, "alert", "send", iid, "--instruction", "关闭门窗")
    assert code == 2 and "confirm" in err
    assert _lines(configured["live"]) == []

    code, sent, err = run(capsys, "alert", "send", iid, "--instruction", "关闭门窗", "--confirm")
    assert code == 0, err
    assert [d["status"] for d in sent["deliveries"]] == ["sent"]
    live = _lines(configured["live"])
    assert len(live) == 1 and "<status>Actual</status>" in live[0]["cap_xml"]

    code, cancel, err = run(capsys, "alert", "cancel", iid, "--confirm")
    assert code == 0, err
    live = _lines(configured["live"])
    assert len(live) == 2 and "<msgType>Cancel</msgType>" in live[1]["cap_xml"]
    assert sent["identifier"] in live[1]["cap_xml"], "a Cancel references what it replaces"

    code, _, err = run(capsys, "incident", "close", iid)
    assert code == 0, err
    code, shown, err = run(capsys, "incident", "show", iid)
    assert shown["state"] == "closed"


def test_exercise_warning_goes_only_to_exercise_channels(capsys, configured):
    code, inc, err = run(capsys, "incident", "report", "--point", "113.3245,23.1365", "--crs", "gcj02",
                         "--type", "gas_explosion")
    assert code == 0, err
    code, sent, err = run(capsys, "alert", "send", inc["id"], "--exercise", "--instruction", "演练")
    assert code == 0, err
    assert {d["channel"] for d in sent["deliveries"]} == {"drill-file"}
    assert _lines(configured["live"]) == []
    drill = _lines(configured["drill"])
    assert len(drill) == 1 and "<status>Exercise</status>" in drill[0]["cap_xml"]


def test_unknown_incident_is_a_clear_refusal(capsys, configured):
    code, _, err = run(capsys, "incident", "show", "NO-SUCH-INCIDENT")
    assert code == 2 and "NO-SUCH-INCIDENT" in err and err.count("\n") == 1
