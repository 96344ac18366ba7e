"""layers.nearby.around with an uncertain point (issue 14): every answer says approximate, and the camera
pull-up spreads over the uncertainty circle; a sure point (uncertainty 0 or None) answers as before.
Real bundled data: a township-precision address from the gazetteer."""
from __future__ import annotations

import math

import numpy as np
import pytest

from incidents.geocode import locate
from layers.catalog import Catalog
from layers.errors import LayerError
from layers.index import nearest, within
from layers.nearby import COVER_MAX, around, lattice
from settings import load_settings

LAYERS = ("hospital", "fire_station", "camera", "shelter")


def cat() -> Catalog:
    return Catalog.of(load_settings())


@pytest.fixture(scope="module")
def humen():
    """东莞市虎门镇: a township match, its point the township's centre, several km of uncertainty."""
    loc = locate("东莞市虎门镇")
    assert loc.precision == "township" and loc.uncertainty_m > 2000
    return loc


def _xy(items: list[dict]) -> np.ndarray:
    from layers.nearby import _metric
    return _metric(items)


def _covering_radius(answer: list[dict], area: list[dict]) -> float:
    """The farthest any camera of ``area`` is from the answer's nearest camera (metres)."""
    a, b = _xy(answer), _xy(area)
    return float(np.hypot(b[:, None, 0] - a[None, :, 0], b[:, None, 1] - a[None, :, 1]).min(axis=1).max())


def test_township_cameras_spread_over_the_uncertainty_circle(humen):
    u, c = humen.uncertainty_m, cat()
    sure = nearest("camera", humen.point, k=5, catalog=c)
    got = around("camera", humen.point, k=5, catalog=c, uncertainty_m=u)
    area = within("camera", humen.point, u, catalog=c)
    assert len(area) > COVER_MAX            # the circle holds more cameras than the pull-up shows
    assert 5 < len(got) <= COVER_MAX
    ids = [d["id"] for d in got]
    assert len(set(ids)) == len(ids)
    assert {d["id"] for d in sure} <= set(ids)                 # today's k nearest are still there
    assert [(d["distance_m"], d["id"]) for d in got] == sorted((d["distance_m"], d["id"]) for d in got)
    assert all(d["distance_m"] <= max(u, sure[-1]["distance_m"]) for d in got)
    assert max(d["distance_m"] for d in got) > 0.8 * u         # reaches the edge of the circle
    # every camera of the area has a shown camera near it; the 50 nearest the centre leave the rim bare
    assert _covering_radius(got, area) < 0.35 * u
    assert _covering_radius(nearest("camera", humen.point, k=len(got), catalog=c), area) > 0.5 * u


def test_every_answer_around_an_uncertain_point_says_approximate(humen):
    u, c = humen.uncertainty_m, cat()
    for layer in LAYERS:
        got = around(layer, humen.point, k=5, catalog=c, uncertainty_m=u)
        assert got, layer
        for d in got:
            assert d["approximate"] is True, layer
            assert d["distance_uncertainty_m"] == round(u)
            assert d["in_uncertainty_area"] is (d["distance_m"] <= u)


def test_layers_other_than_cameras_keep_their_ranking_and_only_gain_the_flags(humen):
    u, c = humen.uncertainty_m, cat()
    for layer in ("hospital", "fire_station", "shelter"):
        sure = around(layer, humen.point, k=5, catalog=c)
        rough = around(layer, humen.point, k=5, catalog=c, uncertainty_m=u)
        extra = {"approximate", "distance_uncertainty_m", "in_uncertainty_area"}
        assert [{k: v for k, v in d.items() if k not in extra} for d in rough] == sure, layer


@pytest.mark.parametrize("none", [0, 0.0, None])
def test_a_sure_point_answers_exactly_as_before(humen, none):
    point, c = humen.point, cat()
    for layer in LAYERS:
        got = around(layer, point, k=5, catalog=c, uncertainty_m=none)
        assert got == around(layer, point, k=5, catalog=c)
        assert not any("approximate" in d for d in got)
    assert around("camera", point, k=5, catalog=c, uncertainty_m=none) == nearest("camera", point, k=5, catalog=c)


def test_the_radius_still_bounds_the_camera_pull_up(humen):
    c = cat()
    got = around("camera", humen.point, k=5, radius_m=2000, catalog=c, uncertainty_m=humen.uncertainty_m)
    assert got and all(d["distance_m"] <= 2000 for d in got)
    assert len(got) > 5


@pytest.mark.parametrize("bad", [-1, math.nan, math.inf, "500", True, 1e12])
def test_a_bad_uncertainty_is_refused_in_one_line(humen, bad):
    with pytest.raises(LayerError, match="uncertainty_m"):
        around("camera", humen.point, k=5, catalog=cat(), uncertainty_m=bad)


def test_the_lattice_covers_the_circle_within_its_slots():
    for reach, slots in ((1000.0, 1), (1000.0, 10), (8590.4, 45), (50.0, 200)):
        offsets, step = lattice(reach, slots=slots)
        assert 1 <= len(offsets) <= slots and step > 0
        assert (np.hypot(offsets[:, 0], offsets[:, 1]) <= reach + step).all()
        assert len({tuple(o) for o in offsets}) == len(offsets)
        # every place of the circle is well within one step (the query radius) of a lattice point
        rng = np.random.default_rng(3)
        r, a = reach * np.sqrt(rng.uniform(0, 1, 2000)), rng.uniform(0, 2 * np.pi, 2000)
        probe = np.column_stack((r * np.cos(a), r * np.sin(a)))
        gap = np.hypot(probe[:, None, 0] - offsets[None, :, 0], probe[:, None, 1] - offsets[None, :, 1]).min(axis=1)
        assert gap.max() <= step / np.sqrt(2) + 1e-6
    assert len(lattice(8590.4, slots=45)[0]) > 30     # the slots are mostly used
    assert len(lattice(1000.0, slots=0)[0]) == 0 and len(lattice(0.0, slots=5)[0]) == 0
