"""Drive time from fire stations (or any candidates) to an incident, over the bundled road graph.

    from layers.routing import drive_times, rank_by_drive_time
    items = index.nearest("fire_station", p, k=5)
    items = drive_times(p, items)          # same order, each + drive_time_s, drive_time_method,
                                           #   drive_distance_m
    best = rank_by_drive_time(p, items)    # fastest first

The graph is data/roads/shenzhen_futian_osm_network.graphml (OSMnx 1.2.2, southern 福田区 only; ODbL).
It is read once per process, lazily; its drive edges and node positions come from the persistent
cache (incidents/cache.py) when an entry for the file's content exists. Direction: OSMnx stores a
two-way street as two edges u->v and v->u and a one-way street as one edge, so following the directed
edges respects one-ways. One Dijkstra runs from the incident on the *reversed* graph: a single
shortest-path tree gives every station's time TO the incident.

Drive network (decision): kept are the classes in ``SPEED_KMH``; everything else is dropped (footway,
path, steps, pedestrian, cycleway, corridor, track, bridleway, ...). A merged edge whose highway is a
list ("['service', 'footway']") is kept only when every class in it is drivable, at the slowest speed.
Dropped as well: access=no, and service=parking_aisle/parking/drive-through (routes must not cut through
car parks). Kept: access=private (fire engines enter gated compounds; GB 50016 requires fire lanes in
them), access=bus (emergency vehicles may use bus lanes), service=driveway/emergency_access.

Speeds (km/h) are typical urban-China travel speeds for an emergency vehicle in traffic, not limits:
set at or below the design speeds of CJJ 37-2012 城市道路工程设计规范 (快速路 60-100, 主干路 40-60,
次干路 30-50, 支路 20-40), lowered for signals and congestion. Links run at about 60% of their road.
A posted maxspeed lower than the class speed wins. These are assumptions, to be calibrated against
dispatch records when any exist.

The incident and each station are snapped to the nearest node of the graph's largest strongly connected
drive component; the snap distance is added at ``SNAP_SPEED_KMH``. A route is "road_graph" only when both
ends lie inside the graph's coverage (the convex hull of its drive nodes) and snap within
``MAX_SNAP_M``; otherwise the time is a labelled "straight_line_estimate": straight EPSG:4547 distance
× ``DETOUR_FACTOR`` at ``ESTIMATE_SPEED_KMH``. 1.4 is the usual road-network circuity of Chinese cities
(Giacomin & Levinson 2015 report 1.2-1.5 for urban networks); 30 km/h is an urban average.
"""
from __future__ import annotations

import ast
import functools
import math
import threading
from dataclasses import dataclass
from pathlib import Path

from typing import TYPE_CHECKING, Any

import numpy as np
import shapely

from incidents import cache
from incidents.model import Point
from incidents.roads import ROAD_FILE, read_graph
from layers.errors import LayerError
from layers.index import as_wgs84, metric_xy

if TYPE_CHECKING:
    import networkx as nx

GRAPH_FILE = ROAD_FILE


def __getattr__(name: str):
    """``routing.nx`` still names networkx, imported when first asked for (not at this module's import)."""
    if name == "nx":
        import networkx
        return networkx
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

SPEED_KMH: dict[str, float] = {
    "motorway": 80, "motorway_link": 40,
    "trunk": 60, "trunk_link": 35,
    "primary": 50, "primary_link": 30,
    "secondary": 40, "secondary_link": 25,
    "tertiary": 30, "tertiary_link": 20,
    "unclassified": 25, "road": 20,
    "residential": 20, "living_street": 10, "service": 15,
}
EXCLUDED_ACCESS = {"no"}
EXCLUDED_SERVICE = {"parking_aisle", "parking", "drive-through"}
SNAP_SPEED_KMH = 10.0
MAX_SNAP_M = 300.0
DETOUR_FACTOR = 1.4
ESTIMATE_SPEED_KMH = 30.0
ROAD_GRAPH = "road_graph"
STRAIGHT_LINE = "straight_line_estimate"


def _values(raw) -> list[str]:
    """An OSMnx attribute as a list: "primary" -> ["primary"]; "['a', 'b']" -> ["a", "b"]."""
    if raw is None:
        return []
    text = str(raw).strip()
    if text.startswith("["):
        try:
            return [str(v) for v in ast.literal_eval(text)]
        except (ValueError, SyntaxError):
            return [text]
    return [text]


def edge_speed_kmh(data: dict) -> float | None:
    """The driving speed of an OSMnx edge, or None when a car may not use it (see the module doc)."""
    classes = _values(data.get("highway"))
    if not classes or any(c not in SPEED_KMH for c in classes):
        return None
    if set(_values(data.get("access"))) & EXCLUDED_ACCESS:
        return None
    if set(_values(data.get("service"))) & EXCLUDED_SERVICE:
        return None
    speed = min(SPEED_KMH[c] for c in classes)
    posted = [float(v) for v in _values(data.get("maxspeed")) if v.replace(".", "", 1).isdigit()]
    if posted and 0 < min(posted) < speed:
        speed = min(posted)
    return float(speed)


@dataclass(frozen=True)
class Snap:
    node: str
    distance_m: float


class RoadGraph:
    """A directed drive graph with travel times, its node index and its coverage.

    The coverage (the convex hull of the drive nodes) is made at once; the networkx graph, its largest
    strongly connected component and the snapping index only when first needed (a point inside the coverage,
    or ``graph`` asked for), so a process whose points all lie outside the graph never imports networkx."""

    def __init__(self, graph: nx.DiGraph | None, xy: dict[str, tuple[float, float]], *, source: str = "",
                 edges: dict[tuple[str, str], tuple[float, float]] | None = None) -> None:
        """``graph``, or (None and) ``edges`` (u, v) -> (seconds, metres) to build it from when first used."""
        if graph is not None and graph.number_of_nodes() == 0 or graph is None and not edges:
            raise LayerError(f"road graph {source}: no drivable edge")
        self.source = source
        self._graph, self._edges, self._xy = graph, edges, xy
        self._lock = threading.Lock()
        self._core: tuple[list[str], shapely.STRtree, Any] | None = None
        self.coverage = shapely.MultiPoint(shapely.points(np.array(list(xy.values())))).convex_hull
        shapely.prepare(self.coverage)

    @classmethod
    def from_graphml(cls, path: Path) -> RoadGraph:
        """Read an OSMnx graphml (WGS84 nodes x/y, string attributes) into a drive graph. The drive edges and
        node positions come from the persistent cache (incidents/cache.py) when an entry for this file's
        content exists; else the graphml is parsed (~0.3 s) and they are stored for the next process."""
        path = Path(path)
        if not path.is_file():
            raise LayerError(f"road graph {path}: file not found")
        edges, xy = cache.cached("road-graph", inputs=[path], code=[__file__], build=lambda: _drive_edges(path),
                                 encode=_encode_edges, decode=_decode_edges)
        graph = cls(None, xy, source=str(path), edges=edges)
        cache.loaded()                # its nodes and edges live as long as the process (road_graph keeps it)
        return graph

    @property
    def graph(self) -> nx.DiGraph:
        """The networkx drive graph (edge attributes time_s, length_m), built on first use."""
        return self._built()[2]

    def _built(self) -> tuple[list[str], shapely.STRtree, Any]:
        """(the nodes of the largest strongly connected component, sorted; their STRtree; the graph and its
        reverse), made once (thread-safe)."""
        core = self._core
        if core is not None:
            return core
        with self._lock:
            if self._core is None:
                import networkx as nx     # here, not at import: only a command that routes pays its import
                g = self._graph
                if g is None:
                    g = nx.DiGraph()
                    g.add_edges_from((u, v, {"time_s": t, "length_m": m}) for (u, v), (t, m) in self._edges.items())
                nodes = sorted(max(nx.strongly_connected_components(g), key=len))
                tree = shapely.STRtree(shapely.points(np.array([self._xy[n] for n in nodes], dtype=float)))
                self._graph, self._reverse = g, g.reverse(copy=False)
                self._core = (nodes, tree, g)
                cache.loaded()
            return self._core

    def snap(self, point: Point) -> Snap | None:
        """The nearest well-connected drive node, or None outside coverage / beyond MAX_SNAP_M."""
        x, y = metric_xy(point)
        q = shapely.Point(x, y)
        if not self.coverage.covers(q):
            return None
        nodes, tree, _g = self._built()
        idx, dist = tree.query_nearest(q, max_distance=MAX_SNAP_M, return_distance=True)
        if len(idx) == 0:
            return None
        return Snap(nodes[int(idx[0])], float(dist[0]))

    def tree_to(self, node: str) -> tuple[dict[str, float], dict[str, list[str]]]:
        """Shortest times from every node TO ``node`` (and the paths, incident first)."""
        import networkx as nx
        self._built()
        return nx.single_source_dijkstra(self._reverse, node, weight="time_s")

    def route_length_m(self, reversed_path: list[str]) -> float:
        """Metres of a path given incident-first (as tree_to returns it), driven station-first."""
        return sum(self.graph[b][a]["length_m"] for a, b in zip(reversed_path, reversed_path[1:]))


def _drive_edges(path: Path) -> tuple[dict[tuple[str, str], tuple[float, float]], dict[str, tuple[float, float]]]:
    """The drive edges (u, v) -> (seconds, metres) in the order first met (parallel edges: the fastest), and
    each of their nodes' EPSG:4547 x/y, from the graphml."""
    try:
        raw = read_graph(path)   # parsed once per process; the gazetteer reads the same file
    except Exception as exc:  # networkx raises several types for a bad file
        raise LayerError(f"road graph {path}: not readable graphml ({exc})") from exc
    edges: dict[tuple[str, str], tuple[float, float]] = {}
    for u, v, data in raw.edges(data=True):
        speed = edge_speed_kmh(data)
        if speed is None:
            continue
        try:
            length = float(data["length"])
        except (KeyError, TypeError, ValueError):
            raise LayerError(f"road graph {path}: edge {u}->{v} has no numeric length") from None
        t = length / (speed / 3.6)
        if (u, v) not in edges or edges[u, v][0] > t:
            edges[u, v] = (t, length)
    nodes = dict.fromkeys(n for uv in edges for n in uv)
    xy = {n: metric_xy(Point(float(raw.nodes[n]["x"]), float(raw.nodes[n]["y"]))) for n in nodes}
    return edges, xy


def _encode_edges(built: tuple) -> cache.Entry:
    import pyarrow as pa
    edges, xy = built
    (us, vs), (ts, ms) = (zip(*edges) if edges else ((), ())), (zip(*edges.values()) if edges else ((), ()))
    xs, ys = zip(*xy.values()) if xy else ((), ())
    return cache.Entry({"edges": pa.table({"u": list(us), "v": list(vs), "time_s": pa.array(ts, pa.float64()),
                                           "length_m": pa.array(ms, pa.float64())}),
                        "nodes": pa.table({"node": list(xy), "x": pa.array(xs, pa.float64()),
                                           "y": pa.array(ys, pa.float64())})})


def _decode_edges(entry: cache.Entry) -> tuple:
    e, n = entry.tables["edges"], entry.tables["nodes"]
    cols = [e.column(c).to_pylist() for c in ("u", "v", "time_s", "length_m")]
    edges = {(u, v): (t, m) for u, v, t, m in zip(*cols)}
    xy = {k: (x, y) for k, x, y in zip(*(n.column(c).to_pylist() for c in ("node", "x", "y")))}
    return edges, xy


@functools.lru_cache(maxsize=2)
def _load(path: Path) -> RoadGraph:
    return RoadGraph.from_graphml(path)


def road_graph(path: Path | None = None, *, data_dir: Path | None = None) -> RoadGraph:
    """The road graph of ``data_dir`` (the bundled Futian graph by default), or another graphml; read once
    per process."""
    if path is None:
        from settings import ROOT
        path = Path(data_dir or ROOT / "data") / GRAPH_FILE
    return _load(Path(path))


def _candidate_point(c: dict, i: int) -> Point:
    try:
        return Point(float(c["lon"]), float(c["lat"]))
    except (KeyError, TypeError, ValueError) as exc:
        raise LayerError(f"candidate {i} ({c.get('id', '?') if isinstance(c, dict) else c!r}): "
                         f"needs WGS84 lon and lat ({exc})") from None


def straight_line_estimate_s(distance_m: float) -> float:
    """Seconds for a straight-line distance: × DETOUR_FACTOR at ESTIMATE_SPEED_KMH."""
    return distance_m * DETOUR_FACTOR / (ESTIMATE_SPEED_KMH / 3.6)


def drive_times(point: Point, candidates: list[dict], *, graph: RoadGraph | None = None) -> list[dict]:
    """Each candidate (dict with WGS84 lon/lat) + drive_time_s, drive_time_method, drive_distance_m.

    The order is kept. Times are seconds for a station to drive to the incident at ``point``.
    """
    graph = graph or road_graph()
    incident = as_wgs84(point)
    ix, iy = metric_xy(incident)
    here = graph.snap(incident)
    times, paths = graph.tree_to(here.node) if here else ({}, {})
    slow = SNAP_SPEED_KMH / 3.6
    out = []
    for i, c in enumerate(candidates):
        p = _candidate_point(c, i)
        there = graph.snap(p) if here else None
        item = dict(c)
        if there is not None and there.node in times:
            item["drive_time_s"] = round(times[there.node] + (here.distance_m + there.distance_m) / slow, 1)
            item["drive_time_method"] = ROAD_GRAPH
            item["drive_distance_m"] = round(
                graph.route_length_m(paths[there.node]) + here.distance_m + there.distance_m, 1)
        else:
            cx, cy = metric_xy(p)
            straight = math.hypot(cx - ix, cy - iy)
            item["drive_time_s"] = round(straight_line_estimate_s(straight), 1)
            item["drive_time_method"] = STRAIGHT_LINE
            item["drive_distance_m"] = round(straight * DETOUR_FACTOR, 1)
        out.append(item)
    return out


def rank_by_drive_time(point: Point, candidates: list[dict], *, graph: RoadGraph | None = None) -> list[dict]:
    """drive_times, fastest first (ties by straight distance, then id)."""
    timed = drive_times(point, candidates, graph=graph)
    return sorted(timed, key=lambda c: (c["drive_time_s"], c.get("distance_m") or 0.0, str(c.get("id", ""))))
