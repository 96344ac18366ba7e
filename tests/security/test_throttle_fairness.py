"""Finding: failed sign-ins and failed tokens shared one throttle keyed on the client address. Five wrong
passwords for a named commander locked that commander out (with the right password) and every other user
from that address, and made a valid dispatch token get 401; five wrong bearer tokens locked out a
commander's sign-in. Behind a proxy or NAT everyone shares one address.

Now: people by name and by source (or by a device that signed in before), systems by token, progressive
delays never longer than a minute for a name, and a valid token is always accepted."""
from __future__ import annotations

import pytest

from command.errors import PermissionDenied
from command.security import throttle
from command.security.auth import Throttled, Tokens, Users
from command.store.sqlite import Store

PW = "correct-horse-battery"
NAT = "10.9.9.9"


class Clock:
    def __init__(self, t: float = 1_900_000_000.0) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


@pytest.fixture
def world(tmp_path):
    store = Store(tmp_path / "t.db")
    clock = Clock()
    users, tokens = Users(store, clock=clock), Tokens(store, clock=clock)
    for name, role in (("cmd1", "commander"), ("officer1", "officer")):
        users.add(name, role, PW)
    yield store, clock, users, tokens
    store.close()


def _fail(users, clock, name, n, source=NAT, step=0.0):
    for _ in range(n):
        with pytest.raises(PermissionDenied):
            users.authenticate(name, "wrong-horse-battery", source=source)
        clock.t += step


def test_five_wrong_passwords_do_not_keep_the_commanders_own_browser_out(world):
    store, clock, users, _ = world
    _fail(users, clock, "cmd1", 5)
    # the commander's browser signed in there before: it is judged by its own failures only
    assert users.authenticate("cmd1", PW, source=NAT, device="desk-browser").name == "cmd1"


def test_someone_elses_failures_never_lock_a_name_out_for_more_than_a_minute(world):
    _, clock, users, _ = world
    _fail(users, clock, "cmd1", 40, step=1.0)          # a guesser keeps going
    with pytest.raises(Throttled) as refused:
        users.authenticate("cmd1", PW, source="10.1.1.1")
    assert 0 < refused.value.wait_s <= 60
    clock.t += 60
    assert users.authenticate("cmd1", PW, source="10.1.1.1").name == "cmd1"


def test_failures_for_one_name_do_not_touch_other_users_at_that_address(world):
    _, clock, users, _ = world
    _fail(users, clock, "cmd1", 5)
    assert users.authenticate("officer1", PW, source=NAT).name == "officer1"


def test_a_valid_token_is_never_refused_for_anyones_failures(world):
    store, clock, users, tokens = world
    good = tokens.issue("119", "officer")
    _fail(users, clock, "cmd1", 30)
    for _ in range(50):
        with pytest.raises(PermissionDenied):
            tokens.verify("yzt_wrong", source=NAT)
    assert tokens.verify(good, source=NAT).name == "119"


def test_wrong_tokens_do_not_touch_sign_in(world):
    _, clock, users, tokens = world
    for _ in range(50):
        with pytest.raises(PermissionDenied):
            tokens.verify("yzt_wrong", source=NAT)
    assert users.authenticate("cmd1", PW, source=NAT).name == "cmd1"


def test_refused_tokens_are_slowed_progressively_and_say_how_long(world):
    _, clock, _, tokens = world
    for _ in range(throttle.RULES["token"].free):
        with pytest.raises(PermissionDenied) as e:
            tokens.verify("yzt_wrong", source=NAT)
        assert not isinstance(e.value, Throttled)
    with pytest.raises(PermissionDenied):
        tokens.verify("yzt_wrong", source=NAT)           # one over the allowance: counted, a wait begins
    with pytest.raises(Throttled) as e:
        tokens.verify("yzt_wrong", source=NAT)
    assert 0 < e.value.wait_s <= throttle.RULES["token"].cap_s


def test_hammering_during_a_wait_does_not_lengthen_it(world):
    _, clock, users, _ = world
    _fail(users, clock, "cmd1", 6)
    for _ in range(100):
        with pytest.raises(Throttled):
            users.authenticate("cmd1", "guess", source=NAT)
    clock.t += 60
    assert users.authenticate("cmd1", PW, source=NAT).name == "cmd1"


def test_a_password_spray_from_one_address_is_slowed(world):
    _, clock, users, _ = world
    for i in range(throttle.RULES["source"].free + 1):
        with pytest.raises(PermissionDenied):
            users.authenticate(f"nobody{i}", "Spring2026!", source=NAT)
    with pytest.raises(Throttled):
        users.authenticate("nobody-else", "Spring2026!", source=NAT)


def test_the_proxy_header_is_believed_only_when_configured():
    headers = {"X-Forwarded-For": "203.0.113.7, 10.0.0.2"}
    assert throttle.client_address("10.0.0.1", headers, header=None) == "10.0.0.1"
    assert throttle.client_address("10.0.0.1", headers, header="X-Forwarded-For") == "10.0.0.2"
    assert throttle.client_address("10.0.0.1", headers, header="X-Forwarded-For", hops=2) == "203.0.113.7"
    assert throttle.client_address("10.0.0.1", {"X-Forwarded-For": "cmd1'; --"}, header="X-Forwarded-For") \
        == "10.0.0.1"
    assert throttle.client_address("10.0.0.1", {}, header="X-Forwarded-For") == "10.0.0.1"
