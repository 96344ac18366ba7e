"""layers.postgis: the bundled layers in PostGIS answer nearest/within as the in-memory index does (same ids,
same distances, ties broken the same way), and an import is atomic.

Needs a PostgreSQL server with PostGIS: the one of YZT_TEST_DATABASE when set, else a throwaway cluster started
here (bench.postgis.throwaway_database); skipped only when no PostgreSQL server binary exists.
"""
from __future__ import annotations

import threading

import numpy as np
import pandas as pd
import pytest

from bench.postgis import server_binaries, throwaway_database
from incidents.model import Point
from layers import postgis
from layers.catalog import BUNDLED, Layer, to_metric
from layers.errors import LayerError
from layers.index import LayerIndex

pytestmark = pytest.mark.skipif(not server_binaries() and not __import__("os").environ.get("YZT_TEST_DATABASE"),
                                reason="no PostgreSQL server binary (initdb, pg_ctl): apt-get install postgresql postgis")

LAYERS = ("camera", "hospital", "fire_station")


@pytest.fixture(scope="module")
def db():
    with throwaway_database("yzt_test_layers") as url, postgis.open_layers(url) as layers:
        yield layers


@pytest.fixture(scope="module")
def imported(db):
    """The bundled layers, each in memory (LayerIndex) and in PostGIS (PostgisLayerIndex)."""
    out = {}
    for name in LAYERS:
        layer = BUNDLED.load(name)
        info = db.import_layer(layer)
        assert info["rows"] == len(layer)
        out[name] = (LayerIndex.for_layer(layer), db.index(name), layer)
    return out


def query_points(layer, n: int, seed: int) -> list[Point]:
    """Points where answers are hard: a third exactly on rows (distance 0), the rest 20 m - 3 km off rows."""
    rng = np.random.default_rng(seed)
    pick = rng.integers(0, len(layer), n)
    jitter = rng.normal(0, 0.01, (n, 2)) * (np.arange(n) % 3 != 0)[:, None]
    return [Point(float(layer.lon[i] + dx), float(layer.lat[i] + dy), "wgs84")
            for i, (dx, dy) in zip(pick, jitter)]


def same(a: list[dict], b: list[dict]) -> None:
    assert [r["id"] for r in a] == [r["id"] for r in b]
    assert np.allclose([r["distance_m"] for r in a], [r["distance_m"] for r in b], atol=0.01, rtol=0)
    assert a == b      # every column, same values and types


@pytest.mark.parametrize("name", LAYERS)
def test_nearest_is_the_in_memory_answer_on_the_bundled_layer(imported, name):
    mem, pg, layer = imported[name]
    assert len(pg) == len(mem) == len(layer)
    for i, p in enumerate(query_points(layer, 300, seed=len(name))):
        k = (1, 5, 12)[i % 3]
        got, want = pg.nearest(p, k=k), mem.nearest(p, k=k)
        assert len(got) == k
        same(got, want)


@pytest.mark.parametrize("name", LAYERS)
def test_nearest_within_a_radius_and_within_are_the_in_memory_sets(imported, name):
    mem, pg, layer = imported[name]
    radius = 1500.0 if name == "camera" else 8000.0
    found = 0
    for p in query_points(layer, 200, seed=7 + len(name)):
        same(pg.within(p, radius), mem.within(p, radius))
        same(pg.nearest(p, k=5, radius_m=radius / 4), mem.nearest(p, k=5, radius_m=radius / 4))
        found += len(mem.within(p, radius))
    assert found > 200          # the radii reach rows, so the sets compared are not all empty


def test_a_gcj02_query_point_is_converted_first_as_in_memory(imported):
    mem, pg, _ = imported["hospital"]
    p = Point(113.3245, 23.1365, "gcj02")
    same(pg.nearest(p, k=5), mem.nearest(p, k=5))


def _layer(name: str, ids: list[str], x: np.ndarray, y: np.ndarray) -> Layer:
    from layers.index import metric_to_wgs84
    import shapely
    pts = metric_to_wgs84(shapely.points(x, y))
    text = pd.StringDtype("pyarrow")
    table = pd.DataFrame({"id": pd.array(ids, dtype=text), "name": pd.array([f"点{i}" for i in ids], dtype=text),
                          "rank": np.arange(len(ids), dtype=np.int64)})
    return Layer(name=name, synthetic=True, source="test", licence="", table=table,
                 lon=shapely.get_x(pts), lat=shapely.get_y(pts), x_m=np.asarray(x, float), y_m=np.asarray(y, float))


def test_ties_at_the_kth_distance_are_broken_by_id_as_in_memory(db):
    """Ten rows on one spot (ids shuffled) and three farther: the k nearest are the k smallest ids."""
    rng = np.random.default_rng(3)
    cx, cy = to_metric(np.array([113.3]), np.array([23.1]))
    ids = [f"T{n:02d}" for n in rng.permutation(10)] + ["A9", "B9", "C9"]
    x = np.r_[np.full(10, cx[0] + 250.0), cx[0] + np.array([900.0, -900.0, 0.0])]
    y = np.r_[np.full(10, cy[0]), cy[0] + np.array([0.0, 0.0, 900.0])]
    layer = _layer("ties", ids, x, y)
    db.import_layer(layer)
    mem, pg = LayerIndex.for_layer(layer), db.index("ties")
    p = Point(113.3, 23.1, "wgs84")
    for k in (1, 4, 10, 11, 13, 20):
        same(pg.nearest(p, k=k), mem.nearest(p, k=k))
    assert [r["id"] for r in pg.nearest(p, k=4)] == ["T00", "T01", "T02", "T03"]
    assert [r["id"] for r in pg.nearest(p, k=12)][10:] == ["A9", "B9"]     # 900 m apart, ties by id too
    same(pg.within(p, 900.0), mem.within(p, 900.0))
    assert len(pg.within(p, 900.0)) == 13


def test_a_failing_import_leaves_the_old_table_and_a_reader_never_sees_half(db):
    rng = np.random.default_rng(5)
    cx, cy = to_metric(np.array([114.06]), np.array([22.54]))
    old = _layer("atomic", [f"O{i}" for i in range(50)], cx + rng.uniform(-3e3, 3e3, 50), cy + rng.uniform(-3e3, 3e3, 50))
    before = db.import_layer(old)
    p = Point(114.06, 22.54, "wgs84")
    answer = db.index("atomic").nearest(p, k=5)

    def broken(cur, table):         # half the new rows, then a failure inside the same transaction
        cur.execute(f"INSERT INTO {table} (id, name, lon, lat, datum, x_m, y_m, rank) "
                    f"SELECT 'N' || g, 'n', 114, 22.5, 'wgs84', {cx[0]}, {cy[0]}, g FROM generate_series(1, 25) g")
        cur.execute("SELECT 1 / 0")
        return "x"
    with pytest.raises(LayerError, match="old table is kept"):
        db.replace("atomic", [["rank", "int"]], broken, synthetic=True)
    assert db.info("atomic")["content_sha256"] == before["content_sha256"]
    assert len(db.index("atomic")) == 50
    assert db.index("atomic").nearest(p, k=5) == answer

    copied, release = threading.Event(), threading.Event()
    new = _layer("atomic", [f"N{i}" for i in range(80)], cx + rng.uniform(-3e3, 3e3, 80), cy + rng.uniform(-3e3, 3e3, 80))
    arrow, own = postgis._arrow_table(new)

    def slow(cur, table):           # the new rows are in, not yet swapped: readers must still see the old layer
        import hashlib
        digest = hashlib.sha256()
        postgis._copy_rows(cur, table, arrow, [*postgis.BASE_COLUMNS, "rank"], digest)
        copied.set()
        release.wait(30)
        return digest.hexdigest()
    t = threading.Thread(target=db.replace, args=("atomic", own, slow), kwargs={"synthetic": True})
    t.start()
    try:
        assert copied.wait(30)
        assert db.index("atomic").nearest(p, k=5) == answer
        assert len(db.index("atomic")) == 50
    finally:
        release.set()
        t.join(30)
    assert len(db.index("atomic")) == 80
    assert db.index("atomic").nearest(p, k=5) == LayerIndex.for_layer(new).nearest(p, k=5)


def test_a_reimport_with_other_columns_is_seen_by_an_index_made_before(db):
    rng = np.random.default_rng(9)
    cx, cy = to_metric(np.array([113.0]), np.array([22.9]))
    first = _layer("recol", [f"R{i}" for i in range(30)], cx + rng.uniform(-2e3, 2e3, 30), cy + rng.uniform(-2e3, 2e3, 30))
    db.import_layer(first)
    ix = db.index("recol")
    p = Point(113.0, 22.9, "wgs84")
    assert "rank" in ix.nearest(p, k=1)[0]
    second = Layer(**{**first.__dict__, "table": first.table.drop(columns=["rank"]).assign(grade="一级")})
    db.import_layer(second)
    got = ix.nearest(p, k=3)
    assert got == LayerIndex.for_layer(second).nearest(p, k=3)
    assert got[0]["grade"] == "一级" and "rank" not in got[0]


def test_refusals_are_layer_errors_naming_what(db):
    with pytest.raises(LayerError, match="not in PostGIS"):
        db.index("never_imported")
    ix = db.index("hospital") if "hospital" in db.names() else None
    if ix is None:
        db.import_layer(BUNDLED.load("hospital"))
        ix = db.index("hospital")
    p = Point(113.3, 23.1, "wgs84")
    with pytest.raises(LayerError, match="k must be"):
        ix.nearest(p, k=0)
    with pytest.raises(LayerError, match="radius_m"):
        ix.within(p, -5)
    with pytest.raises(LayerError, match="SQLite"):
        postgis.open_layers("var/yzt.db")
    with pytest.raises(LayerError, match="layer name"):
        postgis.table_name("Robert'); DROP TABLE x;--")
