"""The list's and the markers' Patches (command.dashboard.live): the edits turn what a browser shows into
exactly what a whole render shows now, for any lists; through the real callbacks, a browser holding an older
token gets the new and the changed rows (never a stale one), and the cache's key keeps stores, scopes and
filters apart.
"""
from __future__ import annotations

import json
import random

import pytest

from command.dashboard import live, runtime
from command.security import auth
from helpers_dash import PASSWORD, body, csrf_of, exercise_box_app, name_of, sign_in
from incidents.model import IncidentReport


def apply(children: list, ops: list[dict]) -> list:
    """What dash-renderer does with a Patch's Delete and Insert operations on a list."""
    out = list(children)
    for op in ops:
        if op["operation"] == "Delete":
            del out[op["location"][0]]
        elif op["operation"] == "Insert":
            out.insert(op["params"]["index"], op["params"]["value"])
        else:
            raise AssertionError(f"unexpected operation {op['operation']}")
    return out


@pytest.mark.parametrize("seed", range(200))
def test_edits_turn_any_old_list_into_the_new_one(seed):
    rng = random.Random(seed)
    pool = [(f"i{n}", rng.choice("abc")) for n in range(30)]
    old = rng.sample(pool, rng.randint(0, 20))
    keep = [x for x in old if rng.random() < 0.7]
    new = sorted(set(keep) | set(rng.sample(pool, rng.randint(0, 10))), key=lambda x: pool.index(x))
    if [x for x in new if x in old] != [x for x in old if x in new]:
        assert live.edits(old, new) is None            # the order of what stays changed: send the whole list
        return
    deletes, inserts = live.edits(old, new)
    got = list(old)
    for i in reversed(deletes):
        del got[i]
    for i in inserts:
        got.insert(i, new[i])
    assert got == new


def test_a_token_naming_an_item_twice_or_of_another_shape_gets_the_whole_list():
    items = [("row:a", "1", lambda: "A"), ("row:b", "2", lambda: "B")]
    twice = live.mark("row:a", "1") * 2
    for token in ({"r": twice}, {"items": [["row:a", "1"], ["row:b", "2"]]}, {"r": "row:a"}, {"r": 5}, "r", None,
                  {"r": live.mark("row:a", "1")[:-1] + live.mark("row:b", "2")}):
        whole, fresh = live.answer(items, token, 5, "v")
        assert whole == ["A", "B"], token
        assert fresh == {"seq": 5, "view": "v", "r": live.mark("row:a", "1") + live.mark("row:b", "2")}


def test_a_changed_row_is_never_kept_and_the_answer_is_shared():
    """A row whose digest changed is deleted and inserted again; the same held list gets the same answer."""
    old = [("row:a", "1", lambda: "A"), ("row:b", "2", lambda: "B")]
    new = [("row:c", "3", lambda: "C"), ("row:a", "1x", lambda: "A2"), ("row:b", "2", lambda: "B")]
    _, token = live.answer(old, None, 1, "v")
    patch, fresh = live.answer(new, token, 2, "v")
    assert apply(["A", "B"], patch["operations"]) == ["C", "A2", "B"]
    assert live.answer(new, token, 2, "v")[0] is patch
    assert live.answer(new, fresh, 2, "v") == (live.no_update, live.no_update)
    live.clear()


@pytest.fixture
def dash_app(tmp_path, monkeypatch):
    a = exercise_box_app(tmp_path, monkeypatch)
    users = auth.Users(runtime.current().store())
    users.add("officer1", "officer", PASSWORD)
    users.add("futian1", "officer", PASSWORD, scope="440304")
    yield a
    runtime.current().close()
    live.clear()


POLL = "sync.poll"          # the one callback of a page's second: the seq, the list and the markers


def _post(client, dash_app, trigger, given):
    resp = client.post("/_dash-update-component", json=body(dash_app, POLL, trigger, given),
                       headers={"X-CSRF-Token": csrf_of(client)})
    return resp.status_code, (resp.get_json() or {}).get("response", {}) if resp.status_code == 200 else {}


def _signed_in(dash_app, name: str = "officer1"):
    client = dash_app.server.test_client()
    sign_in(client, name)
    return client


def _whole(client, dash_app, bump: int = 1) -> dict:
    """What a page gets when it draws afresh (app-bump: no token of what it shows yet)."""
    return _post(client, dash_app, "app-bump", {"app-bump": bump})[1]


def _tick(client, dash_app, got: dict, seq: int = 0) -> tuple[int, dict]:
    """The page's poll with what it holds from ``got`` (the tokens) and ``seq`` as its sync-seq."""
    return _post(client, dash_app, "sync-interval", {"sync-interval": 5, "sync-seq": seq,
                                                     "list-shown": got["list-shown"]["data"],
                                                     "map-shown": got["map-shown"]["data"]})


def _rows(children: list) -> list[str]:
    return [c["props"].get("data-incident") or c["props"]["className"] for c in children]


def test_no_callback_follows_sync_seq_so_a_page_posts_once_a_second(dash_app):
    """The list and the markers are the poll's own outputs: nothing else fires because the seq moved."""
    following = [k for k, cb in dash_app.callback_map.items()
                 if any(d["id"] in ("sync-seq", "sync-interval") for d in cb["inputs"])]
    assert [name_of(dash_app.callback_map[k]) for k in following] == [POLL]
    outputs = following[0]
    assert all(f"{o}." in outputs for o in ("sync-seq", "list-items", "list-shown", "focus-seq", "map-incidents"))


def test_an_older_token_gets_the_new_and_the_changed_rows_and_ends_where_a_whole_render_does(dash_app):
    svc = runtime.current().service()
    first = svc.report(IncidentReport(type="fire", address="广州市天河区天河路"), actor="值班员")
    client = _signed_in(dash_app)
    got = _whole(client, dash_app)
    shown, seq = got["list-items"]["children"], got["sync-seq"]["data"]
    assert _rows(shown) == [first.id] and seq == runtime.current().store().last_seq()
    second = svc.report(IncidentReport(type="traffic", address="深圳市福田区深南大道"), actor="值班员")
    svc.close(first.id, actor="值班员", reason="done")
    status, ticked = _tick(client, dash_app, got, seq)
    assert status == 200 and ticked["sync-seq"]["data"] == runtime.current().store().last_seq()
    patch = ticked["list-items"]["children"]
    assert patch.get("__dash_patch_update") and ticked["map-incidents"]["children"].get("__dash_patch_update")
    patched = apply(shown, patch["operations"])
    whole = _whole(client, dash_app, 2)
    assert patched == whole["list-items"]["children"]
    assert _rows(patched) == [second.id, first.id] and "closed" in json.dumps(patched[1], ensure_ascii=False)
    # the same tokens again at the same seq: nothing to send
    held = {**got, **ticked}
    status, _ = _tick(client, dash_app, held, ticked["sync-seq"]["data"])
    assert status == 204
    # a poll whose sync-seq is older but whose tokens are current: only the seq moves
    status, again = _tick(client, dash_app, held, seq)
    assert status == 200 and set(again) == {"sync-seq"}


def test_the_markers_patch_the_same_way(dash_app):
    svc = runtime.current().service()
    client = _signed_in(dash_app)
    a = svc.report(IncidentReport(type="fire", address="广州市天河区天河路"), actor="值班员")
    got = _whole(client, dash_app)
    shown = got["map-incidents"]["children"]
    b = svc.report(IncidentReport(type="traffic", address="深圳市福田区深南大道"), actor="值班员")
    _, ticked = _tick(client, dash_app, got, got["sync-seq"]["data"])
    patched = apply(shown, ticked["map-incidents"]["children"]["operations"])
    whole = _whole(client, dash_app, 2)
    assert patched == whole["map-incidents"]["children"]
    text = json.dumps(patched, ensure_ascii=False)
    assert a.id in text and b.id in text


def test_the_cache_keeps_scopes_and_filters_apart_at_the_same_seq(dash_app):
    svc = runtime.current().service()
    th = svc.report(IncidentReport(type="fire", address="广州市天河区天河路"), actor="值班员")
    ft = svc.report(IncidentReport(type="traffic", address="深圳市福田区深南大道"), actor="值班员")
    province, futian = _signed_in(dash_app), _signed_in(dash_app, "futian1")
    p = _whole(province, dash_app)
    f = _whole(futian, dash_app)
    assert _rows(p["list-items"]["children"]) == [ft.id, th.id]
    assert _rows(f["list-items"]["children"]) == [ft.id]          # the same seq, the other scope's rows
    assert th.id not in json.dumps(f["map-incidents"]) and th.id in json.dumps(p["map-incidents"])
    level = svc.get(th.id).grade.level
    _, p2 = _post(province, dash_app, "list-level",
                  {"list-level": level, "sync-seq": p["sync-seq"]["data"], "list-shown": p["list-shown"]["data"],
                   "map-shown": p["map-shown"]["data"]})
    assert not {"map-incidents", "map-shown", "sync-seq"} & set(p2)     # a filter answers the list only
    before = p["list-items"]["children"]
    if "list-items" not in p2:                  # the same rows under the filter: nothing to send
        full = before
    elif isinstance(p2["list-items"]["children"], dict):
        full = apply(before, p2["list-items"]["children"]["operations"])
    else:
        full = p2["list-items"]["children"]
    ids = [c["props"]["data-incident"] for c in full if "data-incident" in c["props"]]
    assert th.id in ids and all(svc.get(i).grade.level == level for i in ids)


def test_a_tick_with_nothing_new_reads_no_rows(dash_app, monkeypatch):
    svc = runtime.current().service()
    svc.report(IncidentReport(type="fire", address="广州市天河区天河路"), actor="值班员")
    client = _signed_in(dash_app)
    got = _whole(client, dash_app)
    monkeypatch.setattr(live, "rows", lambda *a, **kw: pytest.fail("a poll with nothing new read the rows"))
    status, _ = _tick(client, dash_app, got, got["sync-seq"]["data"])
    assert status == 204


def test_the_selected_panels_follow_the_seq_only_while_one_is_selected(dash_app):
    svc = runtime.current().service()
    a = svc.report(IncidentReport(type="fire", address="广州市天河区天河路"), actor="值班员")
    client = _signed_in(dash_app)
    got = _whole(client, dash_app)
    assert "focus-seq" not in got
    seq = got["sync-seq"]["data"]
    _, chose = _post(client, dash_app, "incident-selected",
                     {"incident-selected": a.id, "sync-seq": seq, "list-shown": got["list-shown"]["data"],
                      "map-shown": got["map-shown"]["data"]})
    assert chose["focus-seq"]["data"] == runtime.current().store().last_seq()
    assert "selected" in json.dumps(chose["list-items"], ensure_ascii=False) and "map-incidents" not in chose
    svc.report(IncidentReport(type="traffic", address="深圳市福田区深南大道"), actor="值班员")
    given = {"sync-interval": 6, "sync-seq": seq, "incident-selected": a.id,
             "list-shown": chose["list-shown"]["data"], "map-shown": got["map-shown"]["data"]}
    _, ticked = _post(client, dash_app, "sync-interval", given)
    assert ticked["focus-seq"]["data"] == runtime.current().store().last_seq() > seq
    _, unselected = _tick(client, dash_app, got, seq)           # nothing selected: no focus follows
    assert "focus-seq" not in unselected
