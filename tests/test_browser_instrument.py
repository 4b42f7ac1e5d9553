"""Playing a run in the browser: Pause, Step, a learning rate turned mid-run and marked on the chart, Resume,
Continue, a bad θ refused beside the controls with the run untouched, an export; Pause at a phone's size."""
from __future__ import annotations

import pytest

from test_browser import ARTIFACTS, CHROMIUM, CHROMIUM_ARGS, browser, button, page_url  # noqa: F401

pytestmark = pytest.mark.browser

LAB_OPTIONS = dict(max_runs=2)  # the module's server (conftest.py's ``server`` fixture)
# a run of a few seconds (an epoch: a few ms), held out a fifth of its text
RUN = "corpus=offline&max_chars=3000&num_hiddens=32&batch_size=8&num_steps=10&prefixes=the&epochs=400&validation=0.2"
STATUS = "() => document.querySelector('#status').innerText"
PPL_LAYOUT = "() => document.querySelector('#ppl-plot .js-plotly-plot')?.layout"


def open_at(browser, url: str, width: int, height: int):  # noqa: F811
    page = browser.new_page(viewport={"width": width, "height": height})
    page.goto(url)
    page.locator("#ppl-plot .js-plotly-plot").wait_for(timeout=30_000)
    page.locator("#pause").wait_for(state="visible", timeout=30_000)
    return page


def epoch_of(page) -> int:
    text = page.evaluate(STATUS)
    return int(text.split("epoch ")[1].split("/")[0]) if "epoch " in text else 0


def test_pause_step_turn_the_learning_rate_resume_continue_and_export(page_url, browser):  # noqa: F811
    page = open_at(browser, f"{page_url}?{RUN}", 1440, 900)
    page.wait_for_timeout(500)
    button(page, "▶ 训练 · Train").first.click()
    page.wait_for_function(f"() => ({STATUS})().includes('epoch') && !({STATUS})().includes('epoch 0/')",
                           timeout=60_000)
    # Step before a pause: said beside the buttons
    page.locator("#step").click()
    page.wait_for_function("() => document.querySelector('#bar-note').innerText.includes('Pause it first')",
                           timeout=10_000)
    page.locator("#pause").click()
    page.wait_for_function(f"() => ({STATUS})().includes('paused')", timeout=10_000)
    assert "Run #1 paused" in page.locator("#bar-note").inner_text()
    at = epoch_of(page)
    page.wait_for_timeout(1000)
    assert epoch_of(page) == at, "a paused run trained on"
    page.locator("#step").click()  # to the end of the epoch the pause came in
    page.wait_for_function(f"() => ({STATUS})().includes('epoch {at + 1}/') && ({STATUS})().includes('paused')",
                           timeout=30_000)
    # the learning rate, turned while paused: 10^1 = 10, from the next minibatch
    slider = page.locator("#live-lr input[type=range]")
    slider.fill("1")
    slider.dispatch_event("pointerup")
    page.wait_for_function("() => document.querySelector('#live-note').innerText.includes('lr 100 → 10')",
                           timeout=10_000)
    assert page.locator("#lr-value").inner_text().strip() == "lr = 10"
    assert page.get_by_label("学习率 · learning rate").input_value() == "10"  # the sidebar shows it too
    # a bad θ: refused beside the controls, in the form's words; nothing changes
    theta = page.locator("#live-theta input")
    theta.fill("-1")
    theta.press("Enter")
    page.wait_for_function("() => document.querySelector('#live-note').innerText.includes('theta=-1')",
                           timeout=10_000)
    theta.fill("0.01")
    page.locator("#resume").click()
    page.wait_for_function(f"() => !({STATUS})().includes('paused')", timeout=10_000)
    # the change is marked on the chart where it happened: a dotted line at epoch at + 1, labelled
    page.wait_for_function(f"() => ({PPL_LAYOUT})()?.annotations?.some(a => a.text === 'lr 100 → 10')",
                           timeout=30_000)
    layout = page.evaluate(PPL_LAYOUT)
    mark = next(s for s in layout["shapes"] if s.get("line", {}).get("dash") == "dot" and s["xref"] == "x")
    assert mark["x0"] == at + 1
    page.screenshot(path=str(ARTIFACTS / "instrument-mark.png"))
    page.wait_for_function(f"() => ({STATUS})().includes('✓')", timeout=120_000)
    # held out: a dashed trace of the run, its value in the status line
    data = page.evaluate("() => document.querySelector('#ppl-plot .js-plotly-plot').data.map(t => t.uid)")
    assert "held1" in data and "held-out perplexity" in page.evaluate(STATUS)
    page.locator("#live-more input").fill("20")
    page.locator("#continue").click()
    page.wait_for_function(f"() => ({STATUS})().includes('epoch 420/420') && ({STATUS})().includes('✓')",
                           timeout=120_000)
    assert "#1 " in page.evaluate(STATUS)  # the same run went on
    page.locator("#exports .label-wrap").click()
    page.locator("#export").click()
    page.locator("#export-file a").first.wait_for(timeout=20_000)
    assert page.locator("#export-file a").first.get_attribute("href").endswith("charrnn-run1.csv")
    page.screenshot(path=str(ARTIFACTS / "instrument.png"), full_page=True)
    page.close()


def test_a_phone_pauses_and_resumes_from_the_bar(page_url, browser):  # noqa: F811
    page = open_at(browser, f"{page_url}?{RUN}", 390, 844)
    assert not page.locator("#live-lr").is_visible()  # the controls beside the charts start folded on a phone
    button(page, "▶ 训练 · Train").last.click()
    page.wait_for_function(f"() => ({STATUS})().includes('epoch') && !({STATUS})().includes('epoch 0/')",
                           timeout=60_000)
    page.locator("#pause").click()
    page.wait_for_function(f"() => ({STATUS})().includes('paused')", timeout=10_000)
    assert page.locator("#pause").is_visible() and page.locator("#ppl-plot").is_visible()
    page.screenshot(path=str(ARTIFACTS / "instrument-phone.png"))
    page.locator("#resume").click()
    page.wait_for_function(f"() => !({STATUS})().includes('paused')", timeout=10_000)
    button(page, "■ 停止 · Stop").last.click()
    page.close()


def test_the_overfitting_lesson_draws_its_held_out_text(page_url, browser):  # noqa: F811
    from conftest import data_dir

    if data_dir() is None:
        pytest.skip("the lesson trains on the Jay Chou lyrics: set CHARRNN_DATA_DIR to a folder that has them")
    page = open_at(browser, f"{page_url}?epochs=30", 1440, 900)  # 30 epochs of the lesson's 200: its first part
    page.get_by_role("button", name="过拟合 · overfitting", exact=True).click()
    page.wait_for_function(f"() => ({STATUS})().includes('✓') && ({STATUS})().includes('30/30')", timeout=180_000)
    status = page.evaluate(STATUS)
    assert "overfitting" in status and "held-out perplexity" in status
    uids = page.evaluate("() => document.querySelector('#ppl-plot .js-plotly-plot').data.map(t => t.uid)")
    number = status.split("**#")[-1] if "**#" in status else status.split("#")[1].split(" ")[0]
    assert f"held{number}" in uids and f"run{number}" in uids
    assert "dashed: held out" in page.evaluate(PPL_LAYOUT)["title"]["text"]
    page.screenshot(path=str(ARTIFACTS / "lesson-overfitting.png"))
    page.close()
