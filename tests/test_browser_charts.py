"""The charts in a real browser (Debian's Chromium, driven by Playwright) when a run diverges: the clipping lesson's
unclipped run leaves the chart with a ✕ where it leaves, the axis stays near the vocabulary size, the run the
lesson is about is a curve (not a flat line), the legend keeps off the axis titles at a laptop's, a projector's
and a phone's size; a lesson starts on a clean chart and the compare list shows the runs before it again; a
lesson pressed while a run trains says so beside the lesson buttons, and the note's button starts that lesson."""
from __future__ import annotations

import dataclasses
import math
import re

import pytest
from test_browser import ARTIFACTS, browser, button, page_url  # noqa: F401  (fixtures)

from demo.charts import WHOLE_EPOCHS

pytestmark = pytest.mark.browser

LAB_OPTIONS = dict(max_runs=2)  # the module's server (conftest.py's ``server`` fixture)
V = 1027                        # the Jay Chou vocabulary
SIZES = [(1440, 900), (1280, 720), (390, 844)]
TINY = "corpus=offline&max_chars=3000&num_hiddens=32&batch_size=8&num_steps=10&prefixes=the"  # a plain run's
LONG = 240_000  # ms: the lesson's runs are the chapter's model on its corpus, on a 2-core machine others share
TICK = re.compile(r"^(\d+(\.\d+)?|(\d×)?10[⁻⁰¹²³⁴⁵⁶⁷⁸⁹]+)$")  # 0.2, 1000, 10⁴, 2×10⁻⁵
CHART = """(sel) => {
    const g = document.querySelector(sel + ' .js-plotly-plot');
    if (!g || !g._fullLayout || !g.data) return null;
    const rect = e => { if (!e) return null; const r = e.getBoundingClientRect();
                        return {x: r.x, y: r.y, w: r.width, h: r.height}; };
    const traces = [...g.querySelectorAll('.scatterlayer .trace')];
    return {range: g._fullLayout.yaxis.range, ticks: [...g.querySelectorAll('.ytick text')].map(t => t.textContent),
            plot: rect(g.querySelector('.draglayer .nsewdrag')), legend: rect(g.querySelector('.legend')),
            xtitle: rect(g.querySelector('.xtitle')), ytitle: rect(g.querySelector('.ytitle')),
            data: g.data.map((t, i) => ({uid: t.uid, text: t.text || null, x: t.x, y: t.y,
                                         visible: g._fullData[i] ? g._fullData[i].visible : null,
                                         box: rect(traces[i])}))};
}"""


def chart(page, sel: str = "#ppl-plot") -> dict:
    """The chart as the page drew it (once it has: every update mounts a new one)."""
    page.wait_for_function("(sel) => document.querySelectorAll(sel + ' .js-plotly-plot .ytick text').length > 1",
                           arg=sel, timeout=10_000)
    return page.evaluate(CHART, sel)


def overlap(a: dict, b: dict) -> bool:
    return (a["x"] < b["x"] + b["w"] and b["x"] < a["x"] + a["w"]
            and a["y"] < b["y"] + b["h"] and b["y"] < a["y"] + a["h"])


def status(page) -> str:
    return page.locator("#status").inner_text()


def check_chart(c: dict, staying: list[str], ceiling: float) -> dict:
    """The axis spans the runs that stay on it, at most ``ceiling`` (decades); each of them is a curve inside the
    plot; ticks are values; the legend covers neither axis title. The ✕ of the run that left, at the top edge."""
    low, high = c["range"]
    assert high <= ceiling + 1e-6, f"the axis reaches 10^{high:.1f}"
    assert c["ticks"] and all(TICK.match(t) for t in c["ticks"]), c["ticks"]
    plot = c["plot"]
    for uid in staying:
        t = next(t for t in c["data"] if t["uid"] == uid)
        box = t["box"]
        assert box["y"] >= plot["y"] - 3 and box["y"] + box["h"] <= plot["y"] + plot["h"] + 3, (uid, box, plot)
        assert box["h"] >= 0.15 * plot["h"], f"{uid} is a flat line: {box['h']:.0f} of {plot['h']:.0f} px"
    if c["legend"]:
        assert not overlap(c["legend"], c["xtitle"]) and not overlap(c["legend"], c["ytitle"]), c
    marks = [t for t in c["data"] if (t["uid"] or "").startswith("exit")]
    assert len(marks) == 1, [t["uid"] for t in c["data"]]
    return marks[0]


def test_the_clipping_lesson_diverges_on_a_chart_that_stays_readable(page_url, browser):  # noqa: F811
    page = browser.new_page(viewport={"width": 1440, "height": 900})
    # 12 epochs a run: the unclipped run leaves the chart in its 4th (1e277 by the 10th, infinite in the 12th)
    page.goto(page_url + f"?{TINY}&epochs=12&lang=en")
    button(page, "▶ Train").wait_for(timeout=30_000)
    button(page, "▶ Train").click()  # a run before the lesson: the lesson hides it
    page.wait_for_function("() => document.querySelector('#status').innerText.includes('✓')", timeout=LONG)
    button(page, "clipping on vs off").click()
    # the lesson's second run: clipping off; keep the first's curve hidden from its legend meanwhile
    page.wait_for_function("() => document.querySelector('#status').innerText.includes('#3')", timeout=LONG)
    c = chart(page)
    assert [t["uid"] for t in c["data"]][:1] == ["run2"], "the run before the lesson is on its chart"
    page.locator("#ppl-plot .legend .traces .legendtoggle").first.click()  # plotly's toggle: hidden on this chart only
    page.wait_for_function("() => document.querySelector('#ppl-plot .js-plotly-plot')._fullData[0].visible "
                           "=== 'legendonly'", timeout=5_000)
    page.wait_for_function("() => /[✓✗] #3/.test(document.querySelector('#status').innerText)", timeout=LONG)
    c = chart(page)
    assert next(t for t in c["data"] if t["uid"] == "run2")["visible"] == "legendonly", "the legend's toggle was lost"
    page.locator("#ppl-plot .legend .traces .legendtoggle").first.click()  # shown again
    page.wait_for_timeout(500)
    for width, height in SIZES:  # the page opened again at each size: it finds its session, charts and all
        page.set_viewport_size({"width": width, "height": height})
        page.reload()
        page.wait_for_function("() => { const g = document.querySelector('#ppl-plot .js-plotly-plot');"
                               " return g && g.data && g.data.some(t => t.uid === 'exit3'); }", timeout=30_000)
        if width < 500 and page.locator("#settings-sidebar.open").count():  # it covers a phone's screen
            page.locator("#settings-sidebar .sidebar-toggle, button[aria-label*='ebar'], .toggle-button").first.click()
            page.wait_for_timeout(500)
        page.locator("#ppl-plot").scroll_into_view_if_needed()
        ppl, grad = chart(page), chart(page, "#grad-plot")
        mark = check_chart(ppl, ["run2"], math.log10(V) + 1)
        assert re.match(r"(diverged at|off the chart from) epoch \d+", mark["text"][0]), mark
        assert abs(mark["box"]["y"] - ppl["plot"]["y"]) < 20, ("the ✕ is not at the top edge", mark, ppl["plot"])
        check_chart(grad, [], math.inf)
        page.screenshot(path=str(ARTIFACTS / f"charts-diverged-{width}x{height}.png"))
    # the compare list shows the run from before the lesson again
    page.set_viewport_size({"width": 1440, "height": 900})
    page.get_by_text("Compare runs").click()
    boxes = page.locator("#compare-runs input[type=checkbox]")
    boxes.first.wait_for(timeout=10_000)
    assert boxes.count() == 3 and not boxes.nth(0).is_checked() and boxes.nth(1).is_checked()
    boxes.nth(0).check()
    page.wait_for_function("() => document.querySelector('#ppl-plot .js-plotly-plot').data.some(t => t.uid === 'run1')",
                           timeout=10_000)
    check_chart(chart(page), ["run1", "run2"], math.log10(V) + 1)
    page.locator("#ppl-plot").scroll_into_view_if_needed()
    page.screenshot(path=str(ARTIFACTS / "charts-compare.png"))
    page.close()


def test_a_lesson_pressed_while_a_run_trains_is_started_by_its_note(page_url, browser):  # noqa: F811
    page = browser.new_page(viewport={"width": 1440, "height": 900})
    page.goto(page_url + f"?{TINY}&epochs=3000&lang=en")
    button(page, "▶ Train").wait_for(timeout=30_000)
    button(page, "▶ Train").click()
    page.wait_for_function("() => document.querySelector('#status').innerText.includes('perplexity')", timeout=LONG)
    lesson = button(page, "random vs consecutive")
    lesson.click()
    note = page.locator("#lesson-note")
    page.wait_for_function("() => document.querySelector('#lesson-note').innerText.includes('stop it first')",
                           timeout=10_000)
    restart = page.locator("#lesson-restart")
    assert restart.is_visible() and "random vs consecutive" in restart.inner_text()
    # beside the lesson buttons, not in the sidebar
    gap = note.bounding_box()["y"] - (lesson.bounding_box()["y"] + lesson.bounding_box()["height"])
    assert 0 <= gap < 120 and page.locator("#train-note").inner_text().strip() == "", gap
    page.screenshot(path=str(ARTIFACTS / "lesson-busy-note.png"))
    restart.click()
    page.wait_for_function("() => /#2 scratch · random/.test(document.querySelector('#status').innerText)",
                           timeout=30_000)
    assert "📖" in status(page) and "consecutive sampling carries" in status(page)  # the lesson, not a plain run
    assert not restart.is_visible()
    button(page, "■ Stop").click()
    page.wait_for_function("() => document.querySelector('#status').innerText.includes('stopped')", timeout=10_000)
    page.close()


SEED = 4242  # finds the test's session among the module's
GRAPH = """(sel) => {
    const g = document.querySelector(sel + ' .js-plotly-plot');
    if (!g || !g._fullLayout || !g.data || !g.layout.meta) return null;
    const axis = g.layout.yaxis;
    return {base: g.layout.meta.base, yaxis: {range: axis.range, tickvals: axis.tickvals, ticktext: axis.ticktext},
            data: g.data.map((t, i) => ({uid: t.uid, x: t.x, y: t.y, customdata: t.customdata || null,
                                         visible: g._fullData[i] ? g._fullData[i].visible : null}))};
}"""


def epochs_on(page, uid: str = "run1", sel: str = "#ppl-plot") -> int:
    return page.evaluate(f"(sel) => {{ const g = document.querySelector(sel + ' .js-plotly-plot');"
                         f" const t = g && g.data && g.data.find(t => t.uid === '{uid}');"
                         f" return t ? t.x.length : 0; }}", sel)


def wait_for_epochs(page, n: int, uid: str = "run1") -> None:
    page.wait_for_function(f"""() => ['#ppl-plot', '#grad-plot'].every(sel => {{
        const g = document.querySelector(sel + ' .js-plotly-plot');
        const t = g && g.data && g.data.find(t => t.uid === '{uid}');
        return t && t.x.length >= {n}; }})""", timeout=LONG)


def mark_graphs(page) -> None:
    """Note the graphs the page has now: one drawn afresh is a new element."""
    page.evaluate("() => { window.__graphs = ['#ppl-plot', '#grad-plot'].map("
                  "sel => document.querySelector(sel + ' .js-plotly-plot')); }")


def same_graphs(page) -> bool:
    return page.evaluate("() => ['#ppl-plot', '#grad-plot'].every("
                         "(sel, i) => document.querySelector(sel + ' .js-plotly-plot') === window.__graphs[i])")


def shown_as_on_the_server(page, lab) -> list[dict]:
    """Both charts as the page has drawn them equal the server's figures of the session's runs, each run up to the
    epoch the chart shows (a training run's next epoch may be on its way; each chart grows in a task of its own):
    every point, the customdata of the hover, the y-axis's range and ticks. The page's two charts, as read."""
    from demo import charts, renders
    session = next(s for s in lab.sessions() if any(r.config.seed == SEED for r in s.all_runs()))
    look = renders.renders_of(session)
    graphs = [page.evaluate(GRAPH, f"#{chart}") for chart in renders.CHARTS]
    views = [v for v in session.views() if v.number not in look.hidden]
    for graph, chart in zip(graphs, (charts.perplexity_figure, charts.grad_norm_figure)):
        last = {t["uid"]: t["x"][-1] for t in graph["data"] if t["uid"].startswith("run")}
        upto = [dataclasses.replace(v, history=[e for e in v.history if e.epoch <= last.get(f"run{v.number}", 0)])
                for v in views]
        figure = chart(upto, look.style, "en")
        assert [t["uid"] for t in graph["data"]] == [t["uid"] for t in figure["data"]]
        for got, want in zip(graph["data"], figure["data"]):
            assert got["x"] == want["x"] and got["y"] == want["y"], got["uid"]
            assert got["customdata"] == want.get("customdata"), got["uid"]
        assert graph["yaxis"] == {k: figure["layout"]["yaxis"][k] for k in ("range", "tickvals", "ticktext")}
    return graphs


def test_a_training_run_grows_the_charts_it_has_and_they_show_what_the_server_has(page_url, server, browser):  # noqa: F811
    """While a run trains, the page's graphs are not drawn afresh at each update: the new points go into them.
    What they show is the server's figure, point for point; a legend-hidden run stays hidden while they grow;
    a reload, a class's watcher and a second run show the right charts too."""
    lab = server.lab
    page = browser.new_page(viewport={"width": 1440, "height": 900})
    page.goto(page_url + f"?epochs=3000&seed={SEED}&lang=en")  # the chapter's model: an epoch or two a second
    button(page, "▶ Train").wait_for(timeout=30_000)
    button(page, "▶ Train").click()
    # past its first line (its first epoch was a dot) and the 11th epoch (the axis stops ticking every epoch:
    # charts.WHOLE_EPOCHS), each drawn afresh by design: from here on the charts only grow
    wait_for_epochs(page, WHOLE_EPOCHS + 2)
    mark_graphs(page)
    n = epochs_on(page)
    wait_for_epochs(page, n + 3)
    assert same_graphs(page), "a chart was drawn afresh for new points"
    shown_as_on_the_server(page, lab)
    # hidden from its legend: it stays hidden while the chart grows
    page.locator("#ppl-plot .legend .traces .legendtoggle").first.click()
    page.wait_for_function("() => document.querySelector('#ppl-plot .js-plotly-plot')._fullData[0].visible "
                           "=== 'legendonly'", timeout=5_000)
    wait_for_epochs(page, epochs_on(page) + 2)
    graphs = shown_as_on_the_server(page, lab)
    assert same_graphs(page) and graphs[0]["data"][0]["visible"] == "legendonly"
    # a class's watcher, and the page reloaded: the chart as drawn, grown by the points since
    watcher = browser.new_page(viewport={"width": 1280, "height": 720})
    session = next(s for s in lab.sessions() if any(r.config.seed == SEED for r in s.all_runs()))
    watcher.goto(page_url + f"?class={lab.share(session)}&lang=en")
    wait_for_epochs(watcher, epochs_on(page) + 1)
    shown_as_on_the_server(watcher, lab)
    page.reload()
    wait_for_epochs(page, epochs_on(watcher) + 1)
    shown_as_on_the_server(page, lab)
    # stopped: nothing trains, the chart is drawn afresh as the server's whole figure
    button(page, "■ Stop").click()
    page.wait_for_function("() => document.querySelector('#status').innerText.includes('stopped')", timeout=20_000)
    page.wait_for_timeout(1000)
    shown_as_on_the_server(page, lab)
    # a second run joins the chart, and grows it
    button(page, "▶ Train").click()
    wait_for_epochs(page, 3, "run2")
    mark_graphs(page)
    wait_for_epochs(page, epochs_on(page, "run2") + 2, "run2")
    graphs = shown_as_on_the_server(page, lab)
    assert same_graphs(page) and [t["uid"] for t in graphs[0]["data"]] == ["run1", "run2"]
    wait_for_epochs(watcher, epochs_on(page, "run2"), "run2")
    shown_as_on_the_server(watcher, lab)
    button(page, "■ Stop").click()
    page.wait_for_function("() => document.querySelector('#status').innerText.includes('stopped')", timeout=20_000)
    watcher.close()
    page.close()
