"""``yzt intake``: what a caller's words say (contracts/cli.md).

    yzt intake "广州市天河区体育西路191号 写字楼火灾 5人被困" [--json]
    yzt intake --batch calls.txt          (one text per line; one JSON object per line out, in order)

Settings are read once here, at the door, and passed down: the data folder, the missing-persons rule and,
when a Tianditu key is configured, the online geocoder.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Optional

import click
import typer

from command.cli import output as out

FIELDS_ZH = {"deaths": "死亡", "serious_injuries": "重伤", "injured": "其他受伤", "missing": "失踪", "trapped": "被困"}


def _kwargs() -> dict:
    s = out.settings()
    return {"data_dir": s.data_dir, "missing_count_as_deaths": s.missing_count_as_deaths,
            "settings": s if s.tianditu_key else None}


def intake_text(d: dict) -> str:
    """The readable answer: each field, and 'unknown' where the words say nothing."""
    lines = [f"type: {d['type'] or 'unknown'}"]
    approx = d.get("approximate") or {}
    for f, zh in FIELDS_ZH.items():
        v = d["casualties"][f]
        shown = "unknown" if v is None else str(v)
        if f in approx:
            shown += f" ({approx[f]['said']}: {'at least' if approx[f]['bound'] == 'at_least' else 'about'})"
        lines.append(f"{zh} {f}: {shown}")
    lines.append(f"place: {d['place'] or 'unknown'}")
    loc = d.get("location")
    if loc:
        lines.append(f"location: {loc['matched']} [{loc['precision']}] {loc['lon']},{loc['lat']} "
                     f"± {loc.get('uncertainty_m')} m (district {loc.get('district_adcode')})")
    else:
        lines.append("location: unknown")
    g = d.get("grade")
    lines.append(f"level: {g['name']} ({g['level']}) — {g['rule']['criterion']}" if g else "level: unknown")
    for n in d.get("notes", []):
        lines.append(f"note: {n}")
    return "\n".join(lines)


def register(app: typer.Typer) -> None:
    @app.command("intake")
    def intake(
        text: Optional[str] = typer.Argument(None, help="what the caller said, or a report's sentence"),
        batch: Optional[Path] = typer.Option(None, "--batch", help="a file with one text per line"),
        as_json: bool = out.JSON_OPT,
    ) -> None:
        """Read a call's text: incident type, casualties, place, location and the grade they give."""
        from incidents import intake as reader
        if (text is None) == (batch is None):
            raise click.UsageError("give exactly one of TEXT or --batch FILE")
        kw = _kwargs()
        if batch is not None:
            for item in reader.read_batch(out.read_text_file(batch).splitlines(), **kw):
                sys.stdout.write(json.dumps(item, ensure_ascii=False) + "\n")
            return
        out.emit(reader.read(text, **kw).as_dict(), as_json, intake_text)


def fill_from_text(text: str, *, type_, address, point, deaths, serious, missing, description):
    """`yzt incident report --text`: what the words say fills what the officer did not give (given wins)."""
    from incidents import intake as reader
    r = reader.read(text, **_kwargs())
    c = r.casualties
    return (type_ or r.type,
            address or (r.place if point is None or r.place else None),
            deaths if deaths is not None else c.deaths,
            serious if serious is not None else c.serious_injuries,
            missing if missing is not None else c.missing,
            description or text)
