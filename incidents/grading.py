"""Grading an incident by China's four levels (特别重大 I / 重大 II / 较大 III / 一般 IV).

The rules are data, not code: ``data/grading/*.yaml`` holds one table per standard with its citation
(``production_safety``: 《生产安全事故报告和调查处理条例》第三条; ``fire``; ``geological_disaster``;
``earthquake``; ``environmental``; ...), ``incident_types.yaml`` maps each incident type to its category of
the national overall plan (natural_disaster / accident / public_health / social_safety), its table (or says
there is no national grading standard: ``no_standard``), its CAP category and the words a caller uses for it;
``levels.yaml`` names the levels. Everything is read lazily on first use and validated with
pydantic: a broken table is refused with one line naming the file and the key.

    from incidents.grading import grade, incident_types, level_info
    from incidents.model import Casualties
    g = grade("gas_explosion", Casualties(deaths=1, serious_injuries=60))
    g.level, g.name, g.rule.criterion      # "II", "重大", "重伤（包括急性工业中毒）50人以上100人以下 (...)"
    incident_types()["fire"].cap_category  # "Fire"
    level_info("III")                      # {"level": "III", "name": "较大", "colour": "黄", ...}

Rules: each band is a LOWER bound, inclusive ("以上" includes the number, "以下" excludes it). The criteria
are joined by "or": the level is the highest any single criterion reaches, and the rule names that
criterion (all of them when several reach it). Missing persons count with deaths when
``missing_count_as_deaths`` (default True, the settings' default; the door passes the deployment's value) or
when the table's text says so (含失踪). IV is the floor: any reported incident is at least 一般; a type with no
national grading standard is graded at that floor and its rule says so. Bad input raises ``GradingError``.

Settings are not read here: every function takes ``data_dir`` (default: the bundled data folder).
"""
from __future__ import annotations

import functools
import math
import numbers
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from incidents.errors import GradingError
from incidents.model import LEVELS, Casualties, Grade, Rule
from settings import ROOT, load_yaml_model, shown

CAP_CATEGORIES: tuple[str, ...] = ("Geo", "Met", "Safety", "Security", "Rescue", "Fire", "Health", "Env",
                                   "Transport", "Infra", "CBRNE", "Other")
CapCategory = Literal["Geo", "Met", "Safety", "Security", "Rescue", "Fire", "Health", "Env",
                      "Transport", "Infra", "CBRNE", "Other"]
BandLevel = Literal["I", "II", "III"]
LEVELS_FILE = "levels.yaml"
TYPES_FILE = "incident_types.yaml"
_COUNTS = ("deaths", "serious_injuries", "missing")
DEFAULT_DATA_DIR = ROOT / "data"
_DEFAULT_GRADING = DEFAULT_DATA_DIR / "grading"
MISSING_COUNT_AS_DEATHS = True     # the default of settings.missing_count_as_deaths
# The four categories of 《国家突发公共事件总体应急预案》 1.3 (自然灾害 / 事故灾难 / 公共卫生事件 / 社会安全事件).
CATEGORIES: dict[str, str] = {"natural_disaster": "自然灾害", "accident": "事故灾难",
                              "public_health": "公共卫生事件", "social_safety": "社会安全事件"}
NO_STANDARD_LAW = "无国家数值分级标准 (no national numeric grading standard)"


# ------------------------------------------------------------------------------------------ schema
class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Source(_Strict):
    """Where a table's numbers come from. ``secondary`` marks numbers not read from the primary text."""

    law: str = Field(min_length=1)
    article: str = Field(min_length=1)
    issuer: str = Field(min_length=1)
    year: int = Field(ge=1949, le=2100)
    secondary: bool
    note: str = ""


class Criterion(_Strict):
    """One criterion of a table: a measured quantity and the lower bound of each level it can reach."""

    key: str = Field(min_length=1)
    measure: Literal["deaths", "serious_injuries", "economic_loss_cny"]
    missing: Literal["setting", "always", "never"] | None = None
    zh: str = Field(min_length=1)
    en: str = Field(min_length=1)
    unit_zh: Literal["人", "元"]
    bands: dict[BandLevel, int]

    @model_validator(mode="after")
    def _check(self) -> Criterion:
        if self.missing is not None and self.measure != "deaths":
            raise ValueError(f"criterion {self.key}: 'missing' applies only to measure deaths")
        if not self.bands:
            raise ValueError(f"criterion {self.key}: bands must name at least one of I, II, III")
        present = [(lv, self.bands[lv]) for lv in ("I", "II", "III") if lv in self.bands]
        if any(v <= 0 for _, v in present):
            raise ValueError(f"criterion {self.key}: every band must be a positive lower bound")
        for (hi_lv, hi), (lo_lv, lo) in zip(present, present[1:]):
            if hi <= lo:
                raise ValueError(f"criterion {self.key}: band {hi_lv} ({hi}) must be above band {lo_lv} ({lo})")
        return self

    @property
    def missing_mode(self) -> str:
        if self.measure != "deaths":
            return "never"
        return self.missing or "setting"


class Table(_Strict):
    """One grading standard (a file of data/grading/)."""

    format: Literal[1]
    key: str
    title_zh: str
    title_en: str
    source: Source
    criteria: list[Criterion] = Field(min_length=1)


class LevelDef(_Strict):
    name: str
    colour: str
    colour_en: str
    cap_severity: Literal["Extreme", "Severe", "Moderate", "Minor"]
    en: str


class LevelsFile(_Strict):
    format: Literal[1]
    source: Source
    levels: dict[Literal["I", "II", "III", "IV"], LevelDef]

    @model_validator(mode="after")
    def _all_four(self) -> LevelsFile:
        missing = [lv for lv in LEVELS if lv not in self.levels]
        if missing:
            raise ValueError(f"levels {missing} are not defined")
        return self


class _Refine(_Strict):
    """Read as this type instead of ``type`` when the text also says one of ``when`` (爆炸 + 燃气 -> gas_explosion)."""

    type: str = Field(min_length=1)
    when: tuple[str, ...] = Field(min_length=1)


class _TypeEntry(_Strict):
    zh: str = Field(min_length=1)
    en: str = Field(min_length=1)
    category: Literal["natural_disaster", "accident", "public_health", "social_safety"]
    table: str | None = None
    no_standard: str = ""          # why there is no table: no national numeric grading standard
    cap_category: CapCategory
    cap_event_zh: str = Field(min_length=1)
    cap_event_en: str = Field(min_length=1)
    aliases: tuple[str, ...] = ()
    words: tuple[str, ...] = ()    # what callers and reports say (起火, 着火): read by incidents/intake.py
    weak_words: tuple[str, ...] = ()   # say the type only when no other type's word is said (货车, 皮卡)
    priority: int = Field(default=0, ge=0, le=100)   # which type wins when a text says several
    refines: _Refine | None = None
    note: str = ""

    @model_validator(mode="after")
    def _table_or_why_not(self) -> _TypeEntry:
        if (self.table is None) == (not self.no_standard):
            raise ValueError("give either a grading table or no_standard (why there is no national standard)")
        return self


class IncidentType(_TypeEntry):
    """An incident type of the catalogue: its names, grading table and CAP category/event."""

    key: str


class TypesFile(_Strict):
    format: Literal[1]
    types: dict[str, _TypeEntry] = Field(min_length=1)


# ------------------------------------------------------------------------------------------ loading
@dataclass(frozen=True)
class Catalogue:
    """Everything read from one grading folder, validated."""

    directory: Path
    levels: LevelsFile
    tables: dict[str, Table]
    types: dict[str, IncidentType]
    names: dict[str, str]          # every accepted spelling (key, alias, zh; lower-cased) -> type key
    words: dict[str, str]          # every word intake reads (zh, aliases, words) -> type key
    weak_words: dict[str, str]     # words that give a type only when no other type word is said


def _validate(model: type[BaseModel], path: Path) -> Any:
    """One file of the folder, read and validated by the house's one YAML reader: any fault is one
    ``GradingError`` naming the file, the line and the key."""
    if not path.is_file():
        raise GradingError(f"grading table {path}: file not found")
    return load_yaml_model(path, model, what="grading table", error=GradingError)


def _name_index(types: dict[str, IncidentType], path: Path) -> dict[str, str]:
    names: dict[str, str] = {}
    for key, t in types.items():
        for spelling in (key, t.zh, *t.aliases):
            s = spelling.strip().lower()
            if names.get(s, key) != key:
                raise GradingError(f"grading table {path}: types.{key}: name {spelling!r} is also used by "
                                   f"types.{names[s]}")
            names[s] = key
    return names


def _word_index(types: dict[str, IncidentType], path: Path) -> dict[str, str]:
    words: dict[str, str] = {}
    for key, t in types.items():
        for w in (t.zh, *t.aliases, *t.words):
            if not w or w.isascii():
                continue
            if words.get(w, key) != key:
                raise GradingError(f"grading table {path}: types.{key}: word {w!r} is also used by "
                                   f"types.{words[w]}")
            words[w] = key
    return words


@functools.lru_cache(maxsize=4)
def load_catalogue(directory: Path) -> Catalogue:
    """Read and validate a grading folder (cached per folder). Raises ``GradingError`` naming file and key."""
    directory = Path(directory)
    if not directory.is_dir():
        raise GradingError(f"grading tables folder {directory} does not exist")
    levels = _validate(LevelsFile, directory / LEVELS_FILE)
    tables: dict[str, Table] = {}
    for path in sorted(directory.glob("*.yaml")):
        if path.name in (LEVELS_FILE, TYPES_FILE):
            continue
        table = _validate(Table, path)
        if table.key != path.stem:
            raise GradingError(f"grading table {path}: key: {table.key!r} must match the file name {path.stem!r}")
        tables[table.key] = table
    types_path = directory / TYPES_FILE
    raw = _validate(TypesFile, types_path)
    types: dict[str, IncidentType] = {}
    for key, entry in raw.types.items():
        if entry.refines is not None and entry.refines.type not in raw.types:
            raise GradingError(f"grading table {types_path}: types.{key}.refines.type: no type "
                               f"{entry.refines.type!r}")
        if entry.table is not None and entry.table not in tables:
            raise GradingError(f"grading table {types_path}: types.{key}.table: no grading table "
                               f"{entry.table!r} (have: {', '.join(sorted(tables))})")
        types[key] = IncidentType(key=key, **entry.model_dump())
    words = _word_index(types, types_path)
    weak: dict[str, str] = {}
    for key, t in types.items():
        for w in t.weak_words:
            if w in words or weak.get(w, key) != key:
                raise GradingError(f"grading table {types_path}: types.{key}: weak word {w!r} is also used by "
                                   f"types.{words.get(w) or weak[w]}")
            weak[w] = key
    return Catalogue(directory, levels, tables, types, _name_index(types, types_path), words, weak)


def catalogue(data_dir: Path | None = None) -> Catalogue:
    """The catalogue of ``data_dir / "grading"`` (default: the bundled data folder)."""
    if data_dir is None:
        return load_catalogue(_DEFAULT_GRADING)
    return load_catalogue(Path(data_dir) / "grading")


def clear_cache() -> None:
    """Forget loaded tables (after editing the YAML in a running process)."""
    load_catalogue.cache_clear()


# ------------------------------------------------------------------------------------------ public API
def incident_types(*, data_dir: Path | None = None) -> dict[str, IncidentType]:
    """The incident type catalogue, keyed by type key, in the file's order."""
    return dict(catalogue(data_dir).types)


def tables(*, data_dir: Path | None = None) -> dict[str, Table]:
    """The grading tables, keyed by table key (file name)."""
    return dict(catalogue(data_dir).tables)


def level_info(level: str, *, data_dir: Path | None = None) -> dict:
    """Name, colour, CAP severity and English name of a level ("I".."IV")."""
    lv = catalogue(data_dir).levels.levels.get(level)  # type: ignore[call-overload]
    if lv is None:
        raise GradingError(f"unknown level {level!r}: use one of I, II, III, IV")
    return {"level": level, "name": lv.name, "colour": lv.colour, "colour_en": lv.colour_en,
            "cap_severity": lv.cap_severity, "en": lv.en}


def resolve_type(type: str, *, data_dir: Path | None = None) -> str:
    """The catalogue key of a type given by key, alias or Chinese name (``"交通事故"`` -> ``"traffic"``)."""
    cat = catalogue(data_dir)
    if not isinstance(type, str) or not type.strip():
        raise GradingError(f"incident type must be a non-empty name, got {type!r}")
    key = cat.names.get(type.strip().lower())
    if key is None:
        some = ", ".join(list(cat.types)[:8])
        raise GradingError(f"unknown incident type {shown(type)}: known types are {some}, ... "
                           f"({len(cat.types)} in all: `yzt types` lists them)")
    return key


def grade(type: str, casualties: Casualties | Mapping[str, int], economic_loss_cny: float = 0, *,
          missing_count_as_deaths: bool | None = None, data_dir: Path | None = None) -> Grade:
    """Grade an incident by its type's table; the rule names the law, article and criterion that fired.

    ``missing_count_as_deaths``: the deployment's ``settings.missing_count_as_deaths``, passed down by the
    caller (None: the settings' default, True). ``data_dir``: whose grading tables (default: bundled).
    """
    cat = catalogue(data_dir)
    key = resolve_type(type, data_dir=data_dir)
    counts = _counts(casualties)
    loss = _loss(economic_loss_cny)
    if missing_count_as_deaths is None:
        missing_count_as_deaths = MISSING_COUNT_AS_DEATHS
    entry = cat.types[key]
    if entry.table is None:
        info = cat.levels.levels["IV"]
        rule = Rule(law=NO_STANDARD_LAW, article="—",
                    criterion=f"{entry.no_standard} 一般 (IV) is the floor: the officer sets the level")
        return Grade(level="IV", name=info.name, colour=info.colour, cap_severity=info.cap_severity,
                     rule=rule, category="")
    table = cat.tables[entry.table]
    hits = [h for c in table.criteria
            if (h := _evaluate(c, counts, loss, bool(missing_count_as_deaths))) is not None]
    if hits:
        rank = max(h.rank for h in hits)
        level = LEVELS[rank]
        text = "；".join(h.text for h in hits if h.rank == rank)
    else:
        level, text = "IV", _floor_text(table)
    if counts["missing"] and not missing_count_as_deaths and any(
            c.missing_mode == "setting" for c in table.criteria):
        text += f"; missing {counts['missing']} not counted with deaths (settings.missing_count_as_deaths off)"
    info = cat.levels.levels[level]
    rule = Rule(law=table.source.law, article=table.source.article, criterion=text)
    return Grade(level=level, name=info.name, colour=info.colour, cap_severity=info.cap_severity,  # type: ignore[arg-type]
                 rule=rule, category=table.key)


# ------------------------------------------------------------------------------------------ rules
@dataclass(frozen=True)
class _Hit:
    rank: int       # 1 (III) .. 3 (I)
    text: str


def _counts(casualties: Any) -> dict[str, int]:
    if isinstance(casualties, Mapping):
        unknown = set(casualties) - set(_COUNTS)
        if unknown:
            raise GradingError(f"casualties: unknown field(s) {sorted(unknown)}: use {', '.join(_COUNTS)}")
        get = casualties.get
    elif all(hasattr(casualties, n) for n in _COUNTS):
        def get(n: str, d: int = 0) -> Any:
            return getattr(casualties, n)
    else:
        raise GradingError(f"casualties must be a Casualties or a mapping of {', '.join(_COUNTS)}, "
                           f"got {type(casualties).__name__}")
    out = {}
    for n in _COUNTS:
        v = get(n, 0)
        if isinstance(v, bool) or not isinstance(v, numbers.Integral) or v < 0:
            raise GradingError(f"casualties.{n} must be a whole number >= 0, got {v!r}")
        out[n] = int(v)
    return out


def _loss(v: Any) -> float:
    if isinstance(v, bool) or not isinstance(v, numbers.Real) or not math.isfinite(v) or v < 0:
        raise GradingError(f"economic_loss_cny must be a finite number of yuan >= 0, got {v!r}")
    return float(v)


def _fmt(n: float, unit: str) -> str:
    """Chinese statutory wording of a bound: 30 -> "30人", 50000000 -> "5000万元", 1e8 -> "1亿元"."""
    if unit == "元":
        n = int(n)
        if n % 100_000_000 == 0:
            return f"{n // 100_000_000}亿元"
        if n % 10_000 == 0:
            return f"{n // 10_000}万元"
    return f"{int(n)}{unit}"


def _num(v: float) -> str:
    return f"{int(v):,}" if float(v).is_integer() else f"{v:,.2f}"


def _band_text(c: Criterion, level: str, zh: str) -> str:
    order = [lv for lv in ("I", "II", "III") if lv in c.bands]
    i = order.index(level)
    low = f"{zh}{_fmt(c.bands[level], c.unit_zh)}以上"
    if i == 0:
        return low
    return f"{low}{_fmt(c.bands[order[i - 1]], c.unit_zh)}以下"


def _evaluate(c: Criterion, counts: dict[str, int], loss: float, count_missing: bool) -> _Hit | None:
    """The highest level this criterion reaches and its wording, or None below every band."""
    if c.measure == "economic_loss_cny":
        value: float = loss
        shown = f"{c.en} {_num(loss)}"
    else:
        value = counts[c.measure]
        shown = f"{c.en} {value}"
    zh = c.zh
    with_missing = c.missing_mode == "always" or (c.missing_mode == "setting" and count_missing)
    if c.measure == "deaths" and with_missing and counts["missing"]:
        value = counts["deaths"] + counts["missing"]
        shown = f"deaths {counts['deaths']} + missing {counts['missing']} = {value}"
        if "失踪" not in zh:
            zh = f"{zh}（含失踪）"
    for level in ("I", "II", "III"):
        bound = c.bands.get(level)  # type: ignore[call-overload]
        if bound is not None and value >= bound:
            note = "; missing counted with deaths" if c.measure == "deaths" and with_missing \
                and counts["missing"] and c.missing_mode == "setting" else ""
            return _Hit(LEVELS.index(level),
                        f"{_band_text(c, level, zh)} ({shown} >= {_num(bound)}{note})")
    return None


def _floor_text(table: Table) -> str:
    parts = []
    for c in table.criteria:
        lowest = [lv for lv in ("I", "II", "III") if lv in c.bands][-1]
        parts.append(f"{c.zh}{_fmt(c.bands[lowest], c.unit_zh)}以下")
    return f"一般：{'、'.join(parts)} (below every 较大 threshold; IV is the floor: any reported incident is at least 一般)"
