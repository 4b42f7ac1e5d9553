"""One browser page's connection to the app, in plain HTTP, as Gradio's own JavaScript client makes it.

A page has one session: a heartbeat stream (``/gradio_api/heartbeat/<session>``, which tells the server the tab
is open), one message stream (``/gradio_api/queue/data?session_hash=<session>``) that carries the messages of
every event the page has started, and one ``POST /gradio_api/queue/join`` per event (a click, a timer tick).
Streamed outputs come as diffs against the previous update, which the page applies (``apply_diff``).

The benchmarks use it instead of ``gradio_client`` because they run on the server's own two cores: the client
library's threads and parsing would be counted against the server, where a real page runs on the student's
machine. It also lets several events of one session run at once, as a page does (a ``/gradio_api/call``
stream per event cannot: the session's messages would be shared between the streams).

    page = Page(url)
    for outputs in page.stream("/train", values): ...     # each update's outputs, whole
    outputs = page.call("/next_chars", ["分开", 0.8])      # the final outputs (queued or not)
    page.close()
"""
from __future__ import annotations

import queue
import secrets
import socket
import threading
from collections.abc import Iterator
from typing import Any

import orjson
import requests
from gradio_client.utils import apply_diff


class PageError(RuntimeError):
    pass


class Page:
    def __init__(self, url: str, timeout: float = 600.0) -> None:
        self.url = url.rstrip("/") + "/gradio_api/"
        self.session = secrets.token_hex(6)
        self.timeout = timeout
        self.http = requests.Session()
        config = self.http.get(url.rstrip("/") + "/config", timeout=30).json()
        named = [d for d in config["dependencies"] if d.get("api_name")]
        self.fn = {d["api_name"]: d["id"] for d in named}
        self.queued = {d["api_name"]: d.get("queue", True) is not False for d in named}
        self._lock = threading.Lock()
        self._events: dict[str, queue.Queue] = {}  # event id -> its messages, until it completes
        self._reader: threading.Thread | None = None
        self._data = None      # the open message stream's response
        self._closed = False
        self.received = 0      # bytes of messages received
        self._beat = self.http.get(f"{self.url}heartbeat/{self.session}", stream=True, timeout=None)

    # ------------------------------------------------------------ events
    def stream(self, api_name: str, data: list[Any]) -> Iterator[list[Any]]:
        """Start the event ``api_name`` with ``data``; yield its outputs (whole) at each update and at the end."""
        if api_name.lstrip("/") not in self.fn:
            raise PageError(f"no endpoint {api_name}: the app has {sorted(self.fn)}")
        with self._lock:  # joined and registered before the reader can see its first message
            r = self.http.post(f"{self.url}queue/join", timeout=60, json={
                "data": data, "fn_index": self.fn[api_name.lstrip("/")], "session_hash": self.session,
                "event_data": None, "trigger_id": None})
            r.raise_for_status()
            event = r.json()["event_id"]
            messages: queue.Queue = queue.Queue()
            self._events[event] = messages
            if self._reader is None or not self._reader.is_alive():
                self._reader = threading.Thread(target=self._read, daemon=True)
                self._reader.start()
        last: list[Any] | None = None
        while True:
            msg = messages.get(timeout=self.timeout)
            kind = msg.get("msg")
            if kind == "hung_up":
                raise PageError(f"{api_name}: the page was closed")
            if kind == "process_generating":
                data_out = msg["output"].get("data", [])
                last = data_out if last is None else [apply_diff(prev, d) for prev, d in zip(last, data_out)]
                yield last
            elif kind == "process_completed":
                if not msg.get("success", True):
                    raise PageError(f"{api_name} failed: {msg.get('output')}")
                out = msg["output"].get("data")
                if out is not None and any(o is not None for o in out):
                    last = out
                if last is not None:
                    yield last
                return
            elif kind == "unexpected_error":
                raise PageError(f"{api_name}: {msg.get('message')}")

    def call(self, api_name: str, data: list[Any]) -> list[Any]:
        """The final outputs of ``api_name``: through the queue, or for an endpoint made with ``queue=False``
        in one POST (``/gradio_api/run/<name>``), as the page calls each."""
        name = api_name.lstrip("/")
        if name in self.queued and not self.queued[name]:
            r = self.http.post(f"{self.url}run/{name}", timeout=60,
                               json={"data": data, "fn_index": self.fn[name], "session_hash": self.session})
            if r.status_code != 200:
                raise PageError(f"{api_name} failed: {r.status_code} {r.text[:200]}")
            return r.json()["data"]
        last: list[Any] = []
        for last in self.stream(api_name, data):
            pass
        return last

    # ------------------------------------------------------------ the session's message stream
    def _read(self) -> None:
        """Deliver the session's messages to their events until the server closes the stream (no event of this
        session is pending); if one was joined meanwhile, open the stream again."""
        while True:
            try:
                with self.http.get(f"{self.url}queue/data", params={"session_hash": self.session},
                                   stream=True, timeout=None) as resp:
                    self._data = resp
                    for line in resp.iter_lines(chunk_size=1 << 16):  # a message per read, as bytes
                        self.received += len(line) + 1
                        if not line.startswith(b"data:"):
                            continue
                        msg = orjson.loads(line[5:])
                        if msg.get("msg") == "close_stream":
                            break
                        event = msg.get("event_id")
                        self.seen(line, msg)
                        with self._lock:
                            target = self._events.get(event)
                            if msg.get("msg") == "process_completed":
                                self._events.pop(event, None)
                        if target is not None:
                            target.put(msg)
            except (requests.RequestException, OSError, AttributeError, ValueError):
                if self._closed:  # hung up
                    return
            with self._lock:
                if self._closed or not self._events:
                    self._reader = None
                    return

    def seen(self, line: bytes, msg: dict) -> None:
        """Each message of the session's stream as it comes (a subclass counts them)."""

    def close(self) -> None:
        """Close the tab: the heartbeat hangs up (the server closes the session), then the connections; an
        event still streaming raises PageError. Safe from any thread (the sockets are shut down first, which
        ends a read in progress elsewhere; closing a response there would wait for its reader)."""
        self._closed = True
        for resp in (self._beat, self._data):
            sock = getattr(getattr(getattr(resp, "raw", None), "_connection", None), "sock", None)
            if sock is not None:
                try:
                    sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
        with self._lock:
            for messages in self._events.values():
                messages.put({"msg": "hung_up"})
            self._events.clear()
        self.http.close()
