"""Who may do what: roles, the permission table, users with argon2 password hashes, system tokens.

    from command.security.auth import Users, Tokens, Principal, require
    users = Users(store)
    pw = users.add("王五", "officer")                  # a generated password, shown once
    me = users.authenticate("王五", pw, source="10.0.0.7")   # -> Principal(name, role, kind="user", source)
    require(me, "alert.draft")                          # returns me, or raises PermissionDenied
    token = Tokens(store).issue("119", role="officer")  # shown once; only its sha256 is stored
    system = Tokens(store).verify(token, source="10.0.0.9")

Roles are ordered ``viewer < officer < commander < admin``; ``ACTIONS`` gives each action its minimum role.
``trainer`` stands outside that order (users and tokens may hold it): it sees and runs exercises, nothing more.
Every user and token has a scope (command.security.scopes: the province, a city or a district adcode); the
service checks it. Sign-in and tokens are throttled by ``command.security.throttle``: people by name and
by source (or by a device that signed in before), systems by token, with progressive delays instead of a
lockout, and a valid token is never refused for anyone's failures. A refusal never says whether the name
exists. Tokens expire (``Tokens(lifetime_days=...)``, the door passes settings.token_lifetime_days) and are
rotated with ``rotate``. Changing a user's password, role or scope, or disabling it, ends its sessions. There is no default password: ``ensure_admin`` creates "admin" with a
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
USER_ROLES = ROLES + ("trainer",)                   # what users.role may hold (the schema's CHECK, version 7)
TOKEN_ROLES = ("viewer", "officer", "commander", "trainer")    # a dispatch system is never an admin
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


def _check_role(role: str, allowed: tuple[str, ...] = USER_ROLES) -> str:
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

    def add(self, name: str, role: str, password: str | None = None, *, scope: str | None = None,
            actor: str = "cli", source: str = "cli") -> str:
        """Create a user acting for ``scope`` (default: the province); returns the password (generated when
        None) to show once."""
        from command.security import scopes
        _check_name(name)
        _check_role(role)
        scope = scopes.parse(scope)
        password = _check_password(password, name) if password is not None else _new_password()
        try:
            self.store.add_user(name, role, _HASHER.hash(password), scope=scope, actor=actor, source=source)
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

    def authenticate(self, name: str, password: str, *, source: str, device: str | None = None) -> Principal:
        """The user's principal when the password is right and the account enabled. Throttled with a
        progressive delay by name and by source, or only by ``device`` (an id the door vouches was issued to
        this name's browser at an earlier sign-in), so nobody else's failures keep a desk out."""
        from command.security import throttle
        now = self.clock()
        name = str(name)[:64]
        keys = throttle.keys_for_sign_in(name, source, device)
        wait = throttle.wait_s(self.store, keys, now=now)
        if wait > 0:
            raise Throttled(f"sign-in refused: too many failed attempts; try again in {throttle.say_wait(wait)}",
                            wait)
        row = self.store.user(name) if name else None
        ok = _verify(row["pw_hash"] if row else None, password)
        if not ok or row["disabled"]:
            self.store.record_signin(name, source, ok=False, at=now, keys=keys)
            if ok:
                raise PermissionDenied(f"sign-in refused: user {name} is disabled")
            raise PermissionDenied(REFUSED)
        self.store.record_signin(name, source, ok=True, at=now, keys=keys)
        if _HASHER.check_needs_rehash(row["pw_hash"]):
            self.store.update_user(name, pw_hash=_HASHER.hash(password), actor=name, source=source,
                                   action="users.rehash", end_sessions=False)
        self.store.update_user(name, last_login=_iso(now), actor=name, source=source, action="users.signed_in",
                               end_sessions=False)
        return Principal(name=name, role=row["role"], kind="user", source=source, scope=row.get("scope") or "440000")

    def disable(self, name: str, *, actor: str = "cli", source: str = "cli") -> None:
        """Refuse NAME's sign-ins and end its sessions."""
        if not self.store.update_user(name, disabled=True, actor=actor, source=source, action="users.disable"):
            raise PermissionDenied(f"no user {name!r}")

    def set_role(self, name: str, role: str, *, actor: str = "cli", source: str = "cli") -> None:
        """Change NAME's role; its sessions end (the next request signs in with the new role)."""
        _check_role(role)
        if not self.store.update_user(name, role=role, actor=actor, source=source, action="users.role"):
            raise PermissionDenied(f"no user {name!r}")

    def set_scope(self, name: str, scope: str, *, actor: str = "cli", source: str = "cli") -> None:
        """Change NAME's jurisdiction; its sessions end."""
        from command.security import scopes
        if not self.store.update_user(name, scope=scopes.parse(scope), actor=actor, source=source,
                                      action="users.scope"):
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
        return [_public(r) for r in self.store.users()]

    def get(self, name: str) -> dict[str, Any] | None:
        """The stored user ``name`` as ``list`` shows it (enabled or not), or None: one row by its key (the
        dashboard checks its signed-in user on every request)."""
        row = self.store.user(name)
        return None if row is None else _public(row)


def _public(r: dict[str, Any]) -> dict[str, Any]:
    """A user row without its password hash."""
    return {"name": r["name"], "role": r["role"], "scope": r.get("scope") or "440000",
            "disabled": bool(r["disabled"]), "created_at": r["created_at"], "last_login": r["last_login"]}


class Throttled(PermissionDenied):
    """Refused before any check because of recent failures; ``wait_s`` says for how long (HTTP 429)."""

    def __init__(self, message: str, wait_s: float) -> None:
        super().__init__(message)
        self.wait_s = wait_s


class Tokens:
    """Per-system API tokens (110/119/120 dispatch): random, shown once, stored as sha256 only."""

    def __init__(self, store: Any, *, clock: Callable[[], float] = time.time, lifetime_days: int = 365) -> None:
        self.store = store
        self.clock = clock
        self.lifetime_days = lifetime_days

    def issue(self, system: str, role: str = "officer", *, scope: str | None = None, days: int | None = None,
              actor: str = "cli", source: str = "cli") -> str:
        """A new token for ``system`` acting for ``scope`` (replacing its old one), valid ``days`` (default
        the lifetime given); returned once."""
        from command.security import scopes
        _check_name(system, "system name")
        _check_role(role, TOKEN_ROLES)
        scope = scopes.parse(scope)
        days = self.lifetime_days if days is None else int(days)
        if not 1 <= days <= 5 * 366:
            raise PermissionDenied(f"token lifetime {days} days refused: 1 to 1830")
        token = "yzt_" + secrets.token_urlsafe(32)
        expires = _iso(self.clock() + days * 86400)
        self.store.put_token(system, role, _digest(token), scope=scope, expires_at=expires, actor=actor,
                             source=source)
        return token

    def rotate(self, system: str, *, days: int | None = None, actor: str = "cli", source: str = "cli") -> str:
        """A new token for ``system`` with its role and scope; the old one stops working at once."""
        row = next((t for t in self.store.tokens() if t["system"] == system), None)
        if row is None:
            raise PermissionDenied(f"no token for system {system!r} to rotate; issue one")
        return self.issue(system, row["role"], scope=row.get("scope"), days=days, actor=actor, source=source)

    def verify(self, token: str, *, source: str) -> Principal:
        """The system's principal for a valid, unrevoked, unexpired token. A valid token is never refused
        for anyone's failures; refused tokens are throttled by source, on their own counter."""
        from command.security import throttle
        now = self.clock()
        row = self.store.token_by_hash(_digest(token)) if isinstance(token, str) and 0 < len(token) <= 200 else None
        if row is not None and not row["revoked_at"] and not _expired(row.get("expires_at"), now):
            return Principal(name=row["system"], role=row["role"], kind="system", source=source,
                             scope=row.get("scope") or "440000")
        keys = [("token", str(source)[:64])]
        wait = throttle.wait_s(self.store, keys, now=now)
        if wait > 0:
            raise Throttled(f"token refused: too many refused tokens from this address; try again in "
                            f"{throttle.say_wait(wait)}", wait)
        self.store.record_token_refusal(str(source)[:64], at=now, keys=keys)
        if row is not None and not row["revoked_at"]:
            raise PermissionDenied(f"token refused: it expired at {row['expires_at']}; "
                                   f"`yzt tokens rotate {row['system']}` makes a new one")
        raise PermissionDenied("token refused: unknown or revoked")

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


def _expired(expires_at: str | None, now: float) -> bool:
    """A token row's expiry has passed (rows from before expiries existed got one on upgrade)."""
    if not expires_at:
        return False
    try:
        return datetime.fromisoformat(expires_at).timestamp() <= now
    except ValueError:
        return True
