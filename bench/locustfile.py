"""Locust users of 粤政图 (bench/load.py runs them headless against ``yzt serve`` on 127.0.0.1):

- ``Officer``: a dashboard browser. Signs in as a browser does (GET /login for the form's CSRF token, POST
  /login, then the session cookie and the ``yzt_csrf`` cookie), then once a second posts the sync callback
  (``sync.poll``) to ``/_dash-update-component`` with the JSON body Dash's renderer sends and the
  X-CSRF-Token header ``assets/csrf.js`` adds. When the poll answers a newer seq (200; 204 when nothing
  moved), the page's seq-driven callbacks follow as the browser fires them (``follow``): the incident list
  (``incidents_list.refresh_list``) and the map's markers (``mapview.draw_incidents``), each with the token of
  what the page shows, kept from the last answer as the page's dcc.Store keeps it (their answers are Patches
  of the rows that changed; 204 when none did). That is all a page with no incident selected posts: a real
  chromium page, counted (the selected incident's panels follow only while one is selected, the warn tab's
  poll runs only while that tab is open, a row or marker click is handled in the browser).
- ``Dispatch``: a 110/119/120 dispatch system posting ``POST /api/v1/incidents`` with its bearer token, each
  with a new external_id, at ``report_rate`` reports/s shared by the dispatch users (0: as fast as they can).
- ``Health``: the baseline, ``GET /api/v1/health`` with the same token, paced like an officer's poll
  (``health_rate`` per user per second; 0: as fast as it can).

The plan comes from the environment as JSON (``YZT_LOAD_PLAN``, written by bench/load.py):
``{"officers": [[name, password], ...], "officer_users": 200, "dispatch_users": 4, "report_rate": 20,
"health_users": 10, "health_rate": 1, "token": "...", "follow": true, "seed": 1}``; users of a class whose
count is 0 are not started. Request names: ``sync``, ``sync.refresh_list``, ``sync.draw_incidents``,
``report``, ``health``, ``login``.
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

PLAN = json.loads(os.environ.get("YZT_LOAD_PLAN") or "{}")
_CSRF_FIELD = re.compile(r'name="csrf" value="([^"]+)"')
_officer_seq = itertools.count()
# account -> (Cookie header, CSRF token) of its first sign-in: the other officers of an account reuse it, so the
# measured window holds the page's polling, not 200 password hashes at once (a shift signs in once, not in a burst)
_SESSIONS: dict[str, tuple[str, str]] = {}

# Addresses across the province's cities, so reports exercise locating, grading and the nearest queries
# in many places rather than one cached district.
ADDRESSES = ["广州市天河区天河路", "广州市越秀区中山五路", "深圳市福田区深南大道", "深圳市南山区科技园",
             "佛山市禅城区祖庙路", "东莞市南城区鸿福路", "珠海市香洲区情侣中路", "汕头市龙湖区长平路",
             "惠州市惠城区江北", "中山市石岐区孙文中路", "江门市蓬江区建设路", "湛江市赤坎区中山一路",
             "肇庆市端州区天宁北路", "韶关市浈江区风度路", "梅州市梅江区江南路", "清远市清城区北江路"]
TYPES = ["gas_explosion", "fire", "traffic", "waterlogging", "building_collapse"]


def sync_body(n: int, seq: int) -> dict:
    """The body Dash's renderer posts for sync.poll (Input sync-interval.n_intervals, State sync-seq.data)."""
    return {"output": "sync-seq.data", "outputs": {"id": "sync-seq", "property": "data"},
            "inputs": [{"id": "sync-interval", "property": "n_intervals", "value": n}],
            "state": [{"id": "sync-seq", "property": "data", "value": seq}],
            "changedPropIds": ["sync-interval.n_intervals"]}


def _seq_input(seq: int) -> dict:
    return {"id": "sync-seq", "property": "data", "value": seq}


def refresh_bodies(seq: int, shown: dict[str, object] | None = None) -> dict[str, dict]:
    """What the page posts after sync-seq moved: the incident list and the map's incident markers, each with
    the token of what the browser shows (``shown``: {"list-shown": ..., "map-shown": ...}, None at first),
    so the answer is a Patch of the rows that changed (command.dashboard.live)."""
    none = lambda ident, prop="value": {"id": ident, "property": prop, "value": None}  # noqa: E731
    held = shown or {}
    return {
        "sync.refresh_list": {
            "output": "..list-items.children...list-shown.data...focus-seq.data..",
            "outputs": [{"id": "list-items", "property": "children"}, {"id": "list-shown", "property": "data"},
                        {"id": "focus-seq", "property": "data"}],
            "inputs": [_seq_input(seq), {"id": "app-bump", "property": "data", "value": 0},
                       none("incident-selected", "data"), none("list-level"), none("list-state"),
                       none("list-district")],
            "state": [{"id": "list-shown", "property": "data", "value": held.get("list-shown")}],
            "changedPropIds": ["sync-seq.data"]},
        "sync.draw_incidents": {
            "output": "..map-incidents.children...map-shown.data..",
            "outputs": [{"id": "map-incidents", "property": "children"}, {"id": "map-shown", "property": "data"}],
            "inputs": [_seq_input(seq), {"id": "app-bump", "property": "data", "value": 0}],
            "state": [{"id": "map-shown", "property": "data", "value": held.get("map-shown")}],
            "changedPropIds": ["sync-seq.data"]},
    }


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
        self.seq = 0
        self.shown: dict[str, object] = {}
        self.csrf = ""
        self.headers: dict[str, str] = {}
        self._sign_in()

    def _sign_in(self) -> None:
        accounts = PLAN["officers"]
        name, password = accounts[next(_officer_seq) % len(accounts)]
        held = _SESSIONS.get(name)
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
        with self._post("sync", sync_body(self.n, self.seq)) as r:
            if r.status_code == 204:          # PreventUpdate: nothing new since this page's seq
                return
            if r.status_code != 200:
                r.failure(f"sync answered {r.status_code}: {(r.text or '')[:120]}")
                return
            try:
                self.seq = int(r.json()["response"]["sync-seq"]["data"])
            except (ValueError, KeyError, TypeError):
                r.failure(f"sync answered an unexpected body: {(r.text or '')[:120]}")
                return
        if PLAN.get("follow", True):
            for name, body in refresh_bodies(self.seq, self.shown).items():
                with self._post(name, body) as r:
                    if r.status_code == 204:      # the rows this page shows are the current ones
                        continue
                    if r.status_code != 200:
                        r.failure(f"{name} answered {r.status_code}: {(r.text or '')[:120]}")
                        continue
                    self._keep_token(r)

    def _keep_token(self, r) -> None:
        """The new token of what the page shows (list-shown / map-shown), as the browser's dcc.Store keeps it."""
        try:
            for ident, props in r.json()["response"].items():
                if ident in ("list-shown", "map-shown"):
                    self.shown[ident] = props["data"]
        except (ValueError, KeyError, TypeError, AttributeError):
            r.failure(f"a follow-up answered an unexpected body: {(r.text or '')[:120]}")


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
