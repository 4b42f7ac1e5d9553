"""A class experiment on one machine: what following the class board costs 30 students training, and how late it is.

Starts the app in its own process (this file with ``--serve``: ``demo/app.py``'s server, plus a note of when
each epoch of every run ends, taken as the run records it, and the board's render counters, written to files this
process reads). Then ``--pairs`` times, alternating, so that whatever else loads the machine hits both kinds alike:

- an **experiment wave**: the teacher's page (opened with ``?mode=present``: the projector) opens an experiment
  (``/experiment``: free lr in 10-1000, every other setting the chapter's default run, ``--epochs`` epochs) and
  follows the class board, as its Open does; ``--students`` pages open the class link (``?class=CODE``: each page's
  load, then the board's event that follows it, as a browser's page fires them), join with a nickname
  (``/join``) and press Train (``/train``, only their own lr differing) within ``--spread`` seconds of each other,
  each following its run to the end while its board keeps streaming. Board followers: the projector and every
  student's page, each joined to the board's Gradio event (``on_board``, found in the app's config as the event
  after the page's load or the teacher's Open) over its session's SSE stream, as ``bench/watchers.py`` follows a
  watcher's page.
- a **plain wave**: the same students, the same lrs and press times, on pages with no class, nothing following a
  board (today's classroom, ``bench/classroom.py``).

Pages are plain HTTP as a browser's (``page.Page``). Per wave it prints every student's time from pressing Train
to its first epoch (p50, max; target max <= 10 s), the aggregate characters per second of the wave (every run's
characters over the wall time from the first press to the last run's end), the CPU seconds of the server and of
this process (the pages' clients share the server's 2 cores, as a class's laptops do not), the board's renders;
per experiment wave the update delay (for each epoch of each student and each follower, from the epoch's end in
the server's run to the first board update the follower received whose class chart, grown by the points sent
since it was drawn, shows that epoch: p50/p95/max; target <= 1 s) and the board's bytes per follower per second
while the class trains (its SSE messages; mean and max over followers); per pair the ratio experiment / plain of
the aggregate throughput (the board's cost is 1 - ratio; target ratio >= 0.95).

Every page applies its diffs as the browser's Gradio client does (``browser_apply_diff``), and each follower's class
chart is checked against the runs' own perplexities (updates with a wrong point are counted). Also printed: the
server's CPU seconds by thread (training, event loop, AnyIO workers), the bytes of each board output, and the CPU
seconds of the machine's other processes during each wave (another benchmark or a browser test beside this one
makes its pair unreliable). ``--followers N``: only N students' pages follow the board (the projector always does).

Usage: CHARRNN_DATA_DIR=../shared/data python bench/experiment.py [--students 30] [--epochs 20] [--pairs 2]
       CHARRNN_DATA_DIR=../shared/data python bench/experiment.py --quick     (8 students, 1 pair: a smoke run)
"""
from __future__ import annotations

import argparse
import collections
import copy
import json
import os
import random
import resource
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import orjson
import requests

from bench_app import app_args, free_port, serving  # noqa: E402
from classroom import pct, proc_stats, settle  # noqa: E402
import page as page_module  # noqa: E402
from page import Page, PageError  # noqa: E402
from watchers import thread_cpu  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
EPOCH_LOG = "CHARRNN_BENCH_EPOCHS"   # the server's note of each epoch's end: "lr epoch monotonic-time" lines
STATS_FILE = "CHARRNN_BENCH_STATS"   # and of its renders, rewritten every second (JSON)
LAPTOP = {"width": 1440, "height": 900}     # the window's size a page's load sends (``demo.screens``)
PROJECTOR = {"width": 1920, "height": 1080}
QUESTION = "Which learning rate trains the chapter's RNN best?"
LR_RANGE = (10.0, 1000.0)            # the teacher's range; the teacher's own lr is the chapter's 100


# ---------------------------------------------------------------- the server (this file with --serve)
def serve() -> None:
    """``python demo/app.py``'s server, noting when each epoch of every run ends (``Run._record``: the moment the
    board can show it) and the board's render counters (``ClassRenders``), for the benchmark's process."""
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    from charrnn import runs
    from charrnn.events import EpochEnd
    from demo import app, class_stream, renders

    log, lock = open(os.environ[EPOCH_LOG], "a", buffering=1), threading.Lock()
    record = runs.Run._record

    def noted(self, events, threads):
        record(self, events, threads)
        ends = [e.epoch for e in events if isinstance(e, EpochEnd)]
        if ends:
            now, lr = time.monotonic(), self.config.lr
            with lock:
                log.write("".join(f"{lr!r} {e} {now:.6f}\n" for e in ends))
    runs.Run._record = noted

    def counters() -> None:
        path = Path(os.environ[STATS_FILE])
        while True:
            c, r = class_stream.ClassRenders, renders.Renders
            path.with_suffix(".tmp").write_text(json.dumps({
                "class_renders": c.total_renders, "class_seconds": c.total_seconds,
                "renders": r.total_renders, "render_seconds": r.total_seconds,
                "threads": {str(t.native_id): t.name for t in threading.enumerate()}}))
            path.with_suffix(".tmp").replace(path)
            time.sleep(1.0)
    threading.Thread(target=counters, name="bench-counters", daemon=True).start()
    app.launch(app.build_app(freeze_heap=True))


def start_server(workdir: Path) -> tuple[subprocess.Popen, str]:
    """This file with ``--serve`` in its own process (as ``bench_app.start_server`` starts ``demo/app.py``)."""
    port = free_port()
    env = {**os.environ, "GRADIO_SERVER_PORT": str(port), "GRADIO_ANALYTICS_ENABLED": "False",
           EPOCH_LOG: str(workdir / "epochs.log"), STATS_FILE: str(workdir / "stats.json")}
    return serving([sys.executable, str(Path(__file__).resolve()), "--serve"], env, port, 90)


def server_counters(workdir: Path) -> dict[str, float]:
    time.sleep(1.2)  # the server rewrites them every second
    return json.loads((workdir / "stats.json").read_text())


class EpochLog:
    """The server's note of epochs' ends, read on from where the last read stopped."""

    def __init__(self, path: Path) -> None:
        self.path, self.offset = path, 0

    def read(self) -> dict[tuple[str, int], float]:
        """{(lr as ``lr_key`` writes it, epoch): when it ended (time.monotonic: the same clock in both processes)},
        since the last read."""
        out = {}
        with open(self.path) as f:
            f.seek(self.offset)
            for line in f:
                if not line.endswith("\n"):
                    break
                self.offset += len(line.encode())
                lr, epoch, t = line.split()
                out[(lr_key(float(lr)), int(epoch))] = float(t)
        return out


def lr_key(lr: float) -> str:
    return f"{lr:.6g}"


# ---------------------------------------------------------------- pages
def browser_apply_diff(obj: Any, diff: list) -> Any:
    """A streamed output's diff applied as the browser's Gradio client applies it (``apply_edit`` of its JS: a
    list's item deleted with ``splice(index, 1)``, which counts a negative index from the end and clamps it),
    where ``gradio_client.utils.apply_diff`` raises. Gradio's ``utils.diff`` shifts the index of every delete
    inside a list by the deletes before it, nested ones included, so that a list of dicts whose members change
    (the class chart's grown traces: one more student's curve grown since the chart was drawn, in the middle)
    comes with deletes at wrong, even negative, indices: the page applies them to the wrong points. This is
    what the page shows; ``wrong_points`` checks it against the runs."""
    obj = copy.deepcopy(obj)
    for action, path, value in diff:
        if not path:
            obj = value if action == "replace" else obj + value
            continue
        target = obj
        for key in path[:-1]:
            target = target[key]
        last = path[-1]
        if action == "replace":
            target[last] = value
        elif action == "append":
            target[last] += value
        elif action == "add":
            if isinstance(target, list):
                target.insert(int(last), value)
            else:
                target[last] = value
        elif action == "delete":
            if isinstance(target, list):
                k = int(last)
                k = k if k >= 0 else max(len(target) + k, 0)
                if k < len(target):
                    del target[k]
            else:
                target.pop(last, None)
    return obj


page_module.apply_diff = browser_apply_diff  # every page of this benchmark applies its diffs as a browser does


class BoardPage(Page):
    """A page whose address has query parameters (``?class=CODE``, ``?mode=present``: Gradio reads them from each
    event's POST, as the browser's client sends the page's own), and that counts the bytes of its session's
    message stream per event (the board's and the run's share one stream)."""

    def __init__(self, url: str, params: dict[str, str] | None = None) -> None:
        super().__init__(url)
        if params:
            self.http.params = dict(params)
        self.by_event: collections.Counter = collections.Counter()
        self.by_output: dict[str, collections.Counter] = collections.defaultdict(collections.Counter)

    def follow(self, api_name: str):
        """The event ``api_name``'s updates (as ``stream``), and its event id once its first update came."""
        with self._lock:
            before = set(self._events)
        it = self.stream(api_name, [])
        first = next(it)
        with self._lock:
            new = set(self._events) - before
        return first, it, next(iter(new), None)

    def seen(self, line: bytes, msg: dict) -> None:
        """Count each message's bytes per event, and each output's diff's bytes."""
        event = msg.get("event_id")
        self.by_event[event] += len(line) + 1
        if msg.get("msg") == "process_generating":
            for i, d in enumerate(msg["output"].get("data") or []):
                self.by_output[event][i] += len(orjson.dumps(d))


def train_defaults(url: str) -> dict[str, Any]:
    """/train's inputs, in the order its HTTP API takes them, with their defaults (a setting ``app_args`` does not
    name, such as ``validation``, is sent as the page's default)."""
    info = requests.get(f"{url}gradio_api/info", timeout=30).json()
    return {p["parameter_name"]: p.get("parameter_default") for p in info["named_endpoints"]["/train"]["parameters"]}


def run_values(defaults: dict[str, Any], epochs: int, lr: float | None = None) -> list[Any]:
    """/train's inputs for the chapter's default run (``app_args``), with ``lr``."""
    values = {**defaults, **app_args("scratch-random", epochs, 10)}
    if lr is not None:
        values["lr"] = lr
    return [values[n] for n in defaults]


def board_events(url: str) -> tuple[str, str]:
    """The api names of the board's event after the teacher's Open and after a page's load (private events: the
    page's config names them, as ``Page`` reads them)."""
    deps = requests.get(url.rstrip("/") + "/config", timeout=30).json()["dependencies"]
    ids = {d.get("api_name"): d["id"] for d in deps}

    def after(name: str) -> str:
        return next(d["api_name"] for d in deps if str(d.get("api_name")).startswith("on_board")
                    and d.get("trigger_after") == ids[name])
    return after("on_open"), after("on_load")


class Follower:
    """A page's board stream, followed in a thread: each update's time, class chart payload and points."""

    def __init__(self, page: BoardPage, api_name: str) -> None:
        self.page, self.updates, self.event = page, [], None
        self._ready = threading.Event()
        self.thread = threading.Thread(target=self._run, args=(api_name,), daemon=True)
        self.thread.start()
        if not self._ready.wait(60):
            raise SystemExit("a board stream sent nothing within 60 s")

    def _run(self, api_name: str) -> None:
        try:
            first, it, self.event = self.page.follow(api_name)
            self.updates.append((time.monotonic(), first[1], first[4]))
            self._ready.set()
            for out in it:
                self.updates.append((time.monotonic(), out[1], out[4]))
        except (PageError, StopIteration, requests.RequestException, OSError):
            pass  # the page was closed (the wave's end)
        finally:
            self._ready.set()

    @property
    def bytes(self) -> int:
        return self.page.by_event.get(self.event, 0)

    @property
    def outputs(self) -> collections.Counter:
        return self.page.by_output.get(self.event, collections.Counter())


def rounded(value: float) -> float | None:
    """A perplexity as the class chart carries it (``demo.charts.rounded``: 5 significant digits)."""
    return float(f"{value:.5g}") if value is not None and abs(value) < float("inf") else None


def shown_epochs(updates: list, parsed: dict, truth: dict[str, list]) -> tuple[dict, dict, int, int]:
    """What one follower's class chart showed: ({(nickname, epoch): when it first showed a point at that epoch},
    {the same: when at the epoch's perplexity}, updates showing a wrong point, wrong points in them). The chart is
    the one drawn (its payload) grown by the points sent since, as the page grows it (``demo.growth.CHARTS_JS``:
    a trace keeps its first ``keep`` points and takes the new ones, when the points grow the graph drawn,
    ``base``); ``truth``: each student's perplexities as its run reported them."""
    seen: dict[tuple[str, int], float] = {}
    right_seen: dict[tuple[str, int], float] = {}
    wrong_updates = wrong_points = 0
    for t, chart, points in updates:
        plot = chart.get("plot") if isinstance(chart, dict) else None
        if not plot:
            continue
        if plot not in parsed:  # every follower of a look gets the same payload: parse it once
            figure = orjson.loads(plot)
            traces = {d["uid"]: (d.get("name", ""), list(d.get("x") or []), list(d.get("y") or []))
                      for d in figure["data"] if str(d.get("uid", "")).startswith("s")}
            parsed[plot] = ((figure["layout"].get("meta") or {}).get("base"), traces)
        base, traces = parsed[plot]
        grown = dict(traces)
        p = next(iter(points.values()), None) if isinstance(points, dict) else None
        if p and p.get("base") == base:
            for uid, g in (p.get("traces") or {}).items():  # by uid (demo.growth.growth)
                if uid in grown:
                    name, xs, ys = grown[uid]
                    keep = g.get("keep", 0)
                    grown[uid] = (name, xs[:keep] + list(g.get("x", [])), ys[:keep] + list(g.get("y", [])))
        bad = 0
        for name, xs, ys in grown.values():
            right = truth.get(name, [])
            for x, y in zip(xs, ys):
                if isinstance(x, int):
                    seen.setdefault((name, x), t)
                if isinstance(x, int) and 1 <= x <= len(right) and y == right[x - 1]:
                    right_seen.setdefault((name, x), t)
                elif x is not None:
                    bad += 1
        wrong_updates += bad > 0
        wrong_points += bad
    return seen, right_seen, wrong_updates, wrong_points


# ---------------------------------------------------------------- a wave
def student(url: str, values: list[Any], lr: float, nickname: str, offset: float, code: str | None,
            board: str | None, ready: threading.Semaphore, go: threading.Event, out: list,
            followers: list, pages: list) -> None:
    """One student's page: it opens (with the class link in an experiment wave: its load, the board's stream,
    then Join), waits for the class, presses Train ``offset`` s after the others' signal and follows its run."""
    page = BoardPage(url, {"class": code} if code else None)
    pages.append(page)
    released = False
    try:
        page.call("/on_load", ["", LAPTOP])
        if code:
            if board:  # (a page that does not follow the board: the benchmark's --followers)
                followers.append(Follower(page, board))
            page.call("/join", [code, nickname])
        ready.release()
        released = True
        go.wait()
        time.sleep(offset)
        t0 = time.monotonic()
        first, final = None, None
        for outputs in page.stream("/train", values):
            final = outputs[5]
            if first is None and isinstance(final, dict) and final.get("epoch", 0) >= 1:
                first = time.monotonic() - t0
        out.append({"nickname": nickname, "lr": lr, "first": first, "start": t0, "end": time.monotonic(),
                    "final": final, "received": page.received})
    except Exception as e:  # noqa: BLE001 (reported with the wave's figures)
        out.append({"nickname": nickname, "error": f"{type(e).__name__}: {e}"})
        if not released:
            ready.release()


def wave(url: str, workdir: Path, log: EpochLog, proc: subprocess.Popen, defaults: dict, boards: tuple[str, str],
         experiment: bool, students: int, epochs: int, lrs: list[float], offsets: list[float],
         following: int) -> dict:
    results, followers, pages = [], [], []
    log.read()  # what ended before this wave
    code = None
    if experiment:
        teacher = BoardPage(url, {"mode": "present"})  # the projector: the teacher's own page, presenting
        pages.append(teacher)
        teacher.call("/on_load", ["", PROJECTOR])
        settings = {k: v for k, v in app_args("scratch-random", epochs, 10).items()
                    if k not in ("corpus_file", "resume")}
        opened = teacher.call("/experiment", [QUESTION, ["lr"], epochs, settings, {"lr": list(LR_RANGE)}])[0]
        code = opened["code"]
        followers.append(Follower(teacher, boards[0]))
    go, ready = threading.Event(), threading.Semaphore(0)
    threads = []
    for i in range(students):
        threads.append(threading.Thread(target=student, daemon=True, args=(
            url, run_values(defaults, epochs, lrs[i]), lrs[i], f"s{i + 1:02d}", offsets[i], code,
            boards[1] if i < following else None, ready,
            go, results, followers, pages)))
    for t in threads:
        t.start()
    for _ in threads:
        ready.acquire()
    counters0 = server_counters(workdir)  # (a second's wait) every page open, joined and settled; then Train
    cpu0, me0, threads0, all0 = proc_stats(proc.pid)["cpu_s"], self_cpu(), thread_cpu(proc.pid), machine_cpu()
    t_go = time.monotonic()
    at_go = [f.bytes for f in followers]
    go.set()
    for t in threads:
        t.join()
    t_end = max((r["end"] for r in results if "end" in r), default=time.monotonic())
    at_end = [f.bytes for f in followers]
    cpu, me, threads1 = proc_stats(proc.pid)["cpu_s"] - cpu0, self_cpu() - me0, thread_cpu(proc.pid)
    others = machine_cpu() - all0 - cpu - me
    time.sleep(2.5)  # the board's last updates (a look a second)
    ended = log.read()
    for page in pages:
        page.close()
    counters = server_counters(workdir)
    by_thread: collections.Counter = collections.Counter()
    for tid, seconds in threads1.items():
        by_thread[thread_group(counters["threads"].get(tid))] += seconds - threads0.get(tid, 0.0)
    errors = [r for r in results if "error" in r]
    done = [r for r in results if "error" not in r]
    chars = sum(r["final"]["mean_chars_per_sec"] * r["final"]["train_seconds"] for r in done)
    w = {"experiment": experiment, "errors": errors, "results": done, "wall": t_end - t_go,
         "rate": chars / (t_end - t_go), "epochs_done": sum(r["final"]["epoch"] for r in done),
         "cpu": cpu, "me": me, "class_renders": counters["class_renders"] - counters0["class_renders"],
         "class_seconds": counters["class_seconds"] - counters0["class_seconds"],
         "renders": counters["renders"] - counters0["renders"],
         "render_seconds": counters["render_seconds"] - counters0["render_seconds"],
         "statuses": collections.Counter(r["final"]["status"] for r in done),
         "page_rate": [r["received"] / (r["end"] - r["start"]) for r in done], "load": os.getloadavg()[0],
         "others": others, "threads": by_thread}
    if experiment:
        lr_of = {r["nickname"]: lr_key(r["lr"]) for r in done}
        truth = {r["nickname"]: [rounded(v) for v in r["final"]["perplexities"]] for r in done}
        delays, right_delays, missed, parsed, wrong, wrong_points, updates = [], [], 0, {}, 0, 0, 0
        for f in followers:
            seen, right_seen, bad, bad_points = shown_epochs(f.updates, parsed, truth)
            wrong, wrong_points, updates = wrong + bad, wrong_points + bad_points, updates + len(f.updates)
            for r in done:
                for e in range(1, r["final"]["epoch"] + 1):
                    t_ended = ended.get((lr_of[r["nickname"]], e))
                    if t_ended is None:
                        continue
                    t_seen, t_right = seen.get((r["nickname"], e)), right_seen.get((r["nickname"], e))
                    if t_seen is None:
                        missed += 1
                    else:
                        delays.append(t_seen - t_ended)
                    if t_right is not None:
                        right_delays.append(t_right - t_ended)
        span = t_end - t_go
        sizes = collections.Counter()
        for f in followers:
            sizes.update(f.outputs)
        w.update(delays=delays, right_delays=right_delays, missed=missed, followers=len(followers), wrong=wrong,
                 wrong_points=wrong_points,
                 updates=updates, output_bytes={k: v / len(followers) for k, v in sizes.items()},
                 board_rate=[(b - a) / span for a, b in zip(at_go, at_end)],
                 board_total=[f.bytes for f in followers],
                 board_updates=[sum(1 for t, _, _ in f.updates if t_go <= t <= t_end) / span for f in followers])
    return w


def thread_group(name: str | None) -> str:
    """What a server thread does, by its name (threads Python did not start have none: torch's)."""
    if name is None:
        return "native"
    if name.startswith("charrnn-worker"):
        return "training"
    if name.endswith("(run)"):
        return "event loop"
    return "AnyIO workers" if name.startswith("AnyIO") else "other"


def machine_cpu() -> float:
    """CPU seconds the whole machine has been busy (/proc/stat): less the server's and this process's, what else
    ran meanwhile (another benchmark, a browser test)."""
    fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    return (sum(fields[:3]) + sum(fields[5:8])) / os.sysconf("SC_CLK_TCK")


def self_cpu() -> float:
    me = resource.getrusage(resource.RUSAGE_SELF)
    return me.ru_utime + me.ru_stime


# ---------------------------------------------------------------- the report
def describe(k: int, w: dict, students: int) -> None:
    firsts = [r["first"] for r in w["results"] if r["first"] is not None]
    kind = "experiment" if w["experiment"] else "plain"
    print(f"\nwave {k} ({kind}): {len(w['results'])}/{students} students, "
          f"{', '.join(f'{n}x {s}' for s, n in w['statuses'].items())}"
          + (f"; {len(w['errors'])} failed: {w['errors'][0]['error']}" if w["errors"] else ""))
    if firsts:
        print(f"  first epoch after pressing Train: p50 {pct(firsts, 50):.1f} s · max {max(firsts):.1f} s "
              f"(target max <= 10 s); {len(w['results']) - len(firsts)} never got one")
    print(f"  {w['epochs_done']} epochs in {w['wall']:.0f} s (first press to last end): aggregate "
          f"{w['rate']:,.0f} chars/s · {w['epochs_done'] / w['wall']:.2f} epochs/s")
    print(f"  CPU seconds, first press to last end: server {w['cpu']:.0f}, this process (the pages' clients) "
          f"{w['me']:.1f}, the machine's other processes {w['others']:.1f} (load {w['load']:.2f}); "
          f"run renders {w['renders']} ({w['render_seconds']:.1f} s), board renders {w['class_renders']} "
          f"({w['class_seconds']:.2f} s = {w['class_seconds'] / max(w['cpu'], 1e-9):.1%} of the server's CPU)")
    print("  the server's CPU seconds by thread, first press to last end: " + " · ".join(
        f"{k} {v:.1f}" for k, v in sorted(w["threads"].items(), key=lambda kv: -kv[1])))
    print(f"  a student's page receives (its whole stream) {statistics.mean(w['page_rate']) / 1e3:.1f} kB/s mean, "
          f"{max(w['page_rate']) / 1e3:.1f} max")
    if w["experiment"]:
        d, b = w["delays"], w["board_rate"]
        if d:
            print(f"  update delay, epoch's end to a follower's class chart: p50 {pct(d, 50):.2f} s · "
                  f"p95 {pct(d, 95):.2f} s · max {max(d):.2f} s over {len(d):,} (epoch, student, follower) "
                  f"(target <= 1 s); {w['missed']} never shown")
            r = w["right_delays"]
            print(f"  the same, until the point is at the epoch's perplexity: p50 {pct(r, 50):.2f} s · p95 "
                  f"{pct(r, 95):.2f} s · max {max(r):.2f} s; {sum(x > 2.0 for x in r):,} later than 2 s")
        print(f"  board stream per follower ({w['followers']}: the projector and each student's page) while the "
              f"class trains: {statistics.mean(b) / 1e3:.2f} kB/s mean · {max(b) / 1e3:.2f} kB/s max, "
              f"{statistics.mean(w['board_updates']):.2f} updates/s; {statistics.mean(w['board_total']) / 1e3:.0f} kB "
              f"per follower in the wave")
        parts = ("title", "class chart", "results chart", "table", "points")
        print("  of which, per follower in the wave (the outputs' diffs as sent): " + " · ".join(
            f"{parts[i] if i < len(parts) else i} {v / 1e3:.0f} kB" for i, v in sorted(w["output_bytes"].items())))
        print(f"  updates whose class chart, as the page grows it, shows a point that is not the run's: "
              f"{w['wrong']} of {w['updates']:,} ({w['wrong_points']:,} wrong points)")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--students", type=int, default=30)
    ap.add_argument("--epochs", type=int, default=20, help="epochs of every run (default 20)")
    ap.add_argument("--pairs", type=int, default=2, help="(experiment, plain) wave pairs, alternating (default 2)")
    ap.add_argument("--spread", type=float, default=3.0, help="seconds over which the class presses Train")
    ap.add_argument("--followers", type=int, default=None,
                    help="students whose pages follow the board (default: every one; the projector always does)")
    ap.add_argument("--quick", action="store_true", help="a smoke run: 8 students, 1 pair, 10 epochs")
    ap.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.serve:
        return serve()
    if args.quick:
        args.students, args.pairs, args.epochs = 8, 1, 10
    # a closed tab's session closes after 3 s (60 by default), so that a wave's are gone before the next
    os.environ["CHARRNN_RECONNECT_SECONDS"] = "3"
    n = args.students
    lrs = [float(f"{50 * 4 ** (i / max(n - 1, 1)):.4g}") for i in range(n)]  # 50..200 around the chapter's 100
    offsets = [random.Random(i).uniform(0, args.spread) for i in range(n)]
    print(f"{n} students, {args.epochs} epochs each (scratch · random, lr {lrs[0]:g}-{lrs[-1]:g}), pressing within "
          f"{args.spread:g} s; {args.pairs} pairs of waves, experiment then plain; {os.cpu_count()} cores, load "
          f"{os.getloadavg()[0]:.2f}")
    with tempfile.TemporaryDirectory() as d:
        workdir = Path(d)
        (workdir / "epochs.log").touch()
        proc, url = start_server(workdir)
        try:
            warm = Page(url)
            defaults = train_defaults(url)
            warm.call("/train", run_values(defaults, 1))  # the corpus read, torch warm
            warm.close()
            boards = board_events(url)
            settle(url)
            log, waves = EpochLog(workdir / "epochs.log"), []
            for k in range(2 * args.pairs):
                w = wave(url, workdir, log, proc, defaults, boards, k % 2 == 0, n, args.epochs, lrs, offsets,
                     n if args.followers is None else args.followers)
                waves.append(w)
                describe(k + 1, w, n)
                settle(url)
            report(waves, args)
        finally:
            proc.terminate()
            proc.wait(10)


def report(waves: list[dict], args: Any) -> None:
    print("\nwave  kind        first epoch p50/max s  chars/s  server CPU s (event loop, board renders)  "
          "clients' CPU s  others' CPU s")
    for k, w in enumerate(waves, 1):
        firsts = [r["first"] for r in w["results"] if r["first"] is not None]
        kind = "experiment" if w["experiment"] else "plain"
        print(f"{k:4d}  {kind:10}  {pct(firsts, 50):9.1f} / {max(firsts):4.1f}  {w['rate']:7,.0f}  "
              f"{w['cpu']:12.0f} ({w['threads']['event loop']:4.1f}, {w['class_seconds']:4.2f})"
              f"{'':18}{w['me']:14.1f}  {w['others']:13.1f}")
    exp, plain = [w for w in waves if w["experiment"]], [w for w in waves if not w["experiment"]]
    delays = [d for w in exp for d in w["delays"]]
    right = [d for w in exp for d in w["right_delays"]]
    rates = [b for w in exp for b in w["board_rate"]]
    if delays:
        print(f"update delay (s): p50 {pct(delays, 50):.2f} · p95 {pct(delays, 95):.2f} · max {max(delays):.2f} "
              f"(target <= 1 s), {sum(w['missed'] for w in exp)} never shown; at the epoch's perplexity: p50 "
              f"{pct(right, 50):.2f} · p95 {pct(right, 95):.2f} · max {max(right):.2f}")
    if rates:
        print(f"board bytes per follower per second: mean {statistics.mean(rates) / 1e3:.2f} kB/s · max "
              f"{max(rates) / 1e3:.2f} kB/s")
    ratios = [e["rate"] / p["rate"] for e, p in zip(exp, plain)]
    print("throughput experiment / plain, per pair: " + " · ".join(f"{r:.3f}" for r in ratios)
          + (f"; mean {statistics.mean(ratios):.3f}, the board's cost {1 - statistics.mean(ratios):.1%} "
             "(target <= 5%)" if ratios else ""))


if __name__ == "__main__":
    main()
