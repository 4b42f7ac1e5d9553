"""Minibatches with the chapter's two sampling schemes.

Random: non-overlapping windows starting at 0, steps, 2*steps, ... ((len-1)//steps of them), shuffled
each epoch, ``batch`` windows per minibatch, ((len-1)//steps)//batch minibatches. The hidden state is
re-initialised before every minibatch.

Consecutive: the first batch*(len//batch) characters form ``batch`` rows read left to right, ``steps``
columns per minibatch, ((len//batch)-1)//steps minibatches. The state is initialised once per epoch
and carried over, detached before each minibatch.

Both yield (X, Y) pairs of int64 tensors of shape (batch, steps); Y is X shifted one character right.
"""
from __future__ import annotations

from typing import Iterator

import torch

from .corpus import CorpusError

Batch = tuple[torch.Tensor, torch.Tensor]


def num_batches(length: int, batch_size: int, num_steps: int, sampling: str) -> int:
    """Minibatches per epoch for a corpus of ``length`` characters."""
    if sampling == "random":
        return ((length - 1) // num_steps) // batch_size
    if sampling == "consecutive":
        return max(((length // batch_size) - 1) // num_steps, 0)
    raise ValueError(f"sampling={sampling!r} is not allowed: choose random or consecutive")


def min_length(batch_size: int, num_steps: int, sampling: str) -> int:
    """The fewest characters that give one minibatch."""
    return batch_size * num_steps + 1 if sampling == "random" else batch_size * (num_steps + 1)


def check_length(length: int, batch_size: int, num_steps: int, sampling: str) -> None:
    """Raise CorpusError if the text is too short for a single minibatch of this size."""
    if num_batches(length, batch_size, num_steps, sampling) < 1:
        need = min_length(batch_size, num_steps, sampling)
        raise CorpusError(f"the text has {length:,} characters, too short for one minibatch of "
                          f"batch_size={batch_size} x num_steps={num_steps} with {sampling} sampling: it needs at "
                          f"least {need:,} characters (use a longer text, or a smaller batch size or fewer steps)")


def random_batches(corpus: torch.Tensor, batch_size: int, num_steps: int,
                   generator: torch.Generator) -> Iterator[Batch]:
    """One epoch of random sampling; ``generator`` drives the shuffle (one permutation per call)."""
    n_windows = (len(corpus) - 1) // num_steps
    starts = torch.randperm(n_windows, generator=generator) * num_steps  # window starts, shuffled
    offsets = torch.arange(num_steps)
    for i in range(n_windows // batch_size):
        idx = starts[i * batch_size:(i + 1) * batch_size, None] + offsets  # (batch, steps)
        yield corpus[idx], corpus[idx + 1]


def consecutive_batches(corpus: torch.Tensor, batch_size: int, num_steps: int) -> Iterator[Batch]:
    """One epoch of consecutive sampling: minibatch i+1 continues each row of minibatch i."""
    row_len = len(corpus) // batch_size
    rows = corpus[:batch_size * row_len].view(batch_size, row_len)  # (batch, row_len)
    for i in range((row_len - 1) // num_steps):
        j = i * num_steps
        yield rows[:, j:j + num_steps], rows[:, j + 1:j + num_steps + 1]


def epoch_batches(corpus: torch.Tensor, batch_size: int, num_steps: int, sampling: str,
                  generator: torch.Generator) -> Iterator[Batch]:
    if sampling == "random":
        return random_batches(corpus, batch_size, num_steps, generator)
    if sampling == "consecutive":
        return consecutive_batches(corpus, batch_size, num_steps)
    raise ValueError(f"sampling={sampling!r} is not allowed: choose random or consecutive")
