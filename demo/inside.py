"""Inside the model: what it expects next, what its hidden units do, how gradients flow back in time.

The page's "Inside the model" panel and the API's ``/next_chars``, ``/hidden_units`` and
``/gradients_through_time``. Every view reads the session's current model the way writing does (a
consistent copy on the CPU, one torch thread: ``Session.model()``), or for a page watching a class, the
teacher's; the gradients view is made once per epoch per run (``Run.gradients``), however many look.
"""
# No ``from __future__ import annotations``: the API's functions are ``gr.api`` endpoints, whose schema is read
# from their type hints as they are (see demo/app.py).
from typing import Any

import gradio as gr

from demo import render, rules, values
from demo.languages import CLASS_ENDED, either
from demo.problems import in_page
from demo.renders import renders_of
from charrnn import inside
from charrnn.generate import MAX_PREFIX, PrefixError
from charrnn.lab import Lab, Session
from charrnn.sessions import ModelSource
from charrnn.threads import one_thread

PAGE_PASSAGE = 400   # characters the page's hidden-unit view reads (the API: charrnn.inside.MAX_PASSAGE)
PASSAGE = 60         # characters of the training text shown when no passage is typed
HEAT_UNITS = 24      # rows of the heatmap: the units that move most over the passage
MAX_TOP_UNITS = 4096  # the API's ``top``: the most hidden units a charrnn model has (TrainConfig.problems)
NO_MODEL = "还没有模型：先训练，或上传检查点 · No model yet: press Train, or upload a checkpoint"


class Inside:
    def __init__(self, lab: Lab):
        self.lab = lab

    def _session(self, request: gr.Request) -> Session:
        """The page's session, or the class's when the page watches one (its views read the teacher's model)."""
        session = self.lab.session(request.session_hash)
        if session.membership.watching is not None:
            teacher = self.lab.by_key(session.membership.watching)
            if teacher is None:
                raise gr.Error(CLASS_ENDED)
            return teacher
        return session

    def _lang(self, request: gr.Request) -> str:
        """The language of the page that asks (a watcher's own, not its teacher's)."""
        return renders_of(self.lab.session(request.session_hash)).lang

    def _model(self, request: gr.Request):
        current = self._session(request).model()
        if current is None:
            raise gr.Error(NO_MODEL)
        return current

    # ------------------------------------------------------------ the next character
    def next_chars(self, prefix: str = "分开", temperature: float = 1.0, request: gr.Request = None) -> dict[str, Any]:
        """The API's ``/next_chars``: the ten likeliest next characters after ``prefix`` at ``temperature``."""
        view, source = self._next(prefix, temperature, request)
        return {**view, "model": str(source)}

    def _next(self, prefix: str, temperature: float, request: gr.Request) -> tuple[dict[str, Any], ModelSource]:
        prefix = values.read_text("prefix", prefix, MAX_PREFIX)
        temperature = values.read("temperature", temperature, low=0, high=100, means="0 = greedy")
        model, vocab, source = self._model(request)
        try:
            return inside.next_chars(model, vocab, prefix, float(temperature)).as_dict(), source
        except (PrefixError, ValueError) as e:
            raise gr.Error(str(e)) from None

    def on_next(self, prefix: str, temperature: float, request: gr.Request) -> tuple[str, str]:
        """The bars for the page (and a note on where they come from, or what is wrong)."""
        lang = self._lang(request)
        try:
            view, source = self._next(prefix, temperature, request)
        except gr.Error as e:
            return render.next_chars_html(None, lang), f"✗ {in_page(e.message, lang)}"
        end = view["prefix"][-20:]
        note = either(f"«{end}» 之后，模型：{render.source_zh(source)}", f"after «{end}», from {source}", lang)
        return render.next_chars_html(view, lang), note

    def on_tick(self, prefix: str, temperature: float, note: str, request: gr.Request) -> tuple[Any, Any]:
        """The panel is open (its timer): new bars when what they show changed (the training model's next epoch,
        a first model where there was none); nothing is sent otherwise."""
        bars, new = self.on_next(prefix, temperature, request)
        return (gr.skip(), gr.skip()) if new == note else (bars, new)

    def on_pick(self, prefix: str, temperature: float, evt: gr.EventData, request: gr.Request) -> tuple[str, str, str]:
        """A bar was clicked: append its character and show what comes after it."""
        char = getattr(evt, "char", None) or ""
        text = (prefix or "") + char
        return (text, *self.on_next(text, temperature, request))

    # ------------------------------------------------------------ hidden units
    def hidden_units(self, text: str = "分开", top: int = 32, request: gr.Request = None) -> dict[str, Any]:
        """The API's ``/hidden_units``: the ``top`` units that move most over ``text`` and their values after
        each character (an LSTM's memory cell too); a model with fewer units gives them all."""
        text = values.read_text("text", text, inside.MAX_PASSAGE)
        top = values.read("top", top, whole=True, low=1, high=MAX_TOP_UNITS)
        model, vocab, source = self._model(request)
        one_thread()
        try:
            view = inside.hidden_units(model, vocab, text)
        except (PrefixError, ValueError) as e:
            raise gr.Error(f"text: {e}") from None
        units = view.top_units[:top]
        pick = lambda rows: [[round(row[u], 4) for u in units] for row in rows]  # noqa: E731
        return {"text": view.text, "units": units, "hidden": pick(view.hidden),
                "cell": pick(view.cell) if view.cell is not None else None, "model": str(source)}

    def on_hidden(self, text: str, unit: float | None, which: str, request: gr.Request) -> tuple[str, Any, str, str]:
        """The passage (the start of the training text when none is typed), a heatmap of its most active units,
        the passage coloured by one unit (the most active unless ``unit`` names another), and a note."""
        empty = render.chart(render.hidden_units_figure({"text": "", "hidden": [], "cell": None}, []))
        try:
            session = self._session(request)
            if not (text or "").strip():
                text = session.training_text(PASSAGE)
            if not text:
                raise gr.Error("输入一段文字让模型读 · type a passage for the model to read")
            if len(text) > PAGE_PASSAGE:
                raise gr.Error(f"the passage has {len(text):,} characters; the page reads at most {PAGE_PASSAGE}")
            model, vocab, source = self._model(request)
            one_thread()
            try:
                view = inside.hidden_units(model, vocab, text)
            except (PrefixError, ValueError) as e:
                raise gr.Error(str(e)) from None
        except gr.Error as e:
            return text, empty, "", f"✗ {in_page(e.message, self._lang(request))}"
        cell = which == "cell" and view.cell is not None
        data, units, h = view.as_dict(), view.top_units[:HEAT_UNITS], len(view.hidden[0])
        figure = render.chart(render.hidden_units_figure(data, units, cell))
        unit = -1 if unit is None else unit  # an empty box: the most active, as −1
        problem = rules.problem(rules.number, "unit", unit, whole=True, low=-1, high=h - 1,
                                means="−1 = the most active")
        if problem:
            return text, figure, "", f"✗ {problem}"
        chosen = units[0] if unit < 0 else int(unit)
        lang = self._lang(request)
        memory = "（含记忆细胞）" if view.cell else ""
        note = either(f"{len(view.text)} 个字 · {h} 个隐藏单元{memory} · 每行一个：变化最大的 {len(units)} 个 · "
                      f"模型：{render.source_zh(source)}",
                      f"{len(view.text)} characters · {h} units{' with memory cells' if view.cell else ''} · rows: "
                      f"the {len(units)} that move most · from {source}", lang)
        if which == "cell" and view.cell is None:
            note += either("；只有 LSTM 有记忆细胞：显示的是隐状态 H", " · only an LSTM has a memory cell: showing H",
                           lang)
        return text, figure, render.unit_text_html(data, chosen, cell), note

    # ------------------------------------------------------------ gradients through time
    def gradients(self, request: gr.Request) -> list[dict[str, Any]]:
        """The API's ``/gradients_through_time``: for each run of the session (or the class), the norm of the
        loss's gradient with respect to the state at each time step of its fixed minibatch, at its latest
        epoch."""
        one_thread()
        out = []
        for run in self._session(request).all_runs():
            latest = run.gradients()
            if latest is not None:
                epoch, view = latest
                out.append({"run": run.number, "label": run.label, "epoch": epoch, **view.as_dict()})
        return out

    def on_gradients(self, request: gr.Request) -> tuple[Any, str]:
        try:
            curves = self.gradients(request)
        except gr.Error as e:
            return render.chart(render.gradients_figure([])), f"✗ {e.message}"
        figure = render.gradients_figure([(c["run"], c["label"], c["epoch"], c["norms"]) for c in curves])
        if not curves:
            return render.chart(figure), "No run has trained an epoch yet · 还没有训练过的周期"
        last = curves[-1]["norms"]
        ratio = last[0] / last[-1] if last[-1] else float("nan")
        return (render.chart(figure),
                f"run #{curves[-1]['run']}: the gradient reaching step 1 is {ratio:.2g}× the one at step {len(last)} "
                "(vanishing below 1, exploding above) · 第 1 步收到的梯度与最后一步之比")
