"""Inside the model in a real browser: the next-character bars follow typing (once it pauses) and the training
model while the panel is open, also when the panel was opened before there was any model."""
from __future__ import annotations

import re
import threading
import time

import pytest

from conftest import serve_app
from test_browser import ARTIFACTS, _need_browser, browser, button, open_page, set_number  # noqa: F401

gr = pytest.importorskip("gradio")

pytestmark = pytest.mark.browser  # drives Debian's Chromium through Playwright

@pytest.fixture(scope="module")
def served():
    """The page served with ``Inside.on_next`` counted: (url, [(when, prefix)] of every call but the panel's
    timer's, which asks once a second whatever is typed)."""
    _need_browser()
    from charrnn.corpus import CorpusError, load_corpus
    from demo.inside import Inside

    try:
        load_corpus("jaychou", progress=False)
    except CorpusError as e:
        pytest.skip(f"the Jay Chou corpus is not available: {e}")
    calls: list[tuple[float, str]] = []
    lock, here = threading.Lock(), threading.local()
    real, real_tick = Inside.on_next, Inside.on_tick

    def counted(self, prefix: str, temperature: float, request: gr.Request):  # Gradio reads the annotations
        if not getattr(here, "ticking", False):
            with lock:
                calls.append((time.monotonic(), prefix))
        return real(self, prefix, temperature, request)

    def ticked(self, prefix: str, temperature: float, note: str, request: gr.Request):
        here.ticking = True
        try:
            return real_tick(self, prefix, temperature, note, request)
        finally:
            here.ticking = False

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(Inside, "on_next", counted)  # before the page is built: its events hold these functions
        mp.setattr(Inside, "on_tick", ticked)
        with serve_app(max_runs=2) as s:
            yield s.url, calls


def note_text(page) -> str:
    """The note under the bars: "«…» 之后，模型：run #1 (…, epoch N) · after «…», from run #1 (…)" or "✗ …"."""
    return page.locator("#next-note").inner_text()


def epoch_in_note(page) -> int | None:
    found = re.search(r"epoch (\d+)\)", note_text(page))
    return int(found[1]) if found else None


def test_the_bars_follow_the_model_and_typing(served, browser):  # noqa: F811
    url, calls = served
    page = open_page(browser, url)
    # the panel opened before any training: it says there is no model yet
    page.get_by_text("🔬 模型内部 · Inside the model").click()
    page.wait_for_function("() => document.querySelector('#next-note').innerText.includes('No model yet')",
                           timeout=20_000)
    # ... and works as soon as a model exists, without another click
    set_number(page, "迭代周期 · epochs", 400)
    button(page, "▶ 训练 · Train").click()
    page.wait_for_function("() => document.querySelectorAll('#next-chars .next-bar').length === 10", timeout=60_000)
    # while the panel is open the bars follow the training model: the epoch in their note moves on (the panel's
    # timer asks every second, a run of this size trains an epoch in well under a second)
    first = epoch_in_note(page)
    assert first is not None, note_text(page)
    deadline = time.monotonic() + 15
    while (epoch_in_note(page) or 0) < first + 2 and time.monotonic() < deadline:
        time.sleep(0.2)
    assert (epoch_in_note(page) or 0) >= first + 2, f"the bars stayed at epoch {first}: {note_text(page)}"
    # typing: one request once the typing pauses (300 ms), not one per character, and bars for what was typed
    box = page.get_by_label("前缀 · prefix (click a bar to write it)")
    box.click()
    box.press("Control+A")
    typed_at = time.monotonic()
    box.press_sequentially("我不能再想", delay=120)  # 5 characters, 120 ms apart: no pause of 300 ms among them
    typed_end = time.monotonic()
    page.wait_for_function("() => document.querySelector('#next-note').innerText.includes('after «我不能再想»')",
                           timeout=10_000)
    answered = time.monotonic() - typed_at
    # the panel's timer may have shown the bars first (it asks with what the box holds): wait for the typing's
    # own request too
    deadline = time.monotonic() + 10
    while not any(p == "我不能再想" for t, p in calls if t >= typed_at) and time.monotonic() < deadline:
        time.sleep(0.1)
    typing = [(t, p) for t, p in calls if t >= typed_at and p != "分开"]
    # asked once the typing paused: nothing while the keys came (a request per key would start with the first,
    # 0.5 s before the last; a busy server only makes the later ones fewer), then the whole prefix
    assert typing and typing[0][0] > typed_end - 0.05, f"asked while typing: {typing} (typing ended {typed_end})"
    assert [p for _, p in typing] == ["我不能再想"] and answered < 5.0, (typing, answered)
    page.screenshot(path=str(ARTIFACTS / "inside-typing.png"), full_page=False)
    button(page, "■ 停止 · Stop").click()
    page.close()


def test_a_checkpoint_of_another_text_brings_its_prefix(served, browser, tiny_corpus, tiny_config, tmp_path):  # noqa: F811
    """Upload a checkpoint of an English text: Write's prefix (分开, which that model has never seen) becomes the
    checkpoint's own first prefix."""
    from charrnn import Trainer

    trainer = Trainer(tiny_config(epochs=1, prefixes=["the", "of"]), tiny_corpus)
    for _ in trainer.run():
        pass
    path = trainer.save(str(tmp_path / "english.safetensors"))
    url, _ = served
    page = open_page(browser, url)
    assert page.get_by_label("前缀 · prefix", exact=True).input_value() == "分开"
    page.get_by_text("检查点 · Checkpoints").click()
    page.locator("input[type=file]").last.set_input_files(path)
    page.wait_for_function("""() => [...document.querySelectorAll('input, textarea')]
        .some(e => e.value === 'the')""", timeout=30_000)
    assert page.get_by_label("前缀 · prefix", exact=True).input_value() == "the"
    assert "“the”" in page.locator("body").inner_text()
    page.close()
