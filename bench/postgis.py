"""The same nearest-5 query in PostgreSQL + PostGIS (KNN ``<->`` over a GiST index): the reference a
database user would pick. A throwaway cluster in a temp directory (initdb/pg_ctl, as the postgres user
when run as root), loaded with the same seeded cameras; skipped, with the reason, when it cannot start.

Per-query time is measured inside the server (plpgsql, clock_timestamp around each KNN query), so it is
the database's own floor without any client round trip; the answers are checked against LayerIndex.
"""
from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np

from bench.common import Results, summary_ms

BIN_DIRS = sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True)

BENCH_FN = """
CREATE FUNCTION bench_knn() RETURNS TABLE(qi int, ms float8) AS $$
DECLARE r record; t0 timestamptz; got text[];
BEGIN
  FOR r IN SELECT * FROM q ORDER BY q.i LOOP
    t0 := clock_timestamp();
    SELECT array_agg(s.id) INTO got FROM (SELECT c.id FROM cams c
      ORDER BY c.geom <-> ST_SetSRID(ST_MakePoint(r.x, r.y), 4547) LIMIT 5) s;
    qi := r.i; ms := extract(epoch FROM clock_timestamp() - t0) * 1000; RETURN NEXT;
  END LOOP;
END $$ LANGUAGE plpgsql;
"""


def _tool(name: str) -> str | None:
    for d in BIN_DIRS:
        if (d / name).exists():
            return str(d / name)
    return shutil.which(name)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Cluster:
    """initdb + pg_ctl in ``root``; run as postgres when we are root."""

    def __init__(self, root: Path) -> None:
        self.root, self.data, self.port = root, root / "data", _free_port()
        self.as_user = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []

    def sh(self, *args: str, input: str | None = None) -> str:
        out = subprocess.run([*self.as_user, *args], capture_output=True, text=True, input=input, timeout=900)
        if out.returncode != 0:
            raise RuntimeError(f"{Path(args[0]).name}: {(out.stderr or out.stdout).strip()[-300:]}")
        return out.stdout

    def start(self) -> None:
        os.chmod(self.root, 0o777)
        self.sh(_tool("initdb") or "initdb", "-D", str(self.data), "-U", "postgres", "--no-sync", "-A", "trust")
        self.sh(_tool("pg_ctl") or "pg_ctl", "-D", str(self.data), "-w", "-l", str(self.root / "pg.log"), "-o",
                f"-p {self.port} -k {self.root} -c listen_addresses='' -c fsync=off", "start")

    def psql(self, sql: str) -> str:
        return self.sh(shutil.which("psql") or "psql", "-h", str(self.root), "-p", str(self.port), "-U", "postgres",
                       "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-f", "-", input=sql)

    def stop(self) -> None:
        try:
            self.sh(_tool("pg_ctl") or "pg_ctl", "-D", str(self.data), "-m", "immediate", "stop")
        except Exception:
            pass


def _load(cl: Cluster, cams, qx, qy) -> float:
    root = cl.root
    with open(root / "cams.csv", "w") as f:
        for i, x, y in zip(cams._ids, cams.x_m, cams.y_m):
            f.write(f"{i},{x:.3f},{y:.3f}\n")
    with open(root / "q.csv", "w") as f:
        for i, (x, y) in enumerate(zip(qx, qy)):
            f.write(f"{i},{x:.3f},{y:.3f}\n")
    for p in ("cams.csv", "q.csv"):
        os.chmod(root / p, 0o644)
    t0 = time.perf_counter()
    cl.psql(f"""CREATE EXTENSION postgis;
CREATE TABLE raw (id text, x float8, y float8);
\\copy raw FROM '{root / "cams.csv"}' WITH (FORMAT csv)
CREATE TABLE cams AS SELECT id, ST_SetSRID(ST_MakePoint(x, y), 4547)::geometry(Point, 4547) AS geom FROM raw;
CREATE INDEX cams_gist ON cams USING gist (geom);
ANALYZE cams;
CREATE TABLE q (i int, x float8, y float8);
\\copy q FROM '{root / "q.csv"}' WITH (FORMAT csv)
{BENCH_FN}""")
    return time.perf_counter() - t0


def run(results: Results, cams, incidents: list, *, queries: int = 2000, check: int = 100) -> dict:
    """KNN nearest-5 on the camera layer for the first ``queries`` incident points."""
    from incidents.model import Point
    from bench.response import _to_m
    if not _tool("initdb") or not _tool("pg_ctl") or not shutil.which("psql"):
        section = {"skipped": "PostgreSQL binaries (initdb, pg_ctl, psql) not found"}
        results.add("postgis", section)
        return section
    incs = incidents[:queries]
    qx, qy = _to_m().transform(np.array([i.lon for i in incs]), np.array([i.lat for i in incs]))
    root = Path(tempfile.mkdtemp(prefix="yzt-bench-pg-"))
    cl = Cluster(root)
    try:
        cl.start()
        load_s = _load(cl, cams, qx, qy)
        cl.psql("SELECT count(*) FROM bench_knn();")  # warm: index pages into shared buffers
        ms = [float(line.split("|")[1]) for line in cl.psql("SELECT qi, ms FROM bench_knn();").split()]
        got = cl.psql(f"SELECT q.i, array_to_string(ARRAY(SELECT c.id FROM cams c ORDER BY c.geom <-> "
                      f"ST_SetSRID(ST_MakePoint(q.x, q.y), 4547) LIMIT 5), ' ') FROM q WHERE q.i < {check} ORDER BY q.i;")
        same = 0
        for line, inc in zip(got.splitlines(), incs):
            ids = set(line.split("|")[1].split())
            ours = {r["id"] for r in cams.nearest(Point(inc.lon, inc.lat, "wgs84"), k=5)}
            same += ids == ours
        ours_s: list[float] = []
        for inc in incs:
            p = Point(inc.lon, inc.lat, "wgs84")
            t0 = time.perf_counter()
            cams.nearest(p, k=5)
            ours_s.append(time.perf_counter() - t0)
        s_pg, s_ours = summary_ms([m / 1000 for m in ms]), summary_ms(ours_s)
        section = {"rows": len(cams), "queries": len(ms), "load_and_index_s": round(load_s, 1),
                   "postgis_knn_in_server": s_pg, "ours_layerindex_nearest5": s_ours,
                   "ours_vs_postgis_p50": round(s_pg["p50_ms"] / s_ours["p50_ms"], 2),
                   "same_5_ids_checked": f"{same}/{min(check, len(incs))}",
                   "version": cl.psql("SELECT postgis_lib_version() || ' / ' || version();").strip()[:120]}
    except Exception as e:  # the bench never fails because a reference database cannot start
        section = {"skipped": f"PostgreSQL/PostGIS could not run: {e}"}
    finally:
        cl.stop()
        shutil.rmtree(root, ignore_errors=True)
    results.add("postgis", section)
    return section
