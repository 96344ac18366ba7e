"""The layer catalogue: what exists, its provenance, loading with metric coordinates."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from pyproj import Transformer

from layers import io
from layers.catalog import Catalog
from settings import load_settings
from layers.errors import LayerError, UnknownLayerError


def cat():
    """The layer catalogue of this test's settings (its own var_dir), as a door builds it."""
    return Catalog.of(load_settings())


def import_layer(*args, **kw):
    return io.import_layer(*args, catalog=cat(), **kw)


def export_layer(*args, **kw):
    return io.export_layer(*args, catalog=cat(), **kw)

TEST_DATA = Path(__file__).resolve().parents[1] / "data"


def test_lists_the_four_shipped_layers_with_their_synthetic_flags():
    infos = {i.name: i for i in cat().list_layers()}
    assert {n: i.synthetic for n, i in infos.items()} == {
        "camera": True, "fire_station": True, "hospital": True, "shelter": False}
    assert infos["shelter"].rows == 584
    assert infos["camera"].rows >= 100_000
    assert all(i.crs == "wgs84" and i.licence and i.source and not i.imported for i in infos.values())
    assert "OpenStreetMap" in infos["camera"].licence


def test_load_camera_gives_wgs84_points_and_metric_arrays():
    lay = cat().load("camera")
    gdf = lay.gdf
    assert lay.synthetic and gdf.crs.to_epsg() == 4326
    assert len(gdf) == len(lay.x_m) == len(lay.y_m) == cat().list_layers()[0].rows
    assert {"id", "name", "heading_deg", "fov_deg", "stream_url", "district_adcode"} <= set(gdf.columns)
    assert gdf["heading_deg"].dtype.kind == "f" and gdf["stream_url"].eq("").all()
    t = Transformer.from_crs("EPSG:4326", "EPSG:4547", always_xy=True)
    for i in (0, 5000, len(gdf) - 1):
        x, y = t.transform(gdf.geometry.iloc[i].x, gdf.geometry.iloc[i].y)
        assert lay.x_m[i] == pytest.approx(x, abs=1e-6) and lay.y_m[i] == pytest.approx(y, abs=1e-6)
    assert not lay.x_m.flags.writeable
    assert cat().load("camera") is lay  # cached per process


def test_load_shelter_is_real_and_typed():
    lay = cat().load("shelter")
    assert not lay.synthetic and len(lay) == 584
    assert lay.gdf["name"].str.contains("名称未公开").all()
    assert lay.gdf["lon_gcj02"].dtype.kind == "f"
    assert np.isfinite(lay.x_m).all()


def test_unknown_layer_names_the_known_ones():
    with pytest.raises(UnknownLayerError) as e:
        cat().load("police")
    msg = str(e.value)
    assert "'police'" in msg and "camera, fire_station, hospital, shelter" in msg
    assert isinstance(e.value, LayerError) and isinstance(e.value, KeyError)
    assert "\n" not in msg


def test_an_imported_registry_replaces_the_shipped_layer():
    shipped = cat().load("hospital")
    import_layer("hospital", TEST_DATA / "layers_hospitals_good.csv")
    lay = cat().load("hospital")
    assert lay is not shipped and lay.imported and not lay.synthetic
    assert lay.source.startswith("layers_hospitals_good.csv (imported ")
    assert list(lay.gdf["id"]) == ["GZ-001", "SZ-001", "ST-001"]
    info = {i.name: i for i in cat().list_layers()}["hospital"]
    assert info.imported and info.rows == 3 and not info.synthetic


def test_a_foreign_file_in_the_registry_folder_is_refused_clearly(tmp_path):
    folder = cat().imported_dir
    folder.mkdir(parents=True)
    (folder / "hospital.csv").write_text("id,name,lon,lat\n", encoding="utf-8")
    with pytest.raises(LayerError, match="not a yzt layer registry"):
        cat().load("hospital")
