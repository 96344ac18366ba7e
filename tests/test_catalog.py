"""The layer catalogue: what exists, its provenance, loading with metric coordinates."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from pyproj import Transformer

from layers import catalog, io
from layers.errors import LayerError, UnknownLayerError

TEST_DATA = Path(__file__).resolve().parent / "data"


def test_lists_the_four_shipped_layers_with_their_synthetic_flags():
    infos = {i.name: i for i in catalog.list_layers()}
    assert {n: i.synthetic for n, i in infos.items()} == {
        "camera": True, "fire_station": True, "hospital": True, "shelter": False}
    assert infos["shelter"].rows == 584
    assert infos["camera"].rows >= 100_000
    assert all(i.crs == "wgs84" and i.licence and i.source and not i.imported for i in infos.values())
    assert "OpenStreetMap" in infos["camera"].licence


def test_load_camera_gives_wgs84_points_and_metric_arrays():
    lay = catalog.load("camera")
    gdf = lay.gdf
    assert lay.synthetic and gdf.crs.to_epsg() == 4326
    assert len(gdf) == len(lay.x_m) == len(lay.y_m) == catalog.list_layers()[0].rows
    assert {"id", "name", "heading_deg", "fov_deg", "stream_url", "district_adcode"} <= set(gdf.columns)
    assert gdf["heading_deg"].dtype.kind == "f" and gdf["stream_url"].eq("").all()
    t = Transformer.from_crs("EPSG:4326", "EPSG:4547", always_xy=True)
    for i in (0, 5000, len(gdf) - 1):
        x, y = t.transform(gdf.geometry.iloc[i].x, gdf.geometry.iloc[i].y)
        assert lay.x_m[i] == pytest.approx(x, abs=1e-6) and lay.y_m[i] == pytest.approx(y, abs=1e-6)
    assert not lay.x_m.flags.writeable
    assert catalog.load("camera") is lay  # cached per process


def test_load_shelter_is_real_and_typed():
    lay = catalog.load("shelter")
    assert not lay.synthetic and len(lay) == 584
    assert lay.gdf["name"].str.contains("名称未公开").all()
    assert lay.gdf["lon_gcj02"].dtype.kind == "f"
    assert np.isfinite(lay.x_m).all()


def test_unknown_layer_names_the_known_ones():
    with pytest.raises(UnknownLayerError) as e:
        catalog.load("police")
    msg = str(e.value)
    assert "'police'" in msg and "camera, fire_station, hospital, shelter" in msg
    assert isinstance(e.value, LayerError) and isinstance(e.value, KeyError)
    assert "\n" not in msg


def test_an_imported_registry_replaces_the_shipped_layer():
    shipped = catalog.load("hospital")
    io.import_layer("hospital", TEST_DATA / "layers_hospitals_good.csv")
    lay = catalog.load("hospital")
    assert lay is not shipped and lay.imported and not lay.synthetic
    assert lay.source.startswith("layers_hospitals_good.csv (imported ")
    assert list(lay.gdf["id"]) == ["GZ-001", "SZ-001", "ST-001"]
    info = {i.name: i for i in catalog.list_layers()}["hospital"]
    assert info.imported and info.rows == 3 and not info.synthetic


def test_a_foreign_file_in_the_registry_folder_is_refused_clearly(tmp_path):
    folder = catalog.imported_dir()
    folder.mkdir(parents=True)
    (folder / "hospital.csv").write_text("id,name,lon,lat\n", encoding="utf-8")
    with pytest.raises(LayerError, match="not a yzt layer registry"):
        catalog.load("hospital")
