"""CUDA only: what the GPU path promises beyond the device-parametrised tests of the other files.

- An epoch's minibatches, cut on the CPU and sent in one copy, are the CPU path's, in the same order.
- Every run has its own CUDA stream; runs trained by several threads at once on one GPU give exactly the
  numbers each gives alone (the fast path's CUDA graphs included), while other threads snapshot them.
- Snapshots taken while a run trains are usable and change nothing; what they cost the run is measured and
  printed (``pytest -rP`` shows it), not asserted.
- A checkpoint saved on the GPU resumes on the CPU, and the other way round (a fast run's capturable Adam too).
- The opt-in fast path (TrainConfig.fast: one CUDA graph per training step) agrees with the default path.

Every test here is skipped, with the reason, where torch finds no CUDA GPU. ``bench/gpu_check.sh`` runs them.
"""
from __future__ import annotations

import math
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import torch
from conftest import HAS_CUDA, NO_CUDA

from charrnn import EpochEnd, Finished, Trainer, from_text, load_checkpoint, predict
from charrnn.batches import min_length

pytestmark = [pytest.mark.cuda, pytest.mark.skipif(not HAS_CUDA, reason=NO_CUDA)]

EPS = torch.finfo(torch.float32).eps  # 1.19e-7: float32's relative rounding step

# Two runs whose float32 arithmetic differs only in rounding (another device's kernels, Adam's capturable
# formulas, a graph instead of eager launches) follow trajectories that drift apart by rounding alone. How far,
# for the tiny setups below: perturbing every weight by up to 4 ulps after every step (a different rounding of
# every update), 5 seeds x 4 setups (scratch/concise x random/consecutive, SGD/Adam) x 5 epochs of 44 minibatches
# moved the perplexity by at most 7.2e-7 relative (measured on the CPU). 1e-5 allows 14 times that; a real fault
# (a minibatch read from a stale buffer, a state not carried, the optimizer's state reset) moves it by > 1e-2.
TRAJECTORY_REL = 1e-5

SETUPS = {
    "scratch-random-sgd": {"model": "scratch", "sampling": "random", "optimizer": "sgd", "lr": 1.0},
    "concise-consecutive-adam": {"model": "concise", "sampling": "consecutive", "optimizer": "adam", "lr": 0.01},
}


@pytest.fixture(autouse=True)
def float32_math():
    """TF32 off (see conftest.py's ``device`` fixture): the tolerances here are float32's."""
    saved = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False
    yield
    torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = saved


def perplexities(trainer: Trainer) -> list[float]:
    return [e.perplexity for e in trainer.run() if isinstance(e, EpochEnd)]


# ---------------------------------------------------------------- minibatches and streams
@pytest.mark.parametrize("sampling", ["random", "consecutive"])
def test_gpu_minibatches_are_the_cpus(tiny_corpus, tiny_config, sampling):
    cpu = Trainer(tiny_config(sampling=sampling, device="cpu"), tiny_corpus)
    gpu = Trainer(tiny_config(sampling=sampling, device="cuda"), tiny_corpus)
    for _ in range(3):  # three epochs: the shuffle moves on alike
        want = [(x.clone(), y.clone()) for x, y in cpu._batches()]
        got = gpu._batches()
        gpu.stream.synchronize()  # the copy was queued on the run's stream, without waiting
        assert len(got) == len(want) == cpu.batches_per_epoch
        for (x, y), (wx, wy) in zip(got, want):
            assert x.is_cuda and torch.equal(x.cpu(), wx) and torch.equal(y.cpu(), wy)


def test_every_run_has_its_own_stream(tiny_corpus, tiny_config):
    a, b = (Trainer(tiny_config(device="cuda"), tiny_corpus) for _ in range(2))
    default = torch.cuda.default_stream()
    assert a.stream is not None and a.stream != b.stream and default not in (a.stream, b.stream)
    assert a.model.W_hh.is_cuda and a.data.is_cuda


def test_runs_in_threads_equal_runs_alone(tiny_corpus, tiny_config):
    """Four runs (two setups, each default and fast) trained by four threads at once, while a fifth thread
    snapshots them all, give exactly the perplexities each gives alone: no run reads another's memory or
    waits on its work in a way that changes numbers, and snapshots only read."""
    configs = [tiny_config(epochs=6, num_hiddens=64, device="cuda", fast=fast, **fields)
               for fast in (False, True) for fields in SETUPS.values()]
    alone = [perplexities(Trainer(c, tiny_corpus)) for c in configs]
    again = [perplexities(Trainer(c, tiny_corpus)) for c in configs]
    assert again == alone, "one run alone, twice, differs: a nondeterministic kernel (not a stream problem)"

    trainers = [Trainer(c, tiny_corpus) for c in configs]
    go = threading.Barrier(len(trainers) + 1)

    def train(trainer: Trainer) -> list[float]:
        go.wait(60)
        return perplexities(trainer)

    with ThreadPoolExecutor(len(trainers)) as pool:  # a thread's exception comes back from its result()
        futures = [pool.submit(train, t) for t in trainers]
        go.wait(60)
        snapshots = 0
        while not all(f.done() for f in futures):
            for trainer in trainers:
                snap = trainer.snapshot()
                assert all(torch.isfinite(p).all() for p in snap.parameters())
                snapshots += 1
        results = [f.result(120) for f in futures]
    assert results == alone
    assert not any(t.graphed for t in trainers[:2]) and trainers[2].graphed, trainers[2].graph_error
    assert trainers[3].graphed or trainers[3].graph_error  # concise: see test_fast_path_agrees_with_default
    assert snapshots >= len(trainers)


# ---------------------------------------------------------------- snapshots
def test_snapshots_while_a_gpu_run_trains(tiny_corpus, tiny_config):
    """Write with snapshots of a run as it trains (what the app's Write does): each is finite and writes,
    the run's numbers are the same as without them; seconds per epoch with and without are printed."""
    cfg = tiny_config(num_hiddens=256, epochs=40, device="cuda")

    def train(snapshotting: bool) -> tuple[list[float], float, list[str]]:
        trainer = Trainer(cfg, tiny_corpus)
        out: list[float] = []
        worker = threading.Thread(target=lambda: out.extend(perplexities(trainer)))
        start = time.perf_counter()
        worker.start()
        texts = []
        while worker.is_alive():
            if snapshotting:
                snap = trainer.snapshot()
                assert all(torch.isfinite(p).all() for p in snap.parameters())
                texts.append(predict(snap, trainer.vocab, "the", 20))
            time.sleep(0.005)
        worker.join()
        return out, (time.perf_counter() - start) / cfg.epochs, texts

    train(False)  # warm-up: CUDA and cuBLAS initialisation out of the timings
    plain, alone, _ = train(False)
    snapped, busy, texts = train(True)
    assert snapped == plain  # snapshots read the weights, never change them
    assert len(texts) >= 3 and all(t.startswith("the") and len(t) == 23 for t in texts)
    print(f"\nsnapshots while training on {torch.cuda.get_device_name()}: {alone:.4f} s/epoch alone, "
          f"{busy:.4f} s/epoch with {len(texts)} snapshots written with ({busy / alone:.2f}x)")


# ---------------------------------------------------------------- checkpoints across devices
def one_batch_corpus(cfg, text):
    """A corpus of exactly one minibatch: an epoch's perplexity is then the loss of the weights it starts from."""
    return from_text(text[:min_length(cfg.batch_size, cfg.num_steps, cfg.sampling)])


@pytest.mark.parametrize("fields", list(SETUPS.values()), ids=list(SETUPS))
@pytest.mark.parametrize("save_on, resume_on", [("cuda", "cpu"), ("cpu", "cuda"), ("cuda-fast", "cpu"),
                                                ("cpu", "cuda-fast")])
def test_checkpoint_moves_between_devices(tmp_path, tiny_text, tiny_config, fields, save_on, resume_on):
    fields = {**fields, "sampling": "consecutive"}
    device, fast = save_on.split("-")[0], save_on.endswith("fast")
    cfg = tiny_config(epochs=3, device=device, fast=fast, **fields)
    corpus = one_batch_corpus(cfg, tiny_text)
    full = Trainer(cfg.replace(epochs=5), corpus)
    list(full.run())
    half = Trainer(cfg, corpus)
    list(half.run())
    path = tmp_path / "ck.safetensors"
    half.save(str(path))
    ck = load_checkpoint(path)
    for k, v in half.model.state_dict().items():  # the file holds the run's weights exactly, on the CPU
        assert torch.equal(ck.model.state_dict()[k], v.cpu()), k

    where, fast_after = resume_on.split("-")[0], resume_on.endswith("fast")
    resumed = Trainer.from_checkpoint(ck, corpus, epochs=5, device=where, fast=fast_after)
    assert resumed.device.type == where and all(p.device.type == where for p in resumed.model.parameters())
    for st in resumed.optimizer.state.values():
        for name, value in st.items():  # Adam's step count stays on the CPU unless the optimizer is capturable
            on_device = name != "step" or resumed.optimizer.param_groups[0].get("capturable", False)
            assert value.device.type == (where if on_device else "cpu"), name
    events = list(resumed.run())
    assert isinstance(events[-1], Finished) and resumed.epoch == 5
    got, want = [e.perplexity for e in resumed.history], [e.perplexity for e in full.history]
    assert got[:3] == want[:3]  # the saved history
    # Epoch 4 scores the same weights (epoch 3's, copied exactly) on each device: two float32 evaluations of one
    # loss. Each device's logits are within S * K * eps * K * w of the exact ones (S steps, sums of K = h + 3
    # terms of size <= w = max|weight|: tests/test_models.py's bound), which moves a cross-entropy (its
    # gradient in the logits has L1 norm <= 2) by twice that; the loss itself, a mean of B*S cross-entropies
    # each a logsumexp of V terms of size ~log V, rounds by (B*S + V) * eps * log V. Relative in exp(loss),
    # for each side: h = 16, w ~ 1: 8 x 19 x 19 x 1.2e-7 x 2 ~ 7e-4 plus (32 + V) x 1.2e-7 x log V ~ 1e-5.
    V, n, K = len(corpus.vocab), cfg.batch_size * cfg.num_steps, cfg.num_hiddens + 3
    w = max(p.abs().max().item() for p in ck.model.parameters())
    evaluation = 2 * (2 * cfg.num_steps * K * EPS * K * w + (n + V) * EPS * math.log(V))
    assert got[3] == pytest.approx(want[3], rel=evaluation)
    # epoch 5 follows one step taken on each device from those weights: rounding apart (TRAJECTORY_REL), then
    # evaluated on each device as above
    assert got[4] == pytest.approx(want[4], rel=evaluation + TRAJECTORY_REL)


# ---------------------------------------------------------------- the opt-in fast path
@pytest.mark.parametrize("fields", list(SETUPS.values()), ids=list(SETUPS))
def test_fast_path_agrees_with_default(tiny_corpus, tiny_config, fields):
    cfg = tiny_config(epochs=5, device="cuda", **fields)
    default, fast = Trainer(cfg, tiny_corpus), Trainer(cfg.replace(fast=True), tiny_corpus)
    a, b = perplexities(default), perplexities(fast)
    assert not default.graphed
    if fields["model"] == "scratch":
        assert fast.graphed and fast.graph_error is None, fast.graph_error
    elif not fast.graphed:
        # nn.RNN's cuDNN kernels in a CUDA graph depend on the torch and cuDNN versions: where the capture fails,
        # the run goes on eagerly (with capturable Adam: still within TRAJECTORY_REL of the default path) and
        # says why; pytest -rP shows it
        assert fast.graph_error, "neither a graph nor a reason"
        print(f"\nconcise: no CUDA graph on this machine, the fast path ran eagerly: {fast.graph_error}")
    assert fast.batches_per_epoch * cfg.epochs > 10 * 3  # most steps were replays (3 eager warm-up steps)
    assert b == pytest.approx(a, rel=TRAJECTORY_REL)
    # a run that ends and goes on (the same graph, its state reset at the new epoch) gives the same numbers again
    again = Trainer(cfg.replace(fast=True, epochs=2), tiny_corpus)
    first = perplexities(again)
    again.config = again.config.replace(epochs=cfg.epochs)
    assert first + perplexities(again) == b
