"""Two costs of Gradio's own that a classroom pays many times over, cut where they arise (``cut()``, called
once by app.py before the page is built). Both leave what Gradio computes unchanged.

1. Gradio tries ``import matplotlib`` twice around every step of every event; where it is not installed each
   try searches every folder of sys.path: with fifty pages streaming, a tenth of the server's time (py-spy,
   bench/watchers.py). Marked absent, the import fails at once, as it would anyway.
2. Each new browser session (a student's page opening, a watcher joining) makes Gradio build the config of
   every block on the page (``SessionState``), and each block's config starts with
   ``inspect.signature(type(block).__init__)``: 153 signatures per session, 94% of the server's time for a
   new session's first request (py-spy), 14 ms per session here (6.5 ms with this). A class's ``__init__``
   keeps its signature, so ``gradio.blocks`` gets an ``inspect`` whose ``signature`` remembers those; every
   other call (and any other function of ``inspect``) goes to the real module. ``bench/new_sessions.py``
   measures it.
"""
from __future__ import annotations

import functools
import importlib.util
import inspect
import sys
import types
from typing import Any

_init_signature = functools.lru_cache(maxsize=None)(inspect.signature)


class _Inspect(types.ModuleType):
    """``inspect`` as ``gradio.blocks`` sees it: the same module, with the signatures of ``__init__``
    methods remembered."""

    def __init__(self) -> None:
        super().__init__("inspect", inspect.__doc__)

    def __getattr__(self, name: str) -> Any:
        return getattr(inspect, name)

    @staticmethod
    def signature(obj: Any, *args: Any, **kwargs: Any) -> inspect.Signature:
        if args or kwargs or getattr(obj, "__name__", None) != "__init__":
            return inspect.signature(obj, *args, **kwargs)
        try:
            return _init_signature(obj)
        except TypeError:  # not hashable: asked afresh each time
            return inspect.signature(obj)


def cut() -> None:
    """Apply both (idempotent)."""
    if importlib.util.find_spec("matplotlib") is None:
        sys.modules["matplotlib"] = None  # type: ignore[assignment]
    import gradio.blocks
    if gradio.blocks.__dict__.get("inspect") is inspect:
        gradio.blocks.inspect = _Inspect()  # type: ignore[attr-defined]
