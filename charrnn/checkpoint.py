"""Checkpoints: one self-describing safetensors file per save (no pickle, so loading runs no code).

The file holds the model's weights, the optimizer's state, the shuffle generator's state, and in its
metadata the config, vocabulary, metrics, epoch, run id and a SHA-256 of every tensor's bytes (so a
corrupted file is caught, not loaded). It is written to a temporary file and renamed into place, so a
crash mid-write leaves the previous file intact. Tensors are written from the CPU and read onto the CPU,
so a file saved on a GPU loads on a machine without one (``Trainer.from_checkpoint`` moves it to the run's
device, whichever it is).
"""
from __future__ import annotations

import hashlib
import json
import os
import struct
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import torch

from .config import ConfigError, TrainConfig
from .corpus import PROJECT_DIR, CorpusError, Vocab
from .models import CharModel, build_model

FORMAT = "charrnn-checkpoint"
VERSION = "1"
CHECKPOINT_DIR = PROJECT_DIR / "checkpoints"
CHECKPOINT_DIR_ENV = "CHARRNN_CHECKPOINT_DIR"  # where the CLI and the library save by default, if set
MAX_FILE_BYTES = 512 * 1024 * 1024  # load_checkpoint refuses a larger file (by default) before reading it


class CheckpointError(ValueError):
    """A file that is not a usable charrnn checkpoint; the message says why."""


@dataclass
class Checkpoint:
    config: TrainConfig
    vocab: Vocab
    model: CharModel                        # on the CPU, in eval mode
    optimizer_state: dict[str, Any] | None  # torch optimizer state_dict, ready for load_state_dict
    epoch: int
    metrics: list[dict[str, Any]]           # one dict per epoch (EpochEnd fields)
    run_id: str
    shuffle_state: torch.Tensor | None
    changes: list[dict[str, Any]] = field(default_factory=list)  # settings changed mid-run (Change fields)


def new_run_id(config: TrainConfig) -> str:
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    return f"{stamp}-{config.model}-{config.sampling}-{os.urandom(2).hex()}"


def default_path(run_id: str, epoch: int) -> Path:
    """``<checkpoints>/<run-id>/epoch-NNNN.safetensors``; <checkpoints> is $CHARRNN_CHECKPOINT_DIR or checkpoints/."""
    folder = Path(os.environ[CHECKPOINT_DIR_ENV]) if os.environ.get(CHECKPOINT_DIR_ENV) else CHECKPOINT_DIR
    return folder / run_id / f"epoch-{epoch:04d}.safetensors"


def _digest(tensors: dict[str, torch.Tensor]) -> str:
    h = hashlib.sha256()
    for name in sorted(tensors):
        t = tensors[name].detach().cpu().contiguous()
        h.update(name.encode())
        h.update(str(t.dtype).encode() + str(tuple(t.shape)).encode())
        # reshape(-1): a 0-dim tensor (Adam's "step") cannot be viewed as bytes directly
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return h.hexdigest()


def to_bytes(model: CharModel | Mapping[str, torch.Tensor], optimizer: torch.optim.Optimizer | Mapping[str, Any] | None,
             config: TrainConfig, vocab: Vocab, epoch: int, metrics: list[dict[str, Any]], run_id: str,
             shuffle_state: torch.Tensor | None = None, changes: list[dict[str, Any]] | None = None) -> bytes:
    """The checkpoint as bytes (what ``save_checkpoint`` writes). ``model`` and ``optimizer`` may be given as
    their ``state_dict()`` (a copy taken earlier, e.g. under a trainer's lock); tensors on any device are
    written from the CPU, so a file saved on a GPU loads anywhere."""
    from safetensors.torch import save

    weights = model.state_dict() if isinstance(model, torch.nn.Module) else model
    tensors = {f"model.{k}": v.detach().cpu().contiguous() for k, v in weights.items()}
    scalars: dict[str, dict[str, Any]] = {}
    groups: list[dict[str, Any]] = []
    if optimizer is not None:
        sd = optimizer.state_dict() if isinstance(optimizer, torch.optim.Optimizer) else optimizer
        groups = sd["param_groups"]
        for pid, st in sd["state"].items():
            for key, value in st.items():
                if torch.is_tensor(value):
                    tensors[f"optim.{pid}.{key}"] = value.detach().cpu().contiguous()
                else:
                    scalars.setdefault(str(pid), {})[key] = value
    if shuffle_state is not None:
        tensors["rng.shuffle"] = shuffle_state.cpu()
    metadata = {
        "format": FORMAT, "version": VERSION, "run_id": run_id, "epoch": str(epoch),
        "config": config.to_json(), "vocab": vocab.to_json(),
        "metrics": json.dumps(metrics), "changes": json.dumps(changes or []), "optimizer": json.dumps(
            {"present": optimizer is not None, "groups": groups, "scalars": scalars}),
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "sha256": _digest(tensors),
    }
    return save(tensors, metadata=metadata)


def save_checkpoint(path: str | os.PathLike, model: CharModel | Mapping[str, torch.Tensor],
                    optimizer: torch.optim.Optimizer | Mapping[str, Any] | None, config: TrainConfig, vocab: Vocab,
                    epoch: int, metrics: list[dict[str, Any]], run_id: str,
                    shuffle_state: torch.Tensor | None = None, changes: list[dict[str, Any]] | None = None) -> Path:
    """Write a checkpoint atomically: temp file in the same folder, fsync, rename over ``path``
    (``model`` and ``optimizer`` as for ``to_bytes``)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    data = to_bytes(model, optimizer, config, vocab, epoch, metrics, run_id, shuffle_state, changes)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)  # mkstemp makes it 0600
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def _header(data: bytes, name: str) -> dict[str, Any]:
    """The safetensors JSON header, or CheckpointError for a truncated or foreign file."""
    if len(data) < 8:
        raise CheckpointError(f"{name} is not a charrnn checkpoint: it is only {len(data)} bytes long")
    (n,) = struct.unpack("<Q", data[:8])
    if n > len(data) - 8 or n > 100_000_000:
        raise CheckpointError(f"{name} is not a charrnn checkpoint, or it is truncated: its header claims "
                              f"{n:,} bytes but the file has {len(data) - 8:,} after the length field")
    try:
        header = json.loads(data[8:8 + n].decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise CheckpointError(f"{name} is not a charrnn checkpoint: its header is not safetensors JSON") from None
    if not isinstance(header, dict):
        raise CheckpointError(f"{name} is not a charrnn checkpoint: its header is not a JSON object")
    if header.get("__metadata__") is not None and not isinstance(header["__metadata__"], dict):
        raise CheckpointError(f"{name} is not a charrnn checkpoint: its metadata is not a JSON object")
    try:
        end = max((int(info["data_offsets"][1]) for k, info in header.items()
                   if k != "__metadata__" and isinstance(info, dict) and "data_offsets" in info), default=0)
    except (TypeError, ValueError, IndexError, KeyError):  # offsets that are not a [start, end] pair
        raise CheckpointError(f"{name} is not a charrnn checkpoint: its header has malformed tensor offsets") from None
    if 8 + n + end > len(data):
        raise CheckpointError(f"{name} is truncated: it has {len(data):,} bytes, its tensors need {8 + n + end:,}")
    return header


def from_bytes(data: bytes, name: str = "checkpoint") -> Checkpoint:
    """Parse and validate checkpoint bytes; every problem is a CheckpointError with a clear message."""
    from safetensors.torch import load

    meta = _header(data, name).get("__metadata__") or {}
    if meta.get("format") != FORMAT:
        raise CheckpointError(f"{name} is a safetensors file but not a charrnn checkpoint (no format={FORMAT!r})")
    if meta.get("version") != VERSION:
        raise CheckpointError(f"{name} is a charrnn checkpoint of version {meta.get('version')!r}; "
                              f"this charrnn reads version {VERSION}")
    try:
        tensors = load(data)
    except Exception as e:  # safetensors raises its own error type for malformed data
        raise CheckpointError(f"{name} is damaged: {e}") from None
    if _digest(tensors) != meta.get("sha256"):
        raise CheckpointError(f"{name} is corrupted: its tensors do not match the checksum stored in it")
    try:
        config = TrainConfig.from_json(meta["config"])
        vocab = Vocab.from_json(meta["vocab"])
        metrics = json.loads(meta["metrics"])
        changes = json.loads(meta.get("changes", "[]"))  # files from before mid-run changes have none
        optim = json.loads(meta["optimizer"])
        epoch = int(meta["epoch"])
        run_id = meta["run_id"]
    except (KeyError, ValueError, TypeError, ConfigError, CorpusError) as e:
        raise CheckpointError(f"{name} has invalid metadata: {e}") from None

    model = build_model(config.model, len(vocab), config.num_hiddens, num_layers=config.num_layers)
    weights = {k[len("model."):]: v for k, v in tensors.items() if k.startswith("model.")}
    try:
        model.load_state_dict(weights, strict=True)
    except RuntimeError as e:
        first = str(e).strip().splitlines()
        raise CheckpointError(f"{name} does not fit a {config.model} model with {len(vocab)} characters and "
                              f"{config.num_hiddens} hidden units: "
                              f"{first[1] if len(first) > 1 else first[0]}") from None
    return Checkpoint(config=config, vocab=vocab, model=model.eval(), optimizer_state=_optimizer_state(tensors, optim),
                      epoch=epoch, metrics=metrics, run_id=run_id, shuffle_state=tensors.get("rng.shuffle"),
                      changes=changes)


def _optimizer_state(tensors: dict[str, torch.Tensor], optim: dict[str, Any]) -> dict[str, Any] | None:
    if not optim.get("present"):
        return None
    state: dict[int, dict[str, Any]] = {}
    for key, value in tensors.items():
        if key.startswith("optim."):
            _, pid, name = key.split(".", 2)
            state.setdefault(int(pid), {})[name] = value
    for pid, values in optim.get("scalars", {}).items():
        state.setdefault(int(pid), {}).update(values)
    return {"state": state, "param_groups": optim["groups"]}


def load_checkpoint(path: str | os.PathLike, max_bytes: int = MAX_FILE_BYTES) -> Checkpoint:
    """Load and validate the checkpoint at ``path``; nothing but the file is needed.

    A file above ``max_bytes`` (default ``MAX_FILE_BYTES``, 512 MiB) is refused before it is read.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"no checkpoint at {str(path)!r}")
    size = path.stat().st_size
    if size > max_bytes:
        raise CheckpointError(f"{path.name} is {size:,} bytes; checkpoints above {max_bytes:,} bytes are refused")
    return from_bytes(path.read_bytes(), path.name)
