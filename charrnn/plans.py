"""A plan of runs: the steps a session runs one after another (a lesson's runs, compared on one chart).

Each step makes its run's Trainer from the run before (None for the first), so a step may continue the
previous run's model (a ``Continues`` step: its run goes on from that run's epochs). The next step starts
when a run ends by itself (finished or diverged); a Stop, an ordinary Train, or a run that fails ends the
plan.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Callable

if TYPE_CHECKING:
    from .runs import Run
    from .train import Trainer

Step = Callable[["Run | None"], "Trainer"]  # makes a run's Trainer from the run before it (None: the first)


class Continues:
    """A step that goes on with the previous run's model (``Trainer.fork``): its run continues that run, whose
    epochs are its own first ones (a chart of both draws only the epochs after them)."""

    def __init__(self, make: Step):
        self.make = make

    def __call__(self, previous: Run | None) -> Trainer:
        return self.make(previous)


class Plan:
    """The steps of a plan still to start, and the caption its runs carry (what to look at)."""

    def __init__(self, steps: list[Step], caption: str):
        if not steps:
            raise ValueError("a plan needs at least one step")
        self.steps = list(steps)
        self.caption = caption

    def first(self) -> Step:
        """The first step, taken off the plan."""
        return self.steps.pop(0)

    def after(self, ended: Run) -> Step | None:
        """The step that follows ``ended``, taken off the plan; None when the plan ends there (no steps left,
        or the run did not end by itself)."""
        if not self.steps or ended.status not in ("finished", "diverged"):
            return None
        return self.steps.pop(0)

    @property
    def done(self) -> bool:
        return not self.steps
