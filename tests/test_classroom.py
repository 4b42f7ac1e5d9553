"""A class through the public API: share a session, watch it live, write with its model, run lessons."""
from __future__ import annotations

import asyncio
import collections
import json
import os
import re
import threading
import time
from pathlib import Path

import pytest
from conftest import wait_for

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
pytest.importorskip("gradio")
from gradio_client import Client
from gradio_client.exceptions import AppError

from demo import lessons
from demo import charts
from demo import renders as renders_mod
from demo import streams

from charrnn.lab import normal_code

ROOT = Path(__file__).resolve().parent.parent

TINY = dict(corpus="offline", max_chars=3000, num_hiddens=32, batch_size=8, num_steps=10, prefixes="the, of",
            pred_period=2)


LAB_OPTIONS = dict(max_runs=4)  # the module's server (conftest.py's ``server`` fixture)


def share(c: Client) -> tuple[str, str]:
    panel = c.predict(api_name="/share")
    code = re.search(r"class-code'>([A-Z0-9-]+)<", panel)[1]
    link = re.search(r"href='([^']+)'", panel)[1]
    return code, link


def test_share_gives_a_hard_to_guess_code_a_link_and_a_qr_code(server):
    url, lab = server
    c = Client(url, verbose=False)
    code, link = share(c)
    assert re.fullmatch(r"[2-9A-HJ-NP-Z]{4}-[2-9A-HJ-NP-Z]{4}", code)  # 32 symbols x 8: 40 bits
    assert link == f"{url}?class={code}"
    assert share(c)[0] == code, "sharing again keeps the class's code"
    assert "<svg" in c.predict(api_name="/share") and normal_code(code.lower().replace("-", " ")) == code
    assert lab.by_class(code) is lab.peek(c.session_hash)
    c.close()


@pytest.mark.slow  # an 80-epoch run watched live, then the class ends (30-90 s)
def test_a_watcher_sees_the_run_live_and_trains_nothing(server):
    url, lab = server
    teacher = Client(url, verbose=False)
    code, _ = share(teacher)
    watcher = Client(url, verbose=False)
    seen: list[dict] = []
    job = watcher.submit(code, api_name="/watch")

    def collect():
        for out in job:
            if isinstance(out[5], dict):
                seen.append(out[5])
    reader = threading.Thread(target=collect, daemon=True)
    reader.start()
    wait_for(lambda: (s := lab.peek(watcher.session_hash)) and s.membership.watching)
    runs_before = lab.scheduler.running
    final = [out[5] for out in teacher.submit(**TINY, epochs=80, api_name="/train")][-1]
    assert final["status"] == "finished"
    wait_for(lambda: seen and seen[-1].get("epoch") == 80 and seen[-1].get("status") == "finished")
    epochs = [p["epoch"] for p in seen if "epoch" in p]
    assert epochs == sorted(epochs) and len(set(epochs)) >= 3, f"the watcher saw no live progress: {epochs}"
    # the watcher trains nothing
    refused = [out for out in watcher.submit(**TINY, epochs=2, api_name="/train")][-1]
    assert "watches a class" in refused[5]["message"] and lab.scheduler.running <= runs_before
    # it writes with the teacher's model, once every few seconds
    text, note = watcher.predict("the", 20, "greedy", 1.0, 0, 0, api_name="/generate")
    assert text.startswith("the") and len(text) == 23 and "run #1" in note
    with pytest.raises(AppError, match="One write every"):
        watcher.predict("the", 5, "greedy", 1.0, 0, 0, api_name="/generate")
    # the class ends with the teacher's session: the watcher is told so
    teacher.close()
    wait_for(lambda: lab.by_class(code) is None)
    reader.join(20)
    wait_for(job.done, timeout=10)  # the client marks the job done just after its last output arrives
    assert "ended" in job.outputs()[-1][0]
    watcher.close()


def test_an_unknown_code_is_a_clear_page(server):
    url, _ = server
    c = Client(url, verbose=False)
    out = c.predict("ZZZZ-2222", api_name="/watch")
    assert "unknown or has ended" in out[0] and "不存在或已结束" in out[0]
    c.close()


def test_the_decoding_lesson_shows_one_models_greedy_and_sampled_lyrics(server, monkeypatch):
    url, lab = server
    monkeypatch.setitem(lessons.LESSONS, "decoding", lessons.Lesson(
        "decoding", "d", lessons.LESSONS["decoding"].caption, ({**lessons.LESSONS["decoding"].runs[0], **{
            "corpus": "offline", "max_chars": 3000, "num_hiddens": 32, "batch_size": 8, "num_steps": 10,
            "prefixes": ["the"]}},), fork=dict(temperature=0.8, top_k=None)))
    c = Client(url, verbose=False)
    assert [out[5] for out in c.submit(**TINY, epochs=2, api_name="/train")][-1]["status"] == "finished"
    outs = list(c.submit(epochs=4, api_name="/lesson_decoding"))
    session = lab.peek(c.session_hash)
    earlier, first, second = session.runs
    assert first.view().status == second.view().status == "finished"
    assert second.trainer is not None and first.view().history == second.view().history  # the same model
    assert second.view().epoch == 4 and second.continues == 2 and "model of #2" in second.label  # trained once
    assert first.config.temperature == 0 and second.config.temperature == 0.8
    greedy, sampled = first.view().samples[-1].text, second.view().samples[-1].text
    assert greedy != sampled and greedy.startswith("the") and sampled.startswith("the")
    latest = outs[-1][3]
    assert "side-by-side" in latest and "greedy" in latest and "sampled, T=0.8" in latest
    assert "greedy argmax tends to repeat itself" in outs[-1][0]  # the caption, in the status
    # one curve: the model trained once; the run before the lesson is hidden (a clean chart), not forgotten
    chart = json.loads(outs[-1][1]["plot"])
    assert [t["uid"] for t in chart["data"]] == ["run2"] and len(session.runs) == 3
    c.close()


def test_stop_ends_a_lesson(server, monkeypatch):
    url, lab = server
    monkeypatch.setitem(lessons.LESSONS, "sampling", lessons.Lesson(
        "sampling", "s", "caption", tuple({**r, "corpus": "offline", "max_chars": 3000, "num_hiddens": 32,
                                           "batch_size": 8, "num_steps": 10, "prefixes": []}
                                          for r in lessons.LESSONS["sampling"].runs)))
    c = Client(url, verbose=False)
    job = c.submit(epochs=5000, api_name="/lesson_sampling")
    session = wait_for(lambda: (s := lab.peek(c.session_hash)) and s.runs and s)
    wait_for(lambda: session.runs[0].view().epoch >= 1)
    c.predict(api_name="/stop")
    wait_for(lambda: job.done(), timeout=20)
    time.sleep(0.5)
    assert len(session.runs) == 1 and session.runs[0].view().status == "stopped" and not session.in_lesson
    c.close()


def test_a_full_room_of_streams_leaves_every_click_answered(server):
    """60 pages following a class (more than Gradio's default 40 events at once) and /stop still answers."""
    url, lab = server
    import requests
    teacher = Client(url, verbose=False)
    code, _ = share(teacher)
    responses: list[requests.Response] = []
    try:
        for _ in range(60):  # a raw HTTP stream each: as the server sees a page, lighter than 60 clients
            event = requests.post(f"{url}gradio_api/call/watch", json={"data": [code]}, timeout=10).json()
            r = requests.get(f"{url}gradio_api/call/watch/{event['event_id']}", stream=True, timeout=30)
            assert next(r.iter_lines(decode_unicode=True)).startswith("event:")  # it is being served
            responses.append(r)
        # queued behind 60 streams, these would never come (TimeoutError)
        assert "Nothing is training" in teacher.submit(api_name="/stop").result(timeout=10)
        assert teacher.submit(api_name="/stats").result(timeout=10)["watchers"] >= 60
    finally:
        for r in responses:
            r.close()
        teacher.close()


class _Shown:
    """What ``streams.Channel`` reads of a session: whether it closed, its state key (the page keeps its renders
    and its channel itself, keyed by the session)."""

    def __init__(self) -> None:
        self.closed, self.key, self.touched = False, 0, 0

    def touch(self) -> None:
        self.touched += 1

    def state_key(self) -> tuple:
        return (self.key,)


def test_a_class_is_looked_at_and_rendered_once_per_change_however_many_watch(monkeypatch):
    """Eight watching pages in two looks (5 laptops, 3 projectors): each change is rendered once per look and
    the same outputs go to every page of that look; the session is looked at on the channel's ticks, not once
    per page; a poke (the teacher's page sent a first point or an end) is sent at once, however far the next
    tick; a closed session ends every page's stream, and the channel's task with it."""
    renders = collections.Counter()
    real = renders_mod.outputs

    def outputs(session, focus=None, style=None, lang=None):
        if not isinstance(session, _Shown):  # the module's server may still be serving an earlier test's pages
            return real(session, focus, style, lang)
        renders[style] += 1
        return ("status", session.key, style, lang)

    monkeypatch.setattr(renders_mod, "outputs", outputs)
    monkeypatch.setattr(streams, "WATCH_EVERY", 0.05)
    monkeypatch.setattr(streams, "CLOCK_EVERY", 3600.0)  # no clock to move: renders come from changes only

    async def main() -> None:
        s = _Shown()
        pages = [streams.watch(s, st, "both") for st in [charts.NORMAL] * 5 + [charts.PRESENT] * 3]
        assert [(await p.__anext__())[1] for p in pages] == [0] * 8  # each page: what the session shows now
        channel = streams.CHANNELS.get(s)
        assert channel.watchers == 8
        renders.clear()
        s.key = 1
        got = [await asyncio.wait_for(p.__anext__(), 5) for p in pages]
        assert renders == {charts.NORMAL: 1, charts.PRESENT: 1}, "one render per look, not one per page"
        assert all(o is got[0] for o in got[:5]) and all(o is got[5] for o in got[5:]) and got[0][1] == 1
        looks = channel.looks
        await asyncio.sleep(1.0)
        # 20 ticks of 0.05 s in that second: the session was looked at about 20 times (not 8 pages x 20)
        assert 5 <= channel.looks - looks <= 30 and renders == {charts.NORMAL: 1, charts.PRESENT: 1}
        monkeypatch.setattr(streams, "WATCH_EVERY", 3600.0)
        await asyncio.sleep(0.2)  # the channel now waits for the next tick of an hour, or a poke
        s.key = 2
        channel.poke()
        assert (await asyncio.wait_for(pages[0].__anext__(), 5))[1] == 2
        s.closed = True
        channel.poke()
        for p in pages:
            with pytest.raises(StopAsyncIteration):
                while True:  # the newest update first, if the page had not taken it yet
                    await asyncio.wait_for(p.__anext__(), 5)
        task = channel._task
        if task is not None:  # it may still be rendering the newest update for the projectors' look
            await asyncio.wait_for(task, 5)
        assert channel._task is None and channel.watchers == 0 and s.touched >= channel.looks

    asyncio.run(main())
