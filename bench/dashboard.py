"""The dashboard: time from `make run` (``yzt serve`` in a subprocess on a free port) to the first HTTP 200,
to an interactive page (the report button visible in headless chromium), and to the camera layer drawn
(its clusters on the map). Launch flags as in tests/browser/. Skipped with the reason when chromium or
playwright is missing.
"""
from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import yaml

from bench.common import ROOT, Results

CHROMIUM = Path("/usr/bin/chromium")
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _yzt() -> list[str]:
    exe = Path(sys.executable).with_name("yzt")
    return [str(exe)] if exe.exists() else [sys.executable, "-m", "command.cli.main"]


def _page(url: str, t_start: float, password: str | None) -> dict:
    from playwright.sync_api import sync_playwright
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        t_browser = time.perf_counter()
        page = b.new_context(viewport={"width": 1366, "height": 768}).new_page()
        t0 = time.perf_counter()
        page.goto(url)
        if password and page.locator("#login-form").count():   # the sign-in gate (command.dashboard.login)
            page.fill("#login-name", "bench")
            page.fill("#login-password", password)
            page.click("#login-submit")
        try:
            page.wait_for_selector("#report-submit", state="visible", timeout=60_000)
        except Exception:
            page.screenshot(path="/tmp/x/dash.png")
            raise RuntimeError(f"not interactive at {page.url}: {page.inner_text('body')[:200]!r}") from None
        t1 = time.perf_counter()
        page.wait_for_selector(".yzt-cluster", state="attached", timeout=120_000)
        t2 = time.perf_counter()
        clusters = page.locator(".yzt-cluster").count()
        b.close()
    return {"browser_launch_s": round(t_browser - t_start, 3), "goto_to_interactive_s": round(t1 - t0, 3),
            "goto_to_cameras_drawn_s": round(t2 - t0, 3), "camera_clusters_on_screen": clusters}


USER = ("from command.security.auth import Users; from command.store.sqlite import Store; "
        "from settings import get_settings; print(Users(Store.open_default(get_settings())).add('bench', 'officer'))")


def _bench_user(env: dict) -> str | None:
    """An officer account in the throwaway var dir when the dashboard has a sign-in gate (else None)."""
    try:
        import command.security.auth  # noqa: F401
    except ImportError:
        return None
    out = subprocess.run([sys.executable, "-c", USER], cwd=ROOT, env=env, capture_output=True, text=True)
    if out.returncode != 0:
        raise RuntimeError(f"cannot create the bench user: {out.stderr.strip().splitlines()[-1:]}")
    return out.stdout.strip().splitlines()[-1]


def run(results: Results) -> dict:
    try:
        import playwright  # noqa: F401
    except ImportError:
        section = {"skipped": "playwright is not installed"}
        results.add("dashboard", section)
        return section
    if not CHROMIUM.exists():
        section = {"skipped": "/usr/bin/chromium is absent (make chromium)"}
        results.add("dashboard", section)
        return section
    tmp = Path(tempfile.mkdtemp(prefix="yzt-bench-dash-"))
    cfg = tmp / "yzt.yaml"
    cfg.write_text(yaml.safe_dump({"channels": [{"name": "outbox-exercise", "kind": "outbox", "mode": "exercise"}]}))
    port = _free_port()
    env = dict(os.environ, YZT_VAR_DIR=str(tmp / "var"), YZT_CONFIG=str(cfg))
    url = f"http://127.0.0.1:{port}"
    password = _bench_user(env)
    t_start = time.perf_counter()
    proc = subprocess.Popen([*_yzt(), "serve", "--port", str(port)], cwd=ROOT, env=env,
                            stdout=subprocess.DEVNULL, stderr=open(tmp / "server.log", "w"))
    try:
        t_http = None
        while time.perf_counter() - t_start < 120:
            try:
                if httpx.get(f"{url}/login", timeout=1).status_code == 200:
                    t_http = time.perf_counter()
                    break
            except httpx.HTTPError:
                time.sleep(0.05)
        if t_http is None:
            raise RuntimeError(f"server did not answer: {(tmp / 'server.log').read_text()[-300:]}")
        page = _page(url, time.perf_counter(), password)
        section = {"serve_to_http_200_s": round(t_http - t_start, 3), **page,
                   "serve_to_interactive_s": round(t_http - t_start + page["goto_to_interactive_s"], 3),
                   "note": "interactive and drawn are measured from page.goto once the server answers, sign-in "
                           "included; the camera GeoJSON is built on its first request, during this page load"}
    except Exception as e:
        section = {"skipped": f"dashboard could not be measured: {str(e).splitlines()[0][:300]}"}
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
        shutil.rmtree(tmp, ignore_errors=True)
    results.add("dashboard", section)
    return section
