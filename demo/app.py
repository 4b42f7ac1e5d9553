"""charrnn live training lab: ``python demo/app.py`` serves a Gradio page on 127.0.0.1:7860.

The page trains the chapter's character-level RNN while you watch. This file holds the handlers, named
after what triggers them, their wiring and the launch; ``form`` owns the settings and their rules,
``layout`` the components, ``render`` what a run looks like, and ``charrnn`` all the training.
"""
from __future__ import annotations

import asyncio
import atexit
import dataclasses
import os
import sys
import threading
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run as a script from anywhere
sys.path.insert(0, str(Path(__file__).resolve().parent))

import gradio as gr  # noqa: E402
from gradio import processing_utils  # noqa: E402
import torch  # noqa: E402

import form  # noqa: E402
import layout  # noqa: E402
import render  # noqa: E402
from charrnn import generate as gen  # noqa: E402
from charrnn.checkpoint import CheckpointError, load_checkpoint  # noqa: E402
from charrnn.config import ConfigError, TrainConfig  # noqa: E402
from charrnn.corpus import NAMED, CorpusError, cached_corpus, decode_bytes, describe_source  # noqa: E402
from charrnn.files import QuotaError  # noqa: E402
from charrnn.lab import Lab, Run, Session  # noqa: E402
from charrnn.threads import cpu_cores, one_thread  # noqa: E402
from charrnn.train import Trainer, pick_device  # noqa: E402

MAX_UPLOAD = "64mb"                   # launch(max_file_size): no upload above this reaches the app
UPLOAD_MAX_CHECKPOINT_BYTES = 64 * 1024 * 1024
RENDER_EVERY = 0.5                    # seconds between chart updates while training (2 per second at most)
STOPPED_EARLY = "■ Stopped before it started · 训练开始前已停止"
BUSY_NOTE = ("A run is training · 正在训练: stop it first, or press the button below to stop it and train "
             "the new settings · 请先停止，或点下面的按钮停止并用新设置训练")


def build_app(lab: Lab | None = None) -> gr.Blocks:
    lab = lab or Lab()
    lab.start_reaper()
    threading.Thread(target=_prewarm, name="charrnn-prewarm", daemon=True).start()
    device = pick_device("auto")
    device_text = (f"GPU · {torch.cuda.get_device_name(0)}" if device.type == "cuda" else f"CPU · {cpu_cores()} cores")

    def session_of(request: gr.Request) -> Session:
        return lab.session(request.session_hash)

    def render_session(session: Session, focus=None) -> tuple:
        return render.session_outputs(session.views(), focus, lab.slots.busy, lab.slots.limit)

    # ------------------------------------------------------------ Train, Stop
    def validate_train(request: gr.Request, **values: Any) -> list:
        """Runs when Train is pressed: every problem shows next to its setting, and then no run starts."""
        session = session_of(request)
        pending = session.request_train()  # the press (on_press), or an API call's request
        if values.get("corpus") == "upload" and values.get("corpus_file"):
            try:
                hold_upload(session, values["corpus_file"])
            except (QuotaError, OSError) as e:
                session.drop_request(pending)
                return [gr.validate(n != "corpus_file", str(e)) for n in form.NAMES]
        pending.checked = form.check(values, session.loaded)
        problems = pending.checked.problems
        if problems:
            session.drop_request(pending)
        return [gr.validate(name not in problems, problems.get(name, "")) for name in form.NAMES]

    async def on_train(request: gr.Request, *, corpus_file: str | None = None, **values: Any):
        """Start a run in this session and stream its progress until it ends."""
        session = session_of(request)
        pending = session.pending_request()
        if pending is not None and pending.cancelled:
            session.drop_request(pending)
            yield _note(session, STOPPED_EARLY)
            return
        if session.active is not None:
            session.drop_request(pending)
            yield _note(session, BUSY_NOTE, busy=True)
            return
        checked = pending.checked if pending is not None and pending.checked is not None else None
        if checked is None:
            checked = await asyncio.to_thread(form.check, {**values, "corpus_file": corpus_file}, session.loaded)
        if not checked.ok:
            session.drop_request(pending)
            raise gr.Error(" · ".join(f"{k}: {v}" for k, v in checked.problems.items()), title="Not started 未开始")
        try:
            run = session.start(await asyncio.to_thread(_make_trainer, checked, session), request=pending)
        except RuntimeError:  # another Train of this session started its run meanwhile
            yield _note(session, BUSY_NOTE, busy=True)
            return
        except (ConfigError, CorpusError) as e:
            session.drop_request(pending)
            raise gr.Error(str(e), title="Not started 未开始")
        if run is None:  # a Stop came while the run was being prepared
            yield _note(session, STOPPED_EARLY)
            return
        try:
            async for outputs in follow(session, run):
                yield (*outputs, gr.skip(), gr.skip())  # the note is Stop's, once pressed
        finally:
            if run.alive:  # the page was closed or the client cancelled: nobody watches, so stop
                run.stop()

    def on_press(pressed_at: float, request: gr.Request) -> tuple[str, Any]:
        """The first thing Train does: from now on a Stop cancels the run it starts, even before it starts."""
        session_of(request).request_train(new=True, pressed_at=pressed_at)
        return "", gr.update(visible=False)

    def _note(session: Session, text: str, busy: bool = False) -> tuple:
        progress = {"status": "busy" if busy else "stopped", "message": text}
        return (*[gr.skip()] * 5, progress, text, gr.update(visible=busy))

    async def follow(session: Session, run: Run):
        """Renders of the session each time its runs change (2 per second at most) until ``run`` ends."""
        shown, last = -1, 0.0
        while True:
            view = run.view()
            session.touch()
            ended = not run.alive and view.status != "queued"
            due = time.monotonic() - last >= RENDER_EVERY or len(view.history) == 1 or ended
            if view.version != shown and due:
                shown, last = view.version, time.monotonic()
                yield await asyncio.to_thread(render_session, session, view)
            if ended:
                return
            await asyncio.sleep(0.05)

    def on_stop(request: gr.Request, pressed_at: float | None = None) -> tuple[str, Any]:
        """Stop this session's run (within one minibatch), or the one its latest Train is about to start.

        ``pressed_at``: the browser's clock (ms) when Stop was pressed; API clients leave it out.
        """
        stopped = session_of(request).stop(timeout=1.0, pressed_at=pressed_at or None)
        if stopped is None:
            text = "Nothing is training · 没有正在进行的训练"
        elif isinstance(stopped, Run):
            epochs = stopped.view().epoch
            text = f"■ Stopped run #{stopped.number} after {epochs} epoch{'' if epochs == 1 else 's'} · 已停止"
        else:
            text = STOPPED_EARLY
        return text, gr.update(visible=False)

    # ------------------------------------------------------------ the form
    def on_preset(name: str) -> list:
        values = form.preset_form(name)
        return [values.get(n, gr.skip()) for n in form.NAMES]

    def on_corpus(corpus: str):
        return gr.update(visible=corpus == "upload")

    def on_upload_text(path: str | None, prefixes: str, request: gr.Request):
        """Keep the text for this session only; suggest prefixes from it when the current ones do not occur in it."""
        if not path:
            return gr.skip(), ""
        try:
            hold_upload(session_of(request), path)
            text = decode_bytes(Path(path).read_bytes(), Path(path).name)
        except (CorpusError, QuotaError, OSError) as e:
            return gr.skip(), f"✗ {e}"
        current = form.parse_prefixes(prefixes)
        if current and all(p in text for p in current):
            return gr.skip(), ""
        suggested = form.suggest_prefixes(text)
        return suggested, (f"前缀 · prefixes set to “{suggested}”, taken from the text's first words" if suggested else "")

    def hold_upload(session: Session, path: str) -> None:
        """An uploaded text belongs to the session: deleted when it closes, or now if it does not fit its caps."""
        try:
            session.files.add(path, make_room=True, upload=True)
        except QuotaError:
            Path(path).unlink(missing_ok=True)
            raise

    # ------------------------------------------------------------ writing
    def validate_write(prefix, length, decoding, temperature, top_k, seed) -> list:
        ok = bool(prefix) and len(prefix) <= gen.MAX_PREFIX
        whole = [v is None or float(v).is_integer() for v in (length, top_k, seed)]
        return [gr.validate(ok, "" if ok else f"type 1 to {gen.MAX_PREFIX:,} characters"),
                gr.validate(whole[0] and length is not None and 1 <= length <= 2000, "a whole number from 1 to 2000"),
                gr.validate(True, ""), gr.validate(True, ""),
                gr.validate(whole[1] and (top_k is None or top_k >= 0), "a whole number: 0 (all) or more"),
                gr.validate(whole[2], "a whole number")]

    def on_write(prefix, length, decoding, temperature, top_k, seed, request: gr.Request):
        """Write with the current model (mid-training too), streaming the text as it grows."""
        current = session_of(request).model()
        if current is None:
            raise gr.Error("No model yet: press Train, or upload a checkpoint · 还没有模型")
        model, vocab, source = current
        sample = decoding == "sample"
        try:
            chars = gen.stream(model, vocab, prefix or "", int(length or 0), float(temperature) if sample else 0.0,
                               int(top_k) if sample and top_k else None, int(seed) if sample and seed else None)
        except (gen.PrefixError, ValueError) as e:
            yield "", f"✗ {e}"
            return
        text, last, note = prefix, 0.0, f"written by {source}"
        for ch in chars:
            text += ch
            if time.monotonic() - last > 0.03:
                last = time.monotonic()
                yield text, note
        yield text, note

    # ------------------------------------------------------------ checkpoints
    def on_save(request: gr.Request):
        """Save the current model in the session's private folder; only this session's download serves it."""
        one_thread()
        session = session_of(request)
        trainer = session.latest_trainer()
        if trainer is None:
            raise gr.Error("No model to save yet: train one first · 还没有模型")
        try:
            path = session.files.new_path(f"{trainer.run_id}-epoch-{trainer.epoch:04d}.safetensors")
            trainer.save(str(path))
            try:
                session.files.add(path, make_room=True)
            except QuotaError:
                path.unlink(missing_ok=True)
                raise
            download = session.files.add(processing_utils.save_file_to_cache(path, demo.GRADIO_CACHE), copy_of=path)
        except QuotaError as e:
            return gr.skip(), f"✗ {e}"
        return str(download), f"saved epoch {trainer.epoch} of run #{session.runs[-1].number} · 已保存"

    def on_upload_checkpoint(request: gr.Request, file: str | None = None):
        if not file:
            return [f"✗ send a .safetensors checkpoint file saved by charrnn (Save, or `python -m charrnn train "
                    f"--save`), at most {UPLOAD_MAX_CHECKPOINT_BYTES // 2**20} MB"] + [gr.skip()] * len(form.NAMES)
        session = session_of(request)
        one_thread()
        try:
            ck = load_checkpoint(file, max_bytes=UPLOAD_MAX_CHECKPOINT_BYTES)
        except CheckpointError as e:
            return [f"✗ {e}"] + [gr.skip()] * len(form.NAMES)
        finally:
            Path(file).unlink(missing_ok=True)  # the weights are in memory now; the upload is not kept
        session.loaded = ck
        values = {**form.config_to_form(ck.config), "resume": True}
        own_text = ck.config.corpus not in NAMED
        msg = (f"✓ loaded {ck.config.label()} · epoch {ck.epoch} · vocabulary {len(ck.vocab)} · corpus "
               f"{describe_source(ck.config.corpus)}. Write with it below, or press Train to resume it (epochs = how "
               f"many more){': upload that text first' if own_text else ''}.")
        return [msg] + [values.get(n, gr.skip()) for n in form.NAMES]

    # ------------------------------------------------------------ the session
    def on_clear(request: gr.Request) -> tuple:
        session = session_of(request)
        session.clear()
        return render_session(session)

    def on_heartbeat(request: gr.Request) -> None:
        lab.session(request.session_hash, heartbeat=True)

    def on_close(request: gr.Request) -> None:
        lab.close(request.session_hash)

    # ------------------------------------------------------------ the page and its wiring
    header = ("# 循环神经网络实验室 · RNN live lab\nTrain the character-level RNN of *Dive into Deep Learning* "
              "(RNN chapter) on Jay Chou's lyrics and watch it learn: perplexity falls, gradients get clipped, "
              f"the lyrics get better. Device 设备: **{device_text}**")
    # Files the app does not track itself (Gradio's own temporary files) go after a day at most.
    with gr.Blocks(title="charrnn · RNN lab", delete_cache=(3600, 86400)) as demo:
        page = layout.build(header, lab.slots.limit)
        s = page.settings
        for button, name in page.presets:
            button.click(lambda n=name: on_preset(n), None, list(s.values()), api_visibility="private")
        s["corpus"].change(on_corpus, s["corpus"], s["corpus_file"], api_visibility="private")
        s["corpus_file"].upload(on_upload_text, [s["corpus_file"], s["prefixes"]], [s["prefixes"], page.train_note],
                                api_visibility="private")
        train_outputs = [*page.run_outputs, page.train_note, page.restart]
        train = dict(fn=on_train, inputs_kwargs=s, outputs=train_outputs, validator=validate_train,
                     concurrency_limit=None, show_progress="hidden", trigger_mode="multiple")
        clock = dict(inputs_kwargs={"pressed_at": page.clock}, js="() => Date.now()")  # the browser's time
        # "multiple": a Train pressed while a run streams reaches the server, which says to stop first
        page.train.click(on_press, outputs=[page.train_note, page.restart], **clock, trigger_mode="multiple",
                         queue=False, api_visibility="private").then(api_name="train", **train)
        page.stop.click(on_stop, outputs=[page.train_note, page.restart], api_name="stop", concurrency_limit=None,
                        queue=False, **clock)
        page.restart.click(on_stop, outputs=[page.train_note, page.restart], queue=False, **clock,
                           api_visibility="private").then(api_visibility="private", **train)
        page.write.click(on_write, page.write_inputs, [page.written, page.write_note], api_name="generate",
                         validator=validate_write, concurrency_limit=None, show_progress="minimal")
        page.clear.click(on_clear, None, page.run_outputs, api_name="clear", concurrency_limit=None)
        page.save.click(on_save, None, [page.saved_file, page.save_note], api_name="save_checkpoint",
                        concurrency_limit=4)
        page.ck_upload.upload(on_upload_checkpoint, None, [page.ck_note, *s.values()], api_name="load_checkpoint",
                              inputs_kwargs={"file": page.ck_upload}, concurrency_limit=4)
        gr.Timer(5.0).tick(on_heartbeat, None, None, api_visibility="private", concurrency_limit=None,
                           show_progress="hidden")
        demo.unload(on_close)
    demo.lab = lab  # for tests and the benchmark
    return demo


def _make_trainer(checked: form.Checked, session: Session) -> Trainer:
    """A new Trainer for checked settings; when resuming, the uploaded checkpoint with the form's changes."""
    one_thread()
    if not checked.resume:
        return Trainer(checked.config, checked.corpus)
    ck = session.loaded  # "epochs" more than the checkpoint has; its structure stays as saved
    keep = ("model", "num_hiddens", "optimizer", "seed")
    changes = {k: v for k, v in dataclasses.asdict(checked.config).items() if k not in keep}
    return Trainer.from_checkpoint(ck, checked.corpus, **{**changes, "epochs": ck.epoch + checked.config.epochs})


def _prewarm() -> None:
    """Read the default corpus before anyone presses Train, so the first chart point comes quickly."""
    try:
        cached_corpus("jaychou", TrainConfig().max_chars)
    except (CorpusError, OSError):
        pass  # reported, with what to do, when a run asks for it


def launch(demo: gr.Blocks, **kwargs: Any):
    """Serve on $GRADIO_SERVER_NAME:$GRADIO_SERVER_PORT (Gradio's defaults: 127.0.0.1:7860).

    Nothing of the project's folders is served (no ``allowed_paths``): a session's files reach it only
    through its own downloads, and every session's files are deleted when the server stops.
    """
    atexit.register(demo.lab.shutdown)
    demo.queue(max_size=256)
    return demo.launch(max_file_size=MAX_UPLOAD, css=layout.CSS, theme=gr.themes.Soft(), **kwargs)


if __name__ == "__main__":
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    launch(build_app())
