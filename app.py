"""粤政图 dashboard entry: builds the Dash app from command/dashboard/ and serves it.

    import app
    dash_app = app.create_app()            # settings from settings.get_settings() unless given
    app.serve(host="127.0.0.1", port=8050) # or: yzt serve / make run

Import is cheap: no data is read until the first request (layers, outlines and the store open lazily).
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import dash

ASSETS = Path(__file__).resolve().parent / "command" / "dashboard" / "assets"


def create_app(settings: Any = None) -> dash.Dash:
    """A Dash app over the store of ``settings`` (its own runtime: store, outbox, services)."""
    from command.dashboard import layout, routes, runtime
    runtime.configure(settings)
    app = dash.Dash(__name__, title="粤政图 应急指挥", assets_folder=str(ASSETS), update_title=None,
                    suppress_callback_exceptions=True, serve_locally=True)
    app.layout = layout.layout
    routes.register(app.server)
    return app


def serve(host: str = "127.0.0.1", port: int = 8050) -> None:
    """Run the dashboard with a threaded server (several officers at once)."""
    create_app().run(host=host, port=port, debug=False, threaded=True)


if __name__ == "__main__":
    serve()
