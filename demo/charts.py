"""The two charts of a session's runs, as plotly figures in plain dicts (no plotly objects are built: they
would cost far more each render): perplexity per epoch on a log axis against the vocabulary size, and the
gradient norm before clipping against each run's θ.

A run that diverges is drawn up to where it leaves the chart and marked there with a ✕ ("diverged at epoch
11"), the same epoch on both charts; the axes span the runs that stay on them, with ticks that say their values
(``demo.scales``). A run that goes on with another's model (the decoding lesson's sampled lyrics) draws only
the epochs it trained itself. Each run's trace (and its ✕) has the run's ``uid`` and legend group: a run hidden
by a click on its legend entry stays hidden through the live updates (the page keeps the uids it hid:
``CHARTS_JS``). While runs train, the page grows the figure it has by the new points (``growth``) rather than
drawing a new one. The legend lists one run a line below the x-axis title, and the chart grows by its lines,
so it never covers the axis or its title.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Any

from charrnn.lab import RunView
from charrnn.train import EpochEnd
from demo import scales
from demo.languages import in_language

COLORS = ("#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf", "#7f7f7f")
# Fields worth naming in a trace label when they differ between runs (beyond model · sampling · lr · θ).
EXTRA_FIELDS = {"corpus": "corpus {}", "max_chars": "{} chars", "num_hiddens": "h {}", "batch_size": "batch {}",
                "num_steps": "steps {}", "optimizer": "{}", "seed": "seed {}"}
TEXTS = {  # every text of the two charts, "中文 · English" (languages.in_language shows one side)
    "ppl_title": "困惑度（对数坐标） · perplexity (log scale)", "ppl_axis": "困惑度 · perplexity",
    "grad_title": "裁剪前的梯度范数 · gradient norm before clipping",
    "grad_axis": "L2 范数 · L2 norm", "epoch": "周期 · epoch",
    "uniform": "均匀猜测 = 词表大小 {n} · uniform guess = vocabulary size {n}",
    "uniform_short": "均匀猜测 {n} · uniform guess {n}", "empty": "点击“训练” · press Train",
    "waiting": "等待老师开始训练 · waiting for the teacher's run",
    "student": "点击“训练”试试你的值 · press Train to try your value",
    "diverged": "发散于第 {m} 个周期 · diverged at epoch {m}",
    "off": "第 {n} 个周期起超出图表 · off the chart from epoch {n}",
    "ppl_title_held": "困惑度（虚线：留出文本） · perplexity (dashed: held out)",
    "held": "留出文本 · held-out",
}
MAX_POINTS = 400  # per trace: a long run's curve keeps its shape and the chart stays small to send
GRID = "#e5ecf6"


def say(key: str, lang: str, lines: bool = False, **values: Any) -> str:
    """A chart's text in the page's language; ``lines``: both languages on two lines rather than one."""
    text = TEXTS[key].format(**values)
    return text.replace(" · ", "<br>") if lines and lang == "both" else in_language(text, lang)


def color(number: int) -> str:
    return COLORS[(number - 1) % len(COLORS)]


def labels(views: list[RunView]) -> dict[int, str]:
    """``#n scratch · random · lr 100 · θ 0.01``, plus whatever else differs between the runs."""
    differing = [f for f in EXTRA_FIELDS
                 if len({repr(getattr(v.config, f)) for v in views}) > 1]
    out = {}
    for v in views:
        extra = [EXTRA_FIELDS[f].format(_short(getattr(v.config, f))) for f in differing]
        out[v.number] = " · ".join([f"#{v.number} {v.label}", *extra])
    return out


def _short(value: Any) -> str:
    text = str(value)
    return text if len(text) <= 18 else "…" + text[-17:]


@dataclass(frozen=True)
class Style:
    """How big the charts are drawn: for a laptop, or for a projector at the back of a room."""
    height: int = 330
    font: int = 12          # tick labels; titles and legend scale from it
    line: float = 2.0       # curve width
    empty: str = "empty"    # what a chart with no run says (TEXTS' key): a watcher's cannot press Train
    title_lines: bool = False  # a title in both languages on two lines (a phone's narrow chart would cut it)

    @property
    def legend_line(self) -> int:
        """Pixels a line of the legend takes (its font, and plotly's gap between entries)."""
        return round(1.35 * (self.font - 1)) + 5

    def legend_height(self, lines: int) -> int:
        """Pixels a legend of ``lines`` lines takes, with plotly's padding around it."""
        return lines * self.legend_line + 12 if lines else 0


WHOLE_EPOCHS = 10  # an epoch axis up to this many epochs ticks every epoch (base_layout)
NORMAL = Style()
# A projector: a window at least PRESENT_TALL pixels high (1920x1080) gets the tall charts, a lower one (1280x720)
# the short ones, so that both charts, their axes and the newest lyrics fit on its first screen.
PRESENT = Style(height=520, font=18, line=4.0)
PRESENT_SHORT = Style(height=285, font=16, line=3.5)
PRESENT_TALL = 900
PHONE = Style(title_lines=True)


def watching(style: Style) -> Style:
    """The style of a watcher's screen: the same charts, saying that the teacher has not started yet."""
    return replace(style, empty="waiting")


def own(style: Style, student: bool = False) -> Style:
    """The style of a page showing its own runs again; ``student``: a watcher who joined the class's experiment
    (no lessons, the teacher's settings fixed: its empty chart and status line say to try its value)."""
    return replace(style, empty="student" if student else NORMAL.empty)


def base_layout(title: str, ytitle: str, style: Style, lang: str = "both", legend_lines: int = 0,
                last_epoch: int = 0, **yaxis: Any) -> dict[str, Any]:
    """A chart's layout; ``legend_lines`` (one per run) go below the x-axis title, in a margin they add to the
    chart's height. ``last_epoch``: the latest epoch drawn; up to WHOLE_EPOCHS the epoch axis ticks every epoch
    (plotly's own ticks on so short a range fall between epochs: 1.5, 2.5)."""
    f, extra = style.font, style.legend_height(legend_lines)
    top = 30 + 2 * f + (round(1.3 * (f + 3)) if style.title_lines and lang == "both" else 0)
    axis = dict(gridcolor=GRID, zerolinecolor=GRID, tickfont=dict(size=f), linecolor="#bbb", automargin=True)
    epochs = dict(dtick=1) if 0 < last_epoch <= WHOLE_EPOCHS else {}
    return dict(
        title=dict(text=title, x=0.01, font=dict(size=f + 3)), height=style.height + extra,
        margin=dict(l=50 + 3 * f, r=20, t=top, b=44 + f + extra), paper_bgcolor="white",
        plot_bgcolor="white", font=dict(size=f, family="Noto Sans CJK SC, sans-serif"), uirevision="keep",
        hovermode="x unified", showlegend=legend_lines > 0,  # plotly would leave out a legend of one run
        xaxis=dict(title=dict(text=say("epoch", lang), font=dict(size=f + 1)), **axis, **epochs),
        yaxis=dict(title=dict(text=ytitle, font=dict(size=f + 1)), **axis, **yaxis),
        # below the plot (x on the plot, y on the container: plotly then reserves its height at the bottom)
        legend=dict(orientation="v", xref="paper", x=0, xanchor="left", yref="container", y=0, yanchor="bottom",
                    font=dict(size=f - 1), tracegroupgap=0, itemclick="toggle", itemdoubleclick=False))


def _last_epoch(runs: list[Curve]) -> int:
    return max((e.epoch for r in runs for e in r.drawn), default=0)


def log_axis(span: tuple[float, float]) -> dict[str, Any]:
    """A log y-axis over ``span`` (decades), its ticks labelled with their values."""
    values, text = scales.log_ticks(*span)
    return dict(type="log", range=list(span), autorange=False, tickmode="array", tickvals=values, ticktext=text)


def uniform_key(style: Style) -> str:
    """The uniform-guess line's label: short on a phone's narrow chart (it would run across the curves)."""
    return "uniform_short" if style.title_lines else "uniform"


def _hline(y: float, color: str, dash: str, text: str, style: Style, top: bool) -> tuple[dict, dict]:
    """A horizontal line across the plot at ``y`` on a log axis, and its label (annotations on a log axis
    take log10 of the value; shapes take the value)."""
    shape = dict(type="line", xref="x domain", x0=0, x1=1, yref="y", y0=y, y1=y,
                 line=dict(color=color, dash=dash, width=max(1.0, style.line / 2)))
    label = dict(text=text, xref="x domain", x=0 if top else 1, xanchor="left" if top else "right",
                 yref="y", y=math.log10(y), yanchor="bottom" if top else "top", showarrow=False,
                 font=dict(size=style.font - 1, color=color if top else "#666"))
    return shape, label


def rounded(value: float) -> float | None:
    """A value as the chart needs it: 5 significant digits (the JSON every screen receives at each update stays
    small); None (a gap) for what JSON cannot carry."""
    return float(f"{value:.5g}") if math.isfinite(value) else None


def thin(history: list, limit: int = MAX_POINTS) -> list:
    """At most ``limit`` epochs, evenly spread, always with the first and the newest: every s-th epoch from the
    first, s the smallest power of two that keeps them within ``limit``, then the newest. Until s doubles, the
    next epochs' thinned curve is this one with its newest point replaced and points added (the page grows it
    without drawing it afresh: ``growth``)."""
    if len(history) <= limit:
        return history
    step = 1
    while -(-(len(history) - 1) // step) + 1 > limit:
        step *= 2
    kept = history[::step]
    return kept if (len(history) - 1) % step == 0 else [*kept, history[-1]]


@dataclass(frozen=True)
class Curve:
    """What the charts draw of one run: its own epochs up to where it left the chart (``cut``: the index of
    the first epoch above, or the number of epochs when it diverged on the chart; None when it stays on it)."""
    view: RunView
    name: str
    epochs: list[EpochEnd]
    cut: int | None

    @property
    def drawn(self) -> list[EpochEnd]:
        return thin(self.epochs if self.cut is None else self.epochs[:self.cut + 1])

    def exit_label(self, lang: str) -> tuple[str, str]:
        """The ✕'s words, and its hover: for a run whose loss became infinite, the epoch it did (``m``, as its
        status says), else the epoch it left the chart (``n``); the hover says both."""
        m = self.view.epoch + 1
        n = self.epochs[self.cut].epoch if self.cut < len(self.epochs) else m
        off = say("off", lang, n=n)
        if self.view.status != "diverged":
            return off, off
        diverged = say("diverged", lang, m=m)
        return diverged, diverged if n == m else f"{diverged}<br>{off}"


def curves(views: list[RunView]) -> list[Curve]:
    """The runs' curves on one pair of charts; the perplexity's ceiling is ``scales.CEILING`` times the largest
    vocabulary. A run that goes on with the model of a run shown here draws only the epochs after it."""
    names, last = labels(views), {v.number: v.epoch for v in views}
    ceiling = scales.CEILING * max((v.vocab_size for v in views), default=1)
    out = []
    for v in views:
        start = last.get(v.continues, 0) if v.continues is not None else 0
        own = [e for e in v.history if e.epoch > start]
        if not own and start and v.status != "diverged":
            continue  # it trained nothing of its own: its parent's curve is its curve
        cut = scales.cut([e.perplexity for e in own], ceiling, diverged=v.status == "diverged")
        out.append(Curve(v, names[v.number], own, cut))
    return out


def _trace(curve: Curve, field: str, style: Style, **extra: Any) -> dict[str, Any]:
    """One run's curve of an ``EpochEnd`` field: a line, or a dot while it has a single epoch."""
    h, c = curve.drawn, color(curve.view.number)
    return dict(type="scatter", x=[e.epoch for e in h], y=[rounded(getattr(e, field)) for e in h],
                mode="lines" if len(h) > 1 else "markers", name=curve.name, uid=f"run{curve.view.number}",
                visible=True,  # the page's legend toggle (CHARTS_JS) changes it
                legendgroup=f"run{curve.view.number}", line=dict(color=c, width=style.line),
                marker=dict(color=c, size=2 * style.line + 2), **extra)


def _held_trace(curve: Curve, style: Style, lang: str) -> dict[str, Any] | None:
    """A run's perplexity on its held-out text, dashed in its colour (hidden with its run from the legend)."""
    h = [e for e in curve.drawn if e.val_perplexity is not None and math.isfinite(e.val_perplexity)]
    if not h:
        return None
    c, n = color(curve.view.number), curve.view.number
    return dict(type="scatter", x=[e.epoch for e in h], y=[rounded(e.val_perplexity) for e in h],
                mode="lines" if len(h) > 1 else "markers", name=f"{curve.name} · {say('held', lang)}",
                uid=f"held{n}", visible=True, showlegend=False, legendgroup=f"run{n}",
                line=dict(color=c, width=max(1.0, 0.75 * style.line), dash="dash"),
                marker=dict(color=c, size=2 * style.line + 2, symbol="circle-open"))


def _marks(runs: list[Curve], style: Style) -> tuple[list[dict], list[dict]]:
    """(shapes, annotations): a dotted vertical line where a run's settings changed while it trained, in its
    colour, labelled at the top of the plot with what changed ("lr 100 → 10")."""
    at: dict[tuple[int, float], list[str]] = {}
    for r in runs:
        for change in r.view.changes:
            at.setdefault((r.view.number, round(change.at, 4)), []).append(change.label)
    shapes, notes = [], []
    for (number, x), labels_at in at.items():
        c = color(number)
        shapes.append(dict(type="line", xref="x", x0=x, x1=x, yref="paper", y0=0, y1=1,
                           line=dict(color=c, dash="dot", width=max(1.0, style.line / 2))))
        notes.append(dict(text=", ".join(labels_at), xref="x", x=x, xanchor="left", yref="paper", y=1,
                          yanchor="top", showarrow=False, bgcolor="rgba(255,255,255,0.8)",
                          font=dict(size=style.font - 2, color=c)))
    return shapes, notes


def _exit_mark(curve: Curve, x: float, y: float, top: bool, style: Style, lang: str, right: bool) -> dict:
    """The ✕ where a run left the chart (at its top edge, or on the curve's last point), with its words."""
    c, (text, hover) = color(curve.view.number), curve.exit_label(lang)
    return dict(type="scatter", x=[rounded(x)], y=[y], mode="markers+text", text=[text],
                textposition=("bottom left" if right else "bottom right") if top else "top center",
                textfont=dict(color=c, size=style.font - 1), cliponaxis=False, showlegend=False,
                uid=f"exit{curve.view.number}", legendgroup=f"run{curve.view.number}", name=curve.name,
                marker=dict(symbol="x", color=c, size=3 * style.font // 2 + 2, line=dict(width=1, color="white")),
                hovertemplate=f"{curve.name}<br>{hover}<extra></extra>")


def _exits(runs: list[Curve], field: str, span: tuple[float, float], style: Style, lang: str) -> list[dict]:
    """The ✕ of every run that left the chart: where its line meets the top edge, or on its last point when
    that point is inside the range (the gradient norm of an epoch whose perplexity left its chart)."""
    marks, right_of = [], max((e.epoch for r in runs for e in r.epochs), default=1) / 2
    for r in runs:
        if r.cut is None:
            continue
        points = [(e.epoch, getattr(e, field)) for e in r.drawn]
        if r.cut < len(r.epochs) and scales.shown(points[-1][1], 10 ** span[1]) and points[-1][1] >= 10 ** span[0]:
            x, y, top = points[-1][0], points[-1][1], False
        else:  # a hair inside the range: plotly hides a point outside it, even a marker drawn over the edge
            x, y, top = scales.exit_x(points, span[1]), 10 ** (span[1] - 1e-3), True
        marks.append(_exit_mark(r, x, y, top, style, lang, right=x > right_of))
    return marks


def _kept(runs: list[Curve], field: str) -> list[float]:
    """The values that set a chart's range: every drawn point but the one where a run left the chart."""
    return [getattr(e, field) for r in runs for e in (r.drawn if r.cut is None or r.cut >= len(r.epochs)
                                                     else r.drawn[:-1])]


def perplexity_figure(views: list[RunView], style: Style = NORMAL, lang: str = "both") -> dict[str, Any]:
    """Perplexity per epoch on a log axis, one trace per run, and the uniform-guess line at each vocabulary size V;
    the axis ends at most ``scales.CEILING`` × V."""
    runs = curves(views)
    sizes = sorted({v.vocab_size for v in views})
    data, shapes, notes = [_trace(r, "perplexity", style) for r in runs if r.drawn], *_marks(runs, style)
    held = [t for r in runs if (t := _held_trace(r, style, lang)) is not None]
    data += held
    for V in sizes:
        shape, label = _hline(V, "#888", "dot", say(uniform_key(style), lang, lines=True, n=V), style, top=False)
        shapes.append(shape)
        notes.append(label)
    yaxis: dict[str, Any] = dict(type="log")
    if views:
        span = scales.log_range([*_kept(runs, "perplexity"), *(y for t in held for y in t["y"]), *sizes],
                                scales.CEILING * max(sizes))
        yaxis = log_axis(span)
        data += _exits(runs, "perplexity", span, style, lang)
    else:
        notes.append(dict(text=say(style.empty, lang), showarrow=False, font=dict(size=style.font + 4, color="#999"),
                          xref="paper", yref="paper", x=0.5, y=0.5))
    title = say("ppl_title_held" if held else "ppl_title", lang, style.title_lines)
    layout = base_layout(title, say("ppl_axis", lang), style, lang,
                         sum(1 for r in runs if r.drawn), _last_epoch(runs), **yaxis)
    return dict(data=data, layout=dict(layout, shapes=shapes, annotations=notes))


def grad_norm_figure(views: list[RunView], style: Style = NORMAL, lang: str = "both") -> dict[str, Any]:
    """Gradient norm before clipping per epoch (mean, with the epoch's max), and each run's θ; a run is cut
    where its perplexity left its chart."""
    runs = curves(views)
    data, (shapes, notes) = [], _marks(runs, style)
    for r in runs:
        if r.drawn:
            data.append(_trace(r, "grad_norm", style,
                               customdata=[[rounded(e.grad_norm_max), round(e.clipped * 100)] for e in r.drawn],
                               hovertemplate="mean %{y:.3g} · max %{customdata[0]:.3g} · "
                                             "clipped %{customdata[1]:.0f}%<extra></extra>"))
    by_theta: dict[float, list[int]] = {}  # one line per θ, naming every run that clips at it
    for v in views:
        if v.config.clip_theta is not None:
            by_theta.setdefault(v.config.clip_theta, []).append(v.number)
    for theta, numbers in by_theta.items():
        shape, label = _hline(theta, color(numbers[0]), "dash",
                              f"θ = {theta:g} ({', '.join(f'#{n}' for n in numbers)})", style, top=True)
        shapes.append(shape)
        notes.append(label)
    thetas = list(by_theta)
    yaxis: dict[str, Any] = dict(type="log")
    if views:
        span = scales.log_range([*_kept(runs, "grad_norm"), *thetas]) or (-2.0, 1.0)
        yaxis = log_axis(span)
        data += _exits(runs, "grad_norm", span, style, lang)
    layout = base_layout(say("grad_title", lang, style.title_lines), say("grad_axis", lang), style, lang,
                         sum(1 for r in runs if r.drawn), _last_epoch(runs), **yaxis)
    return dict(data=data, layout=dict(layout, shapes=shapes, annotations=notes))


def figures(views: list[RunView], style: Style = NORMAL, lang: str = "both") -> tuple[dict[str, Any], dict[str, Any]]:
    """The two charts of the runs shown: perplexity and gradient norm."""
    return perplexity_figure(views, style, lang), grad_norm_figure(views, style, lang)
