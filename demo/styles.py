"""The page's look: its CSS (``launch(css=...)``), including ``?mode=present`` for a projector at the back of a room.

The classes and ids are those that ``demo.layout`` and ``demo.render`` give their components and HTML; and a
script for the page's head (``launch(head=...)``): ``FOLD_FIRST``.
"""
from demo.screens import NARROW

CSS = """
.sample {font-size: 1.3rem; line-height: 1.7; margin: .2rem 0 .6rem; font-family: 'Noto Sans CJK SC', sans-serif;}
.sample .prefix {color: #d62728; font-weight: 700; margin-right: .15rem;}
.sample .epoch {color: #999; font-size: .8rem; margin-left: .6rem;}
.sample .blank {color: #999; font-size: .9rem;}
.sample-empty {color: #888; font-style: italic;}
#status {font-size: 1.05rem;}
#train-note, #bar-note {color: #b45309;}
/* The lines that say what happened (the notes beside the buttons, the status line) never show Gradio's progress
   timer ("processing | 0.1s"): their events ask for show_progress="hidden", which Gradio 6 does not honour on a
   Markdown (gradio-app/gradio#12406; docs/performance.md, What we would ask of Gradio) */
#train-note [data-testid="status-tracker"], #bar-note [data-testid="status-tracker"],
#lesson-note [data-testid="status-tracker"],
#write-note [data-testid="status-tracker"], #status [data-testid="status-tracker"],
#lr-value [data-testid="status-tracker"], #live-note [data-testid="status-tracker"],
#export-note [data-testid="status-tracker"] {display: none !important;}
#banner {font-size: 1.15rem; padding: .4rem .8rem; background: #fff7e6; border-radius: 8px;}
#lessons {align-items: center; flex-wrap: wrap; gap: .4rem;}
#lessons button {flex: 0 1 auto; min-width: 0;}
.lessons-title {flex: 0 0 auto !important; min-width: 0 !important;}
#lesson-note {flex: 1 0 100% !important; color: #b45309;} /* on its own line below the lesson buttons */
#chart-points {display: none;}
/* the class experiment's board: the class chart beside the results, the table below (it scrolls past ~12 rows) */
#class-points {display: none;}
#class-board {border: 2px solid #c7d2fe; border-radius: 10px; padding: .4rem .6rem; background: #f8faff;}
#class-title h3 {margin: .1rem 0;}
#join-note, #class-note, #exp-note {color: #b45309;}
#join-note:has(.md:empty), #class-note:has(.md:empty) {display: none;}
#join-row {align-items: end;}
/* the table scrolls inside its box: down past ~12 rows, sideways on a phone (gr.HTML's own element does not) */
.class-table-scroll {max-height: 26rem; overflow: auto; max-width: 100%;}
/* the table at a projector's distance: large, one run a line, numbers in columns, the highlighted row marked */
.class-table {border-collapse: collapse; width: 100%; font-size: 1.05em; font-variant-numeric: tabular-nums;}
.class-table th, .class-table td {padding: .3em .7em; border-bottom: 1px solid #e5e7eb; text-align: left;
                                  white-space: nowrap;}
.class-table thead th {position: sticky; top: 0; background: #f8faff;}
.class-table td.num {text-align: right;} .class-table tr.highlight td {background: #fff3bf; font-weight: 700;}
.class-table tr.older td {color: #9ca3af;} .class-table td.diverged {color: #b91c1c;}
#class-teacher .class-actions {align-items: flex-end;} /* its buttons level with the inputs beside them */
/* a student's read-only settings (the teacher's) greyed, so that the free ones stand out */
#settings-sidebar input:disabled, #settings-sidebar textarea:disabled {background: var(--background-fill-secondary);
  color: var(--body-text-color-subdued); cursor: not-allowed;}
#settings-sidebar label:has(input:disabled) {opacity: .55; cursor: not-allowed;}
/* the class chart and the results side by side where both fit at 22rem, else one above the other: never cut */
#class-charts {flex-wrap: wrap;} #class-charts > div {min-width: min(100%, 22rem); flex-basis: 22rem;}
.side-by-side {display: flex; gap: 1.5rem;} .side-by-side .column {flex: 1;}
.column-head {font-weight: 700; margin-bottom: .3rem;}
.class-share {display: flex; gap: 1.2rem; align-items: center;}
.class-code {font-size: 2.6rem; font-weight: 800; letter-spacing: .15rem; font-family: monospace;}
.class-share .hint {color: #666; font-size: .9rem; margin-top: .3rem;}
/* Train and Stop beside the status line while the settings are folded (a projector, a phone); the folded
   sidebar's own buttons are hidden then (out of sight already: out of the keyboard's and the screen reader's way) */
#run-bar {align-items: center; gap: .5rem; flex-wrap: wrap;}
#run-bar .run-button {flex: 0 0 auto; min-width: 7rem;}
#run-bar #status {flex: 1 1 20rem; min-width: 0;}
#bar-note {flex: 1 0 100% !important; color: #b45309;}
#run-bar .play-button {flex: 0 0 auto; min-width: 0; padding: .2rem .55rem;}
#live-note {color: #b45309;} #live-note:has(.md:empty) {display: none;}
#live-row {align-items: end;} #live-row #continue {align-self: end; min-height: 2.6rem;}
#lr-value {font-size: 1.1rem; font-variant-numeric: tabular-nums; align-self: center;}
#lr-value .lr-number {font-weight: 700;}
#bar-note:has(.md:empty) {display: none;}
#bar-restart {flex: 0 0 auto;}
body:has(#settings-sidebar.open) #run-bar .run-button {display: none !important;}
#settings-sidebar:not(.open) .sidebar-content {visibility: hidden; transition: visibility 0s .3s;}
/* a phone's and a projector's page fold the settings once the page knows its size (its load event): until
   then the open sidebar would cover a phone's page for a second, so it is not shown (FOLD_FIRST marks such a
   page before Gradio draws it; the load event's script ends it). A top-level rule: Gradio keeps those as written,
   but rewrites the selectors inside @media under its container, where html and body are not. */
html.fold-first:not(.charrnn-sized) #settings-sidebar {visibility: hidden;}
/* the models in pairs, from scratch beside torch's: three lines instead of six */
#setting-model .wrap {display: grid; grid-template-columns: 1fr auto; gap: .4rem;}
#decoding-head {margin-top: .4rem; font-weight: 600;}
/* the plotly toolbar (on hover) at the bottom right, not over a chart's title; none on a phone (a tap would show it) */
.js-plotly-plot .modebar-container {top: auto !important; bottom: 0;}
@media (max-width: 768px) {.js-plotly-plot .modebar-container {display: none;}}
/* ?mode=present: a projector at the back of a room; its first screen holds the charts and the newest lyrics */
body.present footer {display: none !important;}
body.present .sample {font-size: 1.9rem; line-height: 1.4;}
body.present .sample .epoch {font-size: 1.1rem;}
body.present #status {font-size: 1.45rem;}
body.present #banner {font-size: 1.5rem;}
body.present .class-table-scroll {font-size: 1.15rem; max-height: 20rem;}
body.present #join-row {display: none !important;} /* a projector shows the class; students join on their own screens */
body.present #lessons button {font-size: .95rem; padding: .15rem .5rem;}
body.present #header .md {display: flex; flex-wrap: wrap; align-items: baseline; column-gap: 1.5rem;}
body.present #header h1 {font-size: 1.6rem; margin: 0;}
body.present #header p {margin: 0;}
body.present #header p:not(:last-child) {display: none;}
body.present .gradio-container {--layout-gap: .6rem;}
/* a projector of fewer than 900 lines (1280x720: its charts are charts.PRESENT_SHORT): the lessons on one line
   that scrolls sideways (on their lines again while their note says something), a watcher's banner and the
   lyrics smaller, no heading above them. (Gradio puts its container's classes before each
   selector in a media query: ":is(body.present *)" still matches there, where "body.present" would not.) */
@media (max-height: 899px) {
  #lessons:is(body.present *):has(#lesson-note .md:empty) {flex-wrap: nowrap; overflow-x: auto; scrollbar-width: thin;}
  #lessons:is(body.present *) button {flex: 0 0 auto; font-size: .9rem;}
  #lessons:is(body.present *) .lessons-title {width: auto;}
  #lesson-note:is(body.present *):has(.md:empty) {display: none;}
  #latest-head:is(body.present *) {display: none;}
  #banner:is(body.present *) {font-size: 1rem; padding: .15rem .8rem;}
  .sample:is(body.present *) {font-size: 1.2rem; line-height: 1.3; margin: .1rem 0 .3rem;}
  .class-table-scroll:is(body.present *) {max-height: 12rem;}
  #class-title:is(body.present *) h3 {font-size: 1.25rem;}
}
@media (min-height: 900px) {#status:is(body.present *) .md {font-size: 1.2rem;}}
#history textarea, #written textarea {font-size: 1.05rem; line-height: 1.6;}
.next-bars {display: flex; flex-direction: column; gap: .25rem; max-width: 40rem;}
.next-bar {display: flex; align-items: center; gap: .6rem; padding: .15rem .4rem; border: 1px solid #e5e7eb;
           border-radius: 6px; background: white; cursor: pointer; font: inherit; text-align: left;}
.next-bar:hover {background: #eff6ff; border-color: #93c5fd;}
.next-bar .ch {width: 2.2rem; font-size: 1.5rem; text-align: center; font-family: 'Noto Sans CJK SC', sans-serif;}
.next-bar .ch.word {font-size: .85rem;}
.next-bar .track {flex: 1; height: 1.1rem; background: #f3f4f6; border-radius: 4px; overflow: hidden;}
.next-bar .fill {display: block; height: 100%; background: #1f77b4;}
.next-bar .p {width: 4rem; text-align: right; font-variant-numeric: tabular-nums;}
.next-empty {color: #888; font-style: italic;}
.unit-head {font-weight: 700; margin: .3rem 0;}
.unit-text {font-size: 1.3rem; line-height: 1.9; font-family: 'Noto Sans CJK SC', sans-serif;}
.unit-text span {padding: .05rem 0;}
body.present .next-bar .ch {font-size: 2.2rem;} body.present .unit-text {font-size: 2rem;}
"""


# In the page's <head>, before Gradio draws anything: a narrow window (demo.screens.NARROW) or a projector's
# page (?mode=present) will fold the settings once its load event knows its size (demo.screens).
FOLD_FIRST = ("<script>(() => { const present = new URLSearchParams(location.search).get('mode') === 'present';"
              f" if (present || window.innerWidth <= {NARROW}) document.documentElement.classList.add('fold-first');"
              " })();</script>")
