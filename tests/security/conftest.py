"""Fixtures of the security tests: the real dashboard app, one per test, with its users. The helpers that
drive it (sign_in, csrf_of, body) are tests/helpers_dash.py's."""
from __future__ import annotations

import pytest
import yaml

import settings as settings_mod
from helpers_dash import PASSWORD
from settings import load_settings


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
