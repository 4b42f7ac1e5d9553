"""``python -m charrnn``: the chapter's printout, generation from a checkpoint, flags, presets and errors."""
from __future__ import annotations

import argparse
import contextlib
import dataclasses
import inspect
import io
import re
import subprocess
import sys

import pytest

import charrnn.checkpoint as ck_mod
import charrnn.cli as cli_mod
from charrnn import PRESETS, TrainConfig, load_checkpoint, predict
from charrnn.cli import build_parser, config_from_args, main
from charrnn.models import KINDS
from charrnn.config import CHOICES
from conftest import REPO, make_text, subprocess_env

EPOCH_LINE = re.compile(r"^epoch \d+, perplexity \d+\.\d{6}, time \d+\.\d{2} sec$")
PREFIXES = ["the ", "a"]
TINY = ["--corpus", "offline", "--max-chars", "3000", "--num-hiddens", "32", "--batch-size", "4",
        "--num-steps", "10", "--no-progress"]


def run_cli(*args: str) -> subprocess.CompletedProcess:
    """``python -m charrnn *args``, run in this process (``charrnn.cli.main``, what ``__main__`` calls), its
    output captured: starting interpreters costs seconds each, and a real process is tested below
    (``test_missing_checkpoint_real_process``, ``test_help_shows_flags_choices_and_chapter_defaults``)."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(list(args))
    return subprocess.CompletedProcess(["charrnn", *args], code, out.getvalue(), err.getvalue())


@pytest.fixture(scope="module")
def cli_run(tmp_path_factory):
    path = tmp_path_factory.mktemp("cli") / "ck.safetensors"
    r = run_cli("train", *TINY, "--epochs", "4", "--pred-period", "2", "--prefixes", *PREFIXES, "--save", str(path))
    assert r.returncode == 0, r.stderr
    return r.stdout, path


def test_train_prints_the_chapters_lines(cli_run):
    out, path = cli_run
    lines = out.splitlines()
    assert lines[0].startswith("scratch · random · lr 100 · θ 0.01 · corpus offline (3,000 chars, vocab ")
    body = lines[1:-2]
    assert lines[-2:] == ["finished 4 epochs", f"saved {path}"]
    # per period: one epoch line, then one sample line per prefix
    assert len(body) == 2 * (1 + len(PREFIXES))
    ck = load_checkpoint(path)
    for block, epoch in zip((body[:3], body[3:]), (2, 4)):
        assert EPOCH_LINE.match(block[0]), block[0]
        assert block[0].startswith(f"epoch {epoch}, perplexity ")
        # the printed perplexity is the run's own, with the chapter's 6 decimals
        assert f"perplexity {ck.metrics[epoch - 1]['perplexity']:f}," in block[0]
        for line, prefix in zip(block[1:], PREFIXES):
            assert line.startswith(" - " + prefix) and len(line) == 3 + len(prefix) + 50, line
    assert ck.epoch == 4 and len(ck.metrics) == 4 and ck.config.corpus == "offline"
    assert ck.config.prefixes == PREFIXES and ck.config.num_hiddens == 32


def test_generate_from_checkpoint(cli_run):
    _, path = cli_run
    r = run_cli("generate", "--checkpoint", str(path), "--prefix", "the ", "--length", "30")
    assert r.returncode == 0, r.stderr
    assert r.stdout.endswith("\n")
    text = r.stdout[:-1]
    assert text.startswith("the ") and len(text) == 4 + 30
    ck = load_checkpoint(path)
    assert text == predict(ck.model, ck.vocab, "the ", 30)  # greedy, as the chapter


def test_generate_sampling_flags(cli_run, capsys):
    _, path = cli_run
    args = ["generate", "--checkpoint", str(path), "--prefix", "a", "--length", "40", "--temperature", "0.9",
            "--top-k", "4", "--seed", "3"]
    assert main(args) == 0
    first = capsys.readouterr().out
    assert main(args) == 0
    assert capsys.readouterr().out == first
    ck = load_checkpoint(path)
    assert first == predict(ck.model, ck.vocab, "a", 40, temperature=0.9, top_k=4, seed=3) + "\n"


def test_resume(cli_run, tmp_path):
    _, path = cli_run
    out = tmp_path / "resumed.safetensors"
    r = run_cli("train", "--resume", str(path), "--epochs", "6", "--no-progress", "--save", str(out))
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    epoch_lines = [ln for ln in lines if ln.startswith("epoch ")]
    assert len(epoch_lines) == 1 and EPOCH_LINE.match(epoch_lines[0]) and epoch_lines[0].startswith("epoch 6,")
    assert "finished 6 epochs" in lines
    before, after = load_checkpoint(path), load_checkpoint(out)
    assert after.epoch == 6 and len(after.metrics) == 6 and after.metrics[:4] == before.metrics
    assert after.run_id == before.run_id


def test_resume_refuses_structural_change(cli_run, capsys):
    _, path = cli_run
    assert main(["train", "--resume", str(path), "--model", "concise", "--no-progress"]) == 2
    assert "cannot change model" in capsys.readouterr().err


# ---------------------------------------------------------------- presets and flag parsing
def config_for(*argv):
    return config_from_args(build_parser().parse_args(["train", *argv]))


def test_preset_resolution():
    c = config_for("--model", "concise")
    assert (c.model, c.optimizer, c.lr, c.sampling, c.clip_theta) == ("concise", "adam", 0.001, "consecutive", 0.01)
    c = config_for()
    assert (c.model, c.optimizer, c.lr, c.sampling) == ("scratch", "sgd", 100.0, "random")
    c = config_for("--sampling", "consecutive")
    assert (c.model, c.optimizer, c.lr, c.sampling) == ("scratch", "sgd", 100.0, "consecutive")
    for name, fields in PRESETS.items():
        c = config_for("--preset", name)
        assert {k: getattr(c, k) for k in fields} == fields
        # the chapter's 250 epochs, samples every 50; the next sections' (GRU, LSTM) 160 and 40
        epochs, period = (250, 50) if name in ("scratch-random", "scratch-consecutive", "concise") else (160, 40)
        assert (c.epochs, c.num_steps, c.batch_size, c.num_hiddens, c.max_chars) == (epochs, 35, 32, 256, 10_000)
        assert c.prefixes == ["分开", "不分开"] and c.pred_period == period and c.pred_len == 50
    c = config_for("--preset", "concise", "--lr", "0.01", "--optimizer", "sgd")
    assert (c.model, c.lr, c.optimizer) == ("concise", 0.01, "sgd")  # flags given win over the preset


def test_optional_values():
    assert config_for("--clip-theta", "off").clip_theta is None
    assert config_for("--clip-theta", "none").clip_theta is None
    assert config_for("--clip-theta", "0.5").clip_theta == 0.5
    assert config_for("--max-chars", "none").max_chars is None
    assert config_for("--top-k", "off").top_k is None
    assert config_for("--top-k", "3").top_k == 3
    assert config_for("--prefixes", "我", "你好").prefixes == ["我", "你好"]
    assert config_for("--fast").fast is True and config_for().fast is False  # opt-in


def train_flags(parser: argparse.ArgumentParser | None = None) -> dict[str, argparse.Action]:
    parser = parser or build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return {a.option_strings[0]: a for a in sub.choices["train"]._actions if a.option_strings}


def test_every_config_field_is_a_flag_with_its_type_and_choices():
    flags = train_flags()
    fields = {"--" + f.name.replace("_", "-"): f.name for f in dataclasses.fields(TrainConfig)}
    assert set(flags) == {*fields, "-h", "--preset", "--corpus-path", "--save", "--save-every", "--resume",
                          "--no-progress"}
    for flag, name in fields.items():
        a = flags[flag]
        assert a.dest == name and a.default is argparse.SUPPRESS
        assert a.choices == CHOICES.get(name)
        assert a.metavar == (None if name in CHOICES or name in ("prefixes", "fast") else name.upper())
    assert set(CHOICES) == {"model", "sampling", "optimizer", "device"}
    assert flags["--fast"].nargs == 0 and flags["--fast"].const is True  # a switch: given means True
    assert flags["--prefixes"].nargs == "+" and flags["--model"].nargs is None
    # the parsers the annotations call for: int | None, float | None, int, float, str
    assert flags["--max-chars"].type("none") is None and flags["--max-chars"].type("7") == 7
    assert flags["--clip-theta"].type("off") is None and flags["--clip-theta"].type("0.5") == 0.5
    assert flags["--top-k"].type("3") == 3 and flags["--epochs"].type("3") == 3 and flags["--lr"].type("2") == 2.0
    assert flags["--corpus"].type is str
    for flag, message in [("--epochs", "'none' is not an integer"), ("--lr", "'off' is not a number")]:
        with pytest.raises(argparse.ArgumentTypeError, match=f"^{message}$"):
            flags[flag].type(message.split("'")[1])
    assert "eval(" not in inspect.getsource(cli_mod)


def test_choices_come_from_config(monkeypatch):
    monkeypatch.setitem(CHOICES, "model", (*CHOICES["model"], "transformer"))
    monkeypatch.setitem(CHOICES, "device", ("auto", "cpu"))
    flags = train_flags()
    assert flags["--model"].choices == (*KINDS, "transformer")
    assert flags["--device"].choices == ("auto", "cpu")
    assert build_parser().parse_args(["train", "--model", "transformer"]).model == "transformer"
    with pytest.raises(SystemExit):
        build_parser().parse_args(["train", "--device", "cuda"])


def test_help_shows_flags_choices_and_chapter_defaults():
    r = subprocess.run([sys.executable, "-m", "charrnn", "train", "--help"], cwd=REPO, capture_output=True, text=True,
                       encoding="utf-8", env=subprocess_env(COLUMNS="1000"), timeout=120)
    assert r.returncode == 0, r.stderr
    lines = [ln.strip() for ln in r.stdout.splitlines()]
    for expected in [
        "--model {scratch,concise,scratch-gru,concise-gru,scratch-lstm,concise-lstm}",
        "--num-layers NUM_LAYERS",
        "--sampling {random,consecutive}",
        "--optimizer {sgd,adam}",
        "--device {auto,cpu,cuda}",
        "--lr LR",
        "--clip-theta CLIP_THETA",
        "--max-chars MAX_CHARS",
        "--prefixes PREFIXES [PREFIXES ...]",
    ]:
        assert any(ln.startswith(expected) for ln in lines), expected
    assert ("scratch: the chapter's RNN: explicit W_xh, W_hh, W_hq; concise: torch.nn.RNN + Linear (the chapter's "
            "concise model); scratch-gru: 6.7's GRU") in r.stdout
    assert ("(default: 100.0 for scratch-random, 100.0 for scratch-consecutive, 0.001 for concise, 100.0 for "
            "scratch-gru, 100.0 for scratch-lstm, 0.01 for concise-gru, 0.01 for concise-lstm)") in r.stdout
    assert "stacked recurrent layers (6.9), 1 to 8; more than 1 only for the concise models (default: 1)" in r.stdout
    assert ("norm; None turns clipping off (default: 0.01 for scratch-random, 0.01 for scratch-consecutive, 0.01 for "
            "concise, 0.01 for scratch-gru, 0.01 for scratch-lstm, None for concise-gru, "
            "None for concise-lstm)") in r.stdout
    assert "(default: ['分开', '不分开'])" in r.stdout


@pytest.mark.parametrize("argv, words", [
    (["--lr", "-1"], "lr=-1.0 is not allowed"),
    (["--lr", "0"], "lr=0.0 is not allowed"),
    (["--epochs", "0"], "epochs=0 is not allowed"),
    (["--batch-size", "0"], "batch_size=0 is not allowed"),
    (["--clip-theta", "-2"], "clip_theta=-2.0 is not allowed"),
    (["--temperature", "-1"], "temperature=-1.0 is not allowed"),
    (["--prefixes", "a", "b" * 1001], "each at most 1000 characters"),
    (["--corpus", "no-such-corpus"], "unknown corpus 'no-such-corpus'"),
])
def test_bad_values_exit_2(argv, words, capsys):
    assert main(["train", *argv, "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and words in err and "Traceback" not in err


@pytest.mark.parametrize("argv, words", [
    (["--lr", "abc"], "'abc' is not a number"),
    (["--epochs", "2.5"], "'2.5' is not an integer"),
    (["--model", "lstm"], "invalid choice: 'lstm'"),
    (["--sampling", "adjacent"], "invalid choice"),
    (["--no-such-flag"], "unrecognized arguments"),
])
def test_unparseable_flags_exit_2(argv, words, capsys):
    with pytest.raises(SystemExit) as e:
        main(["train", *argv])
    assert e.value.code == 2
    assert words in capsys.readouterr().err


def test_generate_errors_exit_2(cli_run, tmp_path, capsys):
    _, path = cli_run
    assert main(["generate", "--checkpoint", str(path), "--prefix", "the 分开Q"]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""  # nothing written before the error
    assert "error: " in captured.err and "'分'" in captured.err and "'开'" in captured.err
    assert main(["generate", "--checkpoint", str(path), "--prefix", ""]) == 2
    assert "empty" in capsys.readouterr().err
    assert main(["generate", "--checkpoint", str(path), "--prefix", "the", "--length", "-5"]) == 2
    assert "length" in capsys.readouterr().err
    junk = tmp_path / "junk.safetensors"
    junk.write_bytes(b"not a checkpoint at all")
    assert main(["generate", "--checkpoint", str(junk)]) == 2
    assert "not a charrnn checkpoint" in capsys.readouterr().err


def test_missing_checkpoint_real_process(tmp_path):
    r = run_cli("generate", "--checkpoint", str(tmp_path / "missing.safetensors"))
    assert r.returncode == 2 and r.stdout == ""
    assert r.stderr.strip() == f"error: no checkpoint at {str(tmp_path / 'missing.safetensors')!r}"


# ---------------------------------------------------------------- in-process runs on a user text
@pytest.fixture
def text_file(tmp_path):
    p = tmp_path / "story.txt"
    p.write_text(make_text(), encoding="utf-8")
    return p


def test_save_every_and_default_path(text_file, tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(ck_mod, "CHECKPOINT_DIR", tmp_path / "checkpoints")
    argv = ["train", "--corpus", str(text_file), "--max-chars", "none", "--num-hiddens", "8", "--batch-size", "4",
            "--num-steps", "8", "--epochs", "4", "--pred-period", "2", "--prefixes", "the", "--save-every", "2",
            "--save", "--no-progress", "--lr", "1"]
    assert main(argv) == 0
    out = capsys.readouterr().out
    runs = list((tmp_path / "checkpoints").iterdir())
    assert len(runs) == 1
    assert sorted(p.name for p in runs[0].iterdir()) == ["epoch-0002.safetensors", "epoch-0004.safetensors"]
    assert f"saved {runs[0] / 'epoch-0004.safetensors'}" in out
    assert load_checkpoint(runs[0] / "epoch-0002.safetensors").epoch == 2


def test_diverging_run_exits_3(text_file, capsys):
    argv = ["train", "--corpus", str(text_file), "--max-chars", "none", "--num-hiddens", "32", "--batch-size", "4",
            "--num-steps", "8", "--epochs", "3", "--lr", "1e6", "--clip-theta", "off", "--no-progress"]
    assert main(argv) == 3
    out = capsys.readouterr().out
    assert "the loss became" in out and "turn clipping on" in out
