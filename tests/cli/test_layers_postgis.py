"""`yzt layers import NAME [FILE] --postgis`: loads into PostGIS, refuses SQLite / unreachable / no PostGIS in
one line (exit 2), and a refused file changes neither the file catalogue nor PostGIS."""
from __future__ import annotations

import json
import os

import pytest

import settings as settings_mod
from bench.postgis import server_binaries, throwaway_database
from command.cli.main import main
from incidents.model import Point

pytestmark = pytest.mark.skipif(not server_binaries() and not os.environ.get("YZT_TEST_DATABASE"),
                                reason="no PostgreSQL server binary (initdb, pg_ctl): apt-get install postgresql postgis")


@pytest.fixture(scope="module")
def pg_url():
    with throwaway_database("yzt_test_cli_layers") as url:
        yield url


def run(capsys, monkeypatch, database: str | None, *argv: str) -> tuple[int, str, str]:
    if database is None:
        monkeypatch.delenv("YZT_DATABASE", raising=False)
    else:
        monkeypatch.setenv("YZT_DATABASE", database)
    settings_mod.reset_settings_cache()
    code = main(list(argv))
    cap = capsys.readouterr()
    return code, cap.out, cap.err


def test_sqlite_is_refused_in_one_line(capsys, monkeypatch):
    code, _, err = run(capsys, monkeypatch, None, "layers", "import", "hospital", "--postgis")
    assert code == 2 and err.count("\n") == 1
    assert "YZT_DATABASE=postgresql://" in err and "SQLite" in err


def test_an_unreachable_server_is_refused_in_one_line(capsys, monkeypatch, tmp_path):
    url = f"postgresql://yzt@/postgres?host={tmp_path}&port=1"
    code, _, err = run(capsys, monkeypatch, url, "layers", "import", "hospital", "--postgis")
    assert code == 2 and err.count("\n") == 1 and "cannot connect" in err


def test_a_database_without_postgis_that_may_not_create_it_is_refused(capsys, monkeypatch, pg_url):
    import psycopg
    from urllib.parse import urlsplit, urlunsplit
    with psycopg.connect(pg_url, autocommit=True) as c:
        c.execute("DROP DATABASE IF EXISTS yzt_no_postgis")
        c.execute("DROP ROLE IF EXISTS yzt_plain")
        c.execute("CREATE ROLE yzt_plain LOGIN")
        c.execute("CREATE DATABASE yzt_no_postgis OWNER yzt_plain")
    parts = urlsplit(pg_url)
    url = urlunsplit(parts._replace(netloc="yzt_plain@", path="/yzt_no_postgis"))
    code, _, err = run(capsys, monkeypatch, url, "layers", "import", "hospital", "--postgis")
    assert code == 2 and err.count("\n") == 1 and "PostGIS" in err


def test_import_file_into_postgis_answers_as_the_catalogue(capsys, monkeypatch, pg_url, tmp_path):
    from layers import postgis
    from layers.catalog import Catalog
    from layers.index import LayerIndex
    geojson = tmp_path / "fs.geojson"
    assert main(["layers", "export", "fire_station", str(geojson)]) == 0
    capsys.readouterr()
    code, out, err = run(capsys, monkeypatch, pg_url, "layers", "import", "fs_copy", str(geojson), "--postgis", "--json")
    assert code == 0, err
    d = json.loads(out)
    assert d["rows"] == 1885 and d["table"] == "layer_fs_copy" and len(d["content_sha256"]) == 64
    cat = Catalog.of(settings_mod.get_settings())
    layer = cat.load("fs_copy")                      # the registry file is in place too
    with postgis.open_layers(pg_url) as db:
        p = Point(113.32, 23.12, "wgs84")
        assert db.index("fs_copy").nearest(p, k=5) == LayerIndex.for_layer(layer).nearest(p, k=5)


def test_a_refused_file_changes_neither_files_nor_postgis(capsys, monkeypatch, pg_url, tmp_path):
    from layers import postgis
    from layers.catalog import Catalog
    bad = tmp_path / "bad.csv"
    bad.write_text("id,name,lon,lat\n1,甲,113.3,23.1\n2,乙,120.5,30.2\n", encoding="utf-8")
    code, _, err = run(capsys, monkeypatch, pg_url, "layers", "import", "bad_layer", str(bad), "--postgis")
    assert code == 2 and "row 2" in err
    assert "bad_layer" not in Catalog.of(settings_mod.get_settings()).imported()
    with postgis.open_layers(pg_url) as db:
        assert db.info("bad_layer") is None
