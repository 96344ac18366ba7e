"""Finding: sessions survived sign-out and a password change (a saved cookie still added tasks); only
disabling a user ended them. Sessions now live on the server: the cookie carries an id the store must hold."""
from __future__ import annotations

import pytest

from command.dashboard import runtime
from command.security import auth
from incidents.model import IncidentReport
from helpers_dash import PASSWORD, body, csrf_of, sign_in

NEW_PASSWORD = "another-horse-battery-staple"


def _incident() -> str:
    svc = runtime.current().service()
    return svc.report(IncidentReport(type="fire", address="广州市天河区天河路"), actor="值班员").id


def _add_task(app, client, incident_id: str, text: str, cookie: str | None = None):
    headers = {"X-CSRF-Token": csrf_of(client)}
    if cookie is not None:
        client.set_cookie("yzt_session", cookie)
    given = {"group-task-add": 1, "incident-selected": incident_id, "group-task-role": "消防",
             "group-task-text": text}
    return client.post("/_dash-update-component", json=body(app, "group.on_group_action", "group-task-add", given),
                       headers=headers)


def _tasks(incident_id: str) -> list[str]:
    return [t.text for t in runtime.current().service().get(incident_id).tasks]


def _saved_cookie(client) -> str:
    return client.get_cookie("yzt_session").value


def test_a_saved_cookie_is_dead_after_sign_out(dash_app):
    iid = _incident()
    client = dash_app.server.test_client()
    sign_in(client, "officer1")
    assert _add_task(dash_app, client, iid, "第一项").status_code == 200
    assert _tasks(iid) == ["第一项"]
    saved, csrf = _saved_cookie(client), csrf_of(client)
    assert client.post("/logout", headers={"X-CSRF-Token": csrf}).status_code == 302
    thief = dash_app.server.test_client()
    thief.set_cookie("yzt_session", saved)
    thief.set_cookie("yzt_csrf", csrf)
    resp = _add_task(dash_app, thief, iid, "偷来的")
    assert resp.status_code == 401
    assert _tasks(iid) == ["第一项"]


@pytest.mark.parametrize("change", ["password", "role", "scope", "disable"])
def test_a_change_of_the_account_ends_its_sessions(dash_app, change):
    iid = _incident()
    client = dash_app.server.test_client()
    sign_in(client, "officer1")
    assert _add_task(dash_app, client, iid, "之前").status_code == 200
    users = auth.Users(runtime.current().store())
    {"password": lambda: users.set_password("officer1", NEW_PASSWORD),
     "role": lambda: users.set_role("officer1", "viewer"),
     "scope": lambda: users.set_scope("officer1", "440106"),
     "disable": lambda: users.disable("officer1")}[change]()
    assert _add_task(dash_app, client, iid, "之后").status_code == 401
    assert client.get("/").status_code == 302
    assert _tasks(iid) == ["之前"]


def test_the_session_id_rotates_at_sign_in(dash_app):
    iid = _incident()
    client = dash_app.server.test_client()
    client.get("/login")
    before = client.get_cookie("yzt_session")
    sign_in(client, "officer1")
    first = _saved_cookie(client)
    assert before is None or before.value != first
    sign_in(client, "officer1")                     # signing in again in the same browser
    assert _saved_cookie(client) != first
    assert _add_task(dash_app, client, iid, "新的").status_code == 200
    old = dash_app.server.test_client()             # the first id is void: one id per sign-in
    old.set_cookie("yzt_session", first)
    old.set_cookie("yzt_csrf", csrf_of(client))
    assert _add_task(dash_app, old, iid, "旧的").status_code == 401
    assert _tasks(iid) == ["新的"]


def test_idle_and_absolute_timeouts_end_a_session(make_dash):
    app = make_dash(session_idle_min=1, session_lifetime_h=0.01)    # 1 min idle, 36 s absolute
    from command.dashboard import security
    clock = [1_900_000_000.0]
    security.set_clock(app.server, lambda: clock[0])
    iid = _incident()
    client = app.server.test_client()
    sign_in(client, "officer1")
    assert _add_task(app, client, iid, "一").status_code == 200
    clock[0] += 61                                          # idle more than a minute
    assert _add_task(app, client, iid, "二").status_code == 401
    resp = sign_in(client, "officer1")
    assert resp.status_code == 302 and resp.headers["Location"] == "/", resp.data[:300]
    for _ in range(2):                                      # busy, never idle, but past the absolute limit
        clock[0] += 15
        assert client.get("/").status_code == 200
    clock[0] += 15                                          # 45 s after sign-in: over the 36 s limit
    assert _add_task(app, client, iid, "三").status_code == 401
    assert _tasks(iid) == ["一"]


def test_signing_in_again_after_a_role_change_acts_with_the_new_role(dash_app):
    """The worker keeps a session's user row for the session's life; a role change ends the session, and the
    new sign-in is a new session, read afresh: the old role never answers for it."""
    iid = _incident()
    client = dash_app.server.test_client()
    sign_in(client, "officer1")
    assert _add_task(dash_app, client, iid, "之前").status_code == 200
    auth.Users(runtime.current().store()).set_role("officer1", "viewer")
    sign_in(client, "officer1")
    _add_task(dash_app, client, iid, "之后")          # a viewer's task is refused (the callback adds nothing)
    assert _tasks(iid) == ["之前"]
