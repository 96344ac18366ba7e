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
import os
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
    database: Path | None = Field(default=None, description="SQLite file; default var_dir/yzt.db")
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
        return self.database or (self.var_dir / "yzt.db")

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
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark else ""
        raise SettingsError(f"settings file {path}{where}: not valid YAML") from None
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
        loc = ".".join(str(p) for p in first["loc"])
        src = f"settings file {path}" if path else "settings"
        raise SettingsError(f"{src}: {loc}: {first['msg']}") from None


@functools.lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings, read once."""
    return load_settings()


def reset_settings_cache() -> None:
    get_settings.cache_clear()
