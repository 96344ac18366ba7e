"""Finding: "aaaaaaaaaaaa" and "password1234" passed as passwords (an admin's too): only the length was checked.
Now zxcvbn must score a chosen password 3 or more, counting the user's name and the product's words."""
from __future__ import annotations

import pytest

from command.errors import PermissionDenied
from command.security.auth import Users
from command.store.sqlite import Store

WEAK = ["aaaaaaaaaaaa", "password1234", "qwertyuiop12", "abcdefghijkl", "admin1234567", "Password1234!",
        "111111111111", "wangwei12345", "yzt-yzt-yzt-yzt"]
STRONG = ["correct-horse-battery", "the same long password", "kS9-vq2mZr_Lw8eP"]


@pytest.fixture
def users(tmp_path):
    s = Store(tmp_path / "pw.db")
    yield Users(s)
    s.close()


@pytest.mark.parametrize("pw", WEAK)
@pytest.mark.parametrize("role", ["officer", "admin"])
def test_a_guessable_password_is_refused_for_every_role(users, pw, role):
    with pytest.raises(PermissionDenied, match="too easy to guess"):
        users.add("wangwei", role, pw)
    assert users.list() == []


@pytest.mark.parametrize("pw", WEAK)
def test_a_guessable_password_is_refused_when_changed(users, pw):
    users.add("wangwei", "commander", STRONG[0])
    with pytest.raises(PermissionDenied, match="too easy to guess"):
        users.set_password("wangwei", pw)
    assert users.authenticate("wangwei", STRONG[0], source="10.0.0.1").name == "wangwei"


def test_the_users_own_name_counts_as_known(users):
    # strong for zxcvbn on its own (score 4), but it is the user's name and a digit
    users.add("other", "officer", "zhangsanfeng1")
    with pytest.raises(PermissionDenied, match="too easy to guess"):
        users.add("zhangsanfeng", "officer", "zhangsanfeng1")


@pytest.mark.parametrize("pw", STRONG)
def test_strong_and_generated_passwords_pass(users, pw):
    assert users.add("li" + str(len(pw)), "officer", pw) == pw
    generated = users.add("gen" + str(len(pw)), "admin")
    assert len(generated) >= 20


def test_a_megabyte_password_is_refused_before_hashing(users):
    with pytest.raises(PermissionDenied, match="at most"):
        users.add("big", "officer", "x" * 1_000_000)
