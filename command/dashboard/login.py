"""The sign-in page (Chinese first) and sign-out, as plain Flask routes beside the Dash app.

    login.register(server)        # security.install does this
    GET  /login?next=/            the form (its own CSRF token, kept in the pre-login session)
    POST /login                   command.security.auth.Users.authenticate (throttled there); a fresh session on success
    POST /logout                  ends the session on the server (needs the session's CSRF token)

A refusal never says whether the name exists: it shows the one line auth gives.
"""
from __future__ import annotations

import html
import logging
import secrets

from flask import Flask, Response, redirect, request, session

from command.dashboard import security

log = logging.getLogger("yzt.dashboard.login")

PAGE = """<!doctype html>
<html lang="zh-CN"><head><meta charset="utf-8"><title>粤政图 登录 · Sign in</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
body{{font-family:"Noto Sans CJK SC","Microsoft YaHei",sans-serif;background:#1d2633;margin:0;display:flex;
min-height:100vh;align-items:center;justify-content:center}}
form{{background:#fff;padding:28px 32px;border-radius:6px;width:320px;box-shadow:0 4px 18px #0006}}
h1{{font-size:20px;margin:0 0 4px}} .en{{color:#4a5668;font-size:12px}}
label{{display:block;margin-top:12px;font-size:13px}} input[type=text],input[type=password]{{width:100%;
box-sizing:border-box;padding:7px;margin-top:3px;font-size:14px}}
button{{margin-top:18px;width:100%;padding:9px;background:#1f6fd1;color:#fff;border:0;border-radius:4px;font-size:15px}}
.err{{background:#fdecea;color:#b3261e;padding:8px;margin-top:12px;border-radius:4px;font-size:13px}}
</style></head>
<body><form method="post" action="/login" id="login-form">
<h1>粤政图 应急指挥</h1><div class="en">Yue Zheng Tu emergency command</div>
{error}
<label for="login-name">用户名 <span class="en">User name</span></label>
<input type="text" id="login-name" name="name" autocomplete="username" required autofocus value="{name}">
<label for="login-password">密码 <span class="en">Password</span></label>
<input type="password" id="login-password" name="password" autocomplete="current-password" required>
<input type="hidden" name="csrf" value="{csrf}"><input type="hidden" name="next" value="{next}">
<button type="submit" id="login-submit">登录 Sign in</button>
</form></body></html>"""


def page(*, error: str = "", name: str = "", next_url: str = "/") -> str:
    err = f'<div class="err" role="alert" id="login-error">{html.escape(error)}</div>' if error else ""
    return PAGE.format(error=err, name=html.escape(name), csrf=html.escape(security.csrf_token()),
                       next=html.escape(next_url))


def _html(body: str, status: int = 200) -> Response:
    resp = Response(body, status=status, mimetype="text/html")
    resp.headers["Cache-Control"] = "no-store"
    resp.headers["X-Frame-Options"] = "DENY"
    return resp


def _sign_in():
    from command.errors import CommandError
    name = (request.form.get("name") or "").strip()
    next_url = security._safe_next(request.form.get("next"))
    if not security.csrf_ok(request.form.get("csrf")):
        return _html(page(error="表单已过期，请重试 / the form expired; try again", name=name, next_url=next_url), 403)
    if not security._same_origin():
        return _html(page(error="跨站请求被拒绝 / cross-origin request refused", next_url=next_url), 403)
    source = security.client_address()
    try:
        who = security._users().authenticate(name, request.form.get("password") or "", source=source,
                                             device=security.device_for(name))
    except CommandError as e:          # PermissionDenied: wrong password, disabled, throttled (a wait)
        log.warning("sign-in refused for %r from %s: %s", name, source, e)
        return _html(page(error=str(e).splitlines()[0], name=name, next_url=next_url), 401)
    sessions = security.sessions()
    sessions.end(session.get("sid"))    # this browser's earlier session ends: one id per sign-in
    session.clear()                     # a fresh id, held by the server: no fixation
    session.permanent = True
    session["sid"] = sessions.start(who.name, source=source)
    session["csrf"] = secrets.token_urlsafe(32)
    log.info("signed in: %s (%s, scope %s) from %s", who.name, who.role, who.scope, source)
    resp = redirect(next_url)
    security.remember_device(resp, who.name)
    return resp


def register(server: Flask) -> None:
    @server.route("/login", methods=["GET", "POST"])
    def yzt_login():
        if request.method == "POST":
            return _sign_in()
        return _html(page(next_url=security._safe_next(request.args.get("next"))))

    @server.post("/logout")
    def yzt_logout():
        if security.csrf_ok(request.form.get("csrf") or request.headers.get(security.CSRF_HEADER)):
            security.sessions().end(session.get("sid"))     # the server forgets it: a saved cookie is void
            session.clear()
        resp = redirect("/login")
        resp.delete_cookie(security.CSRF_COOKIE, path="/")
        return resp
