"""A class experiment on the projector: every student's run on one chart, coloured by the value they chose.

- ``class_figure``: the class chart, perplexity per epoch on a log axis as ``demo.charts.perplexity_figure`` draws
  it (its span, ticks, uniform-guess line at V, a ✕ where a run left the chart), a line per student run coloured
  by the first free setting (the key), the highlighted run thick and on top, older runs thin grey (or left out);
- ``results_figure``: each student's latest perplexity against the value they chose, one marker each;
- ``table_html``: the same as a ranked table, best first (what the class takes home: ``demo.class_export``).

Colours are fixed by the teacher's range (``Free.low``..``high``; log10 of it for lr and θ), not by the values the
students happen to have chosen: a student who joins with a new value gets a colour of their own, nobody else's
colour changes under the class's eyes, and the page grows the chart instead of redrawing it (``demo.growth``).
The scale is Viridis without its palest tenth (``SCALE``), which a projector washes out on white; a choice setting
takes ``demo.charts.COLORS`` in the order of its choices; clipping off is a fixed ``NEUTRAL``.

Nicknames and the question are the users' text: escaped everywhere (plotly draws tags in its texts too). Plain
dicts, no plotly objects (the page renders these for every look at every change).
"""
from __future__ import annotations

import functools
import html
import math
import unicodedata
from typing import Any

from plotly.colors import sample_colorscale

from demo import scales
from demo.charts import COLORS, NORMAL, Style, _hline, base_layout, log_axis, rounded, say, thin, uniform_key
from demo.languages import in_language

SCALE = [[i / 8, c] for i, c in enumerate(sample_colorscale("Viridis", [0.9 * i / 8 for i in range(9)]))]
NEUTRAL = "#444444"    # clipping off, or a value the key does not know
OLDER = "#cfcfcf"      # a student's earlier runs
HIGHLIGHT = 3.0        # the highlighted run's line, times the style's
TITLE_LINES = 3        # the question wraps on at most this many lines
OLDER_MODES = ("grey", "hidden")
TEXTS = {"waiting": "等待学生加入并训练 · Waiting for the students' runs", "off": "关 · off",
    "no_clip": "不裁剪 · no clipping", "older": "较早的运行 · older runs", "run": "第 {n} 次 · run {n}",
    "results": "每位学生的困惑度 · each student's perplexity", "rank": "名次 · rank", "nickname": "昵称 · nickname",
    "epoch": "周期 · epoch", "ppl": "困惑度 · perplexity", "status": "状态 · status"}  # languages.in_language
NAMES = {"lr": "学习率 · lr", "clip": "裁剪 θ · clipping θ", "model": "模型 · model", "sampling": "采样 · sampling",
         "num_hiddens": "隐藏单元 · hidden units", "optimizer": "优化器 · optimizer"}
SHORT = {"lr": "lr {}", "num_hiddens": "h {}"}  # a value in a hover, where no column names it
STATUS = {"queued": "排队中 · queued", "running": "训练中 · training", "training": "训练中 · training",
          "paused": "已暂停 · paused", "finished": "已完成 · finished", "stopped": "已停止 · stopped",
          "diverged": "发散 · diverged", "error": "出错 · error"}
def _t(key: str, lang: str, lines: bool = False, **values: Any) -> str:
    text = TEXTS[key].format(**values)
    return text.replace(" · ", "<br>") if lines and lang == "both" else in_language(text, lang)


def chart_text(text: Any) -> str:
    """User text as plotly shows it, never markup: tags escaped (quotes not: plotly knows no &quot;), % an entity."""
    return html.escape(str(text), quote=False).replace("%", "&#37;")


def _value(entry: dict[str, Any], free: Any) -> Any:
    """An entry's value of a free setting; for clip its θ, or None when clipping is off."""
    s = entry.get("settings") or {}
    return (s.get("theta") if s.get("clip") else None) if free.name == "clip" else s.get(free.name)


def value_text(value: Any, free: Any, lang: str) -> str:
    """A value as the table writes it: 10, 0.01, θ 0.01, 关 · off, scratch-gru (escaped HTML)."""
    if value is None:
        return in_language(TEXTS["off"], lang) if free.name == "clip" else "—"
    if free.scale != "choice" and isinstance(value, (int, float)) and not isinstance(value, bool):
        return f"θ {value:g}" if free.name == "clip" else f"{value:g}"
    return html.escape(str(value))


def _settings_text(entry: dict[str, Any], free: list, lang: str) -> str:
    """Every free setting's value of a run, for its hover: lr 10 · θ 0.01 · scratch-gru."""
    parts = [_t("no_clip", lang) if f.name == "clip" and _value(entry, f) is None else
             SHORT.get(f.name, "{}").format(value_text(_value(entry, f), f, lang)) for f in free]
    return " · ".join(parts).replace("%", "&#37;")


def _position(value: Any, free: Any) -> float | None:
    """Where a value sits on the colour scale, 0..1 over the teacher's range (clamped); None: no colour of it."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        return None
    if free.low is None or free.high is None:
        return 0.5
    v, low, high = float(value), float(free.low), float(free.high)
    if free.scale == "log":
        if min(v, low, high) <= 0:
            return None
        v, low, high = math.log10(v), math.log10(low), math.log10(high)
    return 0.5 if high <= low else min(max((v - low) / (high - low), 0.0), 1.0)


def color_of(entry: dict[str, Any], key: Any) -> str:
    """A run's colour: its value of the key (the first free setting) on the scale, or its choice's colour."""
    if key is None:
        return COLORS[0]
    value = _value(entry, key)
    if key.scale == "choice":
        return COLORS[key.choices.index(value) % len(COLORS)] if value in key.choices else NEUTRAL
    return NEUTRAL if (t := _position(value, key)) is None else _on_scale(t)


@functools.lru_cache(maxsize=4096)
def _on_scale(t: float) -> str:
    """The colour at ``t`` (0 to 1) of the scale. Cached: plotly's ``sample_colorscale`` validates the whole scale on
    every call, and a board colours every student's run at every look."""
    return sample_colorscale(SCALE, [t])[0]


def _group(entry: dict[str, Any], key: Any) -> str:
    """A run's legend group: its choice's or clipping off's (a click on the legend entry hides them all)."""
    value = _value(entry, key) if key is not None else None
    if not entry.get("latest", True) or key is None:
        return "older" if not entry.get("latest", True) else _uid(entry)
    if key.scale == "choice" and value in key.choices:
        return f"choice{key.choices.index(value)}"
    return "no-clip" if key.name == "clip" and value is None else _uid(entry)


def _uid(entry: dict[str, Any], kind: str = "s") -> str:
    return f"{kind}{int(entry['id'])}r{int(entry['run'])}"


def _ticks(low: float, high: float) -> tuple[list[float], list[str]]:
    """A log axis's ticks from 10**low to 10**high (``scales.log_ticks``), or its two ends where fewer fall inside."""
    ticks, labels = scales.log_ticks(low, high)
    return (ticks, labels) if len(ticks) > 1 else ([10 ** low, 10 ** high], [f"{10 ** low:.3g}", f"{10 ** high:.3g}"])


def _key_traces(key: Any, style: Style, lang: str, older: bool) -> list[dict[str, Any]]:
    """What says the colours: a colour bar (a marker trace with no points) for a range, labelled with its real
    values, or a legend entry per choice; "no clipping" and "older runs" in the legend where they apply."""
    def entry(uid: str, name: str, c: str, group: str) -> dict[str, Any]:
        return dict(type="scatter", x=[None], y=[None], mode="lines", name=name, uid=uid, legendgroup=group,
                    showlegend=True, visible=True, hoverinfo="skip", line=dict(color=c, width=style.line))
    out = []
    if key is not None and key.scale == "choice":
        out += [entry(f"key{i}", chart_text(c), COLORS[i % len(COLORS)], f"choice{i}")
                for i, c in enumerate(key.choices)]
    elif key is not None:
        log, low, high = key.scale == "log", float(key.low or 1), float(key.high or 1)
        cmin, cmax = (math.log10(low), math.log10(high)) if log and min(low, high) > 0 else (low, high)
        cmin, cmax = (cmin - 0.5, cmax + 0.5) if cmax <= cmin else (cmin, cmax)
        name = in_language(NAMES.get(key.name, key.name), lang)
        if style.title_lines:  # a phone: a thin bar, its name above it (on its side it takes a third of the width)
            bar: dict[str, Any] = dict(title=dict(text=name.replace(" · ", "<br>"), side="top"),
                                       tickfont=dict(size=style.font - 2), thickness=8, xpad=2)
        else:
            bar = dict(title=dict(text=name, side="right"), tickfont=dict(size=style.font - 1),
                       thickness=style.font + 4)
        if log:
            ticks, labels = _ticks(cmin, cmax)
            bar.update(tickmode="array", tickvals=[math.log10(v) for v in ticks], ticktext=labels)
        out.append(dict(type="scatter", x=[None], y=[None], mode="markers", uid="key", showlegend=False,
                        hoverinfo="skip", marker=dict(color=[cmin], colorscale=SCALE, cmin=cmin, cmax=cmax,
                                                      showscale=True, colorbar=bar, size=1)))
        if key.name == "clip":
            out.append(entry("key-no-clip", _t("no_clip", lang), NEUTRAL, "no-clip"))
    if older:
        out.append(entry("key-older", _t("older", lang), OLDER, "older"))
    return out


def _ceiling(entries: list[dict[str, Any]]) -> tuple[list[int], float]:
    """The vocabulary sizes (uniform-guess lines) and the perplexity's ceiling, ``scales.CEILING`` × the largest."""
    sizes = sorted({int(e["vocab_size"]) for e in entries if e.get("vocab_size")})
    return sizes, scales.CEILING * sizes[-1] if sizes else math.inf


def _curve(entry: dict[str, Any], ceiling: float) -> tuple[list[tuple[int, float]], int | None, list[float]]:
    """(points drawn, cut, perplexities): the run up to where it left the chart (``scales.cut``); a non-finite
    point it left at is drawn a decade above the ceiling, so that its line goes through the top edge."""
    values = [float(p) if p is not None else math.nan for p in entry.get("perplexities") or []]
    cut = scales.cut(values, ceiling, diverged=entry.get("status") == "diverged")
    points = list(enumerate(values if cut is None else values[:cut + 1], 1))
    if cut is not None and cut < len(values) and not math.isfinite(values[cut]) and math.isfinite(ceiling):
        points[-1] = (points[-1][0], 10 * ceiling)
    return thin(points), cut, values


def _exit_words(entry: dict[str, Any], cut: int, values: list[float], lang: str) -> str:
    """The ✕'s hover: the epoch the run's loss became infinite, and the epoch it left the chart."""
    bad = next((i for i, v in enumerate(values) if not math.isfinite(v)), None)
    m = bad + 1 if bad is not None else int(entry.get("epoch") or len(values)) + 1
    n = cut + 1 if cut < len(values) else m
    off, diverged = say("off", lang, n=n), say("diverged", lang, m=m)
    return off if entry.get("status") != "diverged" else diverged if n == m else f"{diverged}<br>{off}"


def _wrapped(text: str, width: int) -> list[str]:
    """The question on at most ``TITLE_LINES`` lines of ``width`` columns (CJK: two), broken at spaces if it has any."""
    def cols(s: str) -> int:
        return sum(2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in s)
    lines, line = [], ""
    for ch in " ".join(str(text).split()):
        if line and cols(line + ch) > width:
            at = line.rfind(" ")
            lines.append(line[:at] if at > 0 else line)
            line = line[at + 1:] if at > 0 else ""
        line += ch
    lines.append(line)
    if len(lines) > TITLE_LINES:
        lines = [*lines[:TITLE_LINES - 1], lines[TITLE_LINES - 1][:-1] + "…"]
    return lines


def _titled(layout: dict[str, Any], question: str, style: Style) -> dict[str, Any]:
    """A layout with the question for its title, on as many lines as it takes (the chart grows by them)."""
    width = 30 if style.title_lines else max(36, 900 // (style.font + 3))
    parts = question.split(" · ") if style.title_lines else [question]  # a phone: one language a line
    lines = [line for part in parts for line in _wrapped(part, width)][:TITLE_LINES]
    extra = (len(lines) - 1) * round(1.3 * (style.font + 3))
    return dict(layout, title=dict(layout["title"], text="<br>".join(chart_text(x) for x in lines)),
                height=layout["height"] + extra, margin=dict(layout["margin"], t=30 + 2 * style.font + extra))


def _uniform(sizes: list[int], style: Style, lang: str, empty: bool) -> tuple[list[dict], list[dict]]:
    """(shapes, annotations): the uniform-guess line at each vocabulary size; on an empty chart, "waiting"."""
    lines = [_hline(v, "#888", "dot", say(uniform_key(style), lang, lines=True, n=v), style, top=False) for v in sizes]
    waiting = dict(text=_t("waiting", lang, lines=True), showarrow=False, font=dict(size=style.font + 4, color="#999"),
                   xref="paper", yref="paper", x=0.5, y=0.5)
    return [s for s, _ in lines], [a for _, a in lines] + ([waiting] if empty else [])


def class_figure(entries: list[dict[str, Any]], free: list, question: str, style: Style = NORMAL,
                 lang: str = "both", older: str = "grey") -> dict[str, Any]:
    """The class chart: every run's perplexity per epoch (log axis) coloured by ``free[0]``, the question its title;
    ``older``: "grey" draws the students' earlier runs thin and grey, "hidden" leaves them out. While runs train only
    the points and the y-axis's range and ticks change (the x-axis spans the planned epochs): ``demo.growth``."""
    if older not in OLDER_MODES:
        raise ValueError(f"older={older!r} is not allowed: choose one of {', '.join(OLDER_MODES)}")
    key = free[0] if free else None
    shown = [e for e in entries if older == "grey" or e.get("latest", True)]
    # older runs below, then the latest, the highlighted one on top; each group in the students' order
    shown.sort(key=lambda e: (2 if e.get("highlight") else 1 if e.get("latest", True) else 0, e["id"], e["run"]))
    sizes, ceiling = _ceiling(shown)
    data = _key_traces(key, style, lang, any(not e.get("latest", True) for e in shown))
    curves = [(e, *_curve(e, ceiling)) for e in shown]
    kept = [y for _, points, cut, values in curves
            for _, y in (points[:-1] if cut is not None and cut < len(values) else points)]
    span, marks = scales.log_range([*kept, *sizes], ceiling), []
    for e, points, cut, values in curves:
        latest = e.get("latest", True)
        c, nick = color_of(e, key) if latest else OLDER, chart_text(e.get("nickname", ""))
        width = style.line * (HIGHLIGHT if e.get("highlight") else 1) if latest else max(1.0, style.line / 2)
        about = _settings_text(e, free, lang) + ("" if latest else " · " + _t("run", lang, n=int(e["run"])))
        data.append(dict(type="scatter", x=[x for x, _ in points], y=[rounded(y) for _, y in points],
                         mode="lines" if len(points) > 1 else "markers", name=nick, uid=_uid(e), visible=True,
                         legendgroup=_group(e, key), showlegend=False, line=dict(color=c, width=width),
                         marker=dict(color=c, size=width + 4),
                         hovertemplate=f"<b>{nick}</b> · {about}<br>{say('epoch', lang)} %{{x}} · "
                                       f"{say('ppl_axis', lang)} %{{y:.3g}}<extra></extra>"))
        if cut is not None and points and span is not None:
            # a hair inside the range: plotly hides a point outside it, even a marker drawn over the edge
            x = scales.exit_x(points, span[1])
            marks.append(dict(type="scatter", x=[rounded(x)], y=[10 ** (span[1] - 1e-3)], mode="markers",
                              uid=_uid(e, "x"), legendgroup=_group(e, key), showlegend=False, name=nick, visible=True,
                              cliponaxis=False, marker=dict(symbol="x", color=c, size=3 * style.font // 2 + 2,
                                          line=dict(width=1, color="white")),
                              hovertemplate=f"<b>{nick}</b><br>{_exit_words(e, cut, values, lang)}<extra></extra>"))
    data += marks
    shapes, notes = _uniform(sizes, style, lang, not shown)
    yaxis = log_axis(span) if span is not None else dict(type="log")
    last = max([int(e.get("epochs") or 0) for e in shown] + [x for _, p, _, _ in curves for x, _ in p[-1:]]
               + [m["x"][0] for m in marks], default=0)
    layout = base_layout("", say("ppl_axis", lang), style, lang, sum(1 for t in data if t.get("showlegend")),
                         math.ceil(last), **yaxis)
    if last:  # the planned epochs: the axis stays put while the runs grow
        layout["xaxis"].update(range=[1 - max(0.3, last / 50), last + max(0.3, last / 50)], autorange=False)
    layout = dict(_titled(layout, question, style), hovermode="closest", shapes=shapes, annotations=notes)
    return dict(data=data, layout=layout)


def _x_axis(key: Any, style: Style, lang: str) -> tuple[dict[str, Any], Any]:
    """The results' x-axis for the key (log for lr and θ, linear for hidden units, the choices in order), and
    where clipping off sits on it (left of the range, ticked "off")."""
    title = dict(text=in_language(NAMES.get(key.name, key.name), lang), font=dict(size=style.font + 1))
    if key.scale == "choice":
        return dict(title=title, type="category", categoryorder="array",
                    categoryarray=[chart_text(c) for c in key.choices]), None
    low, high = float(key.low or 1), float(key.high or 1)
    if key.scale != "log" or min(low, high) <= 0:
        pad = max((high - low) * 0.05, 1.0)
        return dict(title=title, type="linear", range=[low - pad, high + pad], autorange=False), None
    a, b = math.log10(low), math.log10(max(high, low))
    ticks, labels = _ticks(a, b)
    off = 10 ** (a - 0.4) if key.name == "clip" else None
    if off is not None:
        ticks, labels = [off, *ticks], [in_language(TEXTS["off"], lang), *labels]
    return dict(title=title, type="log", range=[a - (0.6 if off else 0.15), b + 0.15], autorange=False,
                tickmode="array", tickvals=ticks, ticktext=labels), off


def results_figure(entries: list[dict[str, Any]], free: list, style: Style = NORMAL, lang: str = "both") -> dict:
    """Each student's latest run: its current (or final) perplexity (log axis) against its value of ``free[0]``,
    coloured as on the class chart, the highlighted one larger; a diverged run at the top edge as a ✕."""
    key = free[0] if free else None
    latest = [e for e in entries if e.get("latest", True) and e.get("perplexity") is not None]
    sizes, ceiling = _ceiling(latest)
    ppl = {id(e): float(e["perplexity"]) for e in latest}
    gone = {id(e) for e in latest if _failed(e) or not scales.shown(ppl[id(e)], ceiling)}
    span = scales.log_range([*(ppl[id(e)] for e in latest if id(e) not in gone), *sizes], ceiling)
    if span is None and latest:
        span = (0.0, 1.0) if not math.isfinite(ceiling) else (math.log10(ceiling) - 1, math.log10(ceiling))
    xaxis, off = _x_axis(key, style, lang) if key is not None else (dict(type="category"), None)
    size, data = 2 * style.line + 6, []
    for kind, group in (("results", [e for e in latest if id(e) not in gone]),
                        ("diverged", [e for e in latest if id(e) in gone])):
        if not group:
            continue
        values = [_value(e, key) if key is not None else None for e in group]
        xs = [chart_text(v) if key is None or key.scale == "choice" else off if v is None else v for v in values]
        hover = [f"<b>{chart_text(e.get('nickname', ''))}</b> · {_settings_text(e, free, lang)}<br>"
                 f"{say('ppl_axis', lang)} {perplexity_text(ppl[id(e)])}" + (" · " + in_language(
                     STATUS.get(str(e.get("status")), str(e.get("status"))), lang) if kind == "diverged" else "")
                 for e in group]
        ys = [rounded(ppl[id(e)]) for e in group] if kind == "results" else [10 ** (span[1] - 1e-3)] * len(group)
        data.append(dict(type="scatter", x=xs, y=ys, mode="markers", uid=kind, name=kind, showlegend=False,
                         text=hover, hovertemplate="%{text}<extra></extra>", cliponaxis=False,
                         marker=dict(symbol="circle" if kind == "results" else "x",
                                     color=[color_of(e, key) for e in group],
                                     size=[2 * size if e.get("highlight") else size for e in group],
                                     line=dict(width=[2 if e.get("highlight") else 1 for e in group],
                                               color="#111" if kind == "results" else "white"))))
    shapes, notes = _uniform(sizes, style, lang, not latest)
    yaxis = log_axis(span) if span is not None else dict(type="log")
    layout = base_layout(_t("results", lang, style.title_lines), say("ppl_axis", lang), style, lang, 0, **yaxis)
    layout["xaxis"] = dict({k: v for k, v in layout["xaxis"].items() if k != "title"}, **xaxis)
    return dict(data=data, layout=dict(layout, hovermode="closest", shapes=shapes, annotations=notes))


def _failed(entry: dict[str, Any]) -> bool:
    p = entry.get("perplexity")
    return entry.get("status") == "diverged" or (p is not None and not math.isfinite(p))


def _rank_key(entry: dict[str, Any]) -> tuple:
    """Best first: finite perplexities, lowest first; then runs with none yet; then diverged ones (inf, nan)."""
    p, bad = entry.get("perplexity"), _failed(entry)
    return (2 if bad else 1 if p is None else 0, p if not bad and p is not None else 0.0, entry["id"], entry["run"])


def perplexity_text(p: float | None) -> str:
    """3 significant figures (1,230 up to a million, then 1.23e+06); — before the first epoch; ∞; NaN."""
    if p is None or not math.isfinite(p):
        return "—" if p is None else "NaN" if math.isnan(p) else "∞"
    return f"{float(f'{p:.3g}'):,g}" if p < 999_500 else f"{p:.3g}"


def table_html(entries: list[dict[str, Any]], free: list, lang: str = "both", older: str = "grey") -> str:
    """The class's runs as a table, the students' latest runs ranked by perplexity (best first), their older runs
    below them greyed (unless ``older`` is "hidden"); the highlighted row has the class "highlight"."""
    rows = [e for e in entries if older != "hidden" or e.get("latest", True)]
    if not rows:
        return f"<p class='class-table-empty'>{html.escape(_t('waiting', lang))}</p>"
    key = free[0] if free else None
    heads = [_t("rank", lang), _t("nickname", lang), *(in_language(NAMES.get(f.name, f.name), lang) for f in free),
             _t("epoch", lang), _t("ppl", lang), _t("status", lang)]
    # its look: styles.CSS (sent once, not with every update); the heads on two lines in both languages
    out = ["<div class='class-table-scroll'><table class='class-table'><thead><tr>",
           *(f"<th>{html.escape(h).replace(' · ', '<br>')}</th>" for h in heads), "</tr></thead><tbody>"]
    latest = sorted((e for e in rows if e.get("latest", True)), key=_rank_key)
    earlier = sorted((e for e in rows if not e.get("latest", True)), key=_rank_key)
    for rank, e in [*enumerate(latest, 1), *((None, e) for e in earlier)]:
        classes = " ".join(c for c, on in (("older", rank is None), ("highlight", e.get("highlight"))) if on)
        classes = f" class='{classes}'" if classes else ""
        c, status, bad = color_of(e, key) if rank is not None else OLDER, str(e.get("status", "")), _failed(e)
        said = html.escape(in_language(STATUS.get(status, status), lang))
        cells = [f"<td class='num'>{rank or ''}</td>",
                 f"<td><span style='color:{c}'>●</span> {html.escape(str(e.get('nickname', '')))}</td>",
                 *(f"<td>{value_text(_value(e, f), f, lang)}</td>" for f in free),
                 f"<td class='num'>{int(e.get('epoch') or 0)}/{int(e.get('epochs') or 0)}</td>",
                 f"<td class='num{' diverged' if bad else ''}'>{perplexity_text(e.get('perplexity'))}</td>",
                 f"<td class='diverged'>{said}</td>" if bad else f"<td>{said}</td>"]
        out.append(f"<tr{classes}>" + "".join(cells) + "</tr>")
    return "".join(out) + "</tbody></table></div>"

