"""The chapter's two language models behind one contract.

Every model has ``begin_state(batch_size, device) -> state`` (a tuple of tensors, so an LSTM's (h, c)
fits as well as an RNN's (H,)) and ``forward(X, state) -> (logits, state)`` where X is a (batch, steps)
int64 tensor of character indices and logits is (steps * batch, V), time-major like the chapter's
concatenated outputs. Training and generation never ask which kind of model they hold.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

State = tuple[torch.Tensor, ...]


class CharModel(nn.Module):
    """Base of every model: remembers its sizes and kind, and sets the contract."""
    kind = "base"

    def __init__(self, vocab_size: int, num_hiddens: int):
        super().__init__()
        self.vocab_size = vocab_size
        self.num_hiddens = num_hiddens

    def begin_state(self, batch_size: int, device: torch.device | str = "cpu") -> State:
        raise NotImplementedError

    def forward(self, X: torch.Tensor, state: State) -> tuple[torch.Tensor, State]:
        raise NotImplementedError


class ScratchRNN(CharModel):
    """H_t = tanh(X_t W_xh + H_{t-1} W_hh + b_h); O_t = H_t W_hq + b_q, with the chapter's named weights.

    One-hot X_t times W_xh is computed as a row lookup of W_xh (the same numbers, no multiply), and the
    output projection runs once over all steps instead of once per step.
    """
    kind = "scratch"

    def __init__(self, vocab_size: int, num_hiddens: int, generator: torch.Generator | None = None):
        super().__init__(vocab_size, num_hiddens)
        V, h = vocab_size, num_hiddens

        def normal(*shape: int) -> nn.Parameter:  # Normal(0, 0.01), as in the chapter
            return nn.Parameter(torch.randn(*shape, generator=generator) * 0.01)

        self.W_xh = normal(V, h)
        self.W_hh = normal(h, h)
        self.b_h = nn.Parameter(torch.zeros(h))
        self.W_hq = normal(h, V)
        self.b_q = nn.Parameter(torch.zeros(V))

    def begin_state(self, batch_size: int, device: torch.device | str = "cpu") -> State:
        return (torch.zeros(batch_size, self.num_hiddens, device=device),)

    def forward(self, X: torch.Tensor, state: State) -> tuple[torch.Tensor, State]:
        (H,) = state
        # one_hot(X_t) @ W_xh == W_xh[X_t]; b_h is added to every step at once.
        XW = F.embedding(X.T, self.W_xh) + self.b_h  # (steps, batch, h)
        outputs = []
        for XW_t in XW.unbind(0):  # unbind: one backward node for all steps, not one per slice
            H = torch.tanh(torch.addmm(XW_t, H, self.W_hh))  # (batch, h)
            outputs.append(H)
        Hs = torch.stack(outputs).reshape(-1, self.num_hiddens)  # (steps * batch, h), time-major
        return torch.addmm(self.b_q, Hs, self.W_hq), (H,)  # (steps * batch, V)


class ConciseRNN(CharModel):
    """``torch.nn.RNN`` over one-hot vectors, time-major, then ``Linear(h, V)`` at every step."""
    kind = "concise"

    def __init__(self, vocab_size: int, num_hiddens: int, generator: torch.Generator | None = None):
        super().__init__(vocab_size, num_hiddens)
        self.rnn = nn.RNN(input_size=vocab_size, hidden_size=num_hiddens)
        self.dense = nn.Linear(num_hiddens, vocab_size)
        # torch's default initialisation for both layers is Uniform(-1/sqrt(h), 1/sqrt(h)); redone here
        # with our own generator so the seed alone decides the weights.
        bound = 1 / math.sqrt(num_hiddens)
        with torch.no_grad():
            for p in self.parameters():
                p.uniform_(-bound, bound, generator=generator)

    def begin_state(self, batch_size: int, device: torch.device | str = "cpu") -> State:
        return (torch.zeros(1, batch_size, self.num_hiddens, device=device),)

    def forward(self, X: torch.Tensor, state: State) -> tuple[torch.Tensor, State]:
        inputs = F.one_hot(X.T, self.vocab_size).float()  # (steps, batch, V)
        Y, H = self.rnn(inputs, state[0])  # Y: (steps, batch, h)
        return self.dense(Y.reshape(-1, self.num_hiddens)), (H,)  # (steps * batch, V)


MODEL_KINDS: dict[str, type[CharModel]] = {"scratch": ScratchRNN, "concise": ConciseRNN}


def build_model(kind: str, vocab_size: int, num_hiddens: int, seed: int = 0) -> CharModel:
    """A freshly initialised model of ``kind``; the same seed gives the same weights."""
    if kind not in MODEL_KINDS:
        raise ValueError(f"model={kind!r} is not allowed: choose one of {', '.join(MODEL_KINDS)}")
    return MODEL_KINDS[kind](vocab_size, num_hiddens, generator=torch.Generator().manual_seed(seed))


def detach_state(state: State) -> State:
    """Cut the graph behind a carried state (truncated backpropagation through time)."""
    return tuple(s.detach() for s in state)
