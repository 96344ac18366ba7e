"""Export buttons: the static situation map (folium HTML that opens with no internet) and the resource
tables as CSV and GeoJSON, all built by command.dashboard.export from the incident's state and sent with dcc.Download.
"""
from __future__ import annotations

from dash import Input, Output, State, callback, ctx, dcc, html, no_update
from dash.exceptions import PreventUpdate

from command.dashboard import runtime
from command.dashboard.common import alert_from
from command.dashboard.i18n import L
from command.dashboard.security import guarded


def export_panel() -> html.Div:
    return html.Div([
        html.Button(L("export.map"), id="export-map", n_clicks=0),
        html.Button(L("export.csv"), id="export-csv", n_clicks=0),
        html.Button(L("export.geojson"), id="export-geojson", n_clicks=0),
        dcc.Download(id="export-download"),
    ], style={"display": "flex", "flexDirection": "column", "gap": "4px"})


def export_file(kind: str, state) -> dict:
    from command.dashboard import export
    if kind == "export-map":
        return dict(content=export.situation_map_html(state), filename=f"{state.id}-situation.html")
    if kind == "export-csv":
        return dict(content=export.resources_csv(state), filename=f"{state.id}-resources.csv")
    return dict(content=export.resources_geojson(state), filename=f"{state.id}-resources.geojson")


@callback(Output("export-download", "data"), Output("app-alert", "children", allow_duplicate=True),
          Input("export-map", "n_clicks"), Input("export-csv", "n_clicks"), Input("export-geojson", "n_clicks"),
          State("incident-selected", "data"), prevent_initial_call=True)
@guarded("view")
def on_export(_m, _c, _g, incident_id: str | None):
    if not incident_id or not ctx.triggered_id:
        raise PreventUpdate
    try:
        state = runtime.current().service().get(incident_id)
        return export_file(ctx.triggered_id, state), no_update
    except Exception as e:  # noqa: BLE001 - refusals become one line, bugs are logged
        return no_update, alert_from(e)
