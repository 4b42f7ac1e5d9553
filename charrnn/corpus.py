"""Corpora: where the text comes from, how it is cleaned, and the vocabulary that indexes it.

Named corpora (``jaychou``, ``timemachine``) are pinned files found locally or downloaded once and
checked against their SHA-1. ``offline`` is built at run time from the docstrings of Python's standard
library, so there is always something to train on. Any other UTF-8 text, from a path or a string,
is a corpus too.
"""
from __future__ import annotations

import ast
import functools
import hashlib
import importlib.util
import json
import os
import re
import threading
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable, Sequence, Union

import torch

PROJECT_DIR = Path(__file__).resolve().parent.parent
DEFAULT_DATA_DIR = PROJECT_DIR / "data"
DATA_DIR_ENV = "CHARRNN_DATA_DIR"
MAX_TEXT_BYTES = 10 * 1024 * 1024  # user texts above 10 MiB are refused: an epoch would take minutes
# A download's wait for the server to answer, and then for each chunk: a machine without internet gives up
# within seconds (and says where to put the file), not after the system's TCP timeout of minutes.
DOWNLOAD_TIMEOUT = 8.0
Progress = Union[bool, Callable[[int, int], None]]  # a progress bar, or a function of (bytes so far, total bytes)


class CorpusError(ValueError):
    """A corpus that cannot be used; the message says what is wrong and what to do."""


@dataclass(frozen=True)
class RemoteFile:
    """A pinned corpus file: its file name, public URL, SHA-1 and (for a zip) the member holding the text."""
    fname: str
    url: str
    sha1: str
    member: str | None = None


REMOTE: dict[str, RemoteFile] = {
    "jaychou": RemoteFile(
        "jaychou_lyrics.txt.zip",
        "https://raw.githubusercontent.com/d2l-ai/d2l-zh/66964df083b506fcc672132851ea171519d48d0b/data/jaychou_lyrics.txt.zip",
        "9529987e701a4f37048ab778270a5dde9a762a0b",
        member="jaychou_lyrics.txt",
    ),
    "timemachine": RemoteFile(
        "timemachine.txt",
        "http://d2l-data.s3-accelerate.amazonaws.com/timemachine.txt",
        "090b5e7e70c295757f55df93cb0a180b9691891a",
    ),
}
NAMED = (*REMOTE, "offline")


# ---------------------------------------------------------------- vocabulary
def describe_unknown(chars: Sequence[str], limit: int = 20) -> str:
    """Characters a vocabulary lacks, for a message: ``'x' 'y' 'z'``, or ``'x' 'y' (and 3 more)``.

    Each is shown as its repr (so a space or a control character is visible), in order, once; beyond
    ``limit`` only the count is given. Every "not in the vocabulary" message of charrnn uses this.
    """
    distinct = list(dict.fromkeys(chars))
    limit = max(0, limit)
    shown = " ".join(repr(c) for c in distinct[:limit])
    rest = len(distinct) - limit
    if rest > 0:
        shown = f"{shown} (and {rest} more)" if shown else f"(and {rest} more)"
    return shown


class Vocab:
    """Characters in a deterministic order (sorted by code point), so indices survive a new process."""

    def __init__(self, chars: Iterable[str]):
        self.itos: list[str] = sorted(set(chars))
        if not self.itos:
            raise CorpusError("a vocabulary needs at least one character")
        if any(len(c) != 1 for c in self.itos):
            raise CorpusError("a vocabulary holds single characters only")
        self.stoi: dict[str, int] = {c: i for i, c in enumerate(self.itos)}

    def __len__(self) -> int:
        return len(self.itos)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Vocab) and self.itos == other.itos

    def __contains__(self, ch: str) -> bool:
        return ch in self.stoi

    def unknown(self, text: str) -> list[str]:
        """The distinct characters of ``text`` that are not in the vocabulary, in order of appearance."""
        return list(dict.fromkeys(c for c in text if c not in self.stoi))

    def encode(self, text: str) -> list[int]:
        missing = self.unknown(text)
        if missing:
            raise CorpusError(f"{len(missing)} character(s) not in the vocabulary: {describe_unknown(missing)}")
        return [self.stoi[c] for c in text]

    def decode(self, indices: Iterable[int]) -> str:
        return "".join(self.itos[int(i)] for i in indices)

    def to_json(self) -> str:
        return json.dumps(self.itos, ensure_ascii=False)

    @classmethod
    def from_json(cls, text: str) -> "Vocab":
        chars = json.loads(text)
        if not isinstance(chars, list) or chars != sorted(set(chars)):
            raise CorpusError("a saved vocabulary must be a sorted list of distinct characters")
        return cls(chars)


# ---------------------------------------------------------------- the corpus
@dataclass
class Corpus:
    """Cleaned text, its vocabulary and the text as indices (a 1-D int64 tensor)."""
    name: str
    text: str
    vocab: Vocab
    indices: torch.Tensor

    def __len__(self) -> int:
        return len(self.text)

    @property
    def identity(self) -> str:
        """What the corpus is, never where it lies: its name if named, else its text's SHA-256 and length."""
        return self.name if self.name in NAMED else text_identity(self.text)


TEXT_ID = re.compile(r"text:sha256=([0-9a-f]{64}):chars=(\d+)")


def text_identity(text: str) -> str:
    """``text:sha256=<hex>:chars=<n>``: a text named by what it is (a checkpoint records this, not a path)."""
    return f"text:sha256={hashlib.sha256(text.encode('utf-8')).hexdigest()}:chars={len(text)}"


def describe_source(source: str) -> str:
    """A corpus source for people: a name as it is, a text identity as
    ``a text of its own (sha256 …, n characters)``."""
    m = TEXT_ID.fullmatch(source)
    return f"a text of its own (sha256 {m[1][:12]}…, {int(m[2]):,} characters)" if m else source


def preprocess(text: str, max_chars: int | None) -> str:
    """The chapter's cleaning: every newline and carriage return becomes a space; keep max_chars."""
    text = text.replace("\n", " ").replace("\r", " ")
    return text if max_chars is None else text[:max_chars]


def from_text(text: str, name: str = "text", max_chars: int | None = None) -> Corpus:
    """A corpus from a string: cleaned, checked, indexed."""
    if not isinstance(text, str):
        raise CorpusError(f"corpus text must be a str, not {type(text).__name__}")
    if not text.strip():
        raise CorpusError(f"the corpus {name!r} is empty: it needs some text")
    if len(text.encode("utf-8")) > MAX_TEXT_BYTES:
        raise CorpusError(f"the corpus {name!r} is {len(text.encode('utf-8')):,} bytes; the limit is "
                          f"{MAX_TEXT_BYTES:,} bytes (10 MiB): use a smaller file or set max_chars")
    if "\x00" in text:
        raise CorpusError(f"the corpus {name!r} holds NUL bytes: it looks binary, and only UTF-8 text is allowed")
    clean = preprocess(text, max_chars)
    vocab = Vocab(clean)
    return Corpus(name, clean, vocab, torch.tensor(vocab.encode(clean), dtype=torch.long))


def decode_bytes(raw: bytes, name: str) -> str:
    """UTF-8 text from bytes, or a CorpusError saying why not (empty, binary, not UTF-8, too large)."""
    if not raw:
        raise CorpusError(f"the file {name!r} is empty: it needs some UTF-8 text")
    if len(raw) > MAX_TEXT_BYTES:
        raise CorpusError(f"the file {name!r} is {len(raw):,} bytes; the limit is {MAX_TEXT_BYTES:,} bytes (10 MiB)")
    if b"\x00" in raw[:1 << 20]:
        raise CorpusError(f"the file {name!r} looks binary (it holds NUL bytes): only UTF-8 text is allowed")
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise CorpusError(f"the file {name!r} is not UTF-8 text (byte {e.start} cannot be decoded): "
                          "save it as UTF-8 and try again") from None
    return text


def from_file(path: str | os.PathLike, max_chars: int | None = None) -> Corpus:
    """A corpus from a UTF-8 text file of the user's."""
    p = Path(path)
    if not p.is_file():
        raise CorpusError(f"no such file: {str(p)!r}")
    if p.stat().st_size > MAX_TEXT_BYTES:
        raise CorpusError(f"the file {p.name!r} is {p.stat().st_size:,} bytes; the limit is "
                          f"{MAX_TEXT_BYTES:,} bytes (10 MiB)")
    return from_text(decode_bytes(p.read_bytes(), p.name), name=p.name, max_chars=max_chars)


def load_corpus(source: str = "jaychou", max_chars: int | None = 10_000, *, path: str | os.PathLike | None = None,
                data_dir: str | os.PathLike | None = None, url: str | None = None,
                progress: Progress = True) -> Corpus:
    """The corpus named ``source`` (jaychou, timemachine, offline) or the text file at path ``source``.

    For a named corpus, ``path`` is an explicit location of its file, ``data_dir`` where to download it
    (default: the project's ``data/``), ``url`` a mirror to download it from, and ``progress`` how a download
    shows its progress (a bar on the terminal, nothing, or a function told the bytes so far and in all).
    """
    if source == "offline":
        return from_text(offline_text(), name="offline", max_chars=max_chars)
    if source in REMOTE:
        spec = REMOTE[source]
        raw = read_remote(spec, fetch(spec, path=path, data_dir=data_dir, url=url, progress=progress))
        return from_text(decode_bytes(raw, spec.fname), name=source, max_chars=max_chars)
    if TEXT_ID.fullmatch(source):
        raise CorpusError(f"this run was trained on {describe_source(source)}, which is not kept: give that text "
                          "again (a file path, or upload it)")
    if Path(source).is_file():
        return from_file(source, max_chars=max_chars)
    raise CorpusError(f"unknown corpus {source!r}: use one of {', '.join(NAMED)}, or the path of a UTF-8 .txt file")


_READING: dict[tuple[str, int | None], threading.Lock] = {}  # a lock per corpus being read
_READING_LOCK = threading.Lock()


def cached_corpus(source: str, max_chars: int | None) -> Corpus:
    """A named corpus, read once per process and shared (its tensors are only ever read). A class pressing Train
    at once on a fresh server reads it once: the others wait for that reading (``lru_cache`` alone would let
    each thread read it, and the offline corpus's ``ast.parse`` is not safe in several threads at once)."""
    if source not in NAMED:
        raise CorpusError(f"unknown corpus {source!r}: use one of {', '.join(NAMED)}")
    with _READING_LOCK:
        lock = _READING.setdefault((source, max_chars), threading.Lock())
    with lock:
        return _cached_corpus(source, max_chars)


@functools.lru_cache(maxsize=8)
def _cached_corpus(source: str, max_chars: int | None) -> Corpus:
    return load_corpus(source, max_chars, progress=False)


cached_corpus.cache_clear = _cached_corpus.cache_clear  # type: ignore[attr-defined]  # forget what was read


# ---------------------------------------------------------------- finding and fetching pinned files
def sha1_of(path: Path) -> str:
    return hashlib.sha1(path.read_bytes()).hexdigest()


def is_local(source: str) -> bool:
    """Whether reading the corpus ``source`` needs no download (a named corpus whose file is on this machine,
    the offline corpus, or anything else, which is a path or nothing)."""
    spec = REMOTE.get(source)
    return spec is None or any(p.is_file() for p in candidates(spec))


def candidates(spec: RemoteFile, path: str | os.PathLike | None = None) -> list[Path]:
    """Where a pinned file is looked for, in order: the explicit path, $CHARRNN_DATA_DIR, data/."""
    places = []
    if path is not None:
        places.append(Path(path))
    if os.environ.get(DATA_DIR_ENV):
        places.append(Path(os.environ[DATA_DIR_ENV]) / spec.fname)
    places.append(DEFAULT_DATA_DIR / spec.fname)
    return places


def fetch(spec: RemoteFile, *, path: str | os.PathLike | None = None, data_dir: str | os.PathLike | None = None,
          url: str | None = None, progress: Progress = True) -> Path:
    """The local path of a pinned file: found, or downloaded once and checked against its SHA-1."""
    if path is not None and not Path(path).is_file():
        raise CorpusError(f"no such file: {str(path)!r} (given as the location of {spec.fname})")
    for p in candidates(spec, path):
        if p.is_file():
            got = sha1_of(p)
            if got != spec.sha1:
                raise CorpusError(f"{p} has SHA-1 {got}, but {spec.fname} must have {spec.sha1}: "
                                  "it is a different file; delete it or replace it with the right one")
            return p
    dest = Path(data_dir) if data_dir is not None else DEFAULT_DATA_DIR
    return download(spec, dest, url or spec.url, progress)


class _Reported:
    """What pooch's downloader takes as a progress bar (tqdm's ``total``, ``update``, ``reset``, ``close``),
    telling a function the bytes so far and in all."""

    def __init__(self, tell: Callable[[int, int], None]):
        self.tell, self.total, self.n = tell, 0, 0

    def update(self, chunk: int) -> None:
        self.n += chunk
        self.tell(self.n, self.total)

    def reset(self) -> None:
        self.n = 0

    def close(self) -> None:
        pass


def download(spec: RemoteFile, dest: Path, url: str, progress: Progress) -> Path:
    """Download with pooch (SHA-1 check; a mismatching download is deleted, never kept), giving up when the
    server does not answer within ``DOWNLOAD_TIMEOUT`` seconds."""
    import pooch  # imported here: only a download needs it
    import requests

    env_dir = os.environ.get(DATA_DIR_ENV)
    where = f"${DATA_DIR_ENV} ({env_dir})" if env_dir else f"${DATA_DIR_ENV}"
    try:
        bar = _Reported(progress) if callable(progress) else bool(progress)
        local = pooch.retrieve(url, known_hash=f"sha1:{spec.sha1}", fname=spec.fname, path=dest,
                               downloader=pooch.HTTPDownloader(progressbar=bar, timeout=DOWNLOAD_TIMEOUT))
    except requests.exceptions.RequestException:
        raise CorpusError(f"{spec.fname} is not on this machine and could not be downloaded (offline?): "
                          f"put it in {where} or in {dest}/") from None
    except ValueError as e:
        if "hash" not in str(e).lower():
            raise
        raise CorpusError(f"the download of {spec.fname} from {url} does not have SHA-1 {spec.sha1}, "
                          "so it was deleted: the server sent a different file") from None
    return Path(local)


def read_remote(spec: RemoteFile, path: Path) -> bytes:
    """The text bytes of a pinned file (the one member of a zip, or the file itself)."""
    if spec.member is None:
        return path.read_bytes()
    try:
        with zipfile.ZipFile(path) as z:
            return z.read(spec.member)
    except (zipfile.BadZipFile, KeyError) as e:
        raise CorpusError(f"{path} is not a zip holding {spec.member}: {e}") from None


# ---------------------------------------------------------------- the offline corpus
# Modules whose docstrings are read (by parsing their source: nothing is imported or run).
OFFLINE_MODULES = (
    "abc", "argparse", "base64", "bisect", "calendar", "cmd", "codecs", "collections", "colorsys",
    "configparser", "contextlib", "copy", "csv", "dataclasses", "datetime", "decimal", "difflib", "enum",
    "fileinput", "fnmatch", "fractions", "ftplib", "functools", "getopt", "gettext", "glob", "gzip",
    "heapq", "hmac", "html", "imaplib", "inspect", "ipaddress", "json", "locale", "logging", "mailbox",
    "netrc", "numbers", "operator", "optparse", "os", "pathlib", "pickle", "pprint", "queue", "random",
    "re", "sched", "secrets", "selectors", "shlex", "shutil", "smtplib", "socket", "statistics",
    "string", "subprocess", "tarfile", "tempfile", "textwrap", "threading", "timeit", "tokenize",
    "trace", "traceback", "turtle", "typing", "unittest", "urllib", "uuid", "warnings", "wave",
    "weakref", "webbrowser", "zipfile",
)


_PARSING = threading.Lock()  # CPython 3.11's ast.parse in two threads at once can fail ("AST constructor
#                              recursion depth mismatch"): the offline corpus is parsed by one thread at a time


def offline_text(modules: Sequence[str] = OFFLINE_MODULES) -> str:
    """English prose that every Python has: the docstrings of standard-library modules, in a fixed order
    (parsed once per process: about a second)."""
    with _PARSING:
        return _offline_text(tuple(modules))


@functools.lru_cache(maxsize=2)
def _offline_text(modules: tuple[str, ...]) -> str:
    parts: list[str] = []
    for name in modules:
        spec = importlib.util.find_spec(name)
        origin = spec.origin if spec else None
        if not origin or not origin.endswith(".py") or not os.path.isfile(origin):
            continue
        try:
            tree = ast.parse(Path(origin).read_text(encoding="utf-8"))
        except (SyntaxError, UnicodeDecodeError, OSError):
            continue
        for node in ast.walk(tree):
            if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
                doc = ast.get_docstring(node)
                if doc and len(doc) >= 40:
                    parts.append(" ".join(doc.split()))
    if not parts:
        raise CorpusError("the offline corpus is empty: this Python has no standard-library sources")
    return "\n".join(parts)
