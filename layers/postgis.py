"""Point layers in PostGIS: imported with COPY into a table of EPSG:4547 points under a GiST index, and
asked nearest-k (KNN ``<->``) and within-r (``ST_DWithin``) with the same answers as ``layers.index``.

    from layers import postgis
    db = postgis.open_layers("postgresql://yzt@db/yzt")      # refuses SQLite, unreachable, no PostGIS
    info = db.import_layer(catalog.load("camera"))           # -> {"layer", "rows", "table", "content_sha256"}
    ix = db.index("camera")                                  # same interface as layers.index.LayerIndex
    ix.nearest(Point(114.06, 22.54), k=5)                    # [{id, name, lon, lat, distance_m, ...}, ...]
    ix.within(Point(114.06, 22.54, "gcj02"), 3000)

A layer is the table ``layer_NAME``: ``id, name, lon, lat`` (WGS84, the datum in ``datum`` on every row),
``x_m, y_m`` (EPSG:4547 metres, the very numbers the catalogue computed, so distances agree to the bit),
``geom geometry(Point, 4547)`` generated from them, then the layer's own columns, typed. ``yzt_layers``
records each layer's table, rows, columns and content hash (sha256 of the column list and the COPY stream).

An import is atomic: the rows are COPYed into a new table, indexed and analysed, and in the same
transaction the old table is dropped and the new one renamed into place, so a reader sees the old layer
or the new one, never half of one; a failing import leaves the old table. Imports of one layer run one
after another (an advisory lock).

Queries: the k nearest by ``ORDER BY geom <-> point LIMIT k``, then every row within the k-th distance
(ties at the k-th place, as the in-memory index takes them), ordered by distance then id and cut at k in
Python with the in-memory index's own arithmetic (numpy hypot of the stored metres); within-r by
``ST_DWithin`` with the same ordering. Distances are planar metres in EPSG:4547, never degrees. Each query is
joined to the layer's ``yzt_layers`` row in the same statement (one round trip, one snapshot): a re-import is
answered at once, a changed column list is read again when the content hash differs, a layer no longer
registered is UnknownLayerError. ``layers.index.index_for`` sends a catalogue's queries here when its
``postgis_url`` database lists the layer.
"""
from __future__ import annotations

import hashlib
import io
import json
import re
import threading
from typing import Any, Callable

import numpy as np

from layers.errors import LayerError, UnknownLayerError
from layers.index import _check_k, _check_radius, json_safe, metric_xy

SRID = 4547
REGISTRY = "yzt_layers"
BASE_COLUMNS = ("id", "name", "lon", "lat", "datum", "x_m", "y_m")
INTERNAL = (*BASE_COLUMNS, "geom")
EPS_M = 1e-6      # the SQL prefilters reach this far past a radius; the exact cut is numpy's, as in memory
_LOCK_KEY = "yzt-layer:"
_VERSION_SQL = "SELECT extversion FROM pg_extension WHERE extname = 'postgis'"
_PG_TYPES = {"text": "text", "int": "bigint", "float": "double precision", "bool": "boolean"}

REGISTRY_DDL = f"""CREATE TABLE IF NOT EXISTS {REGISTRY} (
    name text PRIMARY KEY, table_name text NOT NULL, rows bigint NOT NULL, content_sha256 text NOT NULL,
    columns jsonb NOT NULL, srid integer NOT NULL DEFAULT {SRID}, synthetic boolean NOT NULL,
    source text NOT NULL DEFAULT '', licence text NOT NULL DEFAULT '',
    imported_at timestamptz NOT NULL DEFAULT now())"""


def redact(url: str) -> str:
    """The URL without its password, for messages."""
    return re.sub(r"(://[^:/@]+):[^@]*@", r"\1:***@", url)


def is_postgres_url(url: object) -> bool:
    return isinstance(url, str) and url.startswith(("postgresql://", "postgres://"))


def table_name(layer: str) -> str:
    from layers._validate import check_layer_name
    return f"layer_{check_layer_name(layer)}"


def _first_line(e: BaseException) -> str:
    return (str(e).strip().splitlines() or [type(e).__name__])[0]


# -- columns ------------------------------------------------------------------------------------
def _kind(arrow_type) -> str:
    import pyarrow as pa
    if pa.types.is_boolean(arrow_type):
        return "bool"
    if pa.types.is_integer(arrow_type):
        return "int"
    if pa.types.is_floating(arrow_type):
        return "float"
    return "text"


def _arrow_table(layer) -> tuple[Any, list[list[str]]]:
    """The layer's rows as one Arrow table in the COPY column order, and its own columns [[name, kind]]."""
    import pyarrow as pa
    import pyarrow.compute as pc
    table = layer.table
    for col in ("id", "name"):
        if col not in table.columns:
            raise LayerError(f"layer {layer.name}: column {col!r} is missing")
    n = len(table)
    cols: dict[str, Any] = {
        "id": pc.cast(pa.array(table["id"], from_pandas=True), pa.string()),
        "name": pc.cast(pa.array(table["name"], from_pandas=True), pa.string()),
        "lon": pa.array(np.asarray(layer.lon, float)), "lat": pa.array(np.asarray(layer.lat, float)),
        "datum": pa.array(["wgs84"] * n, pa.string()),
        "x_m": pa.array(np.asarray(layer.x_m, float)), "y_m": pa.array(np.asarray(layer.y_m, float))}
    own: list[list[str]] = []
    for col in table.columns:
        if col in ("id", "name") or col == getattr(table, "_geometry_column_name", None):
            continue
        if col in INTERNAL or len(str(col).encode("utf-8")) > 63:
            raise LayerError(f"layer {layer.name}: column {col!r} cannot go to PostGIS (the names "
                             f"{', '.join(INTERNAL)} are the table's own; at most 63 bytes)")
        arr = pa.array(table[col], from_pandas=True)
        kind = _kind(arr.type)
        cols[str(col)] = arr if kind != "text" else pc.cast(arr, pa.string())
        own.append([str(col), kind])
    if not (np.isfinite(layer.x_m).all() and np.isfinite(layer.y_m).all()):
        raise LayerError(f"layer {layer.name}: some EPSG:4547 coordinates are not finite")
    return pa.table(cols), own


def _create_sql(table: str, own: list[list[str]]):
    from psycopg import sql
    parts = [sql.SQL("id text NOT NULL, name text, lon double precision NOT NULL, lat double precision NOT NULL, "
                     "datum text NOT NULL, x_m double precision NOT NULL, y_m double precision NOT NULL, "
                     "geom geometry(Point, {srid}) GENERATED ALWAYS AS "
                     "(ST_SetSRID(ST_MakePoint(x_m, y_m), {srid})) STORED").format(srid=sql.Literal(SRID))]
    parts += [sql.SQL("{} {}").format(sql.Identifier(c), sql.SQL(_PG_TYPES[k])) for c, k in own]
    return sql.SQL("CREATE TABLE {} ({})").format(sql.Identifier(table), sql.SQL(", ").join(parts))


def _copy_rows(cur, table: str, arrow_table, columns: list[str], digest) -> None:
    """COPY the Arrow table as CSV (strings quoted, nulls empty), hashing the stream as it goes."""
    import pyarrow.csv as pacsv
    from psycopg import sql
    stmt = sql.SQL("COPY {} ({}) FROM STDIN (FORMAT csv)").format(
        sql.Identifier(table), sql.SQL(", ").join(map(sql.Identifier, columns)))
    opts = pacsv.WriteOptions(include_header=False)
    with cur.copy(stmt) as cp:
        for batch in arrow_table.to_batches(max_chunksize=65_536):
            buf = io.BytesIO()
            pacsv.write_csv(batch, buf, opts)
            data = buf.getvalue()
            digest.update(data)
            cp.write(data)


# -- the database ---------------------------------------------------------------------------------
class PostgisLayers:
    """Layers in one PostgreSQL database with PostGIS: a small psycopg 3 pool; ``open_layers`` makes one."""

    def __init__(self, url: str, *, max_size: int = 4, timeout_s: float = 10.0,
                 create_extension: bool = True) -> None:
        """``create_extension=False`` (a reader: ``layers.index`` asking which layers are here) changes
        nothing in the database: ``postgis_version`` is None where PostGIS is not enabled."""
        if not is_postgres_url(url):
            where = f"SQLite ({url})" if url else "SQLite (the embedded default)"
            raise LayerError(f"PostGIS layers need YZT_DATABASE=postgresql://...; this database is {where}")
        try:
            import psycopg
            from psycopg_pool import ConnectionPool
        except ImportError:   # pragma: no cover - both are dependencies of the project
            raise LayerError("PostGIS layers need psycopg 3 and psycopg-pool: pip install 'psycopg[binary]' "
                             "psycopg-pool") from None
        self.url, self.where, self.errors = url, redact(url), psycopg
        try:    # one direct connection first: a refusal names the server's own reason at once
            with psycopg.connect(url, connect_timeout=max(1, int(timeout_s))) as conn:
                self.postgis_version = self._ensure_postgis(conn) if create_extension else \
                    (conn.execute(_VERSION_SQL).fetchone() or [None])[0]
        except psycopg.Error as e:
            raise LayerError(f"database {self.where}: cannot connect ({_first_line(e)})") from None
        self.pool = ConnectionPool(url, min_size=1, max_size=max_size, timeout=timeout_s, open=False,
                                   kwargs={"connect_timeout": max(1, int(timeout_s))}, name="yzt-layers",
                                   check=ConnectionPool.check_connection)   # a restarted server's dead sockets
        try:
            self.pool.open(wait=True, timeout=timeout_s)
        except Exception as e:   # PoolTimeout / OperationalError: say which database, never the password
            self.pool.close()
            raise LayerError(f"database {self.where}: cannot connect ({_first_line(e)})") from None

    def _ensure_postgis(self, conn) -> str:
        version = _VERSION_SQL
        row = conn.execute(version).fetchone()
        if row:
            return row[0]
        if not conn.execute("SELECT 1 FROM pg_available_extensions WHERE name = 'postgis'").fetchone():
            raise LayerError(f"database {self.where}: the server has no PostGIS extension (install it "
                             "there, e.g. Debian postgresql-NN-postgis-3)")
        try:
            conn.execute("CREATE EXTENSION IF NOT EXISTS postgis")
            conn.commit()
        except self.errors.Error as e:
            raise LayerError(f"database {self.where}: PostGIS is not enabled and cannot be "
                             f"({_first_line(e)}); run CREATE EXTENSION postgis as its owner") from None
        return conn.execute(version).fetchone()[0]

    def close(self) -> None:
        self.pool.close()

    def __enter__(self) -> PostgisLayers:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def run(self, fn: Callable[[Any], Any]) -> Any:
        """``fn(conn)`` in one transaction on a pooled connection; a database failure is one LayerError line."""
        try:
            with self.pool.connection() as conn:
                return fn(conn)
        except self.errors.OperationalError as e:
            raise LayerError(f"database {self.where}: {_first_line(e)}") from None

    # -- registry ---------------------------------------------------------------------------------
    def info(self, name: str) -> dict | None:
        """What ``yzt_layers`` records of layer ``name`` (None when it was never imported here)."""
        def read(conn):
            if not conn.execute("SELECT to_regclass(%s)", (REGISTRY,)).fetchone()[0]:
                return None
            row = conn.execute(f"SELECT name, table_name, rows, content_sha256, columns, srid, synthetic, "
                               f"source, licence, imported_at FROM {REGISTRY} WHERE name = %s", (name,)).fetchone()
            if row is None:
                return None
            keys = ("layer", "table", "rows", "content_sha256", "columns", "srid", "synthetic", "source",
                    "licence", "imported_at")
            return dict(zip(keys, row), imported_at=row[-1].isoformat())
        return self.run(read)

    def names(self) -> list[str]:
        def read(conn):
            if not conn.execute("SELECT to_regclass(%s)", (REGISTRY,)).fetchone()[0]:
                return []
            return [r[0] for r in conn.execute(f"SELECT name FROM {REGISTRY} ORDER BY name")]
        return self.run(read)

    # -- import -----------------------------------------------------------------------------------
    def import_layer(self, layer) -> dict:
        """COPY a catalogue Layer (table, lon/lat, x_m/y_m) into ``layer_NAME``, atomically."""
        arrow_table, own = _arrow_table(layer)
        columns = [*BASE_COLUMNS, *(c for c, _ in own)]

        def fill(cur, table: str) -> str:
            digest = hashlib.sha256(json.dumps(own, ensure_ascii=False).encode("utf-8"))
            _copy_rows(cur, table, arrow_table, columns, digest)
            return digest.hexdigest()
        return self.replace(layer.name, own, fill, synthetic=bool(getattr(layer, "synthetic", False)),
                            source=str(getattr(layer, "source", "") or ""),
                            licence=str(getattr(layer, "licence", "") or ""))

    def replace(self, name: str, own: list[list[str]], fill: Callable[[Any, str], str], *,
                synthetic: bool, source: str = "", licence: str = "") -> dict:
        """Build the new table of layer ``name`` with ``fill(cursor, new_table) -> content sha256`` (COPY,
        or INSERT ... SELECT for rows made in the server), index and analyse it, and swap it in: all in
        one transaction, so a failure anywhere leaves the old table as it was."""
        table = table_name(name)
        new, old = f"{table}__new", f"{table}__old"

        def run(conn) -> dict:
            from psycopg import sql
            with conn.transaction(), conn.cursor() as cur:
                cur.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (_LOCK_KEY + name,))
                cur.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (_LOCK_KEY + REGISTRY,))
                cur.execute(REGISTRY_DDL)
                cur.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(sql.Identifier(new)))
                cur.execute(_create_sql(new, own))
                sha = fill(cur, new)
                cur.execute(sql.SQL("CREATE INDEX {} ON {} USING gist (geom)").format(
                    sql.Identifier(f"{new}_geom"), sql.Identifier(new)))
                cur.execute(sql.SQL("ANALYZE {}").format(sql.Identifier(new)))
                rows = cur.execute(sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(new))).fetchone()[0]
                _swap(cur, table, new, old)
                cur.execute(f"INSERT INTO {REGISTRY} (name, table_name, rows, content_sha256, columns, synthetic, "
                            "source, licence, imported_at) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, now()) "
                            "ON CONFLICT (name) DO UPDATE SET table_name = EXCLUDED.table_name, rows = EXCLUDED.rows, "
                            "content_sha256 = EXCLUDED.content_sha256, columns = EXCLUDED.columns, "
                            "synthetic = EXCLUDED.synthetic, source = EXCLUDED.source, licence = EXCLUDED.licence, "
                            "imported_at = now()",
                            (name, table, rows, sha, json.dumps(own, ensure_ascii=False), synthetic, source, licence))
            return {"layer": name, "rows": int(rows), "table": table, "content_sha256": sha, "srid": SRID,
                    "database": self.where}
        try:
            return self.run(run)
        except self.errors.Error as e:
            raise LayerError(f"layer {name}: import into {self.where} failed, the old table is kept "
                             f"({_first_line(e)})") from None

    def index(self, name: str) -> PostgisLayerIndex:
        return PostgisLayerIndex(self, name)


def _swap(cur, table: str, new: str, old: str) -> None:
    from psycopg import sql
    ident = sql.Identifier
    if cur.execute("SELECT to_regclass(%s)", (table,)).fetchone()[0]:
        cur.execute(sql.SQL("ALTER TABLE {} RENAME TO {}").format(ident(table), ident(old)))
        cur.execute(sql.SQL("DROP TABLE {}").format(ident(old)))
    cur.execute(sql.SQL("ALTER TABLE {} RENAME TO {}").format(ident(new), ident(table)))
    cur.execute(sql.SQL("ALTER INDEX {} RENAME TO {}").format(ident(f"{new}_geom"), ident(f"{table}_geom")))


def open_layers(url: str, **kwargs: Any) -> PostgisLayers:
    """The PostGIS layers of database ``url`` (a postgresql:// URL, e.g. settings.database)."""
    return PostgisLayers(url, **kwargs)


def import_file(db: PostgisLayers, name: str, path, *, catalog, **options: Any) -> dict:
    """``yzt layers import NAME FILE --postgis``: validate FILE as ``layers.io.import_layer`` does (all rows
    or none) into a staging folder, load it into PostGIS, and only then put its registry file in place
    under ``catalog.var_dir/layers``, so the file catalogue and PostGIS change together or not at all."""
    import os
    import shutil
    import tempfile
    from pathlib import Path

    from layers import catalog as catalog_mod
    from layers import io as layer_io
    Path(catalog.var_dir).mkdir(parents=True, exist_ok=True)
    staging_dir = Path(tempfile.mkdtemp(prefix=".yzt-layer-import-", dir=catalog.var_dir))
    try:
        staging = catalog_mod.Catalog(catalog.data_dir, staging_dir)
        report = layer_io.import_layer(name, Path(path), catalog=staging, **options)
        info = db.import_layer(staging.load(name))
        target = catalog.imported_path(name)
        target.parent.mkdir(parents=True, exist_ok=True)
        os.replace(report.path, target)
    finally:
        shutil.rmtree(staging_dir, ignore_errors=True)
        catalog_mod.clear_cache()       # the staging layer stays in no cache
    return {**info, "path": str(target), "synthetic": report.synthetic, "notes": list(report.notes)}


# -- queries --------------------------------------------------------------------------------------
class PostgisLayerIndex:
    """The interface of ``layers.index.LayerIndex`` (``nearest``, ``within``, ``len``, ``name``) answered by
    layer ``name``'s table in PostGIS. Safe to share between threads (each query takes a pooled connection).

    Every query is ONE statement that also reads the layer's row of ``yzt_layers``, so an answer always comes
    from the table the registry names at that instant (an import swaps table and row in one transaction):
    a re-import is seen at the next query, never a stale answer; a re-import with other columns has another
    content hash than the one the column list was read with, so the list is read again and the query rerun;
    a layer the registry no longer lists raises UnknownLayerError; any other database failure is one
    LayerError line naming the database (never its password)."""

    def __init__(self, db: PostgisLayers, name: str) -> None:
        self.db, self.name = db, name
        self._lock = threading.Lock()
        self._state: tuple[list[list[str]], str, dict[str, Any]] | None = None
        self._columns()

    def __len__(self) -> int:
        info = self.db.info(self.name)
        return int(info["rows"]) if info else 0

    @property
    def content_sha256(self) -> str | None:
        info = self.db.info(self.name)
        return info["content_sha256"] if info else None

    def _columns(self, *, fresh: bool = False) -> tuple[list[list[str]], str, dict[str, Any]]:
        """(own columns, the content hash they were read with, the layer's queries), read together."""
        with self._lock:
            if self._state is None or fresh:
                info = self.db.info(self.name)
                if info is None:
                    raise UnknownLayerError(f"layer {self.name} is not in PostGIS at {self.db.where} "
                                            f"(yzt layers import {self.name} --postgis)")
                own = [list(c) for c in info["columns"]]
                self._state = (own, info["content_sha256"], _queries(table_name(self.name), own))
            return self._state

    # -- queries ----------------------------------------------------------------------------------
    def nearest(self, point, *, k: int = 5, radius_m: float | None = None) -> list[dict]:
        """The k nearest features (fewer when the layer or the radius holds fewer), ties at the k-th
        distance broken by id as in memory."""
        k = _check_k(k)
        radius = _check_radius(radius_m, required=False)
        x, y = metric_xy(point)
        key = "nearest" if radius is None else "nearest_within"
        args = {"x": x, "y": y, "k": k, "eps": EPS_M, "r": radius if radius is not None else 0.0}
        rows, own = self._fetch(key, args)
        return _records(rows, own, x, y, limit=k, radius=radius)

    def within(self, point, radius_m: float) -> list[dict]:
        """Every feature at most radius_m metres away, nearest first."""
        radius = _check_radius(radius_m, required=True)
        x, y = metric_xy(point)
        rows, own = self._fetch("within", {"x": x, "y": y, "r": radius, "eps": EPS_M})
        return _records(rows, own, x, y, limit=None, radius=radius)

    def _fetch(self, key: str, args: dict) -> tuple[list[tuple], list[list[str]]]:
        """The rows of query ``key`` and the column list they were read with (see the class doc)."""
        errors = self.db.errors
        args = {**args, "layer": self.name}
        own, sha, queries = self._columns()
        for _attempt in range(3):
            try:
                with self.db.pool.connection() as conn:
                    rows = conn.execute(queries[key], args).fetchall()
            except (errors.errors.UndefinedColumn, errors.errors.UndefinedTable):
                rows = None          # re-imported with other columns, or being swapped: read the list again
            except errors.Error as e:   # the server, the network, the pool (PoolTimeout): one line, no password
                raise LayerError(f"layer {self.name}: the query in PostGIS at {self.db.where} failed "
                                 f"({_first_line(e)})") from None
            if rows is not None:
                if not rows:         # the registry lists it no more
                    raise UnknownLayerError(f"layer {self.name} is not in PostGIS at {self.db.where} any more")
                if rows[0][0] == sha:
                    return [r[1:] for r in rows if r[1] is not None], own
            own, sha, queries = self._columns(fresh=True)
        raise LayerError(f"layer {self.name}: its PostGIS table {table_name(self.name)} changed during the "
                         "query three times running; ask again")


def _records(rows: list[tuple], own: list[list[str]], x: float, y: float, *, limit: int | None,
             radius: float | None) -> list[dict]:
    """LayerIndex's records from rows (id, name, lon, lat, x_m, y_m, own columns...)."""
    if not rows:
        return []
    xy = np.array([(r[4], r[5]) for r in rows], dtype=float)
    d = np.hypot(xy[:, 0] - x, xy[:, 1] - y)       # the in-memory index's arithmetic, on the same numbers
    keep = np.ones(len(rows), bool) if radius is None else d <= radius
    order = sorted((i for i in range(len(rows)) if keep[i]), key=lambda i: (d[i], rows[i][0]))
    if limit is not None:
        order = order[:limit]
    cols = [c for c, _ in own]
    out = []
    for i in order:
        r = rows[i]
        rec = {"id": json_safe(r[0]), "name": json_safe(r[1]), "lon": float(r[2]), "lat": float(r[3]),
               "distance_m": round(float(d[i]), 1)}
        for j, col in enumerate(cols):
            rec[col] = json_safe(r[6 + j])
        out.append(rec)
    return out


def _queries(table: str, own: list[list[str]]) -> dict[str, Any]:
    """The three queries of a layer table (psycopg sql objects; prepared by the server after a few uses). Each
    is joined to the layer's registry row: no row when the registry lists the layer no more, else its
    content hash first on every row (one row of NULLs after it when nothing is found)."""
    from psycopg import sql
    t = sql.Identifier(table)
    cols = sql.SQL(", ").join([sql.SQL("id, name, lon, lat, x_m, y_m"),
                               *(sql.Identifier(c) for c, _ in own)])
    pt = sql.SQL(f"ST_SetSRID(ST_MakePoint(%(x)s, %(y)s), {SRID})")
    knn = sql.SQL("SELECT geom <-> {pt} AS d FROM {t} {where} ORDER BY geom <-> {pt} LIMIT %(k)s")
    around = sql.SQL("WITH knn AS ({knn}) SELECT {cols} FROM {t} "
                     "WHERE ST_DWithin(geom, {pt}, (SELECT max(d) FROM knn) + %(eps)s)")
    within_r = sql.SQL("WHERE ST_DWithin(geom, {pt}, %(r)s + %(eps)s)").format(pt=pt)
    checked = sql.SQL("SELECT r.content_sha256, q.* FROM (SELECT content_sha256 FROM {reg} "
                      "WHERE name = %(layer)s) r LEFT JOIN LATERAL ({q}) q ON true")
    plain = {
        "nearest": around.format(knn=knn.format(pt=pt, t=t, where=sql.SQL("")), cols=cols, t=t, pt=pt),
        "nearest_within": around.format(knn=knn.format(pt=pt, t=t, where=within_r), cols=cols, t=t, pt=pt),
        "within": sql.SQL("SELECT {cols} FROM {t} {where}").format(cols=cols, t=t, where=within_r),
    }
    return {key: checked.format(reg=sql.Identifier(REGISTRY), q=q) for key, q in plain.items()}
