"""The class's panels wired to their rooms: share and watch (``classroom``) and the class's experiment
(``experiment``), one function per panel as ``demo.app`` wires the others."""
# No ``from __future__ import annotations``: Gradio reads the type hints of the handlers defined here as they are.

import gradio as gr

from charrnn.lab import Lab
from demo import class_views
from demo import experiment_panel
from demo import layout
from demo import renders
from demo import screens
from demo.classroom import Classroom, watching_banner
from demo.experiment import Experiments


# After a join the page's sidebar opens beside the board: plotly sizes its charts again on the window's resize
# event (its sidebar's fold takes a moment to move).
RESIZE = "() => { setTimeout(() => window.dispatchEvent(new Event('resize')), 400); }"


def class_events(page: layout.Page, room: Classroom) -> None:
    """Share with the class (``/share``), watch one (``/watch``), and Copy link."""
    page.classroom.share.click(room.on_share, None, page.classroom.panel, api_name="share", concurrency_limit=None,
                               show_progress="hidden")
    # /watch streams a class's runs into the page's seven run outputs, as /train does, so it stays an event of
    # those components (gr.api would give it outputs of its own); this hidden textbox only carries the code.
    watch = gr.Textbox(visible=False)
    watch.submit(room.on_watch, inputs_kwargs={"code": watch}, outputs=page.run.outputs, api_name="watch",
                 concurrency_limit=None, show_progress="hidden", postprocess=False)
    side = page.sidebar
    side.copy_link.click(room.on_copy_link, inputs_kwargs=side.settings, outputs=side.link,
                         api_visibility="private", show_progress="hidden").then(
        lambda: gr.update(visible=True), None, side.link, js="(t) => { navigator.clipboard?.writeText(t); }",
        api_visibility="private", show_progress="hidden")


def experiment_events(page: layout.Page, exp: Experiments, lab: Lab) -> None:
    """The class experiment: the teacher's Open (``/experiment``), a watcher's Join (``/join``), the board following
    the class, the teacher's row (``/highlight``, ``/remove``, ``/end_experiment``), and ``/class_runs``."""
    b, setup = page.board, page.classroom.setup
    quiet = dict(api_visibility="private", concurrency_limit=None, show_progress="hidden")
    setup.free.change(experiment_panel.ranges_shown, setup.free, setup.shown, queue=False, **quiet)
    setup.epochs.change(experiment_panel.question_for, [setup.question, setup.epochs], setup.question, queue=False,
                        **quiet)
    board = dict(fn=exp.on_board, outputs=b.outputs, postprocess=False, **quiet)
    setup.open.click(exp.on_open, inputs_kwargs={**setup.inputs, **page.sidebar.settings},
                     outputs=[setup.note, page.classroom.panel, b.box, b.teacher_row, b.join_row, b.end],
                     **quiet).then(**board)

    def on_join(nickname: str, screen: dict | None, request: gr.Request) -> dict:
        """The note beside Join; a page that joined becomes a student's (``class_views.student_view``; its
        settings open beside the charts on a laptop, folded on a phone)."""
        text, ok = exp.on_join(nickname, request)
        out = {b.join_note: text}
        if ok:
            session = lab.session(request.session_hash)
            joined = session.membership.joined
            out.update(class_views.student_view(page, joined, joined.student(session.key).nickname,
                                                renders.renders_of(session).lang, screens.sidebar_open(False, screen)))
        return out

    for event in (b.join.click, b.nickname.submit):
        event(on_join, [b.nickname, page.screen], class_views.board_parts(page), js=f"(n) => [n, {screens.SIZE}]",
              **quiet).then(exp.on_joined, None, page.run.outputs, postprocess=False, **quiet).then(None, js=RESIZE)

    def on_look(request: gr.Request) -> dict:
        """A watcher's board timer: is there an experiment in the class now?"""
        member = lab.session(request.session_hash).membership
        experiment = lab.experiment(member.watched_code) if member.watching is not None else None
        if experiment is None:
            going = member.watching is not None and lab.by_class(member.watched_code) is not None
            return {b.timer: gr.Timer(active=going)}
        lang = renders.renders_of(lab.session(request.session_hash)).lang
        return {**class_views.watcher_view(page, experiment),
                page.banner: gr.update(value=watching_banner(experiment.code, lang, experiment=True))}

    b.timer.tick(on_look, None, [b.box, b.join_row, b.teacher_row, b.timer, page.banner], **quiet).then(**board)
    b.pick.focus(exp.on_students, None, b.pick, **quiet)
    b.highlight.click(exp.on_highlight, b.pick, b.note, **quiet)
    b.remove.click(exp.on_remove, b.pick, [b.note, b.pick], **quiet)
    b.older.input(exp.on_older, b.older, b.note, **quiet)
    b.end.click(exp.on_end, None, [b.note, b.end], **quiet)
    b.export.click(exp.on_export, b.export_format, [b.file, b.note], api_visibility="private", concurrency_limit=4,
                   show_progress="hidden")
    for fn, name in ((exp.experiment, "experiment"), (exp.join, "join"), (exp.class_runs, "class_runs"),
                     (exp.remove, "remove"), (exp.highlight, "highlight"), (exp.end_experiment, "end_experiment")):
        gr.api(fn, api_name=name, concurrency_limit=None)
