"""charrnn live training lab: ``python demo/app.py`` serves a Gradio page on 127.0.0.1:7860.

The page trains the chapter's character-level RNN while you watch: perplexity and gradient-norm
charts grow live, lyric samples stream in, every run of the session stays on the charts for
comparison, and the model can write at any moment. All training lives in ``charrnn``; this file
builds the page, turns its inputs into a TrainConfig and renders what ``charrnn.lab`` reports.
"""
from __future__ import annotations

import asyncio
import dataclasses
import os
import re
import sys
import threading
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run as a script from anywhere

import gradio as gr  # noqa: E402
import torch  # noqa: E402

from charrnn import generate as gen  # noqa: E402
from charrnn.batches import check_length  # noqa: E402
from charrnn.checkpoint import CHECKPOINT_DIR, CheckpointError, load_checkpoint  # noqa: E402
from charrnn.config import PRESETS, ConfigError, TrainConfig, field_help  # noqa: E402
from charrnn.corpus import CorpusError, cached_corpus, from_file  # noqa: E402
from charrnn.lab import Lab, Session, cpu_cores, one_thread  # noqa: E402
from charrnn.train import Trainer, pick_device  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
import render  # noqa: E402

MAX_UPLOAD = "64mb"                   # launch(max_file_size): no upload above this reaches the app
MAX_CHECKPOINT_BYTES = 64 * 1024 * 1024
RENDER_EVERY = 0.5                    # seconds between chart updates while training (2 per second at most)
# A shared Space must stay usable: the app allows less than the library does.
APP_LIMITS = {"epochs": 5000, "num_hiddens": 1024, "batch_size": 512, "num_steps": 200, "pred_len": 500}

CORPORA = [("周杰伦歌词 · Jay Chou lyrics", "jaychou"), ("时间机器 · The Time Machine", "timemachine"),
           ("离线语料 · offline (Python docstrings)", "offline"), ("上传 .txt · upload a .txt", "upload")]
PRESET_BUTTONS = [("① 从零开始 · 随机采样  scratch · random", "scratch-random"),
                  ("② 从零开始 · 相邻采样  scratch · consecutive", "scratch-consecutive"),
                  ("③ nn.RNN · Adam  concise", "concise")]
SETTINGS = ("corpus", "corpus_file", "max_chars", "model", "sampling", "optimizer", "lr", "clip", "theta", "epochs",
            "num_hiddens", "batch_size", "num_steps", "seed", "prefixes", "pred_len", "pred_period", "decoding",
            "temperature", "top_k", "resume")

CSS = """
.sample {font-size: 1.3rem; line-height: 1.7; margin: .2rem 0 .6rem; font-family: 'Noto Sans CJK SC', sans-serif;}
.sample .prefix {color: #d62728; font-weight: 700; margin-right: .15rem;}
.sample .epoch {color: #999; font-size: .8rem; margin-left: .6rem;}
.sample-empty {color: #888; font-style: italic;}
#status {font-size: 1.05rem;}
#history textarea, #written textarea {font-size: 1.05rem; line-height: 1.6;}
"""


# ---------------------------------------------------------------- inputs -> config
def parse_prefixes(text: str) -> list[str]:
    """Prefixes separated by commas (, ，、) or new lines; spaces inside a prefix are kept."""
    return [p.strip() for p in re.split(r"[,，、\n]", text or "") if p.strip()]


def _int_or(value: Any) -> Any:
    return int(value) if isinstance(value, float) and value.is_integer() else value


def settings_to_config(corpus, corpus_file, max_chars, model, sampling, optimizer, lr, clip, theta, epochs,
                       num_hiddens, batch_size, num_steps, seed, prefixes, pred_len, pred_period, decoding,
                       temperature, top_k) -> tuple[TrainConfig, dict[str, str]]:
    """A TrainConfig from the page's values, and every problem keyed by the setting it belongs to."""
    values = dict(
        corpus=corpus_file if corpus == "upload" and corpus_file else corpus,
        max_chars=None if max_chars in (None, 0) else _int_or(max_chars), model=model, sampling=sampling,
        optimizer=optimizer, lr=lr, clip_theta=theta if clip else None, epochs=_int_or(epochs),
        num_hiddens=_int_or(num_hiddens), batch_size=_int_or(batch_size), num_steps=_int_or(num_steps),
        seed=_int_or(seed), prefixes=parse_prefixes(prefixes), pred_len=_int_or(pred_len),
        pred_period=_int_or(pred_period), temperature=float(temperature or 0) if decoding == "sample" else 0.0,
        top_k=None if decoding != "sample" or not top_k else _int_or(top_k))
    config = TrainConfig.unchecked(**values)
    problems = {_SETTING_OF.get(k, k): v for k, v in config.problems().items()}
    for name, cap in APP_LIMITS.items():
        value = getattr(config, name)
        if isinstance(value, (int, float)) and value > cap:
            problems[name] = f"{name}={value:g} is not allowed on this page: at most {cap:,}"
    if corpus == "upload" and not corpus_file:
        problems["corpus_file"] = "choose a UTF-8 .txt file to upload, or pick another corpus"
    return config, problems


_SETTING_OF = {"clip_theta": "theta"}  # config fields whose setting on the page has another name


def load_training_corpus(config: TrainConfig, uploaded: bool):
    """The corpus of a config (named corpora are cached); CorpusError says what is wrong."""
    if uploaded:
        return from_file(config.corpus, max_chars=config.max_chars)
    return cached_corpus(config.corpus, config.max_chars)


def check_settings(*values: Any, session: Session | None = None) -> tuple[TrainConfig | None, Any, dict[str, str]]:
    """Validate everything a run needs before it starts: config, corpus, its length, the prefixes."""
    one_thread()  # torch work outside a run uses one thread (see charrnn.lab.one_thread)
    named = dict(zip(SETTINGS, values))
    resume = named.pop("resume")
    config, problems = settings_to_config(**named)
    if problems:
        return None, None, problems
    loaded = session.loaded if session is not None else None
    resume = resume and session is not None  # without a session (the validator), resume is checked later
    if resume and loaded is None:
        return None, None, {"resume": "upload a checkpoint first, or untick resume"}
    try:
        corpus = load_training_corpus(config, named["corpus"] == "upload")
        vocab = loaded.vocab if resume and loaded is not None else corpus.vocab
        if resume and vocab.unknown(corpus.text):
            raise CorpusError(f"the text has characters the checkpoint's model has never seen: "
                              f"{' '.join(map(repr, vocab.unknown(corpus.text)[:10]))}")
        check_length(len(corpus), config.batch_size, config.num_steps, config.sampling)
    except CorpusError as e:
        return None, None, {"corpus_file" if named["corpus"] == "upload" else "corpus": str(e)}
    unknown = vocab.unknown("".join(config.prefixes))
    if unknown:
        return None, None, {"prefixes": f"not in the corpus's vocabulary: {' '.join(map(repr, unknown[:10]))}; "
                                        "use characters that occur in the training text"}
    return config, corpus, {}


# ---------------------------------------------------------------- the page
def _prewarm() -> None:
    """Read the default corpus before anyone presses Train, so the first chart point comes quickly."""
    try:
        cached_corpus("jaychou", TrainConfig().max_chars)
    except (CorpusError, OSError):
        pass  # reported, with what to do, when a run asks for it


def build_app(lab: Lab | None = None) -> gr.Blocks:
    lab = lab or Lab()
    lab.start_reaper()
    threading.Thread(target=_prewarm, name="charrnn-prewarm", daemon=True).start()
    device = pick_device("auto")
    device_text = (f"GPU · {torch.cuda.get_device_name(0)}" if device.type == "cuda"
                   else f"CPU · {cpu_cores()} cores")

    def render_session(session: Session | None, focus=None) -> tuple:
        views = session.views() if session is not None else []
        view = focus if focus is not None else (views[-1] if views else None)
        busy, limit = lab.slots.busy, lab.slots.limit
        return (render.status_line(view, busy, limit), render.perplexity_figure(views),
                render.grad_norm_figure(views), render.latest_samples(view), render.sample_history(view),
                render.progress(view, busy, limit))

    # -- handlers
    def validate_train(*values: Any) -> list:
        """Every problem shows next to its setting; then no run starts."""
        problems = check_settings(*values)[2]
        return [gr.validate(name not in problems, problems.get(name, "")) for name in SETTINGS]

    async def train(corpus, corpus_file, max_chars, model, sampling, optimizer, lr, clip, theta, epochs, num_hiddens,
                    batch_size, num_steps, seed, prefixes, pred_len, pred_period, decoding, temperature, top_k,
                    resume, request: gr.Request):
        """Start a run in this session and stream its progress until it ends."""
        session = lab.session(request.session_hash)
        values = (corpus, corpus_file, max_chars, model, sampling, optimizer, lr, clip, theta, epochs, num_hiddens,
                  batch_size, num_steps, seed, prefixes, pred_len, pred_period, decoding, temperature, top_k, resume)
        config, corpus_obj, problems = await asyncio.to_thread(check_settings, *values, session=session)
        if problems:
            raise gr.Error(" · ".join(f"{k}: {v}" for k, v in problems.items()), title="Not started 未开始")

        def make_trainer() -> Trainer:
            one_thread()
            if not resume:
                return Trainer(config, corpus_obj)
            ck = session.loaded  # resume: the form's settings, "epochs" more than the checkpoint has
            keep = ("model", "num_hiddens", "optimizer", "seed")
            changes = {k: v for k, v in dataclasses.asdict(config).items() if k not in keep}
            return Trainer.from_checkpoint(ck, corpus_obj, **{**changes, "epochs": ck.epoch + config.epochs})

        try:
            run = session.start(await asyncio.to_thread(make_trainer))
        except (ConfigError, CorpusError, RuntimeError) as e:
            raise gr.Error(str(e), title="Not started 未开始")
        shown, last = -1, 0.0
        try:
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
        finally:
            if run.alive:  # the page was closed or the client cancelled: nobody watches, so stop
                run.stop()

    def stop(request: gr.Request) -> str:
        """Stop this session's run (within one minibatch); the model trained so far stays usable."""
        session = lab.peek(request.session_hash)
        run = session.stop(timeout=1.0) if session is not None else None
        if run is None:
            return "Nothing is training · 没有正在进行的训练"
        return f"Stopped run #{run.number} after {run.trainer.epoch} epochs · 已停止"

    def validate_generate(prefix, length, decoding, temperature, top_k, seed) -> list:
        ok = bool(prefix) and len(prefix) <= gen.MAX_PREFIX
        return [gr.validate(ok, "" if ok else f"type 1 to {gen.MAX_PREFIX} characters"),
                gr.validate(length is not None and 1 <= length <= 2000, "from 1 to 2000 characters"),
                gr.validate(True, ""), gr.validate(True, ""),
                gr.validate(top_k is None or top_k >= 0, "0 (all) or more"), gr.validate(True, "")]

    def generate(prefix, length, decoding, temperature, top_k, seed, request: gr.Request):
        """Write with the current model (mid-training too), streaming the text as it grows."""
        session = lab.session(request.session_hash)
        current = session.model()
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
        text, last = prefix, 0.0
        note = f"written by {source}"
        for ch in chars:
            text += ch
            if time.monotonic() - last > 0.03:
                last = time.monotonic()
                yield text, note
        yield text, note

    def download(request: gr.Request):
        session = lab.session(request.session_hash)
        one_thread()
        trainer = session.latest_trainer()
        if trainer is None:
            raise gr.Error("No model to save yet: train one first · 还没有模型")
        return trainer.save(), f"saved epoch {trainer.epoch} of run {trainer.run_id}"

    def upload_checkpoint(path, request: gr.Request):
        session = lab.session(request.session_hash)
        one_thread()
        try:
            ck = load_checkpoint(path, max_bytes=MAX_CHECKPOINT_BYTES)
        except CheckpointError as e:
            return [f"✗ {e}"] + [gr.skip()] * len(SETTINGS)
        session.loaded = ck
        c = ck.config
        named = c.corpus in dict(CORPORA).values()
        updates = dict(corpus="jaychou" if not named else c.corpus, corpus_file=gr.skip(),
                       max_chars=c.max_chars or 0, model=c.model, sampling=c.sampling, optimizer=c.optimizer, lr=c.lr,
                       clip=c.clip_theta is not None, theta=c.clip_theta or 0.01, epochs=c.epochs,
                       num_hiddens=c.num_hiddens, batch_size=c.batch_size, num_steps=c.num_steps, seed=c.seed,
                       prefixes=", ".join(c.prefixes), pred_len=c.pred_len, pred_period=c.pred_period,
                       decoding="sample" if c.temperature > 0 else "greedy", temperature=c.temperature or 1.0,
                       top_k=c.top_k or 0, resume=True)
        msg = (f"✓ loaded {c.label()} · epoch {ck.epoch} · vocabulary {len(ck.vocab)} · corpus {c.corpus}. "
               "Write with it below, or press Train to resume it (epochs = how many more).")
        return [msg] + [updates[k] for k in SETTINGS]

    def load_preset(name: str) -> list:
        c = TrainConfig(**PRESETS[name])
        return [c.model, c.sampling, c.optimizer, c.lr, c.clip_theta is not None, c.clip_theta, c.epochs,
                c.num_hiddens, c.batch_size, c.num_steps, c.max_chars, "jaychou", ", ".join(c.prefixes),
                c.pred_len, c.pred_period, "greedy", False]

    def clear(request: gr.Request) -> tuple:
        session = lab.session(request.session_hash)
        session.clear()
        return render_session(session)

    def heartbeat(request: gr.Request) -> None:
        lab.session(request.session_hash, heartbeat=True)

    def close(request: gr.Request) -> None:
        lab.close(request.session_hash)

    # -- layout
    chapter = TrainConfig()
    with gr.Blocks(title="charrnn · RNN lab") as demo:
        gr.Markdown("# 循环神经网络实验室 · RNN live lab\n"
                    "Train the character-level RNN of *Dive into Deep Learning* (RNN chapter) on Jay Chou's lyrics "
                    "and watch it learn: perplexity falls, gradients get clipped, the lyrics get better. "
                    f"Device 设备: **{device_text}**")
        with gr.Row(equal_height=False):
            with gr.Column(scale=2, min_width=330):
                gr.Markdown("**The chapter's setups · 书中的三种设置**")
                preset_btns = [gr.Button(text, size="sm", variant="secondary") for text, _ in PRESET_BUTTONS]
                with gr.Row():
                    train_btn = gr.Button("▶ 训练 · Train", variant="primary")
                    stop_btn = gr.Button("■ 停止 · Stop", variant="stop")
                stop_msg = gr.Markdown("")
                with gr.Accordion("设置 · Settings", open=True):
                    corpus = gr.Dropdown(CORPORA, value="jaychou", label="语料 · corpus",
                                         info="the text to learn from; upload any UTF-8 .txt up to 10 MiB")
                    corpus_file = gr.File(label="上传文本 · upload a .txt", file_types=[".txt"], type="filepath",
                                          visible=False)
                    max_chars = gr.Number(chapter.max_chars, precision=0, label="字符数 · characters used",
                                          info="first N characters (the chapter: 10,000); 0 = the whole text")
                    with gr.Row():
                        model = gr.Radio([("从零开始 · from scratch", "scratch"), ("nn.RNN", "concise")],
                                         value=chapter.model, label="模型 · model", info=field_help("model"))
                        sampling = gr.Radio([("随机 · random", "random"), ("相邻 · consecutive", "consecutive")],
                                            value=chapter.sampling, label="采样 · sampling",
                                            info="random resets the state per minibatch; consecutive carries it")
                    optimizer = gr.Radio([("SGD", "sgd"), ("Adam", "adam")], value=chapter.optimizer,
                                         label="优化器 · optimizer", info="the chapter: SGD from scratch, Adam for nn.RNN")
                    with gr.Row():
                        lr = gr.Number(chapter.lr, label="学习率 · learning rate", info="chapter: 100 (SGD), 0.001 (Adam)")
                        epochs = gr.Number(chapter.epochs, precision=0, label="迭代周期 · epochs",
                                           info="passes over the text (when resuming: how many more)")
                    with gr.Row():
                        clip = gr.Checkbox(True, label="梯度裁剪 · clip gradients",
                                           info="untick to watch what clipping prevents")
                        theta = gr.Number(chapter.clip_theta, label="裁剪阈值 θ · clipping threshold",
                                          info="rescale g when ‖g‖ > θ (chapter: 0.01)")
                    with gr.Row():
                        num_hiddens = gr.Number(chapter.num_hiddens, precision=0, label="隐藏单元 · hidden units",
                                                info="size h of the state")
                        batch_size = gr.Number(chapter.batch_size, precision=0, label="批量大小 · batch size",
                                               info="windows per minibatch")
                    with gr.Row():
                        num_steps = gr.Number(chapter.num_steps, precision=0, label="时间步数 · time steps",
                                              info="characters per window")
                        seed = gr.Number(chapter.seed, precision=0, label="随机种子 · seed",
                                         info="same seed, same run")
                    prefixes = gr.Textbox(", ".join(chapter.prefixes), label="前缀 · prefixes",
                                          info="samples start from these; separate with commas")
                    with gr.Row():
                        pred_len = gr.Number(chapter.pred_len, precision=0, label="样本长度 · sample length",
                                             info="characters written after each prefix")
                        pred_period = gr.Number(chapter.pred_period, precision=0, label="采样间隔 · sample every",
                                                info="epochs between samples")
                    decoding = gr.Radio([("贪心 · greedy (chapter)", "greedy"), ("采样 · sample", "sample")],
                                        value="greedy", label="解码 · decoding of the samples",
                                        info="greedy argmax loops; sampling with a temperature does not")
                    with gr.Row():
                        temperature = gr.Slider(0.05, 2.0, value=1.0, step=0.05, label="温度 · temperature",
                                                info="below 1: safer; above 1: wilder")
                        top_k = gr.Number(0, precision=0, label="top-k", info="sample among the k likeliest; 0 = all")
                    resume = gr.Checkbox(False, label="继续训练上传的检查点 · resume the uploaded checkpoint",
                                         info="upload one in Checkpoints below")
            with gr.Column(scale=5):
                status = gr.Markdown(render.status_line(None, 0, lab.slots.limit), elem_id="status")
                with gr.Row():
                    ppl_plot = gr.Plot(render.perplexity_figure([]), label="perplexity", show_label=False)
                    grad_plot = gr.Plot(render.grad_norm_figure([]), label="gradient norm", show_label=False)
                gr.Markdown("### 最新歌词 · Newest lyrics")
                latest = gr.HTML(render.latest_samples(None))
                with gr.Accordion("历史 · Samples by epoch (the chapter's printout)", open=False):
                    history = gr.Textbox(lines=10, max_lines=30, show_label=False, elem_id="history",
                                         buttons=["copy"])
                clear_btn = gr.Button("清除历史 · Clear history", size="sm")
                progress = gr.JSON(visible=False)
                with gr.Accordion("用模型写作 · Write with the model", open=True):
                    with gr.Row():
                        w_prefix = gr.Textbox("分开", label="前缀 · prefix", scale=2)
                        w_length = gr.Number(100, precision=0, label="长度 · length", scale=1)
                        w_decoding = gr.Radio([("贪心 · greedy", "greedy"), ("采样 · sample", "sample")],
                                              value="sample", label="解码 · decoding", scale=2)
                    with gr.Row():
                        w_temperature = gr.Slider(0.05, 2.0, value=0.8, step=0.05, label="温度 · temperature")
                        w_top_k = gr.Number(0, precision=0, label="top-k (0 = all)")
                        w_seed = gr.Number(0, precision=0, label="种子 · seed (0 = random)")
                    write_btn = gr.Button("写 · Write", variant="primary")
                    written = gr.Textbox(label="模型写的 · written", lines=4, elem_id="written", interactive=False)
                    write_note = gr.Markdown("")
                with gr.Accordion("检查点 · Checkpoints", open=False):
                    with gr.Row():
                        save_btn = gr.Button("保存当前模型 · Save the current model")
                        saved_file = gr.File(label="下载 · download", interactive=False)
                    save_note = gr.Markdown("")
                    ck_upload = gr.File(label="上传检查点 · upload a .safetensors checkpoint (max 64 MB)",
                                        file_types=[".safetensors"], type="filepath")
                    ck_note = gr.Markdown("")

        settings = [corpus, corpus_file, max_chars, model, sampling, optimizer, lr, clip, theta, epochs, num_hiddens,
                    batch_size, num_steps, seed, prefixes, pred_len, pred_period, decoding, temperature, top_k, resume]
        outputs = [status, ppl_plot, grad_plot, latest, history, progress]

        corpus.change(lambda c: gr.update(visible=c == "upload"), corpus, corpus_file, api_visibility="private")
        for btn, (_, name) in zip(preset_btns, PRESET_BUTTONS):
            btn.click(lambda n=name: load_preset(n), None,
                      [model, sampling, optimizer, lr, clip, theta, epochs, num_hiddens, batch_size, num_steps,
                       max_chars, corpus, prefixes, pred_len, pred_period, decoding, resume],
                      api_visibility="private")
        train_btn.click(train, settings, outputs, api_name="train", validator=validate_train,
                        concurrency_limit=None, show_progress="hidden")
        stop_btn.click(stop, None, stop_msg, api_name="stop", concurrency_limit=None, queue=False)
        train_btn.click(lambda: "", None, stop_msg, api_visibility="private", queue=False)
        gen_inputs = [w_prefix, w_length, w_decoding, w_temperature, w_top_k, w_seed]
        write_btn.click(generate, gen_inputs, [written, write_note], api_name="generate", validator=validate_generate,
                        concurrency_limit=None, show_progress="minimal")
        clear_btn.click(clear, None, outputs, api_name="clear", concurrency_limit=None)
        save_btn.click(download, None, [saved_file, save_note], api_name="save_checkpoint", concurrency_limit=4)
        ck_upload.upload(upload_checkpoint, ck_upload, [ck_note] + settings, api_name="load_checkpoint",
                         concurrency_limit=4)
        gr.Timer(5.0).tick(heartbeat, None, None, api_visibility="private", concurrency_limit=None,
                           show_progress="hidden")
        demo.unload(close)
    demo.lab = lab  # for tests and the benchmark
    return demo


def launch(demo: gr.Blocks, **kwargs: Any):
    """Serve on $GRADIO_SERVER_NAME:$GRADIO_SERVER_PORT (Gradio's defaults: 127.0.0.1:7860)."""
    demo.queue(max_size=256)
    return demo.launch(max_file_size=MAX_UPLOAD, allowed_paths=[str(CHECKPOINT_DIR)], css=CSS,
                       theme=gr.themes.Soft(), **kwargs)


if __name__ == "__main__":
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    launch(build_app())
