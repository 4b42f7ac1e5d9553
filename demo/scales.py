"""Log axes that survive a divergence: where a run's curve leaves the chart, the range of what stays on it, and
ticks that say their values.

A run that diverges climbs to perplexities like 1e301 before its loss becomes infinite: on an axis that spans
it, every other run is a flat line. So a chart has a ceiling (for perplexity, ``CEILING`` times the vocabulary
size: worse than guessing by that much is off the chart). A run whose curve ends above the ceiling, or whose
loss became infinite, is cut where it leaves for good (``cut``): drawn up to its first point above, which takes
the line through the top edge, and marked there (``exit_x``). The axis spans the points that stay on the chart
(``log_range``); its ticks are decades (or 1-2-5 where fewer than two decades show), labelled with their values
(``log_ticks``).

Numbers only: ``demo.charts`` draws them.
"""
from __future__ import annotations

import math
from typing import Iterable

CEILING = 10.0      # perplexity's chart ends a decade above the vocabulary size (the uniform guess)
MARGIN = 0.12       # decades of room above and below the points shown
MIN_SPAN = 0.75     # decades an axis spans at least: two of its 1-2-5 ticks (0.4 decades apart at most) show
MAX_TICKS = 8       # decade ticks at most: beyond, every second (third...) decade
SUPERSCRIPT = str.maketrans("-0123456789", "⁻⁰¹²³⁴⁵⁶⁷⁸⁹")


def shown(value: float | None, ceiling: float = math.inf) -> bool:
    """A value a log chart can show below ``ceiling``: finite, above 0, not above the ceiling."""
    return value is not None and math.isfinite(value) and 0 < value <= ceiling


def cut(values: list[float], ceiling: float, diverged: bool = False) -> int | None:
    """Where a curve leaves the chart for good: the index of the first point of its last stretch above
    ``ceiling`` (it is drawn up to that point, the rest is not); ``len(values)`` for a run that diverged (its
    loss became infinite) while still on the chart; None for a curve that ends on it. A stretch above the
    ceiling that comes back is no cut: the line leaves through the top edge and comes back."""
    i = len(values)
    while i > 0 and not shown(values[i - 1], ceiling):
        i -= 1
    if i < len(values):
        return i
    return i if diverged else None


def exit_x(points: list[tuple[float, float]], top: float) -> float:
    """The x at which a cut curve's line meets the top edge (``top``, in decades): the line from its last point
    on the chart to the first above, interpolated as the log axis draws it. ``points``: (epoch, value), the
    curve as drawn, ending with its first point above (or, for a run that diverged on the chart, not: then
    the epoch after its last)."""
    if not points:
        return 1.0
    x1, y1 = points[-1]
    if shown(y1, 10 ** top):
        return x1 + 1  # diverged on the chart: its next epoch's loss was infinite
    if len(points) == 1 or not shown(points[-2][1]):
        return x1
    x0, y0 = points[-2]
    ly0, ly1 = math.log10(y0), math.log10(y1)
    share = (top - ly0) / (ly1 - ly0) if ly1 > ly0 else 1.0
    return x0 + min(max(share, 0.0), 1.0) * (x1 - x0)


def log_range(values: Iterable[float], ceiling: float = math.inf) -> tuple[float, float] | None:
    """[low, high] in decades (log10, as plotly's log axes take a range) spanning the values a chart shows
    (finite, above 0, not above ``ceiling``), with ``MARGIN`` of room each way and at least ``MIN_SPAN``;
    never above ``ceiling``. None when there is nothing to show."""
    logs = [math.log10(v) for v in values if shown(v, ceiling)]
    if not logs:
        return None
    low, high = min(logs) - MARGIN, max(logs) + MARGIN
    if high - low < MIN_SPAN:
        middle = (low + high) / 2
        low, high = middle - MIN_SPAN / 2, middle + MIN_SPAN / 2
    if math.isfinite(ceiling):
        high = min(high, math.log10(ceiling))
        low = min(low, high - MIN_SPAN)
    return low, high


def log_ticks(low: float, high: float) -> tuple[list[float], list[str]]:
    """Tick values and their labels for a log axis from 10**low to 10**high: every decade (1, 10, 100...; every
    second or third one beyond ``MAX_TICKS``, 1 among them), or 1, 2 and 5 in each decade where fewer than two
    decades fall inside. Each tick is labelled with its value (0.2, 1000, 10⁴), never with plotly's bare minor
    digits."""
    first, last = math.ceil(low - 1e-9), math.floor(high + 1e-9)
    if last - first >= 1:
        step = math.ceil((last - first + 1) / MAX_TICKS)
        values = [10.0 ** e for e in range(first, last + 1) if e % step == 0]  # 1 is one of them, when inside
    else:
        values = [m * 10.0 ** e for e in range(first - 1, last + 1) for m in (1, 2, 5)
                  if low - 1e-9 <= math.log10(m * 10.0 ** e) <= high + 1e-9]
    return values, [tick_label(v) for v in values]


def tick_label(value: float) -> str:
    """0.001 ... 1000 as they are; beyond, as powers of ten (10⁴, 2×10⁻⁵)."""
    if 1e-3 <= value < 1e4:
        return f"{value:g}"
    exponent = math.floor(math.log10(value) + 1e-9)
    mantissa = round(value / 10.0 ** exponent)
    power = "10" + str(exponent).translate(SUPERSCRIPT)
    return power if mantissa == 1 else f"{mantissa}×{power}"
