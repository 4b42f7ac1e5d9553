"""Which settings' widgets the page shows: layers only for the models that stack them, fast only where runs
train on a CUDA GPU (the GPU's own check trains with it; here the widget is built as each machine builds it)."""
from __future__ import annotations

import pytest
import torch

gr = pytest.importorskip("gradio")
from demo import form, setting_widgets  # noqa: E402


@pytest.mark.parametrize("cuda", [False, True])
def test_fast_shows_only_where_runs_train_on_cuda(monkeypatch, cuda):
    monkeypatch.setattr(setting_widgets, "trains_on_cuda", lambda: cuda)
    widget = setting_widgets.setting_component(form.BY_NAME["fast"], render=False)
    assert isinstance(widget, gr.Checkbox) and widget.visible is cuda and widget.value is False
    assert "fast" in setting_widgets.FOLDED  # under "more settings": a refusal opens the fold to show it


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine trains on CUDA: it shows fast")
def test_this_machine_hides_fast():
    assert setting_widgets.setting_component(form.BY_NAME["fast"], render=False).visible is False


@pytest.mark.parametrize("model, shown", [("scratch", False), ("concise", True), ("scratch-lstm", False),
                                          ("concise-gru", True)])
def test_layers_show_only_for_models_that_stack_them(model, shown):
    assert setting_widgets.stacks_layers(model) is shown
