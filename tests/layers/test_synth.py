"""The seeded demo layers: deterministic, modelled by their rules, inside their districts."""
from __future__ import annotations

import math
from pathlib import Path

import networkx as nx
import numpy as np
import pandas as pd
import pytest
import shapely

from incidents import admin
from layers import synth

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT / "data"
LAYERS = DATA / "layers"
SUBSET = {"440304", "440523"}  # 福田区 (with the OSM road graph), 南澳县 (an island county)
FILES = ["fire_station.csv", "hospital.csv", "camera.csv.gz", "shelter.csv", "layers.json"]


def _read(name: str) -> pd.DataFrame:
    return pd.read_csv(LAYERS / name, dtype=str, keep_default_na=False)


@pytest.fixture(scope="module")
def subset_runs(tmp_path_factory):
    outs = []
    for k in range(2):
        out = tmp_path_factory.mktemp(f"synth{k}")
        synth.generate_all(out, src=DATA, adcodes=SUBSET)
        outs.append(out / "layers")
    return outs


def test_same_inputs_give_same_bytes(subset_runs):
    a, b = subset_runs
    for f in FILES:
        assert (a / f).read_bytes() == (b / f).read_bytes(), f


def test_subset_run_reproduces_the_shipped_rows(subset_runs):
    """Seeds are per (layer, district): the shipped files are exactly what the generator makes."""
    for f in ["fire_station.csv", "hospital.csv", "camera.csv.gz"]:
        got = pd.read_csv(subset_runs[0] / f, dtype=str, keep_default_na=False)
        shipped = _read(f)
        shipped = shipped[shipped["district_adcode"].isin(SUBSET)].reset_index(drop=True)
        assert set(got["district_adcode"]) == SUBSET
        pd.testing.assert_frame_equal(got, shipped)


def test_camera_count_and_columns():
    cams = _read("camera.csv.gz")
    assert len(cams) >= 100_000
    assert cams["id"].is_unique
    assert (cams["stream_url"] == "").all()
    assert set(cams["kind"]) == {"area", "road"}
    fov = cams["fov_deg"].astype(int)
    heading = cams["heading_deg"].astype(float)
    assert fov.between(60, 110).all() and heading.between(0, 360).all()


def test_road_cameras_lie_along_real_futian_roads():
    cams = _read("camera.csv.gz")
    road = cams[cams["kind"] == "road"]
    assert len(road) > 500
    assert set(road["district_adcode"]) == {"440304"}
    g = nx.read_graphml(DATA / synth.GRAPH_FILE)
    names = {synth._first(d.get("name")) for *_, d in g.edges(keys=True, data=True)}
    assert set(road["on_road"]) - {""} <= names
    named = road[road["on_road"] != ""].iloc[0]
    assert named["name"] == f"福田区 {named['on_road']} 摄像机 {named['id'][-5:]}"


def test_every_populated_district_has_a_fire_station_and_a_hospital():
    codes = set(admin.districts(DATA)["district_adcode"]) - synth.EXCLUDED_ADCODES
    assert len(codes) == 124
    for f in ["fire_station.csv", "hospital.csv"]:
        assert set(_read(f)["district_adcode"]) == codes, f


def test_fire_stations_follow_the_7_km2_rule():
    st = _read("fire_station.csv")
    for d in synth.district_inputs(DATA, {"440106", "441900", "440117"}):
        rows = st[st["district_adcode"] == d.adcode]
        assert (rows["kind"] == "urban").sum() == max(1, math.ceil(d.built_up_km2 / 7))
        assert rows["name"].str.endswith("(模拟)").all()
    tianhe = st[st["district_adcode"] == "440106"]
    assert (tianhe["kind"] == "rural").sum() == 0  # 天河区 has no rural residents in the census


def test_hospital_grades_and_beds():
    h = _read("hospital.csv")
    share = h["grade"].value_counts(normalize=True)
    assert 0.05 < share["三级"] < 0.2 and 0.3 < share["二级"] < 0.5
    beds = h["beds"].astype(int)
    for grade, (lo, hi) in synth.BEDS.items():
        assert beds[h["grade"] == grade].between(lo, hi).all()
    best = h.groupby("district_adcode")["grade"].apply(lambda g: bool(set(g) & {"三级", "二级"}))
    assert best.all()


@pytest.mark.parametrize("name", ["fire_station.csv", "hospital.csv", "camera.csv.gz", "shelter.csv"])
def test_points_lie_in_their_district_and_in_guangdong(name):
    df = _read(name)
    lon, lat = df["lon"].astype(float).to_numpy(), df["lat"].astype(float).to_numpy()
    assert shapely.contains_xy(admin.province_shape(DATA), lon, lat).all()
    gdf = admin.districts(DATA).set_index("district_adcode")
    for code, idx in df.groupby("district_adcode").indices.items():
        assert shapely.contains_xy(gdf.loc[code, "geometry"], lon[idx], lat[idx]).all(), code
    if name != "shelter.csv":  # 6 decimals
        assert df["lon"].str.split(".").str[1].str.len().eq(6).all()


def test_shelters_are_the_real_points_honestly_named():
    sh = _read("shelter.csv")
    src = pd.read_csv(DATA / synth.SHELTER_FILE, dtype=str)
    assert len(sh) == 584 and sh["id"].is_unique
    assert sh["name"].iloc[12] == f"应急避难场所 {src['sid'].iloc[12]} (名称未公开)"
    assert np.allclose(sh["lon"].astype(float), src["lon_wgs84"].astype(float), atol=1e-7)
