"""The officers' dashboard (Dash + dash-leaflet), one feature per module, global callbacks.

    report.py          report an incident (address / point + datum, type, casualties, loss)
    incidents_list.py  the incident list with level badges and filters
    mapview.py         the map: outlines, basemap, clustered layers, incidents, rings, warned area
    nearby.py          ranked nearby resources; a row click flies the map
    cameras.py         the camera wall (field of view first, simulated feed where there is no stream)
    group.py           roster, conference, tasks, timeline, casualty update (regrade)
    warn.py            the warning composer: preview, confirmation, send/update/cancel, deliveries
    export_view.py     situation map and resource tables for download (command.dashboard.export)
    sync.py            polling the store so several officers see the same incidents
    routes.py          Flask routes: GeoJSON layers/outlines, the simulated camera feed
    runtime.py         the one store, outbox and ResponseService pair, opened lazily

Importing a feature module registers its callbacks (dash global ``@callback``); nothing is loaded
until a page or a callback asks. ``app.create_app`` wires them into a Dash app.
"""
