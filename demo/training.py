"""Train, Stop and Clear: what the page's buttons do to its session's runs.

A Train press first becomes a request that a Stop cancels, even before its run starts (``on_press``; the
race is ``charrnn.presses``'), and its settings are checked at once: what is wrong shows beside the button
and in the status line, in the page's language. A corpus that is not on this machine is fetched meanwhile
(``demo.fetching``; ``on_fetching`` shows its progress). The check is kept for the start: next to the form's
settings (``validate_train``, which API calls reach first), then ``on_train``, which streams the run
(``demo.streams.follow``). A Train that starts nothing for another reason (a run is training, a Stop came
first) leaves a note that the page shows once its stream has ended (``on_streamed``).
"""
from __future__ import annotations

import asyncio
import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gradio as gr
from anyio import to_thread  # its threads end after 10 s idle (asyncio's pool keeps them)

from demo import class_views
from demo import form
from demo import setting_widgets
from demo.fetching import FETCHES, Fetch
from demo.languages import in_language
from demo.problems import in_page
from demo.page_state import PerSession
from demo.renders import RENDERS, outputs
from demo.streams import follow
from demo.values import read
from charrnn.config import ConfigError
from charrnn.corpus import DOWNLOAD_TIMEOUT, REMOTE, CorpusError, is_local
from charrnn.files import QuotaError
from charrnn.lab import Lab
from charrnn.presses import TrainRequest
from charrnn.runs import Run
from charrnn.sessions import Session
from charrnn.threads import one_thread
from charrnn.train import STRUCTURE, Trainer

STOPPED_EARLY = "■ Stopped before it started · 训练开始前已停止"
BUSY_NOTE = ("A run is training · 正在训练: stop it first, or press the button below to stop it and train "
             "the new settings · 请先停止，或点下面的按钮停止并用新设置训练")


@dataclass
class TrainState:
    """What the page keeps of a session's Train presses."""
    note: tuple[str, bool] | None = None  # (text, busy): the Train note the page shows once its stream ends
    checked: tuple[TrainRequest, form.Checked] | None = None  # the settings' check, for that request's start
    fetch: Fetch | None = None  # the corpus download the latest press waits for


TRAIN: PerSession[TrainState] = PerSession(lambda _: TrainState())


class Training:
    """The handlers of Train, Stop and Clear."""

    def __init__(self, lab: Lab):
        self.lab = lab

    def session(self, request: gr.Request) -> Session:
        return self.lab.session(request.session_hash)

    def on_press(self, pressed_at: float, request: gr.Request, **values: Any) -> tuple[str, Any, Any, Any]:
        """The first thing Train does: from now on a Stop cancels the run it starts, even before it starts; and
        its settings are checked now, so that what is wrong shows beside the button and in the status line
        (note, the restart button, status, and the "more settings" fold, opened when a setting in it is
        refused). A corpus not on this machine starts its download instead."""
        session = self.session(request)
        return self.pressed(session, session.request_train(new=True, pressed_at=pressed_at), values)

    def on_restart(self, pressed_at: float, request: gr.Request, **values: Any) -> tuple[str, Any, Any, Any]:
        """The button a Train that found a run training shows: stop that run and press Train, in one step (a
        Stop pressed after it cancels the new run, as it would a Train's). Answers as ``on_press``."""
        session = self.session(request)
        _, pending = session.restart(pressed_at=pressed_at)
        return self.pressed(session, pending, values)

    def pressed(self, session: Session, pending: TrainRequest, values: dict[str, Any]) -> tuple[str, Any, Any, Any]:
        """A Train press's answer (note, the restart button, status, the fold): nothing when its settings are
        right, what is wrong with them, or the download of its corpus beginning."""
        lang = RENDERS.of(session).lang
        source = values.get("corpus")
        if source in REMOTE and not is_local(source):
            job = TRAIN.of(session).fetch = FETCHES.start(source)
            return job.note(lang), gr.update(visible=False), job.note(lang), gr.skip()
        checked = self.check(session, pending, values)
        if checked.ok:
            return "", gr.update(visible=False), gr.skip(), gr.skip()
        text = not_started(checked.problems, lang)
        fold = gr.update(open=True) if setting_widgets.in_fold(checked.problems) else gr.skip()
        return text, gr.update(visible=False), text, fold

    async def on_fetching(self, request: gr.Request):
        """While the corpus the latest press needs is downloaded: its progress beside Train and in the status
        line, then why it failed (what to do), or nothing (the run's stream takes the status line over)."""
        session = self.lab.peek(request.session_hash)
        state = TRAIN.get(session) if session is not None else None
        job = state.fetch if state is not None else None
        if job is None:
            yield gr.skip(), gr.skip(), gr.skip()
            return
        lang = RENDERS.of(session).lang
        while not job.done.is_set():
            yield job.note(lang), gr.skip(), job.note(lang)
            await asyncio.sleep(0.5)
        state.fetch = None
        if job.error:
            text = not_started({"corpus": job.error}, lang)
            yield text, gr.skip(), text
        else:
            yield "", gr.skip(), gr.skip()

    def check(self, session: Session, pending: TrainRequest, values: dict[str, Any]) -> form.Checked:
        """``form.check`` of a press's settings, kept for its start; an upload is held by the session first, and
        a corpus being downloaded is waited for. A student's press trains the teacher's fixed settings
        (``class_views.student_values``)."""
        values, fixed = class_views.student_values(session, values)
        if fixed:
            return form.Checked(problems=fixed)
        if values.get("corpus") == "upload" and values.get("corpus_file"):
            try:
                hold_upload(session, form.file_path(values["corpus_file"]))
            except (QuotaError, OSError) as e:
                return form.Checked(problems={"corpus_file": str(e)})
        state = TRAIN.get(session)
        job = FETCHES.running(values.get("corpus", "")) or (state.fetch if state is not None else None)
        if job is not None and job.source == values.get("corpus"):
            job.done.wait(3 * DOWNLOAD_TIMEOUT)
            if job.error:
                return form.Checked(problems={"corpus": job.error})
        checked = class_views.student_problems(session, form.check(values, session.loaded))
        TRAIN.of(session).checked = (pending, checked)
        return checked

    def validate_train(self, request: gr.Request, **values: Any) -> list:
        """Runs when Train is pressed, after ``on_press`` (whose check it reuses), or first for an API call: every
        problem shows next to its setting, and then no run starts."""
        session = self.session(request)
        pending = session.request_train()  # the press (on_press), or an API call's request
        checked = peek_check(session, pending) or self.check(session, pending, values)
        problems, lang = checked.problems, RENDERS.of(session).lang
        if problems:
            session.drop_request(pending)
        return [gr.validate(name not in problems, in_page(problems.get(name, ""), lang)) for name in form.NAMES]

    async def on_train(self, request: gr.Request, *, corpus_file: str | None = None, **values: Any):
        """Start a run in this session and stream its progress until it ends (the run goes on without it)."""
        session = self.session(request)
        pending = session.pending_request()
        checked = kept_check(session, pending)
        if pending is not None and pending.cancelled:
            session.drop_request(pending)
            yield note(session, STOPPED_EARLY)
            return
        if await to_thread.run_sync(session.settle) is not None:
            session.drop_request(pending)
            yield note(session, BUSY_NOTE, busy=True)
            return
        if checked is None:
            values, fixed = class_views.student_values(session, {**values, "corpus_file": corpus_file})
            checked = (form.Checked(problems=fixed) if fixed else class_views.student_problems(
                session, await to_thread.run_sync(form.check, values, session.loaded)))
        if not checked.ok:
            session.drop_request(pending)
            lang = RENDERS.of(session).lang  # the toast in the page's language, as the note beside Train
            raise gr.Error(not_started(checked.problems, lang, head=False), title=in_language(NOT_STARTED, lang))
        try:
            run = session.start(await to_thread.run_sync(make_trainer, checked, session), request=pending)
        except RuntimeError as e:  # another Train of this session started its run meanwhile, or it closed
            busy = "already training" in str(e)
            yield note(session, BUSY_NOTE if busy else f"✗ {e}", busy=busy)
            return
        except (ConfigError, CorpusError) as e:
            session.drop_request(pending)
            lang = RENDERS.of(session).lang
            raise gr.Error(in_page(str(e), lang), title=in_language(NOT_STARTED, lang))
        if run is None:  # a Stop came while the run was being prepared
            yield note(session, STOPPED_EARLY)
            return
        async for out in follow(session, run):
            yield out

    def on_streamed(self, request: gr.Request) -> tuple:
        """After a Train or lesson stream: the note it left (why nothing started), or nothing (Stop's note
        stays)."""
        session = self.lab.peek(request.session_hash)
        state = TRAIN.get(session) if session is not None else None
        if state is None or state.note is None:
            return gr.skip(), gr.skip()
        (text, busy), state.note = state.note, None
        return text, gr.update(visible=busy)

    def on_stop(self, request: gr.Request, pressed_at: float | None = None) -> tuple[str, Any]:
        """Stop this session's run (within one minibatch), or the one its latest Train is about to start.

        ``pressed_at``: the browser's clock (ms) when Stop was pressed; API clients leave it out.
        """
        pressed_at = read("pressed_at", pressed_at, low=0) if pressed_at else None  # the browser's clock, in ms
        stopped = self.session(request).stop(timeout=1.0, pressed_at=pressed_at)
        if stopped is None:
            text = "Nothing is training · 没有正在进行的训练"
        elif isinstance(stopped, Run):
            epochs = stopped.view().epoch
            text = f"■ Stopped run #{stopped.number} after {epochs} epoch{'' if epochs == 1 else 's'} · 已停止"
        else:
            text = STOPPED_EARLY
        return text, gr.update(visible=False)

    def on_clear(self, request: gr.Request) -> tuple:
        session = self.session(request)
        session.clear()
        return outputs(session)


def note(session: Session, text: str, busy: bool = False) -> tuple:
    """The Train stream's answer when it starts nothing: a progress dict that says why (API clients read it),
    and the note beside the buttons, which the page's event after the stream shows (``Training.on_streamed``:
    a stream that carried the note's two outputs would send Gradio's skip for them with every update, each
    costing the server a component built)."""
    TRAIN.of(session).note = (text, busy)
    progress = {"status": "busy" if busy else "stopped", "message": text}
    return (*[gr.skip()] * 5, progress, gr.skip())


NOT_STARTED = "未开始 · Not started"


def not_started(problems: dict[str, str], lang: str, head: bool = True) -> str:
    """Why a Train press started nothing, for the note beside the button and the status line (``head``: with
    "Not started" in front): each refused setting by its label in the page's language, and what is wrong with
    it (which says what to do); a refusal of no setting (the student's experiment) by its message alone."""
    lines = [f"{in_language(form.BY_NAME[name].label, lang)}: {in_page(message, lang)}" if name in form.BY_NAME
             else in_page(message, lang) for name, message in problems.items()]
    return (f"✗ **{in_language(NOT_STARTED, lang)}** — " if head else "") + " · ".join(lines)


def peek_check(session: Session, request: TrainRequest | None) -> form.Checked | None:
    """The check ``Training.check`` made of ``request``'s settings (left for the start), or None."""
    state = TRAIN.get(session)
    kept = state.checked if state is not None else None
    return kept[1] if kept is not None and request is not None and kept[0] is request else None


def kept_check(session: Session, request: TrainRequest | None) -> form.Checked | None:
    """The check ``validate_train`` made of ``request``'s settings, taken (it serves one start), or None."""
    state = TRAIN.get(session)
    if state is None:
        return None
    kept, state.checked = state.checked, None
    return kept[1] if kept is not None and request is not None and kept[0] is request else None


def hold_upload(session: Session, path: str) -> None:
    """An uploaded text belongs to the session: deleted when it closes, or now if it does not fit its caps."""
    try:
        session.files.add(path, make_room=True, upload=True)
    except QuotaError:
        Path(path).unlink(missing_ok=True)
        raise


def make_trainer(checked: form.Checked, session: Session) -> Trainer:
    """A new Trainer for checked settings; when resuming, the uploaded checkpoint with the form's changes."""
    one_thread()
    if not checked.resume:
        return Trainer(checked.config, checked.corpus)
    ck = session.loaded  # "epochs" more than the checkpoint has; its structure stays as saved
    keep = (*STRUCTURE, "seed")
    changes = {k: v for k, v in dataclasses.asdict(checked.config).items() if k not in keep}
    return Trainer.from_checkpoint(ck, checked.corpus, **{**changes, "epochs": ck.epoch + checked.config.epochs})
