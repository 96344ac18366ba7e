"""A bucket grid over planar points (EPSG:4547 metres), numpy only: the candidate sets layers.index ranks.

    grid = PointGrid(x_m, y_m)
    grid.nearest_candidates(x, y, k=5)              # rows: surely every point as near as the 5th nearest
    grid.nearest_candidates(x, y, 1, radius=800.0)   # ... within 800 m
    grid.within(x, y, 3000.0)                        # rows: every point within 3 km (and some beyond)
    q, rows = grid.nearest_one_each(xs, ys, 800.0)   # pairs: the nearest within 800 m of each query point

Each answer is a superset (every point that belongs to it, and possibly some farther ones); the caller
measures the exact distances and ranks them (layers.index: by distance, ties by id), so the answers are
exactly those of a brute-force scan. Square cells, sized so that the cell a typical point falls in holds
about ``PER_CELL`` points (estimated on a sample, so dense city centres get smaller cells), with at most
``CELLS_PER_ROW`` cells a point; each cell's rows are one run of ``order``, found in the table ``start``
(the grid costs ~4 bytes a row plus ~4 a cell, <= ~20 a row). Importing it costs nothing (no scipy).
"""
from __future__ import annotations

import math

import numpy as np

PER_CELL = 8            # points in the cell a typical point falls in (point-weighted mean occupancy)
CELLS_PER_ROW = 4       # at most this many cells a point (the start table is 4 bytes a cell)
SAMPLE = 65_536         # points the cell size is chosen on
MAX_HALVINGS = 16       # from the uniform-density size down to at most 1/65536 of it
MARGIN = 1e-9           # relative widening of every search rectangle (rounding at its edges)


def _occupancy(x: np.ndarray, y: np.ndarray, size: float, scale: float) -> float:
    """Point-weighted mean number of points in a point's cell, estimated from a sample (``scale`` = n/m)."""
    cx = np.floor((x - x.min()) / size).astype(np.int64)
    cy = np.floor((y - y.min()) / size).astype(np.int64)
    _, counts = np.unique(cy * (int(cx.max()) + 1) + cx, return_counts=True)
    c = counts.astype(float)
    return float((c * (c - 1)).sum()) * scale / len(x) + 1.0


def cell_size(x: np.ndarray, y: np.ndarray, per_cell: int = PER_CELL, cells_per_row: int = CELLS_PER_ROW) -> float:
    """Side of a cell (metres): from the size that holds ``per_cell`` points at uniform density over the
    bounding box, halved while a typical point's cell holds more than twice that, but never so small that
    the grid has more than ``cells_per_row`` cells a point."""
    n = len(x)
    w, h = float(np.ptp(x)), float(np.ptp(y))
    span = max(w, h)
    if n < 2 or span == 0.0:
        return max(span, 1.0)
    size = max(math.sqrt(w * h * per_cell / n), span * per_cell / n)
    step = max(1, n // SAMPLE)
    sx, sy = x[::step], y[::step]
    scale = n / len(sx)
    for _ in range(MAX_HALVINGS):
        if _occupancy(sx, sy, size, scale) <= 2 * per_cell:
            break
        size /= 2
    while (w // size + 1) * (h // size + 1) > cells_per_row * n + 1024:
        size *= 1.25
    return size


class PointGrid:
    """A square grid over the points: ``order`` (row numbers, cell by cell in code order cy * nx + cx) and
    ``start`` (where each cell's run begins in ``order``; nx * ny + 1 entries)."""

    def __init__(self, x: np.ndarray, y: np.ndarray, *, per_cell: int = PER_CELL) -> None:
        self.x, self.y = x, y
        n = len(x)
        self.size = cell_size(x, y, per_cell) if n else 1.0
        self.x0 = float(x.min()) if n else 0.0
        self.y0 = float(y.min()) if n else 0.0
        cx = np.floor((x - self.x0) / self.size).astype(np.int64)
        cy = np.floor((y - self.y0) / self.size).astype(np.int64)
        self.nx = int(cx.max()) + 1 if n else 1
        self.ny = int(cy.max()) + 1 if n else 1
        code = cy * self.nx + cx
        order = np.argsort(code, kind="stable")
        small = np.int32 if n < 2**31 else np.int64
        self.start = np.searchsorted(code[order], np.arange(self.nx * self.ny + 1)).astype(small)
        self.order = order.astype(small)

    def __len__(self) -> int:
        return len(self.x)

    # -- queries ---------------------------------------------------------------------------------------
    def within(self, x: float, y: float, r: float) -> np.ndarray:
        """Row numbers of every point within ``r`` metres of (x, y), and some in the same cells beyond it."""
        if not len(self):
            return np.empty(0, dtype=np.intp)
        return self._block(*self._disc(x, y, r))

    def nearest_candidates(self, x: float, y: float, k: int, radius: float | None = None) -> np.ndarray:
        """Row numbers of a set that holds every point as near as the k-th nearest (ties included), within
        ``radius`` when given: squares of cells grow around the point until they hold k points (or reach
        ``radius``); the k-th distance among those bounds the true k-th, and every cell that near is taken."""
        n = len(self)
        if n == 0:
            return np.empty(0, dtype=np.intp)
        k = min(k, n)
        cx, cy = math.floor((x - self.x0) / self.size), math.floor((y - self.y0) / self.size)
        reach = max(0, -cx, cx - (self.nx - 1), -cy, cy - (self.ny - 1))   # rings to the grid's edge
        limit = math.inf if radius is None else radius / self.size + 2
        grow = 0
        while True:
            r = reach + grow
            box = (cx - r, cx + r, cy - r, cy + r)
            idx = self._block(*box)
            whole = box[0] <= 0 and box[2] <= 0 and box[1] >= self.nx - 1 and box[3] >= self.ny - 1
            if len(idx) >= k or whole or r > limit:
                break
            grow = max(1, 2 * grow)
        if len(idx) >= k:
            d = np.hypot(self.x[idx] - x, self.y[idx] - y)
            bound = float(np.partition(d, k - 1)[k - 1]) if k < len(d) else float(d.max())
            bound = bound if radius is None else min(bound, radius)
        elif radius is not None:
            bound = radius
        else:
            return idx                                            # the whole layer holds fewer than k
        disc = self._disc(x, y, bound)
        if box[0] <= disc[0] and disc[1] <= box[1] and box[2] <= disc[2] and disc[3] <= box[3]:
            return idx                                            # the cells gathered hold the disc
        return self._block(*disc)

    def nearest_one_each(self, xs: np.ndarray, ys: np.ndarray, radius: float) -> tuple[np.ndarray, np.ndarray]:
        """(query number, row number) pairs that hold, for every query point, each point as near as its
        nearest within ``radius`` (ties included): each query's own cell gives a bound, and every cell
        within it is taken (one pass for all queries); a query whose own cell is empty grows its rings as
        ``nearest_candidates`` does (a sparse area would otherwise gather every cell within ``radius``)."""
        xs, ys = np.asarray(xs, dtype=float), np.asarray(ys, dtype=float)
        if not len(self) or not len(xs):
            return np.empty(0, dtype=np.intp), np.empty(0, dtype=np.intp)
        cx = np.floor((xs - self.x0) / self.size).astype(np.int64)
        cy = np.floor((ys - self.y0) / self.size).astype(np.int64)
        q, idx = self._rects(cx, cx, cy, cy)
        bound = np.full(len(xs), np.inf)
        if len(idx):
            np.minimum.at(bound, q, np.hypot(self.x[idx] - xs[q], self.y[idx] - ys[q]))
        alone = np.flatnonzero(~np.isfinite(bound))          # an empty own cell: rings grow, one by one
        bound = np.minimum(bound, float(radius))
        pad = bound * (1 + MARGIN) + 1e-6
        lo_x, hi_x = self._cells(xs - pad, self.x0), self._cells(xs + pad, self.x0)
        lo_y, hi_y = self._cells(ys - pad, self.y0), self._cells(ys + pad, self.y0)
        hi_x[alone] = lo_x[alone] - 1                         # (no rectangle for those here)
        q, idx = self._rects(lo_x, hi_x, lo_y, hi_y)
        near = np.hypot(self.x[idx] - xs[q], self.y[idx] - ys[q]) <= pad[q]     # none nearer is left out
        qs, rows = [q[near]], [idx[near]]
        for i in alone.tolist():
            found = self.nearest_candidates(float(xs[i]), float(ys[i]), 1, radius)
            qs.append(np.full(len(found), i, dtype=np.intp))
            rows.append(found)
        return np.concatenate(qs), np.concatenate(rows)

    # -- internals -------------------------------------------------------------------------------------
    def _cells(self, v: np.ndarray, origin: float) -> np.ndarray:
        return np.floor((v - origin) / self.size).astype(np.int64)

    def _rects(self, lo_x, hi_x, lo_y, hi_y) -> tuple[np.ndarray, np.ndarray]:
        """(query number, row number) of every point in each query's cell rectangle (clipped to the grid)."""
        lo_x, hi_x = np.maximum(lo_x, 0), np.minimum(hi_x, self.nx - 1)
        lo_y, hi_y = np.maximum(lo_y, 0), np.minimum(hi_y, self.ny - 1)
        rows = np.where(hi_x >= lo_x, np.maximum(hi_y - lo_y + 1, 0), 0)
        nrows = int(rows.sum())
        if not nrows:
            return np.empty(0, dtype=np.intp), np.empty(0, dtype=np.intp)
        rq = np.repeat(np.arange(len(rows)), rows)
        row = np.repeat(lo_y, rows) + (np.arange(nrows) - np.repeat(np.cumsum(rows) - rows, rows))
        first = self.start[row * self.nx + lo_x[rq]].astype(np.int64)
        lens = self.start[row * self.nx + hi_x[rq] + 1] - first
        total = int(lens.sum())
        pos = np.repeat(first - (np.cumsum(lens) - lens), lens) + np.arange(total)
        return np.repeat(rq, lens), self.order[pos].astype(np.intp)

    def _disc(self, x: float, y: float, r: float) -> tuple[int, int, int, int]:
        """The cell rectangle (lo_x, hi_x, lo_y, hi_y) that holds the disc of radius r around (x, y)."""
        pad = r * (1 + MARGIN) + 1e-6
        s = self.size
        return (math.floor((x - pad - self.x0) / s), math.floor((x + pad - self.x0) / s),
                math.floor((y - pad - self.y0) / s), math.floor((y + pad - self.y0) / s))

    def _block(self, lo_x: int, hi_x: int, lo_y: int, hi_y: int) -> np.ndarray:
        """Row numbers of every point in the cell rectangle (clipped to the grid): one run of ``order`` per
        rectangle row (the cells of a row are consecutive codes)."""
        lo_x, hi_x = max(lo_x, 0), min(hi_x, self.nx - 1)
        lo_y, hi_y = max(lo_y, 0), min(hi_y, self.ny - 1)
        if lo_x > hi_x or lo_y > hi_y:
            return np.empty(0, dtype=np.intp)
        base = np.arange(lo_y, hi_y + 1) * self.nx
        first, last = self.start[base + lo_x], self.start[base + hi_x + 1]
        if len(base) <= 8:
            runs = [self.order[a:b] for a, b in zip(first.tolist(), last.tolist()) if b > a]
            if not runs:
                return np.empty(0, dtype=np.intp)
            return (runs[0] if len(runs) == 1 else np.concatenate(runs)).astype(np.intp)
        lens = (last - first).astype(np.int64)
        total = int(lens.sum())
        pos = np.repeat(first - (np.cumsum(lens) - lens), lens) + np.arange(total)
        return self.order[pos].astype(np.intp)
