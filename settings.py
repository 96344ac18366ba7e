"""The one settings module of 粤政图.

Precedence: defaults < the YAML settings file < environment variables < explicit arguments.

    from settings import get_settings
    s = get_settings()                 # cached, read once per process
    s = load_settings(var_dir=tmp)     # explicit arguments win (tests, CLI flags)

Settings file: ``$YZT_CONFIG`` or ``./yzt.yaml`` when present. Example (all keys optional)::

    var_dir: var                       # runtime state: database, imported layers, outbox, caches
    database: var/yzt.db               # SQLite file (the embedded default)
    tianditu_key: null                 # enables the online Tianditu geocoder and basemap tiles
    basemap_url: null                  # any XYZ tile URL; the map works with none
    drill_speed: 0                     # `yzt drill run` without --speed: 0 = virtual clock
    session_cookie_secure: false       # true when the dashboard is served over https
    session_lifetime_h: 8
    channels:                          # broadcast channels, each marked live or exercise
      - {name: outbox-exercise, kind: outbox, mode: exercise}
      - {name: gd-webhook, kind: webhook, mode: live, url: "https://...", secret: "..."}

Environment: ``YZT_VAR_DIR``, ``YZT_DATABASE``, ``YZT_DATA_DIR``, ``YZT_TIANDITU_KEY``,
``YZT_BASEMAP_URL``, ``YZT_TIANDITU_GEOCODER_URL``, ``YZT_SECURE_COOKIES``, ``YZT_CONFIG``.

Only the doors read settings (``get_settings()`` in the CLI, app.py and ``command.compose``); everything
below is given what it needs.

This module must not import the rest of the project: everything else imports it.
"""
from __future__ import annotations

import functools
import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

ROOT = Path(__file__).resolve().parent

ChannelMode = Literal["live", "exercise"]


class SettingsError(ValueError):
    """The settings file or an environment variable is unusable; the message names which and why."""


class ChannelConfig(BaseModel):
    """One broadcast channel. ``mode`` decides whether it may ever carry an Actual message."""

    model_config = ConfigDict(extra="allow")

    name: str
    kind: str  # outbox | webhook | wecom | dingtalk | sms | cell_broadcast | a plugin's kind
    mode: ChannelMode
    max_attempts: int = Field(default=6, ge=1, le=50)
    rate_per_minute: int | None = Field(default=None, ge=1)
    # deliveries in flight at once on this channel (for a gateway that answers slowly); each incident's
    # messages still leave one after another, in the order they were made
    concurrency: int = Field(default=1, ge=1, le=32)

    @property
    def options(self) -> dict[str, Any]:
        """The channel-specific keys (url, secret, key, template, path...)."""
        return dict(self.model_extra or {})


def _default_channels() -> list[ChannelConfig]:
    # A fresh machine can run a drill end to end: one local file channel for exercises.
    return [ChannelConfig(name="outbox-exercise", kind="outbox", mode="exercise")]


class Settings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    data_dir: Path = Field(default=ROOT / "data", description="bundled, read-only layers and tables")
    var_dir: Path = Field(default=ROOT / "var", description="runtime state, written by the product")
    database: Path | str | None = Field(default=None, description="SQLite file (default var_dir/yzt.db) or the "
                                        "postgresql://... URL of a database shared by several servers")
    tianditu_key: str | None = None
    tianditu_geocoder_url: str = "https://api.tianditu.gov.cn/geocoder"
    conference_url_template: str = Field(
        default="https://meeting.example.invalid/yzt/{room}",
        description="join link of the group's video conference; {room} is filled in. Set to your bridge.")
    conference_dial: str | None = Field(default=None, description="phone bridge number, e.g. 020-12345678")
    geocoder_timeout_s: float = Field(default=3.0, gt=0)
    basemap_url: str | None = None
    # ---- public warnings (CAP): what receivers rely on; see command/alerts/cap.py and signing.py
    cap_org_code: str = Field(
        default="000", pattern=r"^\d{3}$",
        description="3-digit GB/T 35965.1 code of the issuing organisation, in every CAP identifier. "
        "000 is the placeholder: an Actual warning is refused until this is set")
    cap_contact: str = Field(
        default="广东省应急管理厅值班室 Guangdong Emergency Management duty office",
        description="CAP <contact>: who the public calls to confirm a warning (set the duty office's number)")
    public_base_url: str = Field(
        default="http://127.0.0.1:8050",
        description="the address the public reaches this app at; CAP <web> links "
        "{public_base_url}/warnings/{identifier}, the read-only page of the warning")
    cap_signing_key: Path | None = Field(
        default=None, description="PEM private key that signs every CAP message (XML-DSig). Unset: a "
        "self-signed key and certificate are made in var_dir/cap-signing/ on first use")
    cap_signing_cert: Path | None = Field(
        default=None, description="PEM X.509 certificate of cap_signing_key, embedded in each signature and "
        "used by `yzt cap verify`")
    channels: list[ChannelConfig] = Field(default_factory=_default_channels)
    two_person_levels: list[Literal["I", "II", "III", "IV"]] = Field(default_factory=lambda: ["I", "II"])
    missing_count_as_deaths: bool = Field(
        default=True, description="count missing persons with deaths when grading (a rule option)")
    drill_speed: float = Field(
        default=0, ge=0, description="`yzt drill run` without --speed: 0 = the virtual clock (no waiting), "
        "N = the scenario's own timeline N times faster")
    session_cookie_secure: bool = Field(
        default=False, description="mark the dashboard's cookies Secure: set it when served over https")
    session_lifetime_h: float = Field(default=8.0, gt=0, le=24 * 7, description="a sign-in lasts this many hours")
    # ---- trust at the door (issue 13): command/security/ and the doors read these, nothing below them
    session_idle_min: float = Field(
        default=30.0, gt=0, le=24 * 60, description="a dashboard session unused this many minutes ends (server-"
        "side: the session table); session_lifetime_h is the absolute limit from sign-in")
    trusted_proxy_header: str | None = Field(
        default=None, pattern=r"^[A-Za-z0-9-]{1,64}$", description="e.g. X-Forwarded-For or X-Real-IP: the "
        "client address a reverse proxy in front of the app writes. Unset: the header is ignored and the "
        "socket's address counts (a header anyone can send must never pick whose failures are counted)")
    trusted_proxy_hops: int = Field(
        default=1, ge=1, le=5, description="how many proxies append to trusted_proxy_header: the address that "
        "many places from its right end is the client's")
    audit_key_file: Path | None = Field(
        default=None, description="HMAC key of the audit chain, outside the database (made once, mode 0600). "
        "Default var_dir/audit_key; YZT_AUDIT_KEY (64 hex digits) in the environment wins over the file")
    audit_key_env: str | None = Field(default=None, repr=False, exclude=True,
                                      description="the audit HMAC key from YZT_AUDIT_KEY; never written out")
    audit_anchor_file: Path | None = Field(
        default=None, description="append-only file that receives the audit chain's tip after every write "
        "transaction (default: the database path + '.audit-anchor'); the yzt_audit_anchor hook gets it too")
    token_lifetime_days: int = Field(
        default=365, ge=1, le=5 * 365, description="an API token issued without --days expires after this")
    dashboard_max_body_bytes: int = Field(
        default=2 * 1024 * 1024, ge=64 * 1024, description="largest request body the dashboard accepts (413)")

    @field_validator("channels")
    @classmethod
    def _unique_channel_names(cls, v: list[ChannelConfig]) -> list[ChannelConfig]:
        names = [c.name for c in v]
        dup = {n for n in names if names.count(n) > 1}
        if dup:
            raise ValueError(f"channel names must be unique, repeated: {sorted(dup)}")
        return v

    @property
    def database_path(self) -> Path:
        """The SQLite file; with a postgresql:// database, var_dir/yzt.db names where local files beside it go."""
        is_url = isinstance(self.database, str) and self.database.startswith(("postgresql://", "postgres://"))
        return Path(self.database) if self.database and not is_url else (self.var_dir / "yzt.db")

    @property
    def audit_key_path(self) -> Path:
        return self.audit_key_file or (self.var_dir / "audit_key")

    @property
    def audit_anchor_path(self) -> Path:
        db = self.database_path
        return self.audit_anchor_file or db.with_name(db.name + ".audit-anchor")

    def channel(self, name: str) -> ChannelConfig:
        for c in self.channels:
            if c.name == name:
                return c
        raise SettingsError(f"no channel named {name!r} in the settings")


_ENV = {
    "YZT_DATA_DIR": "data_dir",
    "YZT_VAR_DIR": "var_dir",
    "YZT_DATABASE": "database",
    "YZT_TIANDITU_KEY": "tianditu_key",
    "YZT_BASEMAP_URL": "basemap_url",
    "YZT_TIANDITU_GEOCODER_URL": "tianditu_geocoder_url",
    "YZT_SECURE_COOKIES": "session_cookie_secure",
    "YZT_AUDIT_KEY": "audit_key_env",
}


def _config_path() -> Path | None:
    explicit = os.environ.get("YZT_CONFIG")
    if explicit:
        p = Path(explicit)
        if not p.is_file():
            raise SettingsError(f"YZT_CONFIG points to {p}, which is not a file")
        return p
    p = Path.cwd() / "yzt.yaml"
    return p if p.is_file() else None


def _read_file(path: Path) -> dict[str, Any]:
    data, _ = read_yaml(path, what="settings file", error=SettingsError)
    data = data or {}
    if not isinstance(data, dict):
        raise SettingsError(f"settings file {path}: expected a mapping of keys at the top")
    return data


def load_settings(**overrides: Any) -> Settings:
    """Build settings from defaults, the settings file, the environment, then ``overrides``."""
    values: dict[str, Any] = {}
    path = _config_path()
    if path:
        values.update(_read_file(path))
    for env, key in _ENV.items():
        if os.environ.get(env):
            values[key] = os.environ[env]
    values.update({k: v for k, v in overrides.items() if v is not None})
    try:
        return Settings(**values)
    except ValidationError as e:
        first = e.errors()[0]
        src = f"settings file {path}" if path else "settings"
        raise SettingsError(f"{src}: {'.'.join(map(str, first['loc']))}: {field_message(first)}") from None


@functools.lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings, read once."""
    return load_settings()


def reset_settings_cache() -> None:
    get_settings.cache_clear()


# ------------------------------------------------------------------ the product's YAML files, read one way
# Settings, duty rules, warning rules, grading tables and drill scenarios are all read by ``read_yaml`` and
# checked by ``validated``, so every refusal has one shape: "<what> <path>: line N: <field>: <why>", in the
# error class of the package that asked (SettingsError, SessionError, GradingError, ScenarioError...).

MAX_FILE_BYTES = 1_000_000     # the product's YAML files are kilobytes; bigger ones are refused unread
MAX_NODES = 100_000            # YAML nodes once aliases are expanded (refuses "billion laughs" bombs)
_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)   # libyaml when present: the same documents, faster


def shown(text: object, limit: int = 40) -> str:
    """repr() of user text for a refusal, cut to ``limit`` characters so the message stays one short line."""
    text = str(text)
    r = repr(text)
    return r if len(r) <= limit + 2 else f"{r[:limit + 1]}... ({len(text)} characters)"


class _Shape(ValueError):
    """A document refused for its shape (duplicate key, alias bomb, cycle) before it is built."""


class YamlLines:
    """YAML line numbers of every node, keyed by path (('events', 2, 'casualties', 'deaths'))."""

    def __init__(self, node: yaml.Node | None = None, *, max_nodes: int = MAX_NODES) -> None:
        self.lines: dict[tuple, int] = {}
        self.nodes, self.max_nodes = 0, max_nodes
        self.open: set[int] = set()     # nodes being walked: an alias back to one of them is a cycle
        if node is not None:
            self._walk(node, ())

    def _walk(self, node: yaml.Node, path: tuple) -> None:
        """Record lines; refuse cycles, expansion past max_nodes, duplicate or non-scalar keys (_Shape)."""
        line = node.start_mark.line + 1
        self.nodes += 1
        if self.nodes > self.max_nodes:
            raise _Shape(f"more than {self.max_nodes:,} YAML nodes once aliases are expanded "
                         "(an alias bomb?): refused")
        if id(node) in self.open:
            raise _Shape(f"line {line}: an alias refers to a node that contains it: refused")
        self.lines.setdefault(path, line)
        self.open.add(id(node))
        if isinstance(node, yaml.MappingNode):
            seen: set[str] = set()
            for k, v in node.value:
                kline = k.start_mark.line + 1
                if not isinstance(k, yaml.ScalarNode):
                    raise _Shape(f"line {kline}: a key must be a plain name, not a list or mapping")
                if k.value in seen and k.value != "<<":
                    raise _Shape(f"line {kline}: duplicate key {shown(k.value)}")
                seen.add(k.value)
                self.lines.setdefault(path + (k.value,), kline)
                if not isinstance(v, yaml.ScalarNode):   # a scalar's line is its key's line
                    self._walk(v, path + (k.value,))
        elif isinstance(node, yaml.SequenceNode):
            for i, item in enumerate(node.value):
                self._walk(item, path + (i,))
        self.open.discard(id(node))

    def line(self, path: tuple) -> int | None:
        while path:
            if path in self.lines:
                return self.lines[path]
            path = path[:-1]
        return None


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in pairs:
        if k in out:
            raise _Shape(f"duplicate key {shown(k)}")
        out[k] = v
    return out


def _parse(text: str, path: Path, max_nodes: int) -> tuple[Any, YamlLines]:
    if path.suffix.lower() == ".json":
        return json.loads(text, object_pairs_hook=_no_duplicates), YamlLines()
    loader = _LOADER(text)
    try:       # parse once: the node tree gives the lines (and refuses bombs and cycles) before it is built
        node = loader.get_single_node()
        lines = YamlLines(node, max_nodes=max_nodes)
        return (None if node is None else loader.construct_document(node)), lines
    finally:
        loader.dispose()


def read_yaml(path: str | Path, *, what: str, error: type[Exception] = SettingsError,
              max_bytes: int = MAX_FILE_BYTES, max_nodes: int = MAX_NODES) -> tuple[Any, YamlLines]:
    """The document of a YAML (or .json) file and its line numbers; any fault is one ``error`` line."""
    path = Path(path)
    head = f"{what} {path}".strip()
    try:
        size = path.stat().st_size
        if size > max_bytes:
            raise error(f"{head}: {size:,} bytes is over the {max_bytes:,}-byte limit")
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        why = (getattr(e, "strerror", None) or str(e).splitlines()[0] if str(e) else "")[:120]
        raise error(f"{head}: cannot be read ({e.__class__.__name__}: {why})") from None
    try:
        return _parse(text, path, max_nodes)
    except json.JSONDecodeError as e:
        raise error(f"{head}: line {e.lineno}: not valid JSON ({e.msg})") from None
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f"line {mark.line + 1}: " if mark else ""
        why = " ".join(str(getattr(e, "problem", None) or e).split())[:120]
        raise error(f"{head}: {where}not valid YAML ({why})") from None
    except _Shape as e:
        raise error(f"{head}: {e}") from None
    except RecursionError:
        raise error(f"{head}: nested too deeply") from None
    except ValueError as e:   # a date like 2024-02-30, an integer of thousands of digits
        raise error(f"{head}: a value cannot be read ({' '.join(str(e).split())[:120]})") from None


def field_message(err: dict[str, Any]) -> str:
    """The one wording of a pydantic error for a person: "unknown key", "required", the rule in words."""
    kind = err["type"]
    if kind == "extra_forbidden":
        return "unknown key"
    if kind == "missing":
        return "required"
    if kind == "literal_error":
        return f"{err['msg'].lower()}, got {shown(err.get('input'))}"
    msg = " ".join(err["msg"].removeprefix("Value error, ").split())
    return msg if len(msg) <= 160 else msg[:157] + "..."


def field_path(loc: tuple) -> str:
    """"casualties.deaths" for a pydantic location (union branch names such as "int" left out)."""
    parts = [str(p) if str(p).isprintable() and len(str(p)) <= 40 else shown(p, 30) for p in loc
             if not (isinstance(p, str) and "[" in p)]
    return ".".join(parts)


def validated(model: type[BaseModel], data: Any, *, path: str | Path, lines: YamlLines | None = None,
              what: str, error: type[Exception] = SettingsError,
              where: Callable[[tuple], str] | None = None, message: Callable[[dict], str] = field_message,
              **context: Any) -> Any:
    """``model`` validated from ``data`` read from ``path``, or one ``error``: "<what> <path>: line N:
    <field>: <why>" (``where`` may phrase the location, as a drill names its event; ``message`` the why)."""
    try:
        return model.model_validate(data, context=context or None)
    except ValidationError as e:
        first = e.errors()[0]
        loc = tuple(first["loc"])
        if where is not None:
            place = where(loc)
        else:
            line = lines.line(loc) if lines else None
            place = f"{what} {path}".strip() + (f": line {line}" if line else "")
            place += f": {field_path(loc)}" if field_path(loc) else ""
        raise error(f"{place}: {message(first)}") from None


def load_yaml_model(path: str | Path, model: type[BaseModel], *, what: str,
                    error: type[Exception] = SettingsError) -> Any:
    """Read and validate one YAML file in one step (duty rules, warning rules, grading tables)."""
    data, lines = read_yaml(path, what=what, error=error)
    return validated(model, data, path=path, lines=lines, what=what, error=error)
