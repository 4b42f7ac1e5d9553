"""After a checkpoint is uploaded, Write and the next-character bars start from a prefix its model knows."""
from __future__ import annotations

import types

import pytest

pytest.importorskip("gradio")
import gradio as gr

from charrnn import Trainer
from charrnn.checkpoint import load_checkpoint
from charrnn.lab import Lab
from demo.checkpoints import Checkpoints


@pytest.fixture
def lab_with_upload(tiny_corpus, tiny_config, tmp_path):
    """A session holding an uploaded checkpoint of the tiny English text, sampled from "the" and "of"."""
    trainer = Trainer(tiny_config(epochs=1, prefixes=["the", "of"]), tiny_corpus)
    for _ in trainer.run():
        pass
    path = trainer.save(str(tmp_path / "tiny.safetensors"))
    lab = Lab(max_runs=1)
    lab.session("page").loaded = load_checkpoint(path)
    yield lab
    lab.shutdown()


def test_prefixes_the_model_has_never_seen_become_the_checkpoints_own(lab_with_upload, tmp_path):
    files, page = Checkpoints(lab_with_upload, str(tmp_path)), types.SimpleNamespace(session_hash="page")
    write, bars, note = files.on_loaded_prefixes("分开", "分开", page)
    assert write == bars == "the" and "“the”" in note
    write, bars, note = files.on_loaded_prefixes("the time", "分开", page)  # one of them is fine as it is
    assert write == gr.skip() and bars == "the" and "“the”" in note
    assert files.on_loaded_prefixes("of", "a", page) == (gr.skip(),) * 3  # both known: nothing changes


def test_without_an_upload_nothing_changes(tmp_path):
    lab = Lab(max_runs=1)
    try:
        page = types.SimpleNamespace(session_hash="other")
        assert Checkpoints(lab, str(tmp_path)).on_loaded_prefixes("分开", "分开", page) == (gr.skip(),) * 3
    finally:
        lab.shutdown()
