"""Inside the model through the public API: /next_chars, /hidden_units, /gradients_through_time, mid-run too."""
from __future__ import annotations

import math
import os
from pathlib import Path

import pytest
from conftest import wait_for

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
pytest.importorskip("gradio")
from gradio_client import Client
from gradio_client.exceptions import AppError, ValidationError

from test_classroom import LAB_OPTIONS, TINY  # noqa: F401  (the same app's limits: a server of this module's own)

from charrnn.inside import MAX_PASSAGE

ROOT = Path(__file__).resolve().parent.parent


def test_views_before_any_model_say_so(server):
    url, _ = server
    c = Client(url, verbose=False)
    for call in (lambda: c.predict("the", 1.0, api_name="/next_chars"),
                 lambda: c.predict("the", 32, api_name="/hidden_units")):
        with pytest.raises(AppError, match="No model yet"):
            call()
    assert c.predict(api_name="/gradients_through_time") == []
    c.close()


@pytest.mark.parametrize("model", ["scratch-lstm", "concise-gru"])
def test_the_three_views_of_a_run_mid_training(server, model):
    url, lab = server
    c = Client(url, verbose=False)
    layers = 2 if model.startswith("concise") else 1
    job = c.submit(**TINY, model=model, sampling="consecutive", optimizer="sgd", lr=1.0, epochs=400,
                   num_layers=layers, api_name="/train")
    session = wait_for(lambda: lab.peek(c.session_hash))
    run = wait_for(lambda: session.runs and len(session.runs[-1].history) >= 2 and session.runs[-1])
    assert run.alive, "the views are read while the run trains"

    nxt = c.predict("the", 0.8, api_name="/next_chars")
    probs = [n["prob"] for n in nxt["next"]]
    assert len(probs) == 10 and probs == sorted(probs, reverse=True) and 0 < sum(probs) <= 1 + 1e-9
    assert nxt["prefix"] == "the" and f"run #{run.number}" in nxt["model"]
    sharp = c.predict("the", 0.2, api_name="/next_chars")["next"]
    assert sharp[0]["prob"] > nxt["next"][0]["prob"], "a lower temperature sharpens the distribution"

    hid = c.predict("the model reads this", 5, api_name="/hidden_units")
    assert hid["text"] == "the model reads this" and len(hid["units"]) == 5
    assert len(hid["hidden"]) == len(hid["text"]) and all(len(row) == 5 for row in hid["hidden"])
    assert all(-1 <= v <= 1 for row in hid["hidden"] for v in row)  # tanh
    assert (hid["cell"] is not None) == (model == "scratch-lstm")

    grads = wait_for(lambda: c.predict(api_name="/gradients_through_time"))
    (g,) = grads
    assert g["run"] == run.number and len(g["norms"]) == TINY["num_steps"] and g["epoch"] >= 1
    assert all(math.isfinite(n) and n >= 0 for n in g["norms"]) and g["norms"][-1] > 0

    with pytest.raises(AppError, match="never seen"):
        c.predict("the ✈", 1.0, api_name="/next_chars")
    with pytest.raises(AppError, match="temperature=-1"):
        c.predict("the", -1, api_name="/next_chars")
    with pytest.raises(AppError, match=f"at most {MAX_PASSAGE:,}"):
        c.predict("e" * (MAX_PASSAGE + 1), 5, api_name="/hidden_units")
    assert run.alive, "bad input to a view leaves the run going"
    c.predict(api_name="/stop")
    job.result()
    # once the run has ended (and its weights are released by a next run) its gradients view stays
    c.submit(**TINY, model="scratch", epochs=1, api_name="/train").result()
    wait_for(lambda: len(c.predict(api_name="/gradients_through_time")) == 2)
    c.close()


def test_stacking_layers_is_for_concise_models(server):
    url, _ = server
    c = Client(url, verbose=False)
    with pytest.raises(ValidationError, match="num_layers=2 is not allowed: 1 for model scratch-gru"):
        c.predict(**TINY, model="scratch-gru", num_layers=2, epochs=1, api_name="/train")
    c.close()
