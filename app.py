"""粤政图 dashboard entry: builds the Dash app from command/dashboard/ and serves it.

    import app
    dash_app = app.create_app()            # settings from settings.get_settings() unless given
    app.serve(host="127.0.0.1", port=8050) # or: yzt serve / make run

Every page and route needs a signed-in user (/login); roles and CSRF: command/dashboard/security.py.
The 110/119/120 dispatch API (/api/v1, bearer tokens, OpenAPI at /api/v1/openapi.json): command/api/routes.py.
Import is cheap: no data is read until the first request (layers, outlines and the store open lazily).
"""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import dash

ASSETS = Path(__file__).resolve().parent / "command" / "dashboard" / "assets"


def create_app(settings: Any = None, *, secure_cookies: bool | None = None, deliver: bool = True) -> dash.Dash:
    """A Dash app over the store of ``settings`` (its own runtime: store, outbox, services), behind sign-in.

    ``secure_cookies``: mark cookies Secure (serve over https); default from settings/YZT_SECURE_COOKIES.
    ``deliver``: run the outbox's delivery workers in this process (False in ``serve``'s web workers: there
    a delivery process of its own sends, so a hung receiver never holds a web worker).
    """
    from command.dashboard import layout, login, routes, runtime, security
    from settings import get_settings
    runtime.configure(settings or get_settings(), deliver=deliver)
    app = dash.Dash(__name__, title="粤政图 应急指挥", assets_folder=str(ASSETS), update_title=None,
                    suppress_callback_exceptions=True, serve_locally=True)
    app.layout = layout.layout
    _adopt_callbacks(app)
    security.install(app.server, runtime.current().settings, secure=secure_cookies)
    login.register(app.server)
    routes.register(app.server)
    from command.dashboard import headers, public_warning
    public_warning.register(app.server, store=lambda: runtime.current().store())   # /warnings/<id>: no sign-in
    # The dispatch systems' token API (/api/v1) sits in front of the dashboard's sign-in and CSRF hooks.
    from command.api.routes import register_api
    register_api(app.server, lambda: runtime.current().service())
    headers.install(app, runtime.current().settings)    # CSP (no inline script), frame-ancestors, Referrer-Policy
    _set_up_before_serving(app)
    return app


def _set_up_before_serving(app: dash.Dash) -> None:
    """Dash registers the script files it may serve on its first request, and sets its guard flag before it
    has (plotly/dash#3971): under gunicorn's threads, the page's script requests that arrive in that gap are
    refused ("dash is not a registered library") and the page stays at "Loading..." until a reload. Doing
    that set-up here, before the server takes any request, closes the gap in every worker."""
    setup = getattr(app, "_setup_server", None)      # Dash's own (private) step; a Dash without it runs it lazily
    if setup is not None:
        with app.server.test_request_context("/"):
            setup()


_CALLBACKS: dict[str, Any] = {}
_CALLBACK_LIST: list[dict] = []


def _adopt_callbacks(app: dash.Dash) -> None:
    """Give every app the dashboard's global callbacks. Dash moves GLOBAL_CALLBACK_MAP into the first app
    that serves a request, so a second app in the same process (tests) would otherwise have none."""
    from dash import _callback
    _CALLBACKS.update({k: _callback.GLOBAL_CALLBACK_MAP.pop(k) for k in list(_callback.GLOBAL_CALLBACK_MAP)})
    _CALLBACK_LIST.extend(_callback.GLOBAL_CALLBACK_LIST)
    _callback.GLOBAL_CALLBACK_LIST.clear()
    app.callback_map.update({k: dict(v) for k, v in _CALLBACKS.items()})
    app._callback_list.extend(dict(c) for c in _CALLBACK_LIST)


WARM_ADDRESS = "广州市天河区天河路"


def warm(settings: Any) -> float:
    """Read what a first report reads (the gazetteer and district outlines, the nearby layers and their indexes,
    the grading tables), so that no request pays for it; returns the seconds it took. ``serve`` runs it in
    every web worker before the worker takes a request, so a worker started again after a crash is ready too."""
    import time
    from incidents.geocode import locate_any
    from incidents.grading import grade
    from incidents.model import Casualties
    from layers.catalog import Catalog
    from layers.nearby import around
    from command.response.service import NEARBY_K, NEARBY_LAYERS
    t0 = time.perf_counter()
    location = locate_any(WARM_ADDRESS, None, settings=settings, data_dir=settings.data_dir)
    catalog = Catalog.of(settings)
    for layer in NEARBY_LAYERS:
        around(layer, location.point, k=NEARBY_K, catalog=catalog)
    grade("fire", Casualties(), 0.0, missing_count_as_deaths=settings.missing_count_as_deaths,
          data_dir=settings.data_dir)
    return time.perf_counter() - t0


def _warm_worker(worker: Any) -> None:
    """gunicorn's post_worker_init: warm this worker; a failure is one log line, never a dead worker. After the
    master's own warm-up (``preload``) everything is in memory already and this only checks it (milliseconds);
    it loads what the master could not."""
    from settings import get_settings
    try:
        seconds = warm(get_settings())
        worker.log.info("worker %s warm in %.1f s", worker.pid, seconds)
    except Exception as e:   # the first request then loads what is missing, and says what fails
        worker.log.warning("worker %s: warming failed (%s: %s); the first request loads the data",
                           worker.pid, type(e).__name__, e)


def preload(log: Any = None) -> Any:
    """What gunicorn's master loads once, before it forks the web workers (``preload_app``): the imports, the
    Dash app and the data of ``warm`` (gazetteer, outlines, layers and their indexes, the road graph, grading
    tables). Every worker is a fork of it, ready at once and sharing those pages, instead of importing and
    loading the same again (2 workers and the delivery process on 2 cores: ~9 s to the first 200 under load).

    Nothing that must not cross a fork is left open: building the app opens the store (Dash checks the layout,
    which lists the layers), so the runtime is closed again here, and each worker opens its own SQLite
    connections or PostgreSQL pool on its first request. The master runs no thread of its own (no outbox is
    started: deliver=False; the delivery process sends). Last, everything loaded is frozen out of the cyclic
    collector (``gc.freeze``, the standard step before a pre-fork server forks): a worker's full collections
    neither walk those hundreds of thousands of objects nor write their headers, which would copy the shared pages."""
    import threading
    from command.dashboard import runtime
    from settings import get_settings
    wsgi = create_app(deliver=False).server
    try:
        seconds = warm(get_settings())
        if log is not None:
            log.info("data loaded in %.1f s before forking the workers", seconds)
    except Exception as e:   # noqa: BLE001 - each worker warms again (post_worker_init) and says what fails
        if log is not None:
            log.warning("warming before the fork failed (%s: %s); each worker loads the data", type(e).__name__, e)
    finally:
        runtime.current().close()        # store, outbox, pool: opened again after the fork, in each worker
        from layers.index import close_postgis
        close_postgis()                  # the PostGIS layers' pool (its threads): reopened on a worker's first query
    others = [t.name for t in threading.enumerate() if t is not threading.current_thread()]
    if others:                           # a thread does not survive fork(): whatever it guarded would hang
        raise RuntimeError(f"threads running before the fork: {others}")
    import gc
    gc.freeze()    # what is loaded leaves the collector's passes: no worker's collection walks (and so copies) it
    return wsgi


def serve(host: str = "127.0.0.1", port: int = 8050, *, workers: int = 2, threads: int = 8) -> None:
    """The dashboard and the API on gunicorn with ``workers`` processes of ``threads`` threads each, and one
    delivery process beside them (``yzt outbox work``), stopped when the server stops. The master loads the app
    and the data once and forks the workers from it (``preload``), so a worker gunicorn starts again after a
    crash is ready at once too. (A HUP therefore restarts the workers on the code already loaded: restart the
    server to run new code.)"""
    from gunicorn.app.base import BaseApplication

    class Server(BaseApplication):
        def load_config(self) -> None:
            for key, value in {"bind": f"{host}:{port}", "workers": workers, "threads": threads,
                               "worker_class": "gthread", "preload_app": True, "timeout": 60,
                               "graceful_timeout": 20,
                               "accesslog": None, "errorlog": "-", "loglevel": "warning",
                               "proc_name": "yzt-serve", "post_worker_init": _warm_worker}.items():
                self.cfg.set(key, value)

        def load(self):
            import logging
            wsgi = preload(logging.getLogger("gunicorn.error"))
            delivery.append(_start_delivery())   # after the loading, so it does not compete with it for the CPU
            return wsgi

    delivery: list[subprocess.Popen] = []
    master = os.getpid()
    try:
        Server().run()
    finally:
        # a forked worker leaving gunicorn unwinds through here too: only the master stops the delivery process
        for proc in delivery if os.getpid() == master else ():
            proc.terminate()
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()


def _start_delivery() -> subprocess.Popen:
    """The delivery process (``yzt outbox work``), which ends by itself when this process does."""
    return subprocess.Popen([sys.executable, "-m", "command.cli.main", "outbox", "work",
                             "--exit-with", str(os.getpid())])


if __name__ == "__main__":
    serve()
