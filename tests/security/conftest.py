"""Helpers of the security tests: the real dashboard app through Flask's test client, and a callback body."""
from __future__ import annotations

import json
import re

import pytest
import yaml

import settings as settings_mod
from settings import load_settings

PASSWORD = "correct-horse-battery"


@pytest.fixture
def make_dash(tmp_path, monkeypatch):
    """``make_dash(**settings)`` -> the dashboard app (one per test), with users viewer1/officer1/cmd1/cmd2."""
    made = []

    def make(**extra):
        import app
        from command.dashboard import runtime
        from command.security import auth
        cfg = tmp_path / "yzt.yaml"
        cfg.write_text(yaml.safe_dump({"channels": [{"name": "drill-box", "kind": "outbox", "mode": "exercise"}],
                                       **extra}))
        monkeypatch.setenv("YZT_CONFIG", str(cfg))
        settings_mod.reset_settings_cache()
        a = app.create_app(load_settings())
        users = auth.Users(runtime.current().store())
        for name, role, scope in (("viewer1", "viewer", None), ("officer1", "officer", None),
                                  ("cmd1", "commander", None), ("cmd2", "commander", None),
                                  ("futian1", "commander", "440304")):
            users.add(name, role, PASSWORD, scope=scope)
        made.append(runtime)
        return a

    yield make
    for rt in made:
        rt.current().close()


@pytest.fixture
def dash_app(make_dash):
    return make_dash()


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
