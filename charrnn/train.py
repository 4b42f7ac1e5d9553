"""Training as a generator of small typed events.

``Trainer(config).run(stop)`` yields an ``EpochEnd`` after every epoch, a ``Sample`` per prefix every
``pred_period`` epochs, and exactly one ``Finished``, ``Stopped`` or ``Diverged`` at the end. The CLI
prints these events, the app plots them and the tests assert on them.

On a CUDA GPU the chapter's run is tiny: its speed is set by kernel launches and Python, not arithmetic.
So there a trainer never waits for the GPU inside an epoch (an epoch's minibatches go to the GPU in one
copy, losses and norms stay on the GPU until one read at the epoch's end) and works on a CUDA stream of
its own, so runs trained by several threads at once neither wait for each other's kernels nor mix their
work; ``snapshot``, ``save`` and ``fork`` order their copies after the training stream's work (see
``_reading``). ``TrainConfig.fast`` (opt-in, CUDA only) replays each training step as one CUDA graph.
"""
from __future__ import annotations

import contextlib
import copy
import math
import threading
import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any, Generator, Iterable, Iterator

import torch
import torch.nn.functional as F

from . import generate
from .batches import check_length, epoch_batches, num_batches
from .checkpoint import Checkpoint, default_path, load_checkpoint, new_run_id, save_checkpoint
from .config import ConfigError, TrainConfig
from .corpus import NAMED, Corpus, CorpusError, Vocab, load_corpus
from .device import training_device
from .models import CharModel, build_model, detach_state



# ---------------------------------------------------------------- events
@dataclass(frozen=True)
class EpochEnd:
    epoch: int               # 1-based epoch just finished
    epochs: int              # total epochs of the run
    perplexity: float        # exp(mean cross-entropy over the epoch)
    grad_norm: float         # mean global L2 gradient norm before clipping, over the epoch's minibatches
    grad_norm_max: float     # largest of those norms
    clipped: float           # fraction of minibatches whose gradient was clipped (0 when clipping is off)
    seconds: float           # wall time of the epoch (training only, samples excluded; on a GPU it ends with
    #                          the epoch's one wait for the GPU, so it counts the GPU's work too)
    chars_per_sec: float     # characters of input processed per second

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Sample:
    epoch: int
    prefix: str
    text: str  # prefix + generated characters


@dataclass(frozen=True)
class End:
    epoch: int    # epochs completed
    message: str

    @property
    def status(self) -> str:
        return type(self).__name__.lower()


class Finished(End):
    """All epochs ran."""


class Stopped(End):
    """A stop was requested; the weights trained so far are kept."""


class Diverged(End):
    """The loss became NaN or infinite; the weights from the last good epoch are kept."""


Event = EpochEnd | Sample | End


# ---------------------------------------------------------------- pieces
def pick_device(name: str = "auto") -> torch.device:
    """Where a run of ``TrainConfig.device == name`` trains; ``charrnn.device`` decides (and knows ZeroGPU,
    where CUDA is reported but unusable outside @spaces.GPU calls)."""
    return training_device(name)


def clip_gradients(params: Iterable[torch.nn.Parameter], theta: float | None) -> torch.Tensor:
    """The chapter's clipping over the concatenation g of all gradients: if ||g|| > theta, g *= theta/||g||.

    Returns ||g|| before clipping, as a tensor (no sync with the device). ``params`` may be a generator:
    it is read once (the book's helper read it twice and so never clipped the concise model). On CUDA the
    per-tensor norms and products are one ``_foreach`` kernel each (as torch's own clip_grad_norm_ does),
    not one kernel per tensor; the CPU keeps its loop (the same numbers it always gave).
    """
    grads = [p.grad for p in params if p.grad is not None]
    fused = bool(grads) and grads[0].is_cuda
    norms = torch._foreach_norm(grads) if fused else [torch.linalg.vector_norm(g) for g in grads]
    norm = torch.linalg.vector_norm(torch.stack(list(norms)))
    if theta is not None:
        scale = (theta / norm).clamp(max=1.0)  # == theta/norm when norm > theta, else 1
        if fused:
            torch._foreach_mul_(grads, scale)
        else:
            for g in grads:
                g.mul_(scale)
    return norm


def make_optimizer(config: TrainConfig, model: CharModel) -> torch.optim.Optimizer:
    """Plain SGD or Adam. torch picks its multi-tensor (foreach) implementation on CUDA by itself, one kernel
    per step for SGD. With ``config.fast`` on CUDA, Adam is ``capturable`` (its step count lives on the GPU,
    so a CUDA graph can hold the whole step): that changes the last digits of its updates."""
    if config.optimizer == "sgd":  # plain p -= lr * grad: no momentum, no weight decay
        return torch.optim.SGD(model.parameters(), lr=config.lr)
    on_cuda = next(model.parameters()).is_cuda
    if config.fast and on_cuda:
        adam = torch.optim.Adam(model.parameters(), lr=config.lr, capturable=True)
        # its first steps run before the graph is captured (warm-up): torch would warn that capturable is slow
        # uncaptured; the flag is the one torch sets itself after warning once
        adam._warned_capturable_if_run_uncaptured = True
        return adam
    return torch.optim.Adam(model.parameters(), lr=config.lr)


# The implementation switches of a torch optimizer's param_groups: which code runs, not which numbers it
# keeps. A loaded state keeps the loading optimizer's own (see Trainer._load_optimizer).
IMPL_FLAGS = ("foreach", "fused", "capturable", "differentiable")

class CudaGate:
    """Who may queue CUDA work while a CUDA graph is captured: nobody else.

    Any number of threads queue their runs' work at once (``shared``: a training step, a snapshot, a sample),
    but a capture (``exclusive``, one at a time in the process) waits until every shared section has ended and
    holds new ones back until it is done. Seen on an H200 (torch 2.11, cuDNN 9.19) with a capture merely
    ``thread_local``: another thread's cuDNN RNN backward failed with CUDNN_STATUS_INTERNAL_ERROR, and a
    snapshot that ordered the capturing stream after its copy failed with cudaErrorStreamCaptureIsolation.
    A capture happens once per fast run; the other runs pause for as long as recording one training step takes.

    A thread's shared sections nest (``fork`` copies inside its twin's section); a thread that captures must not
    be inside one (it would wait for itself), and may open shared sections while it captures. On the CPU no
    trainer uses it."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._open = 0             # shared sections open, counted once per thread
        self._owner: int | None = None  # the thread capturing
        self._mine = threading.local()  # .depth: this thread's nested shared sections

    @contextlib.contextmanager
    def shared(self) -> Iterator[None]:
        depth = getattr(self._mine, "depth", 0)
        counted = depth == 0 and self._owner != threading.get_ident()  # only this thread sets itself as owner
        if counted:
            with self._cond:
                while self._owner is not None:
                    self._cond.wait()
                self._open += 1
        self._mine.depth = depth + 1
        try:
            yield
        finally:
            self._mine.depth = depth
            if counted:
                with self._cond:
                    self._open -= 1
                    self._cond.notify_all()

    @contextlib.contextmanager
    def exclusive(self) -> Iterator[None]:
        if getattr(self._mine, "depth", 0):
            raise RuntimeError("CudaGate.exclusive inside one of this thread's shared sections would wait forever")
        me = threading.get_ident()
        with self._cond:
            while self._owner is not None:
                self._cond.wait()
            self._owner = me  # from here no new shared section opens
            while self._open:
                self._cond.wait()
        try:
            yield
        finally:
            with self._cond:
                self._owner = None
                self._cond.notify_all()


_GATE = CudaGate()  # one per process: a capture must be alone among all runs' CUDA work
WARMUP_STEPS = 3  # eager steps before a capture (torch's recipe: lazy initialisation happens outside the graph)


class _GraphStep:
    """One whole training step (forward, loss, backward, clipping, optimizer step) captured as a CUDA graph,
    then replayed for every minibatch: one launch instead of hundreds of small kernels (``TrainConfig.fast``).

    Static buffers hold what changes between replays: the inputs X (batch, steps), the targets
    (steps * batch,) time-major, the state fed in (carried between replays for consecutive sampling, zeros
    for random sampling), and the step's [loss, gradient norm]. The gradients live in the graph's memory.
    Made on the trainer's stream, in its thread, after ``WARMUP_STEPS`` eager steps (so the optimizer's
    state exists and is not zeroed again by the graph), alone on the GPU (``CudaGate``).
    """

    def __init__(self, trainer: Trainer, X: torch.Tensor, Y: torch.Tensor, state: tuple[torch.Tensor, ...]):
        self.carry = trainer.config.sampling == "consecutive"
        self.X = X.clone()                                    # (batch, steps)
        self.T = Y.T.reshape(-1).clone()                      # (steps * batch,)
        self.state = tuple(s.detach().clone() for s in state)
        self._capture(trainer)

    def _capture(self, trainer: Trainer) -> None:
        """Record ``_body`` into ``self.graph`` (nothing runs yet); ``self.stats`` is its static output."""
        self.graph = torch.cuda.CUDAGraph()
        # made inside _GATE.exclusive() (Trainer._make_graph): no other thread queues CUDA work meanwhile
        with torch.cuda.graph(self.graph, stream=trainer.stream, capture_error_mode="thread_local"):
            self.stats = self._body(trainer)

    def _body(self, trainer: Trainer) -> torch.Tensor:
        """The training step the graph holds; returns [loss, gradient norm before clipping], shape (2,)."""
        c, model, optimizer = trainer.config, trainer.model, trainer.optimizer
        model.train()
        optimizer.zero_grad(set_to_none=True)  # the gradients are made inside the graph, in its memory pool
        logits, out = model(self.X, self.state)
        loss = F.cross_entropy(logits, self.T)
        loss.backward()
        norm = clip_gradients(model.parameters(), c.clip_theta)
        optimizer.step()
        if self.carry:  # the next replay starts from this one's final state (detached: the graph is cut)
            for s, o in zip(self.state, out):
                s.copy_(o.detach())
        return torch.stack([loss.detach(), norm])

    def replay(self, X: torch.Tensor, Y: torch.Tensor, first: bool) -> torch.Tensor:
        """Train on one minibatch; ``first``: the epoch's first (consecutive sampling starts from zeros).
        Returns a copy of [loss, norm] (the static output is overwritten by the next replay)."""
        self.X.copy_(X)
        self.T.view(Y.shape[1], Y.shape[0]).copy_(Y.T)
        if first and self.carry:
            for s in self.state:
                s.zero_()
        self.graph.replay()
        return self.stats.clone()


STRUCTURE = ("model", "num_hiddens", "num_layers", "optimizer")  # fields the saved weights fix


# ---------------------------------------------------------------- the trainer
class Trainer:
    """Holds one run: config, corpus, model, optimizer, metrics and the epoch reached.

    ``run`` trains from the next epoch to ``config.epochs``. ``snapshot`` gives a copy of the weights
    that is safe to use from another thread while training goes on; ``save`` and ``fork`` are safe too.

    On CUDA the trainer owns a CUDA stream: its weights, optimizer state and minibatches are made there and
    every training step runs there (``_on_stream``), so several runs on one GPU, trained by several threads,
    do not wait for each other's kernels and never read each other's memory. When a run ends its stream is
    synchronised, so its model can then be used anywhere.
    """

    def __init__(self, config: TrainConfig, corpus: Corpus | None = None, *, vocab: Vocab | None = None):
        config.validate()
        self.config = config
        self.device = pick_device(config.device)
        # its own CUDA stream (from torch's pool of 32 per device; a 33rd run shares one, in order)
        self.stream = torch.cuda.Stream(self.device) if self.device.type == "cuda" else None
        corpus = corpus if corpus is not None else load_corpus(config.corpus, config.max_chars)
        self.vocab = vocab if vocab is not None else corpus.vocab
        self.corpus = corpus
        if self.vocab is corpus.vocab or self.vocab == corpus.vocab:
            indices = corpus.indices
        else:  # resuming on text read again: index it with the checkpoint's vocabulary
            try:
                indices = torch.tensor(self.vocab.encode(corpus.text), dtype=torch.long)
            except CorpusError as e:
                raise CorpusError(f"the corpus does not fit the model's vocabulary: {e}") from None
        check_length(len(indices), config.batch_size, config.num_steps, config.sampling)
        self._host_indices = indices  # on the CPU: a CUDA run cuts each epoch's minibatches from it
        with self._on_stream():
            self.data = indices.to(self.device)
            self.model = build_model(config.model, len(self.vocab), config.num_hiddens, config.seed,
                                     config.num_layers).to(self.device)
            self.optimizer = make_optimizer(config, self.model)
        self.shuffle = torch.Generator().manual_seed(config.seed)  # drives random sampling's order
        self.epoch = 0
        self.history: list[EpochEnd] = []
        self.samples: list[Sample] = []
        self.lock = threading.Lock()  # held while the weights change, so snapshots are never torn
        self.run_id = new_run_id(config)
        self.use_graphs = config.fast and self.stream is not None  # TrainConfig.fast: on CUDA only
        self._graph: _GraphStep | None = None  # the captured training step, once there is one
        self._eager_steps = 0                  # steps trained without a graph (the warm-up before a capture)
        self.graph_error: str | None = None    # why a capture failed (the run then goes on without graphs)

    @property
    def batches_per_epoch(self) -> int:
        c = self.config
        return num_batches(len(self.data), c.batch_size, c.num_steps, c.sampling)

    @property
    def indices(self) -> torch.Tensor:
        """The training text as the model's character indices, on the CPU."""
        return self._host_indices

    @property
    def graphed(self) -> bool:
        """True once training steps are replayed from a CUDA graph (``TrainConfig.fast`` on CUDA)."""
        return self._graph is not None

    # -- streams
    @contextlib.contextmanager
    def _on_stream(self) -> Iterator[None]:
        """The trainer's CUDA stream as the calling thread's current stream; nothing on the CPU.

        Entered around each piece of work and never held across a ``yield``: the generator ``work`` may be
        resumed from another thread, and the current stream belongs to a thread."""
        if self.stream is None:
            yield
            return
        with _GATE.shared(), torch.cuda.stream(self.stream):
            yield

    @contextlib.contextmanager
    def _reading(self) -> Iterator[None]:
        """Held while another thread (or stream) copies the weights: the lock, so no optimizer step is queued
        meanwhile; on CUDA also the reading stream ordered after every step queued so far, and the training
        stream ordered after the reader's copies, so the next step cannot overwrite what is being copied.
        Neither the GPU nor the training thread waits for the copy: only the lock is held, for a few launches.
        On CUDA it is a shared section of ``CudaGate``, entered before the lock (the order everywhere)."""
        if self.stream is None:
            with self.lock:
                yield
            return
        with _GATE.shared(), self.lock:
            reader = torch.cuda.current_stream(self.device)
            reader.wait_stream(self.stream)
            try:
                yield
            finally:
                self.stream.wait_stream(reader)

    def _settle(self) -> None:
        """Wait for the run's queued GPU work (when it ends: whoever uses the model next, on any stream, sees
        its final weights). Nothing to do on the CPU."""
        if self.stream is not None:
            with _GATE.shared():
                self.stream.synchronize()

    # -- the loop
    def run(self, stop: threading.Event | None = None) -> Iterator[Event]:
        """Train until ``config.epochs``; ``stop.set()`` from any thread ends it within one minibatch.

        Samples come every ``pred_period`` epochs and once more when the run ends, whatever the period,
        so even a run shorter than the period shows what it learnt.
        """
        for events in self.work(stop):
            yield from events

    def work(self, stop: threading.Event | None = None) -> Iterator[list[Event]]:
        """``run`` in slices: an empty list after every minibatch (a place where a scheduler may pause the
        run and train another), the epoch's events after each epoch, the end's events at the end.

        The generator may be resumed from any thread, one at a time. An epoch's ``seconds`` count only
        the time spent training it, not the pauses between its slices.
        """
        c = self.config
        while self.epoch < c.epochs:
            good = self._state_copy()
            event = yield from self._epoch(stop)
            if event is None:
                self._settle()
                yield [*self._final_samples(),
                       Stopped(self.epoch, f"stopped by request after {self.epoch} of {c.epochs} epochs")]
                return
            if not math.isfinite(event.perplexity) or not math.isfinite(event.grad_norm):
                self._restore(good)
                self._settle()
                yield [*self._final_samples(),
                       Diverged(self.epoch, f"the loss became {'NaN' if math.isnan(event.perplexity) else 'infinite'} "
                                f"in epoch {self.epoch + 1} (lr {c.lr:g}, θ "
                                f"{'off' if c.clip_theta is None else f'{c.clip_theta:g}'}): the weights after "
                                f"epoch {self.epoch} are kept. Try a smaller learning rate or turn clipping on.")]
                return
            self.epoch += 1
            self.history.append(event)
            events: list[Event] = [event]
            if self.epoch % c.pred_period == 0:
                events += self._samples()
            if stop is not None and stop.is_set() and self.epoch < c.epochs:
                self._settle()
                yield [*events, *self._final_samples(),
                       Stopped(self.epoch, f"stopped by request after {self.epoch} of {c.epochs} epochs")]
                return
            yield events
        self._settle()
        yield [*self._final_samples(), Finished(self.epoch, f"finished {self.epoch} epochs")]

    def _samples(self) -> list[Sample]:
        out = [Sample(self.epoch, prefix, self.sample(prefix)) for prefix in self.config.prefixes]
        self.samples += out
        return out

    def _final_samples(self) -> list[Sample]:
        """The samples of the last epoch, unless it has them already (or no epoch was trained)."""
        if self.epoch > 0 and not any(s.epoch == self.epoch for s in self.samples):
            return self._samples()
        return []

    def _batches(self) -> Iterable[tuple[torch.Tensor, torch.Tensor]]:
        """The epoch's minibatches (X, Y), each (batch, steps).

        CPU: drawn one at a time from the corpus. CUDA: all cut on the CPU at once, from the same shuffle
        (the same minibatches in the same order), and sent in one copy that does not wait: indexing the
        GPU's corpus with the CPU's shuffled indices would copy them, and wait for the GPU, every minibatch.
        """
        c = self.config
        if self.stream is None:
            return epoch_batches(self.data, c.batch_size, c.num_steps, c.sampling, self.shuffle)
        pairs = list(epoch_batches(self._host_indices, c.batch_size, c.num_steps, c.sampling, self.shuffle))
        host = torch.stack([torch.stack(xy) for xy in pairs])  # (batches, 2, batch, steps)
        with self._on_stream():
            on_gpu = host.pin_memory().to(self.device, non_blocking=True)
        return [(xy[0], xy[1]) for xy in on_gpu.unbind(0)]

    def _epoch(self, stop: threading.Event | None) -> Generator[list, None, EpochEnd | None]:
        """One epoch, pausing (yielding []) after each minibatch; returns its EpochEnd, or None if a stop was
        requested before it ended (its finished minibatches stay applied).

        Nothing in it waits for a GPU but the one read of the epoch's numbers at its end."""
        c = self.config
        graphs = self.use_graphs
        seconds = 0.0
        state: Any = None
        losses, norms = [], []
        for X, Y in self._batches():
            if stop is not None and stop.is_set():
                return None
            start = time.perf_counter()
            if graphs and self._graph is None and self._eager_steps >= WARMUP_STEPS and self.graph_error is None:
                self._make_graph(X, Y, state)  # outside _on_stream: a capture is alone on the GPU (CudaGate)
            with self._on_stream():
                if self._graph is not None:
                    loss, norm, state = self._graphed_step(X, Y, state)
                else:
                    loss, norm, state = self._step(X, Y, state)
            losses.append(loss)
            norms.append(norm)
            seconds += time.perf_counter() - start
            yield []
        start = time.perf_counter()
        with self._on_stream():
            mean_loss, norm_t = torch.stack(losses).mean(), torch.stack(norms)
            clipped = (norm_t > c.clip_theta).float().mean() if c.clip_theta is not None else torch.zeros(())
            stats = torch.stack([mean_loss, norm_t.mean(), norm_t.max(), clipped.to(norm_t)]).tolist()  # one sync
        seconds += time.perf_counter() - start
        return EpochEnd(epoch=self.epoch + 1, epochs=c.epochs, perplexity=_exp(stats[0]), grad_norm=stats[1],
                        grad_norm_max=stats[2], clipped=stats[3], seconds=seconds,
                        chars_per_sec=len(losses) * c.batch_size * c.num_steps / max(seconds, 1e-9))

    def _step(self, X: torch.Tensor, Y: torch.Tensor, state: Any) -> tuple[torch.Tensor, torch.Tensor, Any]:
        """One minibatch, eagerly: (loss, gradient norm before clipping, the state to carry), as tensors."""
        c, model = self.config, self.model
        model.train()
        if state is None or c.sampling == "random":
            state = model.begin_state(c.batch_size, self.device)  # unrelated windows: fresh state
        else:
            state = detach_state(state)  # carried over, graph cut (truncated BPTT)
        logits, state = model(X, state)  # (steps * batch, V), time-major
        loss = F.cross_entropy(logits, Y.T.reshape(-1))
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        norm = clip_gradients(model.parameters(), c.clip_theta)
        with self.lock:
            self.optimizer.step()
        self._eager_steps += 1
        return loss.detach(), norm, state

    def _make_graph(self, X: torch.Tensor, Y: torch.Tensor, state: Any) -> None:
        """Capture the training step (``_GraphStep``) from this minibatch and the state it starts from, alone
        on the GPU; a capture that fails is recorded in ``graph_error`` and the run goes on eagerly."""
        with _GATE.exclusive(), torch.cuda.stream(self.stream):
            if state is None or self.config.sampling == "random":
                start = self.model.begin_state(self.config.batch_size, self.device)
            else:
                start = detach_state(state)
            try:
                self._graph = _GraphStep(self, X, Y, start)
            except Exception as e:  # noqa: BLE001 (any failure to capture: an operation a graph cannot hold in
                # some torch or cuDNN version, say; the run goes on without graphs and graph_error says why)
                self.graph_error = f"{type(e).__name__}: {e}"
                self._graph = None

    def _graphed_step(self, X: torch.Tensor, Y: torch.Tensor, state: Any) -> tuple[torch.Tensor, torch.Tensor, Any]:
        """One minibatch by replaying the captured step. ``state`` None: the epoch's first minibatch
        (consecutive sampling starts it from zeros); else the graph's own state buffer carries on."""
        with self.lock:
            stats = self._graph.replay(X, Y, first=state is None)
        return stats[0], stats[1], True  # any non-None state: the graph carries the real one

    # -- weights for other threads, and for divergence
    def _state_copy(self) -> dict[str, Any]:
        with self._on_stream(), self.lock:
            return {"model": {k: v.clone() for k, v in self.model.state_dict().items()},
                    "optim": copy.deepcopy(self.optimizer.state_dict())}

    def _restore(self, saved: dict[str, Any]) -> None:
        with self._on_stream(), self.lock:
            self.model.load_state_dict(saved["model"])
            self._load_optimizer(saved["optim"])
            self._graph = None  # it holds the optimizer's previous state tensors: capture again if training goes on

    def _load_optimizer(self, state: Mapping[str, Any]) -> None:
        """Load an optimizer state saved by any trainer on any device: its numbers, with this optimizer's own
        implementation switches (IMPL_FLAGS). A state saved by a fast run on a GPU says capturable, which
        the CPU cannot run, and the switches also decide where Adam's step count is placed."""
        groups = [{**saved, **{k: mine[k] for k in IMPL_FLAGS if k in mine}}
                  for saved, mine in zip(state["param_groups"], self.optimizer.param_groups)]
        self.optimizer.load_state_dict({**state, "param_groups": groups})

    def snapshot(self) -> CharModel:
        """A CPU copy of the current model, consistent even while another thread trains it."""
        with self._reading():
            clone = copy.deepcopy(self.model)
        return clone.to("cpu").eval()

    def sample(self, prefix: str, num_chars: int | None = None) -> str:
        c = self.config
        seed = None if c.temperature == 0 else c.seed * 1_000_003 + self.epoch
        self.model.eval()
        try:
            with self._on_stream():
                return generate.predict(self.model, self.vocab, prefix, c.pred_len if num_chars is None else num_chars,
                                        c.temperature, c.top_k, seed)
        except generate.PrefixError as e:
            return f"{prefix} ✗ {e}"
        finally:
            self.model.train()

    # -- checkpoints
    def save(self, path: str | None = None) -> str:
        """Write a checkpoint (atomically); the default path is checkpoints/<run-id>/epoch-NNNN.safetensors.

        The weights are copied under the lock (on CUDA, in order with the training stream) and written
        after it, so a run training meanwhile is held up for the copy only, not for the disk."""
        with self._reading():
            epoch, metrics = self.epoch, [e.as_dict() for e in self.history]
            weights = {k: v.detach().clone() for k, v in self.model.state_dict().items()}
            optim = copy.deepcopy(self.optimizer.state_dict())
            shuffle = self.shuffle.get_state()
        target = path or default_path(self.run_id, epoch)
        save_checkpoint(target, weights, optim, self.saved_config(), self.vocab, epoch, metrics, self.run_id, shuffle)
        return str(target)

    def fork(self, **changes: Any) -> "Trainer":
        """A new trainer that starts where this one is (a copy of its weights, optimizer, metrics and epoch),
        with config fields changed (not the structural ones): e.g. the same model sampled another way."""
        fixed = [k for k in changes if k in STRUCTURE and changes[k] != getattr(self.config, k)]
        if fixed:
            raise ConfigError(f"cannot change {', '.join(fixed)} in a fork: the weights fix them")
        twin = Trainer(self.config.replace(**changes), self.corpus, vocab=self.vocab)
        # the copies are made on the twin's stream (its current one), ordered after this run's queued steps
        with twin._on_stream(), self._reading():
            twin.model.load_state_dict(self.model.state_dict())
            twin._load_optimizer(copy.deepcopy(self.optimizer.state_dict()))
            shuffle, epoch, history = self.shuffle.get_state(), self.epoch, list(self.history)
        twin.shuffle.set_state(shuffle)
        twin.epoch, twin.history = epoch, history
        return twin

    def saved_config(self) -> TrainConfig:
        """The config as a checkpoint records it: a text that is not a named corpus by its SHA-256 and length,
        never by the path it was read from (on a server, a path says whose upload it was)."""
        if self.config.corpus in NAMED or self.corpus is None:
            return self.config
        return self.config.replace(corpus=self.corpus.identity)

    @classmethod
    def resume(cls, path: str, data: Corpus | None = None, **changes: Any) -> "Trainer":
        """A trainer that continues the run saved at ``path`` (see ``from_checkpoint``)."""
        return cls.from_checkpoint(load_checkpoint(path), data, **changes)

    @classmethod
    def from_checkpoint(cls, ck: Checkpoint, data: Corpus | None = None, **changes: Any) -> "Trainer":
        """A trainer that continues a saved run: weights, optimizer, shuffle order, metrics and epoch.

        ``changes`` override config fields (raise ``epochs`` to train further, change ``lr``, ...);
        the structural ones (``STRUCTURE``) must stay as saved. ``data`` (a Corpus)
        defaults to the config's corpus and must be written in the checkpoint's vocabulary. A checkpoint
        saved on a GPU resumes on the CPU and the other way round (``device`` may be changed too).
        """
        fixed = {k: v for k, v in changes.items() if k in STRUCTURE
                 and v != getattr(ck.config, k)}
        if fixed:
            raise ConfigError(f"cannot change {', '.join(fixed)} when resuming: the saved weights fix them")
        config = ck.config.replace(**changes)
        if data is None:
            data = load_corpus(config.corpus, config.max_chars)
        trainer = cls(config, data, vocab=ck.vocab)
        with trainer._on_stream():
            trainer.model.load_state_dict(ck.model.state_dict())  # the file's CPU tensors, copied to the device
            if ck.optimizer_state is not None:
                trainer._load_optimizer(ck.optimizer_state)
                for group in trainer.optimizer.param_groups:
                    group["lr"] = config.lr
        if ck.shuffle_state is not None:
            trainer.shuffle.set_state(ck.shuffle_state)
        trainer.epoch = ck.epoch
        trainer.run_id = ck.run_id
        trainer.history = [EpochEnd(**m) for m in ck.metrics]
        return trainer


def _exp(x: float) -> float:
    try:
        return math.exp(x)
    except OverflowError:
        return math.inf


def train(config: TrainConfig, corpus: Corpus | None = None, stop: threading.Event | None = None) -> Iterator[Event]:
    """Train a fresh model of ``config`` and yield its events (use ``Trainer`` to keep the model)."""
    return Trainer(config, corpus).run(stop)
