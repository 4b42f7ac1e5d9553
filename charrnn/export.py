"""Take the results home: a session's runs as files to keep, open elsewhere or compare later.

- ``csv_text``: one row per epoch per run (a spreadsheet, pandas, R);
- ``json_text``: every run whole, its settings, epochs, samples and the settings changed while it trained;
- ``html_text``: plotly figures (the page's charts) in one HTML file that opens offline and stays interactive;
- ``filename``: a name to save one of them under.

Numbers are written at full precision (``repr``), so that what is read back is exactly what the run measured.
"""
from __future__ import annotations

import csv
import dataclasses
import html
import io
import json
import math
from typing import Any

from .events import EpochEnd
from .runs import RunView

FORMAT, VERSION = "charrnn-runs", 1  # json_text's "format" and "version": a reader knows what it opened
CSV_COLUMNS = ("run", "label", "epoch", "perplexity", "val_perplexity", "grad_norm", "grad_norm_max", "clipped",
               "chars_per_sec", "seconds", "lr", "theta")
FORMATS = ("csv", "json", "html")
MAX_NAMED = 8  # runs a file name lists by number; more would make names longer than file systems allow


def _cell(value: Any) -> str:
    """A CSV field: empty for None, a float as repr (it reads back as the same float), anything else as text."""
    if value is None:
        return ""
    return repr(float(value)) if isinstance(value, float) else str(value)


def settings_at(view: RunView, epoch: EpochEnd) -> tuple[float, float | None]:
    """(lr, θ) an epoch ended with. A history recorded before epochs carried them (lr None) has the run's
    configured ones; otherwise θ None means clipping was off."""
    if epoch.lr is None:
        return view.config.lr, view.config.clip_theta
    return epoch.lr, epoch.theta


def csv_text(views: list[RunView]) -> str:
    """A header (``CSV_COLUMNS``) and one row per epoch of every run, in the runs' order. An empty field is a
    value there is none of: no held-out text (val_perplexity), clipping off (theta). Lines end in "\\n"."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for v in views:
        for e in v.history:
            lr, theta = settings_at(v, e)
            writer.writerow([_cell(x) for x in (
                v.number, v.label, e.epoch, e.perplexity, e.val_perplexity, e.grad_norm, e.grad_norm_max,
                e.clipped, e.chars_per_sec, e.seconds, lr, theta)])
    return out.getvalue()


def finite(value: Any) -> Any:
    """``value`` with every non-finite float as the string "inf", "-inf" or "nan" (strict JSON has no such
    numbers), through dicts, lists and tuples."""
    if isinstance(value, float) and not math.isfinite(value):
        return "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf")
    if isinstance(value, dict):
        return {k: finite(x) for k, x in value.items()}
    if isinstance(value, (list, tuple)):
        return [finite(x) for x in value]
    return value


def run_dict(view: RunView) -> dict[str, Any]:
    """One run as ``json_text`` writes it (non-finite floats still floats)."""
    return {"number": view.number, "label": view.label, "status": view.status,
            "settings": dataclasses.asdict(view.config), "vocab_size": view.vocab_size, "device": view.device,
            "history": [e.as_dict() for e in view.history],
            "samples": [{"epoch": s.epoch, "prefix": s.prefix, "text": s.text} for s in view.samples],
            "changes": [c.as_dict() for c in view.changes]}


def json_text(views: list[RunView]) -> str:
    """``{"format": "charrnn-runs", "version": 1, "runs": [...]}``, each run with its number, label, status,
    settings (``TrainConfig``'s fields), vocab_size, device, history (``EpochEnd``'s fields, as recorded: lr
    and theta None in a history from before epochs carried them), samples and changes (``Change``'s fields).

    Strict JSON: a non-finite number (the perplexity of a run that diverged) is written as the string "inf",
    "-inf" or "nan", which ``float()`` reads back; None is null. Text stays as it is (UTF-8, not escaped)."""
    data = {"format": FORMAT, "version": VERSION, "runs": [run_dict(v) for v in views]}
    return json.dumps(finite(data), ensure_ascii=False, allow_nan=False, indent=1)


def html_text(figures: list[dict[str, Any]], title: str) -> str:
    """One standalone HTML page holding plotly ``figures`` ({"data": [...], "layout": {...}}, as the page's
    charts are) one below the other, interactive (hover, zoom, the legend), with plotly.js embedded once in its
    head: it opens offline, and each chart adds only its own data. Each figure is validated by plotly (a
    ValueError names a property plotly does not know); one without a template of its own is drawn without
    plotly.py's default template, as the page draws it (plotly.js's defaults)."""
    import plotly.graph_objects as go  # here: reading the other exports needs no plotly
    import plotly.io as pio
    from plotly.offline import get_plotlyjs

    charts = []
    for figure in figures:
        fig = go.Figure(figure)
        if "template" not in figure.get("layout", {}):
            fig.update_layout(template="none")
        charts.append(pio.to_html(fig, include_plotlyjs=False, full_html=False))
    body = "\n".join(f"<div class='chart'>{c}</div>" for c in charts)
    return ("<!DOCTYPE html>\n<html>\n<head>\n<meta charset=\"utf-8\">\n"
            "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
            f"<title>{html.escape(title)}</title>\n"
            "<style>body{font-family:sans-serif;margin:16px;} .chart{margin-bottom:24px;}</style>\n"
            "<script type=\"text/javascript\">window.PlotlyConfig = {MathJaxConfig: 'local'};</script>\n"
            f"<script type=\"text/javascript\">{get_plotlyjs()}</script>\n"
            f"</head>\n<body>\n<h1>{html.escape(title)}</h1>\n{body}\n</body>\n</html>\n")


def filename(views: list[RunView], fmt: str) -> str:
    """A safe file name for an export of ``views``: ``charrnn-run3.csv``, ``charrnn-runs-1-2-3.json``,
    ``charrnn-12-runs.html`` beyond ``MAX_NAMED`` runs, ``charrnn-runs.csv`` for none. ``fmt``: one of
    FORMATS (ValueError otherwise)."""
    if fmt not in FORMATS:
        raise ValueError(f"fmt={fmt!r} is not allowed: choose one of {', '.join(FORMATS)}")
    numbers = [int(v.number) for v in views]  # only digits reach the name
    if len(numbers) == 1:
        stem = f"run{numbers[0]}"
    elif len(numbers) > MAX_NAMED:
        stem = f"{len(numbers)}-runs"
    else:
        stem = "-".join(["runs", *map(str, numbers)])
    return f"charrnn-{stem}.{fmt}"
