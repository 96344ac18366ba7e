"""Nearby answers come from PostGIS when the catalogue's database holds the layer (layers.index.index_for), and
equal the in-memory answers for the same file: through layers.nearby.around and through a ResponseService
report on a PostgreSQL store whose database holds the layers. Each layer put in PostGIS here is a variant of the
bundled one (every n-th row, ids ``PG-...``) while the routed catalogue's own files are the bundled layers, so
an answer of ``PG-`` ids can only have come from PostGIS.

Needs a PostgreSQL server with PostGIS: the one of YZT_TEST_DATABASE when set, else a throwaway cluster started
here (bench.postgis.throwaway_database); skipped only when no PostgreSQL server binary exists.
"""
from __future__ import annotations

import dataclasses
import os
from datetime import datetime

import numpy as np
import pandas as pd
import pytest

from bench.postgis import server_binaries, throwaway_database
from incidents.model import Point
from layers import index, postgis
from layers import io as layer_io
from layers.catalog import BUNDLED, Catalog, Layer
from layers.errors import LayerError, UnknownLayerError
from layers.nearby import around

pytestmark = pytest.mark.skipif(not server_binaries() and not os.environ.get("YZT_TEST_DATABASE"),
                                reason="no PostgreSQL server binary (initdb, pg_ctl): apt-get install postgresql postgis")

FUTIAN, TIANHE = Point(114.0579, 22.5431, "wgs84"), Point(113.3245, 23.1365, "wgs84")


@pytest.fixture(scope="module")
def pg():
    with throwaway_database("yzt_test_wiring") as url, postgis.open_layers(url) as db:
        try:
            yield url, db
        finally:
            index.close_postgis(url)      # our pool goes before the database is dropped


@pytest.fixture(autouse=True)
def _names_always_fresh(monkeypatch):
    """Every query re-reads the registry's names (the TTL has its own test below)."""
    monkeypatch.setattr(index, "NAMES_TTL_S", 0.0)


def variant(name: str, step: int, prefix: str = "PG-") -> Layer:
    """Every ``step``-th row of the bundled layer, ids prefixed: rows no bundled file holds."""
    lay = BUNDLED.load(name)
    rows = np.arange(0, len(lay), step)
    table = lay.table.iloc[rows].reset_index(drop=True)
    table["id"] = (prefix + table["id"].astype(str)).astype(lay.table["id"].dtype)
    return Layer(name=name, synthetic=True, source="test", licence="", table=table, lon=lay.lon[rows],
                 lat=lay.lat[rows], x_m=lay.x_m[rows], y_m=lay.y_m[rows])


def file_catalog(tmp_path, folder: str, layers: dict[str, Layer]) -> Catalog:
    """A catalogue whose imported registry files are ``layers`` (CSV through layers.io.import_layer)."""
    cat = Catalog(BUNDLED.data_dir, tmp_path / folder)
    for name, lay in layers.items():
        df = lay.table.copy()
        df.insert(2, "lon", lay.lon)
        df.insert(3, "lat", lay.lat)
        path = tmp_path / f"{folder}-{name}.csv"
        df.to_csv(path, index=False)
        layer_io.import_layer(name, path, catalog=cat)
    return cat


def query_points(layer: Layer, n: int, seed: int) -> list[Point]:
    rng = np.random.default_rng(seed)
    pick = rng.integers(0, len(layer), n)
    jitter = rng.normal(0, 0.02, (n, 2)) * (np.arange(n) % 3 != 0)[:, None]
    return [FUTIAN, TIANHE] + [Point(float(layer.lon[i] + dx), float(layer.lat[i] + dy), "wgs84")
                               for i, (dx, dy) in zip(pick, jitter)]


def test_around_answers_from_postgis_exactly_as_memory_does_for_the_same_file(pg, tmp_path):
    url, db = pg
    mem = file_catalog(tmp_path, "mem", {"fire_station": variant("fire_station", 2),
                                         "hospital": variant("hospital", 2), "camera": variant("camera", 8)})
    for name in ("fire_station", "hospital", "camera"):
        db.import_layer(mem.load(name))          # the very rows the file catalogue loaded
    routed = Catalog(BUNDLED.data_dir, tmp_path / "routed", postgis_url=url)   # its files: the bundled layers
    assert isinstance(index.index_for("camera", routed), index.PostgisRouted)
    assert isinstance(index.index_for("shelter", routed), index.LayerIndex)    # not in PostGIS: memory
    for p in query_points(mem.load("hospital"), 25, seed=11):
        for name in ("fire_station", "hospital", "camera"):
            got = around(name, p, k=5, catalog=routed)
            assert len(got) == 5 and all(d["id"].startswith("PG-") for d in got), name
            assert got == around(name, p, k=5, catalog=mem), name     # every column, same values and types
        got = around("camera", p, k=5, catalog=routed, uncertainty_m=2500.0)      # within-r, the cover grid
        assert got == around("camera", p, k=5, catalog=mem, uncertainty_m=2500.0)
        assert all(d["id"].startswith("PG-") for d in got)
        assert index.within("hospital", p, 6000, catalog=routed) == index.within("hospital", p, 6000, catalog=mem)
    assert around("shelter", FUTIAN, k=5, catalog=routed) == around("shelter", FUTIAN, k=5, catalog=BUNDLED)


def test_a_report_on_a_postgresql_store_ranks_nearby_from_postgis(pg, tmp_path):
    from command.alerts.outbox import Outbox
    from command.response.service import NEARBY_K, ResponseService
    from command.response.timeline import BEIJING, VirtualClock
    from command.store import open_store
    from incidents.model import IncidentReport
    from settings import load_settings
    url, db = pg
    st = load_settings(database=url, cap_org_code="101",
                       channels=[{"name": "outbox-exercise", "kind": "outbox", "mode": "exercise"}])
    assert Catalog.of(st).postgis_url == url     # the settings' database is the catalogue's PostGIS
    mem = file_catalog(tmp_path, "mem", {"hospital": variant("hospital", 3, "PGH-"),
                                         "fire_station": variant("fire_station", 3, "PGF-")})
    for name in ("hospital", "fire_station"):
        db.import_layer(mem.load(name))
    store = open_store(st)
    try:
        assert type(store).__name__ == "PostgresStore"
        svc = ResponseService(store, settings=st, clock=VirtualClock(datetime(2026, 3, 14, 9, 0, tzinfo=BEIJING)),
                              outbox=Outbox(store, st))
        s = svc.report(IncidentReport(type="fire", point=FUTIAN), actor="值班员")
        state = svc.get(s.id)                 # and as folded back from the store
    finally:
        store.close()
    p = s.location.point
    for got in (s.nearby, state.nearby):
        assert [d["id"] for d in got["hospital"]] == [d["id"] for d in around("hospital", p, k=NEARBY_K, catalog=mem)]
        assert all(d["id"].startswith("PGH-") for d in got["hospital"])
        assert all(d["id"].startswith("PGF-") for d in got["fire_station"])
        assert [d["id"] for d in got["fire_station"]] == \
            [d["id"] for d in around("fire_station", p, k=NEARBY_K, catalog=mem)]
        assert [d["drive_rank"] for d in got["fire_station"]] == list(range(1, NEARBY_K + 1))
        assert not any(d["id"].startswith("PG") for d in got["shelter"])          # shelter: the bundled file
    assert s.nearby["hospital"] == around("hospital", p, k=NEARBY_K, catalog=mem)


def _tiny(name: str, ids: list[str], *, extra: dict | None = None) -> Layer:
    """A small layer near Futian: ids in order of distance from FUTIAN (100 m apart, eastwards)."""
    x0, y0 = index.metric_xy(FUTIAN)
    x = x0 + 100.0 * (1 + np.arange(len(ids)))
    y = np.full(len(ids), y0)
    import shapely
    pts = index.metric_to_wgs84(shapely.points(x, y))
    text = pd.StringDtype("pyarrow")
    table = pd.DataFrame({"id": pd.array(ids, dtype=text), "name": pd.array(ids, dtype=text), **(extra or {})})
    return Layer(name=name, synthetic=True, source="test", licence="", table=table, lon=shapely.get_x(pts),
                 lat=shapely.get_y(pts), x_m=x, y_m=y)


def test_a_new_layer_is_seen_within_the_ttl_and_a_reimport_at_once(pg, tmp_path, monkeypatch):
    url, db = pg
    import time
    now = [time.monotonic()]
    monkeypatch.setattr(index, "NAMES_TTL_S", 2.0)
    monkeypatch.setattr(index, "_clock", lambda: now[0])
    cat = file_catalog(tmp_path, "files", {"wiring_ttl": _tiny("wiring_ttl", ["F1", "F2", "F3"])})
    routed = dataclasses.replace(cat, postgis_url=url)
    assert [d["id"] for d in index.nearest("wiring_ttl", FUTIAN, k=2, catalog=routed)] == ["F1", "F2"]
    other = postgis.open_layers(url)             # another server's pool: its own connections
    try:
        other.import_layer(_tiny("wiring_ttl", ["A1", "A2", "A3"]))
        asked = []
        monkeypatch.setattr(postgis.PostgisLayers, "names",
                            lambda self, _f=postgis.PostgisLayers.names: asked.append(1) or _f(self))
        for _ in range(5):       # the names are asked once per TTL, not once per query
            assert [d["id"] for d in index.nearest("wiring_ttl", FUTIAN, k=2, catalog=routed)] == ["F1", "F2"]
        assert asked == []
        now[0] += 2.0
        assert [d["id"] for d in index.nearest("wiring_ttl", FUTIAN, k=2, catalog=routed)] == ["A1", "A2"]
        assert len(asked) == 1
        other.import_layer(_tiny("wiring_ttl", ["B1", "B2"]))                      # same clock: no TTL passes
        assert [d["id"] for d in index.nearest("wiring_ttl", FUTIAN, k=5, catalog=routed)] == ["B1", "B2"]
        grown = _tiny("wiring_ttl", ["C1", "C2"], extra={"beds": np.array([10, 20], dtype=np.int64)})
        other.import_layer(grown)          # one column more: the old column list still parses, the hash differs
        got = index.nearest("wiring_ttl", FUTIAN, k=5, catalog=routed)
        assert [(d["id"], d["beds"]) for d in got] == [("C1", 10), ("C2", 20)]
        assert got == index.LayerIndex.for_layer(grown).nearest(FUTIAN, k=5)
        other.run(lambda c: c.execute(f"DELETE FROM {postgis.REGISTRY} WHERE name = 'wiring_ttl'"))
        # the registry lists it no more: the next query (same clock) answers from the catalogue's own file
        assert [d["id"] for d in index.nearest("wiring_ttl", FUTIAN, k=2, catalog=routed)] == ["F1", "F2"]
        assert len(asked) == 1
    finally:
        other.close()
        index.close_postgis(url)          # what was read under the moved clock goes


def test_a_postgis_failure_mid_query_is_one_layer_error(pg, tmp_path):
    import psycopg
    url, db = pg
    db.import_layer(_tiny("wiring_lock", ["L1", "L2"]))
    routed = Catalog(BUNDLED.data_dir, tmp_path / "v", postgis_url=url)
    assert [d["id"] for d in index.nearest("wiring_lock", FUTIAN, k=1, catalog=routed)] == ["L1"]
    from urllib.parse import urlsplit
    dbname = urlsplit(url).path.lstrip("/")
    with psycopg.connect(url, autocommit=True) as admin:
        admin.execute(f"ALTER DATABASE {dbname} SET lock_timeout = '300ms'")
        index.close_postgis(url)              # new connections: they take the lock timeout
        try:
            with psycopg.connect(url) as locker:
                locker.execute("LOCK TABLE layer_wiring_lock IN ACCESS EXCLUSIVE MODE")
                with pytest.raises(LayerError) as err:
                    index.nearest("wiring_lock", FUTIAN, k=1, catalog=routed)
                locker.rollback()
        finally:
            admin.execute(f"ALTER DATABASE {dbname} RESET lock_timeout")
            index.close_postgis(url)
    msg = str(err.value)
    assert "\n" not in msg and "wiring_lock" in msg and "lock timeout" in msg
    assert not isinstance(err.value, UnknownLayerError)
    assert [d["id"] for d in index.nearest("wiring_lock", FUTIAN, k=1, catalog=routed)] == ["L1"]


def test_an_unreachable_database_is_one_line_without_its_password(tmp_path):
    url = f"postgresql://yzt:s3cret@/postgres?host={tmp_path}&port=1"
    routed = Catalog(BUNDLED.data_dir, tmp_path / "v", postgis_url=url)
    try:
        with pytest.raises(LayerError) as err:
            index.nearest("hospital", FUTIAN, k=1, catalog=routed)
    finally:
        index.close_postgis(url)
    msg = str(err.value)
    assert "\n" not in msg and "s3cret" not in msg and "cannot connect" in msg and "PostGIS" in msg


def test_a_database_without_layers_answers_from_memory_and_is_left_as_it_was(pg, tmp_path):
    """The store's database on the PostgreSQL pass: no PostGIS, no yzt_layers; asking creates neither."""
    import psycopg
    url, _ = pg
    plain = f"yzt_wiring_plain_{os.getpid()}"
    with psycopg.connect(url, autocommit=True) as admin:
        admin.execute(f"DROP DATABASE IF EXISTS {plain}")
        admin.execute(f"CREATE DATABASE {plain}")
    from urllib.parse import urlsplit, urlunsplit
    plain_url = urlunsplit(urlsplit(url)._replace(path="/" + plain))
    try:
        routed = Catalog(BUNDLED.data_dir, tmp_path / "v", postgis_url=plain_url)
        for name in ("hospital", "camera"):
            assert index.nearest(name, TIANHE, k=5, catalog=routed) == index.nearest(name, TIANHE, k=5)
            assert isinstance(index.index_for(name, routed), index.LayerIndex)
        with psycopg.connect(plain_url) as c:
            assert c.execute("SELECT count(*) FROM pg_extension WHERE extname = 'postgis'").fetchone()[0] == 0
            assert c.execute("SELECT to_regclass('yzt_layers')").fetchone()[0] is None
    finally:
        index.close_postgis(plain_url)
        with psycopg.connect(url, autocommit=True) as admin:
            admin.execute(f"DROP DATABASE IF EXISTS {plain} WITH (FORCE)")


def test_a_role_that_may_not_read_the_registry_gets_one_line(pg, tmp_path):
    import psycopg
    from urllib.parse import urlsplit, urlunsplit
    url, db = pg
    db.import_layer(_tiny("wiring_rights", ["R1"]))
    with psycopg.connect(url, autocommit=True) as admin:
        admin.execute("DROP ROLE IF EXISTS yzt_wiring_noread")
        admin.execute("CREATE ROLE yzt_wiring_noread LOGIN")
    noread = urlunsplit(urlsplit(url)._replace(netloc="yzt_wiring_noread@"))
    try:
        routed = Catalog(BUNDLED.data_dir, tmp_path / "v", postgis_url=noread)
        with pytest.raises(LayerError) as err:
            index.nearest("wiring_rights", FUTIAN, k=1, catalog=routed)
        assert "\n" not in str(err.value) and "permission denied" in str(err.value)
    finally:
        index.close_postgis(noread)
        with psycopg.connect(url, autocommit=True) as admin:
            admin.execute("DROP ROLE IF EXISTS yzt_wiring_noread")
