"""How the CLI speaks: JSON or readable text on stdout, one clear line on stderr for a refusal.

``run_guarded`` is the only place a command's errors are turned into exit statuses:
0 success, 2 refused input (the package error trees, settings, usage), 1 anything else (the traceback
goes to ``var/yzt-error.log``, never to the user's screen).
"""
from __future__ import annotations

import dataclasses
import getpass
import datetime as dt
import json
import sys
import traceback
from pathlib import Path
from typing import Any, Callable

import click
import typer

from command.errors import CommandError
from incidents.errors import IncidentError
from layers.errors import LayerError
from settings import SettingsError, get_settings

JSON_OPT = typer.Option(False, "--json", help="print one JSON object on stdout")


def settings():
    """The settings of this command, read once at the door (the settings file, then the environment)."""
    from incidents import cache
    s = get_settings()
    cache.configure(Path(s.var_dir) / "cache")      # built indexes and tables, keyed by their inputs' content
    return s


def open_app():
    """Store, outbox, catalogue and services for this command (``command.compose``), from its settings."""
    from command import compose
    return compose.open_app(settings())


def catalog():
    """The layer catalogue of this command's settings (shipped data, imported registries)."""
    from layers.catalog import Catalog
    return Catalog.of(settings())


def cli_actor() -> str:
    """Who acts from the command line: the local operator's login name."""
    try:
        return f"cli:{getpass.getuser()}"
    except Exception:  # noqa: BLE001 - no user name in some containers
        return "cli"


REFUSALS = (IncidentError, LayerError, CommandError, SettingsError)
try:   # typer >= 0.22 runs on its own vendored click: its usage errors are not click's classes
    from typer._click.exceptions import UsageError as _TyperUsageError
    USAGE_ERRORS: tuple[type[Exception], ...] = (click.exceptions.UsageError, _TyperUsageError)
except ImportError:  # pragma: no cover - older typer uses click itself
    USAGE_ERRORS = (click.exceptions.UsageError,)


def _say(msg: str) -> None:
    sys.stderr.write(f"yzt: {msg}\n")


def _log_internal(exc: BaseException) -> Path | None:
    try:
        var = settings().var_dir
        var.mkdir(parents=True, exist_ok=True)
        path = var / "yzt-error.log"
        with path.open("a", encoding="utf-8") as f:
            f.write(f"--- {dt.datetime.now().isoformat()} {' '.join(sys.argv)}\n")
            f.write("".join(traceback.format_exception(exc)))
        return path
    except Exception:  # logging must never hide the original failure
        return None


def run_guarded(command: click.Command, argv: list[str] | None) -> int:
    try:
        rv = command.main(args=argv, prog_name="yzt", standalone_mode=False)
    except USAGE_ERRORS as e:
        _say(" ".join(e.format_message().split()) or "give a command (see the help above)")
        return 2
    except click.exceptions.Exit as e:
        return e.exit_code
    except click.exceptions.Abort:
        _say("aborted")
        return 130
    except REFUSALS as e:
        _say(str(e).splitlines()[0] if str(e) else type(e).__name__)
        return 2
    except KeyboardInterrupt:
        _say("interrupted")
        return 130
    except BrokenPipeError:
        return 0
    except Exception as e:  # noqa: BLE001 - the one place an unexpected failure is reported
        log = _log_internal(e)
        where = f" (details in {log})" if log else ""
        _say(f"internal error: {type(e).__name__}: {str(e)[:200]}{where}")
        return 1
    return rv if isinstance(rv, int) else 0


def read_text_file(path: Path) -> str:
    try:
        return Path(path).read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise CommandError(f"{path}: no such file") from None
    except UnicodeDecodeError as e:
        raise CommandError(f"{path}: not UTF-8 text (byte {e.start})") from None
    except OSError as e:
        raise CommandError(f"{path}: cannot be read ({e.strerror})") from None


def _default(o: Any) -> Any:
    if dataclasses.is_dataclass(o):
        return asdict(o)
    if hasattr(o, "model_dump"):
        return o.model_dump()
    if isinstance(o, (dt.datetime, dt.date)):
        return o.isoformat()
    if isinstance(o, Path):
        return str(o)
    if hasattr(o, "item"):  # numpy scalars
        return o.item()
    if isinstance(o, (set, tuple)):
        return list(o)
    return str(o)


def asdict(obj: Any) -> dict:
    if hasattr(obj, "as_dict"):
        return obj.as_dict()
    if dataclasses.is_dataclass(obj):
        return {f.name: getattr(obj, f.name) for f in dataclasses.fields(obj)}
    if hasattr(obj, "model_dump"):
        return obj.model_dump()
    return dict(obj)


def to_json(obj: Any) -> str:
    return json.dumps(obj, ensure_ascii=False, default=_default)


def emit(obj: Any, as_json: bool, text: Callable[[Any], str]) -> None:
    if as_json:
        sys.stdout.write(to_json(obj) + "\n")
    else:
        sys.stdout.write(text(obj).rstrip("\n") + "\n")


# ------------------------------------------------------------------------------------------ text views
def _cell(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:,.1f}" if abs(v) >= 1000 else str(round(v, 6))
    if v is None:
        return ""
    return str(v)


def table(rows: list[dict], columns: list[str] | None = None) -> str:
    """A plain aligned table (wide East Asian characters counted as two columns)."""
    if not rows:
        return "(none)"
    import unicodedata

    def width(s: str) -> int:
        return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in s)

    cols = columns or list(rows[0].keys())
    cells = [[_cell(r.get(c)) for c in cols] for r in rows]
    widths = [max(width(c), *(width(row[i]) for row in cells)) for i, c in enumerate(cols)]

    def line(vals: list[str]) -> str:
        return "  ".join(v + " " * (w - width(v)) for v, w in zip(vals, widths)).rstrip()

    return "\n".join([line(cols), line(["-" * w for w in widths])] + [line(r) for r in cells])


def kv(d: dict, keys: list[str] | None = None) -> str:
    keys = keys or [k for k, v in d.items() if not isinstance(v, (list, dict))]
    return "\n".join(f"{k}: {_cell(d.get(k))}" for k in keys)


def location_text(d: dict) -> str:
    s = kv(d, ["matched", "precision", "matched_level", "lon", "lat", "crs", "uncertainty_m", "district_name",
               "district_adcode", "city_name", "confidence", "source"])
    if d.get("township"):
        t = d["township"]
        s += f"\nnearest township (approximate): {t['name']} {t['code']}, {t['distance_m']} m"
    for note in d.get("notes", []):
        s += f"\nnote: {note}"
    if len(d.get("candidates", [])) > 1:
        s += "\ncandidates:\n" + table(d["candidates"], ["name", "precision", "district_adcode", "score"])
    return s


def grade_text(d: dict) -> str:
    r = d["rule"]
    return (f"{d['name']} ({d['level']}) {d['colour']}色  CAP severity {d['cap_severity']}\n"
            f"rule: {r['law']} {r['article']} — {r['criterion']}")


def nearby_text(d: dict) -> str:
    """A layer's nearby table; around an uncertain point a line says the distances are approximate."""
    tag = "  [synthetic demo layer — not real records]" if d.get("synthetic") else ""
    items = d["items"]
    cols = ["id", "name", "distance_m", "lon", "lat"]
    if items and "drive_time_s" in items[0]:
        cols += ["drive_time_s", "drive_time_method"]
    head = f"{d['layer']}{tag}\n"
    u = d.get("uncertainty_m") or next((i.get("distance_uncertainty_m") for i in items if i.get("approximate")), 0)
    if d.get("approximate") or any(i.get("approximate") for i in items):
        cols.append("in_uncertainty_area")
        head += (f"approximate: the place may lie up to {u:,.0f} m from the point, so each distance is "
                 f"± {u:,.0f} m\n")
    return head + table(items, cols)


def layer_info_dict(info: Any) -> dict:
    d = asdict(info)
    return {k: d.get(k) for k in ("name", "rows", "source", "synthetic", "crs", "licence", "description")
            if k in d}


def drill_text(d: dict) -> str:
    lines = [f"drill: {d['scenario']} ({d['status']})"]
    for key, inc in d["incidents"].items():
        loc = inc["location"]
        lines.append(f"incident {key}: {loc.get('matched')} [{loc.get('precision')}] -> level {inc['level']}; "
                     f"{len(inc['group']['members'])} in the group; {len(inc['alerts'])} alerts")
    lines.append(f"deliveries: live {d['deliveries']['live']}, exercise {d['deliveries']['exercise']}")
    for c in d.get("checks", []):
        mark = "PASS" if c["passed"] else "FAIL"
        lines.append(f"{mark} {c['incident']}.{c['field']}: expected {c['expected']}, got {c['actual']}")
    return "\n".join(lines)


def demo_text(d: dict) -> str:
    parts = [f"sample incident: {d['address']} ({d['type']})",
             location_text(d["location"]), "", grade_text(d["grade"])]
    for layer, items in d["nearby"].items():
        parts += ["", nearby_text({"layer": layer, "synthetic": d["synthetic"].get(layer), "items": items})]
    return "\n".join(parts)
