"""Charts that grow while runs train: how a chart's figure is the one the page drew grown by the points since
(``growth``; ``grown`` applies them as the page does), and the page's script that adds them to its graph
(``CHARTS_JS``, which also keeps the runs hidden from the legend hidden). ``demo.renders`` decides when a chart is
drawn afresh instead.
"""
from __future__ import annotations

from typing import Any

# The page's side of the two charts (``layout`` runs it as the js_on_load of the charts' points, a gr.HTML that is
# an output of every render): gr.Plot draws each new figure afresh on a new graph, so
# - while runs train, the server keeps a chart's figure and sends the points it has grown by since
#   (``growth``, in ``props.value``: ``{chart's element id: {base, traces, yaxis}}``); they go into the graph
#   the page has, if it is the one they grow (its ``layout.meta.base``), in one redraw: each grown trace keeps its
#   first ``keep`` points and takes the new ones after them, the y-axis its new range and ticks
#   (``grown`` does the same in Python). A graph drawn afresh takes them as soon as it is there.
# - a click on a run's legend entry hides its curve (and its ✕), another shows it again, and that lasts: the page
#   remembers, per chart, the runs (trace uids) hidden there and hides them in every graph drawn afresh. The
#   click is handled at once, here: plotly's own toggle waits to see whether a second click follows, and the
#   graph it would change may be replaced meanwhile.
_CHARTS_JS = """
const ids = IDS, hidden = {};
let points = props.value || {};
const graph = (id) => {
  const box = document.getElementById(id), g = box && box.querySelector('.js-plotly-plot');
  return g && g._fullLayout && g.data && typeof g.on === 'function' ? g : null;
};
const equal = (a, b) => a === b || JSON.stringify(a) === JSON.stringify(b);
const grow = (id) => {
  const g = graph(id), p = points && points[id];
  if (!g || !p || !g.layout.meta || g.layout.meta.base !== p.base) return false;
  let changed = false;
  for (const [uid, t] of Object.entries(p.traces || {})) {
    const d = g.data.find(d => d.uid === uid);
    if (!d) continue;
    for (const k of ['x', 'y', 'customdata']) {
      if (!(k in t)) continue;
      const had = d[k] || [];
      if (had.length === t.keep + t[k].length && t[k].every((v, i) => equal(v, had[t.keep + i]))) continue;
      d[k] = had.slice(0, t.keep).concat(t[k]);
      changed = true;
    }
  }
  const axis = g.layout.yaxis = g.layout.yaxis || {};
  for (const [k, v] of Object.entries(p.yaxis || {})) {
    if (!equal(axis[k], v)) { axis[k] = v; changed = true; }
  }
  if (changed) window.Plotly.redraw(g);
  return changed;
};
const indices = (g, uids) => g.data.map((t, i) => uids.has(t.uid) ? i : -1).filter(i => i >= 0);
const mounted = (id) => {
  const g = graph(id);
  if (!g || g.__charrnn) return;
  g.__charrnn = true;
  const gone = hidden[id] = hidden[id] || new Set();
  setTimeout(() => {
    grow(id);
    const again = indices(g, gone);
    if (again.length) window.Plotly.restyle(g, {visible: 'legendonly'}, again);
  }, 0);
  g.on('plotly_legendclick', (e) => {
    const run = g.data[e.curveNumber], hide = run.visible !== 'legendonly';
    const uids = new Set(g.data.filter(t => t.legendgroup === run.legendgroup).map(t => t.uid));
    uids.forEach(u => hide ? gone.add(u) : gone.delete(u));
    window.Plotly.restyle(g, {visible: hide ? 'legendonly' : true}, indices(g, uids));
    return false;
  });
};
// each chart in a task of its own, after Gradio's own work on the update: three short tasks, not one long one
watch('value', () => { points = props.value || {}; ids.forEach(id => setTimeout(() => grow(id), 0)); });
new MutationObserver(() => ids.forEach(mounted)).observe(document.body, {childList: true, subtree: true});
ids.forEach(mounted);
"""


def charts_js(ids: tuple[str, ...]) -> str:
    """The script of a points component that grows the charts of these element ids (the run's two charts, or the
    class chart: ``demo.experiment_panel``)."""
    return _CHARTS_JS.replace("IDS", "[" + ", ".join(f"'{i}'" for i in ids) + "]", 1)


CHARTS_JS = charts_js(("ppl-plot", "grad-plot"))


GROWING = ("x", "y", "customdata")        # what of a run's trace grows while it trains
FOLLOWING = ("range", "tickvals", "ticktext")  # what of the y-axis follows the points (the x-axis ranges itself)


def _common(old: dict[str, Any], new: dict[str, Any]) -> int:
    """How many of ``old``'s first points ``new`` has as they are (x, y and customdata alike)."""
    columns = [(old[k], new[k]) for k in GROWING if k in old]
    n = min(len(a) for a, _ in columns) if columns else 0
    n = min([n, *(len(b) for _, b in columns)])
    return next((i for i in range(n) if any(a[i] != b[i] for a, b in columns)), n)


def _fixed(figure_layout: dict[str, Any]) -> dict[str, Any]:
    """A layout less what follows the points."""
    yaxis = {k: v for k, v in figure_layout.get("yaxis", {}).items() if k not in FOLLOWING}
    return {**figure_layout, "yaxis": yaxis}


def growth(base: dict[str, Any], figure: dict[str, Any]) -> dict[str, Any] | None:
    """How ``figure`` is ``base`` grown: for each trace whose points changed, by its uid (a dict: Gradio sends a
    stream's outputs as differences, and its difference of a list of lists shifts the indices of the inner lists'
    deletions by the outer list's: keyed by uid, a trace's points are diffed on their own), how many of base's points
    it keeps (``keep``: all of them, or all but a thinned curve's newest) and its points after them (x, y and,
    where the trace has it, customdata); and the y-axis's range and ticks. None when ``figure`` differs from
    ``base`` in anything else (a run added or hidden, a curve's first line after its first dot, a ✕, a label,
    the legend): it is drawn afresh. ``grown(base, growth(base, figure)) == figure``."""
    if len(base["data"]) != len(figure["data"]) or _fixed(base["layout"]) != _fixed(figure["layout"]):
        return None
    traces = {}
    for old, new in zip(base["data"], figure["data"]):
        if {k: v for k, v in old.items() if k not in GROWING} != {k: v for k, v in new.items() if k not in GROWING} \
                or [k for k in GROWING if k in old] != [k for k in GROWING if k in new]:
            return None
        keep = _common(old, new)
        if keep < len(old["x"]) or keep < len(new["x"]):
            traces[new["uid"]] = {"keep": keep, **{k: new[k][keep:] for k in GROWING if k in new}}
    yaxis = figure["layout"].get("yaxis", {})
    return {"traces": traces, "yaxis": {k: yaxis[k] for k in FOLLOWING if k in yaxis}}


def grown(base: dict[str, Any], growth: dict[str, Any]) -> dict[str, Any]:
    """``base`` with ``growth`` applied, as the page applies it (``CHARTS_JS``): each grown trace keeps its first
    ``keep`` points and takes the new ones after them; the y-axis takes the new range and ticks."""
    by_uid = growth["traces"]
    data = []
    for trace in base["data"]:
        t = by_uid.get(trace.get("uid"))
        data.append(trace if t is None else
                    {**trace, **{k: trace[k][:t["keep"]] + t[k] for k in GROWING if k in trace}})
    layout = base["layout"]
    return {**base, "data": data, "layout": {**layout, "yaxis": {**layout.get("yaxis", {}), **growth["yaxis"]}}}
