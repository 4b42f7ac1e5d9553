"""The corpora the page fetches: a Train pressed on a machine without the chosen corpus's file starts its
download in the background, says at once that it is being fetched, with its progress, and within seconds
whether it failed (``charrnn.corpus.DOWNLOAD_TIMEOUT``), with the message the CLI gives: which file, where to put
it. One download per corpus at a time, however many pages press Train meanwhile.
"""
from __future__ import annotations

import threading
from dataclasses import dataclass, field

from charrnn.corpus import REMOTE, CorpusError, fetch
from demo.languages import in_language


@dataclass
class Fetch:
    """One corpus's download: its bytes so far and in all (0 while the server has not said), and how it ended."""
    source: str
    got: int = 0
    total: int = 0
    error: str | None = None  # why it failed, as the CLI says it
    done: threading.Event = field(default_factory=threading.Event)

    def tell(self, got: int, total: int) -> None:
        self.got, self.total = got, total

    def note(self, lang: str) -> str:
        """What the page shows while it runs."""
        fname = REMOTE[self.source].fname
        if self.total:
            share = f" {min(self.got / self.total, 1.0):.0%} ({self.got / 1024:,.0f} / {self.total / 1024:,.0f} kB)"
        else:
            share = ""
        return in_language(f"⤓ 正在下载语料 {fname}{share}… · Fetching the corpus {fname}{share}…", lang)


class Fetches:
    """The downloads in progress, one per corpus."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._running: dict[str, Fetch] = {}

    def start(self, source: str) -> Fetch:
        """The download of ``source`` (a name of ``charrnn.corpus.REMOTE``): the one in progress, or a new one."""
        with self._lock:
            running = self._running.get(source)
            if running is not None and not running.done.is_set():
                return running
            started = self._running[source] = Fetch(source)
        threading.Thread(target=self._run, args=(started,), name=f"charrnn-fetch-{source}", daemon=True).start()
        return started

    def running(self, source: str) -> Fetch | None:
        with self._lock:
            running = self._running.get(source)
        return running if running is not None and not running.done.is_set() else None

    @staticmethod
    def _run(job: Fetch) -> None:
        try:
            fetch(REMOTE[job.source], progress=job.tell)
        except CorpusError as e:
            job.error = str(e)
        except OSError as e:  # the data folder cannot be written, the disk is full...
            job.error = f"{REMOTE[job.source].fname} could not be saved: {e}"
        finally:
            job.done.set()


FETCHES = Fetches()
