"""The page's own state per session (renders, Train notes, a class's channel) goes when the lab closes the session."""
from __future__ import annotations

import asyncio
import gc
import os
import weakref

import pytest
from conftest import wait_for

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
pytest.importorskip("gradio")
from demo import renders, streams, training  # noqa: E402
from demo.page_state import PerSession  # noqa: E402

from charrnn.lab import Lab  # noqa: E402


@pytest.fixture
def lab():
    lab = Lab(max_runs=2)
    yield lab
    lab.shutdown()


def page_state_of(session) -> list:
    """Every room's entry for ``session`` (made now if it has none)."""
    training.note(session, "a note")
    return [renders.renders_of(session), training.TRAIN.of(session), streams.CHANNELS.of(session)]


def test_a_closed_sessions_page_state_goes_with_it(lab, tiny_corpus, tiny_config):
    """A session that rendered, left a Train note, had a class watching it and trained a run: once the lab
    closes it and its run has ended, nothing of the page's keeps it or its state alive."""
    from charrnn import Trainer
    session = lab.session("page")
    run = session.start(Trainer(tiny_config(epochs=100_000), tiny_corpus))
    renders.outputs(session)

    async def watch_until_closed(session) -> None:
        stream = streams.watch(session)
        await stream.__anext__()  # what the session shows now
        lab.close(session.key)
        streams.CHANNELS.get(session).poke()
        with pytest.raises(StopAsyncIteration):
            while True:
                await asyncio.wait_for(stream.__anext__(), 10)
    asyncio.run(watch_until_closed(session))
    assert run.wait(10)
    states = [weakref.ref(s) for s in page_state_of(session)]
    gone = weakref.ref(session)
    del session, run
    wait_for(lambda: gc.collect() is not None and gone() is None, timeout=10)  # the scheduler lets go of its run
    assert all(s() is None for s in states)


def test_a_closed_session_still_held_loses_its_state_when_another_session_gets_one(lab):
    """Something (a stream not yet ended) still holds a closed session: its entries go the next time any
    session's entry is made, not when the holder lets go."""
    held = lab.session("held")
    kept = page_state_of(held)
    lab.close(held.key)
    other = lab.session("other")
    page_state_of(other)
    assert held not in renders.RENDERS and held not in training.TRAIN and held not in streams.CHANNELS
    assert other in renders.RENDERS and kept[0] is not renders.renders_of(other)


def test_per_session_makes_one_entry_per_session():
    class Session:
        closed = False
    made = []
    per = PerSession(lambda s: made.append(id(s)) or object())
    a, b = Session(), Session()
    assert per.of(a) is per.of(a) and per.of(b) is not per.of(a) and made == [id(a), id(b)]
    assert per.get(Session()) is None and len(per) == 2
    del a
    gc.collect()
    assert len(per) == 1
