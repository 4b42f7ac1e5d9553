"""A page in one language (``?lang=en`` / ``?lang=zh``) shows every one of its own texts in that language, in a real
browser (Debian's Chromium, driven by Playwright): after a run trained, with every panel open, the page's text
holds no Chinese on an English page and no English words on a Chinese page, outside what the user typed, what
the model wrote, and names (RNN, GRU, Adam, a run's settings as the API names them)."""
from __future__ import annotations

import re

import pytest
from test_browser import ARTIFACTS, browser, page_url  # noqa: F401  (fixtures)

pytestmark = pytest.mark.browser

LAB_OPTIONS = dict(max_runs=2)  # the module's server (conftest.py's ``server`` fixture)
RUN = "corpus=offline&max_chars=3000&num_hiddens=32&batch_size=8&num_steps=10&epochs=20&pred_period=10&prefixes=the"
HAN = re.compile(r"[\u3400-\u9fff\u3000-\u303f\uff00-\uffef]")  # Han characters and CJK punctuation
WORD = re.compile(r"[A-Za-z]{3,}")
# Names a Chinese page keeps as they are: the models and optimizers, the API's names of a run's settings (its
# label in the legend and the status line: "#1 scratch · random · lr 100 · θ 0.01"), units, and the file names
# a page shows (offline, jaychou), UTF-8, MiB, PyTorch.
NAMES = {"RNN", "GRU", "LSTM", "SGD", "Adam", "top", "scratch", "concise", "random", "consecutive", "cpu", "CPU",
         "offline", "jaychou", "timemachine", "chars", "txt", "zip", "UTF", "MiB", "PyTorch", "plotly", "logomark",
         "CSV", "JSON", "HTML", "lr"}  # the export formats; the learning rate beside its slider
# Gradio's own words that its translations (it follows the browser's language) leave in English.
GRADIO = {"Stop Recording", "Runs", "View runs saved in this browser"}
# Every text node and the placeholder/title of every element, except what the user typed or the model wrote
# (lyrics, the printout, text boxes' values, the bars' characters, a prefix quoted in a note as «...»), scripts,
# plotly's toolbar, a saved checkpoint's file name, and Gradio's footer (Gradio's own words, in the language
# Gradio picks).
TEXTS = """() => {
  const skip = (el) => el.closest('script, style, .sample, #history, textarea, input, .next-bar .ch, .unit-text,'
                                  + ' .modebar, #written, #link, #saved-file .filename, footer');
  const out = new Set();
  const w = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  let n;
  while ((n = w.nextNode())) {
    const t = n.textContent.trim();
    if (t && !skip(n.parentElement)) out.add(t.replace(/«[^»]*»/g, '«»'));
  }
  document.querySelectorAll('[placeholder], [title]').forEach(e => {
    if (skip(e)) return;
    for (const a of ['placeholder', 'title']) if (e.getAttribute(a)) out.add(e.getAttribute(a));
  });
  return [...out];
}"""


def _trained_page(browser, url: str, lang: str):  # noqa: F811
    context = browser.new_context(viewport={"width": 1440, "height": 900}, locale="zh-CN" if lang == "zh" else "en-US")
    page = context.new_page()
    page.goto(f"{url}?lang={lang}&{RUN}")
    train = page.get_by_role("button", name="▶ Train" if lang == "en" else "▶ 训练", exact=True)
    train.wait_for(timeout=30_000)
    train.click()
    page.wait_for_function("() => document.querySelector('#status').innerText.includes('✓')", timeout=120_000)
    # every panel open, one at a time (a closed one's place in the list changes as each opens)
    for _ in range(20):
        closed = [a for a in page.locator("button.label-wrap:not(.open)").all() if a.is_visible()]
        if not closed:
            break
        closed[0].click()
    box = page.locator("#next-prefix textarea, #next-prefix input").first
    box.fill("the")  # the default prefix, 分开, is not in this English text (the note says so, in the page's language)
    page.wait_for_function("() => document.querySelectorAll('#next-chars .next-bar').length > 0", timeout=30_000)
    # Write with the trained model: its note says which run wrote (in the page's language)
    page.locator("#write-prefix textarea, #write-prefix input").first.fill("the")
    page.get_by_role("button", name="Write" if lang == "en" else "写", exact=True).click()
    said = "written by run" if lang == "en" else "次训练"
    page.wait_for_function(f"() => (document.querySelector('#write-note')?.innerText || '').includes('{said}')",
                           timeout=30_000)
    # Save the model: its note says what was saved
    page.get_by_role("button", name="Save the current model" if lang == "en" else "保存当前模型", exact=True).click()
    said = "saved epoch" if lang == "en" else "已保存"
    page.wait_for_function(f"() => (document.querySelector('#save-note')?.innerText || '').includes('{said}')",
                           timeout=30_000)
    return context, page


def test_an_english_page_has_no_chinese_of_its_own(page_url, browser):  # noqa: F811
    context, page = _trained_page(browser, page_url, "en")
    chinese = [t for t in page.evaluate(TEXTS) if HAN.search(t)]
    page.screenshot(path=str(ARTIFACTS / "lang-en.png"), full_page=True)
    context.close()
    assert chinese == [], chinese


def test_a_chinese_page_has_no_english_of_its_own(page_url, browser):  # noqa: F811
    context, page = _trained_page(browser, page_url, "zh")
    english = [t for t in page.evaluate(TEXTS) if t not in GRADIO and set(WORD.findall(t)) - NAMES]
    page.screenshot(path=str(ARTIFACTS / "lang-zh.png"), full_page=True)
    context.close()
    assert english == [], english
