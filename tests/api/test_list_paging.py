"""GET /api/v1/incidents over a long history: pages newest first (default 100, at most 500), a ``next`` cursor
that neither skips nor repeats an incident when new ones arrive between pages, filters and search kept across
pages, the token's scope, refusals of bad values in one JSON line, and /health's count."""
from __future__ import annotations

import pytest
from test_api import API, Env as ApiEnv

from command.response.timeline import to_record
from command.security.auth import Tokens

TIANHE = {"external_id": "F1", "type": "gas_explosion", "address": "广州市天河区天河路",
          "casualties": {"serious_injuries": 3}, "description": "商场餐饮区燃气爆炸"}
FUTIAN = {"external_id": "F2", "type": "fire", "address": "深圳市福田区福华路", "casualties": {"deaths": 4}}


class Env(ApiEnv):
    """The API tests' environment, plus a token scoped to 福田区."""

    def __init__(self, tmp_path) -> None:
        super().__init__(tmp_path)
        self.futian = Tokens(self.store).issue("sz110", role="viewer", scope="440304")

    def get(self, query: str = "", token: str | None = None):
        return self.client.get(f"{API}/incidents{query}", headers={"Authorization": f"Bearer {token or self.viewer}"})

    def copies(self, of: str, n: int, prefix: str) -> list[str]:
        """``n`` more incidents with the report of ``of`` (as the store keeps a report), oldest first."""
        kind, payload = to_record(self.svc.get(of).events[0])
        ids = [f"{prefix}-{i:03d}" for i in range(n)]
        for iid in ids:
            self.store.append_event(iid, kind, payload, at="2026-03-14T09:00:00+08:00", actor="seed")
        return ids


@pytest.fixture
def env(tmp_path):
    e = Env(tmp_path)
    yield e
    e.store.close()


def refusal(resp, field: str) -> str:
    assert resp.status_code == 400, resp.get_data(as_text=True)
    body = resp.get_json()
    assert set(body) == {"error", "field"} and body["field"] == field and "\n" not in body["error"]
    return body["error"]


def walk(env, query: str, token: str | None = None) -> list[list[str]]:
    pages, cursor = [], None
    while True:
        sep = "&" if query else "?"
        body = env.get(query + (f"{sep}cursor={cursor}" if cursor else ""), token).get_json()
        assert body["count"] == len(body["incidents"])
        pages.append([i["id"] for i in body["incidents"]])
        cursor = body["next"]
        if cursor is None:
            return pages


def test_pages_are_newest_first_and_the_cursor_walks_them_all(env):
    first = env.client.post(f"{API}/incidents", json=TIANHE, headers={"Authorization": f"Bearer {env.officer}"})
    assert first.status_code == 201
    ids = [first.get_json()["id"]] + env.copies(first.get_json()["id"], 104, "GD")
    whole = env.get().get_json()
    assert whole["count"] == 100 and whole["next"]                        # the default page
    assert [i["id"] for i in whole["incidents"]] == ids[::-1][:100]
    every = env.get("?limit=500").get_json()
    assert (every["count"], every["next"], [i["id"] for i in every["incidents"]]) == (105, None, ids[::-1])
    pages = walk(env, "?limit=40")
    assert [len(p) for p in pages] == [40, 40, 25] and sum(pages, []) == ids[::-1]
    row = whole["incidents"][0]
    assert set(row) == {"id", "type", "state", "level", "reported_at", "updated_at", "district_adcode",
                        "district_name", "matched"} and row["district_adcode"] == "440106"
    health = env.client.get(f"{API}/health", headers={"Authorization": f"Bearer {env.viewer}"}).get_json()
    assert health["incidents"] == 105


def test_a_report_between_pages_neither_shifts_nor_repeats_the_next_page(env):
    r = env.client.post(f"{API}/incidents", json=TIANHE, headers={"Authorization": f"Bearer {env.officer}"})
    ids = [r.get_json()["id"]] + env.copies(r.get_json()["id"], 9, "GD")
    one = env.get("?limit=4").get_json()
    env.copies(ids[0], 3, "NEW")                          # three more arrive while the reader pages
    two = env.get(f"?limit=4&cursor={one['next']}").get_json()
    three = env.get(f"?limit=4&cursor={two['next']}").get_json()
    seen = [i["id"] for p in (one, two, three) for i in p["incidents"]]
    assert seen == ids[::-1] and three["next"] is None
    assert [i["id"] for i in env.get("?limit=3").get_json()["incidents"]] == ["NEW-002", "NEW-001", "NEW-000"]


def test_filters_search_and_scope_hold_across_pages(env):
    h = {"Authorization": f"Bearer {env.officer}"}
    th = env.client.post(f"{API}/incidents", json=TIANHE, headers=h).get_json()["id"]
    ft = env.client.post(f"{API}/incidents", json=FUTIAN, headers=h).get_json()["id"]
    th_ids = [th] + env.copies(th, 6, "TH")
    ft_ids = [ft] + env.copies(ft, 4, "FT")
    assert sum(walk(env, "?district=440106&limit=3"), []) == th_ids[::-1]
    assert sum(walk(env, "?q=%E7%A6%8F%E7%94%B0&limit=2"), []) == ft_ids[::-1]           # q=福田
    assert sum(walk(env, "?q=gas&limit=5"), []) == th_ids[::-1]                          # the type's key
    level = env.svc.get(ft).grade.level
    assert level != "IV" and sum(walk(env, f"?level={level}&limit=2"), []) == ft_ids[::-1]
    assert sum(walk(env, "?limit=2", env.futian), []) == ft_ids[::-1]                   # 福田's desk only
    assert env.get("?q=天河", env.futian).get_json() == {"count": 0, "incidents": [], "next": None}
    env.svc.close(th, actor="值班员")
    assert [i["id"] for i in env.get("?state=closed").get_json()["incidents"]] == [th]
    assert env.get("?state=open&limit=500").get_json()["count"] == len(th_ids) + len(ft_ids) - 1


@pytest.mark.parametrize("query, field", [
    ("?limit=0", "limit"), ("?limit=501", "limit"), ("?limit=ten", "limit"), ("?limit=-1", "limit"),
    ("?limit=%EF%BC%93", "limit"), ("?cursor=abc", "cursor"), ("?cursor=0", "cursor"),
    ("?cursor=99999999999999999999", "cursor"), ("?q=", "q"), ("?q=%20%20", "q"), ("?q=" + "x" * 101, "q"),
    ("?level=V", "level"), ("?state=gone", "state"), ("?page=2", "page"), ("?offset=5", "offset"),
])
def test_bad_values_are_refused_in_one_line_naming_the_parameter(env, query, field):
    msg = refusal(env.get(query), field)
    assert field in msg


def test_the_openapi_document_lists_the_paging_parameters(env):
    doc = env.client.get(f"{API}/openapi.json", headers={"Authorization": f"Bearer {env.viewer}"}).get_json()
    params = {p["name"]: p["schema"] for p in doc["paths"]["/incidents"]["get"]["parameters"]}
    assert params["limit"] == {"type": "integer", "minimum": 1, "maximum": 500, "default": 100}
    assert {"q", "cursor", "level", "state", "district"} <= set(params)
    assert "next" in doc["components"]["schemas"]["IncidentListOut"]["properties"]
