"""Where the time goes: pyinstrument over a piece of the bench, saved as text under bench/profiles/,
and summarised as the project functions with the largest share of the wall time (outermost call only).
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

from bench.common import ROOT

OUT = ROOT / "bench" / "profiles"
PROJECT = tuple(str(ROOT / d) for d in ("incidents", "layers", "command", "settings.py"))


def _walk(frame, seen: frozenset, acc: dict[str, float], parent_ours: bool = False) -> None:
    """Project functions, and the library calls they make directly (the boundary), each counted once
    per call chain (recursion and re-entry do not double count)."""
    path = frame.file_path or ""
    ours = path.startswith(PROJECT)
    key = None
    if ours or (parent_ours and "site-packages" in path):
        rel = path.replace(str(ROOT) + "/", "").split("site-packages/")[-1]
        key = f"{rel}:{frame.function}"
    if key and key not in seen:
        acc[key] = acc.get(key, 0.0) + frame.time
        seen = seen | {key}
    for ch in frame.children:
        _walk(ch, seen, acc, ours or (parent_ours and not key and "site-packages" not in path))


def _shown(path: Path) -> str:
    return str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else str(path)


def profile(name: str, fn: Callable[[], Any], *, top: int = 12, out: Path = OUT) -> dict:
    """Run fn under pyinstrument; returns the top functions by inclusive share of the wall time."""
    try:
        from pyinstrument import Profiler
    except ImportError:
        return {"skipped": "pyinstrument is not installed (pip install pyinstrument)"}
    prof = Profiler(interval=0.0005)
    prof.start()
    fn()
    session = prof.stop()
    out.mkdir(parents=True, exist_ok=True)
    (out / f"{name}.txt").write_text(prof.output_text(unicode=True, color=False), encoding="utf-8")
    root = session.root_frame()
    total = root.time if root else 0.0
    acc: dict[str, float] = {}
    if root:
        _walk(root, frozenset(), acc)
    rows = sorted(acc.items(), key=lambda kv: -kv[1])
    return {"wall_s": round(total, 3), "file": _shown(out / f"{name}.txt"),
            "top_inclusive": [{"function": k, "share": round(v / total, 3)} for k, v in rows[:top] if total]}
