"""TrainConfig's checks: the choice fields come from one table, and one prefix limit holds everywhere."""
from __future__ import annotations

import pytest

import charrnn.generate as generate
from charrnn import ConfigError, TrainConfig
from charrnn.config import CHOICES, MAX_PREFIX


def test_choices_table():
    assert CHOICES == {"model": ("scratch", "concise", "scratch-gru", "concise-gru", "scratch-lstm", "concise-lstm"),
                       "sampling": ("random", "consecutive"), "optimizer": ("sgd", "adam"),
                       "device": ("auto", "cpu", "cuda")}


@pytest.mark.parametrize("name, bad, words", [
    ("model", "transformer", "scratch, concise, scratch-gru, concise-gru, scratch-lstm, concise-lstm"),
    ("sampling", "adjacent", "random, consecutive"),
    ("optimizer", "rmsprop", "sgd, adam"),
    ("device", "tpu", "auto, cpu, cuda"),
])
def test_choice_fields_name_the_allowed_words(name, bad, words):
    assert TrainConfig.unchecked(**{name: bad}).problems() == {
        name: f"{name}={bad!r} is not allowed: choose one of {words}"}


def test_choice_fields_follow_the_table(monkeypatch):
    monkeypatch.setitem(CHOICES, "model", ("scratch",))
    assert TrainConfig.unchecked(model="concise").problems() == {
        "model": "model='concise' is not allowed: choose one of scratch"}


PREFIXES_RULE = "a list of at most 20 non-empty strings, each at most 1000 characters"


def test_one_prefix_limit():
    assert MAX_PREFIX == 1000 and generate.MAX_PREFIX is MAX_PREFIX


def test_prefix_of_the_limit_is_allowed():
    assert TrainConfig(prefixes=["a" * MAX_PREFIX, "分开"]).prefixes[0] == "a" * 1000


@pytest.mark.parametrize("prefixes", [
    ["a" * (MAX_PREFIX + 1)],
    ["分开", "开" * 5000],
    [""],
    ["x"] * 21,
    "分开",          # a string, not a list
    ["分开", 3],
])
def test_prefixes_not_allowed(prefixes):
    message = f"prefixes={prefixes!r} is not allowed: {PREFIXES_RULE}"
    assert TrainConfig.unchecked(prefixes=prefixes).problems() == {"prefixes": message}
    with pytest.raises(ConfigError) as e:
        TrainConfig(prefixes=prefixes)
    assert str(e.value) == message


def test_twenty_prefixes_are_allowed():
    assert len(TrainConfig(prefixes=[str(i) for i in range(20)]).prefixes) == 20


def test_fast_is_an_opt_in_switch():
    assert TrainConfig().fast is False and TrainConfig(fast=True).fast is True
    assert TrainConfig.unchecked(fast="yes").problems() == {"fast": "fast='yes' is not allowed: True or False"}
    assert "CUDA only" in TrainConfig.__dataclass_fields__["fast"].metadata["help"]
