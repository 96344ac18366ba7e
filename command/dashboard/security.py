"""Sign-in, sessions, CSRF and per-callback permissions for the dashboard (issue 5).

    security.install(app.server, settings)   # app.create_app does this (then login.register): key, cookies, gate
    @callback(...)
    @security.guarded("incident.report")     # or {"warn-send": "alert.send", None: "view"} by trigger id
    def on_report(...): ...
    security.principal()                     # the signed-in command.security.auth.Principal of this request
    security.actor("值班员")                 # who acts: the signed-in user (in-process calls: the fallback)
    security.can("alert.send")               # for hiding buttons; the server check is what counts

Every request except /login and /logout needs a signed-in, enabled user (pages redirect to /login, the
rest get 401). Every POST also needs the session's CSRF token in the X-CSRF-Token header (assets/csrf.js
reads it from the yzt_csrf cookie and adds it to same-origin fetches); cookies are SameSite=Strict, the
session cookie HttpOnly and Secure when served over https (settings.session_cookie_secure, or
YZT_SECURE_COOKIES=1 in the environment). The secret key lives in settings.var_dir/secret_key (mode 0600, made once).

A callback called directly in-process (no HTTP request: tests, scripts) is not an HTTP caller and runs
as its arguments say; over HTTP the guard always checks the permission with command.security.auth.require.
"""
from __future__ import annotations

import functools
import hmac
import logging
import os
import secrets
import threading
from collections import OrderedDict
from datetime import timedelta
from pathlib import Path
from typing import Any, Callable

from flask import Flask, g, has_request_context, jsonify, redirect, request, session

log = logging.getLogger("yzt.dashboard.security")

PUBLIC_PATHS = frozenset({"/login", "/logout"})
CSRF_HEADER = "X-CSRF-Token"
CSRF_COOKIE = "yzt_csrf"
UNSAFE = frozenset({"POST", "PUT", "PATCH", "DELETE"})


def secret_key(var_dir: Path) -> bytes:
    """The Flask secret key from var_dir/secret_key, generated once (secrets, mode 0600)."""
    path = Path(var_dir) / "secret_key"
    path.parent.mkdir(parents=True, exist_ok=True)
    if not path.exists():
        # written whole under a temporary name, then linked into place: a worker starting at the same moment
        # sees either no file or the whole key, never an empty one (link fails if another worker won)
        tmp = path.with_name(f".secret_key.{os.getpid()}.{secrets.token_hex(4)}")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(secrets.token_hex(32).encode())
                f.flush()
                os.fsync(f.fileno())
            try:
                os.link(tmp, path)
            except FileExistsError:
                pass
        finally:
            tmp.unlink(missing_ok=True)
    key = path.read_bytes().strip()
    if len(key) < 32:
        raise PermissionError(f"{path}: the secret key is shorter than 32 bytes; delete it to make a new one")
    return key


def install(server: Flask, settings: Any, *, secure: bool | None = None) -> None:
    """Secret key, cookie flags, the sign-in gate and CSRF on the dashboard's server (the /login and /logout
    pages are command/dashboard/login.py, which uses this module; app.create_app registers both)."""
    server.secret_key = secret_key(settings.var_dir)
    server.config.update(
        SESSION_COOKIE_NAME="yzt_session", SESSION_COOKIE_HTTPONLY=True, SESSION_COOKIE_SAMESITE="Strict",
        SESSION_COOKIE_SECURE=settings.session_cookie_secure if secure is None else secure,
        PERMANENT_SESSION_LIFETIME=timedelta(hours=settings.session_lifetime_h),
        # the cookie lives exactly as long as the server's absolute limit from sign-in (the session table ends
        # the sign-in then, and on idle): re-signing it on every response only pushed its expiry past that,
        # at ~10% of a web worker under 200 officers' polls. Flask still sends it whenever it changes.
        SESSION_REFRESH_EACH_REQUEST=False,
        MAX_CONTENT_LENGTH=settings.dashboard_max_body_bytes)      # a 20 MB "task text" is refused (413)
    server.extensions["yzt_door"] = settings
    server.before_request(_gate)
    server.register_error_handler(413, _too_large)
    _assets_answer_404(server)
    server.after_request(_csrf_cookie)
    from command.dashboard import runtime
    runtime.identify_with(principal)        # the runtime finds a player's exercise by who signed in


def csrf_token() -> str:
    """This session's CSRF token (made on first use)."""
    tok = session.get("csrf")
    if not tok:
        tok = session["csrf"] = secrets.token_urlsafe(32)
    return tok


def csrf_ok(sent: str | None) -> bool:
    tok = session.get("csrf")
    return bool(tok and sent) and hmac.compare_digest(str(tok), str(sent))


def _same_origin() -> bool:
    """No Origin (a same-origin form in an old browser), or one whose scheme, host and port are this
    server's: http://host:8050 is not https://host:8050, nor https://host.evil.example."""
    origin = request.headers.get("Origin")
    if not origin or origin == "null":
        return origin is None
    return _origin_tuple(origin) == _origin_tuple(f"{request.scheme}://{request.host}")


_DEFAULT_PORTS = {"http": 80, "https": 443}


def _origin_tuple(url: str) -> tuple[str, str, int] | None:
    from urllib.parse import urlsplit
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return None
    scheme = (parts.scheme or "").lower()
    if scheme not in _DEFAULT_PORTS or not parts.hostname:
        return None
    return scheme, parts.hostname.lower().rstrip("."), port or _DEFAULT_PORTS[scheme]


def _users():
    from command.security import auth
    from command.dashboard import runtime
    return auth.Users(runtime.current().store(), clock=_clock())


def _clock() -> Callable[[], float]:
    from flask import current_app
    import time
    return current_app.extensions.get("yzt_clock", time.time)


def set_clock(server: Flask, clock: Callable[[], float]) -> None:
    """Give the dashboard's session and sign-in checks another clock (epoch seconds): tests, drills."""
    server.extensions["yzt_clock"] = clock


def sessions():
    """The server-side sessions (command.security.sessions) with the settings' idle and absolute limits."""
    from flask import current_app
    from command.security.sessions import Sessions
    from command.dashboard import runtime
    st = current_app.extensions["yzt_door"]
    return Sessions(runtime.current().store(), idle_s=st.session_idle_min * 60,
                    absolute_s=st.session_lifetime_h * 3600, clock=_clock())


def client_address() -> str:
    """The client's address: the socket's, or the configured proxy header's (never an unconfigured one)."""
    from flask import current_app
    from command.security.throttle import client_address as pick
    st = current_app.extensions.get("yzt_door")
    return pick(request.remote_addr, request.headers, header=getattr(st, "trusted_proxy_header", None),
                hops=getattr(st, "trusted_proxy_hops", 1))


DEVICE_COOKIE = "yzt_device"
DEVICE_DAYS = 90


def _device_signer():
    from flask import current_app
    from itsdangerous import URLSafeTimedSerializer
    return URLSafeTimedSerializer(current_app.secret_key, salt="yzt-device")


def device_for(name: str) -> str | None:
    """The id of this browser when it signed in as ``name`` before (a signed cookie), else None: its
    sign-ins are throttled on their own, so strangers' failures for the name never keep it out."""
    raw = request.cookies.get(DEVICE_COOKIE)
    if not raw:
        return None
    try:
        data = _device_signer().loads(raw, max_age=DEVICE_DAYS * 86400)
    except Exception:           # itsdangerous.BadData: forged, expired or another key's
        return None
    return data.get("d") if isinstance(data, dict) and data.get("u") == name else None


def remember_device(resp: Any, name: str) -> None:
    from flask import current_app
    token = _device_signer().dumps({"u": name, "d": secrets.token_urlsafe(12)})
    resp.set_cookie(DEVICE_COOKIE, token, max_age=DEVICE_DAYS * 86400, httponly=True, samesite="Strict",
                    path="/login", secure=current_app.config.get("SESSION_COOKIE_SECURE", False))


def lookup(name: str) -> dict | None:
    """The stored user ``name`` (enabled or not), or None."""
    return _users().get(name)


_SESSION_USERS: OrderedDict[tuple[str, str], dict] = OrderedDict()   # (session id, name) -> its user row
_SESSION_USERS_KEPT = 4096
_SESSION_USERS_LOCK = threading.Lock()


def _session_user(sid: str, name: str) -> dict | None:
    """The user row of a live session, read once per session per worker. Safe to keep for the session's
    life: every change that alters what a user may do (password, role, scope, disabling) ends the user's
    sessions in the same transaction (command/store/*_accounts.update_user), so ``sessions().check`` refuses
    the session before this is asked again; a new sign-in is a new session id, read afresh."""
    key = (sid, name)
    with _SESSION_USERS_LOCK:
        if key in _SESSION_USERS:
            _SESSION_USERS.move_to_end(key)
            return _SESSION_USERS[key]
    user = lookup(name)
    if user is not None and not user.get("disabled"):
        with _SESSION_USERS_LOCK:
            _SESSION_USERS[key] = user
            while len(_SESSION_USERS) > _SESSION_USERS_KEPT:
                _SESSION_USERS.popitem(last=False)
    return user


RECENT_SESSION_S = 2.0      # how old a worker's read of a session may be for the read-only sync poll
_RECENT_OK: set[str] = set()  # the Dash output keys of the callbacks that may run on such a read


def recent_session_for(outputs: list[Any]) -> None:
    """Let the callback of these Outputs (read-only, polled every second) run on a read of the session up to
    RECENT_SESSION_S old: an end coming from another worker or an account change is seen that much later by
    it; any other request, any action, reads the session row. Dash runs the callback its payload's output
    key names, so a payload claiming this key runs this callback and no other."""
    _RECENT_OK.add(".." + "...".join(f"{o.component_id}.{o.component_property}" for o in outputs) + "..")


def _session_max_age() -> float:
    if request.method != "POST" or not request.path.endswith("/_dash-update-component"):
        return 0.0
    payload = request.get_json(silent=True)
    return RECENT_SESSION_S if isinstance(payload, dict) and payload.get("output") in _RECENT_OK else 0.0


def session_principal(max_age_s: float = 0.0) -> Any:
    """The Principal of this session when the server still holds it (not signed out, not timed out, not
    ended by a password, role or scope change) and its user is enabled; else None (the cookie is cleared).
    ``max_age_s``: a read of the session that recent may answer (``recent_session_for``)."""
    sid = session.get("sid")
    if not sid:
        if session.get("user"):     # a cookie from before server-side sessions: sign in again
            session.clear()
        return None
    name = sessions().check(sid, max_age_s=max_age_s)
    user = _session_user(sid, name) if name else None
    if user is None or user.get("disabled"):
        session.clear()
        return None
    from command.security import auth
    return auth.Principal(name=user["name"], role=user["role"], kind="user", source=client_address(),
                          scope=user.get("scope") or "440000")


def principal() -> Any:
    """The Principal of the current request (None outside a request or when nobody is signed in)."""
    if not has_request_context():
        return None
    if "yzt_principal" not in g:
        g.yzt_principal = session_principal()
    return g.yzt_principal


def actor(fallback: str) -> Any:
    """Who acts in a callback: the signed-in user over HTTP; in-process calls keep their own actor."""
    p = principal()
    return fallback if p is None else p


def can(action: str) -> bool:
    """Whether the signed-in user may do ``action`` (for hiding buttons only)."""
    from command.security import auth
    try:
        auth.require(principal(), action)      # the same rule as the refusal (a trainer may view, for one)
    except auth.PermissionDenied:
        return False
    return True


def require(action: str) -> None:
    """Inside a callback: raise PermissionDenied unless the signed-in user may do ``action`` (no-op in-process)."""
    if has_request_context():
        from command.security import auth
        auth.require(principal(), action)


def _refuse(status: int, message: str):
    log.warning("refused %s %s from %s: %s", request.method, request.path, request.remote_addr, message)
    resp = jsonify(error=message)
    resp.status_code = status
    return resp


def _gate():
    """Before every request: signed in (else /login or 401), and a CSRF token on every POST."""
    from command.dashboard.public_warning import is_public
    if request.path in PUBLIC_PATHS or (request.method == "GET" and is_public(request.path)):
        return None          # sign-in, and the public page of a sent warning (/warnings/<identifier>)
    if "yzt_principal" not in g:
        g.yzt_principal = session_principal(_session_max_age())
    if principal() is None:
        if request.method == "GET" and not request.path.startswith("/_dash-"):
            return redirect("/login?next=" + _safe_next(request.full_path))
        return _refuse(401, "请先登录 / sign in first")
    if request.method in UNSAFE:
        if not _same_origin():
            return _refuse(403, "跨站请求被拒绝 / cross-origin request refused")
        if not csrf_ok(request.headers.get(CSRF_HEADER)):
            return _refuse(403, "CSRF 令牌缺失或无效 / missing or wrong CSRF token; reload the page")
        if request.path.endswith("/_dash-update-component"):
            payload = request.get_json(silent=True)
            too_long = field_over_limit(payload)
            if too_long:
                return _refuse(413, too_long)
            outside = incident_outside_scope(payload, principal())
            if outside:
                return _refuse(403, outside)
    return None


def incident_outside_scope(payload: Any, who: Any) -> str:
    """One line when a callback names (as ``incident-selected``) an incident outside the user's scope, or
    ''. Every page's callbacks read and act on the selected incident, so this one check keeps a 福田 desk
    from opening a 天河 incident by editing the id it sends; the service checks every action again."""
    if not isinstance(payload, dict) or who is None:
        return ""
    from command.security import scopes
    if scopes.scope_of(who) == scopes.PROVINCE:
        return ""
    for part in ("inputs", "state"):
        for item in payload.get(part) or ():
            if isinstance(item, dict) and item.get("id") == "incident-selected" and isinstance(item.get("value"), str):
                iid = item["value"]
                from command.dashboard import runtime
                svc = runtime.current().service()
                if len(iid) <= 120 and svc.store.events(iid) and not scopes.visible(who, svc.get(iid)):
                    return f"事件 {iid} 不在辖区内 / incident {iid} is outside the jurisdiction {scopes.scope_of(who)}"
    return ""


# The dispatch API's field limits (command.api.schema), applied to the dashboard's fields of the same meaning;
# any other text field a person types into gets the API's longest text limit.
def _field_limits() -> dict[str, int]:
    from command.api import schema as S
    text = S.ReportIn.model_fields["description"].metadata
    longest = next((m.max_length for m in text if getattr(m, "max_length", None)), 2000)
    address = next((m.max_length for m in S.ReportIn.model_fields["address"].metadata
                    if getattr(m, "max_length", None)), 200)
    return {"report-calltext": longest, "report-desc": longest, "report-address": address,
            "report-coords": 100, "map-search": address, "group-task-role": 40, "group-task-text": longest,
            "group-close-reason": longest, "warn-instr-zh": longest, "warn-instr-en": longest, None: longest}


_LIMITS: dict[str | None, int] = {}
MAX_NUMBER = 1e13               # the API's largest number (economic_loss_cny)


def field_over_limit(payload: Any) -> str:
    """One line naming the first typed-in field (a component's ``value``) over its limit, or ''."""
    if not isinstance(payload, dict):
        return ""
    if not _LIMITS:
        _LIMITS.update(_field_limits())
    items: list[Any] = []
    for part in ("inputs", "state"):
        for item in payload.get(part) or ():
            items.extend(item if isinstance(item, list) else [item])
    for item in items:
        if not isinstance(item, dict) or item.get("property") != "value":
            continue
        cid, value = item.get("id"), item.get("value")
        limit = _LIMITS.get(cid if isinstance(cid, str) else None, _LIMITS[None])
        if isinstance(value, str) and len(value) > limit:
            return f"字段过长 / field {cid} is over {limit} characters ({len(value)})"
        if isinstance(value, (int, float)) and not isinstance(value, bool) and abs(value) > MAX_NUMBER:
            return f"数值过大 / field {cid} is out of range"
    return ""


def _too_large(_e: Any):
    from flask import current_app
    limit = current_app.config.get("MAX_CONTENT_LENGTH")
    return _refuse(413, f"请求过大 / the request body is over {limit} bytes")


def _assets_answer_404(server: Flask) -> None:
    """A path under /_dash-component-suites/ that names no file of a registered package is a 404 with one
    line, never Dash's 500 with a traceback (Dash raises on an unknown package or file)."""
    view = server.view_functions.get("/_dash-component-suites/<string:package_name>/<path:fingerprinted_path>")
    if view is None:
        return
    from werkzeug.exceptions import HTTPException

    @functools.wraps(view)
    def serve(*args: Any, **kwargs: Any) -> Any:
        try:
            return view(*args, **kwargs)
        except HTTPException:
            raise
        except Exception as e:          # dash.exceptions.DependencyException, KeyError, OSError ...
            log.info("no asset %s: %s", request.path, type(e).__name__)
            return _refuse(404, "no such file")
    server.view_functions["/_dash-component-suites/<string:package_name>/<path:fingerprinted_path>"] = serve


def _safe_next(target: str | None) -> str:
    """A local path to go back to after sign-in (never another site)."""
    from urllib.parse import quote
    t = (target or "/").rstrip("?")
    if not t.startswith("/") or t.startswith("//") or "\\" in t:
        t = "/"
    return quote(t, safe="/?=&-_.")


def _csrf_cookie(resp):
    tok = session.get("csrf")
    if tok and request.cookies.get(CSRF_COOKIE) != tok:
        from flask import current_app
        resp.set_cookie(CSRF_COOKIE, tok, samesite="Strict", httponly=False, path="/",
                        secure=current_app.config.get("SESSION_COOKIE_SECURE", False))
    return resp


# --------------------------------------------------------------------------- callbacks

def _action_for(spec: str | dict, trigger: Any) -> str:
    if isinstance(spec, str):
        return spec
    key = trigger.get("type") if isinstance(trigger, dict) else trigger
    return spec.get(key, spec[None])


def _nothing() -> Any:
    from dash import ctx, no_update
    outs = ctx.outputs_list
    return tuple(no_update for _ in outs) if isinstance(outs, list) else no_update


def guarded(spec: str | dict[str | None, str]) -> Callable:
    """Check the permission of a Dash callback on the server before it runs.

    ``spec`` is one action, or a map from the triggering component id (or pattern ``type``) to its action
    with the key None for every other trigger. A refusal shows one alert line and changes nothing.
    """
    def wrap(func: Callable) -> Callable:
        @functools.wraps(func)
        def checked(*args: Any, **kwargs: Any) -> Any:
            if not has_request_context():
                return func(*args, **kwargs)
            from dash import ctx, set_props
            from command.security import auth
            from command.errors import CommandError
            action = _action_for(spec, ctx.triggered_id)
            try:
                auth.require(principal(), action)
            except CommandError as e:       # PermissionDenied
                log.warning("callback %s refused: %s", func.__name__, e)
                from command.dashboard.common import alert_box
                set_props("app-alert", {"children": alert_box(str(e).splitlines()[0])})
                return _nothing()
            return func(*args, **kwargs)
        checked.yzt_action = spec           # read by tests/test_dashboard_auth.py
        return checked
    return wrap
