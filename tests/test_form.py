"""The page's settings table and form rules, without a server (demo/form.py imports no gradio)."""
from __future__ import annotations

import dataclasses
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "demo"))
import form  # noqa: E402

from charrnn.config import PRESETS, TrainConfig  # noqa: E402

# The /train parameters as README.md documents them, in order.
DOCUMENTED = ("corpus", "corpus_file", "max_chars", "model", "sampling", "optimizer", "lr", "clip", "theta", "epochs",
              "num_hiddens", "batch_size", "num_steps", "seed", "prefixes", "pred_len", "pred_period", "decoding",
              "temperature", "top_k", "resume")


def test_table_names_are_the_documented_api():
    assert form.NAMES == DOCUMENTED
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    row = next(line for line in readme.splitlines() if line.startswith("| `/train`"))
    assert [n for n in DOCUMENTED if f"`{n}`" in row] == list(DOCUMENTED), "README's /train row names every setting"


def test_form_does_not_import_gradio():
    code = "import sys; sys.path.insert(0, 'demo'); import form; print('gradio' in sys.modules, 'plotly' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    assert out.split() == ["False", "False"]


def test_defaults_are_the_chapters_run_with_a_short_sample_period():
    config, problems = form.form_to_config(form.DEFAULTS)
    assert problems == {}
    chapter = dataclasses.asdict(TrainConfig())
    got = dataclasses.asdict(config)
    assert {k: v for k, v in got.items() if k != "pred_period"} == {k: v for k, v in chapter.items() if k != "pred_period"}
    assert got["pred_period"] == form.PAGE_PRED_PERIOD < chapter["pred_period"]


@pytest.mark.parametrize("name", list(PRESETS))
def test_config_to_form_and_back_is_the_identity(name):
    config = TrainConfig(**PRESETS[name])
    back, problems = form.form_to_config(form.config_to_form(config))
    assert problems == {} and back == config


@pytest.mark.parametrize("config", [
    TrainConfig(clip_theta=None, temperature=0.7, top_k=5, max_chars=None, corpus="timemachine", prefixes=["the", "time machine"]),
    TrainConfig(model="concise", optimizer="adam", lr=0.01, seed=9, epochs=7, pred_len=3, prefixes=[]),
])
def test_config_to_form_round_trips_every_field(config):
    back, problems = form.form_to_config(form.config_to_form(config))
    assert problems == {} and back == config


def test_preset_form_keeps_the_page_sample_period():
    values = form.preset_form("concise")
    assert values["model"] == "concise" and values["optimizer"] == "adam" and values["lr"] == 0.001
    assert values["pred_period"] == form.PAGE_PRED_PERIOD and values["resume"] is False


@pytest.mark.parametrize("name", ["seed", "pred_len", "epochs", "num_hiddens", "batch_size", "num_steps",
                                  "pred_period", "max_chars"])
def test_whole_number_settings_refuse_fractions(name):
    _, problems = form.form_to_config({name: 0.5})
    assert set(problems) == {name}
    assert problems[name].startswith(f"{name}=0.5 is not allowed:") and ("integer" in problems[name]
                                                                         or "whole" in problems[name])


def test_whole_floats_are_accepted_as_integers():
    config, problems = form.form_to_config({"seed": 3.0, "epochs": 12.0})
    assert problems == {} and config.seed == 3 and isinstance(config.seed, int) and config.epochs == 12


@pytest.mark.parametrize("decoding", ["greedy", "sample"])
def test_top_k_fraction_is_refused(decoding):
    problems = form.form_to_config({"top_k": 2.5, "decoding": decoding})[1]
    assert set(problems) == {"top_k"} and problems["top_k"].startswith("top_k=2.5 is not allowed")


@pytest.mark.parametrize("values, name, words", [
    ({"lr": -1}, "lr", "above 0"),
    ({"theta": 0}, "theta", "theta=0 is not allowed"),
    ({"epochs": 6000}, "epochs", "at most 5,000"),
    ({"num_hiddens": 2048}, "num_hiddens", "at most 1,024"),
    ({"pred_len": 501}, "pred_len", "at most 500"),
    ({"corpus": "upload"}, "corpus_file", "choose a UTF-8 .txt"),
    ({"corpus": "wikipedia"}, "corpus", "choose one of jaychou"),
    ({"prefixes": "x" * 1001}, "prefixes", "1000"),
    ({"decoding": "beam"}, "decoding", "greedy or sample"),
    ({"clip": "yes"}, "clip", "true or false"),
    ({"model": "transformer"}, "model", "choose one of"),
])
def test_each_rule_names_its_setting_and_what_is_allowed(values, name, words):
    _, problems = form.form_to_config(values)
    assert set(problems) == {name}, problems
    assert words in problems[name]


def test_clipping_off_ignores_theta():
    config, problems = form.form_to_config({"clip": False, "theta": -5})
    assert problems == {} and config.clip_theta is None


def test_parse_prefixes():
    assert form.parse_prefixes("分开, 不分开，我、 the end \n x") == ["分开", "不分开", "我", "the end", "x"]
    assert form.parse_prefixes("") == [] and form.parse_prefixes(None) == []


@pytest.mark.parametrize("text, want", [
    ("静夜思 床前明月光 疑是地上霜", "静夜, 床前"),
    ("The Time Machine, by H. G. Wells", "The, Time"),
    ("  ...  42 hello hello world", "hello, world"),
    ("12345 ...", ""),
])
def test_suggest_prefixes_from_the_first_words(text, want):
    assert form.suggest_prefixes(text) == want


def test_check_reads_the_corpus_and_checks_prefixes(tmp_path):
    path = tmp_path / "poem.txt"
    path.write_text("床前明月光 疑是地上霜 举头望明月 低头思故乡 " * 30, encoding="utf-8")
    base = dict(corpus="upload", corpus_file=str(path), batch_size=4, num_steps=5, max_chars=0)
    ok = form.check({**base, "prefixes": "明月"})
    assert ok.ok and ok.config.corpus == str(path) and len(ok.corpus) == len(path.read_text(encoding="utf-8"))
    bad = form.check({**base, "prefixes": "分开"})  # the Chinese default is not in this text
    assert set(bad.problems) == {"prefixes"} and "'分'" in bad.problems["prefixes"]
    short = form.check({**base, "prefixes": "明月", "batch_size": 512, "num_steps": 200})
    assert set(short.problems) == {"corpus_file"} and "too short" in short.problems["corpus_file"]
    assert form.check({**base, "resume": True}).problems == {"resume": "upload a checkpoint first, or untick resume"}
