"""A run's state copied out of a Trainer and into another: save to a checkpoint, resume from one, fork.

A run's state is its weights, its optimizer's state, the shuffle generator's state (the order random
sampling draws minibatches in), its metrics and the epoch reached. ``Trainer.save``, ``Trainer.fork``,
``Trainer.resume`` and ``Trainer.from_checkpoint`` are thin methods over the functions here. Each copy of a
running trainer's state is made under ``cuda.reading`` (the run's lock; on CUDA, in order with its stream),
so it is consistent even while another thread trains the run.
"""
from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import torch

from .checkpoint import Checkpoint, default_path, load_checkpoint, save_checkpoint
from .config import ConfigError, TrainConfig
from .corpus import NAMED, Corpus, load_corpus
from .cuda import on_stream, reading
from .events import Change, EpochEnd

if TYPE_CHECKING:
    from .train import Trainer

STRUCTURE = ("model", "num_hiddens", "num_layers", "optimizer")  # fields the saved weights fix

# The implementation switches of a torch optimizer's param_groups: which code runs, not which numbers it
# keeps. A loaded state keeps the loading optimizer's own (see load_optimizer).
IMPL_FLAGS = ("foreach", "fused", "capturable", "differentiable")


def load_optimizer(optimizer: torch.optim.Optimizer, state: Mapping[str, Any]) -> None:
    """Load an optimizer state saved by any trainer on any device: its numbers, with ``optimizer``'s own
    implementation switches (IMPL_FLAGS). A state saved by a fast run on a GPU says capturable, which
    the CPU cannot run, and the switches also decide where Adam's step count is placed."""
    groups = [{**saved, **{k: mine[k] for k in IMPL_FLAGS if k in mine}}
              for saved, mine in zip(state["param_groups"], optimizer.param_groups)]
    optimizer.load_state_dict({**state, "param_groups": groups})


def saved_config(trainer: Trainer) -> TrainConfig:
    """The config as a checkpoint records it: a text that is not a named corpus by its SHA-256 and length,
    never by the path it was read from (on a server, a path says whose upload it was)."""
    if trainer.config.corpus in NAMED or trainer.corpus is None:
        return trainer.config
    return trainer.config.replace(corpus=trainer.corpus.identity)


def save(trainer: Trainer, path: str | None = None) -> str:
    """Write a checkpoint (atomically); the default path is checkpoints/<run-id>/epoch-NNNN.safetensors.

    The weights are copied under the lock (on CUDA, in order with the training stream) and written
    after it, so a run training meanwhile is held up for the copy only, not for the disk."""
    with reading(trainer.stream, trainer.lock, trainer.device):
        epoch, metrics = trainer.epoch, [e.as_dict() for e in trainer.history]
        weights = {k: v.detach().clone() for k, v in trainer.model.state_dict().items()}
        optim = copy.deepcopy(trainer.optimizer.state_dict())
        shuffle = trainer.shuffle.get_state()
        changes = [c.as_dict() for c in trainer.changes]
    target = path or default_path(trainer.run_id, epoch)
    save_checkpoint(target, weights, optim, saved_config(trainer), trainer.vocab, epoch, metrics, trainer.run_id,
                    shuffle, changes)
    return str(target)


def fork(trainer: Trainer, **changes: Any) -> Trainer:
    """A new trainer that starts where ``trainer`` is (a copy of its weights, optimizer, metrics and epoch),
    with config fields changed (not the structural ones): e.g. the same model sampled another way."""
    fixed = [k for k in changes if k in STRUCTURE and changes[k] != getattr(trainer.config, k)]
    if fixed:
        raise ConfigError(f"cannot change {', '.join(fixed)} in a fork: the weights fix them")
    twin = type(trainer)(trainer.config.replace(**changes), trainer.corpus, vocab=trainer.vocab)
    # the copies are made on the twin's stream (its current one), ordered after this run's queued steps
    with on_stream(twin.stream), reading(trainer.stream, trainer.lock, trainer.device):
        twin.model.load_state_dict(trainer.model.state_dict())
        load_optimizer(twin.optimizer, copy.deepcopy(trainer.optimizer.state_dict()))
        for group in twin.optimizer.param_groups:  # the saved groups hold the old learning rate
            group["lr"] = twin.config.lr
        shuffle, epoch, history = trainer.shuffle.get_state(), trainer.epoch, list(trainer.history)
    twin.shuffle.set_state(shuffle)
    twin.epoch, twin.history, twin.changes = epoch, history, list(trainer.changes)
    return twin


def resume(cls: type[Trainer], path: str, data: Corpus | None = None, **changes: Any) -> Trainer:
    """A trainer that continues the run saved at ``path`` (see ``from_checkpoint``)."""
    return from_checkpoint(cls, load_checkpoint(path), data, **changes)


def from_checkpoint(cls: type[Trainer], ck: Checkpoint, data: Corpus | None = None, **changes: Any) -> Trainer:
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
    with on_stream(trainer.stream):
        trainer.model.load_state_dict(ck.model.state_dict())  # the file's CPU tensors, copied to the device
        if ck.optimizer_state is not None:
            load_optimizer(trainer.optimizer, ck.optimizer_state)
            for group in trainer.optimizer.param_groups:
                group["lr"] = config.lr
    if ck.shuffle_state is not None:
        trainer.shuffle.set_state(ck.shuffle_state)
    trainer.epoch = ck.epoch
    trainer.run_id = ck.run_id
    trainer.history = [EpochEnd(**m) for m in ck.metrics]
    trainer.changes = [Change(**c) for c in ck.changes]  # the marks of its changes; its config has the latest
    return trainer
