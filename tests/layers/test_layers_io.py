"""Registry import (all rows or none) and GeoJSON export."""
from __future__ import annotations

import json
from pathlib import Path

import geopandas as gpd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
import shapely

from layers import _validate, catalog, io
from layers.catalog import Catalog
from settings import load_settings
from layers.errors import ImportRefused


def cat():
    """The layer catalogue of this test's settings (its own var_dir), as a door builds it."""
    return Catalog.of(load_settings())


def import_layer(*args, **kw):
    return io.import_layer(*args, catalog=cat(), **kw)


def export_layer(*args, **kw):
    return io.export_layer(*args, catalog=cat(), **kw)

TEST_DATA = Path(__file__).resolve().parents[1] / "data"


def test_good_csv_is_imported_with_districts_and_numbers():
    rep = import_layer("hospital", TEST_DATA / "layers_hospitals_good.csv")
    assert rep.rows_accepted == 3 and rep.refused == [] and rep.path == cat().imported_path("hospital")
    gdf = cat().load("hospital").gdf
    assert list(gdf["district_adcode"]) == ["440106", "440304", "440511"]
    assert gdf["beds"].iloc[0] == 1500 and gdf["beds"].isna().iloc[2]
    assert gdf.geometry.iloc[0].x == pytest.approx(113.3245)


def test_bad_csv_is_refused_whole_with_rows_by_number():
    with pytest.raises(ImportRefused) as e:
        import_layer("hospital", TEST_DATA / "layers_hospitals_bad.csv")
    refused = dict(e.value.refused)
    assert sorted(refused) == [2, 3, 4, 5, 6]
    assert refused[2] == "lon 120.5 lat 30.2 is outside Guangdong"
    assert refused[3] == "name is empty"
    assert refused[4] == "id 'GZ-001' repeats row 1"
    assert refused[5] == "lon 'abc' is not a number"
    assert refused[6] == "lon 22.5431 lat 114.0579 look swapped (latitude given first?)"
    msg = str(e.value)
    assert "\n" not in msg and "nothing imported" in msg and "row 2: lon 120.5 lat 30.2 is outside Guangdong" in msg
    assert not cat().imported_path("hospital").exists()
    assert cat().load("hospital").synthetic  # the shipped layer still answers


def test_a_refused_import_leaves_the_previous_registry_untouched():
    import_layer("hospital", TEST_DATA / "layers_hospitals_good.csv")
    before = cat().imported_path("hospital").read_bytes()
    with pytest.raises(ImportRefused):
        import_layer("hospital", TEST_DATA / "layers_hospitals_bad.csv")
    assert cat().imported_path("hospital").read_bytes() == before
    assert [p.name for p in cat().imported_dir.iterdir()] == ["hospital.csv"]  # no temp files left


def test_dry_run_reports_without_writing():
    rep = import_layer("hospital", TEST_DATA / "layers_hospitals_bad.csv", dry_run=True)
    assert rep.rows_accepted == 0 and [n for n, _ in rep.refused] == [2, 3, 4, 5, 6]
    assert json.loads(json.dumps(rep.as_dict()))["refused"][0] == {
        "row": 2, "reason": "lon 120.5 lat 30.2 is outside Guangdong"}
    assert not cat().imported_path("hospital").exists()


def test_gcj02_csv_is_converted_to_wgs84():
    pytest.importorskip("incidents.coords")
    # standards/README.md vector: WGS (22.543847, 113.912316) -> GCJ (22.540796131694766, 113.9171764808363)
    rep = import_layer("camera", TEST_DATA / "layers_cameras_gcj02.csv", crs="gcj02")
    assert rep.rows_accepted == 1
    gdf = cat().load("camera").gdf
    p = gdf.geometry.iloc[0]
    assert p.x == pytest.approx(113.912316, abs=1e-5) and p.y == pytest.approx(22.543847, abs=1e-5)
    assert gdf["id"].iloc[0] == "C-1" and gdf["name"].iloc[0] == "福田测试摄像机"
    assert gdf["heading_deg"].iloc[0] == 90 and gdf["stream_url"].iloc[0] == ""
    assert catalog.read_registry_header(rep.path)["input_datum"] == "gcj02"


def test_geojson_round_trip(tmp_path):
    out = tmp_path / "shelter.geojson"
    assert export_layer("shelter", out) == 584
    doc = json.loads(out.read_text(encoding="utf-8"))
    assert doc["type"] == "FeatureCollection" and doc["yzt"]["layer"] == "shelter"
    assert doc["yzt"]["synthetic"] is False and len(doc["features"]) == 584
    assert all(f["properties"]["synthetic"] is False for f in doc["features"])
    shipped = cat().load("shelter").gdf
    rep = import_layer("shelter", out)
    assert rep.rows_accepted == 584 and not rep.synthetic
    back = cat().load("shelter").gdf
    assert list(back["id"]) == list(shipped["id"])
    assert list(back["district_adcode"]) == list(shipped["district_adcode"])
    assert shapely.equals_exact(back.geometry.to_numpy(), shipped.geometry.to_numpy(), tolerance=1e-7).all()


def test_a_reimported_demo_layer_stays_synthetic(tmp_path):
    out = tmp_path / "fs.geojson"
    export_layer("fire_station", out)
    rep = import_layer("fire_station", out)
    assert rep.synthetic
    lay = cat().load("fire_station")
    assert lay.imported and lay.synthetic


def test_polygons_are_refused(tmp_path):
    gdf = gpd.GeoDataFrame({"id": ["P1", "P2"], "name": ["广场", "公园"]},
                           geometry=[shapely.box(113.30, 23.10, 113.31, 23.11), shapely.Point(113.32, 23.12)],
                           crs="EPSG:4326")
    path = tmp_path / "mixed.geojson"
    gdf.to_file(path, driver="GeoJSON", engine="pyogrio")
    with pytest.raises(ImportRefused) as e:
        import_layer("shelter", path)
    assert e.value.refused == [(1, "geometry is a Polygon, not a point (give one point per facility)")]


def test_a_projected_geopackage_is_reprojected(tmp_path):
    pts = gpd.GeoDataFrame({"编号": ["S1"], "名称": ["测试避难场所"]},
                           geometry=[shapely.Point(114.0579, 22.5431)], crs="EPSG:4326").to_crs("EPSG:4547")
    path = tmp_path / "s.gpkg"
    pts.to_file(path, driver="GPKG", engine="pyogrio")
    rep = import_layer("shelter", path)
    assert any("reprojected" in n and "4547" in n for n in rep.notes)
    p = cat().load("shelter").gdf.geometry.iloc[0]
    assert p.x == pytest.approx(114.0579, abs=1e-7) and p.y == pytest.approx(22.5431, abs=1e-7)
    with pytest.raises(ImportRefused, match="cannot also be gcj02"):
        import_layer("shelter", path, crs="gcj02")


@pytest.mark.parametrize(("kwargs", "text"), [
    ({"crs": "mars"}, "crs 'mars' refused"),
    ({"id_field": "code_x"}, "no column 'code_x'"),
])
def test_file_level_refusals(kwargs, text):
    with pytest.raises(ImportRefused, match=text):
        import_layer("hospital", TEST_DATA / "layers_hospitals_good.csv", **kwargs)


def test_missing_id_column_and_bad_names_are_refused(tmp_path):
    path = tmp_path / "x.csv"
    path.write_text("name,lon,lat\n甲,113.3,23.1\n", encoding="utf-8")
    with pytest.raises(ImportRefused, match="--id-field"):
        import_layer("hospital", path)
    with pytest.raises(ImportRefused, match="layer name"):
        import_layer("../etc", path)
    with pytest.raises(ImportRefused, match="no such file"):
        import_layer("hospital", tmp_path / "missing.csv")


def test_gb18030_csv_and_row_datum_column(tmp_path):
    path = tmp_path / "gbk.csv"
    path.write_bytes("编号,名称,lng,lat,坐标系\nA,甲医院,113.3245,23.1195,WGS-84\nB,乙医院,113.33,23.12,火星坐标\n"
                     .encode("gb18030"))
    with pytest.raises(ImportRefused) as e:
        import_layer("hospital", path)
    assert e.value.refused == [(2, "datum '火星坐标' unknown (use wgs84, gcj02 or bd09)")]


@settings(max_examples=30, deadline=None)
@given(st.lists(st.tuples(st.floats(109.0, 118.0), st.floats(20.0, 26.0)), min_size=1, max_size=20))
def test_exactly_the_rows_outside_guangdong_are_refused(points):
    from incidents import admin
    rows = [_validate.RawRow(number=i + 1, id=f"P{i}", name="点", lon=str(x), lat=str(y))
            for i, (x, y) in enumerate(points)]
    lon, lat, refused = _validate.check_rows(rows, default_datum="wgs84")
    outside = {i + 1 for i, (x, y) in enumerate(points) if not admin.in_guangdong(float(str(x)), float(str(y)))}
    assert {n for n, _ in refused} == outside
    assert all(why.endswith("is outside Guangdong") for _, why in refused)
    kept = [i for i in range(len(points)) if i + 1 not in outside]
    assert list(lon[kept]) == [float(str(points[i][0])) for i in kept]
