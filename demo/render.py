"""Turns what charrnn reports (RunView objects) into what the page shows: plotly figures and text."""
from __future__ import annotations

import dataclasses
import html
from typing import Any

import plotly.graph_objects as go

from charrnn.lab import RunView

COLORS = ("#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf", "#7f7f7f")
# Fields worth naming in a trace label when they differ between runs (beyond model · sampling · lr · θ).
EXTRA_FIELDS = {"corpus": "corpus {}", "max_chars": "{} chars", "num_hiddens": "h {}", "batch_size": "batch {}",
                "num_steps": "steps {}", "optimizer": "{}", "seed": "seed {}"}


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


def _layout(fig: go.Figure, title: str, ytitle: str) -> go.Figure:
    fig.update_layout(
        title=dict(text=title, x=0.01, font=dict(size=15)), height=330, margin=dict(l=60, r=20, t=40, b=40),
        xaxis_title="epoch", yaxis_title=ytitle, template="plotly_white", uirevision="keep",
        legend=dict(orientation="h", yanchor="top", y=-0.18, x=0, font=dict(size=11)),
        hovermode="x unified")
    return fig


def _mode(view: RunView) -> str:
    """A line, or a dot while a run has a single epoch (a line of one point draws nothing)."""
    return "lines" if len(view.history) > 1 else "markers"


def perplexity_figure(views: list[RunView]) -> go.Figure:
    """Perplexity per epoch on a log axis, one trace per run, and the uniform-guess line at V."""
    fig = go.Figure()
    names = labels(views)
    for v in views:
        fig.add_trace(go.Scatter(x=[e.epoch for e in v.history], y=[e.perplexity for e in v.history],
                                 mode=_mode(v), name=names[v.number], line=dict(color=color(v.number), width=2)))
    for V in sorted({v.vocab_size for v in views}):
        fig.add_hline(y=V, line=dict(color="#888", dash="dot", width=1),
                      annotation_text=f"uniform guess = vocabulary size {V}", annotation_position="bottom right",
                      annotation_font=dict(size=11, color="#666"))
    fig.update_yaxes(type="log")
    if not views:
        fig.add_annotation(text="press Train · 点击“训练”", showarrow=False, font=dict(size=16, color="#999"),
                           xref="paper", yref="paper", x=0.5, y=0.5)
    return _layout(fig, "perplexity 困惑度 (log scale)", "perplexity")


def grad_norm_figure(views: list[RunView]) -> go.Figure:
    """Gradient norm before clipping per epoch (mean, with the epoch's max), and each run's θ."""
    fig = go.Figure()
    names = labels(views)
    for v in views:
        c = color(v.number)
        xs = [e.epoch for e in v.history]
        fig.add_trace(go.Scatter(x=xs, y=[e.grad_norm for e in v.history], mode=_mode(v), name=names[v.number],
                                 line=dict(color=c, width=2),
                                 customdata=[[e.grad_norm_max, e.clipped * 100] for e in v.history],
                                 hovertemplate="mean %{y:.3g} · max %{customdata[0]:.3g} · "
                                               "clipped %{customdata[1]:.0f}%<extra></extra>"))
        if v.config.clip_theta is not None:
            fig.add_hline(y=v.config.clip_theta, line=dict(color=c, dash="dash", width=1),
                          annotation_text=f"θ = {v.config.clip_theta:g} (#{v.number})",
                          annotation_position="top left", annotation_font=dict(size=11, color=c))
    fig.update_yaxes(type="log", dtick=1)  # a tick per decade: 0.01, 0.1, 1, 10
    return _layout(fig, "gradient norm before clipping 裁剪前的梯度范数", "L2 norm of all gradients")


def _clock(seconds: float | None) -> str:
    if seconds is None:
        return "–"
    s = int(round(seconds))
    return f"{s // 60}:{s % 60:02d}" if s < 3600 else f"{s // 3600}:{s // 60 % 60:02d}:{s % 60:02d}"


def _ppl(x: float) -> str:
    return f"{x:,.3f}" if x < 1e5 else f"{x:.3g}"


def status_line(view: RunView | None, busy: int, limit: int) -> str:
    if view is None:
        return "Ready · 就绪 — choose settings and press **Train**."
    head = f"**#{view.number}** {html.escape(view.label)}"
    if view.status == "queued":
        pos = view.queue_position or 1
        return (f"… {head} — **waiting · 排队中**: you are number **{pos}** in the queue "
                f"({busy} of {limit} training slots busy)")
    last = view.last
    parts = [f"epoch **{last.epoch if last else 0}/{view.config.epochs}**"]
    if last:
        parts += [f"perplexity **{_ppl(last.perplexity)}**", f"{last.chars_per_sec:,.0f} chars/s",
                  f"clipped {last.clipped:.0%}"]
    parts += [f"elapsed {_clock(view.elapsed)}"]
    if view.active:
        parts += [f"remaining {_clock(view.remaining)}"]
    parts += [f"device **{view.device}**"]
    icon = {"running": "▶", "finished": "✓", "stopped": "■", "diverged": "✗", "error": "✗"}.get(view.status, "")
    line = f"{icon} {head} — " + " · ".join(parts)
    if view.status in ("stopped", "diverged", "error"):
        line += f"  \n**{view.status}**: {html.escape(view.message)}"
    return line


def latest_samples(view: RunView | None) -> str:
    """The newest sample of each prefix."""
    if view is None or not view.samples:
        every = view.config.pred_period if view else None
        text = f"Samples appear every {every} epochs · 每 {every} 个周期写一次" if every else "Samples appear here while training."
        return f"<div class='sample-empty'>{text}</div>"
    newest: dict[str, Any] = {}
    for s in view.samples:
        newest[s.prefix] = s
    rows = [f"<div class='sample'><span class='prefix'>{html.escape(p)}</span>"
            f"{html.escape(s.text[len(p):])}<span class='epoch'>epoch {s.epoch}</span></div>"
            for p, s in newest.items()]
    return "\n".join(rows)


def sample_history(view: RunView | None) -> str:
    """The chapter's printout: one line per sampled epoch, then ` - ` and each sample."""
    if view is None or not view.history:
        return ""
    by_epoch: dict[int, list[str]] = {}
    for s in view.samples:
        by_epoch.setdefault(s.epoch, []).append(s.text)
    lines = []
    for e in view.history:
        if e.epoch in by_epoch:
            lines.append(f"epoch {e.epoch}, perplexity {e.perplexity:f}, time {e.seconds:.2f} sec")
            lines += [f" - {t}" for t in by_epoch[e.epoch]]
    return "\n".join(lines)


def _mean_rate(view: RunView) -> float | None:
    """Characters per second over every epoch of the run (total characters / total epoch time)."""
    seconds = sum(e.seconds for e in view.history)
    return sum(e.chars_per_sec * e.seconds for e in view.history) / seconds if seconds else None


def progress(view: RunView | None, busy: int, limit: int) -> dict[str, Any]:
    """A JSON summary of the run for API clients (``gradio_client``)."""
    if view is None:
        return {"status": "idle"}
    last = view.last
    newest: dict[str, str] = {}
    for s in view.samples:
        newest[s.prefix] = s.text
    return {
        "run": view.number, "label": view.label, "status": view.status, "message": view.message,
        "queue_position": view.queue_position, "busy_slots": busy, "slots": limit,
        "epoch": last.epoch if last else 0, "epochs": view.config.epochs,
        "perplexity": last.perplexity if last else None, "grad_norm": last.grad_norm if last else None,
        "clipped": last.clipped if last else None, "chars_per_sec": last.chars_per_sec if last else None,
        "elapsed": round(view.elapsed, 3), "remaining": view.remaining, "device": view.device,
        "mean_chars_per_sec": _mean_rate(view), "train_seconds": sum(e.seconds for e in view.history),
        "vocab_size": view.vocab_size, "perplexities": [e.perplexity for e in view.history],
        "samples": newest, "sample_epochs": sorted({s.epoch for s in view.samples}),
        "config": dataclasses.asdict(view.config),
    }



def session_outputs(views: list[RunView], focus: RunView | None, busy: int, limit: int) -> tuple:
    """Everything the page shows of a session's runs: status, the two charts, newest samples, history, progress.

    ``focus`` is the run the status line and samples describe (default: the newest).
    """
    view = focus if focus is not None else (views[-1] if views else None)
    return (status_line(view, busy, limit), perplexity_figure(views), grad_norm_figure(views),
            latest_samples(view), sample_history(view), progress(view, busy, limit))
