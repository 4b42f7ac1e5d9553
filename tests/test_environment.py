"""charrnn.device: each kind of machine (local CPU or GPU, a CPU, GPU or ZeroGPU Space) picks its device truthfully.

Every environment is faked: the variables a Space sets, and torch.cuda as that machine's torch answers.
On ZeroGPU, ``torch.cuda.is_available()`` answers True in the main process while every real CUDA call raises
(``spaces`` patches torch so): here ``is_available`` says True and every other CUDA entry point raises
and records the touch, so any CUDA touch there fails the test even where an error would be caught.
"""
from __future__ import annotations

import os
import pickle
import threading

import pytest
import torch

from charrnn import ConfigError, EpochEnd, Finished, Trainer
from charrnn.device import Machine, available_cores, detect, in_gpu_call, machine, training_device
from charrnn.gpu_trial import gpu_trial
from charrnn.scheduler import Scheduler
from charrnn.threads import cpu_cores, tune_threads
from charrnn.train import pick_device

REAL_CUDA = torch.cuda.is_available()  # read before any test patches it
SPACE_VARS = ("SYSTEM", "SPACE_ID", "SPACE_HOST", "SPACE_AUTHOR_NAME", "SPACE_REPO_NAME", "CPU_CORES", "MEMORY",
              "ACCELERATOR", "SPACES_ZERO_GPU")
AFFINITY = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
SPACE = {"SYSTEM": "spaces", "SPACE_ID": "teacher/rnn-lab", "SPACE_HOST": "teacher-rnn-lab.hf.space",
         "SPACE_AUTHOR_NAME": "teacher", "SPACE_REPO_NAME": "rnn-lab", "MEMORY": "16"}


def cores_text(n: int) -> str:
    return f"{n} 核 · {n} core{'s' if n != 1 else ''}"


@pytest.fixture
def env(monkeypatch):
    """No Space variables at first (whatever the machine running the tests has); ``env(**vars)`` sets some."""
    for name in SPACE_VARS:
        monkeypatch.delenv(name, raising=False)

    def set_vars(**values: str) -> dict[str, str]:
        for k, v in values.items():
            monkeypatch.setenv(k, v)
        return dict(os.environ)
    return set_vars


@pytest.fixture
def no_cuda(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)


@pytest.fixture
def fake_gpu(monkeypatch):
    """torch sees a GPU (named here); it is real only where REAL_CUDA."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    if not REAL_CUDA:
        monkeypatch.setattr(torch.cuda, "get_device_name", lambda *a, **k: "NVIDIA H100 80GB HBM3")
    return torch.cuda.get_device_name(0)


@pytest.fixture
def zerogpu_torch(monkeypatch):
    """torch as ZeroGPU's main process has it: CUDA "is available", and every real use of it raises."""
    touched: list[str] = []

    def refuse(name):
        def call(*args, **kwargs):
            touched.append(name)
            raise RuntimeError(f"CUDA must not be initialized in the main process on ZeroGPU ({name})")
        return call
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "is_initialized", lambda: False)  # not inside a @spaces.GPU call
    for name in ("get_device_name", "get_device_properties", "get_device_capability", "device_count",
                 "current_device", "init", "_lazy_init", "synchronize", "mem_get_info"):
        monkeypatch.setattr(torch.cuda, name, refuse(f"torch.cuda.{name}"))
    monkeypatch.setattr(torch._C, "_cuda_init", refuse("torch._C._cuda_init"), raising=False)
    return touched


@pytest.fixture
def zerogpu(env, zerogpu_torch):
    env(**SPACE, CPU_CORES="2", ACCELERATOR="zero-a10g", SPACES_ZERO_GPU="true")
    return zerogpu_torch


def train_in_thread(trainer: Trainer) -> list:
    """Run ``trainer`` in a background thread, as the app's runs are, and return its events."""
    events: list = []
    t = threading.Thread(target=lambda: events.extend(trainer.run()))
    t.start()
    t.join(60)
    assert not t.is_alive()
    return events


def assert_trains_on_cpu(tiny_config, tiny_corpus) -> Trainer:
    trainer = Trainer(tiny_config(device="auto", epochs=4), tiny_corpus)
    assert trainer.device == torch.device("cpu")
    events = train_in_thread(trainer)
    epochs = [e for e in events if isinstance(e, EpochEnd)]
    assert [e.epoch for e in epochs] == [1, 2, 3, 4] and isinstance(events[-1], Finished)
    assert epochs[-1].perplexity < epochs[0].perplexity  # it learnt something
    assert {p.device.type for p in trainer.model.parameters()} == {"cpu"} and trainer.data.device.type == "cpu"
    return trainer


# ---------------------------------------------------------------- local machines
def test_local_cpu(env, no_cuda, tiny_config, tiny_corpus):
    m = detect(env())
    assert m == Machine(kind="local", device=torch.device("cpu"), cores=AFFINITY, space_id=None, space_host=None,
                        accelerator=None, gpu_name=None)
    assert m.header() == f"CPU · {cores_text(AFFINITY)}" and m.url is None and not m.on_space
    assert pick_device("auto") == torch.device("cpu") and pick_device("cpu") == torch.device("cpu")
    with pytest.raises(ConfigError, match="this machine has no CUDA GPU; use auto or cpu"):
        pick_device("cuda")
    assert_trains_on_cpu(tiny_config, tiny_corpus)


def test_local_gpu_is_chosen_and_trained_on(env, fake_gpu, tiny_config, tiny_corpus):
    m = detect(env())
    assert (m.kind, m.device, m.gpu_name, m.space_id) == ("local", torch.device("cuda"), fake_gpu, None)
    assert m.header() == f"GPU · {fake_gpu} · {cores_text(AFFINITY)}"
    assert pick_device("auto") == torch.device("cuda") == pick_device("cuda")
    if not REAL_CUDA:
        pytest.skip("detect() chose cuda; training on it needs a real CUDA GPU, and this machine has none")
    trainer = Trainer(tiny_config(device="auto", epochs=4), tiny_corpus)
    events = list(trainer.run())
    assert isinstance(events[-1], Finished) and trainer.history[-1].perplexity < trainer.history[0].perplexity
    assert {p.device.type for p in trainer.model.parameters()} == {"cuda"} and trainer.data.device.type == "cuda"


# ---------------------------------------------------------------- Spaces
def test_cpu_space(env, no_cuda, tiny_config, tiny_corpus):
    m = detect(env(**SPACE, CPU_CORES="2", ACCELERATOR="none"))
    assert m == Machine(kind="cpu-space", device=torch.device("cpu"), cores=2, space_id="teacher/rnn-lab",
                        space_host="teacher-rnn-lab.hf.space", accelerator=None, gpu_name=None)
    assert m.header() == "CPU · 2 核 · 2 cores · Hugging Face Space teacher/rnn-lab"
    assert m.url == "https://teacher-rnn-lab.hf.space/" and m.on_space
    assert pick_device("auto") == torch.device("cpu")
    assert_trains_on_cpu(tiny_config, tiny_corpus)


def test_gpu_space(env, fake_gpu):
    m = detect(env(**SPACE, CPU_CORES="4", ACCELERATOR="t4-small"))
    assert (m.kind, m.device, m.cores, m.accelerator, m.gpu_name) == (
        "gpu-space", torch.device("cuda"), 4, "t4-small", fake_gpu)
    assert m.header() == f"GPU · {fake_gpu} · 4 核 · 4 cores · Hugging Face Space teacher/rnn-lab"
    assert pick_device("auto") == torch.device("cuda")


def test_gpu_hardware_that_torch_cannot_use_trains_on_cpu_and_says_why(env, no_cuda):
    m = detect(env(**SPACE, CPU_CORES="4", ACCELERATOR="t4-small"))
    assert (m.kind, m.device) == ("cpu-space", torch.device("cpu"))
    assert m.header() == ("CPU · 4 核 · 4 cores · Hugging Face Space teacher/rnn-lab "
                          "· 硬件 t4-small，但 torch 找不到 CUDA"
                          " · hardware t4-small, but torch finds no CUDA")
    # a page in one language shows its side only
    assert m.header("en") == ("CPU · 4 cores · Hugging Face Space teacher/rnn-lab · hardware t4-small, but torch "
                              "finds no CUDA")
    assert m.header("zh") == "CPU · 4 核 · Hugging Face Space teacher/rnn-lab · 硬件 t4-small，但 torch 找不到 CUDA"


def test_a_space_is_known_by_system_or_space_id(env, no_cuda):
    assert detect(env(SYSTEM="spaces")).kind == "cpu-space"
    assert detect({"SPACE_ID": "a/b"}).kind == "cpu-space"
    assert detect({"SYSTEM": "local"}).kind == "local"
    assert detect({"SYSTEM": "spaces"}).header() == f"CPU · {cores_text(AFFINITY)} · Hugging Face Space"


# ---------------------------------------------------------------- ZeroGPU
def test_zerogpu_trains_on_cpu_in_a_thread_without_touching_cuda(zerogpu, tiny_config, tiny_corpus):
    assert torch.cuda.is_available()  # what ZeroGPU's patched torch says in the main process
    m = detect()
    assert m == Machine(kind="zerogpu-space", device=torch.device("cpu"), cores=2, space_id="teacher/rnn-lab",
                        space_host="teacher-rnn-lab.hf.space", accelerator="zero-a10g", gpu_name=None)
    assert m.header() == ("CPU · 2 核 · 2 cores · ZeroGPU Space teacher/rnn-lab · 这里在 CPU 上训练（GPU 只借给短时的 "
                          "@spaces.GPU 调用） · training runs on the CPU here (the GPU is lent only to short "
                          "@spaces.GPU calls)")
    assert pick_device("auto") == torch.device("cpu")
    assert_trains_on_cpu(tiny_config, tiny_corpus)
    assert zerogpu == []  # no CUDA entry point was called, not even one whose error was caught


def test_zerogpu_refuses_cuda_with_the_reason(zerogpu, tiny_config, tiny_corpus):
    for ask in (lambda: pick_device("cuda"), lambda: Trainer(tiny_config(device="cuda"), tiny_corpus)):
        with pytest.raises(ConfigError) as e:
            ask()
        assert "ZeroGPU" in str(e.value) and "only inside @spaces.GPU functions" in str(e.value)
        assert "on the CPU" in str(e.value)
    assert zerogpu == []


def test_inside_a_spaces_gpu_call_cuda_is_allowed(zerogpu, monkeypatch):
    """The @spaces.GPU worker process initialises CUDA before it runs the function (and its torch is
    unpatched): there, and only there, device='cuda' is honoured. ``auto`` stays on the CPU."""
    monkeypatch.setattr(torch.cuda, "is_initialized", lambda: True)
    assert in_gpu_call()
    assert training_device("cuda") == torch.device("cuda")
    assert training_device("auto") == torch.device("cpu")
    assert zerogpu == []


@pytest.mark.parametrize("value, zero", [("true", True), ("True", True), ("1", True), ("t", True),
                                         ("false", False), ("0", False), ("", False), ("no", False)])
def test_zerogpu_flag_values(env, no_cuda, value, zero):
    """The values the ``spaces`` package itself takes as on (it patches torch only for those)."""
    m = detect(env(**SPACE, SPACES_ZERO_GPU=value))
    assert (m.kind == "zerogpu-space") is zero


def test_zerogpu_is_decided_before_torch_is_asked(env, monkeypatch):
    """Not even ``is_available`` is asked on ZeroGPU: its answer there is a lie."""
    asked = []
    monkeypatch.setattr(torch.cuda, "is_available", lambda: asked.append(1) or True)
    env(SPACES_ZERO_GPU="true")
    assert detect().device == torch.device("cpu") and pick_device("auto") == torch.device("cpu")
    assert asked == []


# ---------------------------------------------------------------- cores: threads and jobs follow $CPU_CORES
def test_cpu_cores_on_a_space_sets_threads_and_workers(env, no_cuda):
    env(**SPACE, CPU_CORES="8")
    assert available_cores() == cpu_cores() == detect().cores == 8
    scheduler = Scheduler()  # the lab's: one training worker per core (it starts none until a run comes)
    assert scheduler.cores == scheduler.workers == 8

    def tune():
        return [(tune_threads(running), torch.get_num_threads()) for running in (1, 2, 3, 8)]
    out: list = []
    t = threading.Thread(target=lambda: out.append(tune()))  # torch's thread count is per thread
    t.start()
    t.join(30)
    assert out == [[(8, 8), (4, 4), (2, 2), (1, 1)]]


@pytest.mark.parametrize("value", ["", " ", "abc", "0", "-2", "2.5", "1e3"])
def test_a_bad_cpu_cores_falls_back_to_the_affinity_mask(env, no_cuda, value):
    env(**SPACE, CPU_CORES=value)
    assert available_cores() == cpu_cores() == detect().cores == AFFINITY == Scheduler().cores


def test_cpu_cores_is_only_read_on_a_space(env, no_cuda):
    env(CPU_CORES="8")  # some other tool's variable on a machine of one's own
    assert available_cores() == cpu_cores() == AFFINITY


def test_machine_is_detected_once_per_process():
    assert machine() is machine() and isinstance(machine(), Machine)
    assert machine.cache_info().currsize == 1


# ---------------------------------------------------------------- gpu_trial
def test_gpu_trial_without_a_gpu_says_so(env, no_cuda, tiny_config, tiny_text):
    with pytest.raises(ConfigError, match="gpu_trial needs a CUDA GPU and this machine has none"):
        gpu_trial(tiny_config(), tiny_text, 2)


def test_gpu_trial_on_zerogpu_outside_a_gpu_call_says_where_to_call_it(zerogpu, tiny_config, tiny_text):
    with pytest.raises(ConfigError, match=r"exists only inside a @spaces.GPU function: call gpu_trial from one"):
        gpu_trial(tiny_config(), tiny_text, 2)
    assert zerogpu == []


@pytest.mark.parametrize("epochs", [0, -1, 2.0, True, "3"])
def test_gpu_trial_refuses_bad_epochs(env, tiny_config, tiny_text, epochs):
    with pytest.raises(ConfigError, match="epochs"):
        gpu_trial(tiny_config(), tiny_text, epochs, device="cpu")


def test_gpu_trial_returns_plain_data(env, no_cuda, tiny_config, tiny_text):
    before = torch.get_num_threads()
    config = tiny_config(prefixes=["the "], pred_period=1)  # gpu_trial writes no samples whatever these say
    out = gpu_trial(config, tiny_text, 5, device="cpu")
    assert set(out) == {"device", "seconds_per_epoch", "perplexities", "cpu_seconds_per_epoch", "cpu_threads",
                        "status"}
    assert out["device"] == "cpu" and out["status"] == "finished" and out["cpu_threads"] == cpu_cores()
    assert len(out["perplexities"]) == 5 and all(type(p) is float for p in out["perplexities"])
    assert out["perplexities"][-1] < out["perplexities"][0]
    # the same run as a plain Trainer of that config: the trial changes nothing but the device and epochs
    reference = Trainer(config.replace(prefixes=[], epochs=5), config_corpus(tiny_text, config))
    list(reference.run())
    assert out["perplexities"] == pytest.approx([e.perplexity for e in reference.history], rel=1e-4)
    for key in ("seconds_per_epoch", "cpu_seconds_per_epoch"):
        assert type(out[key]) is float and 0 < out[key] < 10
    assert pickle.loads(pickle.dumps(out)) == out  # it crosses the @spaces.GPU process boundary
    assert torch.get_num_threads() == before  # the caller's thread count is given back


def config_corpus(text, config):
    from charrnn import from_text
    return from_text(text, name="tiny", max_chars=config.max_chars)


def test_gpu_trial_on_a_real_gpu(env, tiny_config, tiny_text):
    if not REAL_CUDA:
        pytest.skip("needs a real CUDA GPU, and this machine has none")
    out = gpu_trial(tiny_config(), tiny_text, 4)
    assert out["device"] == torch.cuda.get_device_name() and len(out["perplexities"]) == 4
    assert out["status"] == "finished" and out["seconds_per_epoch"] > 0 and out["cpu_seconds_per_epoch"] > 0



# ---------------------------------------------------------------- the page on a ZeroGPU Space
def test_the_page_on_zerogpu(env, zerogpu_torch, monkeypatch, tiny_text):
    """The app registers a @spaces.GPU handler (ZeroGPU refuses to start without one), says in its header that
    training runs on the CPU, and a run started from the page trains on the CPU, CUDA untouched."""
    import sys
    import types
    from pathlib import Path
    demo_dir = str(Path(__file__).resolve().parent.parent / "demo")
    monkeypatch.syspath_prepend(demo_dir)
    decorated = []
    fake_spaces = types.ModuleType("spaces")

    def GPU(duration=60):  # noqa: N802 (the spaces package's name)
        def wrap(fn):
            def call(*args, **kwargs):
                return fn(*args, **kwargs)
            call.zero_gpu_duration = duration
            decorated.append(call)
            return call
        return wrap
    fake_spaces.GPU = GPU
    fake_spaces.gradio_auto_wrap = lambda fn: fn  # Gradio hands every handler to spaces on a Space
    monkeypatch.setitem(sys.modules, "spaces", fake_spaces)
    env(**SPACE, CPU_CORES="2", SPACES_ZERO_GPU="true")
    machine.cache_clear()
    from demo import app
    from demo import gpu
    from charrnn.lab import Lab
    lab = Lab(max_runs=2)
    try:
        demo = app.build_app(lab)
        fns = [f.fn for f in demo.fns.values()]
        assert decorated and decorated[0] in fns, "no @spaces.GPU function is registered as an event handler"
        header = next(b.value for b in demo.blocks.values() if isinstance(getattr(b, "value", None), str)
                      and b.value.startswith("# 循环神经网络实验室"))
        assert "ZeroGPU Space teacher/rnn-lab" in header and "training runs on the CPU here" in header
        assert gpu.available()
        # outside a GPU call (no GPU here), the trial says where the GPU is, and nothing touched CUDA
        assert "@spaces.GPU" in decorated[0](corpus="offline", max_chars=3000, epochs=2, num_hiddens=16, prefixes="the")
        session = lab.session("page")
        from charrnn import TrainConfig, from_text
        run = session.start(Trainer(TrainConfig(corpus="tiny", max_chars=None, num_hiddens=16, batch_size=4,
                                                num_steps=8, lr=1.0, epochs=2, prefixes=[]),
                                    from_text(tiny_text, name="tiny")))
        assert run.wait(30) and run.view().status == "finished" and run.device == "cpu"
        assert zerogpu_torch == []
    finally:
        lab.shutdown()
        machine.cache_clear()
