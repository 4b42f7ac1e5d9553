"""Corpora: finding, downloading and verifying the pinned files, cleaning, the vocabulary, user texts."""
from __future__ import annotations

import gc
import hashlib
import importlib.util
import json
import shutil
import subprocess
import sys
import threading
import time
import warnings
import zipfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import torch

import charrnn.corpus as corpus_mod
from charrnn import CorpusError, Trainer, Vocab, from_file, from_text, load_corpus
from charrnn.corpus import describe_unknown
from conftest import JAYCHOU_ZIP, TIMEMACHINE_TXT, closed_port_url, subprocess_env

JAYCHOU_SHA1 = "9529987e701a4f37048ab778270a5dde9a762a0b"
TIMEMACHINE_SHA1 = "090b5e7e70c295757f55df93cb0a180b9691891a"
V_CHAPTER = 1027


def raw_lyrics(zip_path: Path) -> str:
    """The lyrics read independently of charrnn: the zip's one member, decoded as UTF-8."""
    with zipfile.ZipFile(zip_path) as z:
        return z.read("jaychou_lyrics.txt").decode("utf-8")


def all_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file()) if folder.exists() else []


# ---------------------------------------------------------------- finding the pinned files
def test_jaychou_explicit_path(jaychou_zip, isolated_data_dirs):
    c = load_corpus("jaychou", 10_000, path=jaychou_zip, progress=False)
    assert (len(c), len(c.vocab)) == (10_000, V_CHAPTER)


def test_jaychou_explicit_path_missing_is_an_error(tmp_path, isolated_data_dirs):
    with pytest.raises(CorpusError, match="no such file"):
        load_corpus("jaychou", path=tmp_path / "nope.zip", progress=False)


def test_jaychou_via_env_var(shared_data_dir, jaychou_zip, tmp_path, monkeypatch):
    empty = tmp_path / "data"
    empty.mkdir()
    monkeypatch.setattr(corpus_mod, "DEFAULT_DATA_DIR", empty)
    monkeypatch.setenv("CHARRNN_DATA_DIR", str(shared_data_dir))
    c = load_corpus("jaychou", 10_000, progress=False)
    assert (len(c), len(c.vocab)) == (10_000, V_CHAPTER)
    assert all_files(empty) == []  # found, not downloaded


def test_jaychou_via_default_data_dir(jaychou_zip, tmp_path, monkeypatch):
    data = tmp_path / "data"
    data.mkdir()
    shutil.copy(jaychou_zip, data / JAYCHOU_ZIP)
    monkeypatch.setattr(corpus_mod, "DEFAULT_DATA_DIR", data)
    monkeypatch.delenv("CHARRNN_DATA_DIR", raising=False)
    c = load_corpus("jaychou", 10_000, progress=False)
    assert (len(c), len(c.vocab)) == (10_000, V_CHAPTER)


def test_local_copy_with_wrong_hash_is_refused(jaychou_zip, isolated_data_dirs):
    env_dir, _ = isolated_data_dirs
    bad = env_dir / JAYCHOU_ZIP
    data = bytearray(jaychou_zip.read_bytes())
    data[len(data) // 2] ^= 0xFF
    bad.write_bytes(bytes(data))
    got = hashlib.sha1(bytes(data)).hexdigest()
    with pytest.raises(CorpusError) as e:
        load_corpus("jaychou", progress=False)
    msg = str(e.value)
    assert "SHA-1" in msg and JAYCHOU_SHA1 in msg and got in msg and str(bad) in msg
    # the same through an explicit path
    with pytest.raises(CorpusError, match="SHA-1"):
        load_corpus("jaychou", path=bad, progress=False)
    assert bad.read_bytes() == bytes(data)  # a user's file is reported, never deleted


# ---------------------------------------------------------------- preprocessing and the vocabulary
def test_preprocessing_matches_the_chapter(jaychou_zip):
    raw = raw_lyrics(jaychou_zip)
    full = load_corpus("jaychou", None, path=jaychou_zip, progress=False)
    assert len(full) == 63_282
    assert "\n" not in full.text and "\r" not in full.text
    assert full.text == raw.replace("\n", " ").replace("\r", " ")
    first = load_corpus("jaychou", 10_000, path=jaychou_zip, progress=False)
    assert first.text == full.text[:10_000]
    assert len(first.vocab) == V_CHAPTER == len(set(full.text[:10_000]))


def test_max_chars_default_is_the_chapters_10000(jaychou_zip):
    assert len(load_corpus("jaychou", path=jaychou_zip, progress=False)) == 10_000


def test_vocab_is_sorted_and_indices_match(jaychou_10k):
    c = jaychou_10k
    assert c.vocab.itos == sorted(set(c.text))
    assert c.vocab.stoi == {ch: i for i, ch in enumerate(sorted(set(c.text)))}
    assert c.indices.dtype == torch.long and c.indices.shape == (10_000,)
    order = {ch: i for i, ch in enumerate(sorted(set(c.text)))}
    assert c.indices.tolist() == [order[ch] for ch in c.text]
    assert c.vocab.decode(c.indices.tolist()) == c.text


VOCAB_SCRIPT = """
import hashlib, json, sys
from charrnn import load_corpus
c = load_corpus("jaychou", 10_000, path={path!r}, progress=False)
print(json.dumps({{"sha": hashlib.sha256(c.vocab.to_json().encode()).hexdigest(), "first": c.indices[:50].tolist(),
                  "set_order": hashlib.sha256("".join(set(c.text)).encode()).hexdigest()}}))
"""


def test_vocab_identical_across_processes(jaychou_zip, jaychou_10k):
    script = VOCAB_SCRIPT.format(path=str(jaychou_zip))
    procs = [subprocess.Popen([sys.executable, "-c", script], env=subprocess_env(PYTHONHASHSEED=seed),
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, encoding="utf-8")
             for seed in ("1", "2")]
    outs = []
    for p in procs:
        out, err = p.communicate(timeout=120)
        assert p.returncode == 0, err
        outs.append(json.loads(out.strip().splitlines()[-1]))
    # the book's list(set(...)) order really does differ between these two processes ...
    assert outs[0]["set_order"] != outs[1]["set_order"]
    # ... while ours does not, and it is the one this process has too
    assert outs[0]["sha"] == outs[1]["sha"] == hashlib.sha256(jaychou_10k.vocab.to_json().encode()).hexdigest()
    assert outs[0]["first"] == outs[1]["first"] == jaychou_10k.indices[:50].tolist()


def test_encode_decode_roundtrip_and_unknown_chars():
    v = Vocab("hello world")
    assert v.itos == [" ", "d", "e", "h", "l", "o", "r", "w"]
    ids = v.encode("hello world")
    assert ids == [3, 2, 4, 4, 5, 0, 7, 5, 6, 4, 1]
    assert v.decode(ids) == "hello world"
    assert Vocab.from_json(v.to_json()) == v
    with pytest.raises(CorpusError) as e:
        v.encode("help xylophone")
    assert str(e.value) == "4 character(s) not in the vocabulary: 'p' 'x' 'y' 'n'"
    assert v.unknown("help xylophone") == ["p", "x", "y", "n"]


def test_encode_names_at_most_20_unknown_characters():
    v = Vocab("ab")
    text = "ab" + "".join(chr(0x4E00 + i) for i in range(25))
    with pytest.raises(CorpusError) as e:
        v.encode(text)
    shown = " ".join(repr(chr(0x4E00 + i)) for i in range(20))
    assert str(e.value) == f"25 character(s) not in the vocabulary: {shown} (and 5 more)"


@pytest.mark.parametrize("chars, limit, expected", [
    ([], 20, ""),
    (["x"], 20, "'x'"),
    (["x", "y", "分"], 20, "'x' 'y' '分'"),
    ("xyx", 20, "'x' 'y'"),                        # each once, in order of appearance
    ([" ", "\n", "\t", "'"], 20, "' ' '\\n' '\\t' \"'\""),  # reprs: spaces and control characters show
    (list("abcd"), 2, "'a' 'b' (and 2 more)"),
    (list("abcd"), 4, "'a' 'b' 'c' 'd'"),
    (list("abcd"), 3, "'a' 'b' 'c' (and 1 more)"),
    (list("abcd"), 0, "(and 4 more)"),
    ([chr(0x4E00 + i) for i in range(21)], 20,
     " ".join(repr(chr(0x4E00 + i)) for i in range(20)) + " (and 1 more)"),
])
def test_describe_unknown(chars, limit, expected):
    assert describe_unknown(chars, limit) == expected


def test_describe_unknown_default_limit_is_20():
    assert describe_unknown(list("abcdefghijklmnopqrstuvwxyz")).endswith("'s' 't' (and 6 more)")


def test_the_prefix_message_names_unknown_characters_the_same_way():
    from charrnn.generate import PrefixError, check_prefix
    v = Vocab("ab ")
    prefix = "ab " + "".join(chr(0x4E00 + i) for i in range(22)) + "分"
    with pytest.raises(PrefixError) as e:
        check_prefix(v, prefix)
    assert str(e.value) == (f"the prefix {prefix!r} has 23 character(s) the model has never seen: "
                            f"{describe_unknown([chr(0x4E00 + i) for i in range(20)])} (and 3 more). "
                            "Use characters from its training text.")


def test_vocab_from_json_refuses_unsorted():
    with pytest.raises(CorpusError):
        Vocab.from_json(json.dumps(["b", "a"]))


# ---------------------------------------------------------------- downloading
def test_download_lands_in_data_dir_and_verifies(jaychou_zip, tmp_path, isolated_data_dirs, http_serve):
    env_dir, default_dir = isolated_data_dirs
    srv = tmp_path / "srv"
    srv.mkdir()
    shutil.copy(jaychou_zip, srv / JAYCHOU_ZIP)
    base = http_serve(srv)
    dest = tmp_path / "dest"
    c = load_corpus("jaychou", 10_000, data_dir=dest, url=f"{base}/{JAYCHOU_ZIP}", progress=False)
    assert (len(c), len(c.vocab)) == (10_000, V_CHAPTER)
    assert all_files(dest) == [dest / JAYCHOU_ZIP]
    assert hashlib.sha1((dest / JAYCHOU_ZIP).read_bytes()).hexdigest() == JAYCHOU_SHA1
    assert all_files(env_dir) == [] and all_files(default_dir) == []
    # downloaded once: with the server gone it is still found there
    again = load_corpus("jaychou", 10_000, data_dir=dest, url=closed_port_url(JAYCHOU_ZIP), progress=False)
    assert again.text == c.text


def test_download_default_destination_is_data_dir(jaychou_zip, tmp_path, isolated_data_dirs, http_serve):
    _, default_dir = isolated_data_dirs
    srv = tmp_path / "srv"
    srv.mkdir()
    shutil.copy(jaychou_zip, srv / JAYCHOU_ZIP)
    load_corpus("jaychou", 100, url=f"{http_serve(srv)}/{JAYCHOU_ZIP}", progress=False)
    assert all_files(default_dir) == [default_dir / JAYCHOU_ZIP]
    # the next call finds it in data/ without any URL to download from
    assert len(load_corpus("jaychou", 100, url=closed_port_url(JAYCHOU_ZIP), progress=False)) == 100


def test_download_reports_its_progress_to_a_function(jaychou_zip, tmp_path, isolated_data_dirs, http_serve):
    srv = tmp_path / "srv"
    srv.mkdir()
    shutil.copy(jaychou_zip, srv / JAYCHOU_ZIP)
    told: list[tuple[int, int]] = []
    assert not corpus_mod.is_local("jaychou")
    load_corpus("jaychou", 100, url=f"{http_serve(srv)}/{JAYCHOU_ZIP}", progress=lambda *t: told.append(t))
    size = jaychou_zip.stat().st_size
    assert corpus_mod.is_local("jaychou")  # downloaded into data/
    assert len(told) > 10 and all(total == size for _, total in told)  # 52,607 bytes in 1 kB chunks
    got = [g for g, _ in told]
    assert got == sorted(got[:-1]) + [size]  # growing, and the last says all of it arrived


def test_a_server_that_never_answers_fails_within_the_timeout(tmp_path, isolated_data_dirs, silent_url, monkeypatch):
    monkeypatch.setattr(corpus_mod, "DOWNLOAD_TIMEOUT", 0.5)
    t = time.monotonic()
    with pytest.raises(CorpusError, match="could not be downloaded .offline.*: put it in"):
        load_corpus("jaychou", 100, url=silent_url, progress=False)
    # a read timeout of 0.5 s, not the system's minutes; the bound leaves room for pooch's own work and a busy
    # machine
    assert time.monotonic() - t < 10


def test_what_is_local():
    assert corpus_mod.is_local("offline") and corpus_mod.is_local("/any/path.txt")


def test_download_with_wrong_hash_keeps_nothing(jaychou_zip, tmp_path, isolated_data_dirs, http_serve):
    srv = tmp_path / "srv"
    srv.mkdir()
    data = bytearray(jaychou_zip.read_bytes())
    data[100] ^= 0x01
    (srv / JAYCHOU_ZIP).write_bytes(bytes(data))
    dest = tmp_path / "dest"
    dest.mkdir()
    with pytest.raises(CorpusError) as e:
        load_corpus("jaychou", data_dir=dest, url=f"{http_serve(srv)}/{JAYCHOU_ZIP}", progress=False)
    assert "SHA-1" in str(e.value) and JAYCHOU_SHA1 in str(e.value)
    assert list(dest.iterdir()) == []  # no file, no temporary leftovers
    env_dir, default_dir = isolated_data_dirs
    assert all_files(env_dir) == [] and all_files(default_dir) == []


def test_unreachable_url_is_one_clear_sentence(tmp_path, isolated_data_dirs):
    env_dir, default_dir = isolated_data_dirs
    with pytest.raises(CorpusError) as e:
        load_corpus("jaychou", url=closed_port_url(JAYCHOU_ZIP), progress=False)
    msg = str(e.value)
    assert JAYCHOU_ZIP in msg
    assert "$CHARRNN_DATA_DIR" in msg and str(env_dir) in msg
    assert str(default_dir) in msg
    assert "\n" not in msg and ". " not in msg.rstrip(".")  # one sentence
    assert "Traceback" not in msg and len(msg) < 400
    assert all_files(default_dir) == []


def test_unreachable_url_without_env_var(tmp_path, monkeypatch):
    default_dir = tmp_path / "data"
    monkeypatch.setattr(corpus_mod, "DEFAULT_DATA_DIR", default_dir)
    monkeypatch.delenv("CHARRNN_DATA_DIR", raising=False)
    with pytest.raises(CorpusError) as e:
        load_corpus("timemachine", url=closed_port_url(TIMEMACHINE_TXT), progress=False)
    msg = str(e.value)
    assert TIMEMACHINE_TXT in msg and "$CHARRNN_DATA_DIR" in msg and str(default_dir) in msg


def test_timemachine_same_mechanism(timemachine_txt, tmp_path, isolated_data_dirs, http_serve):
    assert hashlib.sha1(timemachine_txt.read_bytes()).hexdigest() == TIMEMACHINE_SHA1
    raw = timemachine_txt.read_text(encoding="utf-8")
    by_path = load_corpus("timemachine", None, path=timemachine_txt, progress=False)
    assert by_path.text == raw.replace("\n", " ").replace("\r", " ")
    assert len(by_path) > 100_000 and set("the time machine") <= set(by_path.vocab.itos)
    srv = tmp_path / "srv"
    srv.mkdir()
    shutil.copy(timemachine_txt, srv / TIMEMACHINE_TXT)
    dest = tmp_path / "dest"
    c = load_corpus("timemachine", 5_000, data_dir=dest, url=f"{http_serve(srv)}/{TIMEMACHINE_TXT}", progress=False)
    assert c.text == by_path.text[:5_000]
    assert all_files(dest) == [dest / TIMEMACHINE_TXT]
    # wrong bytes served: refused, nothing kept
    (srv / "bad.txt").write_bytes(raw.replace("Time", "Tame").encode())
    dest2 = tmp_path / "dest2"
    with pytest.raises(CorpusError, match="SHA-1"):
        load_corpus("timemachine", data_dir=dest2, url=f"{http_serve(srv)}/bad.txt", progress=False)
    assert all_files(dest2) == []


# ---------------------------------------------------------------- the offline corpus
def test_offline_corpus(tiny_config):
    a = load_corpus("offline", None)
    assert corpus_mod.offline_text().replace("\n", " ") == a.text  # built the same way every time
    assert len(a) > 50_000 and len(a.vocab) >= 30
    assert set("abcdefghijklmnopqrstuvwxyz ") <= set(a.vocab.itos)
    small = from_text(a.text, name="offline", max_chars=3_000)  # what load_corpus("offline", 3_000) gives
    cfg = tiny_config(corpus="offline", max_chars=3_000, num_hiddens=32, lr=1.0, clip_theta=1.0, epochs=6,
                      batch_size=8, num_steps=10)
    trainer = Trainer(cfg, small)
    events = [e for e in trainer.run() if hasattr(e, "perplexity")]
    ppl = [e.perplexity for e in events]
    assert len(ppl) == 6
    V = len(small.vocab)
    assert ppl[0] < 1.5 * V                        # starts near the uniform guess (or better) ...
    assert ppl[-1] < 0.6 * ppl[0] and ppl[-1] < V / 2  # ... and learns


def test_a_class_pressing_train_at_once_reads_a_corpus_once(monkeypatch):
    """Four threads ask for the offline corpus of a fresh server at once (a class's first presses): one reads it
    and parses the sources, the others wait and get the same Corpus. Without the lock each thread parsed them, and
    CPython 3.11's ast.parse in several threads at once failed ("AST constructor recursion depth mismatch"), so
    those presses never started a run."""
    corpus_mod.cached_corpus.cache_clear()
    corpus_mod._offline_text.cache_clear()
    parses, parse = [], corpus_mod.ast.parse
    monkeypatch.setattr(corpus_mod.ast, "parse", lambda *a, **k: parses.append(1) or parse(*a, **k))
    modules = len([m for m in corpus_mod.OFFLINE_MODULES if importlib.util.find_spec(m)])
    barrier = threading.Barrier(4)

    def press(_):
        barrier.wait()
        return corpus_mod.cached_corpus("offline", 3_000)

    with ThreadPoolExecutor(4) as pool:
        got = list(pool.map(press, range(4)))
    assert all(c is got[0] for c in got) and len(got[0]) == 3_000
    assert 0 < len(parses) <= modules, "the sources were parsed more than once"
    corpus_mod.cached_corpus.cache_clear()


def test_offline_text_closes_the_files_it_reads():
    gc.collect()  # what earlier tests left is theirs, not this one's
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        text = corpus_mod.offline_text(("json", "abc", "no_such_module_here"))
        gc.collect()
    assert [str(w.message) for w in caught if issubclass(w.category, ResourceWarning)] == []
    assert "JSON (JavaScript Object Notation)" in text and len(text) > 1000


# ---------------------------------------------------------------- user texts
def test_user_text_from_string():
    c = from_text("ab\nba\r\nab", name="mine")
    assert c.name == "mine" and c.text == "ab ba  ab"
    assert c.vocab.itos == [" ", "a", "b"]
    assert c.indices.tolist() == [1, 2, 0, 2, 1, 0, 0, 1, 2]
    assert from_text("abcdef", max_chars=3).text == "abc"


def test_user_text_from_path(tmp_path):
    p = tmp_path / "mine.txt"
    p.write_text("第一行\n第二行\n", encoding="utf-8")
    for c in (from_file(p), load_corpus(str(p), None)):
        assert c.text == "第一行 第二行 "
        assert len(c.vocab) == 5
    assert load_corpus(str(p), 3).text == "第一行"
    bom = tmp_path / "bom.txt"
    bom.write_bytes("\ufeffhi there".encode("utf-8"))
    assert from_file(bom).text == "hi there"  # a BOM is not a character of the text


@pytest.mark.parametrize("text, words", [("", "empty"), ("   \n\t  ", "empty"), ("abc\x00def", "NUL")])
def test_user_text_errors(text, words):
    with pytest.raises(CorpusError, match=words):
        from_text(text)


def test_not_a_str():
    with pytest.raises(CorpusError, match="str"):
        from_text(b"bytes")  # type: ignore[arg-type]


@pytest.mark.parametrize("raw, words", [
    (b"", "empty"),
    (b"caf\xe9 au lait", "not UTF-8"),                        # latin-1 'café'
    (bytes(range(128, 256)) * 4, "not UTF-8"),                # random high bytes, no NUL
    (b"PK\x03\x04\x00\x00binary\x00stuff", "binary"),          # NUL bytes
    (b"   \n  \n", "empty"),                                   # whitespace only
])
def test_user_file_errors(tmp_path, raw, words):
    p = tmp_path / "user.txt"
    p.write_bytes(raw)
    with pytest.raises(CorpusError, match=words) as e:
        from_file(p)
    assert "user.txt" in str(e.value)
    with pytest.raises(CorpusError, match=words):
        load_corpus(str(p))


def test_nonexistent_path_and_unknown_name(tmp_path):
    with pytest.raises(CorpusError, match="no such file"):
        from_file(tmp_path / "missing.txt")
    with pytest.raises(CorpusError, match="unknown corpus") as e:
        load_corpus(str(tmp_path / "missing.txt"))
    assert "jaychou" in str(e.value) and "offline" in str(e.value)
    with pytest.raises(CorpusError, match="unknown corpus 'shakespeare'"):
        load_corpus("shakespeare")


def test_size_cap(tmp_path, monkeypatch):
    monkeypatch.setattr(corpus_mod, "MAX_TEXT_BYTES", 100)
    assert len(from_text("x" * 100)) == 100
    with pytest.raises(CorpusError, match="limit is 100 bytes"):
        from_text("x" * 101)
    with pytest.raises(CorpusError, match="limit is 100 bytes"):
        from_text("é" * 51)  # 102 bytes in UTF-8, 51 characters
    p = tmp_path / "big.txt"
    p.write_text("y" * 500, encoding="utf-8")
    with pytest.raises(CorpusError, match="500 bytes"):
        from_file(p)
    with pytest.raises(CorpusError, match="500 bytes"):
        load_corpus(str(p))


@pytest.mark.parametrize("sampling, need", [("random", 4 * 8 + 1), ("consecutive", 4 * (8 + 1))])
def test_text_too_short_for_one_minibatch(tiny_config, sampling, need):
    cfg = tiny_config(sampling=sampling, batch_size=4, num_steps=8)
    text = "abcdefghij" * 10
    Trainer(cfg, from_text(text[:need]))  # exactly enough: one minibatch
    with pytest.raises(CorpusError) as e:
        Trainer(cfg, from_text(text[:need - 1]))
    msg = str(e.value)
    assert f"at least {need} characters" in msg and f"has {need - 1} characters" in msg
    assert "batch_size=4" in msg and "num_steps=8" in msg


def test_trainer_loads_a_user_file_by_path(tmp_path, tiny_text, tiny_config):
    p = tmp_path / "story.txt"
    p.write_text(tiny_text, encoding="utf-8")
    t = Trainer(tiny_config(corpus=str(p), max_chars=None, epochs=1))
    assert t.corpus.text == tiny_text and t.corpus.name == "story.txt"
