"""Locust users of 粤政图 (bench/load.py runs them headless against ``yzt serve`` on 127.0.0.1):

- ``Officer``: a dashboard browser. Signs in as a browser does (GET /login for the form's CSRF token, POST
  /login, then the session cookie and the ``yzt_csrf`` cookie), then once a second posts the page's one
  callback (``sync.poll``) to ``/_dash-update-component`` with the JSON body Dash's renderer sends
  (``poll_body``) and the X-CSRF-Token header ``assets/csrf.js`` adds. Its answer carries the newest seq and,
  when it moved, the list's and the markers' Patches and the tokens of what the page now shows, which the
  officer keeps as the page's dcc.Stores do and sends back with the next poll (204: nothing moved). That is
  all a page with no incident selected posts: a real chromium page, recorded (tests/dashboard/browser: the
  selected incident's panels follow only while one is selected, the warn tab's poll runs only while that
  tab is open, a row or marker click is handled in the browser). The renderer also puts ``?endId=`` (a
  signed id of the page load) on the URL; the server reads it for background callbacks only, none here.
- ``Dispatch``: a 110/119/120 dispatch system posting ``POST /api/v1/incidents`` with its bearer token, each
  with a new external_id, at ``report_rate`` reports/s shared by the dispatch users (0: as fast as they can).
- ``Health``: the baseline, ``GET /api/v1/health`` with the same token, paced like an officer's poll
  (``health_rate`` per user per second; 0: as fast as it can).

The plan comes from the environment as JSON (``YZT_LOAD_PLAN``, written by bench/load.py):
``{"officers": [[name, password], ...], "officer_users": 200, "dispatch_users": 4, "report_rate": 20,
"health_users": 10, "health_rate": 1, "token": "...", "seed": 1}``; users of a class whose
count is 0 are not started. Request names: ``sync``, ``report``, ``health``, ``login``.
"""
from __future__ import annotations

import itertools
import json
import os
import random
import re
import uuid

from locust import constant, constant_throughput, task
from locust.contrib.fasthttp import FastHttpUser

from bench.dash_page import poll_body

PLAN = json.loads(os.environ.get("YZT_LOAD_PLAN") or "{}")
_CSRF_FIELD = re.compile(r'name="csrf" value="([^"]+)"')
_officer_seq = itertools.count()
# account -> (Cookie header, CSRF token) of its first sign-in: the other officers of an account reuse it, so the
# measured window holds the page's polling, not 200 password hashes at once (a shift signs in once, not in a burst)
_SESSIONS: dict[str, tuple[str, str]] = {}
# (bench/load.py signs every officer in before the run, one session each, as 200 browsers have: the plan's
# "sessions", [[Cookie header, CSRF token], ...]; an officer beyond them shares its account's)

# Addresses across the province's cities, so reports exercise locating, grading and the nearest queries
# in many places rather than one cached district.
ADDRESSES = ["广州市天河区天河路", "广州市越秀区中山五路", "深圳市福田区深南大道", "深圳市南山区科技园",
             "佛山市禅城区祖庙路", "东莞市南城区鸿福路", "珠海市香洲区情侣中路", "汕头市龙湖区长平路",
             "惠州市惠城区江北", "中山市石岐区孙文中路", "江门市蓬江区建设路", "湛江市赤坎区中山一路",
             "肇庆市端州区天宁北路", "韶关市浈江区风度路", "梅州市梅江区江南路", "清远市清城区北江路"]
TYPES = ["gas_explosion", "fire", "traffic", "waterlogging", "building_collapse"]


def report_body(rng: random.Random) -> dict:
    return {"external_id": f"LOAD-{uuid.uuid4().hex[:20]}", "type": rng.choice(TYPES),
            "address": rng.choice(ADDRESSES), "casualties": {"serious_injuries": rng.randint(0, 4)},
            "description": "负载测试 load test"}


class Officer(FastHttpUser):
    """A signed-in dashboard browser polling sync once a second."""

    fixed_count = int(PLAN.get("officer_users", 0))
    wait_time = constant_throughput(1.0)

    def on_start(self) -> None:
        self.n = 0
        self.held: dict[str, object] = {}
        self.csrf = ""
        self.headers: dict[str, str] = {}
        self._sign_in()

    def _sign_in(self) -> None:
        accounts = PLAN["officers"]
        n = next(_officer_seq)
        name, password = accounts[n % len(accounts)]
        signed = PLAN.get("sessions") or []
        held = tuple(signed[n]) if n < len(signed) else _SESSIONS.get(name)   # its own sign-in, made before
        if held is not None:          # the account's session, as a second browser of a signed-in officer
            cookie, self.csrf = held
            self.headers = {"X-CSRF-Token": self.csrf, "Content-Type": "application/json",
                            "Origin": self.host.rstrip("/"), "Cookie": cookie}
            return
        with self.client.get("/login", name="login", catch_response=True) as page:
            found = _CSRF_FIELD.search(page.text or "")
            if not found:
                page.failure("the sign-in page has no CSRF field")
                return
        with self.client.post("/login", name="login", allow_redirects=False, catch_response=True,
                              data={"name": name, "password": password, "csrf": found.group(1), "next": "/"}) as r:
            if r.status_code != 302:
                r.failure(f"sign-in answered {r.status_code}: {(r.text or '')[:120]}")
                return
        self.csrf = next((c.value for c in self.client.cookiejar if c.name == "yzt_csrf"), "")
        self.headers = {"X-CSRF-Token": self.csrf, "Content-Type": "application/json",
                        "Origin": self.host.rstrip("/")}
        _SESSIONS[name] = ("; ".join(f"{c.name}={c.value}" for c in self.client.cookiejar), self.csrf)

    def _post(self, name: str, body: dict):
        return self.client.post("/_dash-update-component", name=name, data=json.dumps(body),
                                headers=self.headers, catch_response=True)

    @task
    def sync(self) -> None:
        self.n += 1
        with self._post("sync", poll_body(self.n, self.held)) as r:
            if r.status_code == 204:          # PreventUpdate: nothing new since this page's seq
                return
            if r.status_code != 200:
                why = r.text or repr(getattr(r, "error", None) or "")      # 0: no answer (the connection's error)
                r.failure(f"sync answered {r.status_code}: {why[:160]}")
                return
            self._keep(r)

    def _keep(self, r) -> None:
        """What the page's dcc.Stores hold after the answer (sync-seq, list-shown, map-shown); the Patches
        themselves change only the page's children."""
        try:
            for ident, props in r.json()["response"].items():
                if ident in ("sync-seq", "list-shown", "map-shown"):
                    self.held[ident] = props["data"]
        except (ValueError, KeyError, TypeError, AttributeError):
            r.failure(f"sync answered an unexpected body: {(r.text or '')[:120]}")


class Dispatch(FastHttpUser):
    """A dispatch system posting new incidents."""

    fixed_count = int(PLAN.get("dispatch_users", 0))
    _rate = float(PLAN.get("report_rate", 0)) / max(fixed_count, 1)
    wait_time = constant_throughput(_rate) if _rate > 0 else constant(0)

    def on_start(self) -> None:
        self.rng = random.Random(f"{PLAN.get('seed', 1)}-{id(self)}")
        self.auth = {"Authorization": f"Bearer {PLAN['token']}", "Content-Type": "application/json"}

    @task
    def report(self) -> None:
        with self.client.post("/api/v1/incidents", name="report", data=json.dumps(report_body(self.rng)),
                              headers=self.auth, catch_response=True) as r:
            if r.status_code not in (200, 201):
                r.failure(f"report answered {r.status_code}: {(r.text or '')[:160]}")


class Health(FastHttpUser):
    """The baseline: the API's health GET (token check and one store read), under the same load."""

    fixed_count = int(PLAN.get("health_users", 0))
    _rate = float(PLAN.get("health_rate", 1.0))
    wait_time = constant_throughput(_rate) if _rate > 0 else constant(0)

    def on_start(self) -> None:
        self.auth = {"Authorization": f"Bearer {PLAN['token']}"}

    @task
    def health(self) -> None:
        with self.client.get("/api/v1/health", name="health", headers=self.auth, catch_response=True) as r:
            if r.status_code != 200:
                r.failure(f"health answered {r.status_code}: {(r.text or '')[:120]}")
