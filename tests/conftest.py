"""Shared fixtures for the charrnn test suite.

The corpora are never copied into the repository: tests find them through $CHARRNN_DATA_DIR (CI sets it
to ``../shared/data`` relative to the repository root). When it is unset and ``<repo>/../shared/data``
exists, it defaults to that folder's absolute path; a relative value is made absolute here so that tests
that change directory or start subprocesses elsewhere still find the files.
"""
from __future__ import annotations

import contextlib
import functools
import http.server
import os
import random
import socket
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import pytest

REPO = Path(__file__).resolve().parent.parent

ENV = "CHARRNN_DATA_DIR"
JAYCHOU_ZIP = "jaychou_lyrics.txt.zip"
TIMEMACHINE_TXT = "timemachine.txt"


def _resolve_data_dir() -> None:
    value = os.environ.get(ENV)
    if not value:
        default = REPO.parent / "shared" / "data"
        if default.is_dir():
            os.environ[ENV] = str(default.resolve())
        return
    p = Path(value)
    if p.is_absolute():
        return
    for base in (Path.cwd(), REPO):
        if (base / p).is_dir():
            os.environ[ENV] = str((base / p).resolve())
            return


_resolve_data_dir()
# Gradio notices a closed client (and runs the page's unload: the session closes) at its next heartbeat, every 15 s
# by default: the tests' servers beat every second, so that tests that close a client wait a second, not fifteen.
os.environ.setdefault("GRADIO_HEARTBEAT_INTERVAL", "1")

import torch  # noqa: E402


def _requested_threads() -> int | None:
    """The torch thread count asked for explicitly: $CHARRNN_TEST_THREADS, else $OMP_NUM_THREADS, else None."""
    for name in ("CHARRNN_TEST_THREADS", "OMP_NUM_THREADS"):
        value = os.environ.get(name, "").strip()
        if value:
            first = value.split(",")[0]  # OpenMP also accepts a nested list such as "4,2"
            if not first.isdigit() or int(first) < 1:
                raise pytest.UsageError(f"${name}={value!r}: give a whole number of threads, 1 or more")
            return int(first)
    return None


# Threads. By default the suite runs torch on one thread: its models are tiny, one thread runs them
# fastest, and many times faster than two threads contending with other work on a 2-core machine.
# But summation order (and so float32 rounding) can depend on the thread count, and the suite must
# pass whatever it is: so an explicit $OMP_NUM_THREADS (or $CHARRNN_TEST_THREADS, which wins) is
# honoured: here, with set_num_threads (torch by itself caps $OMP_NUM_THREADS=4 at the cores: 2 on a
# 2-core machine), by the chapter runs (test_chapter_setups.py) and by the CLI subprocesses (their
# $OMP_NUM_THREADS). Without either, the chapter runs pick their own count for their large matrices
# (torch's own choice, TORCH_THREADS, or 1 when that is faster).
TORCH_THREADS = torch.get_num_threads()  # torch's own choice at start-up (here: at most the cores)
REQUESTED_THREADS = _requested_threads()
SUITE_THREADS = REQUESTED_THREADS or 1
torch.set_num_threads(SUITE_THREADS)


# Devices. Tests that take the ``device`` fixture (or parametrise over DEVICES) run on the CPU and on a CUDA
# GPU; the CUDA cases carry the ``cuda`` marker (``pytest -m cuda`` runs only them: bench/gpu_check.sh) and
# are skipped, with the reason, where torch finds no CUDA GPU.
NO_CUDA = "no CUDA GPU on this machine"
HAS_CUDA = torch.cuda.is_available()
# Bit-for-bit repeatable CUDA runs (the CUDA cases compare runs exactly): cuBLAS may pick other kernels while
# several streams are busy, and nn.RNN's cuDNN path is not repeatable on some versions, unless cuBLAS has
# workspaces of its own (torch's "Reproducibility" notes and nn.RNN's docs). Read when cuBLAS first starts,
# which is after this line.
os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
CUDA = pytest.param("cuda", id="cuda", marks=[pytest.mark.cuda, pytest.mark.skipif(not HAS_CUDA, reason=NO_CUDA)])
DEVICES = [pytest.param("cpu", id="cpu"), CUDA]


def pytest_configure(config):
    config.addinivalue_line("markers", "cuda: needs a CUDA GPU (skipped without one); `pytest -m cuda` runs only these")


@pytest.fixture(params=DEVICES)
def device(request):
    """"cpu", then "cuda" (skipped without a CUDA GPU). On CUDA, TF32 is off for the test's duration: cuDNN's
    RNN (and matmul, if allowed) may otherwise round the inputs of every product to TF32's 10-bit mantissa
    (relative step 2^-10 ~ 1e-3, against float32's 2^-23 ~ 1.2e-7), and this suite's tolerances are derived
    from float32's rounding. What users get by default (cuDNN TF32 allowed) is what test_chapter_setups.py runs."""
    if request.param != "cuda":
        yield request.param
        return
    saved = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False
    try:
        yield request.param
    finally:
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = saved


def subprocess_env(**extra: str) -> dict[str, str]:
    """The environment for ``python -m charrnn`` subprocesses: the suite's thread count, UTF-8 output."""
    return {**os.environ, "OMP_NUM_THREADS": str(SUITE_THREADS), "PYTHONIOENCODING": "utf-8", **extra}


def data_dir() -> Path | None:
    value = os.environ.get(ENV)
    return Path(value) if value and Path(value).is_dir() else None


def _corpus_file(name: str) -> Path:
    d = data_dir()
    if d is None or not (d / name).is_file():
        pytest.skip(f"{name} not found: set ${ENV} to the folder holding it (e.g. ../shared/data)")
    return d / name


@pytest.fixture(scope="session")
def shared_data_dir() -> Path:
    d = data_dir()
    if d is None:
        pytest.skip(f"the corpora folder is not available: set ${ENV} (e.g. ../shared/data)")
    return d


@pytest.fixture(scope="session")
def jaychou_zip() -> Path:
    return _corpus_file(JAYCHOU_ZIP)


@pytest.fixture(scope="session")
def timemachine_txt() -> Path:
    return _corpus_file(TIMEMACHINE_TXT)


@pytest.fixture(scope="session")
def jaychou_10k(jaychou_zip):
    """The chapter's corpus: the first 10,000 characters of the lyrics (V = 1,027)."""
    from charrnn import load_corpus
    return load_corpus("jaychou", 10_000, path=jaychou_zip, progress=False)


def make_text(n_words: int = 320, seed: int = 0) -> str:
    """A small synthetic text with a small vocabulary (built here, not a copy of any corpus)."""
    rng = random.Random(seed)
    words = ["the", "time", "machine", "said", "traveller", "a", "of", "and", "in", "it", "was", "to"]
    return " ".join(rng.choice(words) for _ in range(n_words)) + "."


@pytest.fixture(scope="session")
def tiny_text() -> str:
    return make_text()


@pytest.fixture(scope="session")
def tiny_corpus(tiny_text):
    from charrnn import from_text
    return from_text(tiny_text, name="tiny")


@pytest.fixture
def tiny_config():
    """A configuration that trains in a fraction of a second on ``tiny_corpus``.

    No prefixes: a run writes samples at its end, and most tests count events or forward calls
    exactly; the tests of samples give their own prefixes.
    """
    from charrnn import TrainConfig

    def make(**changes):
        base = dict(corpus="tiny", max_chars=None, model="scratch", num_hiddens=16, batch_size=4, num_steps=8,
                    optimizer="sgd", lr=1.0, clip_theta=1.0, epochs=3, seed=0, device="cpu", pred_period=1000,
                    pred_len=10, prefixes=[], temperature=0.0, top_k=None)
        base.update(changes)
        return TrainConfig(**base)
    return make


@pytest.fixture
def isolated_data_dirs(tmp_path, monkeypatch):
    """$CHARRNN_DATA_DIR and the default data/ both point to empty folders (nothing found locally)."""
    import charrnn.corpus as corpus_mod
    env_dir = tmp_path / "env-empty"
    default_dir = tmp_path / "data"
    env_dir.mkdir()
    default_dir.mkdir()
    monkeypatch.setenv(ENV, str(env_dir))
    monkeypatch.setattr(corpus_mod, "DEFAULT_DATA_DIR", default_dir)
    return env_dir, default_dir


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    """Serves a folder; ``pace`` > 0 sends each file in 4 kB pieces that far apart (a slow connection)."""
    pace = 0.0

    def log_message(self, *args):  # keep pytest output clean
        pass

    def copyfile(self, source, outputfile):
        if not self.pace:
            return super().copyfile(source, outputfile)
        while piece := source.read(4096):
            outputfile.write(piece)
            outputfile.flush()
            time.sleep(self.pace)


@pytest.fixture
def http_serve():
    """Serve a folder on 127.0.0.1 at a random port: a function (folder, pace=0.0) -> base URL (see
    ``_QuietHandler``)."""
    servers = []

    def serve(folder: Path, pace: float = 0.0) -> str:
        handler = functools.partial(type("Handler", (_QuietHandler,), {"pace": pace}), directory=str(folder))
        srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        servers.append(srv)
        return f"http://127.0.0.1:{srv.server_address[1]}"

    yield serve
    for srv in servers:
        srv.shutdown()
        srv.server_close()


def closed_port_url(fname: str) -> str:
    """A URL at which nothing listens: connections are refused at once."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return f"http://127.0.0.1:{port}/{fname}"


@pytest.fixture
def silent_url():
    """A URL whose server takes the connection and never answers (what a blocked network can look like)."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    s.listen(8)
    yield f"http://127.0.0.1:{s.getsockname()[1]}/file"
    s.close()


def wait_for(pred, timeout: float = 30.0, step: float = 0.05):
    """Poll ``pred`` until it returns something true (returned), or fail the test after ``timeout`` s."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if value := pred():
            return value
        time.sleep(step)
    raise AssertionError("condition not met in time")


# ---------------------------------------------------------------- the page, served in this process
@dataclass(frozen=True)
class Served:
    """An app served by ``serve_app``: its address (``http://127.0.0.1:<port>/``), its Lab and its Blocks.
    It unpacks as ``url, lab = served``, what most tests ask of it."""
    url: str
    lab: Any
    demo: Any

    def __iter__(self):
        return iter((self.url, self.lab))


@contextlib.contextmanager
def serve_app(**lab_options: Any) -> Iterator[Served]:
    """Build the page for a fresh ``Lab(**lab_options)`` and serve it in this process as ``demo/app.py`` does
    (``app.launch``: Gradio's costs cut, the queue, the upload cap), on Gradio's first free port from
    $GRADIO_SERVER_PORT (else 7860) on. Meanwhile charrnn's default checkpoint folder is a temporary one, not
    the project's checkpoints/ (nothing the app does should write there). At the end the server closes, then
    the lab shuts down (its sessions, their files, its scheduler). The suite's one launch of the app: through
    the ``server`` fixture, or directly where a server must live for one test only."""
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    from charrnn import checkpoint as checkpoint_mod
    from charrnn.lab import Lab
    from demo import app

    with contextlib.ExitStack() as stack:
        checkpoints = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="charrnn-checkpoints-")))
        mp = stack.enter_context(pytest.MonkeyPatch.context())  # undone after the lab's shutdown
        mp.setattr(checkpoint_mod, "CHECKPOINT_DIR", checkpoints)
        lab = Lab(**lab_options)
        stack.callback(lab.shutdown)
        demo = app.build_app(lab)
        stack.callback(demo.close)  # the page's server goes first, then the lab
        _, url, _ = app.launch(demo, prevent_thread_lock=True, quiet=True, server_port=None)
        yield Served(url, lab, demo)


@pytest.fixture(scope="module")
def server(request) -> Iterator[Served]:
    """The app served for one test module (``serve_app``), with the Lab options that module names in
    ``LAB_OPTIONS`` (e.g. ``LAB_OPTIONS = dict(max_runs=4)``; Lab's defaults without). Its tests share it:
    each makes its own clients, so its own sessions."""
    with serve_app(**getattr(request.module, "LAB_OPTIONS", {})) as served:
        yield served
