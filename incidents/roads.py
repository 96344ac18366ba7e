"""The bundled OSM road graph (southern Futian, ``data/roads/``), parsed once per process and path.

    from incidents import roads
    raw = roads.read_graph(path)      # networkx graph as OSMnx wrote it: WGS84 x/y on nodes, string attributes

Two readers share it, read-only: the gazetteer takes road names and lines from it, and layers/routing builds
its drive graph from it. Parsing the graphml is the slow part (~0.25 s), so it happens once, not per reader.
"""
from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

ROAD_FILE = "roads/shenzhen_futian_osm_network.graphml"


@functools.lru_cache(maxsize=2)
def _read(path: Path, mtime_ns: int) -> Any:
    import networkx as nx   # on first use, not at import
    return nx.read_graphml(path)


def read_graph(path: Path | str) -> Any:
    """The graphml at ``path`` (re-read if the file changed). Treat it as read-only: it is shared."""
    path = Path(path)
    return _read(path, path.stat().st_mtime_ns)
