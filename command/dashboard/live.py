"""The cheap part of the sync poll's answer (command.dashboard.sync): the incident list and the map's markers
as a Dash ``Patch`` of what the browser already shows, from a small per-worker cache.

At 20 reports/s the store's seq moves every second, so every open browser gets its list and markers every
second. Built whole, that is ~200 rows and ~200 markers (~400 KB of JSON, ~90 ms of a worker) per browser per
second. Here:

- the projection's rows are read once per worker per (store, filters and scope, seq) (``rows``): every officer
  at the same seq with the same filters and visibility reads the same rows. The key holds everything the rows
  depend on: which store (the live one or an exercise's, by its id: an exercise's incidents are seen by its
  players only), the filters, the viewer's scope and the seq read *before* the rows (so the rows are never
  older than their key);
- each row's component is built once per worker per content (``part``), keyed by a digest of everything it
  is drawn from (the whole row and, for the list, whether it is the selected one);
- the browser keeps what it shows as a token (``{"seq", "view", "items": [[id, digest], ...]}``, a dcc.Store
  beside the list); the answer is the edits that turn its items into the current ones (``patch``): deletes
  and inserts, usually a few rows. A token that does not match (a new page, a filter change, too many edits,
  a shape we do not expect) gets the whole list. The token only ever describes the browser's own view.

    skey, svc = live.where()                             # this request's store key and service
    seq, rows = live.rows(svc, skey, asked, limit, fetch)   # cached projection rows at the store's seq
    out, token = live.answer(items, token, seq, view)    # Patch (or the whole list) and the new token
"""
from __future__ import annotations

import hashlib
import json
import threading
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

from dash import Patch, no_update

SEQ_MAX_AGE_S = 0.25      # a worker's polls share one read of the newest seq per quarter second
ROWS_KEPT = 64            # (store, filters, seq) entries per worker
PARTS_KEPT = 4000         # built components per worker
MAX_ITEMS = 2000          # a token with more items than this is not trusted to diff against

_lock = threading.Lock()
_rows: OrderedDict[tuple, list] = OrderedDict()
_parts: OrderedDict[tuple, Any] = OrderedDict()


def clear() -> None:
    """Forget every cached row and component (tests; a worker never needs it)."""
    with _lock:
        _rows.clear()
        _parts.clear()
        _row_digests.clear()


def _get(cache: OrderedDict, key: tuple, limit: int, make: Callable[[], Any]) -> Any:
    with _lock:
        if key in cache:
            cache.move_to_end(key)
            return cache[key]
    value = make()
    with _lock:
        cache[key] = value
        cache.move_to_end(key)
        while len(cache) > limit:
            cache.popitem(last=False)
    return value


def where() -> tuple[str, Any]:
    """(store key, service) of this request's viewer, once per request (the poll's list and markers both ask;
    finding a viewer's exercise resolves the var dir's path each time)."""
    from flask import g, has_request_context
    from command.dashboard import runtime
    if has_request_context() and "yzt_live_where" in g:
        return g.yzt_live_where
    rt = runtime.current()
    found = (store_key(rt.exercise()), rt.service())
    if has_request_context():
        g.yzt_live_where = found
    return found


def store_key(exercise: Any) -> str:
    """Which store a viewer sees: the live one, or the exercise's they play (its id, never reused)."""
    return "live" if exercise is None else f"exercise:{exercise.id}"


def rows(svc: Any, skey: str, asked: dict[str, Any], limit: int, fetch: Callable[[], list]) -> tuple[int, list]:
    """(seq, rows): the store's newest seq, read first, and ``fetch()``'s rows (the newest ``limit`` rows
    for the store's filter arguments ``asked``, scope included), cached under (store, asked, limit, seq)."""
    seq = int(svc.store.last_seq(max_age_s=SEQ_MAX_AGE_S))
    key = (skey, json.dumps(asked, sort_keys=True, default=str), limit, seq)
    return seq, _get(_rows, key, ROWS_KEPT, fetch)


def digest(*parts: Any) -> str:
    return hashlib.blake2b(repr(parts).encode("utf-8"), digest_size=8).hexdigest()


_row_digests: OrderedDict[int, tuple[Any, str]] = OrderedDict()


def row_digest(row: Any) -> str:
    """``digest(repr(row))``, once per row object (the cached rows are shared by every officer at a seq; the
    entry keeps its row, so an id reused by another object is never mistaken for it)."""
    with _lock:
        held = _row_digests.get(id(row))
    if held is not None and held[0] is row:
        return held[1]
    dg = digest(repr(row))
    with _lock:
        _row_digests[id(row)] = (row, dg)
        while len(_row_digests) > PARTS_KEPT:
            _row_digests.popitem(last=False)
    return dg


def view_of(*parts: Any) -> str:
    """The view a token was made for (store, filters, scope, selection): part of the 'nothing moved' check."""
    return digest("view", *parts)


def part(kind: str, dg: str, build: Callable[[], Any]) -> Any:
    """The component of one item, built once per worker per (kind, digest)."""
    return _get(_parts, (kind, dg), PARTS_KEPT, build)


def edits(old: list[tuple[str, str]], new: list[tuple[str, str]]) -> tuple[list[int], list[int]] | None:
    """(deletes, inserts): indices of ``old`` to delete (applied from the last), then indices of ``new`` to
    insert (applied from the first), that turn ``old`` into ``new``; None when the items that stay are not in
    the same order in both (then the whole list is sent)."""
    wanted = set(new)
    deletes = [i for i, item in enumerate(old) if item not in wanted]
    keep = [item for item in old if item in wanted]
    kept = set(keep)
    if len(kept) != len(keep):
        return None                      # the same item twice: not a list we sent
    inserts, j = [], 0
    for i, item in enumerate(new):
        if j < len(keep) and keep[j] == item:
            j += 1
        elif item in kept:
            return None
        else:
            inserts.append(i)
    return (deletes, inserts) if j == len(keep) else None


def _held(token: Any) -> list[tuple[str, str]] | None:
    if not isinstance(token, dict) or not isinstance(token.get("items"), list) or len(token["items"]) > MAX_ITEMS:
        return None
    out = []
    for it in token["items"]:
        if not (isinstance(it, list) and len(it) == 2 and all(isinstance(x, str) for x in it)):
            return None
        out.append((it[0], it[1]))
    return out


def unchanged(token: Any, seq: int, view: str) -> bool:
    """Whether the browser's token was made at this seq for this view (nothing to send)."""
    return isinstance(token, dict) and token.get("seq") == seq and token.get("view") == view


def answer(items: list[tuple[str, str, Callable[[], Any]]], token: Any, seq: int, view: str) -> tuple[Any, dict]:
    """The children to send for ``items`` ((key, digest, build) in order) to a browser holding ``token``:
    a Patch of deletes and inserts when it holds a list we can diff against and the edits are few, the whole
    list otherwise; and the new token. ``no_update`` for both when the items are the ones it holds."""
    new = [(k, dg) for k, dg, _ in items]
    fresh = {"seq": seq, "view": view, "items": [list(x) for x in new]}
    old = _held(token)
    found = edits(old, new) if old is not None else None
    if found is not None and not found[0] and not found[1]:
        return no_update, no_update      # the same items: the browser's token still describes them
    if found is None or len(found[0]) + len(found[1]) > max(8, len(new) // 2):
        return [part(kind_of(k), dg, build) for k, dg, build in items], fresh
    deletes, inserts = found
    p = Patch()
    for i in reversed(deletes):
        del p[i]
    for i in inserts:
        k, dg, build = items[i]
        p.insert(i, part(kind_of(k), dg, build))
    return p, fresh


def kind_of(key: str) -> str:
    return key.split(":", 1)[0]
