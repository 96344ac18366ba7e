"""Every worker is ready before its first request: Dash's own first-request set-up (the script files it may
serve, the callbacks) is done when the app is made, so requests racing on a fresh gunicorn worker's threads
never find an empty registry (plotly/dash#3971: the first page stayed at "Loading...")."""
from __future__ import annotations

from settings import load_settings


def test_a_fresh_app_has_registered_what_its_first_page_will_ask_for(tmp_path):
    import app
    a = app.create_app(load_settings(var_dir=tmp_path / "var"))
    registered = {k: set(v) for k, v in a.registered_paths.items()}         # before any request
    assert registered.get("dash") and registered.get("dash_leaflet")
    with a.server.test_request_context("/"):
        html = a.index()
    asked = {s.split('"')[0] for s in html.split('src="')[1:] if "_dash-component-suites" in s}
    assert asked
    assert {k: set(v) for k, v in a.registered_paths.items()} == registered  # the page asked for nothing new
