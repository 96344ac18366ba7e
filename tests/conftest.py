"""Shared fixtures. Every test that writes gets its own var_dir; the bundled data/ is read-only."""
from __future__ import annotations

from pathlib import Path

import pytest

import helpers_store
import settings as settings_mod

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
TEST_DATA = Path(__file__).resolve().parent / "data"


def pytest_configure(config):
    config.addinivalue_line("markers", "sqlite_only: reads or writes SQLite files on purpose (skipped on PostgreSQL)")
    config.addinivalue_line("markers", "postgres_only: needs a PostgreSQL server (run by make test's second pass)")


def pytest_collection_modifyitems(config, items):
    """Both passes of ``make test`` run the same tests; only those tied to one backend's files are skipped."""
    other = "postgres_only" if helpers_store.BACKEND == "sqlite" else "sqlite_only"
    skip = pytest.mark.skip(reason=f"{other.replace('_only', '')} only; this run's store is {helpers_store.BACKEND}")
    dashboard = pytest.mark.skip(reason="the browser tests drive the dashboard on the SQLite pass; the store "
                                 "they share is tested on both")
    for item in items:
        if other in item.keywords:
            item.add_marker(skip)
        elif helpers_store.BACKEND != "sqlite" and "browser" in item.keywords:
            item.add_marker(dashboard)


@pytest.fixture(autouse=True, scope="session")
def _cache_outside_the_repo(tmp_path_factory):
    """The artefact cache (incidents.cache) of code that runs before any door sets it goes to a folder of the
    session, never the repo's var/cache."""
    from incidents import cache
    cache.configure(tmp_path_factory.mktemp("artefact-cache"))
    yield


@pytest.fixture(autouse=True)
def _isolated_var_dir(tmp_path, monkeypatch, request):
    """Runtime state of each test goes to its own temporary folder, never to the repo's var/; on the
    PostgreSQL pass its database (YZT_DATABASE) is an empty PostgreSQL database of its own."""
    monkeypatch.setenv("YZT_VAR_DIR", str(tmp_path / "var"))
    monkeypatch.delenv("YZT_CONFIG", raising=False)
    monkeypatch.delenv("YZT_TIANDITU_KEY", raising=False)
    monkeypatch.delenv("YZT_DATABASE", raising=False)
    if "sqlite_only" not in request.keywords:
        url = helpers_store.begin_test(tmp_path / "var")
        if url is not None:
            monkeypatch.setenv("YZT_DATABASE", url)
    settings_mod.reset_settings_cache()
    yield
    helpers_store.end_test()
    settings_mod.reset_settings_cache()


@pytest.fixture
def store_backend() -> str:
    """'sqlite' or 'postgres': the backend this run tests."""
    return helpers_store.BACKEND


@pytest.fixture
def new_store():
    """``new_store(path)``: a store of the backend under test for what would be the SQLite file ``path``
    (the same path twice in one test: the same database); closed when the test ends."""
    return helpers_store.new_store


@pytest.fixture
def shared_dir() -> Path:
    if not SHARED.is_dir():
        pytest.skip("../shared is not beside the checkout")
    return SHARED
