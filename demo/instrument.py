"""Playing a run like an instrument: Pause, Resume, Step, Continue (+N epochs), the settings changed while it
trains (learning rate, clipping, how often it writes samples, their decoding), and exports of what the charts
show. The page's buttons (``on_*``: a note beside them, in the page's language) and the API's endpoints (``pause``,
``resume``, ``step``, ``go_on``, ``adjust``: the run's progress or settings, a refusal as ``gr.Error``) call the
same methods of ``charrnn.sessions.Session``.
"""
# No ``from __future__ import annotations``: gr.api reads the endpoints' schemas from their type hints as they are.
from typing import Any, Optional

import gradio as gr

from charrnn import export
from charrnn.config import ConfigError
from charrnn.events import Change
from charrnn.lab import Lab
from charrnn.sessions import Session
from demo import render, rules
from demo.controls import LR_HIGH, LR_LOW, lr_of
from demo.languages import CLASS_ENDED, in_language
from demo.problems import in_page
from demo.renders import renders_of
from demo.settings import BY_NAME
from demo.streams import follow
from demo.training import TRAIN, note

STEP_WAIT = 300.0            # seconds /step waits for its epoch (a busy server's slow epoch)
FORMATS = ("csv", "json", "html")


def _said(e: Exception, lang: str) -> str:
    """A refusal as the page says it; the library's field names as the form's settings (clip_theta: θ's theta)."""
    text = str(e).replace("clip_theta=", "theta=", 1)
    return "✗ " + in_page(text, lang)


class Instrument:
    def __init__(self, lab: Lab):
        self.lab = lab

    def session(self, request: gr.Request) -> Session:
        return self.lab.session(request.session_hash)

    # ------------------------------------------------------------ the page's buttons
    def on_pause(self, request: gr.Request) -> str:
        session = self.session(request)
        lang = renders_of(session).lang
        try:
            run = session.pause()
        except RuntimeError as e:
            return _said(e, lang)
        return in_language(f"⏸ 第 {run.number} 次训练已暂停 · Run #{run.number} paused: Resume goes on, Step trains "
                           "one epoch", lang)

    def on_resume(self, request: gr.Request) -> str:
        session = self.session(request)
        try:
            run = session.resume()
        except RuntimeError as e:
            return _said(e, renders_of(session).lang)
        return in_language(f"▶ 第 {run.number} 次训练继续 · Run #{run.number} goes on", renders_of(session).lang)

    def on_step(self, request: gr.Request) -> str:
        session = self.session(request)
        try:
            run = session.step(1)
        except RuntimeError as e:
            return _said(e, renders_of(session).lang)
        return in_language(f"⏭ 再训练一个周期后暂停 · One more epoch of run #{run.number}, then paused",
                           renders_of(session).lang)

    async def on_continue(self, epochs: Any, request: gr.Request):
        """Continue the newest run for ``epochs`` more, and follow it as Train does (its note beside the buttons,
        after the stream: ``Training.on_streamed``)."""
        session = self.session(request)
        lang = renders_of(session).lang
        try:
            more = rules.number("epochs", epochs, whole=True, low=1, high=BY_NAME["epochs"].high)
            run = session.go_on(int(more))
        except (rules.Refused, RuntimeError, ConfigError) as e:
            yield note(session, _said(e, lang))
            return
        TRAIN.of(session).note = (in_language(f"⏩ 第 {run.number} 次训练再训练 {more} 个周期 · Run #{run.number}: "
                                              f"{more} more epochs", lang), False)
        async for out in follow(session, run):
            yield out

    def on_adjust(self, exponent: Any, clip: Any, theta: Any, period: Any, request: gr.Request) -> str:
        """The controls beside the charts: the learning rate (a log10 slider), clipping on/off and θ, how often
        samples are written; what changed, from the next minibatch, or why nothing did."""
        session = self.session(request)
        lang = renders_of(session).lang
        try:
            changes = dict(lr=lr_of(rules.number("lr", exponent, low=LR_LOW, high=LR_HIGH)),
                           clip_theta=rules.number("theta", theta) if clip else None,  # above 0: the library's rule
                           pred_period=int(rules.number("pred_period", period, whole=True, low=1)))
            run, before = self._before(session)
            _, after = session.adjust(**changes)
        except (rules.Refused, RuntimeError, ConfigError) as e:
            return _said(e, lang)
        said = [Change(0, 0, name, getattr(before, name), getattr(after, name)).label
                for name in changes if getattr(before, name) != getattr(after, name)]
        if not said:
            return ""
        when = "下一个小批量起 · from the next minibatch" if run.alive else "继续训练时 · when it goes on"
        return in_language(f"✓ 第 {run.number} 次训练 · run #{run.number}: ", lang) + ", ".join(said) + \
            " — " + in_language(when, lang)

    def on_decoding(self, decoding: Any, temperature: Any, top_k: Any, request: gr.Request) -> Any:
        """The samples' decoding changed in Write: the run training now writes its next samples so."""
        session = self.session(request)
        if session.active is None or session.membership.watching is not None:
            return gr.skip()
        lang = renders_of(session).lang
        sample = decoding == "sample"
        try:
            t = rules.number("temperature", temperature, low=0.05, high=2.0) if sample else 0.0
            k = rules.number("top_k", 0 if top_k is None else top_k, whole=True, low=0) if sample else 0
            run, _ = session.adjust(temperature=t, top_k=int(k) or None)
        except (rules.Refused, RuntimeError, ConfigError) as e:
            return _said(e, lang)
        zh, en = (f"采样，温度 {t:g}", f"sampled at temperature {t:g}") if sample else ("贪心", "greedy")
        return in_language(f"✓ 第 {run.number} 次训练的下一批样本：{zh} · run #{run.number}'s next samples: {en}", lang)

    def _before(self, session: Session):
        run = session.active or (session.all_runs() or [None])[-1]
        if run is None:
            raise RuntimeError("no run yet: press Train first")
        return run, run.config

    def on_export(self, fmt: str, request: gr.Request) -> tuple:
        """The runs the charts show (a watcher: the class's) as a file: (the file, a note)."""
        session = self.session(request)
        lang = renders_of(session).lang
        try:
            path = self.export_file(session, fmt)
        except (RuntimeError, ValueError) as e:
            return gr.update(visible=False), _said(e, lang)
        return gr.update(value=str(path), visible=True), ""

    def export_file(self, session: Session, fmt: str):
        if fmt not in FORMATS:
            raise ValueError(f"format={fmt!r} is not allowed: choose one of {', '.join(FORMATS)}")
        shown = session
        if session.membership.watching is not None:
            shown = self.lab.by_key(session.membership.watching)
            if shown is None:
                raise RuntimeError(CLASS_ENDED)
        look = renders_of(shown)
        views = [v for v in shown.views() if v.number not in look.hidden]
        if not views:
            raise RuntimeError("no run to export yet: press Train first")
        if fmt == "csv":
            text = export.csv_text(views)
        elif fmt == "json":
            text = export.json_text(views)
        else:
            from demo import charts
            text = export.html_text(list(charts.figures(views, lang=look.lang)), "charrnn · RNN live lab")
        path = session.files.new_path(export.filename(views, fmt))
        path.write_text(text, encoding="utf-8")
        session.files.add(path, make_room=True)
        return path

    # ------------------------------------------------------------ the API's endpoints (gr.api)
    def pause(self, request: gr.Request) -> dict:
        """Pause the run in progress within one minibatch; returns its progress (``paused`` true)."""
        run = self._call(lambda s: s.pause(), request)
        run.wait_paused(10)
        return render.progress(run.view())

    def resume(self, request: gr.Request) -> dict:
        """Resume the paused run from exactly where it paused; returns its progress."""
        return render.progress(self._call(lambda s: s.resume(), request).view())

    def step(self, epochs: int = 1, batches: int = 0, request: gr.Request = None) -> dict:
        """While paused: train ``epochs`` more epochs (or ``batches`` minibatches), pause again, and return the
        run's progress then."""
        e = int(self._number("epochs", epochs, whole=True, low=1, high=BY_NAME["epochs"].high))
        b = int(self._number("batches", batches, whole=True, low=0, high=100_000))
        run = self._call(lambda s: s.step(e, b), request)
        run.wait_paused(STEP_WAIT)
        return render.progress(run.view())

    def go_on(self, epochs: int = 50, run: int = 0, request: gr.Request = None) -> dict:
        """Continue a run that has ended for ``epochs`` more: the newest (``run`` 0), or run number ``run`` of the
        latest lesson; the same run and curve. Returns its progress as it starts (its epochs: ``/export``)."""
        more = int(self._number("epochs", epochs, whole=True, low=1, high=BY_NAME["epochs"].high))
        number = int(self._number("run", run, whole=True, low=0, high=10**9)) or None
        return render.progress(self._call(lambda s: s.go_on(more, number), request).view())

    def adjust(self, lr: Optional[float] = None, clip: Optional[bool] = None, theta: Optional[float] = None,
               pred_period: Optional[int] = None, decoding: Optional[str] = None, temperature: Optional[float] = None,
               top_k: Optional[int] = None, request: gr.Request = None) -> dict:
        """Change the run in progress (or the newest, for when it goes on) from its next minibatch: any of the
        learning rate, clipping on/off, θ, the sample period and the samples' decoding. Returns its values."""
        if clip is not None and not isinstance(clip, bool):
            raise gr.Error(f"clip={clip!r} is not allowed: true or false")
        run, now = self._call(self._before, request)
        changes: dict[str, Any] = {}
        if lr is not None:
            changes["lr"] = self._number("lr", lr)
        if clip is False:
            changes["clip_theta"] = None
        elif theta is not None or clip:
            changes["clip_theta"] = self._number("theta", theta if theta is not None else now.clip_theta or 0.01)
        if pred_period is not None:
            changes["pred_period"] = int(self._number("pred_period", pred_period, whole=True, low=1))
        if decoding is not None and decoding not in ("greedy", "sample"):
            raise gr.Error(f"decoding={decoding!r} is not allowed: greedy or sample")
        if decoding == "greedy":
            changes["temperature"] = 0.0
        elif decoding == "sample" or temperature is not None:
            changes["temperature"] = self._number("temperature", temperature if temperature is not None else 1.0,
                                                  low=0.05, high=2.0)
        if top_k is not None:
            changes["top_k"] = int(self._number("top_k", top_k, whole=True, low=0)) or None
        _, after = self._call(lambda s: s.adjust(**changes), request) if changes else (run, now)
        return {"run": run.number, "lr": after.lr, "clip": after.clip_theta is not None, "theta": after.clip_theta,
                "pred_period": after.pred_period, "decoding": "sample" if after.temperature > 0 else "greedy",
                "temperature": after.temperature, "top_k": after.top_k or 0}

    def export(self, format: str = "csv", request: gr.Request = None) -> gr.FileData:
        """The runs the charts show as a CSV (one row per epoch), a JSON (settings, history, samples, changes)
        or one standalone HTML file of the two charts (it opens offline)."""
        try:
            path = self.export_file(self.session(request), format)
        except (RuntimeError, ValueError) as e:
            raise gr.Error(str(e)) from None
        return gr.FileData(path=str(path), orig_name=path.name)

    def _call(self, act, request: gr.Request):
        try:
            return act(self.session(request))
        except (RuntimeError, ConfigError) as e:
            raise gr.Error(str(e)) from None

    @staticmethod
    def _number(name: str, value: Any, **rule: Any) -> float:
        try:
            return rules.number(name, value, **rule)
        except rules.Refused as e:
            raise gr.Error(str(e)) from None
