"""What the browser itself pays: a real page (Debian's Chromium, driven by Playwright) on the app.

1. First chart point: from the click on Train to the first point the page draws in the perplexity chart, each
   press on a fresh page (the default run, scratch · random), stopped between; p50 and max. The page's clock:
   a capture listener notes the click, a requestAnimationFrame loop the first frame whose chart holds a point.
2. Long tasks: the page's main-thread tasks over 50 ms (``PerformanceObserver`` of type ``longtask``) over a
   window of live updates, with 1 run on the charts and with 3 (one session: run 1 measured then stopped, run 2
   a few epochs, run 3 measured; the stopped runs stay on the charts as the compare view). Share of the window's
   wall time in long tasks, their count and the longest, and the chart updates the page received in the window
   (the perplexity chart's points changed; polled every 100 ms) with the long tasks' milliseconds per update:
   the share follows how many updates arrive, which the machine's load decides. And the share of wall time the
   main thread spent in tasks of any length (Chromium's ``TaskDuration``). Each repeat on a fresh page.

The app runs in its own process (``python demo/app.py``) on ``--port``; only that server is stopped at the end.
``--compare`` also runs the app with ``CHARRNN_CHART_GROWTH=off`` (every change draws the charts afresh, as
before the page grew them) on ``--afresh-port``, and measures the two in turn, on the same load.

Usage: CHARRNN_DATA_DIR=../shared/data python bench/browser.py [--repeats 3] [--presses 5] [--window 25] [--compare]
"""
from __future__ import annotations

import argparse
import os
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = os.environ.get("CHARRNN_CHROMIUM", "/usr/bin/chromium")
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--no-first-run", "--disable-sync"]
TRAIN, STOP, EPOCHS = "▶ 训练 · Train", "■ 停止 · Stop", "迭代周期 · epochs"

# Runs in every page before its own scripts: long tasks from the start, the click on Train, and the first frame
# whose perplexity chart (the first plotly graph) holds more run points than at the click.
PROBE = """
window.__long = [];
new PerformanceObserver(l => { for (const e of l.getEntries()) window.__long.push([e.startTime, e.duration]); })
  .observe({type: 'longtask', buffered: true});
window.__points = () => {
  const g = document.querySelectorAll('.js-plotly-plot')[0];
  if (!g || !g.data) return 0;
  return g.data.filter(t => String(t.uid || '').startsWith('run')).reduce((n, t) => n + (t.x ? t.x.length : 0), 0);
};
window.__updates = 0;
setInterval(() => {
  const n = window.__points();
  if (n !== window.__seen) { window.__seen = n; window.__updates++; }
}, 100);
window.__click = null; window.__first = null;
document.addEventListener('click', e => {
  const b = e.target.closest && e.target.closest('button');
  if (!b || b.innerText.trim() !== %r) return;
  window.__click = performance.now(); window.__base = window.__points(); window.__first = null;
  const frame = () => {
    if (window.__points() > window.__base) { window.__first = performance.now(); return; }
    requestAnimationFrame(frame);
  };
  requestAnimationFrame(frame);
}, true);
""" % TRAIN


def start_server(port: int, **environ: str) -> subprocess.Popen:
    with socket.socket() as s:
        if s.connect_ex(("127.0.0.1", port)) == 0:
            raise SystemExit(f"port {port} is taken: pass --port")
    env = {**os.environ, "GRADIO_SERVER_PORT": str(port), "GRADIO_ANALYTICS_ENABLED": "False", **environ}
    proc = subprocess.Popen([sys.executable, str(ROOT / "demo" / "app.py")], env=env, cwd=ROOT,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"the app exited with {proc.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return proc
        except OSError:
            time.sleep(0.2)
    proc.kill()
    raise SystemExit("the app did not start within 90 s")


def open_page(browser, url: str):
    page = browser.new_page(viewport={"width": 1500, "height": 1000})
    page.add_init_script(PROBE)
    page.goto(url)
    page.get_by_role("button", name=TRAIN, exact=True).wait_for(timeout=60_000)
    page.wait_for_timeout(1000)  # the page's load events settle
    return page


def button(page, name: str):
    return page.get_by_role("button", name=name, exact=True)


def set_epochs(page, n: int) -> None:
    box = page.get_by_label(EPOCHS)
    box.fill(str(n))
    box.press("Tab")


def train(page) -> None:
    """Press Train and wait for the first point drawn."""
    button(page, TRAIN).click()
    page.wait_for_function("() => window.__first !== null", timeout=60_000, polling=100)


def stop(page) -> None:
    button(page, STOP).click()
    page.wait_for_function("() => document.querySelector('#status').innerText.includes('stopped')", timeout=20_000)


def first_point(browser, url: str) -> float:
    page = open_page(browser, url)
    try:
        train(page)
        seconds = page.evaluate("() => (window.__first - window.__click) / 1000")
        stop(page)
        return seconds
    finally:
        page.close()


def long_tasks(page, window: float) -> dict:
    """Long tasks over the next ``window`` seconds of the page's clock: share of wall time, count, longest, and
    the chart updates received meanwhile, with the long tasks' milliseconds per update."""
    cdp = page.context.new_cdp_session(page)
    cdp.send("Performance.enable")
    busy0 = task_seconds(cdp)
    t0, u0 = page.evaluate("() => [performance.now(), window.__updates]")
    page.wait_for_timeout(window * 1000)
    t1, u1 = page.evaluate("() => [performance.now(), window.__updates]")
    main = (task_seconds(cdp) - busy0) * 1000 / (t1 - t0)
    cdp.detach()
    tasks = page.evaluate("() => window.__long")
    inside = [(max(s, t0), min(s + d, t1)) for s, d in tasks if s < t1 and s + d > t0]
    busy = sum(b - a for a, b in inside)
    return dict(share=busy / (t1 - t0), count=len(inside), longest=max((b - a for a, b in inside), default=0) / 1000,
                points=page.evaluate("() => window.__points()"), updates=u1 - u0,
                per_update=busy / max(u1 - u0, 1), main=main)


def task_seconds(cdp) -> float:
    """The seconds the page's main thread has spent in tasks (Chromium's ``TaskDuration``), long or short."""
    return next(m["value"] for m in cdp.send("Performance.getMetrics")["metrics"] if m["name"] == "TaskDuration")


def compare(browser, url: str, window: float, settle: float, short: int) -> tuple[dict, dict]:
    """(1 run, 3 runs) on one fresh page: run 1 measured then stopped, run 2 ``short`` epochs, run 3 measured."""
    page = open_page(browser, url)
    try:
        set_epochs(page, 5000)
        train(page)
        page.wait_for_timeout(settle * 1000)
        one = long_tasks(page, window)
        stop(page)
        set_epochs(page, short)
        train(page)
        page.wait_for_function(f"() => document.querySelector('#status').innerText.includes('epoch {short}/{short}')",
                               timeout=120_000)
        page.wait_for_timeout(1000)
        set_epochs(page, 5000)
        train(page)
        page.wait_for_timeout(settle * 1000)
        three = long_tasks(page, window)
        stop(page)
        return one, three
    finally:
        page.close()


def load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def stop_server(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(15)
    except subprocess.TimeoutExpired:
        proc.kill()


def table(rows: list[tuple[dict, dict]]) -> None:
    print(f"    {'':24}{'1 run':>24}{'3 runs':>24}")
    for what, key, fmt in (("share of wall time", "share", "{:.1%}"), ("long tasks", "count", "{:.0f}"),
                           ("longest, s", "longest", "{:.2f}"), ("chart updates", "updates", "{:.0f}"),
                           ("long-task ms per update", "per_update", "{:.0f}"),
                           ("busy, tasks of any length", "main", "{:.1%}")):
        cells = []
        for i in (0, 1):
            v = [row[i][key] for row in rows]
            cells.append(f"{fmt.format(statistics.median(v))} ({fmt.format(min(v))}-{fmt.format(max(v))})")
        print(f"    {what:24}{cells[0]:>24}{cells[1]:>24}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeats", type=int, default=3, help="fresh pages measured for the long tasks (default 3)")
    ap.add_argument("--presses", type=int, default=5, help="presses of Train for the first point (default 5)")
    ap.add_argument("--window", type=float, default=25.0, help="seconds of live updates measured (default 25)")
    ap.add_argument("--settle", type=float, default=3.0, help="seconds after the first point before (default 3)")
    ap.add_argument("--short", type=int, default=10, help="epochs of the second run (default 10)")
    ap.add_argument("--port", type=int, default=7930, help="the app's port (default 7930)")
    ap.add_argument("--compare", action="store_true",
                    help="also measure the app drawing every change afresh (CHARRNN_CHART_GROWTH=off), in turn")
    ap.add_argument("--afresh-port", type=int, help="that app's port (default: --port + 1)")
    args = ap.parse_args()
    from playwright.sync_api import sync_playwright

    print(f"{os.cpu_count()} cores · load {load()} (1, 5, 15 min) at the start")
    afresh = args.afresh_port or args.port + 1
    apps = [("grown", args.port, {})] + ([("afresh", afresh, {"CHARRNN_CHART_GROWTH": "off"})]
                                         if args.compare else [])
    procs = []
    rows: dict[str, list] = {name: [] for name, _, _ in apps}
    try:
        for _, port, environ in apps:
            procs.append(start_server(port, **environ))
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
            print(f"Chromium {browser.version}")
            for name, port, _ in apps:
                url = f"http://127.0.0.1:{port}/"
                first_point(browser, url)  # warm: the server's first run, the browser's caches
                firsts = [first_point(browser, url) for _ in range(args.presses)]
                print(f"[1] {name}: first chart point after the click, scratch · random, {args.presses} fresh pages: "
                      f"p50 {statistics.median(firsts):.2f} s · max {max(firsts):.2f} s "
                      f"({', '.join(f'{f:.2f}' for f in firsts)})")
            for r in range(args.repeats):
                for name, port, _ in (apps if r % 2 == 0 else apps[::-1]):  # in turn: each goes first as often
                    one, three = compare(browser, f"http://127.0.0.1:{port}/", args.window, args.settle, args.short)
                    rows[name].append((one, three))
                    print(f"    repeat {r + 1} {name}: " + " · ".join(
                        f"{n} run{'s' * (n > 1)} {m['share']:.1%} in {m['count']} long tasks, longest "
                        f"{m['longest']:.2f} s, {m['updates']} updates ({m['points']} points)"
                        for n, m in ((1, one), (3, three))) + f" · load {load()}")
            browser.close()
    finally:
        for proc in procs:
            stop_server(proc)
    for name, _, _ in apps:
        print(f"[2] {name}: the page's main thread in long tasks (> 50 ms) over {args.window:.0f} s of live updates, "
              f"median of {args.repeats} (min-max):")
        table(rows[name])
    print(f"load {load()} (1, 5, 15 min) at the end")


if __name__ == "__main__":
    main()
