"""A real browser (Debian's Chromium, driven by Playwright) uses the page the way a teacher would."""
from __future__ import annotations

import os
import re
import shutil
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.browser  # drives Debian's Chromium through Playwright

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


LAB_OPTIONS = dict(max_runs=2)  # the module's server (conftest.py's ``server`` fixture)


@pytest.fixture(scope="module")
def page_url(request):
    _need_browser()
    from charrnn.corpus import CorpusError, load_corpus

    try:
        load_corpus("jaychou", progress=False)
    except CorpusError as e:
        pytest.skip(f"the Jay Chou corpus is not available: {e}")
    return request.getfixturevalue("server").url  # served only once the browser and the corpus are there


def _points(page) -> int:
    """Points in the perplexity chart (first plotly graph), read from the plot the page drew."""
    return page.evaluate("""() => {
        const g = document.querySelectorAll('.js-plotly-plot')[0];
        if (!g || !g.data) return 0;
        return g.data.reduce((n, t) => n + (t.x ? t.x.length : 0), 0);
    }""")


CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--no-first-run", "--disable-sync"]


@pytest.fixture
def browser():
    from playwright.sync_api import sync_playwright

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield b
        b.close()


def open_page(browser, url):
    page = browser.new_page(viewport={"width": 1500, "height": 1000})
    page.goto(url)
    page.get_by_role("button", name="▶ 训练 · Train", exact=True).wait_for(timeout=30_000)
    return page


def button(page, name):
    return page.get_by_role("button", name=name, exact=True)


def open_more(page):
    """Open the sidebar's "more settings" fold (the settings past the chapter's four choices), if it is closed."""
    if not page.locator("#setting-corpus").is_visible():
        page.locator("#more-settings .label-wrap").first.click()
    page.locator("#setting-corpus").wait_for(state="visible", timeout=10_000)


def set_number(page, label, value):
    box = page.get_by_label(label)
    box.fill(str(value))
    box.press("Tab")


def test_teacher_loads_a_preset_trains_watches_and_stops(page_url, browser):
    page = open_page(browser, page_url)
    # one click loads the chapter's second setup
    page.get_by_role("button", name="② 从零开始，相邻采样 · scratch · consecutive", exact=True).click()
    page.wait_for_function("""() => [...document.querySelectorAll('input[type=radio]')]
        .some(r => r.checked && r.value === 'consecutive')""", timeout=10_000)
    # samples every epoch, so they visibly change while we watch
    open_more(page)
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
    assert (ARTIFACTS / "browser.png").stat().st_size > 10_000
    if os.environ.get("CHARRNN_SCREENSHOT"):  # the README's picture (docs/page.md says how it is made)
        page.evaluate("window.scrollTo(0, 0)")
        page.screenshot(path=os.environ["CHARRNN_SCREENSHOT"])


# Every text the note beside Train shows, as it changes (a MutationObserver): Gradio's progress timer ("0.1s")
# must never show in it.
NOTE_WATCH = """() => {
  window.__notes = [];
  const note = document.querySelector('#train-note');
  new MutationObserver(() => window.__notes.push(note.innerText))
    .observe(note, {childList: true, subtree: true, characterData: true});
}"""


def test_stop_pressed_right_after_train_and_train_while_training(page_url, browser):
    page = open_page(browser, page_url)
    page.evaluate(NOTE_WATCH)
    set_number(page, "迭代周期 · epochs", 3000)
    button(page, "▶ 训练 · Train").click()
    button(page, "■ 停止 · Stop").click()  # back to back: before the run has registered
    page.wait_for_function("() => document.querySelector('#train-note').innerText.includes('Stopped')",
                       timeout=10_000)
    time.sleep(3)  # a run that was not stopped would show epochs by now
    assert "epoch" not in page.locator("#status").inner_text() or "■" in page.locator("#status").inner_text()
    # Train while a run is going: the note says so next to the button, and one click stops it and starts anew
    button(page, "▶ 训练 · Train").click()
    page.wait_for_function("() => document.querySelector('#status').innerText.includes('perplexity')",
                       timeout=30_000)
    button(page, "▶ 训练 · Train").click()
    page.wait_for_function("() => document.querySelector('#train-note').innerText.includes('stop it first')",
                       timeout=10_000)
    assert "请先停止" in page.locator("#train-note").inner_text()
    # the run training is #1 or #2 (the Train stopped back to back above may have registered its run first)
    training = int(re.search(r"#(\d+)", page.locator("#status").inner_text()).group(1))
    restart = button(page, "■▶ 停止并开始新的训练 · Stop it and train the new settings")
    restart.click()
    page.wait_for_function(f"() => document.querySelector('#status').innerText.includes('#{training + 1} ')",
                           timeout=30_000)
    page.screenshot(path=str(ARTIFACTS / "browser-restart.png"), full_page=False)
    button(page, "■ 停止 · Stop").click()
    page.wait_for_function(f"""() => {{
        const s = document.querySelector('#status').innerText;
        return s.includes('#{training + 1} ') && s.includes('stopped');
    }}""", timeout=10_000)
    timers = [n for n in page.evaluate("() => window.__notes") if re.search(r"\b\d+\.\ds\b", n)]
    assert timers == [], timers


def test_stop_pressed_right_after_stop_it_and_train_starts_nothing(page_url, browser):
    """The restart button stops the run and presses Train in one step: a Stop pressed right after it
    cancels the new run, as it would a Train's."""
    page = open_page(browser, page_url)
    set_number(page, "迭代周期 · epochs", 3000)
    button(page, "▶ 训练 · Train").click()
    page.wait_for_function("() => document.querySelector('#status').innerText.includes('perplexity')",
                           timeout=30_000)
    training = int(re.search(r"#(\d+)", page.locator("#status").inner_text()).group(1))
    button(page, "▶ 训练 · Train").click()
    restart = button(page, "■▶ 停止并开始新的训练 · Stop it and train the new settings")
    restart.wait_for(timeout=10_000)
    restart.click()
    button(page, "■ 停止 · Stop").click()  # back to back
    page.wait_for_function("() => document.querySelector('#train-note').innerText.includes('Stopped')",
                           timeout=10_000)
    time.sleep(3)  # a new run that was not stopped would show epochs by now
    status = page.locator("#status").inner_text()
    assert f"#{training + 1} " not in status or "■" in status, status


def test_uploading_a_text_suggests_prefixes_from_it(page_url, browser, tmp_path):
    page = open_page(browser, page_url)
    path = tmp_path / "poem.txt"
    path.write_text("静夜思 床前明月光 疑是地上霜 举头望明月 低头思故乡\n" * 40, encoding="utf-8")
    open_more(page)
    page.locator("#setting-corpus input").click()
    page.get_by_role("option", name="上传 .txt · upload a .txt").click()
    page.locator("#setting-corpus_file input[type=file]").set_input_files(str(path))
    page.wait_for_function("() => document.querySelector('#setting-prefixes textarea, #setting-prefixes input')"
                           ".value === '静夜, 床前'", timeout=20_000)
    set_number(page, "迭代周期 · epochs", 2)
    set_number(page, "批量大小 · batch size", 8)
    button(page, "▶ 训练 · Train").click()
    page.wait_for_function("() => document.querySelector('#status').innerText.includes('epoch 2/2')", timeout=30_000)
    assert page.locator(".sample .prefix").first.inner_text() == "静夜"


def test_a_reloaded_page_finds_its_run_still_going(page_url, browser):
    page = open_page(browser, page_url)
    set_number(page, "迭代周期 · epochs", 3000)
    button(page, "▶ 训练 · Train").click()
    page.wait_for_function("() => /epoch \\d+\\/3000/.test(document.querySelector('#status').innerText)",
                           timeout=30_000)
    page.reload()  # the stream that showed the run is gone; the run is the session's and goes on
    page.wait_for_function("() => { const s = document.querySelector('#status');"
                           " return s && /▶ #1 .* epoch \\d+\\/3000/.test(s.innerText); }", timeout=30_000)
    first = int(page.locator("#status").inner_text().split("epoch ")[1].split("/")[0])
    page.wait_for_function(f"() => parseInt(document.querySelector('#status').innerText.split('epoch ')[1]) > {first}",
                           timeout=30_000)
    assert _points(page) >= 1
    button(page, "■ 停止 · Stop").click()
    page.wait_for_function("() => document.querySelector('#status').innerText.includes('stopped')", timeout=10_000)


def test_a_class_watches_the_teachers_run_live_in_present_mode(page_url, browser):
    """A teacher shares; a second browser (another context: another student) opens the link and sees the
    teacher's lesson arrive live, with no Train or Stop; both in present mode, as on a projector."""
    teacher = browser.new_context(viewport={"width": 1280, "height": 720})
    t = teacher.new_page()
    t.goto(page_url + "?mode=present")
    t.get_by_text("全班一起看 · Share with the class").wait_for(timeout=30_000)
    # the page's own load script marks the body; it may run a moment after the accordion shows
    t.wait_for_function("() => document.body.classList.contains('present')", timeout=10_000)
    t.get_by_text("全班一起看 · Share with the class").click()  # the accordion opens
    button(t, "📣 分享给全班 · Share with the class").click()
    t.wait_for_function("() => document.querySelector('#class-panel .class-code') !== null", timeout=20_000)
    link = t.locator("#class-panel a").get_attribute("href")
    code = t.locator("#class-panel .class-code").inner_text()
    assert "?class=" in link and code in link and t.locator("#class-panel svg").count() == 1
    t.screenshot(path=str(ARTIFACTS / "class-share.png"))
    # the lesson: random vs consecutive, with few epochs so the test is short
    set_number_present(t, 6)
    button(t, "随机 vs 相邻采样 · random vs consecutive").click()
    t.wait_for_function("() => document.querySelector('#status').innerText.includes('📖')", timeout=30_000)

    student = browser.new_context(viewport={"width": 1280, "height": 720})
    s = student.new_page()
    s.goto(link + "&mode=present")
    s.wait_for_function("() => { const b = document.querySelector('#banner');"
                        " return b && b.innerText.includes('Watching class'); }", timeout=30_000)
    assert s.get_by_role("button", name="▶ 训练 · Train", exact=True).count() == 0 or \
        not s.get_by_role("button", name="▶ 训练 · Train", exact=True).is_visible()
    assert not s.get_by_role("button", name="■ 停止 · Stop", exact=True).is_visible()
    # the teacher's second run of the lesson arrives on the student's screen
    s.wait_for_function("() => document.querySelector('#status').innerText.includes('#2')", timeout=60_000)
    s.wait_for_function("() => document.querySelector('.side-by-side .column') !== null", timeout=60_000)
    fonts = s.evaluate("""() => {
        const g = document.querySelector('#ppl-plot .js-plotly-plot');
        return {height: g.getBoundingClientRect().height, tick: parseFloat(getComputedStyle(
            g.querySelector('.xtick text')).fontSize), line: parseFloat(g.querySelector('.scatterlayer path.js-line')
            .style.strokeWidth)};
    }""")
    assert fonts["height"] >= 300 and fonts["tick"] >= 16 and fonts["line"] >= 3, fonts
    # on a 720-line projector both charts, whole, and the two runs' newest lyrics fit on the first screen
    s.wait_for_function("() => document.querySelectorAll('.side-by-side .sample').length >= 4", timeout=60_000)
    s.screenshot(path=str(ARTIFACTS / "class-watcher-present.png"))
    t.screenshot(path=str(ARTIFACTS / "class-teacher-present.png"))
    bottoms = s.evaluate("""() => [...document.querySelectorAll('.js-plotly-plot, .side-by-side .sample')]
        .map(e => e.getBoundingClientRect().bottom)""")
    assert s.evaluate("() => window.scrollY") == 0 and max(bottoms) <= 720, bottoms
    teacher.close()
    student.close()


def set_number_present(page, epochs):
    """The settings sit in a folded sidebar in present mode: open it, set the epochs, fold it again."""
    toggle = page.locator("#settings-sidebar .sidebar-toggle, button[aria-label*='ebar'], .toggle-button").first
    toggle.click()
    set_number(page, "迭代周期 · epochs", epochs)
    toggle.click()


def test_inside_the_model_while_an_lstm_trains(page_url, browser):
    """The three views of the model, read while it trains: next-character bars that write when clicked, the
    hidden units (and the LSTM's memory cell) over a passage, and the gradients through time."""
    page = open_page(browser, page_url)
    button(page, "⑤ 长短期记忆 LSTM，从零开始 · LSTM from scratch (6.8)").click()
    page.wait_for_function("""() => [...document.querySelectorAll('input[type=radio]')]
        .some(r => r.checked && r.value === 'scratch-lstm')""", timeout=10_000)
    set_number(page, "迭代周期 · epochs", 300)
    button(page, "▶ 训练 · Train").click()
    page.wait_for_function("() => document.querySelector('#status').innerText.includes('perplexity')",
                           timeout=60_000)
    page.get_by_text("🔬 模型内部 · Inside the model").click()
    # the next character: ten bars; a click on one writes its character after the prefix
    page.wait_for_function("() => document.querySelectorAll('#next-chars .next-bar').length === 10", timeout=30_000)
    prefix = page.get_by_label("前缀 · prefix (click a bar to write it)")
    before = prefix.input_value()
    first = page.locator("#next-chars .next-bar").first
    char = first.get_attribute("data-char")
    first.click()
    page.wait_for_function(f"() => [...document.querySelectorAll('input, textarea')].some(e => e.value === "
                           f"{before + char!r})", timeout=20_000)
    page.wait_for_function("() => document.querySelectorAll('#next-chars .next-bar').length === 10", timeout=20_000)
    page.screenshot(path=str(ARTIFACTS / "inside-next.png"), full_page=False)
    # hidden units: the heatmap and the passage coloured by the most active unit; the LSTM's cell too
    page.get_by_role("tab", name="隐藏单元 · Hidden units").click()
    page.get_by_label("记忆细胞 C · memory cell C (LSTM)").check()
    button(page, "看一看 · Show").click()
    page.wait_for_function("() => document.querySelectorAll('#unit-text .unit-text span').length > 50",
                           timeout=30_000)
    page.wait_for_function("""() => { const g = document.querySelector('#hidden-plot .js-plotly-plot');
        return g && g.data && g.data[0].type === 'heatmap' && g.data[0].z.length === 24; }""", timeout=20_000)
    assert "memory cell" in page.locator("#unit-text .unit-head").inner_text()
    page.locator("#hidden-plot").scroll_into_view_if_needed()
    page.screenshot(path=str(ARTIFACTS / "inside-hidden.png"), full_page=False)
    # gradients through time: a curve of 35 steps that follows the run
    page.get_by_role("tab", name="梯度随时间 · Gradients through time").click()
    page.wait_for_function("""() => { const g = document.querySelector('#gtt-plot .js-plotly-plot');
        return g && g.data && g.data.length === 1 && g.data[0].x.length === 35; }""", timeout=30_000)
    first_epoch = page.evaluate("() => document.querySelector('#gtt-plot .js-plotly-plot').data[0].name")
    page.wait_for_function(f"""() => document.querySelector('#gtt-plot .js-plotly-plot').data[0].name
        !== {first_epoch!r}""", timeout=60_000)  # a later epoch's curve replaced it, without a click
    page.locator("#gtt-plot").scroll_into_view_if_needed()
    page.screenshot(path=str(ARTIFACTS / "inside-gradients.png"), full_page=False)
    button(page, "■ 停止 · Stop").click()
    page.close()
