"""Throttling that cannot be turned against the people it protects.

    from command.security.throttle import SIGN_IN, TOKENS, keys_for_sign_in, wait_s
    wait = wait_s(store, keys_for_sign_in(name, source, device), now=now)   # 0.0: go ahead
    store.record_signin(name, source, ok=False, at=now, keys=keys)        # counted under each key, audited

Failures are counted per key, and each kind of key has its own rule:

- ``name``: a person by sign-in name, from anywhere. Progressive delay, never a lockout: after ``free``
  failures each further one doubles the wait, up to ``cap_s`` (60 s), so the real user is at most a minute
  from trying again however long someone else keeps guessing, and a guesser gets about one try a minute.
- ``source``: a person's client address, across names (a guesser spraying one password over many names).
  Its free allowance is high, since a whole office behind NAT shares one address.
- ``device``: a browser that signed in as that name before (a signed cookie the door verifies). An attempt
  from it is judged by its own failures only, so a stranger's guesses for a name, or from the same address,
  never slow down the desk that signed in there yesterday.
- ``token``: dispatch systems' bearer tokens, by client address. Only a refused token is ever counted or
  throttled: a valid token is checked first and always accepted, whoever else failed from that address.

A failure only counts within ``window_s``, and only after the key's last success. An attempt refused
because of a wait is not recorded, so hammering during a wait does not lengthen it.

The client address is the socket's unless the door was told (settings.trusted_proxy_header) which header
a reverse proxy writes: ``client_address`` never believes a header it was not told to.
"""
from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol


@dataclass(frozen=True)
class Rule:
    """``free`` failures within ``window_s`` cost nothing; the n-th one after them waits base_s * 2**n, at most
    ``cap_s`` seconds, counted from the last failure."""

    free: int
    base_s: float
    cap_s: float
    window_s: float = 15 * 60

    def wait(self, failures: list[float], now: float) -> float:
        recent = [t for t in failures if t > now - self.window_s]
        over = len(recent) - self.free
        if over < 0:
            return 0.0
        delay = min(self.cap_s, self.base_s * (2 ** min(over, 30)))
        return max(0.0, recent[-1] + delay - now)


RULES: dict[str, Rule] = {
    "name": Rule(free=5, base_s=2.0, cap_s=60.0),
    "source": Rule(free=30, base_s=2.0, cap_s=300.0),
    "device": Rule(free=5, base_s=2.0, cap_s=60.0),
    "token": Rule(free=10, base_s=1.0, cap_s=60.0),
}


class Ledger(Protocol):
    """What the throttle reads from the store (``command.store``): failure times of one key after ``since``
    and after that key's last success. The store writes attempts with their audit entry
    (``record_signin``, ``record_token_refusal``), each under every key the attempt was judged by."""

    def throttle_failures(self, kind: str, key: str, *, since: float) -> list[float]: ...


def keys_for_sign_in(name: str, source: str, device: str | None = None) -> list[tuple[str, str]]:
    """The keys a sign-in attempt is judged and counted by: its device alone when it has one for this name,
    else its name and its source."""
    if device:
        return [("device", f"{name}\x1f{device}")]
    return [("name", str(name)[:64]), ("source", str(source)[:64])]


def wait_s(ledger: Ledger, keys: Iterable[tuple[str, str]], *, now: float,
           rules: Mapping[str, Rule] = RULES) -> float:
    """Seconds to wait before another attempt under ``keys`` is even checked (0.0: go ahead)."""
    longest = 0.0
    for kind, key in keys:
        rule = rules[kind]
        longest = max(longest, rule.wait(ledger.throttle_failures(kind, key, since=now - rule.window_s), now))
    return longest


def say_wait(seconds: float) -> str:
    s = max(1, int(seconds + 0.999))
    return f"{s} s" if s < 120 else f"{(s + 59) // 60} min"


def client_address(remote_addr: str | None, headers: Mapping[str, str] | Any, *, header: str | None,
                   hops: int = 1) -> str:
    """The client's address: the socket's, or (only when ``header`` is configured, i.e. the app sits behind
    a proxy that writes it) the entry ``hops`` places from the right of that header. An entry that is not a
    plausible address falls back to the socket's, so a header cannot smuggle text into the counters."""
    sock = remote_addr or "unknown"
    if not header:
        return sock
    value = headers.get(header) if headers is not None else None
    if not value:
        return sock
    parts = [p.strip() for p in str(value).split(",") if p.strip()]
    if len(parts) < hops:
        return sock
    addr = parts[-hops]
    import ipaddress
    try:
        return str(ipaddress.ip_address(addr.strip("[]")))
    except ValueError:
        return sock
