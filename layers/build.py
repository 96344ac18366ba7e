"""Build the project's own ``data/`` from ``../shared/data``: a reproducible command.

    yzt data build --shared ../shared/data      (or: python -m layers.build ../shared/data)

Step 1 copies the real sources (boundaries, census, gazetteer with its township, community and
place points, road graph, shelters), trimmed where
a file carries far more than the product reads; step 2 generates the seeded synthetic demo layers
(``layers.synth``). Held-out files are never read: ``eval/``, and
``gazetteer/shenzhen_futian_osm_road_names.csv`` (SOURCES.md marks it a held-out set of street
queries; the product takes its road names from the graph itself). Running it twice gives the same bytes.
"""
from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pandas as pd

from layers.errors import DataBuildError

COPIES = {
    "boundaries/guangdong_province_amap_wgs84.geojson": "boundaries/guangdong_province_amap_wgs84.geojson",
    "boundaries/guangdong_city_amap_wgs84.geojson": "boundaries/guangdong_city_amap_wgs84.geojson",
    "boundaries/guangdong_district_amap_wgs84.geojson": "boundaries/guangdong_district_amap_wgs84.geojson",
    "gazetteer/guangdong_admin_units.csv": "gazetteer/guangdong_admin_units.csv",
    "gazetteer/guangdong_townships_nbs2023.csv": "gazetteer/guangdong_townships_nbs2023.csv",
    "gazetteer/guangdong_villages_communities_nbs2023.csv": "gazetteer/guangdong_villages_communities_nbs2023.csv",
    # points for townships, communities and named places (Vonng/adcode and GeoNames, CC BY 4.0: the
    # attribution is in data/SOURCES.md and must stay there while these files ship)
    "gazetteer/guangdong_township_points.csv": "gazetteer/guangdong_township_points.csv",
    "gazetteer/guangdong_community_points_vonng.csv": "gazetteer/guangdong_community_points_vonng.csv",
    "gazetteer/guangdong_geonames_places.csv": "gazetteer/guangdong_geonames_places.csv",
    "roads/shenzhen_futian_osm_network.graphml": "roads/shenzhen_futian_osm_network.graphml",
}

CENSUS_COLUMNS = {
    "区划代码": "adcode", "level": "level", "省": "province", "市": "city", "区县": "county",
    "人口数_合计": "population", "城镇人口": "urban", "乡村人口": "rural", "城区人口": "built_up",
    "家庭户数": "households",
}

SHELTER_COLUMNS = ["sid", "city", "lon_wgs84", "lat_wgs84", "lon_gcj02", "lat_gcj02",
                   "district_by_polygon", "district_adcode", "quality_flag"]


def _copy_sources(shared: Path, out: Path) -> None:
    for src, dst in COPIES.items():
        target = out / dst
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(shared / src, target)
    census = pd.read_csv(shared / "population/guangdong_census2020_county.csv", dtype={"区划代码": str})
    census = census[list(CENSUS_COLUMNS)].rename(columns=CENSUS_COLUMNS)
    (out / "population").mkdir(parents=True, exist_ok=True)
    census.to_csv(out / "population/guangdong_census2020_county.csv", index=False)
    shelters = pd.read_csv(shared / "facilities/shelters_sz_gz_geocoded_2020_unnamed.csv",
                           dtype={"district_adcode": str})
    (out / "facilities").mkdir(parents=True, exist_ok=True)
    shelters[SHELTER_COLUMNS].to_csv(out / "facilities/shelters_sz_gz_geocoded_2020_unnamed.csv", index=False)


def build_data(shared: Path, out: Path, *, synthetic: bool = True) -> list[Path]:
    """Copy the real sources into ``out`` and generate the synthetic layers. Returns files written."""
    shared = Path(shared)
    if not (shared / "SOURCES.md").is_file():
        raise DataBuildError(f"{shared} does not look like shared/data (no SOURCES.md there)")
    missing = [s for s in COPIES if not (shared / s).is_file()]
    if missing:
        raise DataBuildError(f"{shared}: missing source file {missing[0]}")
    out.mkdir(parents=True, exist_ok=True)
    _copy_sources(shared, out)
    if synthetic:
        from layers import synth
        synth.generate_all(out)
    return sorted(p for p in out.rglob("*") if p.is_file())


if __name__ == "__main__":  # pragma: no cover - thin entry
    src = Path(sys.argv[1] if len(sys.argv) > 1 else "../shared/data")
    dst = Path(sys.argv[2] if len(sys.argv) > 2 else "data")
    for p in build_data(src, dst, synthetic="--no-synth" not in sys.argv):
        print(p)
