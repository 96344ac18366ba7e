"""The read-only sync poll may run on a worker's read of the session up to RECENT_SESSION_S old (a session row
read per poll was the largest share of a web worker under 200 officers); every other request reads the row,
so an ended session is refused at once anywhere else, and by the poll once the bound has passed."""
from __future__ import annotations

import time

import pytest

from command.dashboard import live, runtime, security
from command.security import auth
from helpers_dash import PASSWORD, body, csrf_of, exercise_box_app, sign_in


@pytest.fixture
def dash_app(tmp_path, monkeypatch):
    a = exercise_box_app(tmp_path, monkeypatch)
    now = [time.time()]
    security.set_clock(a.server, lambda: now[0])
    a.now = now
    auth.Users(runtime.current().store()).add("officer1", "officer", PASSWORD)
    yield a
    runtime.current().close()
    live.clear()


def _poll(a, client) -> int:
    given = {"sync-interval": 3, "sync-seq": 0}
    return client.post("/_dash-update-component", json=body(a, "sync.poll", "sync-interval", given),
                       headers={"X-CSRF-Token": csrf_of(client)}).status_code


def _language(a, client) -> int:
    return client.post("/_dash-update-component", json=body(a, "layout.switch_language", "app-lang",
                                                            {"app-lang": "en"}),
                       headers={"X-CSRF-Token": csrf_of(client)}).status_code


def test_polls_share_one_read_of_the_session_within_the_bound(dash_app, monkeypatch):
    client = dash_app.server.test_client()
    sign_in(client, "officer1")
    store = runtime.current().store()
    reads = []
    real = store.session
    monkeypatch.setattr(store, "session", lambda key: reads.append(key) or real(key))
    assert _poll(dash_app, client) in (200, 204) and len(reads) == 1
    assert _poll(dash_app, client) in (200, 204) and len(reads) == 1
    assert _language(dash_app, client) == 200 and len(reads) == 2       # not the poll: the row, every time
    dash_app.now[0] += security.RECENT_SESSION_S
    assert _poll(dash_app, client) in (200, 204) and len(reads) == 3


def test_an_end_from_elsewhere_is_refused_at_once_except_by_the_poll_which_sees_it_within_the_bound(dash_app):
    client = dash_app.server.test_client()
    sign_in(client, "officer1")
    assert _poll(dash_app, client) in (200, 204)
    store = runtime.current().store()
    store.sessions_end_user("officer1", at=dash_app.now[0], why="ended")   # as another worker's change does
    assert _language(dash_app, client) == 401
    client2 = dash_app.server.test_client()
    sign_in(client2, "officer1")
    assert _poll(dash_app, client2) in (200, 204)
    store.sessions_end_user("officer1", at=dash_app.now[0], why="ended")
    dash_app.now[0] += security.RECENT_SESSION_S
    assert _poll(dash_app, client2) == 401


def test_a_sign_out_here_ends_the_poll_at_once(dash_app):
    client = dash_app.server.test_client()
    sign_in(client, "officer1")
    assert _poll(dash_app, client) in (200, 204)
    saved, csrf = client.get_cookie("yzt_session").value, csrf_of(client)
    assert client.post("/logout", headers={"X-CSRF-Token": csrf}).status_code == 302
    thief = dash_app.server.test_client()
    thief.set_cookie("yzt_session", saved)
    thief.set_cookie("yzt_csrf", csrf)
    assert _poll(dash_app, thief) == 401


def test_a_payload_naming_another_callbacks_output_reads_the_row(dash_app, monkeypatch):
    client = dash_app.server.test_client()
    sign_in(client, "officer1")
    assert _poll(dash_app, client) in (200, 204)
    store = runtime.current().store()
    reads = []
    real = store.session
    monkeypatch.setattr(store, "session", lambda key: reads.append(key) or real(key))
    forged = body(dash_app, "sync.poll", "sync-interval", {"sync-interval": 4})
    forged["output"] = "app-root.className"
    client.post("/_dash-update-component", json=forged, headers={"X-CSRF-Token": csrf_of(client)})
    assert len(reads) == 1
