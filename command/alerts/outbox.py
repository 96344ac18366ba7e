"""Durable delivery of alerts to broadcast channels: store first, then send, retry, dead-letter.

    from command.alerts.outbox import Outbox, OutgoingAlert
    outbox = Outbox(store, settings)                     # channels from settings.channels
    ids = outbox.enqueue(alert)                          # every channel of the alert's mode, ONE transaction
    outbox.run_until_idle(timeout_s=60)                  # CLI and drills: deliver what is due, then return
    outbox.start(); ...; outbox.stop()                   # dashboard: background workers
    outbox.deliveries(alert.identifier)                  # [{channel, mode, status, attempts, receipt, ...}]
    outbox.counts("exercise")                            # {"pending": 0, "sent": 12, "failed": 0, "dead": 1}
    content_sha256(alert)                                # what an approval binds to (stored with the alert)

Guarantees:
- ``enqueue`` writes the alert and one delivery per channel in one transaction before anything is sent, and
  refuses (AlertError, nothing written) an Exercise to a live channel or an Actual to an exercise channel, or
  CAP XML whose identifier/status/msgType disagree with the alert. The same guard runs again at every send
  (``GuardedChannel``), and the database refuses such a row, so no configuration can get a drill on air.
- Worker threads per channel (``concurrency``, default 1): a slow or failing channel never holds up another,
  and on one channel an incident's deliveries leave one after another in the order they were enqueued.
  Retries back off exponentially with jitter (``backoff_base_s`` · 2^(n-1), capped, or the receiver's
  Retry-After); after ``max_attempts`` the delivery is dead-lettered with its last error kept. A channel whose
  receiver keeps failing rests as a whole, all its workers (the same backoff over its failure streak, at most
  60 s) instead of trying every queued alert in turn; a success ends the rest. Rate limits per channel
  (``rate_per_minute``; WeCom and DingTalk robots default to 20), shared by its workers.
- What leaves is what was approved: the alert row keeps ``content_sha256`` (the CAP XML and every text a
  channel sends), and each attempt recomputes it from the row before sending; a row changed since it was
  enqueued is dead-lettered, never sent. Final outcomes (sent, dead) are told to the
  ``yzt_alerts_delivered`` hook just before they are recorded, one call per batch, with the outbox's
  ``clock`` for their time; the timeline events it appends are written in the transaction that records the
  outcomes (one audit transaction per batch: a kill before it loses neither without the other).
- Batches: a worker claims up to ``batch_size`` due deliveries at once (at most one per incident, within the
  channel's rate limit; the batch grows from 1 while claims come back full, so a short queue still spreads
  over the workers), sends them one after another and records their outcomes together: one claim and one
  finish (the audit chain's lock once, one entry per delivery and one per timeline event) per batch instead
  of per delivery. Outcomes are recorded at least every ``flush_s`` (25 ms) and after any send slower than
  a fifth of it; once the channel rests, the worker stops, or half the lease is gone, the rest of the batch
  is released unsent (its claim undone: status and attempts as they were).
- At-least-once: a claim marks the delivery 'sending' (attempts + 1) under a lease. If the process dies, the
  delivery is claimed again once the lease runs out, or at once when its owner process is seen to be gone.
  Each (alert, channel) carries one idempotency key, sha256(identifier + channel), so receivers that honour it
  (and the file channel) see it effectively once. An outcome the database failed to take (a PostgreSQL restart
  under the finish) is kept by the worker and recorded once the database is back, before it claims anything
  else: the delivery is still leased to it, so it is neither sent again nor left waiting out its lease.
"""
from __future__ import annotations

import logging
import os
import random
import socket
import threading
import time
import uuid
from datetime import datetime, timezone
from typing import Any

import hashlib
import json

import httpx
import pluggy
from lxml import etree

from command.alerts.channels import (GuardedChannel, build_channel, OutgoingAlert, PermanentError, PlainClient,
                                     RateLimiter, RetryableError, check_drill_guard, idempotency_key)
from command.errors import AlertError, ChannelError, CommandError
from command.store.sqlite import Store
from command.store.sqlite_queue import RELEASED

__all__ = ["Outbox", "OutgoingAlert", "content_sha256", "idempotency_key"]

log = logging.getLogger(__name__)
CAP_NS = "urn:oasis:names:tc:emergency:cap:1.2"
HOST = socket.gethostname()
_LIVE_OWNERS: set[str] = set()  # owners (Outbox instances) alive in this process
_PUBLIC_STATUS = {"pending": "pending", "sending": "pending", "failed": "failed", "sent": "sent", "dead": "dead"}


def owner_alive(owner: str) -> bool:
    """Whether the Outbox named ``owner`` (host:pid:token) may still be running. Unknown hosts count as alive
    (their leases expire by time instead)."""
    parts = owner.rsplit(":", 2)
    if len(parts) != 3 or parts[0] != HOST:
        return True
    try:
        pid = int(parts[1])
    except ValueError:
        return True
    if pid == os.getpid():
        return owner in _LIVE_OWNERS
    return pid_alive(pid)


def pid_alive(pid: int) -> bool:
    """Whether process ``pid`` of this host still runs (a zombie has ended)."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as fh:
            if fh.read().rpartition(")")[2].split()[0] == "Z":
                return False  # a zombie: exited, not yet reaped
    except OSError:
        pass
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


CONTENT_FIELDS = ("identifier", "incident_id", "status", "msg_type", "cap_xml", "headline_zh", "text_zh",
                  "area_desc")


def content_sha256(alert: OutgoingAlert | dict[str, Any]) -> str:
    """sha256 of everything any channel sends of ``alert``: the CAP XML and the headline, text and area
    description that SMS, chat robots and webhooks carry, with its identifier, status and type. One
    canonical JSON form, so the service (what was approved), the store (what was enqueued) and the
    worker (what leaves) compute the same digest."""
    d = alert if isinstance(alert, dict) else alert.as_dict()
    body = json.dumps({k: d.get(k) or "" for k in CONTENT_FIELDS}, ensure_ascii=False, sort_keys=True,
                      separators=(",", ":"))
    return hashlib.sha256(body.encode("utf-8")).hexdigest()


def check_cap_matches(alert: OutgoingAlert) -> None:
    """Refuse CAP XML that is not XML or whose identifier/status/msgType differ from the alert's fields."""
    parser = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False)
    try:
        root = etree.fromstring(alert.cap_xml.encode("utf-8"), parser)
    except etree.XMLSyntaxError as e:
        raise AlertError(f"alert {alert.identifier}: the CAP XML does not parse (line {e.lineno}: {e.msg})") from None
    for tag, expected in (("identifier", alert.identifier), ("status", alert.status), ("msgType", alert.msg_type)):
        found = root.findtext(f"{{{CAP_NS}}}{tag}")
        if found is None or found.strip() != expected:
            raise AlertError(f"alert {alert.identifier}: CAP <{tag}> is {found!r} but the alert says {expected!r}")


class _Lane:
    """What the workers of one channel share: a wake-up that none of them can miss (a generation count under
    a condition, so a set() between a worker's look at the queue and its wait still wakes it) and the
    channel's rest after a run of failures (the receiver rests as a whole, whatever the concurrency)."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._gen = 0
        self._streak = 0
        self._rest_until = 0.0        # time.monotonic()

    def mark(self) -> int:
        with self._cond:
            return self._gen

    def set(self) -> None:
        with self._cond:
            self._gen += 1
            self._cond.notify_all()

    def wait(self, since: int, timeout_s: float) -> None:
        """Until set() is called after mark() returned ``since``, or ``timeout_s``."""
        with self._cond:
            self._cond.wait_for(lambda: self._gen != since, timeout_s)

    def outcome(self, retry: bool, backoff: Any) -> None:
        """A failed send lengthens the channel's failure streak and rests it; a sent or dead one ends both."""
        with self._cond:
            self._streak = self._streak + 1 if retry else 0
            self._rest_until = time.monotonic() + min(backoff(self._streak), 60.0) if retry else 0.0

    def resting_s(self) -> float:
        with self._cond:
            return max(0.0, self._rest_until - time.monotonic())


def _take(limiter: RateLimiter, n: int) -> tuple[float, list[Any]]:
    """Up to ``n`` sends from the channel's rate limit: (0.0, tokens) or, when none is free, (seconds to
    wait, [])."""
    tokens: list[Any] = []
    while len(tokens) < n:
        wait, token = limiter.acquire()
        if wait > 0:
            return (wait, tokens) if not tokens else (0.0, tokens)
        tokens.append(token)
    return 0.0, tokens


class _BatchTimeline:
    """The ``store`` that ``yzt_alerts_delivered`` is given: the events an implementation appends through it
    go with the batch's outcomes into the transaction that records them (``finish_deliveries``), for the
    outcomes recorded (see the hook's spec in command/hookspecs.py)."""

    def __init__(self) -> None:
        self.groups: list[tuple[str, list[Any], str, str | None]] = []

    def append_events_of(self, groups: list[tuple[str, list[Any]]], *, source: str = "local",
                         by: str | None = None) -> None:
        for incident_id, records in groups:
            self.groups.append((incident_id, list(records), source, by))


def _iso(t: float | None) -> str | None:
    return None if t is None else datetime.fromtimestamp(t, timezone.utc).isoformat(timespec="milliseconds")


class Outbox:
    """Durable, per-channel delivery of ``OutgoingAlert`` s; see the module docstring."""

    def __init__(self, store: Store, settings: Any, *, client: httpx.Client | None = None,
                 backoff_base_s: float = 2.0, backoff_cap_s: float = 600.0, lease_s: float = 60.0,
                 poll_s: float = 1.0, pm: pluggy.PluginManager | None = None, clock: Any = None,
                 batch_size: int = 32, flush_s: float = 0.025) -> None:
        self.store = store
        self.settings = settings
        self.clock = clock                  # the response's clock (a drill's virtual one), for timeline times
        self._own_client = client is None
        self.client = client if client is not None else PlainClient()   # channels POST past it, see there
        self.backoff_base_s, self.backoff_cap_s = backoff_base_s, backoff_cap_s
        self.lease_s, self.poll_s = lease_s, poll_s
        self.batch_size = max(1, int(batch_size))
        # a batch's outcomes are recorded at least this often, and at once after a send slower than a fifth of
        # it: a kill -9 repeats (same keys) at most flush_s of fast sends, or the one slow send in flight
        self.flush_s = flush_s
        self._pm = pm
        self.owner = f"{HOST}:{os.getpid()}:{uuid.uuid4().hex[:12]}"
        _LIVE_OWNERS.add(self.owner)
        self._configs = {c.name: c for c in settings.channels}
        self._channels: dict[str, GuardedChannel] = {}
        self._limiters: dict[str, RateLimiter] = {}
        self._lanes: dict[str, _Lane] = {name: _Lane() for name in self._configs}
        self._lock = threading.Lock()
        self._owed: list[tuple[dict[str, Any], dict[str, Any]]] = []   # (job, outcome) the database did not take
        self._bg_stop: threading.Event | None = None
        self._bg_threads: list[threading.Thread] = []

    # -- channels -----------------------------------------------------------------------------------
    def _plugin_manager(self) -> pluggy.PluginManager:
        if self._pm is None:
            from command.plugins import get_plugin_manager
            self._pm = get_plugin_manager()
        return self._pm

    def channel(self, name: str) -> GuardedChannel:
        """The built (and drill-guarded) channel called ``name``; ChannelError if unknown or misconfigured."""
        with self._lock:
            if name not in self._channels:
                cfg = self._configs.get(name)
                if cfg is None:
                    raise ChannelError(f"no channel named {name!r}; configured: {', '.join(self._configs) or 'none'}")
                self._channels[name] = build_channel(cfg, client=self.client, settings=self.settings,
                                                     pm=self._plugin_manager())
                rate = cfg.rate_per_minute or self._channels[name].default_rate_per_minute
                self._limiters[name] = RateLimiter(rate)
            return self._channels[name]

    # -- enqueue ------------------------------------------------------------------------------------
    def enqueue(self, alert: OutgoingAlert, channels: list[str] | None = None, *,
                expect_sha256: str | None = None) -> list[int]:
        """Store ``alert`` and one delivery per channel (default: every channel of the alert's mode) in one
        transaction; returns the delivery ids. Refuses, writing nothing, any channel of the wrong mode, and
        (``expect_sha256``) content whose digest is not the approved one."""
        mode = "exercise" if alert.is_exercise else "live"
        if channels is None:
            names = [c.name for c in self._configs.values() if c.mode == mode]
            if not names:
                raise AlertError(f"alert {alert.identifier}: no {mode} channel is configured for an {alert.status}")
        else:
            names = list(dict.fromkeys(channels))
            if not names:
                raise AlertError(f"alert {alert.identifier}: an empty channel list sends nowhere")
        check_cap_matches(alert)
        rows = []
        for name in names:
            ch = self.channel(name)
            check_drill_guard(alert.status, ch.mode, name, alert.identifier)
            rows.append((name, ch.mode))
        digest = content_sha256(alert)
        if expect_sha256 is not None and digest != expect_sha256:
            raise AlertError(f"alert {alert.identifier}: its content is not the content approved (sha256 "
                             f"{digest[:12]}… is not {expect_sha256[:12]}…); nothing was queued")
        if self.store.alert(alert.identifier) is not None:     # a reserved identifier is fine; a stored one is used
            raise AlertError(f"alert {alert.identifier}: already enqueued; a CAP identifier is never reused")
        now = time.time()
        ids = self.store.insert_alert_with_deliveries(dict(alert.as_dict(), content_sha256=digest), rows,
                                                      created_at=_iso(now) or "", now=now)
        for name in names:
            self._lanes[name].set()
        return ids

    # -- workers ------------------------------------------------------------------------------------
    def recover_orphans(self) -> int:
        """Free at once the deliveries leased by an Outbox whose process has ended; returns how many."""
        gone = [o for o in self.store.sending_owners() if o != self.owner and not owner_alive(o)]
        freed = self.store.expire_leases(gone, now=time.time())
        if freed:
            log.warning("outbox: %d delivery(ies) interrupted by an ended process will be retried", freed)
        return freed

    def _backoff_s(self, attempts: int, retry_after: float | None) -> float:
        delay = min(self.backoff_cap_s, self.backoff_base_s * 2 ** max(attempts - 1, 0))
        delay *= random.uniform(0.5, 1.5)
        return max(delay, retry_after or 0.0)

    def _work(self, name: str, stop: threading.Event, until_idle: bool, deadline: float | None = None) -> None:
        """One channel's worker (on its own thread, or inline in run_until_idle). Never raises. If the database
        fails under it: run_until_idle says so in one line and stops (what it had not sent stays in the
        database); a background worker says so and tries again after a pause (a restarted database server is
        taken up again without restarting the process), until ``stop``."""
        pause = 0.5
        while True:
            try:
                self._deliver_loop(name, stop, until_idle, deadline)
                return
            except Exception as e:  # a locked, closed or restarting database
                if until_idle:
                    log.error("outbox: channel %s stopped delivering (%s: %s); its deliveries stay in the "
                              "database for the next run", name, type(e).__name__, e)
                    return
                log.error("outbox: channel %s cannot reach the database (%s: %s); trying again in %.1f s",
                          name, type(e).__name__, e, pause)
            if stop.wait(pause):
                return
            pause = min(pause * 2, 10.0)

    def _deliver_loop(self, name: str, stop: threading.Event, until_idle: bool, deadline: float | None) -> None:
        try:
            ch = self.channel(name)
        except CommandError as e:
            log.error("outbox: channel %s cannot be built, its deliveries stay pending: %s", name, e)
            return
        limiter, lane = self._limiters[name], self._lanes[name]
        last_recovery = time.monotonic()
        limit = 1         # the batch grows while claims come back full, so a short queue still spreads over workers

        def left(seconds: float) -> float:
            return seconds if deadline is None else min(seconds, max(deadline - time.monotonic(), 0.0))

        while not stop.is_set() and (deadline is None or time.monotonic() < deadline):
            if self._owed:
                self._settle_owed()
            if time.monotonic() - last_recovery > min(10.0, self.lease_s):
                self.recover_orphans()
                last_recovery = time.monotonic()
            seen = lane.mark()
            rest = lane.resting_s()   # a receiver that keeps failing rests, not hammered with every queued alert
            wait, tokens = (rest, []) if rest > 0 else _take(limiter, limit)
            if not tokens:
                if until_idle and self.store.next_due(name) is None:
                    return
                stop.wait(left(min(wait, self.poll_s)))
                continue
            jobs = self._claim(name, len(tokens))
            for token in tokens[len(jobs):]:
                limiter.give_back(token)
            if not jobs:
                limit = 1
                due = self.store.next_due(name)
                if due is None and until_idle:
                    return
                lane.wait(seen, left(self.poll_s if due is None else min(self.poll_s, max(due - time.time(), 0.002))))
                continue
            limit = min(self.batch_size, 2 * limit) if len(jobs) == len(tokens) else max(1, len(jobs))
            sending_s = self._send_batch(ch, jobs, lane, limiter, tokens, stop)
            if sending_s / len(jobs) >= self.flush_s:     # the sends alone: waiting on the database is no reason
                limit = 1     # slow sends: the database is not what limits, a batch would only hold up the others
            lane.set()   # siblings: what waited behind these deliveries (or for the end) may go now

    def _claim(self, name: str, n: int) -> list[dict[str, Any]]:
        now = time.time()
        if n == 1:
            job = self.store.claim_delivery(name, owner=self.owner, now=now, lease_s=self.lease_s)
            return [] if job is None else [job]
        return self.store.claim_deliveries(name, owner=self.owner, now=now, lease_s=self.lease_s, limit=n)

    def _send_batch(self, ch: GuardedChannel, jobs: list[dict[str, Any]], lane: _Lane, limiter: RateLimiter,
                    tokens: list[Any], stop: threading.Event) -> float:
        """Send a claimed batch one after another (a batch holds at most one delivery per incident), then
        record the outcomes together: every ``flush_s``, and after each send slower than a fifth of it (what a
        kill -9 makes the next owner send again, same keys, stays what was sent in that time, or one slow
        send). Each record is a chained transaction holding the audit tip's lock, which every outbox process
        shares: 10 ms made ~6 deliveries a record with two processes on a loaded machine, 25 ms ~9. Once the
        channel starts resting (a failure), half the lease is gone or the worker is stopping, the rest are
        released unsent (their claim undone) for the next claim. Returns the seconds spent sending (recording
        not counted)."""
        started = flushed = time.monotonic()
        sending_s = last_s = 0.0
        done: list[tuple[dict[str, Any], dict[str, Any]]] = []
        for i, job in enumerate(jobs):
            if i and (lane.resting_s() > 0 or stop.is_set() or time.monotonic() - started > self.lease_s / 2):
                for token in tokens[i:len(jobs)]:
                    limiter.give_back(token)
                done += [(j, {"id": j["id"], "status": RELEASED}) for j in jobs[i:]]
                break
            if done and (time.monotonic() - flushed >= self.flush_s or last_s >= self.flush_s / 5):
                try:
                    self._record(done)
                except Exception:      # the database is away: the unsent are released once it is back too
                    with self._lock:
                        self._owed.extend((j, {"id": j["id"], "status": RELEASED}) for j in jobs[i:])
                    for token in tokens[i:len(jobs)]:
                        limiter.give_back(token)
                    raise
                done, flushed = [], time.monotonic()
            t0 = time.monotonic()
            outcome = self._attempt(ch, job)
            last_s = time.monotonic() - t0
            sending_s += last_s
            done.append((job, outcome))
            lane.outcome(outcome.pop("retry"), lambda n: self._backoff_s(n, None))
        self._record(done)
        return sending_s

    def _attempt(self, ch: GuardedChannel, job: dict[str, Any]) -> dict[str, Any]:
        """One send of a claimed delivery; returns its outcome for finish_deliveries, with ``retry`` (the
        receiver failed: the channel rests)."""
        cfg = self._configs[ch.name]
        attempts = job["attempts"]
        fields = {k: job[f"alert_{k}"] for k in ("identifier", "incident_id", "status", "msg_type", "cap_xml",
                                                 "headline_zh", "text_zh", "area_desc")}

        def out(status: str, retry: bool = False, **kw: Any) -> dict[str, Any]:
            return {"id": job["id"], "status": status, "retry": retry, **kw}
        if attempts > cfg.max_attempts:
            note = (f"the last attempt ({attempts - 1}/{cfg.max_attempts}) was interrupted when its process ended; "
                    f"outcome unknown, not retried")
            return out("dead", last_error=f"{note}; before: {job['last_error']}" if job["last_error"] else note)
        stored = job.get("alert_content_sha256")
        if stored and content_sha256(fields) != stored:
            return out("dead", last_error=f"refused: the stored content no longer matches its sha256 "
                                          f"{stored[:12]}… (changed after it was approved); not sent")
        try:
            alert = OutgoingAlert(**fields)
            receipt = ch.send(alert, idempotency_key=idempotency_key(alert.identifier, ch.name))
        except AlertError as e:
            return out("dead", last_error=f"refused by the drill guard: {e}")
        except PermanentError as e:
            return out("dead", last_error=f"permanent: {e}")
        except Exception as e:  # RetryableError, or a plugin's bug: both are worth another try
            retry_after = e.retry_after if isinstance(e, RetryableError) else None
            error = str(e) if isinstance(e, RetryableError) else f"{type(e).__name__}: {e}"
            if attempts >= cfg.max_attempts:
                return out("dead", True, last_error=f"gave up after {attempts} attempts: {error}")
            return out("failed", True, last_error=error,
                       next_attempt_at=time.time() + self._backoff_s(attempts, retry_after))
        return out("sent", receipt=receipt)

    def _record(self, done: list[tuple[dict[str, Any], dict[str, Any]]]) -> None:
        """Record a batch's outcomes in one call, final ones with their timeline events (``_announce``: one
        audit transaction for the batch); if the database fails under it, all of them are owed (still leased
        to this outbox) and recorded, events included, once it is back."""
        fresh = [(job, o) for job, o in done if o["status"] in ("sent", "dead") and "timeline" not in o]
        if fresh:
            self._announce(fresh)
        try:
            kept = self.store.finish_deliveries([o for _, o in done], owner=self.owner, now=time.time())
        except Exception:     # the database went away under it: the outcomes are owed, recorded when it is back
            with self._lock:
                self._owed.extend(done)
            raise
        for job, _o in done:
            if job["id"] not in kept:
                log.warning("outbox: delivery %s lost its lease before finishing; another worker owns it", job["id"])

    def _announce(self, final: list[tuple[dict[str, Any], dict[str, Any]]]) -> None:
        """Tell ``yzt_alerts_delivered`` of final outcomes about to be recorded, and attach to each outcome
        the events the hook appended for its incident (``_BatchTimeline``), for the finish to write."""
        at = self._now_iso()
        outcomes = [{"identifier": job["identifier"], "channel": job["channel"], "mode": job["mode"],
                     "status": o["status"], "attempts": job["attempts"], "receipt": o.get("receipt"),
                     "error": o.get("last_error"), "incident_id": job.get("alert_incident_id") or "", "at": at}
                    for job, o in final]
        timeline = _BatchTimeline()
        try:
            self._plugin_manager().hook.yzt_alerts_delivered(outcomes=outcomes, store=timeline)
        except Exception:  # an observer's bug never undoes a delivery (what was appended before it still goes)
            log.exception("outbox: a yzt_alerts_delivered observer failed")
        by_incident: dict[str, list[Any]] = {}
        for group in timeline.groups:
            by_incident.setdefault(group[0], []).append(group)
        for (_job, o), told in zip(final, outcomes):     # a batch holds at most one delivery per incident
            o["timeline"] = by_incident.pop(told["incident_id"], []) if told["incident_id"] else []
        if by_incident:
            log.error("outbox: yzt_alerts_delivered appended events to incidents with no outcome in the batch "
                      "(%s); not written", ", ".join(sorted(by_incident)[:5]))

    def _settle_owed(self) -> None:
        """Record the outcomes a database failure interrupted (their deliveries are still leased to this
        outbox); raises, keeping what is still owed, while the database is away."""
        with self._lock:
            owed, self._owed = self._owed, []
        if not owed:
            return
        self._record(owed)       # owed again if it fails
        for job, o in owed:
            log.info("outbox: delivery %s: its outcome (%s) is recorded now that the database is back",
                     job["id"], o["status"])

    def _now_iso(self) -> str:
        """Now on the outbox's clock (the response's; a drill's virtual one), ISO 8601 +08:00 seconds."""
        from command.response.timeline import SystemClock, iso
        return iso((self.clock or SystemClock()).now())

    def run_until_idle(self, timeout_s: float = 60.0) -> None:
        """Deliver until no configured channel has a pending, sending or retrying delivery, or ``timeout_s``
        passes (what is left stays in the database for the next run)."""
        self.recover_orphans()
        unfinished = self.store.unfinished_channels()
        unknown = [n for n in unfinished if n not in self._configs]
        if unknown:
            log.warning("outbox: deliveries wait for channels no longer configured: %s", ", ".join(unknown))
        names = [n for n in unfinished if n in self._configs]
        deadline = time.monotonic() + timeout_s
        stop = threading.Event()
        if len(names) == 1 and self._configs[names[0]].concurrency == 1:
            self._work(names[0], stop, True, deadline)    # one worker: on this thread, none to start and join
            return
        threads = [threading.Thread(target=self._work, args=(n, stop, True, deadline), name=f"outbox-{n}-{i}",
                                    daemon=True) for n in names for i in range(self._configs[n].concurrency)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(max(deadline - time.monotonic(), 0))
        stop.set()
        for lane in self._lanes.values():
            lane.set()
        for t in threads:
            t.join()

    def start(self) -> None:
        """Background delivery: ``concurrency`` workers per configured channel until ``stop()``."""
        if self._bg_stop is not None:
            return
        self.recover_orphans()
        self._bg_stop = threading.Event()
        self._bg_threads = [
            threading.Thread(target=self._work, args=(n, self._bg_stop, False), name=f"outbox-{n}-{i}", daemon=True)
            for n, cfg in self._configs.items() for i in range(cfg.concurrency)]
        for t in self._bg_threads:
            t.start()

    def stop(self, timeout_s: float = 15.0) -> None:
        """Stop the background workers; a send in progress finishes (or times out) first. ``timeout_s`` is
        for all of them together."""
        if self._bg_stop is None:
            return
        self._bg_stop.set()
        for lane in self._lanes.values():
            lane.set()
        deadline = time.monotonic() + timeout_s
        for t in self._bg_threads:
            t.join(max(deadline - time.monotonic(), 0.0))
        self._bg_stop, self._bg_threads = None, []

    def close(self) -> None:
        """Stop, close the channels and the HTTP client if this outbox made it, and let other processes take
        over its leases."""
        self.stop()
        with self._lock:
            channels, self._channels = list(self._channels.values()), {}
        for ch in channels:
            ch.close()
        if self._own_client:
            self.client.close()
        _LIVE_OWNERS.discard(self.owner)

    # -- reading ------------------------------------------------------------------------------------
    def deliveries(self, identifier: str | None = None) -> list[dict[str, Any]]:
        """Deliveries (all or of one alert): channel, mode, status (pending|sent|failed|dead), attempts,
        receipt, last_error, updated_at, plus identifier, id, in_flight and next_attempt_at."""
        out = []
        for r in self.store.deliveries(identifier):
            out.append({"id": r["id"], "identifier": r["identifier"], "channel": r["channel"], "mode": r["mode"],
                        "status": _PUBLIC_STATUS[r["status"]], "in_flight": r["status"] == "sending",
                        "attempts": r["attempts"], "receipt": r["receipt"], "last_error": r["last_error"],
                        "updated_at": _iso(r["updated_at"]),
                        "next_attempt_at": _iso(r["next_attempt_at"]) if r["status"] == "failed" else None})
        return out

    def counts(self, mode: str | None = None) -> dict[str, int]:
        """Deliveries by status (pending|sent|failed|dead) and total, of one mode ("live"|"exercise") or all."""
        if mode not in (None, "live", "exercise"):
            raise ChannelError(f"counts: mode {mode!r} must be 'live' or 'exercise'")
        out = dict.fromkeys(("pending", "sent", "failed", "dead"), 0)
        for status, n in self.store.delivery_counts(mode).items():
            out[_PUBLIC_STATUS[status]] += n
        out["total"] = sum(out.values())
        return out
