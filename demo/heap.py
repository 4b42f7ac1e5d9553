"""The server process's heap, as Python's garbage collector sees it.

A full collection walks every object the collector tracks, holding the GIL all along: every training
worker and every stream waits. After start-up the server holds many such objects (torch, Gradio, the
page), none of them garbage. ``freeze`` hands them to ``gc.freeze``: the collector skips them from then
on, so each full pause is short. Pauses come more often then (Python starts one when the objects that
survived since the last outnumber a quarter of those it keeps, and it no longer counts the frozen ones),
so their total time stays about the same: what changes is that no stream or run stops for long.
``Pauses`` counts the full collections and their time, for the server's /stats. Figures: docs/performance.md.
"""
from __future__ import annotations

import gc
import time
from typing import Any


def freeze() -> int:
    """Collect what is garbage now, then move every object left out of the collector's sight (they stay as
    long as the process, as they would anyway). Returns how many were frozen. For the server's own process
    only: a process that builds many apps (the tests) would keep each of them."""
    gc.collect()
    gc.freeze()
    return gc.get_freeze_count()


class Pauses:
    """The full (generation 2) collections since ``watch()``: how many, their total and longest time."""

    def __init__(self) -> None:
        self.count = 0
        self.seconds = 0.0
        self.longest = 0.0
        self._began: float | None = None

    def __call__(self, phase: str, info: dict[str, Any]) -> None:
        """The collector's callback: one collection at a time (it holds the GIL), so no lock is needed."""
        if info.get("generation") != 2:
            return
        if phase == "start":
            self._began = time.perf_counter()
        elif self._began is not None:
            took, self._began = time.perf_counter() - self._began, None
            self.count += 1
            self.seconds += took
            self.longest = max(self.longest, took)

    def watch(self) -> "Pauses":
        if self not in gc.callbacks:
            gc.callbacks.append(self)
        return self

    def stats(self) -> dict[str, Any]:
        return {"full_collections": self.count, "full_collection_seconds": round(self.seconds, 3),
                "full_collection_longest": round(self.longest, 3), "frozen_objects": gc.get_freeze_count()}


PAUSES = Pauses()
