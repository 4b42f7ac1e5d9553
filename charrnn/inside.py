"""Seeing inside a model: what it expects next, what its hidden units do, how gradients flow back in time.

Each function reads a model the way generation does (pass a consistent copy: ``Trainer.snapshot()``, on the
CPU) and returns plain numbers and strings, for a page, the API or a notebook:
- ``next_chars``: the likeliest next characters after a prefix and their probabilities at a temperature;
- ``hidden_units``: every step's hidden state (and an LSTM's memory cell) over a passage, and the units that
  move most;
- ``gradients_through_time``: for one minibatch, the norm of the gradient of its last step's loss with
  respect to the state at each time step (section 6.6): how far back in time the training signal reaches.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from .generate import check_prefix
from .corpus import Vocab
from .models import KINDS, CharModel, State

MAX_PASSAGE = 2000  # characters a hidden-unit view reads at most
MAX_TOP = 100       # candidates next_chars lists at most


def _zero_state(model: CharModel, batch: int = 1) -> State:
    """The model's starting state, in its own dtype (a float64 model for exact comparisons included)."""
    dtype = next(model.parameters()).dtype
    return tuple(s.to(dtype) for s in model.begin_state(batch))


@dataclass
class NextChars:
    prefix: str
    temperature: float
    chars: list[str]      # the likeliest first
    probs: list[float]    # their probabilities at ``temperature`` (summing with the rest to 1)

    def as_dict(self) -> dict:
        return {"prefix": self.prefix, "temperature": self.temperature,
                "next": [{"char": c, "prob": p} for c, p in zip(self.chars, self.probs)]}


@torch.no_grad()
def next_chars(model: CharModel, vocab: Vocab, prefix: str, temperature: float = 1.0, top: int = 10) -> NextChars:
    """The ``top`` likeliest characters after ``prefix``: softmax(logits / temperature). Temperature 0 is
    greedy decoding's view (probability 1 on the argmax); PrefixError for a prefix the model cannot read."""
    ids = check_prefix(vocab, prefix)
    if not isinstance(temperature, (int, float)) or isinstance(temperature, bool) or not 0 <= temperature <= 100:
        raise ValueError(f"temperature={temperature!r} is not allowed: a number from 0 (greedy) to 100")
    if not isinstance(top, int) or isinstance(top, bool) or not 1 <= top <= MAX_TOP:
        raise ValueError(f"top={top!r} is not allowed: an integer from 1 to {MAX_TOP}")
    model.eval()
    logits, _ = model(torch.tensor([ids]), _zero_state(model))
    last = logits[-1].double()
    if temperature == 0:
        probs = F.one_hot(last.argmax(), last.numel()).double()
    else:
        probs = torch.softmax(last / temperature, dim=-1)
    values, idx = torch.topk(probs, min(top, probs.numel()))
    return NextChars(prefix, float(temperature), [vocab.itos[i] for i in idx.tolist()], values.tolist())


@dataclass
class HiddenUnits:
    text: str
    hidden: list[list[float]]         # (len(text), h): the top layer's H after each character
    cell: list[list[float]] | None    # the same for an LSTM's memory cell C, else None
    top_units: list[int]              # units ordered by how much they move over the passage (std over steps)

    def as_dict(self) -> dict:
        return {"text": self.text, "hidden": self.hidden, "cell": self.cell, "top_units": self.top_units}


@torch.no_grad()
def hidden_units(model: CharModel, vocab: Vocab, text: str) -> HiddenUnits:
    """Run the model over ``text`` from a zero state and keep every step's hidden state (and cell)."""
    if len(text) > MAX_PASSAGE:
        raise ValueError(f"the passage has {len(text):,} characters; at most {MAX_PASSAGE:,} are read")
    ids = check_prefix(vocab, text)
    model.eval()
    states, _ = model.unroll(torch.tensor([ids]), _zero_state(model))
    H = torch.stack([model.top(s)[0] for s in states])  # (T, h)
    cell = None
    if KINDS[model.kind].cell == "lstm":
        C = torch.stack([(s[1][-1] if s[1].dim() == 3 else s[1])[0] for s in states])
        cell = C.tolist()
    order = torch.argsort(H.std(0, unbiased=False) if len(ids) > 1 else H.abs()[0], descending=True)
    return HiddenUnits(text, H.tolist(), cell, order.tolist())


def probe_batch(indices: torch.Tensor, batch_size: int, num_steps: int) -> tuple[torch.Tensor, torch.Tensor]:
    """A fixed minibatch (X, Y), each (batch, steps), to watch gradients on while a run trains: the text cut
    into ``batch_size`` rows as consecutive sampling cuts it, the first ``num_steps`` characters of each row
    (fewer rows when the text is short)."""
    rows = max(1, min(batch_size, (len(indices) - 1) // (num_steps + 1)))
    width = (len(indices) - 1) // rows
    data = indices[:rows * width + 1]
    X = torch.stack([data[r * width:r * width + num_steps] for r in range(rows)])
    Y = torch.stack([data[r * width + 1:r * width + num_steps + 1] for r in range(rows)])
    return X, Y


@dataclass
class GradientsThroughTime:
    norms: list[float]   # ‖∂ℓ_T/∂state_t‖ for t = 1..T: the last step's loss, every layer's H (and an LSTM's C)
    loss: float          # the minibatch's mean loss

    def as_dict(self) -> dict:
        return {"norms": self.norms, "loss": self.loss}


def gradients_through_time(model: CharModel, X: torch.Tensor, Y: torch.Tensor,
                           state: State | None = None) -> GradientsThroughTime:
    """Backpropagation through time (6.6), seen from one prediction: for a minibatch (X, Y), each (batch, steps),
    the norm of the gradient of the last step's loss (the mean cross-entropy of the last characters) with
    respect to the state after each step t. The step itself gets the output layer's gradient; every step
    before gets only what survives the way back through the recurrent weights, a product of one Jacobian per
    step: it vanishes (or explodes) geometrically in a plain RNN, while a GRU's update gate or an LSTM's
    memory cell can carry it further. ``loss`` is the whole minibatch's mean loss (the training loss). The
    model's own gradients are left as they were."""
    B = X.shape[0]
    start = _zero_state(model, B) if state is None else tuple(s.detach() for s in state)
    with torch.enable_grad():
        states, _ = model.unroll(X, start)
        logits = model.project(torch.stack([model.top(s) for s in states]).reshape(-1, model.num_hiddens))
        losses = F.cross_entropy(logits, Y.T.reshape(-1), reduction="none").view(len(states), B)
        # the total derivative with respect to each intermediate state (every path to the loss); unlike
        # backward(), autograd.grad leaves the parameters' .grad alone
        grads = torch.autograd.grad(losses[-1].mean(), [t for s in states for t in s], allow_unused=True)
    per_step = len(states[0])
    norms = []
    for k in range(len(states)):
        parts = [g for g in grads[k * per_step:(k + 1) * per_step] if g is not None]
        norms.append(float(torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(g) for g in parts]))))
    return GradientsThroughTime(norms, float(losses.mean().detach()))
