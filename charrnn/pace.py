"""A run's pace: the thread-seconds one of its epochs costs, read from the epochs it has trained (its remaining
time, ``Run.work_left``, is the epochs left at this pace)."""
from __future__ import annotations

PACE_WINDOW = 20     # recent epochs a run's pace reads at least (the mean of 20 noisy epochs: a few % off),
#                      and at most half of those trained with its thread count, the longer the steadier
PACE_OUTLIER = 3.0   # an epoch counts at most this many times the window's median (a one-off stall)


def pace(costs: list[tuple[float, int]]) -> float:
    """Thread-seconds an epoch costs, from a run's epochs so far (``costs``: (thread-seconds, threads) in order;
    at least one). Its epochs with the thread count of the last (two threads are not twice as fast as one: a
    run that other runs joined or left trains at another pace), once there are 3; without the first of them
    (the run's warm-up, or an epoch begun at the other count) once there are others; the last ``PACE_WINDOW``
    of them, or half of them if more;
    each counted at most ``PACE_OUTLIER`` times their median; and their mean, not their median, since the time
    left is a sum of epochs."""
    same = [c for c, t in costs if t == costs[-1][1]]
    mine = same if len(same) >= 3 else [c for c, _ in costs]
    mine = mine[1:] if len(mine) > 1 else mine
    recent = mine[-max(PACE_WINDOW, len(mine) // 2):]
    cap = PACE_OUTLIER * sorted(recent)[len(recent) // 2]
    return sum(min(c, cap) for c in recent) / len(recent)
