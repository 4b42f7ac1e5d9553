"""Training as a generator of small typed events.

``Trainer(config).run(stop)`` yields an ``EpochEnd`` after every epoch, a ``Sample`` per prefix every
``pred_period`` epochs, and exactly one ``Finished``, ``Stopped`` or ``Diverged`` at the end. The CLI
prints these events, the app plots them and the tests assert on them.
"""
from __future__ import annotations

import copy
import math
import threading
import time
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
    seconds: float           # wall time of the epoch (training only, samples excluded)
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
    it is read once (the book's helper read it twice and so never clipped the concise model).
    """
    grads = [p.grad for p in params if p.grad is not None]
    norm = torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(g) for g in grads]))
    if theta is not None:
        scale = (theta / norm).clamp(max=1.0)  # == theta/norm when norm > theta, else 1
        for g in grads:
            g.mul_(scale)
    return norm


def make_optimizer(config: TrainConfig, model: CharModel) -> torch.optim.Optimizer:
    if config.optimizer == "sgd":  # plain p -= lr * grad: no momentum, no weight decay
        return torch.optim.SGD(model.parameters(), lr=config.lr)
    return torch.optim.Adam(model.parameters(), lr=config.lr)


# ---------------------------------------------------------------- the trainer
class Trainer:
    """Holds one run: config, corpus, model, optimizer, metrics and the epoch reached.

    ``run`` trains from the next epoch to ``config.epochs``. ``snapshot`` gives a copy of the weights
    that is safe to use from another thread while training goes on.
    """

    def __init__(self, config: TrainConfig, corpus: Corpus | None = None, *, vocab: Vocab | None = None):
        config.validate()
        self.config = config
        self.device = pick_device(config.device)
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
        self.data = indices.to(self.device)
        self.model = build_model(config.model, len(self.vocab), config.num_hiddens, config.seed).to(self.device)
        self.optimizer = make_optimizer(config, self.model)
        self.shuffle = torch.Generator().manual_seed(config.seed)  # drives random sampling's order
        self.epoch = 0
        self.history: list[EpochEnd] = []
        self.samples: list[Sample] = []
        self.lock = threading.Lock()  # held while the weights change, so snapshots are never torn
        self.run_id = new_run_id(config)

    @property
    def batches_per_epoch(self) -> int:
        c = self.config
        return num_batches(len(self.data), c.batch_size, c.num_steps, c.sampling)

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
                yield [*self._final_samples(),
                       Stopped(self.epoch, f"stopped by request after {self.epoch} of {c.epochs} epochs")]
                return
            if not math.isfinite(event.perplexity) or not math.isfinite(event.grad_norm):
                self._restore(good)
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
                yield [*events, *self._final_samples(),
                       Stopped(self.epoch, f"stopped by request after {self.epoch} of {c.epochs} epochs")]
                return
            yield events
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

    def _epoch(self, stop: threading.Event | None) -> Generator[list, None, EpochEnd | None]:
        """One epoch, pausing (yielding []) after each minibatch; returns its EpochEnd, or None if a stop was
        requested before it ended (its finished minibatches stay applied)."""
        c, model = self.config, self.model
        seconds = 0.0
        state = None
        losses, norms = [], []
        for X, Y in epoch_batches(self.data, c.batch_size, c.num_steps, c.sampling, self.shuffle):
            if stop is not None and stop.is_set():
                return None
            start = time.perf_counter()
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
            losses.append(loss.detach())
            norms.append(norm)
            seconds += time.perf_counter() - start
            yield []
        start = time.perf_counter()
        mean_loss, norm_t = torch.stack(losses).mean(), torch.stack(norms)
        clipped = (norm_t > c.clip_theta).float().mean() if c.clip_theta is not None else torch.zeros(())
        stats = torch.stack([mean_loss, norm_t.mean(), norm_t.max(), clipped.to(norm_t)]).tolist()  # one sync
        seconds += time.perf_counter() - start
        return EpochEnd(epoch=self.epoch + 1, epochs=c.epochs, perplexity=_exp(stats[0]), grad_norm=stats[1],
                        grad_norm_max=stats[2], clipped=stats[3], seconds=seconds,
                        chars_per_sec=len(losses) * c.batch_size * c.num_steps / max(seconds, 1e-9))

    # -- weights for other threads, and for divergence
    def _state_copy(self) -> dict[str, Any]:
        with self.lock:
            return {"model": {k: v.clone() for k, v in self.model.state_dict().items()},
                    "optim": copy.deepcopy(self.optimizer.state_dict())}

    def _restore(self, saved: dict[str, Any]) -> None:
        with self.lock:
            self.model.load_state_dict(saved["model"])
            self.optimizer.load_state_dict(saved["optim"])

    def snapshot(self) -> CharModel:
        """A CPU copy of the current model, consistent even while another thread trains it."""
        with self.lock:
            clone = copy.deepcopy(self.model)
        return clone.to("cpu").eval()

    def sample(self, prefix: str, num_chars: int | None = None) -> str:
        c = self.config
        seed = None if c.temperature == 0 else c.seed * 1_000_003 + self.epoch
        self.model.eval()
        try:
            return generate.predict(self.model, self.vocab, prefix, c.pred_len if num_chars is None else num_chars,
                                    c.temperature, c.top_k, seed)
        except generate.PrefixError as e:
            return f"{prefix} ✗ {e}"
        finally:
            self.model.train()

    # -- checkpoints
    def save(self, path: str | None = None) -> str:
        """Write a checkpoint (atomically); the default path is checkpoints/<run-id>/epoch-NNNN.safetensors."""
        target = path or default_path(self.run_id, self.epoch)
        with self.lock:
            save_checkpoint(target, self.model, self.optimizer, self.saved_config(), self.vocab, self.epoch,
                            [e.as_dict() for e in self.history], self.run_id, self.shuffle.get_state())
        return str(target)

    def fork(self, **changes: Any) -> "Trainer":
        """A new trainer that starts where this one is (a copy of its weights, optimizer, metrics and epoch),
        with config fields changed (not the structural ones): e.g. the same model sampled another way."""
        with self.lock:
            state = {"model": copy.deepcopy(self.model.state_dict()),
                     "optim": copy.deepcopy(self.optimizer.state_dict())}
        fixed = [k for k in changes if k in ("model", "num_hiddens", "optimizer") and changes[k] != getattr(self.config, k)]
        if fixed:
            raise ConfigError(f"cannot change {', '.join(fixed)} in a fork: the weights fix them")
        twin = Trainer(self.config.replace(**changes), self.corpus, vocab=self.vocab)
        twin.model.load_state_dict(state["model"])
        twin.optimizer.load_state_dict(state["optim"])
        twin.shuffle.set_state(self.shuffle.get_state())
        twin.epoch, twin.history = self.epoch, list(self.history)
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
        the structural ones (model, num_hiddens, optimizer) must stay as saved. ``data`` (a Corpus)
        defaults to the config's corpus and must be written in the checkpoint's vocabulary.
        """
        fixed = {k: v for k, v in changes.items() if k in ("model", "num_hiddens", "optimizer")
                 and v != getattr(ck.config, k)}
        if fixed:
            raise ConfigError(f"cannot change {', '.join(fixed)} when resuming: the saved weights fix them")
        config = ck.config.replace(**changes)
        if data is None:
            data = load_corpus(config.corpus, config.max_chars)
        trainer = cls(config, data, vocab=ck.vocab)
        trainer.model.load_state_dict(ck.model.state_dict())
        if ck.optimizer_state is not None:
            trainer.optimizer.load_state_dict(ck.optimizer_state)
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
