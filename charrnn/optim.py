"""The chapter's optimisation step, outside the loop: clipping the gradients to norm θ, and the optimizers."""
from __future__ import annotations

from typing import Iterable

import torch

from .config import TrainConfig
from .models import CharModel


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
