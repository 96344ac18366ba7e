"""Schema 8: the incident list's projection (``incident_summary``) on the backend under test. Its rows are what the
fold makes of the same events after reports, updates, regrades (up and down), a change of type and closes; a
failed append leaves them as they were; scope, filters, search and paging in SQL answer what the fold and
``scopes.place_in`` answer; and a store of version 7 is upgraded in place, its rows built from the events its
audit chain vouches for."""
from __future__ import annotations

import json
from datetime import datetime

import pytest

from command.alerts.outbox import Outbox
from command.errors import IncidentExistsError
from command.response.service import ResponseService
from command.response.timeline import BEIJING, VirtualClock
from command.security import scopes
from command.store.schema import SCHEMA_VERSION
from incidents.model import Casualties, IncidentReport, Point
from settings import load_settings

START = datetime(2026, 3, 14, 9, 0, tzinfo=BEIJING)
CHANNELS = [{"name": "outbox-exercise", "kind": "outbox", "mode": "exercise"}]
SCOPES = ("440000", "440100", "440106", "440104", "440300", "440304", "441900", "445300")


@pytest.fixture
def store(tmp_path, new_store):
    s = new_store(tmp_path / "db" / "yzt.db")
    yield s
    s.close()


def service(store) -> ResponseService:
    st = load_settings(channels=CHANNELS, two_person_levels=[], cap_org_code="101")
    return ResponseService(store, settings=st, clock=VirtualClock(START), outbox=Outbox(store, st), exercise=True)


def a_history(svc: ResponseService) -> list[str]:
    """Reports in three cities, updates that regrade up and back down, a change of type, closes."""
    clock = svc.clock
    ids = []
    for report in (IncidentReport(type="gas_explosion", address="广州市天河区天河路", casualties=Casualties(serious_injuries=3),
                                  description="商场燃气爆炸"),
                   IncidentReport(type="fire", address="深圳市福田区福华路"),
                   IncidentReport(type="fire", point=Point(113.7518, 23.0206, "gcj02")),       # 东莞: no districts
                   IncidentReport(type="traffic", address="广州市越秀区中山五路", casualties=Casualties(deaths=1))):
        clock.advance(60)
        ids.append(svc.report(report, actor="值班员").id)
    clock.advance(60)
    up = svc.update(ids[0], actor="值班员", casualties=Casualties(deaths=4, serious_injuries=12))
    assert up.grade.level != "IV" and len(up.levels) == 2
    clock.advance(60)
    down = svc.update(ids[0], actor="值班员", casualties=Casualties(deaths=0, serious_injuries=1))
    assert down.grade.level == "IV" and len(down.levels) == 3
    clock.advance(60)
    assert svc.update(ids[1], actor="值班员", type="hazmat_leak").type == "hazmat_leak"
    svc.note(ids[2], "到场", actor="值班员")
    clock.advance(60)
    svc.close(ids[1], actor="值班员")
    svc.close(ids[3], actor="值班员")
    return ids


def expected(store, state) -> dict:
    """What the row of ``state`` must hold, from the fold and the stored events only."""
    loc, seqs = state.location, [e.seq for e in store.events(state.id)]
    return {"first_seq": seqs[0], "id": state.id, "type": state.type, "level": state.grade.level, "grade": state.grade,
            "state": state.state, "district_adcode": loc.district_adcode, "district_name": loc.district_name,
            "city_adcode": loc.city_adcode, "city_name": loc.city_name, "matched": loc.matched,
            "address": state.address, "lon": pytest.approx(loc.point.lon, abs=1e-7),
            "lat": pytest.approx(loc.point.lat, abs=1e-7), "uncertainty_m": loc.uncertainty_m,
            "reported_at": state.reported_at, "updated_at": state.events[-1].at, "closed_at": state.closed_at,
            "last_seq": seqs[-1], "events": len(state.events)}


def rows_by_id(store) -> dict[str, dict]:
    from command.response.timeline import grade_from_dict
    rows = store.incident_summaries()
    for r in rows:
        r.pop("scope_city"), r.pop("scope_district")
        r["grade"] = grade_from_dict(json.loads(r["grade"]))
    return {r["id"]: r for r in rows}


def test_every_row_is_the_fold_of_its_timeline(store):
    svc = service(store)
    ids = a_history(svc)
    fresh = service(store)                           # folds from the store, no cache
    rows = rows_by_id(store)
    assert list(rows) == ids                          # in order of report
    for iid in ids:
        assert rows[iid] == expected(store, fresh.get(iid)), iid
    assert {rows[i]["state"] for i in ids} == {"open", "closed"}
    assert store.incident_count() == 4 == store.incident_count(scope="440000")        # the tally
    assert store.incident_count(state="open") + store.incident_count(state="closed") == 4    # counted rows
    assert [s.id for s in fresh.list_incidents()] == [s.id for s in map(fresh.get, store.incident_ids())]
    assert fresh.list_incidents() == [fresh.get(i) for i in ids]


def test_scope_in_sql_is_the_rule_of_place_in(store):
    svc = service(store)
    ids = a_history(svc)
    states = [svc.get(i) for i in ids]
    for scope in SCOPES:
        want = [s.id for s in states if scopes.place_in(scope, s)]
        assert [r["id"] for r in store.incident_summaries(scope=scope)] == want, scope
        assert store.incident_count(scope=scope) == len(want)
        viewer = scopes_principal(scope)
        assert [s.id for s in svc.list_incidents(viewer=viewer)] == [s.id for s in states if scopes.visible(viewer, s)]
    assert any(store.incident_summaries(scope="441900"))         # 东莞's desk sees its incident


def scopes_principal(scope: str):
    from command.security.auth import Principal
    return Principal("desk", "viewer", "user", "10.0.0.1", scope=scope)


def test_filters_search_and_pages_answer_as_the_fold(store):
    svc = service(store)
    ids = a_history(svc)
    states = {i: svc.get(i) for i in ids}
    for level in ("I", "II", "III", "IV"):
        assert [s.id for s in svc.list_incidents(level=level)] == [i for i in ids if states[i].grade.level == level]
    assert [s.id for s in svc.list_incidents(state="closed")] == [ids[1], ids[3]]
    assert [s.id for s in svc.list_incidents(district="福田区")] == [ids[1]]
    assert [s.id for s in svc.list_incidents(district="440106")] == [ids[0]]
    assert [s.id for s in svc.list_incidents(q="天河路")] == [ids[0]]          # the address
    assert [s.id for s in svc.list_incidents(q="HAZMAT")] == [ids[1]]          # the type key, any case
    assert [r["id"] for r in store.incident_summaries(q="hazmat_leak")] == [ids[1]]   # its search line moved
    assert [r["id"] for r in store.incident_summaries(q="fire")] == [ids[2]] and store.incident_count(q="hazmat") == 1
    assert [s.id for s in svc.list_incidents(q="交通")] == [ids[3]]            # a type's Chinese name
    assert [s.id for s in svc.list_incidents(q="东莞")] == [ids[2]]            # the city's name
    assert svc.list_incidents(q="不存在的地方") == []
    assert [r["id"] for r in store.incident_summaries(q="_")] == ids[:2]     # gas_explosion, hazmat_leak: as text
    assert store.incident_summaries(q="%") == [] == store.incident_summaries(q="\\")
    assert [s.id for s in svc.list_incidents(newest_first=True, limit=2)] == [ids[3], ids[2]]
    assert [s.id for s in svc.list_incidents(limit=2, offset=1)] == ids[1:3]
    assert [s.id for s in svc.list_incidents(offset=3)] == ids[3:]
    cut = store.incident_summaries()[2]["first_seq"]
    assert [r["id"] for r in store.incident_summaries(before=cut, newest_first=True)] == [ids[1], ids[0]]
    assert [r["id"] for r in store.incident_summaries(after=cut)] == [ids[3]]


def test_a_refused_append_leaves_the_row_and_a_report_that_cannot_fold_gets_none(store):
    svc = service(store)
    ids = a_history(svc)
    before = rows_by_id(store)
    state = svc.get(ids[0])
    from command.response.timeline import to_record
    kind, payload = to_record(state.events[0])
    with pytest.raises(IncidentExistsError):                 # a second report of the incident
        store.append_events(ids[0], [("NoteAdded", {"text": "x"}, "t", "a"), (kind, payload, "t", "a")])
    assert rows_by_id(store) == before
    store.append_event("GD-X", "Reported", {"地址": "天河路"}, at="t", actor="a")    # no type, place or grade
    store.append_event("GD-Y", "NoteAdded", {"text": "before any report"}, at="t", actor="a")
    store.append_event("GD-Y", kind, payload, at="t", actor="a")                     # a timeline the fold refuses
    assert rows_by_id(store) == before and store.incident_count() == 4


def _to_version_7(store) -> None:
    """What a version-7 store is: the same tables without the projection."""
    if hasattr(store, "_conn"):
        store._conn().execute("DROP TABLE incident_summary")
        store._conn().execute("UPDATE schema_version SET version = 7")
    else:
        with store.db.tx() as conn:
            conn.execute("DROP TABLE incident_summary")
            conn.execute("UPDATE schema_version SET version = 7")


def test_a_version_7_store_is_upgraded_in_place_from_its_vouched_events(tmp_path, new_store, store_backend):
    path = tmp_path / "db" / "v7.db"
    store = new_store(path)
    ids = a_history(service(store))
    before = rows_by_id(store)
    _to_version_7(store)
    forged = '{"type": "fire"}'     # a row behind the product's back: no audit entry vouches for it
    sql = ("INSERT INTO events (incident_id, kind, at, payload, actor) VALUES ('GD-FORGED', 'Reported', 't', "
           f"'{forged}', 'x')")
    if store_backend == "sqlite":
        store._conn().execute(sql)
    else:
        with store.db.tx() as conn:
            conn.execute(sql)
    store.close()
    again = new_store(path)
    version = (again._conn().execute("SELECT version FROM schema_version").fetchone()[0] if store_backend == "sqlite"
               else again.db.row("SELECT version FROM schema_version")["version"])
    assert version == SCHEMA_VERSION == 8
    assert rows_by_id(again) == before and list(before) == ids
    assert again.incident_count() == 4 == again.incident_count(state="open") + again.incident_count(state="closed")
    assert [r["id"] for r in again.incident_summaries(q="天河路")] == [ids[0]]
    fresh = service(again)
    assert [s.id for s in fresh.list_incidents(state="open", newest_first=True)] == [ids[2], ids[0]]
    s = fresh.update(ids[2], actor="值班员", casualties=Casualties(deaths=5))      # kept from here on
    assert rows_by_id(again)[ids[2]] == expected(again, service(again).get(ids[2])) and s.grade.level != "IV"


def test_listed_rows_show_what_the_folded_states_show(store):
    from command.dashboard import incidents_list
    from command.response import listing
    from command.response.timeline import grade_from_dict
    svc = service(store)
    a_history(svc)
    states = svc.list_incidents(newest_first=True)
    items = listing.listed(svc, newest_first=True)
    assert [i.id for i in items] == [s.id for s in states]
    for item, s in zip(items, states):
        assert (item.type, item.state, item.reported_at, item.closed_at, item.address) == (
            s.type, s.state, s.reported_at, s.closed_at, s.address)
        assert grade_from_dict(item.grade) == s.grade
        for name in ("matched", "district_adcode", "district_name", "city_adcode", "city_name", "uncertainty_m"):
            assert getattr(item.location, name) == getattr(s.location, name), name
        assert item.location.point.crs == "wgs84"
        assert (item.location.point.lon, item.location.point.lat) == pytest.approx(
            (s.location.point.lon, s.location.point.lat), abs=1e-7)
    assert str(incidents_list.incident_rows(items, states[0].id)) == str(incidents_list.incident_rows(states, states[0].id))
