"""Fetch the JavaScript/CSS the offline situation map needs, from the npm registry, at setup time.

    .venv/bin/python scripts/fetch_js_assets.py                 # -> command/dashboard/vendor/leaflet/
    .venv/bin/python scripts/fetch_js_assets.py --registry http://127.0.0.1:4873 --dest /tmp/vendor

The export (command/dashboard/export.py) draws with Leaflet only (circle markers, no icon fonts), so Leaflet is the
one package: folium's jQuery/Bootstrap/awesome-markers links are dropped instead of fetched. The tarball is
checked against the registry's ``dist.integrity`` (sha512) before anything is written, and files land by
rename, so a failed fetch leaves the previous copy intact. Exit 0 ok, 1 on failure (one line on stderr).
"""
from __future__ import annotations

import argparse
import base64
import hashlib
import io
import os
import sys
import tarfile
import tempfile
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DEST = ROOT / "command" / "dashboard" / "vendor"
REGISTRY = "https://registry.npmjs.org"
# package -> (version, {file in the tarball: file name written})
PACKAGES: dict[str, tuple[str, dict[str, str]]] = {
    "leaflet": ("1.9.3", {"package/dist/leaflet.js": "leaflet.js", "package/dist/leaflet.css": "leaflet.css",
                          "package/LICENSE": "LICENSE"}),
}


class FetchError(RuntimeError):
    pass


def _check_integrity(data: bytes, integrity: str | None, shasum: str | None, name: str) -> None:
    if integrity and integrity.startswith("sha512-"):
        got = "sha512-" + base64.b64encode(hashlib.sha512(data).digest()).decode()
        if got != integrity:
            raise FetchError(f"{name}: tarball sha512 does not match the registry's integrity")
    elif shasum:
        if hashlib.sha1(data).hexdigest() != shasum:
            raise FetchError(f"{name}: tarball sha1 does not match the registry's shasum")
    else:
        raise FetchError(f"{name}: the registry gave no integrity or shasum to check the tarball against")


def fetch_package(client: httpx.Client, registry: str, name: str, version: str) -> bytes:
    meta = client.get(f"{registry.rstrip('/')}/{name}/{version}")
    if meta.status_code != 200:
        raise FetchError(f"{name}@{version}: registry answered HTTP {meta.status_code}")
    dist = meta.json().get("dist") or {}
    url = dist.get("tarball")
    if not url:
        raise FetchError(f"{name}@{version}: registry metadata has no dist.tarball")
    tgz = client.get(url)
    if tgz.status_code != 200:
        raise FetchError(f"{name}@{version}: tarball {url} answered HTTP {tgz.status_code}")
    _check_integrity(tgz.content, dist.get("integrity"), dist.get("shasum"), f"{name}@{version}")
    return tgz.content


def extract(tgz: bytes, files: dict[str, str], dest: Path) -> list[Path]:
    """Write the wanted members of the tarball into ``dest`` (all or none: temp dir, then rename)."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=dest.parent) as tmp, tarfile.open(fileobj=io.BytesIO(tgz), mode="r:gz") as tar:
        for member, out_name in files.items():
            try:
                fh = tar.extractfile(member)
            except KeyError:
                fh = None
            if fh is None:
                raise FetchError(f"{member} is not in the tarball")
            (Path(tmp) / out_name).write_bytes(fh.read())
        staged = Path(tmp) / "staged"
        staged.mkdir()
        for out_name in files.values():
            os.replace(Path(tmp) / out_name, staged / out_name)
        old = dest.with_name(dest.name + ".old")
        if dest.exists():
            os.replace(dest, old)
        os.replace(staged, dest)
        if old.exists():
            for f in old.iterdir():
                f.unlink()
            old.rmdir()
    return [dest / n for n in files.values()]


def main(argv: list[str] | None = None, *, client: httpx.Client | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--registry", default=os.environ.get("NPM_CONFIG_REGISTRY", REGISTRY))
    ap.add_argument("--dest", type=Path, default=DEFAULT_DEST)
    args = ap.parse_args(argv)
    own = client is None
    client = client or httpx.Client(timeout=60, follow_redirects=True)
    try:
        for name, (version, files) in PACKAGES.items():
            written = extract(fetch_package(client, args.registry, name, version), files, args.dest / name)
            print(f"{name}@{version}: {', '.join(str(p) for p in written)}")
    except (FetchError, httpx.HTTPError, tarfile.TarError) as e:
        print(f"fetch_js_assets: {e}", file=sys.stderr)
        return 1
    finally:
        if own:
            client.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
