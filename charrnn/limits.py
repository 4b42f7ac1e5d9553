"""The limits a server's operator sets for every session of a lab (environment variables, read when the lab is made).

``CHARRNN_MAX_RUNS`` runs training at once (default 48; more wait in a queue and see their place),
``CHARRNN_BUSY_RUNS`` from how many runs the server counts as busy (default 4 per core), and
``CHARRNN_BUSY_EPOCHS``, the most epochs a run started while busy may have (default 300),
``CHARRNN_IDLE_SECONDS`` (default 120) and ``CHARRNN_RECONNECT_SECONDS`` (default 60).
"""
from __future__ import annotations

from dataclasses import dataclass

from .files import env_int
from .threads import cpu_cores


@dataclass(frozen=True)
class Limits:
    max_runs: int = 48               # runs training at once; more wait in the scheduler's queue
    busy_runs: int = 8               # from this many runs training the server is busy
    busy_epochs: int = 300           # the most epochs a run started while the server is busy may have
    idle_seconds: float = 120.0      # a page's session with no sign of life for this long closes
    reconnect_seconds: float = 60.0  # and one whose pages are all gone, after this long

    @classmethod
    def from_env(cls) -> "Limits":
        return cls(max_runs=env_int("CHARRNN_MAX_RUNS", 48), busy_runs=env_int("CHARRNN_BUSY_RUNS", 4 * cpu_cores()),
                   busy_epochs=env_int("CHARRNN_BUSY_EPOCHS", 300),
                   idle_seconds=env_int("CHARRNN_IDLE_SECONDS", 120, low=5),
                   reconnect_seconds=env_int("CHARRNN_RECONNECT_SECONDS", 60, low=1))

