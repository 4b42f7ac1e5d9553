"""The output layer of every model: the logits O = H W + b, written in rows 64 bytes apart on a CPU.

Job: ``output_layer(H, W, b)`` for H (N, h), W (h, V), b (V,) gives the (N, V) logits of N hidden states,
the same numbers as ``torch.addmm(b, H, W)``, and is differentiable (``_Logits``).

Why. A (N, V) result laid out contiguously starts row i at i * V floats; with the Jay Chou vocabulary
(V = 1027) most rows then begin off a 64-byte (cache-line) boundary, and MKL's single-precision GEMM on AVX2
cores writes such a result markedly slower (``bench/logits.py`` measures it; figures in docs/performance.md).
So on the CPU O is a (N, V) view of an (N, ceil(V / 16) * 16) buffer: the same numbers, a row stride of
1040 floats, every row on a cache line.

Maths of the backward pass, for the loss L and dO = dL/dO (N, V):
dH = dO W^T (N, h: rows of h floats, aligned whatever V is), dW = H^T dO (h, V, made in aligned rows too),
db = the sum of dO's rows. W may be a transposed view (``nn.Linear``'s weight.T, (h, V) seen from a (V, h)
tensor): its gradient is then made in the weight's own layout, (dO^T H)^T, so the optimizer sees a
contiguous (V, h) gradient. Other devices use ``addmm`` itself.
"""
from __future__ import annotations

import torch

ROW_FLOATS = 16  # a row of logits starts every 16 floats (64 bytes, a cache line)


class _Logits(torch.autograd.Function):
    """O = H W + b with O's rows (and dW's) laid ROW_FLOATS apart; the maths is the module's docstring."""

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
