"""The page fits the screens of a class (issue 25, parts 4 and 5), in a real browser: on a projector (1280x720 and
1920x1080, ``?mode=present``) a run's charts, whole with their axes, and its newest lyrics are on the first screen,
with Train and Stop beside the status line; on a phone (390x844) the page opens with the settings folded and a
press of Train shows the run; a watcher's empty chart waits for the teacher instead of asking to press Train."""
from __future__ import annotations

import pytest
from test_browser import ARTIFACTS, browser, button, page_url  # noqa: F401  (fixtures)

pytestmark = pytest.mark.browser

LAB_OPTIONS = dict(max_runs=2)  # the module's server (conftest.py's ``server`` fixture)
TRAIN, STOP = "▶ 训练 · Train", "■ 停止 · Stop"
# a run that samples every epoch, long enough to be stopped
RUN = "epochs=3000&pred_period=1"
LONG = 60_000  # ms: a first epoch and its samples on a 2-core machine that others share
IN_VIEW = """(sel) => [...document.querySelectorAll(sel)].map(e => { const r = e.getBoundingClientRect();
    return {top: r.top, bottom: r.bottom, height: r.height}; })"""


def bar(page, name):
    """Train or Stop beside the status line (the sidebar's are folded away)."""
    return page.locator("#run-bar").get_by_role("button", name=name, exact=True)


def boxes(page, sel: str) -> list[dict]:
    return page.evaluate(IN_VIEW, sel)


# From before the page's own scripts: every frame of its first 8 s in which the settings' sidebar is visible and on
# the screen (a phone's and a projector's page open folded: they must not show it open while the page loads).
SIDEBAR_FRAMES = """window.__sidebar = []; (() => { const t0 = performance.now(); const tick = () => {
  const s = document.querySelector('#settings-sidebar');
  if (s && getComputedStyle(s).visibility === 'visible' && s.getBoundingClientRect().right > 30)
    window.__sidebar.push(Math.round(performance.now() - t0));
  if (performance.now() - t0 < 8000) requestAnimationFrame(tick); }; requestAnimationFrame(tick); })();"""


def open_at(browser, url: str, width: int, height: int):  # noqa: F811 (browser is test_browser's fixture)
    page = browser.new_page(viewport={"width": width, "height": height})
    page.add_init_script(SIDEBAR_FRAMES)
    page.goto(url)
    page.locator("#ppl-plot .js-plotly-plot").wait_for(timeout=30_000)
    bar(page, TRAIN).wait_for(timeout=30_000)  # shown once the page has read its size and folded its sidebar
    return page


def folded(page) -> bool:
    """The sidebar is folded, its buttons out of sight (and out of the keyboard's way) once it has slid away."""
    page.wait_for_function("() => ![...document.querySelectorAll('#settings-sidebar .sidebar-content button')]"
                           ".some(b => b.checkVisibility({visibilityProperty: true}))", timeout=5_000)
    return page.locator("#settings-sidebar.open").count() == 0


def wait_for_lyrics(page) -> None:
    page.wait_for_function("() => document.querySelector('#status').innerText.includes('perplexity')", timeout=LONG)
    page.wait_for_function("() => document.querySelector('.sample .prefix') !== null", timeout=LONG)
    page.wait_for_timeout(700)  # the update with the samples has been drawn (plotly mounts after the text)


def stop_from_the_bar(page) -> None:
    bar(page, STOP).click()
    page.wait_for_function("() => document.querySelector('#status').innerText.includes('stopped')", timeout=10_000)
    page.wait_for_function("() => document.querySelector('#bar-note').innerText.includes('Stopped run')",
                           timeout=10_000)
    assert page.locator("#bar-note").is_visible()


@pytest.mark.parametrize("width, height", [(1280, 720), (1920, 1080)])
def test_a_projector_shows_both_charts_and_the_newest_lyrics_on_its_first_screen(page_url, browser, width, height):  # noqa: F811
    page = open_at(browser, f"{page_url}?mode=present&{RUN}", width, height)
    assert folded(page)
    assert page.evaluate("window.__sidebar") == [], "the open sidebar showed on the projector while it loaded"
    assert button(page, TRAIN).count() == 1 and button(page, STOP).count() == 1  # the bar's, beside the status
    bar(page, TRAIN).click()
    wait_for_lyrics(page)
    assert page.evaluate("() => window.scrollY") == 0
    plots = boxes(page, ".js-plotly-plot")
    assert len(plots) == 2 and all(0 <= p["top"] and p["bottom"] <= height for p in plots), plots
    assert all(p["height"] >= (300 if height < 900 else 500) for p in plots), plots  # big enough for the room
    # the x-axes and their titles are inside the charts' boxes, so inside the screen
    # (read in one look at both: a chart is drawn afresh now and then while it trains, e.g. at its 11th epoch,
    # where its axis stops ticking every epoch (demo.charts.WHOLE_EPOCHS), and has no title for that moment)
    page.wait_for_function("""(h) => ['#ppl-plot', '#grad-plot'].every(sel => {
        const t = document.querySelector(sel + ' .xtitle'); const r = t && t.getBoundingClientRect();
        return r && r.height > 0 && r.bottom <= h; })""", arg=height, timeout=10_000)
    samples = boxes(page, ".sample")
    assert samples and all(s["bottom"] <= height for s in samples), (samples, height)
    # plotly's toolbar (on hover) keeps off the chart's title
    page.locator("#ppl-plot .js-plotly-plot").hover()
    page.wait_for_timeout(300)
    tools = page.locator("#ppl-plot .modebar").bounding_box()
    title = page.locator("#ppl-plot .gtitle").bounding_box()
    assert tools and title and tools["y"] >= title["y"] + title["height"], (tools, title)
    page.mouse.move(0, 0)
    page.screenshot(path=str(ARTIFACTS / f"present-{width}.png"))
    stop_from_the_bar(page)
    page.close()


def test_a_phone_opens_with_the_settings_folded_and_train_shows_the_run(page_url, browser):  # noqa: F811
    page = open_at(browser, f"{page_url}?{RUN}", 390, 844)
    assert folded(page)
    assert page.evaluate("window.__sidebar") == [], "the open sidebar covered the phone's page while it loaded"
    for name in (TRAIN, STOP):  # at hand: on the first screen, with nothing to open first
        box = bar(page, name).bounding_box()
        assert box and box["y"] + box["height"] <= 844, (name, box)
    bar(page, TRAIN).click()
    page.wait_for_function("() => document.querySelector('#status').innerText.includes('perplexity')", timeout=LONG)
    status = page.locator("#status").inner_text()
    assert "▶ #" in status and "scratch · random" in status
    (ppl,) = boxes(page, "#ppl-plot .js-plotly-plot")
    (line,) = boxes(page, "#status")
    assert ppl["top"] < 844 and ppl["bottom"] > 0, ppl  # in view, without another click
    assert 0 <= line["top"] and line["bottom"] <= 844, line
    assert page.locator("#ppl-plot .modebar-container").evaluate("e => getComputedStyle(e).display") == "none"
    page.screenshot(path=str(ARTIFACTS / "phone.png"))
    stop_from_the_bar(page)
    # the sidebar's own Train folds it (it covers the page) once a run starts, and shows the run too
    page.locator("#settings-sidebar .toggle-button").click()
    page.wait_for_selector("#settings-sidebar.open")
    page.evaluate("() => window.scrollTo(0, 0)")
    button(page, TRAIN).click()
    page.wait_for_selector("#settings-sidebar:not(.open)", state="attached", timeout=10_000)
    page.wait_for_function("() => /▶ #\\d+ .*perplexity/.test(document.querySelector('#status').innerText)",
                           timeout=LONG)
    (ppl,) = boxes(page, "#ppl-plot .js-plotly-plot")
    assert ppl["top"] < 844 and ppl["bottom"] > 0, ppl
    stop_from_the_bar(page)
    page.close()


def test_a_watchers_empty_chart_waits_for_the_teacher(page_url, browser):  # noqa: F811
    teacher = browser.new_context(viewport={"width": 1440, "height": 900})
    t = teacher.new_page()
    t.goto(page_url)
    t.locator("#ppl-plot .js-plotly-plot").wait_for(timeout=30_000)
    t.get_by_text("全班一起看 · Share with the class").click()
    button(t, "📣 分享给全班 · Share with the class").click()
    t.wait_for_function("() => document.querySelector('#class-panel .class-code') !== null", timeout=20_000)
    link = t.locator("#class-panel a").get_attribute("href")
    annotations = "() => document.querySelector('#ppl-plot .js-plotly-plot')?.layout?.annotations.map(a => a.text)"
    assert t.evaluate(annotations) == ["点击“训练” · press Train"]  # the teacher can
    student = browser.new_context(viewport={"width": 1280, "height": 720})
    s = student.new_page()
    s.goto(link + "&mode=present")
    s.wait_for_function("() => { const b = document.querySelector('#banner');"
                        " return b && b.innerText.includes('Watching class'); }", timeout=30_000)
    s.wait_for_function(f"() => ({annotations})()?.some(t => t.includes('waiting for the teacher'))", timeout=10_000)
    assert not any("press Train" in text for text in s.evaluate(annotations))
    # nor does the status line above it
    s.wait_for_function("() => document.querySelector('#status').innerText.includes('Waiting for the teacher')",
                        timeout=10_000)
    assert "press" not in s.locator("#status").inner_text()
    assert not bar(s, TRAIN).is_visible() and not bar(s, STOP).is_visible()  # watchers train nothing
    s.screenshot(path=str(ARTIFACTS / "watcher-waiting.png"))
    teacher.close()
    student.close()
