"""A corpus the page does not have yet: fetched once in the background whatever the presses, with its progress,
and a failure said with the CLI's words; why a press starts nothing, in the page's language."""
from __future__ import annotations

import dataclasses
import re
import shutil

import pytest

import charrnn.corpus as corpus_mod
from conftest import JAYCHOU_ZIP, closed_port_url, wait_for
from demo.fetching import Fetches
from demo.training import not_started

HAN = re.compile(r"[\u3400-\u9fff]")


def serve_jaychou(monkeypatch, url: str) -> None:
    monkeypatch.setitem(corpus_mod.REMOTE, "jaychou", dataclasses.replace(corpus_mod.REMOTE["jaychou"], url=url))


def test_one_download_for_many_presses_with_its_progress(jaychou_zip, tmp_path, isolated_data_dirs, http_serve,
                                                         monkeypatch):
    srv = tmp_path / "srv"
    srv.mkdir()
    shutil.copy(jaychou_zip, srv / JAYCHOU_ZIP)
    serve_jaychou(monkeypatch, f"{http_serve(srv, pace=0.05)}/{JAYCHOU_ZIP}")  # 13 pieces of 4 kB: ~0.65 s
    fetches = Fetches()
    job = fetches.start("jaychou")
    assert fetches.start("jaychou") is job and fetches.running("jaychou") is job  # a second press waits for it
    wait_for(lambda: 0 < job.got < job.total, timeout=10, step=0.01)
    assert re.search(r"Fetching the corpus jaychou_lyrics\.txt\.zip \d+% \(\d+ / 51 kB\)…$", job.note("en"))
    assert job.note("zh").startswith("⤓ 正在下载语料 jaychou_lyrics.txt.zip")
    assert job.done.wait(20) and job.error is None
    assert corpus_mod.is_local("jaychou") and fetches.running("jaychou") is None
    assert fetches.start("jaychou") is not job  # a later one starts anew (and finds the file at once)


def test_a_failed_download_says_what_the_cli_says(tmp_path, isolated_data_dirs, monkeypatch):
    serve_jaychou(monkeypatch, closed_port_url(JAYCHOU_ZIP))
    job = Fetches().start("jaychou")
    assert job.done.wait(20)
    env_dir, default_dir = isolated_data_dirs
    with pytest.raises(corpus_mod.CorpusError) as cli:  # what `python -m charrnn train` prints
        corpus_mod.load_corpus("jaychou", progress=False)
    assert job.error == str(cli.value)
    assert "jaychou_lyrics.txt.zip is not on this machine" in job.error and str(env_dir) in job.error


def test_why_a_press_started_nothing_in_each_language():
    problems = {"lr": "lr=-1 is not allowed: a number above 0", "corpus_file": "the file 'a.txt' looks binary"}
    both, en, zh = (not_started(problems, lang) for lang in ("both", "en", "zh"))
    assert both.startswith("✗ **未开始 · Not started** — 学习率 · learning rate: lr=-1")
    assert en == ("✗ **Not started** — learning rate: lr=-1 is not allowed: a number above 0 · "
                  "upload a .txt: the file 'a.txt' looks binary")
    assert not HAN.search(en)
    assert zh.startswith("✗ **未开始** — 学习率: lr=-1") and "上传文本: the file" in zh
