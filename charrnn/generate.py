"""Writing text with a trained model: the chapter's greedy decoding, plus temperature and top-k sampling.

``stream`` yields the new characters one at a time, so a caller can show them as they come;
``predict`` returns prefix + new characters, as the chapter's ``predict_rnn`` does.
"""
from __future__ import annotations

from typing import Iterator

import torch

from .config import MAX_PREFIX  # the one prefix limit, shared with TrainConfig.prefixes
from .corpus import Vocab, describe_unknown
from .models import CharModel


class PrefixError(ValueError):
    """A prefix the model cannot start from; the message names the offending characters."""


def check_prefix(vocab: Vocab, prefix: str) -> list[int]:
    """The prefix as indices, or PrefixError saying what is wrong (empty, too long, unknown characters)."""
    if not isinstance(prefix, str) or not prefix:
        raise PrefixError("the prefix is empty: type at least one character")
    if len(prefix) > MAX_PREFIX:
        raise PrefixError(f"the prefix has {len(prefix):,} characters; at most {MAX_PREFIX:,} are allowed")
    missing = vocab.unknown(prefix)
    if missing:
        raise PrefixError(f"the prefix {prefix!r} has {len(missing)} character(s) the model has never seen: "
                          f"{describe_unknown(missing)}. Use characters from its training text.")
    return [vocab.stoi[c] for c in prefix]


def next_index(logits: torch.Tensor, temperature: float = 0.0, top_k: int | None = None,
               generator: torch.Generator | None = None) -> int:
    """Pick the next character from a (V,) row of logits: argmax when temperature is 0, else sample."""
    if temperature <= 0:
        return int(logits.argmax())
    logits = logits.float() / temperature
    if top_k is not None and top_k < logits.numel():
        kth = torch.topk(logits, top_k).values[-1]
        logits = logits.masked_fill(logits < kth, float("-inf"))
    probs = torch.softmax(logits, dim=-1).cpu()
    return int(torch.multinomial(probs, 1, generator=generator))


def stream(model: CharModel, vocab: Vocab, prefix: str, num_chars: int, temperature: float = 0.0,
           top_k: int | None = None, seed: int | None = None) -> Iterator[str]:
    """Yield ``num_chars`` new characters after ``prefix``, one at a time.

    The arguments are checked when this is called, before any character is produced (PrefixError or
    ValueError). The prefix is fed in one call from a zero state of batch 1 (the same numbers as
    feeding it one character at a time); then each chosen character is fed back.
    """
    ids = check_prefix(vocab, prefix)
    if not isinstance(num_chars, int) or not 0 <= num_chars <= 100_000:
        raise ValueError(f"length={num_chars!r} is not allowed: use an integer from 0 to 100000")
    if not temperature >= 0 or (top_k is not None and top_k < 1):
        raise ValueError(f"temperature={temperature!r}, top_k={top_k!r} are not allowed: "
                         "temperature must be >= 0 (0 is greedy) and top_k >= 1 or None")
    generator = torch.Generator().manual_seed(seed) if seed is not None else None
    return _stream(model, vocab, ids, num_chars, temperature, top_k, generator)


@torch.no_grad()
def _stream(model: CharModel, vocab: Vocab, ids: list[int], num_chars: int, temperature: float,
            top_k: int | None, generator: torch.Generator | None) -> Iterator[str]:
    device = next(model.parameters()).device
    state = model.begin_state(1, device)
    logits, state = model(torch.tensor([ids], device=device), state)  # (len(prefix), V)
    for _ in range(num_chars):
        idx = next_index(logits[-1], temperature, top_k, generator)
        yield vocab.itos[idx]
        logits, state = model(torch.tensor([[idx]], device=device), state)


def predict(model: CharModel, vocab: Vocab, prefix: str, num_chars: int, temperature: float = 0.0,
            top_k: int | None = None, seed: int | None = None) -> str:
    """prefix + ``num_chars`` generated characters (greedy by default, as in the chapter)."""
    return prefix + "".join(stream(model, vocab, prefix, num_chars, temperature, top_k, seed))
