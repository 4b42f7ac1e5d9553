"""A class experiment's results to take home: every run's perplexity per epoch (CSV), and the class chart with the
results in one standalone page that opens offline (``demo.class_chart``'s figures)."""
from __future__ import annotations

import csv
import io
from typing import Any

from charrnn import export
from demo.charts import NORMAL
from demo.class_chart import class_figure, results_figure
from demo.languages import in_language


def _cell(value: Any) -> str:
    """A CSV field: empty for None, a float at full precision (repr: inf, nan), anything else as text."""
    return "" if value is None else repr(float(value)) if isinstance(value, float) else str(value)


def csv_text(entries: list[dict[str, Any]], free: list) -> str:
    """Every run's perplexity per epoch (the students' order, their runs oldest first), numbers in full; a run with no
    epoch yet has one row with empty epoch and perplexity. Clip is two columns: clip (True/False) and theta."""
    names = [n for f in free for n in (("clip", "theta") if f.name == "clip" else (f.name,))]
    writer = csv.writer(out := io.StringIO(), lineterminator="\n")
    writer.writerow(["nickname", "run", "latest", *names, "epoch", "perplexity", "status"])
    for e in sorted(entries, key=lambda e: (e["id"], e["run"])):
        head = [e.get("nickname", ""), e["run"], bool(e.get("latest", True)),
                *((e.get("settings") or {}).get(n) for n in names)]
        for epoch, p in list(enumerate(e.get("perplexities") or [], 1)) or [(None, None)]:
            writer.writerow([_cell(x) for x in (*head, epoch, p if p is None else float(p), e.get("status"))])
    return out.getvalue()


def html_text(entries: list[dict[str, Any]], free: list, question: str, lang: str = "both") -> str:
    """The class chart and the results in one standalone page that opens offline and stays interactive."""
    figures = [class_figure(entries, free, question, NORMAL, lang), results_figure(entries, free, NORMAL, lang)]
    return export.html_text(figures, question or in_language("班级实验 · class experiment", lang))

