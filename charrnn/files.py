"""What a shared server keeps on disk for a session: a private folder, caps, and deletion at close.

On a shared server (a classroom, a Space) a checkpoint can write its training text back, so what one
user saves or uploads must reach nobody else and must not pile up. ``SessionFiles`` gives a session a
folder with an unguessable name under the system's temporary directory (never one the web server
serves), counts every file the session holds (its saved checkpoints, and the uploads and downloadable
copies the web framework keeps for it elsewhere) against a cap per session and a ``DiskQuota`` for
the whole server, and deletes them all when the session closes. The CLI and the library do not use
this: on one's own machine checkpoints go to ``checkpoints/<run-id>/`` as always.

Caps (environment variables, read when the server starts):
``CHARRNN_SESSION_MAX_FILES`` (default 10), ``CHARRNN_SESSION_MAX_MB`` (default 200),
``CHARRNN_SERVER_MAX_MB`` (default 2000).
"""
from __future__ import annotations

import os
import shutil
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path

SESSION_MAX_FILES_ENV = "CHARRNN_SESSION_MAX_FILES"
SESSION_MAX_MB_ENV = "CHARRNN_SESSION_MAX_MB"
SERVER_MAX_MB_ENV = "CHARRNN_SERVER_MAX_MB"


class QuotaError(RuntimeError):
    """A file that would go over a cap; the message says which cap and what to do."""


def env_int(name: str, default: int, low: int = 1) -> int:
    """A whole-number setting from the environment, or ValueError saying what is allowed."""
    value = os.environ.get(name, "").strip()
    if not value:
        return default
    if not value.isdigit() or int(value) < low:
        raise ValueError(f"{name}={value!r} is not allowed: use a whole number of at least {low}")
    return int(value)


@dataclass(frozen=True)
class Caps:
    session_files: int
    session_bytes: int
    server_bytes: int

    @classmethod
    def from_env(cls) -> "Caps":
        return cls(env_int(SESSION_MAX_FILES_ENV, 10), env_int(SESSION_MAX_MB_ENV, 200) * 2**20,
                   env_int(SERVER_MAX_MB_ENV, 2000) * 2**20)


class DiskQuota:
    """Bytes held by every session of one server, against one cap."""

    def __init__(self, limit: int):
        self.limit = limit
        self.used = 0
        self._lock = threading.Lock()

    def take(self, size: int) -> None:
        with self._lock:
            if self.used + size > self.limit:
                raise QuotaError(f"the server keeps {_mb(self.used)} of files for its users, its limit is "
                                 f"{_mb(self.limit)}: this file ({_mb(size)}) does not fit now. Download what "
                                 "you need and try again in a few minutes, when other sessions have closed "
                                 "· 服务器存储已满，请稍后再试")
            self.used += size

    def give(self, size: int) -> None:
        with self._lock:
            self.used = max(0, self.used - size)


def _mb(size: int) -> str:
    return f"{size / 2**20:,.1f} MB"


class SessionFiles:
    """The files of one session: written in its private folder, or kept elsewhere and deleted at close."""

    def __init__(self, caps: Caps, quota: DiskQuota):
        self.caps = caps
        self.quota = quota
        self._lock = threading.Lock()
        self._dir: Path | None = None
        self._files: dict[Path, int] = {}   # every file this session holds -> its size in bytes
        self._counted: list[Path] = []      # the ones that count as the session's files (oldest first)
        self._upload: Path | None = None    # the uploaded text in use (one at a time; never deleted to make room)
        self._copies: dict[Path, list[Path]] = {}  # a counted file -> the copies made of it
        self._warned = False                # the cap's message was shown; the next save makes room
        self.closed = False

    @property
    def folder(self) -> Path:
        """The session's private folder (0700, unguessable name), made on first use."""
        with self._lock:
            if self.closed:
                raise QuotaError("this session has ended: reload the page")
            if self._dir is None:
                self._dir = Path(tempfile.mkdtemp(prefix="charrnn-session-"))
            return self._dir

    @property
    def count(self) -> int:
        with self._lock:
            return len(self._counted)

    @property
    def size(self) -> int:
        with self._lock:
            return sum(self._files.values())

    def paths(self) -> list[Path]:
        with self._lock:
            return list(self._files)

    def new_path(self, name: str) -> Path:
        """Where to write a new file of the session (in its private folder)."""
        return self.folder / Path(name).name

    def fits(self, size: int, make_room: bool = False) -> None:
        """QuotaError unless a file of ``size`` bytes fits the session's caps.

        With ``make_room`` the session's oldest files are deleted to make it fit, but only once the
        cap's message has been shown (the user was told to download first, then to save again).
        """
        caps = self.caps
        while True:
            with self._lock:
                over = (len(self._counted) + 1 > caps.session_files
                        or sum(self._files.values()) + size > caps.session_bytes)
                if not over:
                    self._warned = False
                    return
                evictable = [p for p in self._counted if p != self._upload]
                if not (make_room and self._warned and evictable):
                    self._warned = True
                    raise QuotaError(f"this session keeps {len(self._counted)} files "
                                     f"({_mb(sum(self._files.values()))}); "
                                     f"its limit is {caps.session_files} files and {_mb(caps.session_bytes)}. "
                                     "Download the checkpoints you want to keep, then try again: the oldest files are "
                                     "deleted to make room · "
                                     "已达上限：请先下载需要的检查点，再试一次（将删除最早的文件）")
                oldest = evictable[0]
            for path in [oldest, *self._copies.pop(oldest, [])]:
                self.remove(path)

    def add(self, path: str | os.PathLike, copy_of: str | os.PathLike | None = None, make_room: bool = False,
            upload: bool = False) -> Path:
        """Hold an existing file for this session (deleted when the session closes); QuotaError if over a cap.

        A file already held is not counted again. ``copy_of``: the file is a copy of one the session holds
        (the framework's downloadable copy of a saved checkpoint): its bytes count, but not as one more
        file, and it goes when the original goes. ``make_room``: see ``fits``. ``upload``: the session's
        text to train on, which replaces (deletes) the one before and is never deleted to make room.
        """
        path = Path(path)
        size = path.stat().st_size
        with self._lock:
            if path in self._files:
                return path
            previous = self._upload if upload else None
        if previous is not None:
            self.remove(previous)
        if copy_of is None:
            self.fits(size, make_room)
        self.quota.take(size)
        with self._lock:
            if self.closed:
                self.quota.give(size)
                _unlink(path)
                raise QuotaError("this session has ended: reload the page")
            self._files[path] = size
            if upload:
                self._upload = path
            if copy_of is None:
                self._counted.append(path)
            else:
                self._copies.setdefault(Path(copy_of), []).append(path)
        return path

    def remove(self, path: str | os.PathLike) -> None:
        path = Path(path)
        with self._lock:
            size = self._files.pop(path, None)
            if path in self._counted:
                self._counted.remove(path)
            if path == self._upload:
                self._upload = None
            keep = self._dir
        if size is not None:
            self.quota.give(size)
        _unlink(path, keep)

    def close(self) -> None:
        """Delete every file of the session and its folder."""
        with self._lock:
            self.closed = True
            files, self._files, self._counted, self._copies, self._upload = self._files, {}, [], {}, None
            folder, self._dir = self._dir, None
        for path, size in files.items():
            _unlink(path)
            self.quota.give(size)
        if folder is not None:
            shutil.rmtree(folder, ignore_errors=True)


def _unlink(path: Path, keep: Path | None = None) -> None:
    """Delete a file, and its folder if that is now empty (the web framework keeps one folder per file)."""
    try:
        path.unlink(missing_ok=True)
        if path.parent != keep and path.parent.is_dir() and not any(path.parent.iterdir()):
            path.parent.rmdir()
    except OSError:
        pass
