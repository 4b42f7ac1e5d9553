"""The held-out text of a run (``TrainConfig.validation``) and the model's perplexity on it.

The last share of the chosen text is not trained on. After every epoch the model reads it, with no gradients:
the held-out text is cut into ``rows`` consecutive pieces read side by side (as consecutive sampling lays out a
minibatch), each from a zero state that is carried across its ``num_steps`` windows, and the perplexity is
exp(the mean cross-entropy of every character predicted). Reading side by side keeps the pass to a few
minibatches' work: a tenth of the text costs well under a tenth of an epoch (``bench/instrument.py``).
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from .models import CharModel

MIN_HELD = 2  # characters: one to read, one to predict


def split(indices: torch.Tensor, share: float) -> tuple[torch.Tensor, torch.Tensor | None]:
    """(the text trained on, the held-out last ``share`` of it or None when nothing is held out)."""
    if share <= 0:
        return indices, None
    held = max(MIN_HELD, round(len(indices) * share))
    return indices[:len(indices) - held], indices[len(indices) - held:]


def rows_for(length: int, num_steps: int, batch_size: int) -> int:
    """Pieces read side by side: each at least two windows long (its state carried at least once), at most a
    minibatch's rows, at least one."""
    return max(1, min(batch_size, (length - 1) // (2 * num_steps)))


def layout(held: torch.Tensor, rows: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(X, Y), each (rows, L): row r reads piece r of the held-out text and predicts its next characters (the
    last ``(len - 1) % rows`` characters are left out, as consecutive sampling leaves them)."""
    length = (len(held) - 1) // rows
    return held[:rows * length].reshape(rows, length), held[1:rows * length + 1].reshape(rows, length)


@torch.no_grad()
def perplexity(model: CharModel, held: torch.Tensor, num_steps: int, batch_size: int) -> float:
    """The model's perplexity on ``held`` (character indices on the model's device); its mode is kept."""
    rows = rows_for(len(held), num_steps, batch_size)
    X, Y = layout(held, rows)
    was_training = model.training
    model.eval()
    try:
        state = model.begin_state(rows, held.device)
        total = torch.zeros((), dtype=torch.float64, device=held.device)
        for start in range(0, X.shape[1], num_steps):
            x, y = X[:, start:start + num_steps], Y[:, start:start + num_steps]
            logits, state = model(x, state)  # (steps * rows, V), time-major
            total += F.cross_entropy(logits, y.T.reshape(-1), reduction="sum").double()
        mean = total.item() / Y.numel()
    finally:
        model.train(was_training)
    try:
        return math.exp(mean)
    except OverflowError:
        return math.inf
