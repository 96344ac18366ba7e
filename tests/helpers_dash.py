"""Test helpers: the dashboard through Flask's test client: sign in, the CSRF token, a Dash callback's body.

    from helpers_dash import PASSWORD, body, csrf_of, sign_in
    sign_in(client, "officer1")                               # the login form, with its CSRF field
    client.post("/_dash-update-component", json=body(app, "group.on_group_action", "group-task-add", given),
                headers={"X-CSRF-Token": csrf_of(client)})

``PASSWORD`` is the password of the users tests/security/conftest.py's ``make_dash`` adds. A module of its
own (on pytest's ``pythonpath``, like helpers_store.py), not a conftest: ``from conftest import`` gets
whichever conftest was imported first under that name, which changes with the rootdir and the import mode.
"""
from __future__ import annotations

import json
import re

PASSWORD = "correct-horse-battery"


def exercise_box_app(tmp_path, monkeypatch):
    """The Dash app on this test's settings with one exercise outbox channel (``drill-box``): a fresh
    settings cache and an empty live-answer cache. The caller adds its users and closes the runtime."""
    import yaml

    import app
    import settings as settings_mod
    from command.dashboard import live
    from settings import load_settings
    cfg = tmp_path / "yzt.yaml"
    cfg.write_text(yaml.safe_dump({"channels": [{"name": "drill-box", "kind": "outbox", "mode": "exercise"}]}))
    monkeypatch.setenv("YZT_CONFIG", str(cfg))
    settings_mod.reset_settings_cache()
    live.clear()
    return app.create_app(load_settings())


def sign_in(client, name: str, password: str = PASSWORD, *, next_url: str = "/", **kw):
    page = client.get(f"/login?next={next_url}", **kw).data.decode()
    token = re.search(r'name="csrf" value="([^"]+)"', page).group(1)
    return client.post("/login", data={"name": name, "password": password, "csrf": token, "next": next_url}, **kw)


def csrf_of(client) -> str:
    return client.get_cookie("yzt_csrf").value


def name_of(cb: dict) -> str:
    fn = cb["callback"]
    while hasattr(fn, "__wrapped__"):
        fn = fn.__wrapped__
    return f"{fn.__module__.rsplit('.', 1)[-1]}.{fn.__name__}"


def callback_key(app, name: str) -> str:
    return next(k for k, cb in app.callback_map.items() if name_of(cb) == name)


def body(app, name: str, trigger: str, given: dict) -> dict:
    """The JSON Dash's renderer posts to /_dash-update-component for callback ``name`` (plain ids only)."""
    key = callback_key(app, name)
    cb = app.callback_map[key]

    def outputs():
        parts = key[2:-2].split("...") if key.startswith("..") else [key]
        outs = []
        for p in parts:
            ident, prop = p.rsplit(".", 1)
            outs.append({"id": json.loads(ident) if ident.startswith("{") else ident, "property": prop})
        return outs if key.startswith("..") else outs[0]

    def values(deps):
        out = []
        for d in deps:
            if d["id"].startswith("{"):
                out.append([])
            else:
                out.append({"id": d["id"], "property": d["property"], "value": given.get(d["id"])})
        return out

    changed = [f"{d['id']}.{d['property']}" for d in cb["inputs"] if d["id"] == trigger]
    return {"output": key, "outputs": outputs(), "inputs": values(cb["inputs"]),
            "state": values(cb.get("state", [])), "changedPropIds": changed}
