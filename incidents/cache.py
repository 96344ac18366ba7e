"""The persistent cache of built artefacts (layer tables, admin outlines, the gazetteer), keyed by content.

Every command used to rebuild the same things from data/ at start-up (parse the CSVs and GeoJSON, project to
EPSG:4547, build the gazetteer's index): ~2 s of a fresh `yzt drill run`. This module keeps each built
artefact as Arrow tables in one file under the cache folder and hands it back to the next process.

    from incidents import cache
    value = cache.cached("admin-district", inputs=[geojson, census_csv], code=[__file__], params={...},
                         build=lambda: ..., encode=to_entry, decode=from_entry)
    cache.configure(settings.var_dir / "cache")   # the door, once (default: the bundled var/cache)

An entry can never answer for other inputs: its key is a blake2b digest of
- the CONTENT of every input file (all bytes, every time: 12 MB of data/ hash in ~17 ms, far less than one
  parse; a (size, mtime) shortcut was rejected because an edit that keeps both, or a copy with ``cp -p``,
  would be answered from the cache), a missing input counted as missing;
- the source files of the code that builds it (``code``; this module's own included) and the versions of
  numpy, pandas, pyarrow, shapely and pyproj, so a code or library change rebuilds;
- ``params`` (JSON), e.g. a layer's metadata, and ``FORMAT``.

A file is ``MAGIC``, a header (key, kind, meta, table sizes, blake2b of the body) and the tables as Arrow
IPC streams. It is written to a temporary file in the same folder and renamed into place, so a reader (or a
gunicorn worker writing the same entry at the same moment) only ever sees a whole file. Reading checks the
magic, the key and the body's digest; anything wrong (missing, truncated, corrupt, another format, a decode
error, an unwritable folder) is a miss: the artefact is built from data/ as before, never an error to the
user. At most ``KEEP`` entries of one kind are kept (oldest removed). Deleting the folder is always safe.

Data written here is tables only (Arrow), never pickle: a file in the cache cannot run code.
"""
from __future__ import annotations

import gc
import hashlib
import json
import logging
import os
import re
import struct
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from settings import ROOT

FORMAT = 1
MAGIC = b"YZT-CACHE\x00" + struct.pack("<I", FORMAT)
SUFFIX = ".yztc"
KEEP = 6                       # entries kept per kind (tests build many small data folders)
STALE_TMP_S = 3600             # a temporary file older than this was left by a killed writer
LIBRARIES = ("numpy", "pandas", "pyarrow", "shapely", "pyproj")
DEFAULT_DIR = ROOT / "var" / "cache"    # the cache of the default var_dir (as layers.catalog.BUNDLED)

log = logging.getLogger("yzt.cache")
T = TypeVar("T")
stats: Counter = Counter()     # ("hit" | "miss" | "corrupt" | "write_failed", kind) -> count, this process
_directory: Path | None = DEFAULT_DIR
_freeze_loaded = False


@dataclass
class Entry:
    """What an artefact is stored as: named Arrow tables and a small JSON-able ``meta``."""

    tables: dict[str, Any] = field(default_factory=dict)     # name -> pyarrow.Table
    meta: dict = field(default_factory=dict)


def configure(directory: Path | str | None) -> None:
    """Where entries live from now on in this process (the door: ``settings.var_dir / "cache"``); None turns
    the cache off (every artefact is built)."""
    global _directory
    _directory = Path(directory) if directory is not None else None


def directory() -> Path | None:
    return _directory


def freeze_loaded(on: bool = True) -> None:
    """For a process that keeps what it loads until it exits (one ``yzt`` command): every artefact, once in
    memory, leaves the cyclic collector's full passes (``gc.freeze``), which otherwise walk the gazetteer's and
    the road graph's ~200,000 objects again and again (~10% of a drill's CPU). Freezing frees nothing and
    keeps nothing alive: an object whose last reference goes is freed as before; only a reference cycle alive
    at that moment that becomes garbage later stays until the process ends, which for such a process is soon.
    Off by default: a test session or an embedding program decides for itself."""
    global _freeze_loaded
    _freeze_loaded = on


def loaded() -> None:
    """Say that a long-lived artefact is now in memory (``cached`` says it for each one it returns; a caller
    that builds more on top of one, as the road graph does, says it again when that is built)."""
    if _freeze_loaded:
        gc.freeze()


def file_digest(path: Path) -> str:
    """blake2b of the file's bytes, or "missing"."""
    try:
        with open(path, "rb") as f:
            return hashlib.file_digest(f, lambda: hashlib.blake2b(digest_size=20)).hexdigest()
    except FileNotFoundError:
        return "missing"


def key_of(kind: str, inputs: Iterable[Path], code: Iterable[Path | str] = (), params: Any = None) -> str:
    """The entry key: a digest of the inputs' content, the code, the libraries, ``params`` and FORMAT."""
    h = hashlib.blake2b(digest_size=20)
    versions = {lib: getattr(sys.modules.get(lib) or __import__(lib), "__version__", "?") for lib in LIBRARIES}
    parts: list[Any] = [FORMAT, kind, versions, params]
    parts += [["input", str(p), file_digest(Path(p))] for p in inputs]
    parts += [["code", Path(c).name, file_digest(Path(c))] for c in (*code, __file__)]
    h.update(json.dumps(parts, sort_keys=True, ensure_ascii=False, default=str).encode("utf-8"))
    return h.hexdigest()


def cached(kind: str, *, inputs: Iterable[Path], build: Callable[[], T], encode: Callable[[T], Entry],
           decode: Callable[[Entry], T], code: Iterable[Path | str] = (), params: Any = None,
           folder: Path | None = None) -> T:
    """The artefact from the cache when an entry for exactly these inputs exists and reads back whole, else
    ``build()`` (stored for the next process). ``folder`` overrides the configured folder."""
    folder = folder if folder is not None else _directory
    if folder is None:
        return build()
    try:
        key = key_of(kind, list(inputs), list(code), params)
    except OSError as exc:         # an unreadable input: the builder says what is wrong with it, in its words
        stats["unkeyed", kind] += 1
        log.info("cache key of %s not computed (%s)", kind, exc)
        return build()
    path = Path(folder) / f"{kind}-{key}{SUFFIX}"
    entry = read_entry(path, kind, key)
    if entry is not None:
        try:
            value = decode(entry)
        except Exception as exc:   # noqa: BLE001 - a bad entry is a miss, never an error to the user
            stats["corrupt", kind] += 1
            log.info("cache entry %s does not decode (%s): rebuilding", path.name, exc)
        else:
            stats["hit", kind] += 1
            loaded()
            return value
    stats["miss", kind] += 1
    value = build()
    try:
        write_entry(path, kind, key, encode(value))
    except Exception as exc:       # noqa: BLE001 - an unwritable cache only costs the next process time
        stats["write_failed", kind] += 1
        log.info("cache entry %s not written (%s)", path.name, exc)
    loaded()
    return value


def read_entry(path: Path, kind: str, key: str) -> Entry | None:
    """The entry at ``path`` if it is whole and made for ``key``; None otherwise (missing or corrupt)."""
    try:
        data = path.read_bytes()
    except OSError:
        return None
    try:
        return _parse(data, kind, key)
    except Exception as exc:       # noqa: BLE001 - truncated, corrupt, another format: a miss
        stats["corrupt", kind] += 1
        log.info("cache entry %s unreadable (%s): rebuilding", path.name, exc)
        return None


def _parse(data: bytes, kind: str, key: str) -> Entry:
    import pyarrow as pa
    if not data.startswith(MAGIC):
        raise ValueError("not a cache file of this format")
    (hlen,) = struct.unpack_from("<I", data, len(MAGIC))
    start = len(MAGIC) + 4 + hlen
    header = json.loads(data[len(MAGIC) + 4: start].decode("utf-8"))
    if header.get("key") != key or header.get("kind") != kind:
        raise ValueError("made for other inputs")
    body = memoryview(data)[start:]
    if hashlib.blake2b(body, digest_size=20).hexdigest() != header["digest"]:
        raise ValueError("body digest mismatch")
    tables, offset = {}, 0
    for name, size in header["tables"]:
        buf = pa.py_buffer(body[offset: offset + size])
        tables[name] = pa.ipc.open_stream(buf).read_all()
        offset += size
    if offset != len(body):
        raise ValueError("body length mismatch")
    return Entry(tables, header["meta"])


def write_entry(path: Path, kind: str, key: str, entry: Entry) -> None:
    """Write ``entry`` atomically: a temporary file in the same folder, renamed over ``path``."""
    import pyarrow as pa
    streams = []
    for name, table in entry.tables.items():
        sink = pa.BufferOutputStream()
        with pa.ipc.new_stream(sink, table.schema) as w:
            w.write_table(table)
        streams.append((name, sink.getvalue().to_pybytes()))
    body = b"".join(s for _, s in streams)
    header = json.dumps({"key": key, "kind": kind, "meta": entry.meta, "tables": [[n, len(s)] for n, s in streams],
                         "digest": hashlib.blake2b(body, digest_size=20).hexdigest()},
                        ensure_ascii=False).encode("utf-8")
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{kind}-", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(MAGIC + struct.pack("<I", len(header)) + header + body)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    _prune(path.parent, kind, keep=path)


def _prune(folder: Path, kind: str, keep: Path) -> None:
    """Keep the newest KEEP entries of ``kind`` and drop temporary files a killed writer left."""
    now, mine = time.time(), re.compile(rf"{re.escape(kind)}-[0-9a-f]{{40}}{re.escape(SUFFIX)}")
    entries = []
    try:
        names = list(folder.iterdir())
    except OSError:
        return
    for p in names:
        try:
            st = p.stat()
            if mine.fullmatch(p.name) and p != keep:
                entries.append((st.st_mtime, p))
            elif p.name.endswith(".tmp") and p.name.startswith(".") and now - st.st_mtime > STALE_TMP_S:
                p.unlink(missing_ok=True)
        except OSError:
            continue                  # another process removed it meanwhile
    for _, p in sorted(entries, reverse=True)[KEEP - 1:]:
        p.unlink(missing_ok=True)
