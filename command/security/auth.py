"""Who may do what: roles, the permission table, users with argon2 password hashes, system tokens.

    from command.security.auth import Users, Tokens, Principal, require
    users = Users(store)
    pw = users.add("王五", "officer")                  # a generated password, shown once
    me = users.authenticate("王五", pw, source="10.0.0.7")   # -> Principal(name, role, kind="user", source)
    require(me, "alert.draft")                          # returns me, or raises PermissionDenied
    token = Tokens(store).issue("119", role="officer")  # shown once; only its sha256 is stored
    system = Tokens(store).verify(token, source="10.0.0.9")

Roles are ordered ``viewer < officer < commander < admin``; ``ACTIONS`` gives each action its minimum role.
Sign-in is throttled: after ``MAX_FAILURES`` failed attempts for a name or from a source within
``WINDOW_S`` seconds, further attempts are refused until the oldest of them leaves the window. A refusal
never says whether the name exists. There is no default password: ``ensure_admin`` creates "admin" with a
random one only when no user exists and returns it once. Every change here is written to the audit log.
"""
from __future__ import annotations

import hashlib
import re
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Literal

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from command.errors import PermissionDenied, StoreError

ROLES = ("viewer", "officer", "commander", "admin")
ACTIONS: dict[str, str] = {
    "view": "viewer",
    "incident.report": "officer", "incident.update": "officer", "incident.note": "officer",
    "task.set": "officer", "task.done": "officer", "alert.draft": "officer",
    "alert.send": "commander", "alert.approve": "commander", "alert.cancel": "commander",
    "incident.close": "commander",
    "users.manage": "admin", "channels.manage": "admin", "layers.import": "admin",
    "exercise.run": "admin",
}
# The trainer: outside the ranking above, runs live exercises (exercise.run) and sees (view); no response action.
TRAINER_ACTIONS = frozenset({"view", "exercise.run"})
TOKEN_ROLES = ("viewer", "officer", "commander")     # a dispatch system is never an admin
MAX_FAILURES = 5
WINDOW_S = 15 * 60
MIN_PASSWORD = 12
MAX_PASSWORD = 256       # argon2 hashes any length; a megabyte "password" is a way to burn CPU, not a secret
MIN_STRENGTH = 3         # zxcvbn score 0..4: 3 = about 10^8 guesses or more ("safely unguessable" offline: 4)
PRODUCT_WORDS = ("yzt", "yuezhengtu", "粤政图", "guangdong", "广东", "emergency", "应急", "admin")
REFUSED = "sign-in refused: wrong name or password"
_NAME = re.compile(r"^[\w.@-]{1,64}$")
_HASHER = PasswordHasher()


@dataclass(frozen=True)
class Principal:
    """Someone acting: a signed-in user, a dispatch system with a token, or the local operator (cli)."""

    name: str
    role: str
    kind: Literal["user", "system"] = "user"
    source: str = "cli"
    scope: str = "440000"        # jurisdiction (command.security.scopes): the province, a city or a district


def role_at_least(role: str, needed: str) -> bool:
    """True when ``role`` ranks at or above ``needed`` (unknown roles rank nowhere)."""
    if role not in ROLES or needed not in ROLES:
        return False
    return ROLES.index(role) >= ROLES.index(needed)


def require(principal: Principal | None, action: str) -> Principal:
    """The principal when its role allows ``action``; else PermissionDenied in one line."""
    if action not in ACTIONS:
        raise PermissionDenied(f"unknown action {action!r} (known: {', '.join(ACTIONS)})")
    if principal is None:
        raise PermissionDenied(f"sign in first: {action} needs {ACTIONS[action]}")
    needed = ACTIONS[action]
    if principal.role == "trainer" and action in TRAINER_ACTIONS:
        return principal
    if not role_at_least(principal.role, needed):
        who = "user" if principal.kind == "user" else "system"
        raise PermissionDenied(f"{who} {principal.name} (role {principal.role}) may not {action}: needs {needed}")
    return principal


def local_operator(name: str) -> Principal:
    """The principal of someone at this machine's terminal (CLI, drills): a commander, source 'cli'.
    Whoever can run the CLI can open the database file itself, so the role is theirs already."""
    return Principal(name=name or "operator", role="commander", kind="user", source="cli")


def as_principal(actor: Principal | str) -> Principal:
    return actor if isinstance(actor, Principal) else local_operator(actor)


def _check_name(name: str, what: str = "user name") -> str:
    if not isinstance(name, str) or not _NAME.match(name):
        raise PermissionDenied(f"{what} {name!r} refused: 1-64 letters, digits, '.', '@', '_' or '-'")
    return name


def _check_role(role: str, allowed: tuple[str, ...] = ROLES) -> str:
    if role not in allowed:
        raise PermissionDenied(f"role {role!r} refused: one of {', '.join(allowed)}")
    return role


def _new_password() -> str:
    return secrets.token_urlsafe(15)          # 20 characters, 120 bits


def _check_password(password: str, name: str = "") -> str:
    """Long enough and hard to guess: zxcvbn (Dropbox's estimator: dictionaries, keyboard walks, repeats,
    sequences, dates, l33t) must score it ``MIN_STRENGTH`` or more, counting the user's name and the
    product's words as known to an attacker. "aaaaaaaaaaaa" and "password1234" are refused."""
    if not isinstance(password, str) or len(password) < MIN_PASSWORD:
        raise PermissionDenied(f"password refused: at least {MIN_PASSWORD} characters")
    if len(password) > MAX_PASSWORD:
        raise PermissionDenied(f"password refused: at most {MAX_PASSWORD} characters")
    from zxcvbn import zxcvbn
    verdict = zxcvbn(password[:100], user_inputs=[name, *PRODUCT_WORDS] if name else list(PRODUCT_WORDS))
    if verdict["score"] < MIN_STRENGTH:
        hint = verdict["feedback"].get("warning") or "too easy to guess"
        raise PermissionDenied(f"password refused: too easy to guess ({hint.rstrip('.')}); use four or more "
                               "unrelated words or a generated password")
    return password


class Users:
    """Users of the dashboard, stored with salted argon2id hashes. ``clock`` gives epoch seconds."""

    def __init__(self, store: Any, *, clock: Callable[[], float] = time.time) -> None:
        self.store = store
        self.clock = clock

    def add(self, name: str, role: str, password: str | None = None, *, actor: str = "cli",
            source: str = "cli") -> str:
        """Create a user; returns the password (generated when None) to show once."""
        _check_name(name)
        _check_role(role)
        password = _check_password(password, name) if password is not None else _new_password()
        try:
            self.store.add_user(name, role, _HASHER.hash(password), actor=actor, source=source)
        except StoreError:
            raise PermissionDenied(f"user {name!r} already exists") from None
        return password

    def ensure_admin(self, *, source: str = "cli") -> str | None:
        """When no user exists, create "admin" with a random password and return it (once); else None."""
        if self.store.users():
            return None
        password = _new_password()
        added = self.store.add_first_user("admin", "admin", _HASHER.hash(password), actor="system",
                                          source=source)
        return password if added else None

    def authenticate(self, name: str, password: str, *, source: str) -> Principal:
        """The user's principal when the password is right and the account enabled; throttled."""
        now = self.clock()
        self._throttle(str(name), source, now)
        row = self.store.user(name) if isinstance(name, str) else None
        ok = _verify(row["pw_hash"] if row else None, password)
        if not ok:
            self.store.record_attempt(str(name)[:64], source, ok=False, at=now)
            raise PermissionDenied(REFUSED)
        if row["disabled"]:
            self.store.record_attempt(name, source, ok=False, at=now)
            raise PermissionDenied(f"sign-in refused: user {name} is disabled")
        self.store.record_attempt(name, source, ok=True, at=now)
        if _HASHER.check_needs_rehash(row["pw_hash"]):
            self.store.update_user(name, pw_hash=_HASHER.hash(password), actor=name, source=source,
                                   action="users.rehash")
        self.store.update_user(name, last_login=_iso(now), actor=name, source=source, action="users.signed_in")
        return Principal(name=name, role=row["role"], kind="user", source=source)

    def _throttle(self, name: str, source: str, now: float) -> None:
        for key in ({"name": name}, {"source": source}):
            failures = self.store.recent_failures(**key, since=now - WINDOW_S)
            if len(failures) >= MAX_FAILURES:
                wait = int(failures[-MAX_FAILURES] + WINDOW_S - now) + 1
                raise PermissionDenied(f"sign-in refused: too many failed attempts for this name or address; "
                                       f"try again in {max(1, wait // 60)} min")

    def disable(self, name: str, *, actor: str = "cli", source: str = "cli") -> None:
        if not self.store.update_user(name, disabled=True, actor=actor, source=source, action="users.disable"):
            raise PermissionDenied(f"no user {name!r}")

    def set_password(self, name: str, password: str | None = None, *, actor: str = "cli",
                     source: str = "cli") -> str:
        """Replace a user's password; returns it (generated when None) to show once."""
        password = _check_password(password, name) if password is not None else _new_password()
        if not self.store.update_user(name, pw_hash=_HASHER.hash(password), actor=actor, source=source,
                                      action="users.passwd"):
            raise PermissionDenied(f"no user {name!r}")
        return password

    def list(self) -> list[dict[str, Any]]:
        return [{"name": r["name"], "role": r["role"], "disabled": bool(r["disabled"]),
                 "created_at": r["created_at"], "last_login": r["last_login"]} for r in self.store.users()]


class Throttled(PermissionDenied):
    """Refused before any check because of recent failures; ``wait_s`` says for how long (HTTP 429)."""

    def __init__(self, message: str, wait_s: float) -> None:
        super().__init__(message)
        self.wait_s = wait_s


class Tokens:
    """Per-system API tokens (110/119/120 dispatch): random, shown once, stored as sha256 only."""

    def __init__(self, store: Any, *, clock: Callable[[], float] = time.time) -> None:
        self.store = store
        self.clock = clock

    def issue(self, system: str, role: str = "officer", *, actor: str = "cli", source: str = "cli") -> str:
        """A new token for ``system`` (replacing its old one); returned once."""
        _check_name(system, "system name")
        _check_role(role, TOKEN_ROLES)
        token = "yzt_" + secrets.token_urlsafe(32)
        self.store.put_token(system, role, _digest(token), actor=actor, source=source)
        return token

    def verify(self, token: str, *, source: str) -> Principal:
        """The system's principal for a valid, unrevoked token; refusals are throttled by source."""
        now = self.clock()
        failures = self.store.recent_failures(source=source, since=now - WINDOW_S)
        if len(failures) >= MAX_FAILURES:
            raise PermissionDenied("token refused: too many failed attempts from this address; try again later")
        row = self.store.token_by_hash(_digest(token)) if isinstance(token, str) and token else None
        if row is None or row["revoked_at"]:
            self.store.record_attempt("token", source, ok=False, at=now)
            raise PermissionDenied("token refused: unknown or revoked")
        return Principal(name=row["system"], role=row["role"], kind="system", source=source)

    def revoke(self, system: str, *, actor: str = "cli", source: str = "cli") -> None:
        if not self.store.revoke_token(system, actor=actor, source=source):
            raise PermissionDenied(f"no active token for system {system!r}")

    def list(self) -> list[dict[str, Any]]:
        return self.store.tokens()


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


_DUMMY_HASH: list[str] = []


def _verify(pw_hash: str | None, password: Any) -> bool:
    """Constant work whether or not the user exists: an unknown name is checked against a dummy hash."""
    if not _DUMMY_HASH:
        _DUMMY_HASH.append(_HASHER.hash(secrets.token_urlsafe(16)))
    if not isinstance(password, str):
        password = ""
    try:
        return _HASHER.verify(pw_hash or _DUMMY_HASH[0], password) and pw_hash is not None
    except (VerificationError, InvalidHashError):
        return False


def _iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, timezone.utc).isoformat(timespec="seconds")
