"""Public faces that cost nothing to import: a package lists what it offers in ``__all__`` and loads the
module behind a name only when that name is first used (PEP 562), so ``import command.alerts.channels``
does not pull in geopandas through the warned area.

    __getattr__, __dir__ = lazy_face(__name__, {"Outbox": "outbox", "build_area": "area"})
"""
from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any


def lazy_face(package: str, names: dict[str, str]) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """``__getattr__`` and ``__dir__`` for ``package``: ``names`` maps a public name to its module."""
    def __getattr__(name: str) -> Any:
        module = names.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(f"{package}.{module}"), name)
        globals_of(package)[name] = value
        return value

    def __dir__() -> list[str]:
        return sorted(names)

    return __getattr__, __dir__


def globals_of(package: str) -> dict[str, Any]:
    return vars(importlib.import_module(package))
