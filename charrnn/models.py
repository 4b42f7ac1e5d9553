"""The language models: the chapter's RNN and its next sections' GRU and LSTM, each from scratch and concise.

Every model has ``begin_state(batch_size, device) -> state`` (a tuple of tensors: an LSTM's is (H, C)) and
``forward(X, state) -> (logits, state)`` where X is a (batch, steps) int64 tensor of character indices and
logits is (steps * batch, V), time-major like the chapter's concatenated outputs. ``unroll(X, state)``
gives every step's state as a node of the graph (what the views inside a model read: hidden units, the
gradient of the loss with respect to each step's state), and ``project(H)`` the logits of hidden states.
Training and generation never ask which kind of model they hold.

``KINDS`` is the one table of model kinds: the config's choices, the CLI's, the page's menu and the
checkpoint loader all read it.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

State = tuple[torch.Tensor, ...]
MAX_LAYERS = 8


class CharModel(nn.Module):
    """Base of every model: remembers its sizes and kind, and sets the contract."""
    kind = "base"

    def __init__(self, vocab_size: int, num_hiddens: int, num_layers: int = 1):
        super().__init__()
        self.vocab_size = vocab_size
        self.num_hiddens = num_hiddens
        self.num_layers = num_layers

    def begin_state(self, batch_size: int, device: torch.device | str = "cpu") -> State:
        raise NotImplementedError

    def forward(self, X: torch.Tensor, state: State) -> tuple[torch.Tensor, State]:
        raise NotImplementedError

    def unroll(self, X: torch.Tensor, state: State) -> tuple[list[State], State]:
        """Every step's state (a graph node each, in the shape of ``begin_state``'s) and the last one."""
        raise NotImplementedError

    def top(self, state: State) -> torch.Tensor:
        """The hidden state that feeds the output layer, (batch, h): the top layer's H."""
        H = state[0]
        return H[-1] if H.dim() == 3 else H

    def project(self, H: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError


ROW_FLOATS = 16  # a row of logits starts every 16 floats (64 bytes, a cache line)


class _Logits(torch.autograd.Function):
    """O = H W + b for H (N, h), W (h, V), b (V,): the output layer, with O's rows (and dW's) laid 64 bytes
    apart. With V = 1027 (the Jay Chou vocabulary) a contiguous (N, V) result puts most rows off a 64-byte
    boundary, and MKL's single-precision GEMM on this machine's AVX2 cores then writes it at half speed
    (1120 x 256 x 1027 at one thread: 17.9 ms into contiguous rows, 11.0 ms into rows 1040 floats apart,
    median thread CPU times of ``bench/logits.py``).
    So O is a (N, V) view of an (N, V rounded up to 16) buffer: the same numbers, a row stride of 1040.
    W may be a transposed view (``nn.Linear``'s weight.T), whose gradient is then made in its own layout."""

    @staticmethod
    def forward(ctx, H: torch.Tensor, W: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        ctx.save_for_backward(H, W)
        return torch.addmm(b, H, W, out=_rows(H.shape[0], W.shape[1], H))

    @staticmethod
    def backward(ctx, dO: torch.Tensor):
        H, W = ctx.saved_tensors
        dH = dW = db = None
        if ctx.needs_input_grad[0]:
            dH = dO @ W.T  # (N, h): rows of 256 floats, aligned whatever V is
        if ctx.needs_input_grad[1]:
            if W.stride(0) == 1 and W.stride(1) != 1:  # W = weight.T: weight's gradient (V, h) has aligned rows
                dW = (dO.T @ H).T
            else:
                dW = torch.mm(H.T, dO, out=_rows(W.shape[0], W.shape[1], W))
        if ctx.needs_input_grad[2]:
            db = dO.sum(0)
        return dH, dW, db


def _rows(n: int, cols: int, like: torch.Tensor) -> torch.Tensor:
    """An uninitialised (n, cols) tensor whose rows start every ``cols`` rounded up to ROW_FLOATS elements."""
    stride = -(-cols // ROW_FLOATS) * ROW_FLOATS
    return torch.empty(n, stride, dtype=like.dtype, device=like.device)[:, :cols]


def output_layer(H: torch.Tensor, W: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """The logits H W + b (W: (h, V)). On the CPU, in rows 64 bytes apart (``_Logits``); elsewhere ``addmm``."""
    if H.device.type != "cpu":
        return torch.addmm(b, H, W)
    return _Logits.apply(H, W, b)


def _book_normal(generator: torch.Generator | None):
    def normal(*shape: int) -> nn.Parameter:  # Normal(0, 0.01), as in the book
        return nn.Parameter(torch.randn(*shape, generator=generator) * 0.01)
    return normal


def _zeros(n: int) -> nn.Parameter:
    return nn.Parameter(torch.zeros(n))


class _Scratch(CharModel):
    """A from-scratch model: named weights as in the book, one-hot products as row lookups of the input
    weights (the same numbers, no multiply), the output projection once over all steps."""

    def begin_state(self, batch_size: int, device: torch.device | str = "cpu") -> State:
        return tuple(torch.zeros(batch_size, self.num_hiddens, device=device) for _ in range(self.state_size))

    state_size = 1

    def forward(self, X: torch.Tensor, state: State) -> tuple[torch.Tensor, State]:
        states, last = self.unroll(X, state)
        Hs = torch.stack([s[0] for s in states]).reshape(-1, self.num_hiddens)  # (steps * batch, h), time-major
        return self.project(Hs), last

    def project(self, H: torch.Tensor) -> torch.Tensor:
        return output_layer(H, self.W_hq, self.b_q)


class ScratchRNN(_Scratch):
    """H_t = tanh(X_t W_xh + H_{t-1} W_hh + b_h); O_t = H_t W_hq + b_q, with the chapter's named weights."""
    kind = "scratch"

    def __init__(self, vocab_size: int, num_hiddens: int, generator: torch.Generator | None = None):
        super().__init__(vocab_size, num_hiddens)
        V, h = vocab_size, num_hiddens
        normal = _book_normal(generator)
        self.W_xh, self.W_hh, self.b_h = normal(V, h), normal(h, h), _zeros(h)
        self.W_hq, self.b_q = normal(h, V), _zeros(V)

    def unroll(self, X: torch.Tensor, state: State) -> tuple[list[State], State]:
        (H,) = state
        XW = F.embedding(X.T, self.W_xh) + self.b_h  # (steps, batch, h): one_hot(X_t) @ W_xh == W_xh[X_t]
        out = []
        for XW_t in XW.unbind(0):  # unbind: one backward node for all steps, not one per slice
            H = torch.tanh(torch.addmm(XW_t, H, self.W_hh))  # (batch, h)
            out.append((H,))
        return out, (H,)
class ScratchGRU(_Scratch):
    """The book's GRU (6.7) with its named weights, N(0, 0.01) and zero biases:
    R = σ(X W_xr + H W_hr + b_r), Z = σ(X W_xz + H W_hz + b_z), H~ = tanh(X W_xh + (R ⊙ H) W_hh + b_h),
    H = Z ⊙ H + (1 − Z) ⊙ H~. The reset gate acts before the hidden matmul (``nn.GRU`` applies it after).

    The two gates' products with H are one matmul.
    """
    kind = "scratch-gru"

    def __init__(self, vocab_size: int, num_hiddens: int, generator: torch.Generator | None = None):
        super().__init__(vocab_size, num_hiddens)
        V, h = vocab_size, num_hiddens
        normal = _book_normal(generator)
        self.W_xz, self.W_hz, self.b_z = normal(V, h), normal(h, h), _zeros(h)
        self.W_xr, self.W_hr, self.b_r = normal(V, h), normal(h, h), _zeros(h)
        self.W_xh, self.W_hh, self.b_h = normal(V, h), normal(h, h), _zeros(h)
        self.W_hq, self.b_q = normal(h, V), _zeros(V)

    def unroll(self, X: torch.Tensor, state: State) -> tuple[list[State], State]:
        (H,) = state
        h = self.num_hiddens
        W_x = torch.cat([self.W_xz, self.W_xr, self.W_xh], 1)
        XW = F.embedding(X.T, W_x) + torch.cat([self.b_z, self.b_r, self.b_h])  # (steps, batch, 3h)
        W_gates = torch.cat([self.W_hz, self.W_hr], 1)  # (h, 2h)
        out = []
        for XW_t in XW.unbind(0):
            gates = torch.sigmoid(XW_t[:, :2 * h] + H @ W_gates)
            Z, R = gates[:, :h], gates[:, h:]
            H_tilde = torch.tanh(torch.addmm(XW_t[:, 2 * h:], R * H, self.W_hh))
            H = Z * H + (1 - Z) * H_tilde
            out.append((H,))
        return out, (H,)


class ScratchLSTM(_Scratch):
    """The book's LSTM (6.8) with its named weights, N(0, 0.01) and zero biases (no forget bias of 1):
    I, F, O = σ(X W_x· + H W_h· + b_·), C~ = tanh(X W_xc + H W_hc + b_c), C = F ⊙ C + I ⊙ C~,
    H = O ⊙ tanh(C); the state is (H, C) and only H feeds the output layer."""
    kind = "scratch-lstm"

    def __init__(self, vocab_size: int, num_hiddens: int, generator: torch.Generator | None = None):
        super().__init__(vocab_size, num_hiddens)
        V, h = vocab_size, num_hiddens
        normal = _book_normal(generator)
        self.W_xi, self.W_hi, self.b_i = normal(V, h), normal(h, h), _zeros(h)
        self.W_xf, self.W_hf, self.b_f = normal(V, h), normal(h, h), _zeros(h)
        self.W_xo, self.W_ho, self.b_o = normal(V, h), normal(h, h), _zeros(h)
        self.W_xc, self.W_hc, self.b_c = normal(V, h), normal(h, h), _zeros(h)
        self.W_hq, self.b_q = normal(h, V), _zeros(V)

    state_size = 2

    def unroll(self, X: torch.Tensor, state: State) -> tuple[list[State], State]:
        H, C = state
        h = self.num_hiddens
        W_x = torch.cat([self.W_xi, self.W_xf, self.W_xo, self.W_xc], 1)
        W_h = torch.cat([self.W_hi, self.W_hf, self.W_ho, self.W_hc], 1)  # one matmul for the four
        XW = F.embedding(X.T, W_x) + torch.cat([self.b_i, self.b_f, self.b_o, self.b_c])  # (steps, batch, 4h)
        out = []
        for XW_t in XW.unbind(0):
            pre = torch.addmm(XW_t, H, W_h)
            gates = torch.sigmoid(pre[:, :3 * h])
            I, F_, O = gates[:, :h], gates[:, h:2 * h], gates[:, 2 * h:]  # noqa: E741  (the book's gate names)
            C = F_ * C + I * torch.tanh(pre[:, 3 * h:])
            H = O * torch.tanh(C)
            out.append((H, C))
        return out, (H, C)


class _Concise(CharModel):
    """A torch recurrent layer (``num_layers`` stacked) over one-hot vectors, time-major, then ``Linear(h, V)``
    at every step. torch's default initialisation, Uniform(-1/sqrt(h), 1/sqrt(h)) for every weight, is
    redone with our own generator so that the seed alone decides the weights."""
    layer: type[nn.RNNBase] = nn.RNN

    def __init__(self, vocab_size: int, num_hiddens: int, generator: torch.Generator | None = None,
                 num_layers: int = 1):
        super().__init__(vocab_size, num_hiddens, num_layers)
        self.rnn = self.layer(input_size=vocab_size, hidden_size=num_hiddens, num_layers=num_layers)
        self.dense = nn.Linear(num_hiddens, vocab_size)
        bound = 1 / math.sqrt(num_hiddens)
        with torch.no_grad():
            for p in self.parameters():
                p.uniform_(-bound, bound, generator=generator)

    def begin_state(self, batch_size: int, device: torch.device | str = "cpu") -> State:
        shape = (self.num_layers, batch_size, self.num_hiddens)
        n = 2 if isinstance(self.rnn, nn.LSTM) else 1
        return tuple(torch.zeros(shape, device=device) for _ in range(n))

    def _one_hot(self, X: torch.Tensor) -> torch.Tensor:
        return F.one_hot(X.T, self.vocab_size).to(self.dense.weight.dtype)  # (steps, batch, V), time-major

    def _run(self, inputs: torch.Tensor, state: State) -> tuple[torch.Tensor, State]:
        if isinstance(self.rnn, nn.LSTM):
            Y, (H, C) = self.rnn(inputs, state)
            return Y, (H, C)
        Y, H = self.rnn(inputs, state[0])
        return Y, (H,)

    def forward(self, X: torch.Tensor, state: State) -> tuple[torch.Tensor, State]:
        inputs = self._one_hot(X)  # (steps, batch, V)
        Y, state = self._run(inputs, state)  # Y: (steps, batch, h), the top layer's H at every step
        return self.project(Y.reshape(-1, self.num_hiddens)), state

    def unroll(self, X: torch.Tensor, state: State) -> tuple[list[State], State]:
        """One step at a time, so that each step's state (every layer's) is a node of the graph."""
        out = []
        for x in self._one_hot(X).unbind(0):
            _, state = self._run(x.unsqueeze(0), state)
            out.append(state)
        return out, state

    def project(self, H: torch.Tensor) -> torch.Tensor:
        return output_layer(H, self.dense.weight.T, self.dense.bias)


class ConciseRNN(_Concise):
    """``torch.nn.RNN`` + Linear (the chapter's concise model)."""
    kind = "concise"
    layer = nn.RNN


class ConciseGRU(_Concise):
    """``torch.nn.GRU`` + Linear (the reset gate after the hidden matmul, unlike the book's formula)."""
    kind = "concise-gru"
    layer = nn.GRU


class ConciseLSTM(_Concise):
    """``torch.nn.LSTM`` + Linear; state (H, C), each (layers, batch, h)."""
    kind = "concise-lstm"
    layer = nn.LSTM


@dataclass(frozen=True)
class Kind:
    """A model kind as every menu shows it."""
    cls: type[CharModel]
    cell: str           # rnn, gru, lstm
    scratch: bool       # the book's formulas with explicit weights, or torch's layer
    label: str          # the page's menu: 中文 · English
    about: str          # one line: what it is


KINDS: dict[str, Kind] = {k.cls.kind: k for k in (
    Kind(ScratchRNN, "rnn", True, "RNN 从零开始 · RNN from scratch", "the chapter's RNN: explicit W_xh, W_hh, W_hq"),
    Kind(ConciseRNN, "rnn", False, "nn.RNN", "torch.nn.RNN + Linear (the chapter's concise model)"),
    Kind(ScratchGRU, "gru", True, "GRU 从零开始 · GRU from scratch",
         "6.7's GRU: reset and update gates, explicit weights"),
    Kind(ConciseGRU, "gru", False, "nn.GRU", "torch.nn.GRU + Linear"),
    Kind(ScratchLSTM, "lstm", True, "LSTM 从零开始 · LSTM from scratch",
         "6.8's LSTM: input, forget, output gates and a memory cell, explicit weights"),
    Kind(ConciseLSTM, "lstm", False, "nn.LSTM", "torch.nn.LSTM + Linear"),
)}
MODEL_KINDS: dict[str, type[CharModel]] = {name: k.cls for name, k in KINDS.items()}


def build_model(kind: str, vocab_size: int, num_hiddens: int, seed: int = 0, num_layers: int = 1) -> CharModel:
    """A freshly initialised model of ``kind``; the same seed gives the same weights. ``num_layers`` stacks
    the concise models' layers (6.9); the from-scratch ones have one."""
    if kind not in KINDS:
        raise ValueError(f"model={kind!r} is not allowed: choose one of {', '.join(KINDS)}")
    generator = torch.Generator().manual_seed(seed)
    if KINDS[kind].scratch:
        if num_layers != 1:
            raise ValueError(f"num_layers={num_layers} is not allowed for model={kind}: the from-scratch models "
                             "have one layer; stack layers with a concise model")
        return KINDS[kind].cls(vocab_size, num_hiddens, generator=generator)
    return KINDS[kind].cls(vocab_size, num_hiddens, generator=generator, num_layers=num_layers)


def detach_state(state: State) -> State:
    """Cut the graph behind a carried state (truncated backpropagation through time)."""
    return tuple(s.detach() for s in state)
