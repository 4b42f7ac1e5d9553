"""The book's training loop (d2l-zh, section 6.4 "Implementation of RNNs from scratch", and the sections after
it that reuse it), as a generator of small typed events.

Every epoch: the minibatches of random or consecutive sampling; the state fresh for each minibatch (random)
or carried over and detached (consecutive: truncated backpropagation through time); cross-entropy over
every step's logits; backward; the gradients clipped to norm theta; one optimizer step. Perplexity is
exp(the epoch's mean cross-entropy); samples of the model every ``pred_period`` epochs.

``Trainer(config).run(stop)`` yields an ``EpochEnd`` after every epoch, a ``Sample`` per prefix every
``pred_period`` epochs, and exactly one ``Finished``, ``Stopped`` or ``Diverged`` at the end (``events``).
What a run does differently on a CUDA GPU (its own stream, no waiting inside an epoch, the opt-in CUDA graph
of ``TrainConfig.fast``) is ``cuda``'s; saving, resuming and forking a run are ``run_state``'s.
"""
from __future__ import annotations

import copy
import dataclasses
import math
import threading
import time
from typing import Any, Generator, Iterable, Iterator

import torch
import torch.nn.functional as F

from . import cuda, generate, heldout, live, run_state
from .batches import check_length, epoch_batches, num_batches
from .checkpoint import Checkpoint, new_run_id
from .config import TrainConfig
from .corpus import Corpus, CorpusError, Vocab, load_corpus
from .device import training_device
from .events import Change, Diverged, End, EpochEnd, Event, Finished, Sample, Stopped
from .models import CharModel, State, build_model, detach_state
from .optim import clip_gradients, make_optimizer
from .run_state import STRUCTURE

__all__ = ["Diverged", "End", "EpochEnd", "Event", "Finished", "Sample", "STRUCTURE", "Stopped", "Trainer",
           "clip_gradients", "make_optimizer", "pick_device", "train"]


def pick_device(name: str = "auto") -> torch.device:
    """Where a run of ``TrainConfig.device == name`` trains; ``charrnn.device`` decides (and knows ZeroGPU,
    where CUDA is reported but unusable outside @spaces.GPU calls)."""
    return training_device(name)


class Trainer:
    """Holds one run: config, corpus, model, optimizer, metrics and the epoch reached.

    ``run`` trains from the next epoch to ``config.epochs``. ``snapshot`` gives a copy of the weights
    that is safe to use from another thread while training goes on; ``save`` and ``fork`` are safe too.
    On CUDA the run's weights, optimizer state and minibatches are made on its own stream and every step
    runs there (``cuda.on_stream``); when a run ends its stream is synchronised, so its model can then be
    used anywhere.
    """

    def __init__(self, config: TrainConfig, corpus: Corpus | None = None, *, vocab: Vocab | None = None):
        config.validate()
        self.config = config
        self.device = pick_device(config.device)
        self.stream = cuda.new_stream(self.device)  # None on the CPU
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
        indices, held = heldout.split(indices, config.validation)  # the vocabulary stays the whole text's
        check_length(len(indices), config.batch_size, config.num_steps, config.sampling)
        self._host_indices = indices  # on the CPU: a CUDA run cuts each epoch's minibatches from it
        with cuda.on_stream(self.stream):
            self.data = indices.to(self.device)
            self.held = held.to(self.device) if held is not None else None
            self.model = build_model(config.model, len(self.vocab), config.num_hiddens, config.seed,
                                     config.num_layers).to(self.device)
            self.optimizer = make_optimizer(config, self.model)
        self.shuffle = torch.Generator().manual_seed(config.seed)  # drives random sampling's order
        self.epoch = 0
        self.batch = 0  # minibatches trained of the epoch in progress
        self.changes: list[Change] = []           # settings changed mid-run, as they took effect
        self._pending: dict[str, Any] = {}        # changes asked for, taken at the next minibatch
        self._pending_lock = threading.Lock()
        self.history: list[EpochEnd] = []
        self.samples: list[Sample] = []
        self.lock = threading.Lock()  # held while the weights change, so snapshots are never torn
        self.run_id = new_run_id(config)
        self.use_graphs = config.fast and self.stream is not None  # TrainConfig.fast: on CUDA only
        self._graph: cuda.GraphStep | None = None  # the captured training step, once there is one
        self._eager_steps = 0                      # steps trained without a graph (the warm-up before a capture)
        self.stepper = None  # a group's step (charrnn.grouped.Group.join), else the run steps alone (_step)
        self.graph_error: str | None = None        # why a capture failed (the run then goes on without graphs)

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

    # -- changes while it trains (charrnn.live)
    def adjust(self, **changes: Any) -> TrainConfig:
        """Change live settings (``live.LIVE``) from any thread: checked now (ConfigError, nothing changed),
        taken at the next minibatch. Returns the config as it will be then."""
        with self._pending_lock:
            ahead = self.config.replace(**self._pending)
            self._pending.update(live.checked(ahead, changes))
            return self.config.replace(**self._pending)

    def apply_pending(self) -> list[Change]:
        """Take the changes asked for (the training thread, between minibatches; or anyone while the run is
        not being trained): the config, the optimizer's learning rate, and a ``Change`` for each."""
        with self._pending_lock:
            pending, self._pending = self._pending, {}
        if not pending:
            return []
        old = self.config
        at = self.epoch + self.batch / max(1, self.batches_per_epoch)
        made = [Change(at, self.epoch, name, getattr(old, name), value) for name, value in pending.items()]
        with cuda.on_stream(self.stream), self.lock:
            self.config = old.replace(**pending)
            for group in self.optimizer.param_groups:
                group["lr"] = self.config.lr
            if "lr" in pending or "clip_theta" in pending:
                self._graph = None  # a captured step holds the old values: capture it again
        self.changes += made
        return made

    def extend(self, epochs: int) -> None:
        """Train ``epochs`` more epochs (a run that ended, continued: its ``work`` is called again)."""
        self.config = live.extended(self.config, epochs)

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
        while self.epoch < self.config.epochs:
            good = self._state_copy()  # a diverged epoch goes back to these weights
            event = yield from self._epoch(stop)
            c = self.config
            if event is None:
                cuda.settle(self.stream)
                yield [*self._final_samples(),
                       Stopped(self.epoch, f"stopped by request after {self.epoch} of {c.epochs} epochs")]
                return
            if not math.isfinite(event.perplexity) or not math.isfinite(event.grad_norm):
                self._restore(good)
                cuda.settle(self.stream)
                yield [*self._final_samples(),
                       Diverged(self.epoch, f"the loss became {'NaN' if math.isnan(event.perplexity) else 'infinite'} "
                                f"in epoch {self.epoch + 1} (lr {c.lr:g}, θ "
                                f"{'off' if c.clip_theta is None else f'{c.clip_theta:g}'}): the weights after "
                                f"epoch {self.epoch} are kept. Try a smaller learning rate or turn clipping on.")]
                return
            if self.held is not None:
                with cuda.on_stream(self.stream):
                    event = dataclasses.replace(event, val_perplexity=heldout.perplexity(
                        self.model, self.held, c.num_steps, c.batch_size))
            self.epoch += 1
            self.history.append(event)
            events: list[Event] = [event]
            if self.epoch % self.config.pred_period == 0:
                events += self._samples()
            if stop is not None and stop.is_set() and self.epoch < c.epochs:
                cuda.settle(self.stream)
                yield [*events, *self._final_samples(),
                       Stopped(self.epoch, f"stopped by request after {self.epoch} of {c.epochs} epochs")]
                return
            yield events
        cuda.settle(self.stream)
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
        """The epoch's minibatches (X, Y), each (batch, steps). CPU: drawn one at a time from the corpus.
        CUDA: all cut on the CPU at once, from the same shuffle (the same minibatches in the same order), and
        sent in one copy that does not wait (``cuda.send_batches``)."""
        c = self.config
        if self.stream is None:
            return epoch_batches(self.data, c.batch_size, c.num_steps, c.sampling, self.shuffle)
        pairs = epoch_batches(self._host_indices, c.batch_size, c.num_steps, c.sampling, self.shuffle)
        return cuda.send_batches(list(pairs), self.device, self.stream)

    def _epoch(self, stop: threading.Event | None) -> Generator[list, None, EpochEnd | None]:
        """One epoch, pausing (yielding []) after each minibatch; returns its EpochEnd, or None if a stop was
        requested before it ended (its finished minibatches stay applied).

        Nothing in it waits for a GPU but the one read of the epoch's numbers at its end."""
        seconds = 0.0
        state: Any = None
        losses, norms, thetas = [], [], []
        self.batch = 0
        for X, Y in self._batches():
            if stop is not None and stop.is_set():
                return None
            self.apply_pending()
            start = time.perf_counter()
            if self._wants_graph():
                self._make_graph(X, Y, state)  # outside on_stream: a capture is alone on the GPU (cuda.CudaGate)
            with cuda.on_stream(self.stream):
                if self._graph is not None:
                    loss, norm, state = self._graphed_step(X, Y, state)
                else:  # alone, or with the other runs of its group (charrnn.grouped)
                    loss, norm, state = (self.stepper or self._step)(X, Y, state)
            losses.append(loss)
            norms.append(norm)
            theta = self.config.clip_theta  # the step's θ (it may change mid-epoch)
            thetas.append(math.inf if theta is None else theta)
            self.batch += 1
            seconds += time.perf_counter() - start
            yield []
        start = time.perf_counter()
        c = self.config
        with cuda.on_stream(self.stream):
            mean_loss, norm_t = torch.stack(losses).mean(), torch.stack(norms)
            clipped = (norm_t > torch.tensor(thetas, dtype=norm_t.dtype, device=norm_t.device)).float().mean()
            stats = torch.stack([mean_loss, norm_t.mean(), norm_t.max(), clipped.to(norm_t)]).tolist()  # one sync
        seconds += time.perf_counter() - start
        self.batch = 0
        return EpochEnd(epoch=self.epoch + 1, epochs=c.epochs, perplexity=_exp(stats[0]), grad_norm=stats[1],
                        grad_norm_max=stats[2], clipped=stats[3], seconds=seconds,
                        chars_per_sec=len(losses) * c.batch_size * c.num_steps / max(seconds, 1e-9),
                        lr=c.lr, theta=c.clip_theta)

    def _start_state(self, state: Any) -> State:
        """The state a minibatch starts from: fresh zeros for random sampling (unrelated windows) and for an
        epoch's first minibatch; else the carried one, its graph cut (truncated BPTT)."""
        if state is None or self.config.sampling == "random":
            return self.model.begin_state(self.config.batch_size, self.device)
        return detach_state(state)

    def _step(self, X: torch.Tensor, Y: torch.Tensor, state: Any) -> tuple[torch.Tensor, torch.Tensor, Any]:
        """One minibatch, eagerly: (loss, gradient norm before clipping, the state to carry), as tensors."""
        c, model = self.config, self.model
        model.train()
        state = self._start_state(state)
        logits, state = model(X, state)  # (steps * batch, V), time-major
        loss = F.cross_entropy(logits, Y.T.reshape(-1))
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        norm = clip_gradients(model.parameters(), c.clip_theta)
        with self.lock:
            self.optimizer.step()
        self._eager_steps += 1
        return loss.detach(), norm, state

    # -- the opt-in CUDA graph (TrainConfig.fast): the same step, recorded once and replayed (see cuda.py)
    def _wants_graph(self) -> bool:
        """Capture now: fast on CUDA, no graph yet, the warm-up steps done, no capture failed before."""
        return (self.use_graphs and self._graph is None and self._eager_steps >= cuda.WARMUP_STEPS
                and self.graph_error is None)

    def _graph_body(self, X: torch.Tensor, T: torch.Tensor, state: State) -> tuple[torch.Tensor, torch.Tensor, State]:
        """``_step`` as a graph records it, on its static buffers (T: the targets, time-major); the gradients
        are made inside the graph, in its memory pool, and the lock is held around the whole replay."""
        c, model = self.config, self.model
        model.train()
        self.optimizer.zero_grad(set_to_none=True)
        logits, out = model(X, state)
        loss = F.cross_entropy(logits, T)
        loss.backward()
        norm = clip_gradients(model.parameters(), c.clip_theta)
        self.optimizer.step()
        return loss.detach(), norm, out

    def _make_graph(self, X: torch.Tensor, Y: torch.Tensor, state: Any) -> None:
        """Capture the training step from this minibatch and the state it starts from; a capture that fails
        is recorded in ``graph_error`` and the run goes on eagerly."""
        carry = self.config.sampling == "consecutive"
        self._graph, self.graph_error = cuda.capture(self._graph_body, X, Y, lambda: self._start_state(state),
                                                     self.stream, carry)

    def _graphed_step(self, X: torch.Tensor, Y: torch.Tensor, state: Any) -> tuple[torch.Tensor, torch.Tensor, Any]:
        """One minibatch by replaying the captured step. ``state`` None: the epoch's first minibatch
        (consecutive sampling starts it from zeros); else the graph's own state buffer carries on."""
        with self.lock:
            stats = self._graph.replay(X, Y, first=state is None)
        return stats[0], stats[1], True  # any non-None state: the graph carries the real one

    # -- weights for other threads, and for divergence
    def _state_copy(self) -> dict[str, Any]:
        with cuda.on_stream(self.stream), self.lock:
            return {"model": {k: v.clone() for k, v in self.model.state_dict().items()},
                    "optim": copy.deepcopy(self.optimizer.state_dict())}

    def _restore(self, saved: dict[str, Any]) -> None:
        with cuda.on_stream(self.stream), self.lock:
            self.model.load_state_dict(saved["model"])
            run_state.load_optimizer(self.optimizer, saved["optim"])
            self._graph = None  # it holds the optimizer's previous state tensors: capture again if training goes on

    def snapshot(self) -> CharModel:
        """A CPU copy of the current model, consistent even while another thread trains it."""
        with cuda.reading(self.stream, self.lock, self.device):
            clone = copy.deepcopy(self.model)
        return clone.to("cpu").eval()

    def sample(self, prefix: str, num_chars: int | None = None) -> str:
        c = self.config
        seed = None if c.temperature == 0 else c.seed * 1_000_003 + self.epoch
        self.model.eval()
        try:
            with cuda.on_stream(self.stream):
                return generate.predict(self.model, self.vocab, prefix, c.pred_len if num_chars is None else num_chars,
                                        c.temperature, c.top_k, seed)
        except generate.PrefixError as e:
            return f"{prefix} ✗ {e}"
        finally:
            self.model.train()

    # -- checkpoints and forks (run_state.py)
    def save(self, path: str | None = None) -> str:
        """Write a checkpoint (atomically); see ``run_state.save``."""
        return run_state.save(self, path)

    def fork(self, **changes: Any) -> Trainer:
        """A new trainer that starts where this one is, with config fields changed; see ``run_state.fork``."""
        return run_state.fork(self, **changes)

    def saved_config(self) -> TrainConfig:
        """The config as a checkpoint records it; see ``run_state.saved_config``."""
        return run_state.saved_config(self)

    @classmethod
    def resume(cls, path: str, data: Corpus | None = None, **changes: Any) -> Trainer:
        """A trainer that continues the run saved at ``path``; see ``run_state.from_checkpoint``."""
        return run_state.resume(cls, path, data, **changes)

    @classmethod
    def from_checkpoint(cls, ck: Checkpoint, data: Corpus | None = None, **changes: Any) -> Trainer:
        """A trainer that continues a saved run (weights, optimizer, shuffle order, metrics and epoch), with
        config fields changed except the structural ones (``STRUCTURE``); see ``run_state.from_checkpoint``."""
        return run_state.from_checkpoint(cls, ck, data, **changes)


def _exp(x: float) -> float:
    try:
        return math.exp(x)
    except OverflowError:
        return math.inf


def train(config: TrainConfig, corpus: Corpus | None = None, stop: threading.Event | None = None) -> Iterator[Event]:
    """Train a fresh model of ``config`` and yield its events (use ``Trainer`` to keep the model)."""
    return Trainer(config, corpus).run(stop)
