"""Turns what charrnn reports (RunView objects) into what the page shows: text, the charts' payload (the charts
of training are ``demo.charts``'), and the figures of the views inside a model."""
from __future__ import annotations

import dataclasses
import html
import math
from typing import Any

import orjson

from charrnn.lab import RunView
from charrnn.sessions import ModelSource
from demo import scales
from demo.charts import NORMAL, Style, base_layout, color, log_axis, rounded
from demo.languages import in_language

def _clock(seconds: float | None) -> str:
    if seconds is None:
        return "–"
    s = int(round(seconds))
    return f"{s // 60}:{s % 60:02d}" if s < 3600 else f"{s // 3600}:{s // 60 % 60:02d}:{s % 60:02d}"


def _ppl(x: float) -> str:
    return f"{x:,.3f}" if x < 1e5 else f"{x:.3g}"


WORDS = {  # the status line's words; "both" shows the English ones with a few Chinese cues, as the page does
    "en": dict(ready="Ready — choose settings and press **Train**, or a lesson.",
               student="Ready — set what the teacher left free and press **Train**.",
               waiting="Waiting for the teacher — their run shows here once it starts.", epoch="epoch **{}/{}**",
               ppl="perplexity **{}**", rate="{:,.0f} chars/s", clipped="clipped {:.0%}", elapsed="elapsed {}",
               ends="ends in about {}", shared=", sharing the machine with {} other run{}",
               estimating="estimating the end…", device="device **{}**",
               queued="**waiting**: the server trains {} runs, its limit; you are number **{}** in the queue",
               stopped="stopped", diverged="diverged", error="error", held="held-out perplexity **{}**",
               paused="**paused** (Resume goes on, Step trains one epoch)",
               memorising="the model is memorising the text: its training perplexity is {} while the held-out "
                          "perplexity has risen from {} (epoch {}) to {}"),
    "zh": dict(ready="就绪 —— 选好设置，点 **训练**，或选一节课。", waiting="等待老师 —— 老师开始训练后，这里会显示。",
               student="就绪 —— 改好老师留给你的设置，点 **训练**。",
               epoch="第 **{}/{}** 个周期", ppl="困惑度 **{}**",
               rate="每秒 {:,.0f} 字符", clipped="裁剪了 {:.0%}", elapsed="已用 {}", ends="约 {} 后结束",
               shared="（与另外 {} 个训练共享机器{}）", estimating="正在估计结束时间…", device="设备 **{}**",
               queued="**排队中**：服务器正在训练 {} 个（已达上限），你排在第 **{}** 位",
               stopped="已停止", diverged="发散", error="出错", held="留出文本困惑度 **{}**",
               paused="**已暂停**（“继续”接着训练，“单步”训练一个周期）",
               memorising="模型在背诵文本：训练困惑度已降到 {}，留出文本的困惑度却从 {}（第 {} 个周期）升到 {}"),
}
WORDS["both"] = {**WORDS["en"], "ready": "Ready · 就绪 — choose settings and press **Train**, or a lesson.",
                 "waiting": "Waiting for the teacher · 等待老师 — their run shows here once it starts.",
                 "student": "Ready · 就绪 — set what the teacher left free and press **Train**.",
                 "queued": "**waiting · 排队中**: the server trains {} runs, its limit; "
                           "you are number **{}** in the queue",
                 "paused": "**paused · 已暂停** (Resume goes on, Step trains one epoch)",
                 "memorising": "记住了文本 · the model is memorising the text: its training perplexity is {} while "
                               "the held-out perplexity has risen from {} (epoch {}) to {}"}
MEMORISING = 2.0  # a training perplexity below this, with the held-out one rising, is a text learnt by heart
RISEN = 1.1       # ... rising: at least this many times its lowest, which came before


def source_zh(source: ModelSource) -> str:
    """Where a model to write with comes from, in Chinese: "第 1 次训练（scratch · random …，第 27 周期）"."""
    what = f"第 {source.number} 次训练" if source.number is not None else "上传的检查点"
    return f"{what}（{source.label}，第 {source.epoch} 周期）"


BEFORE = {"waiting": "waiting", "student": "student"}  # a page's empty-chart kind (charts.Style.empty) -> its words


def status_line(view: RunView | None, lang: str = "both", empty: str = "empty") -> str:
    """The line above the charts; ``empty``: what the page's empty chart says (``charts.Style.empty``): before
    a run a watcher's page (which cannot press Train) waits, a student's tries its value, others are ready."""
    w = WORDS[lang]
    if view is None:
        return w[BEFORE.get(empty, "ready")]
    caption = in_language(view.caption, lang)
    lesson = f"📖 **{html.escape(caption)}**  \n" if caption else ""
    return lesson + _run_line(view, w)


def _run_line(view: RunView, w: dict[str, str]) -> str:
    head = f"**#{view.number}** {html.escape(view.label)}"
    if view.status == "queued":
        return f"… {head} — " + w["queued"].format(view.running_runs, view.queue_position or 1)
    last = view.last
    parts = [w["epoch"].format(last.epoch if last else 0, view.config.epochs)]
    if last:
        parts += [w["ppl"].format(_ppl(last.perplexity))]
        if last.val_perplexity is not None:
            parts += [w["held"].format(_ppl(last.val_perplexity))]
        parts += [w["rate"].format(last.chars_per_sec), w["clipped"].format(last.clipped)]
    parts += [w["elapsed"].format(_clock(view.elapsed))]
    if view.paused:
        parts += [w["paused"]]
    elif view.active:
        others = view.running_runs - 1
        shared = w["shared"].format(others, "s" if others != 1 and w is not WORDS["zh"] else "") if others else ""
        parts += [w["ends"].format(_clock(view.eta)) + shared if view.eta is not None else w["estimating"]]
    parts += [w["device"].format(view.device)]
    icon = {"running": "▶", "finished": "✓", "stopped": "■", "diverged": "✗", "error": "✗"}.get(view.status, "")
    line = f"{'⏸' if view.paused else icon} {head} — " + " · ".join(parts)
    if (memorised := memorising(view)) is not None:
        line += "  \n⚠ " + w["memorising"].format(*memorised)
    if view.note:
        line += f"  \n⚠ {html.escape(view.note)}"
    if view.status in ("stopped", "diverged", "error"):
        line += f"  \n**{w[view.status]}**: {html.escape(view.message)}"
    return line


def memorising(view: RunView) -> tuple[str, str, int, str] | None:
    """(training perplexity, the held-out one's lowest, its epoch, the held-out one now) when the run learns
    its text by heart: its training perplexity below ``MEMORISING`` while the held-out one has risen to
    ``RISEN`` times its lowest since; else None."""
    held = [(e.epoch, e.val_perplexity) for e in view.history if e.val_perplexity is not None]
    last = view.last
    if not held or last is None or last.perplexity >= MEMORISING or last.val_perplexity is None:
        return None
    epoch, low = min(held, key=lambda p: p[1])
    if epoch == last.epoch or last.val_perplexity < RISEN * low:
        return None
    return f"{last.perplexity:.2f}", _ppl(low), epoch, _ppl(last.val_perplexity)


def latest_samples(view: RunView | None, lang: str = "both") -> str:
    """The newest sample of each prefix."""
    if view is None or not view.samples:
        every = view.config.pred_period if view else None
        text = (f"每 {every} 个周期写一次 · Samples appear every {every} epochs" if every
                else "训练时这里会出现歌词 · Samples appear here while training")
        return f"<div class='sample-empty'>{in_language(text, lang)}</div>"
    newest: dict[str, Any] = {}
    epoch = in_language("周期 · epoch", lang)
    for s in view.samples:
        newest[s.prefix] = s
    rows = [f"<div class='sample'><span class='prefix'>{html.escape(p)}</span>"
            f"{_written(s.text[len(p):])}<span class='epoch'>{epoch} {s.epoch}</span></div>"
            for p, s in newest.items()]
    return "\n".join(rows)


def _written(text: str) -> str:
    """What the model wrote after a prefix, as HTML. Early in training a greedy model writes nothing but its
    likeliest character, a space (50 of them after the chapter's prefixes), which would show as nothing at
    all: such a sample says what it is."""
    if not text or text.strip():
        return html.escape(text)
    what = "空格 · spaces" if set(text) == {" "} else "空白字符 · blank characters"
    return f"<span class='blank'>␣ × {len(text)} ({what})</span>"


def side_by_side(views: list[RunView], lang: str = "both") -> str:
    """The newest lyrics of a lesson's runs in columns, each headed by its run (decoding, sampling, ...)."""
    columns = []
    for v in views:
        decoding = f"sampled, T={v.config.temperature:g}" if v.config.temperature > 0 else "greedy"
        head = (f"<div class='column-head' style='color:{color(v.number)}'>"
                f"#{v.number} {html.escape(v.label)} · {decoding}</div>")
        columns.append(f"<div class='column'>{head}{latest_samples(v, lang)}</div>")
    return f"<div class='side-by-side'>{''.join(columns)}</div>"


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


def progress(view: RunView | None) -> dict[str, Any]:
    """A JSON summary of the run for API clients (``gradio_client``)."""
    if view is None:
        return {"status": "idle"}
    last = view.last
    newest: dict[str, str] = {}
    for s in view.samples:
        newest[s.prefix] = s.text
    return {
        "run": view.number, "label": view.label, "status": view.status, "message": view.message,
        "queue_position": view.queue_position, "running_runs": view.running_runs, "note": view.note,
        "epoch": last.epoch if last else 0, "epochs": view.config.epochs,
        "perplexity": last.perplexity if last else None, "grad_norm": last.grad_norm if last else None,
        "clipped": last.clipped if last else None, "chars_per_sec": last.chars_per_sec if last else None,
        "elapsed": round(view.elapsed, 3), "remaining": view.eta, "device": view.device,
        "mean_chars_per_sec": _mean_rate(view), "train_seconds": sum(e.seconds for e in view.history),
        "vocab_size": view.vocab_size, "perplexities": [e.perplexity for e in view.history],
        "samples": newest, "sample_epochs": sorted({s.epoch for s in view.samples}),
        "config": dataclasses.asdict(view.config),
        "paused": view.paused, "val_perplexity": last.val_perplexity if last else None,
        "val_perplexities": [e.val_perplexity for e in view.history],
        "changes": [c.as_dict() for c in view.changes],
    }


def compact_json(data: Any) -> str:
    """JSON with no spaces and non-ASCII characters as themselves: every watching screen is sent each chart again
    at each update, inside Gradio's message where each JSON string is escaped once more (orjson: in C)."""
    return orjson.dumps(data).decode()


def chart(figure: dict[str, Any]) -> dict[str, str]:
    """A plotly figure as ``gr.Plot`` sends it to the browser (its JSON; no plotly objects built), made once and
    never changed afterwards, so that every page showing it is sent the same one."""
    return {"type": "plotly", "plot": compact_json(figure)}


def texts(view: RunView | None, lang: str = "both", empty: str = "empty") -> tuple[str, str, str, dict[str, Any]]:
    """Status line, newest samples, the history printout and the progress dict of one run (cheap)."""
    return status_line(view, lang, empty), latest_samples(view, lang), sample_history(view), progress(view)


# ---------------------------------------------------------------- inside the model (charrnn.inside's views)
SHOWN = {" ": "·", "\n": "¶", "\t": "→"}  # characters that would not show on a tick (in fonts every browser has)
BAR_SHOWN = {" ": "空格 · space", "\n": "换行 · newline", "\t": "Tab"}  # ... or on a bar (Chinese on a page in both)


def next_chars_html(view: dict[str, Any] | None, lang: str = "both") -> str:
    """``charrnn.inside.NextChars.as_dict()`` as bars the page can click: the likeliest next characters,
    each bar as long as its probability relative to the first. Clicking one sends its character (see
    ``layout.NEXT_JS``)."""
    if not view or not view["next"]:
        text = in_language("先训练，再输入前缀 · press Train, then type a prefix", lang)
        return f"<div class='next-empty'>{text}</div>"
    top = max(n["prob"] for n in view["next"]) or 1.0
    rows, word_lang = [], "zh" if lang == "both" else lang
    for n in view["next"]:
        c, p = n["char"], n["prob"]
        shown = in_language(BAR_SHOWN[c], word_lang) if c in BAR_SHOWN else c
        rows.append(f"<button class='next-bar' data-char='{html.escape(c, quote=True)}' title='{p:.2%}'>"
                    f"<span class='ch{' word' if c in BAR_SHOWN else ''}'>{html.escape(shown)}</span>"
                    f"<span class='track'>"
                    f"<span class='fill' style='width:{100 * p / top:.1f}%'></span></span>"
                    f"<span class='p'>{p:.1%}</span></button>")
    return "<div class='next-bars'>" + "".join(rows) + "</div>"


def hidden_units_figure(view: dict[str, Any], units: list[int], cell: bool = False,
                        style: Style = NORMAL) -> dict[str, Any]:
    """A heatmap of chosen units (rows) over the passage's characters (columns): tanh's -1 red, +1 blue;
    an LSTM's memory cell is unbounded, so its colours span its own largest value."""
    rows = view["cell"] if cell else view["hidden"]
    chars = [SHOWN.get(c, c) for c in view["text"]]
    z = [[rounded(rows[t][u]) for t in range(len(chars))] for u in units]
    span = max((abs(v) for row in z for v in row if v is not None), default=1.0) if cell else 1.0
    layout = base_layout("memory cell C 记忆细胞" if cell else "hidden units H 隐藏单元 (tanh: −1 red … +1 blue)",
                         "unit", style)
    layout.update(hovermode="closest", height=max(style.height, 24 + 16 * len(units) + 6 * style.font))
    every = max(1, math.ceil(len(chars) / 60))  # at most 60 labels: more would overlap
    layout["xaxis"].update(title=dict(text="character 字符"), tickmode="array", tickangle=0,
                           tickvals=list(range(0, len(chars), every)), ticktext=chars[::every])
    layout["yaxis"].update(tickmode="array", tickvals=list(range(len(units))), ticktext=[f"#{u}" for u in units],
                           autorange="reversed")
    data = [dict(type="heatmap", z=z, x=list(range(len(chars))), y=list(range(len(units))), zmid=0,
                 zmin=-span, zmax=span, colorscale="RdBu", reversescale=True,
                 hovertemplate="unit #%{text}, character %{x}: %{z:.3f}<extra></extra>",
                 text=[[str(u)] * len(chars) for u in units])]
    return dict(data=data, layout=layout)


def unit_text_html(view: dict[str, Any], unit: int, cell: bool = False) -> str:
    """The passage with each character's background coloured by one unit's value after reading it, in the
    manner of Karpathy et al., "Visualizing and Understanding Recurrent Networks" (blue +, red −)."""
    rows = view["cell"] if cell else view["hidden"]
    values = [rows[t][unit] for t in range(len(view["text"]))]
    span = max((abs(v) for v in values), default=1.0) if cell else 1.0
    spans = []
    for c, v in zip(view["text"], values):
        a = min(1.0, abs(v) / (span or 1.0))
        rgb = "33,102,172" if v >= 0 else "178,24,43"
        shown = "<br>" if c == "\n" else html.escape(c)
        spans.append(f"<span style='background:rgba({rgb},{a:.2f})' title='{v:+.3f}'>{shown}</span>")
    what = "memory cell C" if cell else "hidden unit H"
    return (f"<div class='unit-head'>{what} #{unit} · 单元 #{unit}</div>"
            f"<div class='unit-text'>{''.join(spans)}</div>")


def gradients_figure(curves: list[tuple[int, str, int, list[float]]], style: Style = NORMAL) -> dict[str, Any]:
    """‖∂loss/∂H_t‖ at every time step t of the probe minibatch, one line per run (number, label, epoch,
    norms): backpropagation through time (6.6). The last step gets only its own output's gradient; earlier
    steps what survives the way back through the recurrent weights."""
    data = []
    for number, label, epoch, norms in curves:
        c = color(number)
        data.append(dict(type="scatter", x=list(range(1, len(norms) + 1)), y=[rounded(n) for n in norms],
                         mode="lines+markers", name=f"#{number} {label} · epoch {epoch}",
                         line=dict(color=c, width=style.line), marker=dict(color=c, size=style.line + 3)))
    span = scales.log_range(n for *_, norms in curves for n in norms)
    layout = base_layout("gradient of the loss w.r.t. each step's state ‖∂ℓ/∂H_t‖ 随时间反向传播的梯度",
                         "norm (log scale)", style, legend_lines=len(curves),
                         **(log_axis(span) if span else dict(type="log")))
    layout["xaxis"]["title"]["text"] = "time step t 时间步"
    layout["hovermode"] = "x unified"
    if not curves:
        layout["annotations"] = [dict(text="press Train · 点击“训练”", showarrow=False, xref="paper", yref="paper",
                                      x=0.5, y=0.5, font=dict(size=style.font + 4, color="#999"))]
    return dict(data=data, layout=layout)
