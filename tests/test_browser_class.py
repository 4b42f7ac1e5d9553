"""A class experiment in a real browser: a teacher, two students (a laptop and a phone) and a projector in four
browser contexts; what a student may not do, at a laptop's, a projector's and a phone's size."""
from __future__ import annotations

import csv
import io
import time

import pytest

from conftest import serve_app
from test_browser import ARTIFACTS, _need_browser, browser  # noqa: F401 (browser: test_browser's fixture, a parameter below: F811)

pytestmark = pytest.mark.browser

# the teacher's form: a small model on the offline corpus (an epoch takes a few ms), lr 1, θ 1
SMALL = "corpus=offline&max_chars=3000&num_hiddens=32&batch_size=8&num_steps=10&prefixes=the&lr=1&theta=1"
EPOCHS = 30
LAPTOP, PROJECTOR, PHONE = {"width": 1440, "height": 900}, {"width": 1280, "height": 720}, {"width": 390, "height": 844}
TRACES_JS = """() => {  // the class chart's student runs: uid, colour, width, points
  const g = document.querySelector('#class-plot .js-plotly-plot');
  if (!g || !g.data) return [];
  return g.data.filter(t => /^s\\d+r\\d+$/.test(t.uid || '')).map(t => ({uid: t.uid, color: t.line && t.line.color,
    width: t.line && t.line.width, n: (t.x || []).length, last: (t.x || []).slice(-1)[0], name: t.name}));
}"""


@pytest.fixture(scope="module")
def served():
    _need_browser()
    with serve_app(max_runs=8) as s:
        yield s


def new_page(browser, url: str, viewport: dict, phone: bool = False):  # noqa: F811
    page = browser.new_context(viewport=viewport, is_mobile=phone, has_touch=phone).new_page()
    page.goto(url)
    page.wait_for_selector("#status", timeout=30_000)
    return page


def open_experiment(browser, url: str, epochs: int = EPOCHS) -> tuple[object, str]:  # noqa: F811
    """The teacher's page, with an experiment on the learning rate open; (page, class code)."""
    teacher = new_page(browser, url + "?" + SMALL, LAPTOP)
    time.sleep(1)  # the page's load event fills the form
    teacher.get_by_text("全班一起看 · Share with the class").first.click()
    teacher.wait_for_selector("#exp-open", timeout=10_000)
    teacher.locator("#exp-question textarea, #exp-question input").first.fill(
        "Which learning rate trains best in 30 epochs?")
    teacher.locator("#exp-epochs input").first.fill(str(epochs))
    teacher.locator("#exp-open").click()
    teacher.wait_for_selector(".class-code", timeout=20_000)
    teacher.wait_for_selector("#class-board", state="visible", timeout=10_000)
    return teacher, teacher.locator(".class-code").inner_text().strip()


def join(browser, url: str, code: str, nickname: str, viewport: dict = LAPTOP, phone: bool = False):  # noqa: F811
    page = new_page(browser, f"{url}?class={code}", viewport, phone)
    page.wait_for_selector("#nickname", state="visible", timeout=20_000)
    page.locator("#nickname input, #nickname textarea").first.fill(nickname)
    page.locator("#join").click()
    page.wait_for_selector("#join-row", state="hidden", timeout=10_000)
    return page


def train_button(page):
    """The Train button in sight: the sidebar's, or the one beside the status line when the sidebar is folded."""
    side = page.locator("#settings-sidebar button:has-text('Train')").first
    return side if side.is_visible() else page.locator("#run-bar button:has-text('Train')").first


def set_lr(page, value: str) -> None:
    box = page.locator("#settings-sidebar").get_by_label("学习率 · learning rate").first
    if not box.is_visible():  # a phone: open the folded settings first
        page.locator("#settings-sidebar .toggle-button, button[aria-label*='sidebar']").first.click()
        box.wait_for(state="visible", timeout=5_000)
    box.fill(value)
    box.press("Tab")


def in_view(page, selector: str) -> bool:
    box = page.locator(selector).first.bounding_box()
    size = page.viewport_size
    return box is not None and box["y"] >= 0 and box["y"] + box["height"] <= size["height"] + 1 and \
        box["x"] >= 0 and box["x"] + box["width"] <= size["width"] + 1


def traces(page) -> list[dict]:
    return page.evaluate(TRACES_JS)


def test_a_class_experiment_in_four_browsers(served, browser):  # noqa: F811
    url = served.url
    teacher, code = open_experiment(browser, url)
    projector = new_page(browser, f"{url}?class={code}&mode=present", PROJECTOR)
    ann = join(browser, url, code, "ann")
    bo = join(browser, url, code, "bo", PHONE, phone=True)
    assert "ann" in ann.locator("#banner").inner_text() and "0.1–1000" in ann.locator("#banner").inner_text()
    # before Train a student's page is its own: not the watcher's "waiting for the teacher", nor "or a lesson"
    ann.wait_for_function("() => (document.querySelector('#status')?.innerText || '')"
                          ".includes('set what the teacher left free')", timeout=10_000)
    # the teacher's settings are the student's, read-only: the hidden units cannot be changed
    assert ann.locator("#settings-sidebar").get_by_label("学习率 · learning rate").first.is_editable()
    for page, lr in ((ann, "0.5"), (bo, "8")):
        set_lr(page, lr)
        train_button(page).click()
    # the projector's class chart: both students' curves, each in its own colour, all 30 epochs
    projector.wait_for_function(f"""() => {{ const t = ({TRACES_JS})(); return t.length === 2 &&
        t.every(x => x.n === {EPOCHS}); }}""", timeout=120_000)
    shown = {t["name"]: t for t in traces(projector)}
    assert len({t["color"] for t in shown.values()}) == 2
    table = projector.locator("#class-table").inner_text()
    assert "ann" in table and "bo" in table and table.count(f"{EPOCHS}/{EPOCHS}") == 2
    for part in ("#class-board", "#class-plot", "#class-results", "#class-table"):
        assert in_view(projector, part), part  # the board fits the projector's first screen
    projector.screenshot(path=str(ARTIFACTS / "experiment-projector-1280.png"))
    # the phone's table is wider than its box: it scrolls inside it, the page does not grow sideways
    scroll = bo.evaluate("""() => { const e = document.querySelector('#class-table .class-table-scroll');
        return [e.scrollWidth, e.clientWidth, getComputedStyle(e).overflowX,
                document.documentElement.scrollWidth]; }""")
    assert scroll[0] > scroll[1] and scroll[2] == "auto" and scroll[3] <= PHONE["width"], scroll
    # a student's page is the student's own: no watcher's "waiting for the teacher", no lessons or presets to press
    assert "Waiting for the teacher" not in ann.locator("#status").inner_text()
    assert not ann.locator("#presets").is_visible() and not ann.locator("#lessons").is_visible()
    ann.screenshot(path=str(ARTIFACTS / "experiment-student.png"), full_page=True)
    bo.screenshot(path=str(ARTIFACTS / "experiment-phone.png"), full_page=True)
    # the teacher highlights bo: thicker on every screen
    teacher.locator("#class-pick input").first.click()
    teacher.get_by_role("option", name="bo").click()
    teacher.get_by_role("button", name="✨ 突出显示 · Highlight").click()
    projector.wait_for_function(f"""() => {{ const t = ({TRACES_JS})(); const bo = t.find(x => x.name.includes('bo')),
        ann = t.find(x => x.name.includes('ann')); return bo && ann && bo.width > ann.width; }}""", timeout=10_000)
    teacher.screenshot(path=str(ARTIFACTS / "experiment-teacher.png"), full_page=True)
    # the export: every epoch of every run
    teacher.get_by_role("button", name="⬇ 导出结果 · Export the results").click()
    link = teacher.locator("#class-file a").first
    link.wait_for(timeout=20_000)
    with teacher.expect_download() as download:
        link.click()
    rows = list(csv.DictReader(io.StringIO(open(download.value.path(), encoding="utf-8").read())))
    assert {r["nickname"] for r in rows} == {"ann", "bo"} and sum(r["nickname"] == "bo" for r in rows) == EPOCHS
    # the teacher removes ann: gone from the projector's table; her Train says why it starts nothing
    teacher.locator("#class-pick input").first.click()
    teacher.get_by_role("option", name="ann").click()
    teacher.get_by_role("button", name="✕ 移出 · Remove").click()
    projector.wait_for_function("() => !(document.querySelector('#class-table')?.innerText || '').includes('ann')",
                                timeout=10_000)
    train_button(ann).click()
    ann.wait_for_function("() => (document.querySelector('#status')?.innerText || '').includes('removed you')",
                          timeout=15_000)


@pytest.mark.parametrize("size", ["laptop", "projector", "phone"])
def test_what_a_student_may_not_do_is_said_where_they_look(served, browser, size):  # noqa: F811
    url, viewport = served.url, {"laptop": LAPTOP, "projector": PROJECTOR, "phone": PHONE}[size]
    _, code = open_experiment(browser, url)
    join(browser, url, code, "Taken")
    page = new_page(browser, f"{url}?class={code}", viewport, phone=size == "phone")
    page.wait_for_selector("#nickname", state="visible", timeout=20_000)
    note = page.locator("#join-note")
    for nickname, said in (("", "请输入昵称加入"), ("taken", "已经有人用了"), ("x" * 21, "最多 20 个字符")):
        page.locator("#nickname input, #nickname textarea").first.fill(nickname)
        page.locator("#join").click()
        page.wait_for_function(f"() => (document.querySelector('#join-note')?.innerText || '').includes({said!r})",
                               timeout=10_000)
        note.scroll_into_view_if_needed()
        assert note.is_visible() and in_view(page, "#join-note"), nickname
    page.locator("#nickname input, #nickname textarea").first.fill("<b>x</b>")
    page.locator("#join").click()
    page.wait_for_selector("#join-row", state="hidden", timeout=10_000)
    set_lr(page, "5000")
    button = train_button(page)
    button.click()
    beside = "#train-note" if page.locator("#settings-sidebar button:has-text('Train')").first.is_visible() \
        else "#bar-note"
    page.wait_for_function(f"() => (document.querySelector('{beside}')?.innerText || '').includes('0.1 到 1000')",
                           timeout=10_000)
    assert "Not started" in page.locator("#status").inner_text()
    assert "Waiting for the teacher" not in page.locator("#status").inner_text()
    page.screenshot(path=str(ARTIFACTS / f"experiment-refused-{size}.png"))
    # a nickname with markup is shown as text: literally, with no element made of it
    set_lr(page, "2")
    train_button(page).click()
    page.wait_for_function("() => (document.querySelector('#class-table')?.innerText || '').includes('<b>x</b>')",
                           timeout=60_000)
    assert page.locator("#class-table b").count() == 0


def test_the_projector_fits_at_1920_and_an_ended_class_says_so(served, browser):  # noqa: F811
    url = served.url
    teacher, code = open_experiment(browser, url, epochs=5000)
    projector = new_page(browser, f"{url}?class={code}&mode=present", {"width": 1920, "height": 1080})
    student = join(browser, url, code, "cy")
    set_lr(student, "3")
    train_button(student).click()
    projector.wait_for_function(f"() => ({TRACES_JS})().length === 1 && ({TRACES_JS})()[0].n >= 3",
                                timeout=60_000)
    for part in ("#class-board", "#class-plot", "#class-results", "#class-table"):
        assert in_view(projector, part), part
    projector.screenshot(path=str(ARTIFACTS / "experiment-projector-1920.png"))
    teacher.get_by_role("button", name="■ 结束实验 · End the experiment").click()
    teacher.wait_for_function("() => document.querySelector('#class-end')?.disabled === true", timeout=10_000)
    student.wait_for_function("() => (document.querySelector('#class-table')?.innerText || '').includes('stopped')",
                              timeout=15_000)  # its run stopped where it was
    train_button(student).click()
    student.wait_for_function("() => (document.querySelector('#status')?.innerText || '').includes('has ended')",
                              timeout=15_000)
    assert "cy" in teacher.locator("#class-table").inner_text()  # the teacher's page keeps the results
    unknown = new_page(browser, f"{url}?class=ZZZZ-ZZZZ", LAPTOP)
    unknown.wait_for_function("() => (document.querySelector('#banner')?.innerText || '').includes('ZZZZ-ZZZZ')",
                              timeout=10_000)
    assert "unknown or has ended" in unknown.locator("#banner").inner_text()
    assert not unknown.locator("#class-board").is_visible()
