"""Fixtures of the exercise tests: a hand-moved wall clock and a registry over this test's var_dir."""
from __future__ import annotations

import pytest

from command.drills import registry
from exercise_helpers import Wall
from settings import load_settings


@pytest.fixture
def wall() -> Wall:
    return Wall()


@pytest.fixture
def book(wall):
    b = registry.Exercises(load_settings(), wall=wall, conduct=False)
    yield b
    b.close()
