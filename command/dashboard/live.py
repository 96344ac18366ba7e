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
  is drawn from (the whole row and, for the list, whether it is the selected one), and kept as the plain JSON
  values Dash sends, so encoding an answer never walks components;
- what a view shows at a seq (its items, each with a 12-character mark of its key and digest) is made once
  per worker per (kind, view, seq) (``made``): every officer at that state shares it;
- the browser keeps what it shows as a token (``{"seq", "view", "r"}``, a dcc.Store beside the list; ``r``
  is the items' marks, joined: ~2.4 KB for 200 rows, one JSON string to read instead of 200 pairs); the
  answer is the edits that turn its items into the current ones: deletes and inserts, usually a few rows,
  made once per worker per (held marks, current marks) and shared by every officer that held that list.
  The marks alone say where to delete and what to insert, so any worker can answer any token; a token that
  does not read as marks (a new page, an older build's token, a shape we do not expect), too many edits or
  a changed order gets the whole list, never a patch against rows it does not show. The token only ever
  describes the browser's own view.

    skey, svc = live.where()                             # this request's store key and service
    seq, rows = live.rows(svc, skey, asked, limit, fetch)   # cached projection rows at the store's seq
    now = live.made((kind, view, seq), make_items)       # what the view shows at the seq, made once
    out, token = live.answer(now, token, seq, view)      # Patch (or the whole list) and the new token
"""
from __future__ import annotations

import base64
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
MARK_LEN = 12             # characters of an item's mark in a token (``mark``)
ANSWERS_KEPT = 256        # (held marks, shown marks) -> children, per worker

_lock = threading.Lock()
_rows: OrderedDict[tuple, list] = OrderedDict()
_parts: OrderedDict[tuple, Any] = OrderedDict()
_made: OrderedDict[tuple, Any] = OrderedDict()
_answers: OrderedDict[tuple, Any] = OrderedDict()


def clear() -> None:
    """Forget every cached row and component (tests; a worker never needs it)."""
    with _lock:
        _rows.clear()
        _parts.clear()
        _made.clear()
        _answers.clear()
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
    played = rt.exercise()
    found = (store_key(played), rt.service_of(played))
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
    """The component of one item as the JSON-ready dicts Dash would send for it, built and converted once per
    worker per (kind, digest): the encoder then meets plain dicts and lists, not ~180 components per answer."""
    return _get(_parts, (kind, dg), PARTS_KEPT, lambda: plain(build()))


def plain(value: Any) -> Any:
    """``value`` (components, lists, strings) as the JSON values Dash's encoder makes of it."""
    from plotly.io.json import to_json_plotly
    return json.loads(to_json_plotly(value))


def mark(key: str, dg: str) -> str:
    """An item's mark in a token: 12 characters (72 bits) of its key and digest, so a different row or the
    same row changed is never taken for what the browser shows (at 200 rows, ~4e-18 per pair)."""
    raw = hashlib.blake2b(f"{key}\0{dg}".encode("utf-8"), digest_size=9).digest()
    return base64.urlsafe_b64encode(raw).decode("ascii")


class Made:
    """What a view shows at a seq: the items' marks (in order, joined: the token's ``r``) and their builds.
    Made once per worker per (kind, view, seq) (``made``) and shared by every officer at that state."""

    __slots__ = ("marks", "r", "items")

    def __init__(self, items: list[tuple[str, str, Callable[[], Any]]]) -> None:
        self.items = items
        self.marks = [mark(k, dg) for k, dg, _ in items]
        self.r = "".join(self.marks)


def made(key: tuple, make: Callable[[], list[tuple[str, str, Callable[[], Any]]]]) -> Made:
    """The ``Made`` of ``make()``'s items under ``key`` (kind, view, seq), cached per worker."""
    return _get(_made, key, ROWS_KEPT, lambda: Made(make()))


def edits(old: list, new: list) -> tuple[list[int], list[int]] | None:
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


def _held(token: Any) -> str | None:
    """The joined marks of what a browser shows, from its token; None for anything we did not make."""
    r = token.get("r") if isinstance(token, dict) else None
    if not isinstance(r, str) or len(r) % MARK_LEN or len(r) > MAX_ITEMS * MARK_LEN:
        return None
    return r


def unchanged(token: Any, seq: int, view: str) -> bool:
    """Whether the browser's token was made at this seq for this view (nothing to send)."""
    return isinstance(token, dict) and token.get("seq") == seq and token.get("view") == view


def answer(now: Made | list, token: Any, seq: int, view: str) -> tuple[Any, Any]:
    """The children to send to a browser holding ``token`` for what the view shows ``now`` (a ``Made``, or
    its items: (key, digest, build) in order): a Patch of deletes and inserts when its token's marks can be
    diffed against and the edits are few, the whole list otherwise; and the new token. ``no_update`` for both
    when the items are the ones it holds. The children for (held marks, now) are made once per worker: every
    officer that held the same list gets the same answer, and a token we cannot read gets the whole list."""
    now = now if isinstance(now, Made) else Made(now)
    held = _held(token)
    if held == now.r:
        return no_update, no_update      # the same items: the browser's token still describes them
    children = _get(_answers, (held, now.r), ANSWERS_KEPT, lambda: _children(now, held))
    return children, {"seq": seq, "view": view, "r": now.r}


def _children(now: Made, held: str | None) -> Any:
    old = None if held is None else [held[i:i + MARK_LEN] for i in range(0, len(held), MARK_LEN)]
    found = edits(old, now.marks) if old is not None else None
    if found is None or len(found[0]) + len(found[1]) > max(8, len(now.marks) // 2):
        return [part(kind_of(k), dg, build) for k, dg, build in now.items]
    deletes, inserts = found
    p = Patch()
    for i in reversed(deletes):
        del p[i]
    for i in inserts:
        k, dg, build = now.items[i]
        p.insert(i, part(kind_of(k), dg, build))
    return p.to_plotly_json()


def kind_of(key: str) -> str:
    return key.split(":", 1)[0]
