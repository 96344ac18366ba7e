"""What is around a point, the one way every door asks it: the k nearest features of a layer, and for fire
stations ranked by drive time on the road graph where it covers the route (a labelled straight-line
estimate elsewhere). The service, ``yzt nearby`` and ``yzt demo`` all call this.

    from layers.nearby import around
    around("fire_station", point, k=5, catalog=cat)   # [{id, name, lon, lat, distance_m, drive_time_s,
                                                       #   drive_time_method, drive_rank, ...}, ...]
"""
from __future__ import annotations

from incidents.model import Point
from layers.catalog import BUNDLED, Catalog
from layers.index import nearest
from layers.routing import rank_by_drive_time, road_graph

DRIVE_RANKED = frozenset({"fire_station"})
CANDIDATES_PER_RANK = 2      # straight-line nearest 2k, then the k fastest by road


def around(layer: str, point: Point, *, k: int = 5, radius_m: float | None = None,
           catalog: Catalog = BUNDLED, uncertainty_m: float = 0.0) -> list[dict]:
    """The k features of ``layer`` nearest ``point``; drive-ranked layers fastest first with ``drive_rank``."""
    if layer not in DRIVE_RANKED:
        return nearest(layer, point, k=k, radius_m=radius_m, catalog=catalog)
    items = nearest(layer, point, k=k * CANDIDATES_PER_RANK, radius_m=radius_m, catalog=catalog)
    ranked = rank_by_drive_time(point, items, graph=road_graph(data_dir=catalog.data_dir))
    return [dict(d, drive_rank=i + 1) for i, d in enumerate(ranked[:k])]
