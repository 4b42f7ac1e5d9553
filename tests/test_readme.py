"""Every code example in README.md and docs/*.md runs: the API example against a live app, the library snippets,
the CLI lines.

The examples are read from README.md and docs/*.md themselves, so documentation that drifts from the code fails
here.
"""
from __future__ import annotations

import contextlib
import io
import json
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import REPO, serve_app, subprocess_env

DOCS = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
TEXT = "\n".join(path.read_text(encoding="utf-8") for path in DOCS)  # README.md and docs/*.md together
FRONT_PAGE = (REPO / "README.md").read_text(encoding="utf-8")
CLI_EPOCHS = "3"  # the CLI lines run as written plus --epochs 3 (a later flag wins): the full runs are
#                   test_chapter_setups.py's job, here what matters is that each line is right


def python_blocks() -> list[str]:
    return re.findall(r"```python\n(.*?)```", TEXT, flags=re.S)


def block_with(marker: str) -> str:
    found = [b for b in python_blocks() if marker in b]
    assert len(found) == 1, f"README.md and docs/*.md should have one python example with {marker!r}"
    return found[0]


def printed_by_api_example(marker: str, url: str) -> list[str]:
    """What the docs' API example with ``marker`` prints, run as written against the app at ``url`` (less
    gradio_client's "Loaded as API" lines)."""
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(block_with(marker).replace("http://127.0.0.1:7860/", url), f"docs ({marker})", "exec"), {})
    return [line for line in out.getvalue().splitlines() if not line.startswith("Loaded as API")]


def cli_lines() -> list[str]:
    """The indented ``python -m charrnn ...`` lines of README.md and docs/*.md (a trailing backslash joins lines)."""
    text = TEXT.replace("\\\n", " ")
    return [line.strip() for line in text.splitlines() if line.startswith("    python -m charrnn")]


def test_readme_has_the_examples_it_should():
    assert len(python_blocks()) == 5
    assert len(cli_lines()) >= 4


def test_readme_is_a_front_page_with_the_two_commands():
    lines = FRONT_PAGE.splitlines()
    assert len(lines) <= 200
    assert lines[0] == "---" and "app_file: demo/app.py" in FRONT_PAGE.split("\n---\n", 1)[0]
    assert ("    python3.11 -m venv .venv && . .venv/bin/activate && pip install -r requirements.txt -e . "
            "&& python demo/app.py") in lines
    assert ("    python3.11 -m venv .venv && . .venv/bin/activate && pip install -r requirements.txt "
            "-r requirements-dev.txt -e . && python -m pytest") in lines
    for link in re.findall(r"\]\((docs/[^)#]+)", FRONT_PAGE):
        assert link == "docs/screenshot.png" or (REPO / link).is_file(), link


@pytest.fixture
def in_tmp(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.mark.slow  # the snippet trains the chapter's model 100 epochs, then resumes it to 150 (a minute)
def test_library_snippet_runs(jaychou_zip, in_tmp):
    code = block_with("trainer.save(")
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(code, "docs/library.md (library)", "exec"), {})
    lines = out.getvalue().splitlines()
    epochs = [line.split() for line in lines if re.match(r"^\d+ [\d.]+ ", line)]
    assert [int(e[0]) for e in epochs] == list(range(1, 101))
    assert lines[-3].startswith("分开") and len(lines[-3]) == 52  # greedy: the prefix and 50 characters
    assert len(lines[-2]) == 50  # sampled: the 50 new characters
    last_epoch, last_ppl = lines[-1].split()
    assert int(last_epoch) == 150 and float(last_ppl) < float(epochs[-1][1])
    assert (in_tmp / "checkpoints" / "mine" / "epoch-0100.safetensors").is_file()


def test_inside_snippet_runs(jaychou_zip, in_tmp):
    code = block_with("charrnn.inside")
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(code, "docs/library.md (inside)", "exec"), {})
    chars, units, grads = out.getvalue().splitlines()
    assert chars.startswith("[") and chars.count("'") >= 20  # ten characters, then their probabilities
    assert units.endswith(" 5 True")  # five characters read, and an LSTM's memory cell
    norms = [float(x) for x in grads.strip("[]").split(",")]
    assert len(norms) == 4 and all(n >= 0 for n in norms)


@pytest.mark.slow  # the example trains the chapter's model 100 epochs through the page (40-50 s)
def test_api_example_runs_as_written(jaychou_zip, monkeypatch):
    with serve_app(max_runs=2) as served:
        code = block_with('api_name="/generate"')
        assert 'Client("http://127.0.0.1:7860/")' in code
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            exec(compile(code.replace("http://127.0.0.1:7860/", served.url), "docs/api.md (API)", "exec"), {})
    lines = out.getvalue().splitlines()
    epochs = [int(line.split()[0]) for line in lines if re.match(r"^\d+ ", line)]
    assert epochs and epochs == sorted(epochs) and epochs[-1] == 100
    assert "分开" in lines[-2] and "不分开" in lines[-2]  # the newest samples of the two prefixes
    assert lines[-1].startswith("('分开") and "written by run #1" in lines[-1]


def test_curl_of_stats_runs_as_written():
    lines = [line.strip() for line in TEXT.splitlines() if line.startswith("    ") and "gradio_api/call/stats" in line]
    assert len(lines) == 2, lines
    with serve_app() as served:
        script = "\n".join(lines).replace("http://127.0.0.1:7860/", served.url)
        done = subprocess.run(["bash", "-c", script], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    event, data = done.stdout.strip().splitlines()[:2]
    assert event == "event: complete"
    stats = json.loads(data.removeprefix("data: "))[0]
    assert stats["sessions"] >= 0 and stats["cores"] >= 1 and "full_collections" in stats


@pytest.mark.slow  # every CLI line of the docs, each a fresh interpreter on the chapter's model (20 s)
def test_cli_lines_run(jaychou_zip, timemachine_txt, tmp_path):
    env = subprocess_env(CHARRNN_CHECKPOINT_DIR=str(tmp_path / "checkpoints"), PYTHONPATH=str(REPO))
    saved = None
    for line in cli_lines():
        argv = shlex.split(line, comments=True)
        if argv[3] == "train":
            argv += ["--epochs", CLI_EPOCHS, "--no-progress"]
        if "<run-id>" in line:
            assert saved is not None, "a line that saves a checkpoint comes before the one that reads it"
            argv = [saved if "<run-id>" in a else a for a in argv]
        done = subprocess.run([sys.executable, *argv[1:]], cwd=tmp_path, env=env, capture_output=True, text=True,
                              timeout=600)
        assert done.returncode == 0, f"{line}\n{done.stdout}\n{done.stderr}"
        found = re.search(r"^saved (.+\.safetensors)$", done.stdout, flags=re.M)
        saved = found[1] if found else saved
        if argv[3] == "generate":
            assert done.stdout.startswith("分开") and len(done.stdout.rstrip("\n")) == 102  # prefix + 100
    assert saved is not None and Path(saved).is_relative_to(tmp_path / "checkpoints")
