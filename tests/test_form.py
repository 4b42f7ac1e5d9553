"""The page's settings table and form rules, without a server (demo/form.py imports no gradio)."""
from __future__ import annotations

import dataclasses
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from demo import form, rules

from charrnn.config import PRESETS, TrainConfig

ROOT = Path(__file__).resolve().parent.parent

# The /train parameters as docs/api.md documents them, in order.
DOCUMENTED = ("corpus", "corpus_file", "max_chars", "model", "sampling", "optimizer", "lr", "clip", "theta", "epochs",
              "num_hiddens", "batch_size", "num_steps", "seed", "prefixes", "pred_len", "pred_period", "decoding",
              "temperature", "top_k", "resume", "num_layers", "validation", "fast")


def test_table_names_are_the_documented_api():
    assert form.NAMES == DOCUMENTED
    api = (ROOT / "docs" / "api.md").read_text(encoding="utf-8")
    row = next(line for line in api.splitlines() if line.startswith("| `/train`"))
    named = [n for n in DOCUMENTED if f"`{n}`" in row]
    assert named == list(DOCUMENTED), "docs/api.md's /train row names every setting"


def test_form_does_not_import_gradio():
    code = "import sys; from demo import form; print('gradio' in sys.modules, 'plotly' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    assert out.split() == ["False", "False"]


def test_defaults_are_the_chapters_run_with_a_short_sample_period():
    config, problems = form.form_to_config(form.DEFAULTS)
    assert problems == {}
    chapter = dataclasses.asdict(TrainConfig())
    got = dataclasses.asdict(config)
    assert ({k: v for k, v in got.items() if k != "pred_period"}
            == {k: v for k, v in chapter.items() if k != "pred_period"})
    assert got["pred_period"] == form.PAGE_PRED_PERIOD < chapter["pred_period"]


@pytest.mark.parametrize("name", list(PRESETS))
def test_config_to_form_and_back_is_the_identity(name):
    config = TrainConfig(**PRESETS[name])
    back, problems = form.form_to_config(form.config_to_form(config))
    assert problems == {} and back == config


@pytest.mark.parametrize("config", [
    TrainConfig(clip_theta=None, temperature=0.7, top_k=5, max_chars=None, corpus="timemachine",
                prefixes=["the", "time machine"]),
    TrainConfig(model="concise", optimizer="adam", lr=0.01, seed=9, epochs=7, pred_len=3, prefixes=[]),
])
def test_config_to_form_round_trips_every_field(config):
    back, problems = form.form_to_config(form.config_to_form(config))
    assert problems == {} and back == config


def test_fast_is_refused_where_runs_train_on_the_cpu(monkeypatch):
    monkeypatch.setattr("demo.rules.trains_on_cuda", lambda: False)
    config, problems = form.form_to_config({"fast": True})
    assert problems == {"fast": rules.FAST_NEEDS_CUDA}
    assert "CUDA" in problems["fast"] and "untick" in problems["fast"]
    assert form.form_to_config({"fast": False})[1] == {}


def test_fast_is_a_setting_where_runs_train_on_cuda(monkeypatch):
    monkeypatch.setattr("demo.rules.trains_on_cuda", lambda: True)
    config, problems = form.form_to_config({"fast": True})
    assert problems == {} and config.fast is True
    assert form.form_to_config({"fast": "yes"})[1] == {"fast": "fast='yes' is not allowed: true or false"}


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine trains on CUDA")
def test_this_cpu_machine_does_not_train_on_cuda():
    assert rules.trains_on_cuda() is False  # CI and this machine: no GPU (the GPU check runs elsewhere)


def test_a_checkpoint_trained_fast_fills_a_form_without_fast(monkeypatch):
    """fast is the machine's choice: a run saved with it on a GPU resumes on a CPU, whose form hides it."""
    monkeypatch.setattr("demo.rules.trains_on_cuda", lambda: False)
    values = form.config_to_form(TrainConfig(fast=True))
    assert "fast" not in values
    config, problems = form.form_to_config(values)
    assert problems == {} and config.fast is False


def test_a_fault_reading_the_corpus_is_said_beside_train(monkeypatch):
    """Not a CorpusError (the text's fault) but a fault of the server's: still a message, not a press that hangs
    (an exception in Gradio's validator leaves the caller waiting with nothing said)."""
    def broken(source, max_chars):
        raise RuntimeError("AST constructor recursion depth mismatch")
    monkeypatch.setattr(form, "cached_corpus", broken)
    checked = form.check({"corpus": "offline"})
    assert not checked.ok and list(checked.problems) == ["corpus"]
    message = checked.problems["corpus"]
    assert "RuntimeError: AST constructor" in message and "press Train again" in message
    from demo.problems import in_page
    assert in_page(message, "zh").startswith("读不了这个文本（RuntimeError: AST constructor")


def test_preset_form_keeps_the_page_sample_period():
    values = form.preset_form("concise")
    assert values["model"] == "concise" and values["optimizer"] == "adam" and values["lr"] == 0.001
    assert values["pred_period"] == form.PAGE_PRED_PERIOD and values["resume"] is False


@pytest.mark.parametrize("name", ["seed", "pred_len", "epochs", "num_hiddens", "batch_size", "num_steps",
                                  "pred_period", "max_chars"])
def test_whole_number_settings_refuse_fractions(name):
    _, problems = form.form_to_config({name: 0.5})
    assert set(problems) == {name}
    assert f"{name}=0.5 is not allowed: a whole number" in problems[name]


def test_whole_floats_are_accepted_as_integers():
    config, problems = form.form_to_config({"seed": 3.0, "epochs": 12.0})
    assert problems == {} and config.seed == 3 and isinstance(config.seed, int) and config.epochs == 12


@pytest.mark.parametrize("decoding", ["greedy", "sample"])
def test_top_k_fraction_is_refused(decoding):
    problems = form.form_to_config({"top_k": 2.5, "decoding": decoding})[1]
    assert set(problems) == {"top_k"} and "top_k=2.5 is not allowed: a whole number" in problems["top_k"]


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


# ---------------------------------------------------------------- settings in a link
from urllib.parse import parse_qsl  # noqa: E402
import random  # noqa: E402
import re  # noqa: E402


def read_link(query: str):
    return form.from_query(dict(parse_qsl(query, keep_blank_values=True)))


def test_the_issues_link_gives_exactly_those_values_over_the_preset():
    values, problems = read_link("preset=scratch-consecutive&lr=50&clip=off&epochs=120")
    assert problems == {}
    assert values == form.complete({**form.preset_form("scratch-consecutive"), "lr": 50.0, "clip": False,
                                    "epochs": 120})
    assert isinstance(values["lr"], float) and isinstance(values["epochs"], int)


def test_a_link_without_settings_is_the_defaults():
    assert form.from_query({}) == (form.DEFAULTS, {})
    assert read_link("preset=concise")[0] == form.complete(form.preset_form("concise"))


@pytest.mark.parametrize("query, want", [
    ("epochs=120", {"epochs": 120}),
    ("lr=1e-3&optimizer=adam&model=concise", {"lr": 0.001, "optimizer": "adam", "model": "concise"}),
    ("lr=0.001", {"lr": 0.001}),
    ("clip=OFF", {"clip": False}),
    ("clip=no&theta=0.5", {"clip": False, "theta": 0.5}),
    ("clip=0.05", {"clip": True, "theta": 0.05}),          # clip=<number>: clipping on with that θ
    ("preset=concise&clip=1", form.preset_form("concise")),  # 1 is a yes, not θ = 1
    ("theta=2", {"theta": 2.0}),
    ("max_chars=0&corpus=timemachine", {"max_chars": 0, "corpus": "timemachine"}),
    ("decoding=Sample&temperature=0.8&top_k=5", {"decoding": "sample", "temperature": 0.8, "top_k": 5}),
    ("prefixes=the,time machine", {"prefixes": "the,time machine"}),
    ("prefixes=,", {"prefixes": ""}),
    ("seed=42&pred_len=0&pred_period=1", {"seed": 42, "pred_len": 0, "pred_period": 1}),
])
def test_each_kind_of_setting_is_read_from_a_link(query, want):
    values, problems = read_link(query)
    assert problems == {}
    assert values == form.complete({**form.DEFAULTS, **want})


@pytest.mark.parametrize("query, name, message", [
    ("epochs=abc", "epochs", "epochs='abc' is not allowed: a whole number"),
    ("epochs=1e3", "epochs", "epochs='1e3' is not allowed: a whole number"),
    ("epochs=2.5", "epochs", "epochs='2.5' is not allowed: a whole number"),
    ("seed=", "seed", "seed='' is not allowed: a whole number"),
    ("lr=fast", "lr", "lr='fast' is not allowed: a number"),
    ("lr=nan", "lr", "lr='nan' is not allowed: a number"),
    ("clip=maybe", "clip", "clip='maybe' is not allowed: on or off"),
    ("corpus=upload", "corpus", "corpus='upload' is not allowed: a link cannot bring a file"),
    ("corpus=wikipedia", "corpus", "corpus='wikipedia' is not allowed: choose one of jaychou, timemachine, offline"),
    ("clip=-1", "clip", "clip=-1 is not allowed: a number above 0"),
])
def test_an_unreadable_value_keeps_the_default_and_says_what_is_allowed(query, name, message):
    values, problems = read_link(query)
    assert set(problems) == {name} and problems[name].startswith(message), problems
    assert values == form.DEFAULTS


@pytest.mark.parametrize("query, name, value", [
    ("lr=-1", "lr", -1),
    ("theta=0", "theta", 0),
    ("epochs=6000", "epochs", 6000),
    ("num_hiddens=2048", "num_hiddens", 2048),
    ("max_chars=-1", "max_chars", -1),
    ("seed=-3", "seed", -3),
    ("pred_len=501", "pred_len", 501),
    ("temperature=5", "temperature", 5),
    ("top_k=-1", "top_k", -1),
    ("prefixes=" + "x" * 1001, "prefixes", "x" * 1001),
    ("model=transformer", "model", "transformer"),
    ("decoding=beam", "decoding", "beam"),
])
def test_a_value_the_form_refuses_gets_the_forms_message_and_keeps_the_default(query, name, value):
    values, problems = read_link(query)
    assert problems == {name: form.form_to_config({name: value})[1][name]}
    assert problems[name].startswith(f"{name}=")
    assert values == form.DEFAULTS


def test_a_refused_value_keeps_the_presets_value_and_the_rest_of_the_link_holds():
    values, problems = read_link("preset=concise&lr=-1&epochs=120")
    assert problems == {"lr": "lr=-1 is not allowed: a number above 0 and at most 1e9"}
    assert values == form.complete({**form.preset_form("concise"), "epochs": 120})


def test_parameters_that_are_not_settings():
    values, problems = read_link("lesson=clipping&lang=zh&class=ABC&mode=present&__theme=dark&epochs=7")
    assert problems == {} and values == {**form.DEFAULTS, "epochs": 7}
    values, problems = read_link("corpus_file=/etc/passwd&resume=on&foo=1&Epochs=3")
    assert values == form.DEFAULTS
    assert set(problems) == {"corpus_file", "resume", "link"}
    assert "cannot come from a link" in problems["corpus_file"] and "cannot come from a link" in problems["resume"]
    assert "'foo'" in problems["link"] and "'Epochs'" in problems["link"]
    assert "allowed: preset, corpus, max_chars" in problems["link"] and "corpus_file" not in problems["link"]
    values, problems = read_link("preset=chapter&epochs=9")
    assert problems == {"preset": "preset='chapter' is not allowed: choose one of " + ", ".join(PRESETS)}
    assert values == {**form.DEFAULTS, "epochs": 9}


def test_to_query_of_the_defaults_is_empty():
    assert form.to_query(form.DEFAULTS) == "" and form.to_query({}) == ""
    assert form.to_query({**form.DEFAULTS, "corpus_file": "/tmp/x.txt", "resume": True}) == ""


def test_to_query_writes_only_what_differs_in_table_order():
    assert form.to_query({"epochs": 120, "lr": 50.0, "clip": False}) == "lr=50&clip=off&epochs=120"
    assert form.to_query({"prefixes": "the, time"}) == "prefixes=the,%20time"
    assert form.to_query({"prefixes": ""}) == "prefixes=,"   # no prefixes: a lone comma, which a link keeps
    assert form.to_query({**form.preset_form("concise"), "epochs": 120}) == "preset=concise&epochs=120"
    assert form.to_query(form.preset_form("scratch-random")) == ""  # the defaults are the first preset


@pytest.mark.parametrize("name", list(PRESETS))
def test_round_trip_of_the_presets(name):
    values = form.preset_form(name)
    query = form.to_query(values)
    assert form.from_query(dict(parse_qsl(query))) == (form.complete(values), {})


def random_values(rng: random.Random) -> dict:
    """Valid form values drawn within every setting's allowed range (no corpus_file, no resume)."""
    def log(low, high):
        return 10 ** rng.uniform(low, high)
    return dict(
        corpus=rng.choice(["jaychou", "timemachine", "offline"]), max_chars=rng.choice([0, rng.randint(2, 10**7)]),
        model=rng.choice(["scratch", "concise"]), sampling=rng.choice(["random", "consecutive"]),
        optimizer=rng.choice(["sgd", "adam"]), lr=rng.choice([log(-5, 4), float(rng.randint(1, 1000)), 100.0]),
        clip=rng.random() < 0.7, theta=rng.choice([log(-4, 1), 0.01]), epochs=rng.randint(1, 5000),
        num_hiddens=rng.randint(1, 1024), batch_size=rng.randint(1, 512), num_steps=rng.randint(1, 200),
        seed=rng.choice([0, rng.randint(0, 2**63 - 1)]),
        prefixes=rng.choice(["", "分开, 不分开", "the, time machine", "我，你、他", " a & b = c?, #x% "]),
        pred_len=rng.randint(0, 500), pred_period=rng.randint(1, 1000), decoding=rng.choice(["greedy", "sample"]),
        temperature=rng.choice([1.0, rng.uniform(0.05, 2.0), round(rng.randint(1, 40) * 0.05, 2)]),
        top_k=rng.choice([0, rng.randint(1, 100)]))


def test_round_trip_of_random_valid_values():
    rng = random.Random(0)
    for _ in range(200):
        values = random_values(rng)
        assert form.form_to_config(values)[1] == {}, values
        query = form.to_query(values)
        assert "corpus_file" not in query and "resume" not in query
        assert form.from_query(dict(parse_qsl(query))) == (form.complete(values), {}), query
        if not values["clip"] and values["theta"] == 0.01:
            assert "theta" not in query


# ---------------------------------------------------------------- languages
CJK = re.compile(r"[\u3400-\u9fff\uf900-\ufaff\u3000-\u303f\uff00-\uffef]")
# Latin words allowed in the Chinese text: names of things a Chinese class also writes in Latin letters.
ZH_LATIN = {
    "top-k", "k",                      # top-k sampling, and its k
    "g",                               # the gradient g in ‖g‖ > θ
    "SGD", "Adam", "nn.RNN", "PyTorch",  # optimizers and the library's names, as in the book
    "RNN", "GRU", "LSTM", "nn", "nn.GRU", "nn.LSTM",  # the model kinds' names, as the book writes them
    "W_xh", "W_hh", "W_hq",            # the model's parameters, as in the book's code
    "UTF-8", ".txt", "MiB",            # the file format, extension and size unit of an upload
    "CUDA", "GPU",                     # the graphics card and NVIDIA's platform, named so in Chinese too
}
LATIN_WORD = re.compile(r"[A-Za-z0-9_.\-]*[A-Za-z][A-Za-z0-9_.\-]*")


def latin_words(text: str) -> set:
    return {w.strip(".") if w != ".txt" else w for w in LATIN_WORD.findall(text)}


def test_every_setting_has_a_chinese_and_an_english_hint():
    for s in form.SETTINGS:
        zh_label, zh_hint = s.text("zh")
        en_label, en_hint = s.text("en")
        assert zh_hint and CJK.search(zh_hint), s.name
        assert en_hint == s.hint and not CJK.search(en_hint), s.name
        assert en_label and not CJK.search(en_label), s.name
        assert zh_label and (CJK.search(zh_label) or zh_label == en_label == s.label), s.name
        assert s.text("both") == (s.label, f"{zh_hint} · {en_hint}")


def test_chinese_text_has_latin_letters_only_from_the_allow_list():
    texts = [t for s in form.SETTINGS for t in s.text("zh")]
    texts += [label for s in form.SETTINGS if s.kind == "choice" for label, _ in form.choice_labels(s, "zh")]
    found = set().union(*map(latin_words, texts))
    assert found <= ZH_LATIN, found - ZH_LATIN


def test_choice_labels_in_each_language():
    sampling = form.BY_NAME["sampling"]
    assert form.choice_labels(sampling, "both") == list(sampling.choices)
    assert form.choice_labels(sampling, "zh") == [("随机", "random"), ("相邻", "consecutive")]
    assert form.choice_labels(sampling, "en") == [("random", "random"), ("consecutive", "consecutive")]
    assert form.choice_labels(form.BY_NAME["model"], "zh") == [
        ("RNN 从零开始", "scratch"), ("nn.RNN", "concise"), ("GRU 从零开始", "scratch-gru"), ("nn.GRU", "concise-gru"),
        ("LSTM 从零开始", "scratch-lstm"), ("nn.LSTM", "concise-lstm")]
    for s in form.SETTINGS:
        for label, _ in form.choice_labels(s, "en"):
            assert not CJK.search(label), (s.name, label)
    with pytest.raises(ValueError):
        form.choice_labels(sampling, "fr")
    with pytest.raises(ValueError):
        sampling.text("fr")


@pytest.mark.parametrize("params, lang", [
    ({}, "both"), ({"lang": "zh"}, "zh"), ({"lang": "en"}, "en"), ({"lang": "EN"}, "en"), ({"lang": "zh-CN"}, "zh"),
    ({"lang": "both"}, "both"), ({"lang": "fr"}, "both"), ({"lang": ""}, "both"), ({"lang": ["en", "zh"]}, "zh"),
])
def test_lang_of_a_link(params, lang):
    assert form.lang_of(params) == lang and lang in form.LANGS
