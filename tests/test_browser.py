"""A real browser (Debian's Chromium, driven by Playwright) uses the page the way a teacher would."""
from __future__ import annotations

import os
import shutil
import sys
import time
from pathlib import Path

import pytest

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = os.environ.get("CHARRNN_CHROMIUM", "/usr/bin/chromium")
ARTIFACTS = Path(os.environ.get("CHARRNN_ARTIFACTS", ROOT / "artifacts"))


def _need_browser():
    required = os.environ.get("CHARRNN_REQUIRE_BROWSER") == "1"  # .ci/run sets it: CI must not skip this
    why = None
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        why = "the playwright package is not installed (pip install -r requirements-dev.txt)"
    if why is None and not (Path(CHROMIUM).exists() or shutil.which(CHROMIUM)):
        why = f"no Chromium at {CHROMIUM} (apt-get install chromium)"
    if why:
        if required:
            pytest.fail(why)
        pytest.skip(why)


@pytest.fixture(scope="module")
def page_url():
    _need_browser()
    sys.path.insert(0, str(ROOT / "demo"))
    import app
    from charrnn.corpus import CorpusError, load_corpus
    from charrnn.lab import Lab

    try:
        load_corpus("jaychou", progress=False)
    except CorpusError as e:
        pytest.skip(f"the Jay Chou corpus is not available: {e}")
    demo = app.build_app(Lab(max_jobs=2))
    _, url, _ = app.launch(demo, prevent_thread_lock=True, quiet=True)
    yield url
    demo.close()
    demo.lab.shutdown()


def _points(page) -> int:
    """Points in the perplexity chart (first plotly graph), read from the plot the page drew."""
    return page.evaluate("""() => {
        const g = document.querySelectorAll('.js-plotly-plot')[0];
        if (!g || !g.data) return 0;
        return g.data.reduce((n, t) => n + (t.x ? t.x.length : 0), 0);
    }""")


def test_teacher_loads_a_preset_trains_watches_and_stops(page_url):
    from playwright.sync_api import sync_playwright

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=[
            "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
            "--no-first-run", "--disable-sync"])
        page = browser.new_page(viewport={"width": 1500, "height": 1000})
        page.goto(page_url)
        page.get_by_role("button", name="▶ 训练 · Train", exact=True).wait_for(timeout=30_000)
        # one click loads the chapter's second setup
        page.get_by_role("button", name="② 从零开始 · 相邻采样  scratch · consecutive", exact=True).click()
        page.wait_for_function("""() => [...document.querySelectorAll('input[type=radio]')]
            .some(r => r.checked && r.value === 'consecutive')""", timeout=10_000)
        # samples every epoch, so they visibly change while we watch
        every = page.get_by_label("采样间隔 · sample every")
        every.fill("1")
        every.press("Tab")
        page.get_by_role("button", name="▶ 训练 · Train", exact=True).click()

        page.wait_for_function("() => document.querySelector('.sample .prefix') !== null", timeout=30_000)
        first = page.locator(".sample").first.inner_text()
        assert first.startswith("分开")
        page.wait_for_function(f"""() => {{
            const s = document.querySelector('.sample');
            return s && s.innerText !== {first!r};
        }}""", timeout=30_000)
        assert page.locator(".sample").first.inner_text() != first, "the newest sample never changed"
        page.wait_for_function("() => document.querySelector('#status').innerText.includes('perplexity')")
        deadline = time.monotonic() + 30
        while _points(page) < 3 and time.monotonic() < deadline:
            time.sleep(0.2)
        n = _points(page)
        assert n >= 3, f"the perplexity chart has {n} points"
        status = page.locator("#status").inner_text()
        assert "scratch · consecutive" in status and "device" in status

        page.get_by_role("button", name="■ 停止 · Stop", exact=True).click()
        page.wait_for_function("() => document.querySelector('#status').innerText.includes('stopped')",
                               timeout=10_000)
        # the model trained so far writes
        page.get_by_role("button", name="写 · Write", exact=True).click()
        page.wait_for_function("() => document.querySelector('#written textarea').value.length > 20",
                               timeout=20_000)
        assert page.locator("#written textarea").input_value().startswith("分开")
        page.screenshot(path=str(ARTIFACTS / "browser.png"), full_page=True)
        browser.close()
    assert (ARTIFACTS / "browser.png").stat().st_size > 10_000
