"""The ``yzt`` command line: one door into the same services the dashboard and drills use.

The stable part is ``../shared/contracts/cli.md``: ``--json`` prints one JSON object on stdout, exit 0 on
success, 2 when the input is refused (one clear line on stderr), 1 for anything else. Everything is
imported lazily inside the commands so ``yzt --help`` is instant.

    yzt locate "广州市天河区天河路 商场燃气爆炸"      yzt locate --point 113.32,23.13 --crs gcj02
    yzt grade --type fire --deaths 3               yzt nearby --point 113.32,23.13 --layer hospital -k 5
    yzt layers list | export NAME FILE | import NAME FILE --crs gcj02 | import NAME [FILE] --postgis
    yzt drill run FILE [--speed N] [--report report.md]
    yzt incident report|update|show|list|close ...  yzt alert send|cancel|status ...
    yzt serve [--host H] [--port P]                yzt data build --shared ../shared/data
    yzt users add|list|disable|passwd  yzt tokens issue|revoke|list  yzt audit verify|show  yzt admin ensure
"""
from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Optional

import click
import typer

from command.cli import output as out

app = typer.Typer(add_completion=False, no_args_is_help=True,
                  help="粤政图 — locate, grade, rank, warn and drill on Guangdong's real data.")
layers_app = typer.Typer(no_args_is_help=True, help="Spatial layers: list, export, import a real registry.")
drill_app = typer.Typer(no_args_is_help=True, help="Replay drill scenarios (contracts/drill-scenario.md).")
data_app = typer.Typer(no_args_is_help=True, help="Build the bundled data/ from ../shared/data.")
cap_app = typer.Typer(no_args_is_help=True, help="CAP 1.2 warnings from other agencies.")
app.add_typer(layers_app, name="layers")
app.add_typer(drill_app, name="drill")
app.add_typer(data_app, name="data")
app.add_typer(cap_app, name="cap")

JSON_OPT = out.JSON_OPT


def _point(text: str, crs: str):
    from incidents.coords import parse_point
    return parse_point(text, crs=crs.lower())


# --------------------------------------------------------------------------------------------- locate
@app.command()
def locate(
    text: Optional[str] = typer.Argument(None, help="an address as the caller said it"),
    batch: Optional[Path] = typer.Option(None, "--batch", help="a file with one address per line"),
    point: Optional[str] = typer.Option(None, "--point", help="LON,LAT"),
    crs: str = typer.Option("wgs84", "--crs", help="datum of --point: wgs84 | gcj02 | bd09"),
    as_json: bool = JSON_OPT,
) -> None:
    """Find where an incident is: address text, a batch file, or a point in any datum."""
    from incidents import geocode
    given = [x is not None for x in (text, batch, point)]
    if sum(given) != 1:
        raise click.UsageError("give exactly one of TEXT, --batch FILE or --point LON,LAT")
    if batch is not None:
        lines = out.read_text_file(batch).splitlines()
        for item in geocode.locate_batch(lines):
            sys.stdout.write(json.dumps(item, ensure_ascii=False) + "\n")
        return
    loc = geocode.locate_point(_point(point, crs)) if point else geocode.locate(text)
    out.emit(loc.as_dict(), as_json, out.location_text)


# ---------------------------------------------------------------------------------------------- grade
@app.command()
def grade(
    type_: str = typer.Option(..., "--type", help="incident type, e.g. fire, gas_explosion, hazmat_leak"),
    deaths: int = typer.Option(0, "--deaths", min=0),
    serious_injuries: int = typer.Option(0, "--serious-injuries", min=0),
    missing: int = typer.Option(0, "--missing", min=0),
    loss: float = typer.Option(0.0, "--loss", min=0, help="direct economic loss in CNY"),
    as_json: bool = JSON_OPT,
) -> None:
    """Grade an incident by China's four levels and name the rule that fired."""
    from incidents.grading import grade as grade_fn
    from incidents.model import Casualties
    settings = out.settings()
    g = grade_fn(type_, Casualties(deaths, serious_injuries, missing), loss,
                 missing_count_as_deaths=settings.missing_count_as_deaths, data_dir=settings.data_dir)
    out.emit(g.as_dict(), as_json, out.grade_text)


@app.command("types")
def types_(as_json: bool = JSON_OPT) -> None:
    """List the incident types, their grading table and CAP category."""
    from incidents.grading import incident_types
    rows = [{"type": k, "zh": t.zh, "en": t.en, "table": t.table, "cap_category": t.cap_category}
            for k, t in incident_types(data_dir=out.settings().data_dir).items()]
    out.emit({"types": rows}, as_json, lambda d: out.table(d["types"]))


# --------------------------------------------------------------------------------------------- nearby
@app.command()
def nearby(
    point: str = typer.Option(..., "--point", help="LON,LAT"),
    crs: str = typer.Option("wgs84", "--crs", help="wgs84 | gcj02 | bd09"),
    layer: str = typer.Option(..., "--layer", help="hospital | fire_station | camera | shelter | ..."),
    k: int = typer.Option(5, "-k", "--k", min=1, max=1000),
    radius_m: Optional[float] = typer.Option(None, "--radius-m", min=0.0),
    uncertainty_m: float = typer.Option(0.0, "--uncertainty-m", min=0.0,
                                        help="metres the place may lie from the point: answers are "
                                             "approximate and cameras cover that circle"),
    as_json: bool = JSON_OPT,
) -> None:
    """The K nearest (or those within a radius) of a layer, in metres measured in EPSG:4547."""
    from layers.nearby import around
    p = _point(point, crs)
    cat = out.catalog()
    items = around(layer, p, k=k, radius_m=radius_m, catalog=cat, uncertainty_m=uncertainty_m)
    meta = cat.load(layer)
    result = {"layer": layer, "synthetic": bool(meta.synthetic), "point": p.as_dict(),
              "approximate": uncertainty_m > 0, "uncertainty_m": uncertainty_m, "items": items}
    out.emit(result, as_json, out.nearby_text)


# --------------------------------------------------------------------------------------------- layers
@layers_app.command("list")
def layers_list(as_json: bool = JSON_OPT) -> None:
    """Every layer: rows, source, whether it is synthetic, datum."""
    rows = [out.layer_info_dict(i) for i in out.catalog().list_layers()]
    out.emit({"layers": rows}, as_json,  # the text view stays narrow: --json has source and licence
             lambda d: out.table(d["layers"], ["name", "rows", "synthetic", "crs", "description"]))


@layers_app.command("export")
def layers_export(name: str, file: Path, as_json: bool = JSON_OPT) -> None:
    """Write layer NAME as GeoJSON (WGS84)."""
    from layers import io
    n = io.export_layer(name, file, catalog=out.catalog())
    out.emit({"layer": name, "file": str(file), "rows": n}, as_json,
             lambda d: f"wrote {d['rows']} rows of {d['layer']} to {d['file']} (GeoJSON, WGS84)")


@layers_app.command("import")
def layers_import(
    name: str,
    file: Optional[Path] = typer.Argument(None, help="the registry file; with --postgis and no FILE, the "
                                          "catalogue's layer NAME goes to PostGIS as it is"),
    crs: str = typer.Option("wgs84", "--crs", help="datum of CSV lon/lat: wgs84 | gcj02 | bd09"),
    id_field: Optional[str] = typer.Option(None, "--id-field"),
    name_field: Optional[str] = typer.Option(None, "--name-field"),
    postgis: bool = typer.Option(False, "--postgis", help="also load it into PostGIS (the database of "
                                 "YZT_DATABASE=postgresql://...): nearest/within then use its KNN index"),
    as_json: bool = JSON_OPT,
) -> None:
    """Load a real registry (GeoJSON, GeoPackage, Shapefile, CSV); all rows or none."""
    if postgis:
        return _layers_import_postgis(name, file, crs=crs.lower(), id_field=id_field, name_field=name_field,
                                      as_json=as_json)
    if file is None:
        raise click.UsageError("give FILE (or --postgis to load the catalogue's layer NAME into PostGIS)")
    from layers import io
    rep = io.import_layer(name, file, crs=crs.lower(), id_field=id_field, name_field=name_field,
                          catalog=out.catalog())
    out.emit(out.asdict(rep), as_json, lambda d: f"imported {d.get('rows_accepted')} rows into layer {name}")


def _layers_import_postgis(name: str, file: Optional[Path], *, as_json: bool, **options) -> None:
    from layers import postgis
    settings = out.settings()       # the database of YZT_DATABASE; SQLite is refused in one line
    url = str(settings.database) if postgis.is_postgres_url(settings.database) else str(settings.database_path)
    cat = out.catalog()
    with postgis.open_layers(url) as db:
        if file is None:
            result = db.import_layer(cat.load(name))
        else:
            result = postgis.import_file(db, name, file, catalog=cat, **options)
    out.emit(result, as_json, lambda d: (f"imported {d['rows']} rows into layer {d['layer']} in PostGIS "
                                         f"(table {d['table']}, EPSG:{d['srid']}, GiST; sha256 "
                                         f"{d['content_sha256'][:12]}) at {d['database']}"))


# ---------------------------------------------------------------------------------------------- drill
@drill_app.command("run")
def drill_run(
    file: Path,
    speed: Optional[float] = typer.Option(None, "--speed", min=0.001,
                                          help="replay on the scenario's own timeline N times faster "
                                          "(default: settings.drill_speed; 0 there = virtual clock)"),
    report: Optional[Path] = typer.Option(None, "--report", help="also write an after-action report "
                                          "(.md or .html)"),
    as_json: bool = JSON_OPT,
) -> None:
    """Replay a drill scenario; every message is an Exercise. Exit 1 when an expect fails."""
    from command import drills
    scenario = drills.load_scenario(file)
    settings = out.settings()
    result = drills.run_drill(scenario, settings=settings, speed=speed or settings.drill_speed or None)
    if report is not None:
        from command.drills import aar
        aar.write_report(result, report)
    out.emit(result, as_json, out.drill_text)
    raise typer.Exit(drills.report_exit_code(result))


# ----------------------------------------------------------------------------------------------- misc
@app.command()
def serve(host: str = typer.Option("127.0.0.1", "--host"), port: int = typer.Option(8050, "--port"),
          workers: int = typer.Option(2, "--workers", min=1, max=64, help="web worker processes"),
          threads: int = typer.Option(8, "--threads", min=1, max=64, help="threads per worker")) -> None:
    """Run the officers' dashboard and the dispatch API (default http://127.0.0.1:8050) on gunicorn, with
    one delivery process beside the web workers."""
    import app as dashboard
    dashboard.serve(host=host, port=port, workers=workers, threads=threads)


@app.command()
def demo(as_json: bool = JSON_OPT) -> None:
    """A sample incident located, graded and ranked on the real data, printed as tables."""
    from command.cli.response import demo_incident
    out.emit(demo_incident(), as_json, out.demo_text)


@data_app.command("build")
def data_build(shared: Path = typer.Option(Path("../shared/data"), "--shared"),
               out_dir: Path = typer.Option(Path("data"), "--out")) -> None:
    """Rebuild data/ from ../shared/data (copies the real sources, regenerates the seeded demo layers)."""
    from layers.build import build_data
    files = build_data(shared, out_dir)
    typer.echo(f"wrote {len(files)} files under {out_dir}")


@cap_app.command("ingest")
def cap_ingest(file: Path, as_json: bool = JSON_OPT,
               report: bool = typer.Option(False, "--report", help="also open a live incident from it"),
               type_: Optional[str] = typer.Option(None, "--type", help="incident type when the event "
                                                   "maps to none")) -> None:
    """Read an official CAP warning safely (no entities, no network) and show what it says."""
    from command.alerts import ingest as ci
    got = ci.ingest_file(file)
    result = out.asdict(got)
    if report:
        from command.cli.response import incident_from_cap
        result["incident"] = incident_from_cap(got, type_=type_)
    out.emit(result, as_json, lambda d: out.kv(d))


def _register_response_commands() -> None:
    from command.cli.admin import admin_app, audit_app, tokens_app, users_app
    from command.cli.response import alert_app, incident_app, outbox_app
    app.add_typer(incident_app, name="incident")
    app.add_typer(alert_app, name="alert")
    app.add_typer(outbox_app, name="outbox")
    app.add_typer(users_app, name="users")
    app.add_typer(tokens_app, name="tokens")
    app.add_typer(audit_app, name="audit")
    app.add_typer(admin_app, name="admin")
    from command.cli import cap as cap_cli
    cap_cli.register(cap_app)           # yzt cap verify
    from command.cli import intake as intake_cli
    intake_cli.register(app)            # yzt intake TEXT | --batch FILE
    from command.cli import db as db_cli
    db_cli.register(app)                # yzt db backup FILE | restore FILE


_register_response_commands()


def main(argv: list[str] | None = None) -> int:
    """Entry point: runs a command and turns every refusal into one line and an exit status. Run as its own
    process (``argv`` None), what the command loads lives until it exits: the loaded data is frozen out of
    the collector's passes (``incidents.cache.freeze_loaded``)."""
    if argv is None:
        from incidents import cache
        cache.freeze_loaded()
    code = out.run_guarded(typer.main.get_command(app), argv)
    if argv is None:
        sys.exit(code)
    return code


if __name__ == "__main__":  # pragma: no cover
    main()
