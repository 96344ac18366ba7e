"""Shared fixtures. Every test that writes gets its own var_dir; the bundled data/ is read-only."""
from __future__ import annotations

from pathlib import Path

import pytest

import settings as settings_mod

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
TEST_DATA = Path(__file__).resolve().parent / "data"


@pytest.fixture(autouse=True)
def _isolated_var_dir(tmp_path, monkeypatch):
    """Runtime state of each test goes to its own temporary folder, never to the repo's var/."""
    monkeypatch.setenv("YZT_VAR_DIR", str(tmp_path / "var"))
    monkeypatch.delenv("YZT_CONFIG", raising=False)
    monkeypatch.delenv("YZT_TIANDITU_KEY", raising=False)
    settings_mod.reset_settings_cache()
    yield
    settings_mod.reset_settings_cache()


@pytest.fixture
def shared_dir() -> Path:
    if not SHARED.is_dir():
        pytest.skip("../shared is not beside the checkout")
    return SHARED
