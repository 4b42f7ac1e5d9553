"""Runs of one shape trained as one computation: a class's from-scratch models stepped together.

The runs of a class have the same shapes (vocabulary V, hidden units h, batch B, steps T), so one minibatch of
each can be a single computation: their weights stacked (R, ...), every product batched over the runs
(``torch.baddbmm``), each run's characters looked up in its own input weights. Each run keeps what is its own:
its minibatch (from its own corpus indices, sampling and seed), its state, its learning rate, its clipping
(the norm is taken per run) and its optimizer (SGD or Adam, its state untouched): the stacked gradients are
handed back to each run's parameters, and each run clips and steps as it does alone (``Trainer._step``).

``group_step`` does one minibatch of R trainers. ``Group`` lets trainers that run in their own threads (a
scheduler's workers) meet there: each minibatch a member asks for waits until every member has asked, or a
short window has passed, and the first to see that computes the step of all who are waiting. Members join and
leave between minibatches (a class presses Train over half a minute; runs end, are stopped, paused or
stepped): a member that does not ask within the window is simply not in that step. Everything else of a run
(its events, samples, snapshots, checkpoints, pause, step, continue and adjust) is the Trainer's as alone.

Only the from-scratch kinds group: ``nn.RNN``/``nn.GRU``/``nn.LSTM`` run one fused kernel of torch's per layer
and have no batched form over runs (vmap has no rule for them); their runs stay alone.

On CUDA every run queues its work on a stream of its own (``Trainer.stream``). The batched forward and backward
run on the computing thread's current stream, after it has waited for every member's stream; each member's
clipping and optimizer step then run on the member's own stream, after it has waited for the computation (so
its optimizer state is made and kept there, as alone); the tensors made on the computing stream and handed to a
member (its gradients, loss and state) are recorded as used on the member's stream (``record_stream``), so
their memory is not reused before the member is done with them.

Whether a scheduler groups is ``grouping``'s answer: on where runs train on a CUDA GPU (launches and Python,
not arithmetic, set a small run's speed there: R runs in one computation cost about one), off on a CPU (the
batched step is the same arithmetic on the same cores, and the runs wait for each other);
``$CHARRNN_GROUP`` (``on``, ``off``, ``auto``) overrides.
"""
from __future__ import annotations

import contextlib
import os
import threading
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import torch
import torch.nn.functional as F

from .device import training_device
from .models import State
from .optim import clip_gradients

if TYPE_CHECKING:
    from .train import Trainer

GROUPED_KINDS = ("scratch", "scratch-gru", "scratch-lstm")
GROUP_ENV = "CHARRNN_GROUP"  # on, off or auto (the default): whether schedulers group compatible runs
# the stacked weights of each kind, in the order its input, hidden and bias weights are concatenated alone
_GATES = {"scratch": ("h",), "scratch-gru": ("z", "r", "h"), "scratch-lstm": ("i", "f", "o", "c")}


def grouping(group: bool | None = None, environ: Mapping[str, str] = os.environ) -> bool:
    """Whether a scheduler groups compatible runs: ``group`` when given; else ``$CHARRNN_GROUP``: on, off, or
    auto (unset): on only where a run of ``device="auto"`` trains on a CUDA GPU. ValueError for another value."""
    if group is not None:
        return group
    value = environ.get(GROUP_ENV, "").strip().lower() or "auto"
    if value not in ("on", "off", "auto"):
        raise ValueError(f"${GROUP_ENV}={environ[GROUP_ENV]!r} is not allowed: choose on, off or auto")
    return value == "on" or (value == "auto" and training_device("auto", environ).type == "cuda")


def shape_key(trainer: Trainer) -> tuple | None:
    """What must be equal for runs to share a step (None: this run cannot be grouped)."""
    c, model = trainer.config, trainer.model
    if c.model not in GROUPED_KINDS or trainer.use_graphs:
        return None
    return (c.model, model.vocab_size, model.num_hiddens, c.batch_size, c.num_steps, str(trainer.device))


def _lookup(W: torch.Tensor, X: torch.Tensor) -> torch.Tensor:
    """Each run's one-hot inputs times its own input weights, as row lookups: W (R, V, k), X (R, B, T) ->
    (T, R, B, k), time-major (one table of R·V rows, each run's indices offset into its own V rows)."""
    R, V = W.shape[0], W.shape[1]
    offsets = (torch.arange(R, device=X.device) * V).view(R, 1, 1)
    return F.embedding((X + offsets).permute(2, 0, 1), W.reshape(R * V, -1))


def forward(kind: str, P: dict[str, torch.Tensor], X: torch.Tensor, state: State) -> tuple[torch.Tensor, State]:
    """R stacked models of ``kind`` on R minibatches: the logits (R, T·B, V), time-major per run as a model's
    are, and each run's last state (every tensor (R, B, h)). The formulas are the models' (``charrnn.models``)."""
    gates = _GATES[kind]
    h = P["W_hq"].shape[1]
    W_x = torch.cat([P[f"W_x{g}"] for g in gates], 2)
    b = torch.cat([P[f"b_{g}"] for g in gates], 1).unsqueeze(1)
    XW = _lookup(W_x, X) + b.unsqueeze(0)  # (T, R, B, k·h)
    outs = []
    if kind == "scratch":
        (H,) = state
        for XW_t in XW.unbind(0):
            H = torch.tanh(torch.baddbmm(XW_t, H, P["W_hh"]))
            outs.append(H)
        last: State = (H,)
    elif kind == "scratch-gru":
        (H,) = state
        W_gates = torch.cat([P["W_hz"], P["W_hr"]], 2)
        for XW_t in XW.unbind(0):
            zr = torch.sigmoid(XW_t[..., :2 * h] + torch.bmm(H, W_gates))
            Z, R_ = zr[..., :h], zr[..., h:]
            H_tilde = torch.tanh(torch.baddbmm(XW_t[..., 2 * h:], R_ * H, P["W_hh"]))
            H = Z * H + (1 - Z) * H_tilde
            outs.append(H)
        last = (H,)
    else:
        H, C = state
        W_h = torch.cat([P[f"W_h{g}"] for g in gates], 2)
        for XW_t in XW.unbind(0):
            pre = torch.baddbmm(XW_t, H, W_h)
            sig = torch.sigmoid(pre[..., :3 * h])
            I, F_, O = sig[..., :h], sig[..., h:2 * h], sig[..., 2 * h:]  # noqa: E741 (the book's gate names)
            C = F_ * C + I * torch.tanh(pre[..., 3 * h:])
            H = O * torch.tanh(C)
            outs.append(H)
        last = (H, C)
    Hs = torch.stack(outs, 1).flatten(1, 2)  # (R, T·B, h): each run's steps in time order
    return torch.baddbmm(P["b_q"].unsqueeze(1), Hs, P["W_hq"]), last


def _on(stream: torch.cuda.Stream | None):
    return contextlib.nullcontext() if stream is None else torch.cuda.stream(stream)


def group_step(trainers: list[Trainer], batches: list[tuple[torch.Tensor, torch.Tensor]],
               states: list[Any]) -> list[tuple[torch.Tensor, torch.Tensor, State] | Exception]:
    """One minibatch of each trainer, as one computation: for each, (loss, gradient norm before clipping, the
    state to carry), as its ``_step`` returns them, or the exception its own clipping or optimizer step raised
    (the others are stepped all the same); its parameters and optimizer are stepped as alone.
    ``states``: what each trainer's ``_step`` would be given (None: the first minibatch of an epoch).
    An exception of the batched computation itself is raised, before any run has been stepped."""
    kind = trainers[0].config.model
    streams = [t.stream for t in trainers]  # None on the CPU
    compute = torch.cuda.current_stream(trainers[0].device) if streams[0] is not None else None
    for s in streams if compute is not None else ():
        compute.wait_stream(s)  # each member's queued steps, minibatches and state are done before they are read
    names = [n for n, _ in trainers[0].model.named_parameters()]
    params = [dict(t.model.named_parameters()) for t in trainers]
    P = {n: torch.stack([p[n].detach() for p in params]).requires_grad_() for n in names}
    starts = [t._start_state(s) for t, s in zip(trainers, states)]
    start = tuple(torch.stack([s[i] for s in starts]) for i in range(len(starts[0])))
    X = torch.stack([x for x, _ in batches])
    targets = torch.stack([y.T.reshape(-1) for _, y in batches])  # (R, T·B), time-major as the logits
    for t in trainers:
        t.model.train()
    logits, last = forward(kind, P, X, start)
    R, n, V = logits.shape
    losses = F.cross_entropy(logits.reshape(R * n, V), targets.reshape(-1), reduction="none").view(R, n).mean(1)
    losses.sum().backward()  # each run's gradients come from its own loss only: its weights are its own slice
    out: list[tuple[torch.Tensor, torch.Tensor, State] | Exception] = []
    for r, (t, stream) in enumerate(zip(trainers, streams)):
        grads = [P[name].grad[r] for name in names]
        loss, state = losses[r].detach(), tuple(s[r] for s in last)
        if stream is not None:
            stream.wait_stream(compute)
            for x in (*grads, loss, *state):  # made on the computing stream, used on the member's from now on
                x.record_stream(stream)
        try:
            with _on(stream):  # as alone: the run's clipping, and its optimizer's state and step, on its stream
                for name, g in zip(names, grads):
                    params[r][name].grad = g
                norm = clip_gradients(t.model.parameters(), t.config.clip_theta)
                with t.lock:
                    t.optimizer.step()
        except Exception as e:  # noqa: BLE001 (this run's own error: it ends this run as alone, not the others)
            out.append(e)
            continue
        t._eager_steps += 1
        out.append((loss, norm, state))
    return out


_ALONE = object()  # a group's answer when the batched computation failed: the member steps alone


class Group:
    """Trainers in threads of their own meeting for each minibatch (``join`` makes a trainer step here)."""

    def __init__(self, window: float = 0.02):
        self.window = window          # seconds a step waits for the members that have not asked yet
        self._members: set[int] = set()
        self._key: tuple | None = None
        self._pending: list[list[Any]] = []
        self._cond = threading.Condition()
        self.steps = 0                # computations made (each of one or more members' minibatches)
        self.sizes: list[int] = []    # how many minibatches each computation held (the tests read them)

    def join(self, trainer: Trainer) -> None:
        """From its next minibatch on, ``trainer`` steps with the group (ValueError: a shape that differs)."""
        key = shape_key(trainer)
        with self._cond:
            if key is None or (self._key is not None and self._members and key != self._key):
                raise ValueError(f"this run cannot share the group's steps: {key} is not {self._key}")
            self._key = key
            self._members.add(id(trainer))
        trainer.stepper = lambda X, Y, state, t=trainer: self.step(t, X, Y, state)

    def leave(self, trainer: Trainer) -> None:
        """``trainer`` steps alone again (a request it has made is still answered)."""
        trainer.stepper = None
        with self._cond:
            self._members.discard(id(trainer))
            self._cond.notify_all()

    def step(self, trainer: Trainer, X: torch.Tensor, Y: torch.Tensor, state: Any):
        request: list[Any] = [trainer, X, Y, state, None]
        with self._cond:
            self._pending.append(request)
            self._cond.notify_all()
            deadline = time.monotonic() + self.window
            while request[4] is None:
                everyone = len(self._pending) >= len(self._members)
                if request in self._pending and (everyone or time.monotonic() >= deadline):
                    batch, self._pending = self._pending, []
                    try:
                        results = group_step([r[0] for r in batch], [(r[1], r[2]) for r in batch],
                                             [r[3] for r in batch])
                    except Exception:  # noqa: BLE001 (nothing was stepped: each steps alone, and any error
                        results = [_ALONE] * len(batch)  # that is its own it raises in its own thread)
                    for r, result in zip(batch, results):
                        r[4] = result
                    self.steps += 1
                    self.sizes.append(len(batch))
                    self._cond.notify_all()
                    break
                self._cond.wait(max(deadline - time.monotonic(), 1e-4))
        if request[4] is _ALONE:
            return trainer._step(X, Y, state)
        if isinstance(request[4], BaseException):
            raise request[4]
        return request[4]
