"""charrnn live training lab: ``python demo/app.py`` serves a Gradio page on 127.0.0.1:7860.

The page trains the chapter's character-level RNN while you watch. This file wires each panel of the page
to the handlers of its room, one function per panel (``train_events``, ``write_events``...), and launches
it. The rooms: ``training`` (Train, Stop, following runs live), ``writing``, ``inside`` (inside the model),
``checkpoints`` (saves and uploads), ``classroom`` (share, watch, lessons, links), ``experiment`` (a class's
experiment; its panels and the class's share and watch are wired in ``class_wiring``), ``gpu`` (the GPU trial);
with ``form`` (the settings and their rules), ``layout`` (the components, panel by panel), ``styles`` (the
CSS) and ``render`` (what a run looks like). All the training lives in ``charrnn``.
"""
# No ``from __future__ import annotations`` here or in demo/inside.py: ``gr.api`` reads an endpoint's
# schema from its function's type hints as they are, and a hint left as a string reads as Any.
import atexit
import os
import threading
from typing import Any

from charrnn.device import machine, on_zero_gpu  # imports torch, but touches no CUDA

if on_zero_gpu():
    import spaces  # noqa: E402,F401  ZeroGPU's package must come before anything initialises CUDA

import gradio as gr  # noqa: E402
import torch  # noqa: E402

from demo import gradio_costs  # noqa: E402
from demo import controls  # noqa: E402
from demo import gpu  # noqa: E402
from demo import heap  # noqa: E402
from demo import layout  # noqa: E402
from demo import setting_widgets  # noqa: E402
from demo import renders  # noqa: E402
from demo import screens  # noqa: E402
from demo import styles  # noqa: E402
from demo import training  # noqa: E402
from demo import values  # noqa: E402
from demo.checkpoints import Checkpoints  # noqa: E402
from demo.fetching import FETCHES  # noqa: E402
from demo.classroom import Classroom  # noqa: E402
from demo.compare import Compare  # noqa: E402
from demo.experiment import Experiments  # noqa: E402
from demo import class_views  # noqa: E402
from demo import class_wiring  # noqa: E402
from demo.inside import Inside  # noqa: E402
from demo.instrument import Instrument  # noqa: E402
from charrnn.config import TrainConfig  # noqa: E402
from charrnn.corpus import CorpusError, cached_corpus, is_local  # noqa: E402
from charrnn.lab import Lab  # noqa: E402
from demo.writing import Writing  # noqa: E402

MAX_UPLOAD = "64mb"  # launch(max_file_size): no upload above this reaches the app
# Gradio runs at most ``max_threads`` queued events at once (default 40), streams included: 30 students
# following their runs and 50 screens watching a class would leave every other click waiting. Our handlers
# are async or short; the streams wait on asyncio, not on threads.
MAX_STREAMS = 512
# the title, what the page is for, and the device, in each language (a projector's page shows the first and the
# last on one line); {machine}: the device line (charrnn.device.Machine.header)
HEADER = {
    "both": "# 循环神经网络实验室 · RNN live lab\n\n"
            "Train the character-level RNN of *Dive into Deep Learning* (RNN chapter) on Jay Chou's lyrics and watch "
            "it learn: perplexity falls, gradients get clipped, the lyrics get better.\n\n设备 · Device: **{machine}**",
    "zh": "# 循环神经网络实验室\n\n"
          "用周杰伦的歌词训练《动手学深度学习》循环神经网络一章的字符级 RNN，看它学习：困惑度下降，梯度被裁剪，"
          "歌词越写越好。\n\n设备：**{machine}**",
    "en": "# RNN live lab\n\n"
          "Train the character-level RNN of *Dive into Deep Learning* (RNN chapter) on Jay Chou's lyrics and watch "
          "it learn: perplexity falls, gradients get clipped, the lyrics get better.\n\nDevice: **{machine}**",
}


def header() -> dict[str, str]:
    """``HEADER`` with this machine's device line, in each language."""
    return {lang: text.format(machine=machine().header(lang)) for lang, text in HEADER.items()}


def build_app(lab: Lab | None = None, freeze_heap: bool = False) -> gr.Blocks:
    """The page, wired to ``lab``'s sessions, panel by panel. ``freeze_heap``: this is the server's own process
    (see ``_prewarm``)."""
    lab = lab or Lab()
    lab.start_reaper()
    heap.PAUSES.watch()
    import_optimizer()
    threading.Thread(target=_prewarm, args=(freeze_heap,), name="charrnn-prewarm", daemon=True).start()
    train, room = training.Training(lab), Classroom(lab)
    # Files the app does not track itself (Gradio's own temporary files) go after a day at most.
    with gr.Blocks(title="charrnn · RNN lab", delete_cache=(3600, 86400)) as demo:
        page = layout.build(header(), gpu=gpu.available())
        files = Checkpoints(lab, demo.GRADIO_CACHE)
        settings_events(page, files, lab)
        train_events(page, train)
        instrument_events(page, Instrument(lab), train)
        lesson_events(page, room, train)
        compare_events(page, Compare(lab))
        write_events(page, Writing(lab))
        inside_events(page, Inside(lab))
        class_wiring.class_events(page, room)
        experiment = Experiments(lab)
        class_wiring.experiment_events(page, experiment, lab)
        checkpoint_events(page, files)
        gpu_events(page)
        page_events(demo, page, room, experiment, lab)
    demo.lab = lab  # for tests and the benchmarks
    return demo


def settings_events(page: layout.Page, files: Checkpoints, lab: Lab) -> None:
    """The sidebar's settings: the chapter's presets, the corpus menu and an uploaded text, the layers shown for
    the models that stack them, the hints shown on demand (in the page's language)."""
    s = page.sidebar.settings
    quiet = dict(api_visibility="private", queue=False, show_progress="hidden")
    s["model"].change(lambda m: gr.update(visible=setting_widgets.stacks_layers(m)), s["model"], s["num_layers"],
                      **quiet)

    def on_hints(show: bool, request: gr.Request) -> dict:
        return page.hint_updates(show, renders.renders_of(lab.session(request.session_hash)).lang)

    hinted = list(page.hint_updates(False, "both"))
    page.sidebar.hints.change(on_hints, page.sidebar.hints, hinted, **quiet)
    for button, name in page.sidebar.presets:
        button.click(lambda n=name: setting_widgets.preset_values(n), None, list(s.values()), api_visibility="private",
                     show_progress="hidden")
    s["corpus"].change(lambda c: gr.update(visible=c == "upload"), s["corpus"], s["corpus_file"],
                       api_visibility="private", show_progress="hidden")
    s["corpus_file"].upload(files.on_upload_text, [s["corpus_file"], s["prefixes"]],
                            [s["prefixes"], page.sidebar.note], api_visibility="private",
                            show_progress="hidden")


def after_stream(notes: list, train: training.Training) -> dict[str, Any]:
    """The event after a Train or lesson stream: its last word (why nothing started) shows beside the buttons
    pressed (``notes``: their note and restart button; ``Training.on_streamed``)."""
    return dict(fn=train.on_streamed, outputs=notes, api_visibility="private", concurrency_limit=None,
                show_progress="hidden")


def train_events(page: layout.Page, train: training.Training) -> None:
    """Train, Stop, "stop it and train the new settings" (the sidebar's, ``/train`` and ``/stop``, and the same
    beside the status line, each with its own note), Clear (``/clear``)."""
    side = page.sidebar
    for buttons, api in ((side, True), (page.run.bar, False)):
        train_buttons(page, train, buttons, api)
    page.run.clear.click(train.on_clear, None, page.run.outputs, api_name="clear", concurrency_limit=None,
                         postprocess=False, show_progress="hidden")


def train_buttons(page: layout.Page, train: training.Training, buttons: layout.Sidebar | layout.RunBar,
                  api: bool) -> None:
    """One set of Train, Stop and restart buttons with its note; ``api``: its events are the API's."""
    side = page.sidebar
    notes = [buttons.note, buttons.restart]
    streamed = after_stream(notes, train)
    named = (lambda name: {"api_name": name}) if api else (lambda name: {"api_visibility": "private"})
    # events that stream a run send its outputs as Gradio sends them (renders.outputs): postprocess=False; they
    # read the settings as they came (preprocess=False), each by the form's rules, which name it when it is wrong
    start = dict(fn=train.on_train, inputs_kwargs=side.settings, outputs=page.run.outputs,
                 validator=train.validate_train, concurrency_limit=None, show_progress="hidden",
                 trigger_mode="multiple", preprocess=False, postprocess=False)
    clock = dict(inputs_kwargs={"pressed_at": side.clock}, js="() => Date.now()")  # the browser's time
    # the press: checked at once (what is wrong shows beside the button and in the status line); meanwhile
    # a corpus being fetched shows its progress there. On a phone the page scrolls to the run (screens.SHOW_RUN_JS).
    press = dict(fn=train.on_press, inputs_kwargs={"pressed_at": side.clock, **side.settings},
                 outputs=[*notes, page.run.status, side.more],
                 js=f"(...v) => {{ {screens.SHOW_RUN_JS} return [Date.now(), ...v.slice(1)]; }}",
                 queue=False, api_visibility="private", show_progress="hidden")
    fetching = dict(fn=train.on_fetching, outputs=[*notes, page.run.status], api_visibility="private",
                    concurrency_limit=None, show_progress="hidden")
    # "multiple": a Train pressed while a run streams reaches the server, which says to stop first
    pressed = buttons.train.click(trigger_mode="multiple", **press)
    streaming = pressed.then(**named("train"), **start).then(**streamed)
    pressed.then(**fetching)
    if buttons is side:  # on a phone the open sidebar covers the page: it folds to show the run the press starts
        size = dict(js=f"(_, note) => [{screens.SIZE}, note]", queue=False, api_visibility="private",
                    show_progress="hidden")
        pressed.then(screens.fold_if_started, [page.screen, side.note], side.box, **size)
        streaming.then(screens.open_if_said, [page.screen, side.note], side.box, **size)
    # the notes are Markdown: Gradio's progress timer would flash "0.1s" in them ("hidden")
    buttons.stop.click(train.on_stop, outputs=notes, concurrency_limit=None, queue=False, show_progress="hidden",
                       **named("stop"), **clock)
    restarted = buttons.restart.click(**{**press, "fn": train.on_restart})
    restarted.then(api_visibility="private", **start).then(**streamed)
    restarted.then(**fetching)


def instrument_events(page: layout.Page, inst: Instrument, train: training.Training) -> None:
    """Pause, Resume, Step (``/pause``, ``/resume``, ``/step``), Continue (``/continue``), the controls beside the
    charts and the samples' decoding while a run trains (``/adjust``), the exports (``/export``). The controls
    beside the charts and the sidebar's show the same values: a change of either moves the other."""
    play, live, side, bar = page.run.bar.play, page.run.live, page.sidebar.settings, page.run.bar
    quick = dict(api_visibility="private", queue=False, show_progress="hidden")
    for button, handler in ((play.pause, inst.on_pause), (play.resume, inst.on_resume), (play.step, inst.on_step)):
        button.click(handler, None, bar.note, **quick)
    live.lr.input(None, live.lr, None, js=controls.LR_VALUE_JS, **quick)  # the number it means, as it moves
    for event in (live.lr.release, live.clip.input, live.theta.submit, live.theta.blur, live.period.submit,
                  live.period.blur):
        event(inst.on_adjust, live.inputs, live.note, **quick).then(
            lambda x, c, t, p: (controls.lr_of(x), c, t, p), live.inputs,
            [side["lr"], side["clip"], side["theta"], side["pred_period"]], **quick)
    side["lr"].change(lambda v: (controls.exponent_of(v), controls.lr_value_html(float(v or 0) or 100.0)),
                      side["lr"], [live.lr, live.lr_value], **quick)
    for name, one in (("clip", live.clip), ("theta", live.theta), ("pred_period", live.period)):
        side[name].change(lambda v: v, side[name], one, **quick)
    decoding = [side[n] for n in setting_widgets.DECODING]
    for event in (side["decoding"].input, side["temperature"].release, side["top_k"].blur):
        event(inst.on_decoding, decoding, page.write.note, **quick)
    live.go_on.click(inst.on_continue, [live.more], page.run.outputs, api_visibility="private",
                     concurrency_limit=None, show_progress="hidden", postprocess=False).then(
        **after_stream([bar.note, bar.restart], train))
    ex = page.run.exports
    ex.button.click(inst.on_export, ex.format, [ex.file, ex.note], api_visibility="private", concurrency_limit=4,
                    show_progress="hidden")
    for fn, name in ((inst.pause, "pause"), (inst.resume, "resume"), (inst.step, "step"), (inst.go_on, "continue"),
                     (inst.adjust, "adjust"), (inst.export, "export")):
        gr.api(fn, api_name=name, concurrency_limit=None)


def lesson_events(page: layout.Page, room: Classroom, train: training.Training) -> None:
    """One button per lesson (``/lesson_<key>``): clear the lesson note, then stream the lesson's two runs. A press
    that starts nothing says why beside the buttons; pressed while a run trains, the note's button stops the run
    and starts that lesson."""
    les = page.lessons
    notes = [les.note, les.restart]
    stream = dict(inputs_kwargs={"epochs": page.sidebar.settings["epochs"]}, outputs=page.run.outputs,
                  concurrency_limit=None, show_progress="hidden", postprocess=False)
    streamed = dict(fn=room.on_lesson_streamed, outputs=notes, api_visibility="private", concurrency_limit=None,
                    show_progress="hidden")
    for button, key in les.buttons:
        button.click(lambda: ("", gr.update(visible=False)), None, notes, queue=False, show_progress="hidden",
                     api_visibility="private").then(
            room.lesson_handler(key), api_name=f"lesson_{key}", validator=values.lesson_epochs,
            **stream).then(**streamed)
    les.restart.click(train.on_stop, outputs=notes, queue=False, api_visibility="private", show_progress="hidden",
                      inputs_kwargs={"pressed_at": page.sidebar.clock}, js="() => Date.now()").then(
        room.on_pressed_lesson, api_visibility="private", **stream).then(**streamed)


def compare_events(page: layout.Page, compare: Compare) -> None:
    """Compare runs: the list of runs, filled when it opens and every 2 s while open; a tick shows or hides a
    run on the charts."""
    r = page.run
    quiet = dict(api_visibility="private", concurrency_limit=None, show_progress="hidden")
    refresh = dict(fn=compare.on_refresh, outputs=r.shown, **quiet)
    r.compare.expand(lambda: gr.Timer(active=True), None, r.compare_timer, **quiet).then(**refresh)
    r.compare.collapse(lambda: gr.Timer(active=False), None, r.compare_timer, **quiet)
    r.compare_timer.tick(**refresh)
    r.shown.input(compare.on_pick, r.shown, r.outputs, postprocess=False, **quiet)


def write_events(page: layout.Page, write: Writing) -> None:
    """Write with the current model (``/generate``, streaming the text as it grows)."""
    w = page.write
    # preprocess=False: the values as they came, for demo.rules's one rule (a number box would round 0.5 to 0)
    w.write.click(write.on_write, w.inputs, [w.written, w.note], api_name="generate", preprocess=False,
                  validator=write.validate_write, concurrency_limit=None, show_progress="minimal")


def inside_events(page: layout.Page, look: Inside) -> None:
    """Inside the model: next-character bars (typing, the temperature, a click on a bar), hidden units, and
    the gradients through time, which follow the run while their tab is shown. Its API endpoints have no
    component of the page: ``gr.api`` reads their parameters and results from the functions' type hints."""
    n = page.inside
    quiet = dict(api_visibility="private", concurrency_limit=None, show_progress="hidden")
    bars_in, bars_out = [n.n_prefix, n.n_temperature], [n.n_bars, n.n_note]
    # typing: the bars' submit, once the typing pauses (layout.NEXT_JS); Enter at once
    for typed in (n.n_bars.submit, n.n_prefix.submit):
        typed(look.on_next, bars_in, bars_out, trigger_mode="always_last", **quiet)
    n.n_temperature.change(look.on_next, bars_in, bars_out, trigger_mode="always_last", **quiet)
    n.n_bars.click(look.on_pick, bars_in, [n.n_prefix, *bars_out], **quiet)
    # while the panel is open the bars follow the model (the next epoch, or the first model there is)
    for shown in (n.n_tab.select, n.box.expand):
        shown(lambda: gr.Timer(active=True), None, n.n_timer, **quiet).then(look.on_next, bars_in, bars_out, **quiet)
    for hidden in (n.h_tab.select, n.g_tab.select, n.box.collapse):
        hidden(lambda: gr.Timer(active=False), None, n.n_timer, **quiet)
    n.n_timer.tick(look.on_tick, [*bars_in, n.n_note], bars_out, **quiet)
    # their charts are render.chart's payloads, as Gradio sends them
    n.h_show.click(look.on_hidden, [n.h_text, n.h_unit, n.h_which], [n.h_text, n.h_plot, n.h_unit_text, n.h_note],
                   postprocess=False, **quiet)
    gradients = dict(fn=look.on_gradients, outputs=[n.g_plot, n.g_note], postprocess=False, **quiet)
    n.g_tab.select(lambda: gr.Timer(active=True), None, n.g_timer, **quiet).then(**gradients)
    for other in (n.n_tab, n.h_tab):
        other.select(lambda: gr.Timer(active=False), None, n.g_timer, **quiet)
    n.box.collapse(lambda: gr.Timer(active=False), None, n.g_timer, **quiet)
    n.g_timer.tick(**gradients)
    n.g_refresh.click(**gradients)
    gr.api(look.next_chars, api_name="next_chars", concurrency_limit=None)
    gr.api(look.hidden_units, api_name="hidden_units", concurrency_limit=None)
    gr.api(look.gradients, api_name="gradients_through_time", concurrency_limit=None)


def checkpoint_events(page: layout.Page, files: Checkpoints) -> None:
    """Save the current model (``/save_checkpoint``) and upload one (``/load_checkpoint``: it fills the form)."""
    ck = page.checkpoints
    ck.save.click(files.on_save, None, [ck.saved_file, ck.save_note], api_name="save_checkpoint",
                  concurrency_limit=4, show_progress="hidden")
    ck.upload.upload(files.on_upload_checkpoint, None, [ck.upload_note, *page.sidebar.settings.values()],
                     api_name="load_checkpoint", inputs_kwargs={"file": ck.upload}, concurrency_limit=4,
                     show_progress="hidden").then(
        files.on_loaded_prefixes, [page.write.prefix, page.inside.n_prefix],
        [page.write.prefix, page.inside.n_prefix, page.write.note], api_visibility="private",
        show_progress="hidden")


def gpu_events(page: layout.Page) -> None:
    """The GPU trial (``/gpu_trial``) on the current settings; one at a time."""
    page.gpu.run.click(gpu.handler(), inputs_kwargs=page.sidebar.settings, outputs=page.gpu.note,
                       api_name="gpu_trial", concurrency_limit=1, preprocess=False)  # the form's rules, as /train


def page_events(demo: gr.Blocks, page: layout.Page, room: Classroom, exp: Experiments, lab: Lab) -> None:
    """A page opens (its session, its link, then following what trains), keeps its session alive, and closes;
    and the server's ``/stats``."""
    opened = list(dict.fromkeys([page.key, page.sidebar.box, page.banner, page.sidebar.note, page.lessons.note,
                                 *page.teacher_only, *page.sidebar.settings.values(),
                                 *class_views.board_parts(page),  # a class experiment's views
                                 *(c for c, _, _ in page.texts)]))  # ?lang=
    # the window's size comes with it (demo.screens: a phone folds the sidebar, a projector's charts fit)
    loaded = demo.load(room.load_handler(page), [page.key, page.screen], opened, api_visibility="private",
                       concurrency_limit=None, show_progress="hidden", js=f"(key) => [key, {screens.SIZE}]")
    # the sidebar shown once folded or not as the window's size says (after its 0.3 s slide: demo.styles)
    loaded.then(None, js="() => { setTimeout(() => document.documentElement.classList.add('charrnn-sized'), 400); }")
    loaded.then(exp.on_board, None, page.board.outputs, api_visibility="private", concurrency_limit=None,
                show_progress="hidden", postprocess=False)  # the class's experiment, beside what follows
    loaded.then(
        room.on_follow, None, page.run.outputs, api_visibility="private", concurrency_limit=None,
        show_progress="hidden", postprocess=False).then(
        room.on_followed, None, page.banner, api_visibility="private", concurrency_limit=None,
        show_progress="hidden")
    demo.load(None, js="() => { if (new URLSearchParams(location.search).get('mode') === 'present') "
                       "document.body.classList.add('present'); }")

    def on_heartbeat(request: gr.Request) -> None:
        lab.session(request.session_hash, heartbeat=True)

    def on_close(request: gr.Request) -> None:
        lab.detach(request.session_hash)
        gradio_costs.forget_page(demo, request.session_hash)

    def stats() -> dict[str, Any]:
        """What the server is doing: sessions, runs, threads, time spent training (no one's data)."""
        return {**lab.stats(), "renders": renders.Renders.total_renders,
                "render_seconds": round(renders.Renders.total_seconds, 3), **heap.PAUSES.stats()}

    gr.Timer(5.0).tick(on_heartbeat, None, None, api_visibility="private", concurrency_limit=None,
                       show_progress="hidden")
    gr.api(stats, api_name="stats", queue=False)
    demo.unload(on_close)


def import_optimizer() -> None:
    """Make one optimizer, which imports what every run's first optimizer imports (torch._dynamo: hundreds of
    modules). ``build_app`` calls it before the page serves, since CPython 3.11 can fail a compile() made in
    another thread meanwhile ("AST constructor recursion depth mismatch"), which lost a Train pressed in the
    server's first seconds."""
    torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=1.0)


def _prewarm(freeze_heap: bool = False) -> None:
    """Before anyone presses Train, so that the first chart point comes quickly: read the default corpus (in the
    background: it may have to be downloaded).

    ``freeze_heap``, in the server's own process: then freeze what start-up made (``heap.freeze``: the
    garbage collector's full pauses get short). Figures: docs/performance.md.
    """
    try:
        if not is_local("jaychou"):  # fetched as a Train press would fetch it: one download, its progress shown
            FETCHES.start("jaychou").done.wait()
        cached_corpus("jaychou", TrainConfig().max_chars)
    except (CorpusError, OSError):
        pass  # reported, with what to do, when a run asks for it
    if freeze_heap:
        heap.freeze()


def launch(demo: gr.Blocks, **kwargs: Any):
    """Serve on $GRADIO_SERVER_NAME:$GRADIO_SERVER_PORT (Gradio's defaults: 127.0.0.1:7860).

    Nothing of the project's folders is served (no ``allowed_paths``): a session's files reach it only
    through its own downloads, and every session's files are deleted when the server stops.
    """
    atexit.register(demo.lab.shutdown)
    demo.queue(max_size=256)
    gradio_costs.quiet_queue(demo._queue)  # its wait for work: woken by work, not every millisecond
    gradio_costs.block_absent_imports()  # no search of sys.path for matplotlib around every event's call
    kwargs.setdefault("max_threads", MAX_STREAMS)
    return demo.launch(max_file_size=MAX_UPLOAD, css=styles.CSS, head=styles.FOLD_FIRST, theme=gr.themes.Soft(),
                       **kwargs)


def main() -> None:
    """Serve the page until interrupted: ``python demo/app.py`` or ``python -m demo``."""
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    launch(build_app(freeze_heap=True))


if __name__ == "__main__":
    main()
