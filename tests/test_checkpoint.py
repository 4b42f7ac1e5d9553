"""Checkpoints: safetensors files that round-trip, resume exactly, write atomically and refuse bad input.

Tests that take ``device`` train on the CPU and on a CUDA GPU (skipped without one): a file saved from a GPU
run holds CPU tensors and loads anywhere. Saving on one device and resuming on the other: test_gpu.py.
"""
from __future__ import annotations

import json
import os
import random
import struct

import pytest
import torch
from safetensors import safe_open
from safetensors.torch import save, save_file

from charrnn import (CheckpointError, ConfigError, EpochEnd, Trainer, load_checkpoint, predict,
                     save_checkpoint)
import charrnn.checkpoint as ck_mod
from charrnn.corpus import CorpusError, from_file, text_identity
from charrnn.checkpoint import FORMAT, MAX_FILE_BYTES, VERSION, _digest


def header_of(path):
    data = path.read_bytes()
    (n,) = struct.unpack("<Q", data[:8])
    return data, n, json.loads(data[8:8 + n])


def trained(tiny_corpus, tiny_config, epochs=2, **changes):
    t = Trainer(tiny_config(epochs=epochs, **changes), tiny_corpus)
    list(t.run())
    return t


ADAM = dict(model="concise", sampling="consecutive", optimizer="adam", lr=0.01)
SGD = dict(model="scratch", sampling="random", optimizer="sgd", lr=1.0)


@pytest.mark.parametrize("fields", [SGD, ADAM], ids=["scratch-sgd", "concise-adam"])
def test_roundtrip(tmp_path, tiny_corpus, tiny_config, fields, device):
    t = trained(tiny_corpus, tiny_config, device=device, **fields)
    path = tmp_path / "run" / "model.safetensors"
    assert t.save(str(path)) == str(path)
    ck = load_checkpoint(path)
    # the text is named by what it is (its SHA-256 and length), never by where it was read from
    assert ck.config == t.config.replace(corpus=text_identity(tiny_corpus.text))
    assert ck.vocab == t.vocab and ck.epoch == 2 and ck.run_id == t.run_id
    assert ck.metrics == [e.as_dict() for e in t.history] and len(ck.metrics) == 2
    assert [EpochEnd(**m) for m in ck.metrics] == t.history
    assert not ck.model.training and ck.model.kind == fields["model"]
    want = t.model.state_dict()
    got = ck.model.state_dict()
    assert got.keys() == want.keys()
    for k in want:
        assert got[k].device.type == "cpu" and torch.equal(got[k], want[k].cpu()), k
    assert torch.equal(ck.shuffle_state, t.shuffle.get_state())
    sd = t.optimizer.state_dict()
    # the groups travel as JSON (Adam's betas tuple comes back as a list, which Adam reads the same way)
    assert ck.optimizer_state["param_groups"] == json.loads(json.dumps(sd["param_groups"]))
    assert ck.optimizer_state["state"].keys() == sd["state"].keys()
    if fields["optimizer"] == "adam":
        assert len(sd["state"]) == len(list(t.model.parameters()))
        for pid, st in sd["state"].items():
            assert set(st) == {"step", "exp_avg", "exp_avg_sq"}
            for name, v in st.items():
                assert torch.equal(torch.as_tensor(ck.optimizer_state["state"][pid][name]), torch.as_tensor(v).cpu())


def test_generation_from_file_alone(tmp_path, tiny_corpus, tiny_config, device):
    t = trained(tiny_corpus, tiny_config, epochs=3, device=device)
    path = tmp_path / "ck.safetensors"
    t.save(str(path))
    # what the run's weights write on the CPU (where the file's model is): for a CPU run, the run's own
    # model; for a GPU run its CPU snapshot (the GPU may round a near-tie of two logits the other way)
    model = t.model if device == "cpu" else t.snapshot()
    greedy = t.sample("the", 40) if device == "cpu" else predict(model, t.vocab, "the", 40)
    sampled = predict(model, t.vocab, "the", 40, temperature=0.8, top_k=5, seed=9)
    del t, model
    ck = load_checkpoint(path)
    assert predict(ck.model, ck.vocab, "the", 40) == greedy
    assert predict(ck.model, ck.vocab, "the", 40, temperature=0.8, top_k=5, seed=9) == sampled


@pytest.mark.parametrize("fields", [SGD, ADAM], ids=["sgd-random", "adam-consecutive"])
def test_resume_equals_uninterrupted(tmp_path, tiny_corpus, tiny_config, fields, device):
    N = 2
    full = trained(tiny_corpus, tiny_config, epochs=2 * N, device=device, **fields)
    half = trained(tiny_corpus, tiny_config, epochs=N, device=device, **fields)
    path = tmp_path / "half.safetensors"
    half.save(str(path))
    resumed = Trainer.resume(str(path), tiny_corpus, epochs=2 * N)
    assert resumed.epoch == N and resumed.run_id == half.run_id and resumed.device.type == device
    events = list(resumed.run())
    assert [e.epoch for e in events if isinstance(e, EpochEnd)] == [3, 4]
    assert [e.perplexity for e in resumed.history] == [e.perplexity for e in full.history]  # exact
    for k, v in full.model.state_dict().items():
        assert torch.equal(resumed.model.state_dict()[k], v), k
    # saving the resumed run keeps the whole history
    resumed.save(str(path))
    assert [m["perplexity"] for m in load_checkpoint(path).metrics] == [e.perplexity for e in full.history]


def test_resume_keeps_the_loading_optimizers_own_switches(tmp_path, tiny_corpus, tiny_config):
    """A file whose optimizer says capturable / foreach (what a fast run on a GPU saves) resumes on the CPU,
    with the CPU optimizer's own switches and exactly the same numbers as the plain file."""
    full = trained(tiny_corpus, tiny_config, epochs=4, **ADAM)
    half = trained(tiny_corpus, tiny_config, epochs=2, **ADAM)
    path = tmp_path / "half.safetensors"
    half.save(str(path))
    ck = load_checkpoint(path)
    for group in ck.optimizer_state["param_groups"]:
        group.update(capturable=True, foreach=True)
    resumed = Trainer.from_checkpoint(ck, tiny_corpus, epochs=4)
    own = Trainer(tiny_config(**ADAM), tiny_corpus).optimizer.param_groups[0]  # a CPU Adam's own switches
    for group in resumed.optimizer.param_groups:
        assert {k: group[k] for k in ("capturable", "foreach")} == {k: own[k] for k in ("capturable", "foreach")}
    for st in resumed.optimizer.state.values():
        assert st["step"].device.type == "cpu"
    list(resumed.run())
    assert [e.perplexity for e in resumed.history] == [e.perplexity for e in full.history]  # exact


def test_resume_reads_the_corpus_again_and_refuses_structural_changes(tmp_path, tiny_text, tiny_config):
    src = tmp_path / "story.txt"
    src.write_text(tiny_text, encoding="utf-8")
    t = Trainer(tiny_config(corpus=str(src), epochs=1))
    list(t.run())
    path = tmp_path / "ck.safetensors"
    t.save(str(path))
    assert str(src) not in path.read_bytes().decode("utf-8", "replace"), "the checkpoint records the text's path"
    with pytest.raises(CorpusError, match=rf"trained on a text of its own \(sha256 [0-9a-f]{{12}}…, "
                                          rf"{len(tiny_text):,} characters\)"):
        Trainer.resume(str(path), epochs=2)  # the text is not kept: it must be given again
    r = Trainer.resume(str(path), from_file(src), epochs=2, lr=0.5)
    assert r.config.lr == 0.5 and all(g["lr"] == 0.5 for g in r.optimizer.param_groups)
    assert r.vocab == t.vocab and torch.equal(r.data, t.data)
    for change in (dict(model="concise"), dict(num_hiddens=8), dict(optimizer="adam")):
        with pytest.raises(ConfigError, match="cannot change"):
            Trainer.resume(str(path), **change)


def test_default_path_is_under_checkpoints(tiny_corpus, tiny_config, monkeypatch, tmp_path):
    monkeypatch.setattr(ck_mod, "CHECKPOINT_DIR", tmp_path / "checkpoints")
    t = trained(tiny_corpus, tiny_config, epochs=1)
    saved = t.save()
    assert saved == str(tmp_path / "checkpoints" / t.run_id / "epoch-0001.safetensors")
    assert load_checkpoint(saved).epoch == 1


# ---------------------------------------------------------------- atomic writes
@pytest.mark.parametrize("fail_in", ["replace", "fsync", "write"])
def test_failed_save_keeps_previous_file(tmp_path, tiny_corpus, tiny_config, monkeypatch, fail_in):
    t = trained(tiny_corpus, tiny_config, epochs=1)
    path = tmp_path / "ck.safetensors"
    t.save(str(path))
    before = path.read_bytes()
    t.config.epochs = 2
    list(t.run())  # the weights change

    def boom(*a, **k):
        raise OSError("disk full (simulated)")

    if fail_in == "replace":
        monkeypatch.setattr(os, "replace", boom)
    elif fail_in == "fsync":
        monkeypatch.setattr(os, "fsync", boom)
    else:
        monkeypatch.setattr(ck_mod, "to_bytes", boom)
    with pytest.raises(OSError, match="simulated"):
        t.save(str(path))
    monkeypatch.undo()
    assert path.read_bytes() == before
    assert sorted(os.listdir(tmp_path)) == ["ck.safetensors"]  # no temporary leftovers
    assert load_checkpoint(path).epoch == 1
    t.save(str(path))  # and a later save works
    assert load_checkpoint(path).epoch == 2 and sorted(os.listdir(tmp_path)) == ["ck.safetensors"]


# ---------------------------------------------------------------- bad files
@pytest.fixture
def good_file(tmp_path, tiny_corpus, tiny_config):
    t = trained(tiny_corpus, tiny_config, epochs=1, **ADAM)
    path = tmp_path / "good.safetensors"
    t.save(str(path))
    return path


def write(tmp_path, data: bytes, name="bad.safetensors"):
    p = tmp_path / name
    p.write_bytes(data)
    return p


def test_truncated(tmp_path, good_file):
    data = good_file.read_bytes()
    with pytest.raises(CheckpointError, match="truncated"):
        load_checkpoint(write(tmp_path, data[:-100]))
    with pytest.raises(CheckpointError, match="truncated"):
        load_checkpoint(write(tmp_path, data[:200]))
    with pytest.raises(CheckpointError, match="only 5 bytes"):
        load_checkpoint(write(tmp_path, data[:5]))


def test_flipped_byte_in_tensor_data(tmp_path, good_file):
    data, n, header = header_of(good_file)
    start = 8 + n
    for pos in (start, start + (len(data) - start) // 2, len(data) - 1):
        bad = bytearray(data)
        bad[pos] ^= 0x10
        with pytest.raises(CheckpointError, match="corrupted.*checksum"):
            load_checkpoint(write(tmp_path, bytes(bad)))


def test_random_bytes_and_empty(tmp_path):
    with pytest.raises(CheckpointError, match="not a charrnn checkpoint"):
        load_checkpoint(write(tmp_path, random.Random(0).randbytes(4096)))
    with pytest.raises(CheckpointError, match="only 0 bytes"):
        load_checkpoint(write(tmp_path, b""))
    with pytest.raises(CheckpointError, match="not safetensors JSON"):
        load_checkpoint(write(tmp_path, struct.pack("<Q", 10) + b"\xff" * 10 + b"x" * 10))
    with pytest.raises(CheckpointError, match="not a JSON object"):
        load_checkpoint(write(tmp_path, struct.pack("<Q", 2) + b"[]"))


def header_file(tmp_path, header: dict, body: bytes = b"\0" * 16):
    raw = json.dumps(header).encode()
    return write(tmp_path, struct.pack("<Q", len(raw)) + raw + body)


@pytest.mark.parametrize("header", [
    {"a": {"dtype": "F32", "shape": [1], "data_offsets": 5}},
    {"a": {"dtype": "F32", "shape": [1], "data_offsets": "ab"}},
    {"a": {"dtype": "F32", "shape": [1], "data_offsets": [0]}},
    {"__metadata__": ["x"], "a": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}},
    {"__metadata__": {"format": FORMAT, "version": VERSION},
     "a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 4]}},
    {"__metadata__": {"format": FORMAT, "version": VERSION},
     "a": {"dtype": "F32", "shape": [1], "data_offsets": [-4, 0]}},
], ids=["offsets-int", "offsets-str", "offsets-short", "metadata-list", "shape-mismatch", "negative-offset"])
def test_malformed_headers(tmp_path, header):
    """A garbled or hostile header is a CheckpointError too, never a TypeError from deep inside."""
    with pytest.raises(CheckpointError, match="not a charrnn checkpoint|damaged"):
        load_checkpoint(header_file(tmp_path, header))


def test_foreign_safetensors(tmp_path):
    p = tmp_path / "foreign.safetensors"
    save_file({"weight": torch.ones(3, 4)}, str(p))
    with pytest.raises(CheckpointError, match="safetensors file but not a charrnn checkpoint"):
        load_checkpoint(p)
    save_file({"weight": torch.ones(3, 4)}, str(p), metadata={"format": FORMAT, "version": "99"})
    with pytest.raises(CheckpointError, match="version '99'"):
        load_checkpoint(p)


def test_invalid_metadata(tmp_path, good_file):
    tensors = {}
    with safe_open(str(good_file), framework="pt") as f:
        meta = f.metadata()
        for k in f.keys():
            tensors[k] = f.get_tensor(k)
    assert meta["sha256"] == _digest(tensors)
    for key, value, words in (("config", "{not json", "invalid metadata"),
                              ("config", json.dumps({"model": "lstm"}), "model='lstm'"),
                              ("vocab", json.dumps(["b", "a"]), "invalid metadata"),
                              ("epoch", "two", "invalid metadata")):
        bad = write(tmp_path, save(tensors, metadata={**meta, key: value}))
        with pytest.raises(CheckpointError, match=words):
            load_checkpoint(bad)
    # weights that do not fit the config
    cfg = json.loads(meta["config"])
    bad = write(tmp_path, save(tensors, metadata={**meta, "config": json.dumps({**cfg, "num_hiddens": 7})}))
    with pytest.raises(CheckpointError, match="does not fit a concise model"):
        load_checkpoint(bad)


def test_over_max_bytes_and_missing(tmp_path, good_file):
    size = good_file.stat().st_size
    assert load_checkpoint(good_file, max_bytes=size).epoch == 1
    with pytest.raises(CheckpointError, match="refused"):
        load_checkpoint(good_file, max_bytes=size - 1)
    with pytest.raises(CheckpointError, match="no checkpoint at"):
        load_checkpoint(tmp_path / "nope.safetensors")


def test_default_size_limit_is_512_mib(tmp_path):
    assert MAX_FILE_BYTES == 512 * 1024 * 1024 and not hasattr(ck_mod, "MAX_CHECKPOINT_BYTES")
    big = tmp_path / "big.safetensors"
    with open(big, "wb") as f:  # sparse: the size is there, the disk space is not
        f.truncate(MAX_FILE_BYTES + 1)
    with pytest.raises(CheckpointError) as e:
        load_checkpoint(big)  # refused by its size alone, before a byte is read
    assert str(e.value) == "big.safetensors is 536,870,913 bytes; checkpoints above 536,870,912 bytes are refused"


def test_file_is_pure_safetensors(good_file):
    """No pickle anywhere: an 8-byte length, a JSON header, then exactly the tensors' bytes, nothing else."""
    data, n, header = header_of(good_file)
    meta = header.pop("__metadata__")
    assert meta["format"] == FORMAT and meta["version"] == VERSION
    assert all(isinstance(v, str) for v in meta.values())
    spans = sorted(tuple(info["data_offsets"]) for info in header.values())
    assert spans[0][0] == 0 and all(a[1] == b[0] for a, b in zip(spans, spans[1:]))
    assert 8 + n + spans[-1][1] == len(data)  # the tensors cover the rest of the file, end to end
    for name, info in header.items():
        assert set(info) == {"dtype", "shape", "data_offsets"} and info["dtype"] in {"F32", "I64", "U8"}, name
    assert {k.split(".")[0] for k in header} == {"model", "optim", "rng"}
    # and a plain safetensors reader loads every tensor
    with safe_open(str(good_file), framework="pt") as f:
        assert set(f.keys()) == set(header)
    # json-decodable metadata, no code
    json.loads(meta["config"]), json.loads(meta["vocab"]), json.loads(meta["metrics"]), json.loads(meta["optimizer"])


def test_save_checkpoint_without_optimizer(tmp_path, tiny_corpus, tiny_config):
    t = trained(tiny_corpus, tiny_config, epochs=1)
    p = save_checkpoint(tmp_path / "m.safetensors", t.model, None, t.config, t.vocab, 1, [], "run-x")
    ck = load_checkpoint(p)
    assert ck.optimizer_state is None and ck.shuffle_state is None and ck.run_id == "run-x"
    assert predict(ck.model, ck.vocab, "the", 20) == t.sample("the", 20)
