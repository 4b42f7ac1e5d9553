"""Why a press started nothing, in the page's language (demo.problems): every message the form gives for a bad
setting has a Chinese side that keeps its values, and a page in one language shows that side only."""
from __future__ import annotations

import re

import pytest

from demo import form
from demo.problems import bilingual, chinese, in_page
from demo.settings import DEFAULTS

HAN = re.compile(r"[\u3400-\u9fff]")
QUOTED = re.compile(r"'[^'\s]+'")   # a quoted character or file name: '分', 'bad.txt'
VALUE = re.compile(r"-?\d(?:[\d,.]*\d)?|'[^'\s]+'")  # the values a message quotes: 1,121, 1e9, -1, '分'
NAMES = re.compile(r"\w+=\S+|\w+_\w+|scratch|concise|random|consecutive|None|UTF|txt|NUL")  # names kept

BAD = [dict(lr=-1), dict(lr=2e9), dict(epochs=0.5), dict(corpus="offline", prefixes="分开"), dict(corpus="upload"),
       dict(num_layers=3), dict(theta=-1), dict(batch_size=0), dict(max_chars=5), dict(resume=True), dict(seed=-3),
       dict(num_hiddens=0), dict(pred_len=10**7), dict(temperature=-1), dict(top_k=0.5)]


@pytest.mark.parametrize("bad", BAD, ids=lambda b: ",".join(b))
def test_every_problem_of_the_form_has_its_chinese(bad):
    problems = form.check({**DEFAULTS, **bad}, None).problems
    assert problems, bad
    for message in problems.values():
        zh, en = in_page(message, "zh"), in_page(message, "en")
        assert HAN.search(zh) and not re.search(r"[A-Za-z]{3,}", NAMES.sub("", QUOTED.sub("", zh))), zh
        assert not HAN.search(QUOTED.sub("", en)), en
        # the values the message quotes stay in the Chinese: numbers, quoted characters
        assert set(VALUE.findall(en)) <= set(VALUE.findall(zh)), (zh, en)
        assert in_page(message, "both") == f"{zh} · {en}"


def test_library_messages_by_their_form():
    assert chinese("lr=-1 is not allowed: a number above 0 and at most 1e9") == (
        "lr=-1 不允许，须为大于 0、不超过 1e9 的数")
    assert chinese("batch_size=0 is not allowed: an integer from 1 to 4096") == (
        "batch_size=0 不允许，须为 1 到 4096 的整数")
    assert chinese("the file 'x.txt' looks binary (it holds NUL bytes): only UTF-8 text is allowed") == (
        "文件 'x.txt' 像是二进制文件（含 NUL 字节）：只接受 UTF-8 文本")
    assert chinese("the prefix '分x' has 1 character(s) the model has never seen: 'x'. Use characters from its "
                   "training text.") == "前缀 '分x' 里有 1 个模型没见过的字：'x'。请用训练文本里的字"
    # a form not listed stays as it is on every page; a message in both languages already is left alone
    assert chinese("something new went wrong") is None and in_page("something new went wrong", "zh") == (
        "something new went wrong")
    pair = "epochs=0.5 不允许，须为不大于 5,000 的整数 · epochs=0.5 is not allowed: a whole number, at most 5,000"
    assert bilingual(pair) == pair and in_page(pair, "en") == "epochs=0.5 is not allowed: a whole number, at most 5,000"


def _checkpoint_errors(tmp_path) -> list[str]:
    """What loading a bad upload really says (charrnn.checkpoint's messages, each naming the file)."""
    import struct

    import torch
    from safetensors.torch import save_file

    from charrnn.checkpoint import CheckpointError, load_checkpoint
    files = {"short.safetensors": b"abc",
             "claims.safetensors": struct.pack("<Q", 10_000) + b"{}",
             "text.safetensors": struct.pack("<Q", 5) + b"hello"}
    for name, data in files.items():
        (tmp_path / name).write_bytes(data)
    save_file({"w": torch.zeros(2)}, str(tmp_path / "plain.safetensors"))
    messages = []
    for name, cap in [*((n, None) for n in files), ("plain.safetensors", None), ("plain.safetensors", 10)]:
        with pytest.raises(CheckpointError) as e:
            load_checkpoint(str(tmp_path / name), **({"max_bytes": cap} if cap else {}))
        messages.append(str(e.value))
    return messages


def test_an_uploaded_checkpoints_problem_has_its_chinese_keeping_the_files_name(tmp_path):
    from demo.checkpoints import NO_CHECKPOINT
    for message in [*_checkpoint_errors(tmp_path), NO_CHECKPOINT]:
        zh = chinese(message)
        assert zh and HAN.search(zh), message
        name = re.match(r"(\S+\.safetensors) ", message)
        assert name is None or zh.startswith(name[1]), (message, zh)
        assert in_page(message, "zh") == zh and in_page(message, "en") == message
