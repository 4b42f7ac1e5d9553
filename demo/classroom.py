"""Teaching a class with the page: one run on every screen, lessons in one click, links that carry settings.

A teacher shares their session: the class code (40 random bits), the link to watch it and a QR code of
the link. A page opened with ``?class=<code>`` watches that session live: both charts with every run,
the status line, the newest lyrics and the history, rendered once per change for all watchers. Watchers
train nothing and take no training slot; they may write with the teacher's current model (one at a time,
once every few seconds each). ``?mode=present`` shows any page for a projector.
"""
from __future__ import annotations

import html
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import gradio as gr
from anyio import to_thread  # its threads end after 10 s idle (asyncio's pool keeps them)
import segno

from demo import form
from demo import charts
from demo import class_views
from demo import compare
from demo import renders
from demo import screens
from demo import streams
from charrnn.device import machine
from charrnn.lab import Lab
from charrnn.sessions import Session
from demo.languages import either, in_language
from demo.lessons import LESSONS
from demo.page_state import PerSession

if TYPE_CHECKING:
    from demo.layout import Page


def base_url(request: gr.Request) -> str:
    """The address others should open: a Space's direct address (its huggingface.co page is only a frame
    around it), else the address this page was opened at."""
    if machine().url:
        return machine().url
    headers = request.headers
    scheme = headers.get("x-forwarded-proto") or request.request.url.scheme
    return f"{scheme}://{headers.get('x-forwarded-host') or headers.get('host')}/"


def class_panel(code: str, link: str) -> str:
    """The code, the link and a QR code of the link, for the projector."""
    qr = segno.make(link, error="m").svg_inline(scale=5, border=2, dark="#111", light="#fff")
    return (f"<div class='class-share'><div class='qr'>{qr}</div><div>"
            f"<div class='class-code'>{html.escape(code)}</div>"
            f"<div>看直播 · Watch live: <a href='{html.escape(link)}' target='_blank'>{html.escape(link)}</a></div>"
            "<div class='hint'>扫码或打开链接，即可看到这里的每一次训练；观看者不能开始或停止训练 · "
            "Scan or open the link "
            "to watch every run of this page live; watchers cannot start or stop anything</div></div></div>")


class Classroom:
    """The handlers of Share, the watcher page, the lessons and Copy link."""

    def __init__(self, lab: Lab):
        self.lab = lab

    # ------------------------------------------------------------ one run, every screen
    def on_share(self, request: gr.Request) -> str:
        session = self.lab.session(request.session_hash)
        code = self.lab.share(session)
        return class_panel(code, f"{base_url(request)}?class={code}")

    def watch(self, code: str | None, page: Session) -> Session | None:
        """The session a watcher page shows (None: unknown or ended); the page becomes a watcher."""
        teacher = self.lab.by_class(code)
        if teacher is not None and teacher is not page:
            page.membership.watching, page.membership.watched_code = teacher.key, teacher.membership.code
        return teacher

    async def on_watch(self, request: gr.Request, code: str | None = None):
        """Stream a class's session, for API clients (a watcher page does the same on load)."""
        page = self.lab.session(request.session_hash)
        teacher = self.watch(code, page)
        if teacher is None:
            yield ended_outputs(code)
            return
        async for out in streams.watch(teacher):
            yield out
        yield ended_outputs(code)

    # ------------------------------------------------------------ a page opens
    def load_handler(self, page: Page):
        """The page's load event (a function Gradio can read: ``key`` from the browser, then the request)."""
        def on_load(key: str, screen: dict | None, request: gr.Request) -> "Updates":
            return self.open_page(page, key, request, screen)
        return on_load

    def lesson_handler(self, key: str):
        """The handler of one lesson's button (``/lesson_<key>`` in the API; ``epochs`` as on the page)."""
        async def on_lesson(request: gr.Request, epochs: float | None = None):
            async for update in self.on_lesson(key, epochs, request):
                yield update
        on_lesson.__name__ = on_lesson.__qualname__ = f"on_lesson_{key}"
        return on_lesson

    def open_page(self, page: Page, key: str, request: gr.Request, screen: dict | None = None) -> "Updates":
        """A page opens or reloads. It finds its session by the key it keeps (its runs still going), and
        reads its address: ``?class=`` watches a class, ``?mode=present`` is for a projector, ``?lang=``
        shows one language, settings fill the form (a bad one says why next to it and keeps its default),
        ``?lesson=`` starts a lesson. ``screen``, its window's size, folds the settings on a phone and sizes a
        projector's charts (``demo.screens``)."""
        params = dict(request.query_params)
        session = self.lab.attach(request.session_hash, key)
        look = renders.renders_of(session)
        present = params.get("mode") == "present"
        look.style = screens.chart_style(present, screen)
        look.lang = form.lang_of(params)
        laptop = screens.sidebar_open(present, screen)  # the controls beside the charts: open on a laptop only
        first = Updates({page.key: session.key, page.sidebar.box: gr.update(open=laptop),
                         page.run.live.box: gr.update(open=laptop)})
        first.merge(page.in_language(look.lang))
        joined = session.membership.joined
        if joined is not None and not joined.ended and joined.student(session.key) is not None:  # a student's reload
            look.style = charts.own(look.style, student=True)
            first.merge({c: gr.update(visible=False) for c in page.teacher_only})
            return first.merge(class_views.student_view(page, joined, joined.student(session.key).nickname,
                                                        look.lang, laptop))
        if "class" in params:
            look.style = charts.watching(look.style)  # its empty chart waits for the teacher
            teacher = self.watch(params["class"], session)
            first.merge({c: gr.update(visible=False) for c in page.teacher_only})
            experiment = self.lab.experiment(params["class"]) if teacher else None
            first.merge(class_views.watcher_view(page, experiment))
            banner = (watching_banner(teacher.membership.code, look.lang, experiment is not None) if teacher else
                      ended_outputs(params["class"], look.lang)[0])
            return first.merge({page.banner: gr.update(visible=True, value=banner)})
        if session.membership.experiment is not None:  # the teacher's reload: the board again
            first.merge(class_views.teacher_view(page, session.membership.experiment))
        values, problems = form.from_query(params)
        named = {n for n in form.LINK_NAMES if n in params or "preset" in params or
                 (n == "theta" and "clip" in params)}
        settings = page.sidebar.settings
        first.merge({settings[n]: gr.update(value=values[n]) for n in named if n not in problems})
        first.merge({settings[n]: gr.update(info=f"✗ {m}") for n, m in problems.items() if n in settings})
        if problems:
            first.merge({page.banner: gr.update(visible=True, value=(
                "✗ 链接里有不允许的设置，已保留默认值 · The link has settings that are not allowed; their defaults "
                "are kept:  \n" + "  \n".join(f"`{n}`: {html.escape(m)}" for n, m in problems.items())))})
        lesson = params.get("lesson")
        if lesson in LESSONS and session.active is None and not session.in_lesson:
            problem = self.start_lesson(session, lesson, values["epochs"])
            if problem:
                first.merge({page.lessons.note: problem})
        return first

    async def on_follow(self, request: gr.Request):
        """After a page opens: show its session (a watcher: the class's) and follow what is training.

        A separate event from the page's load, with only the seven outputs of a run (``postprocess=False``):
        an update of the load event would touch every setting of the form, for every watcher."""
        page = self.lab.session(request.session_hash)
        look, member = renders.renders_of(page), page.membership
        if member.watching is not None:
            teacher = self.lab.by_key(member.watching)
            if teacher is not None:
                async for out in streams.watch(teacher, look.style, look.lang,
                                               still=lambda: member.watching == teacher.key, page=page.key):
                    yield out
            if member.watching is None:  # the page joined the class's experiment: its own runs from now on
                if page.active is None and not page.in_lesson:  # (a Train pressed since streams them itself)
                    yield await to_thread.run_sync(renders.outputs, page)
                return
            yield ended_outputs(member.watched_code, look.lang)
            return
        yield await to_thread.run_sync(renders.outputs, page)
        if page.active is not None or page.in_lesson:
            done = (lambda: not page.in_lesson) if page.in_lesson else None
            async for out in streams.follow(page, page.active if done is None else None, done=done):
                yield out

    def on_followed(self, request: gr.Request) -> Any:
        """After ``on_follow`` ends: a watcher's banner says that the class has ended."""
        page = self.lab.peek(request.session_hash)
        if page is None or page.membership.watching is None:
            return gr.skip()
        return ended_outputs(page.membership.watched_code or "", renders.renders_of(page).lang)[0]

    # ------------------------------------------------------------ lessons
    def start_lesson(self, session: Session, key: str, epochs: Any) -> str:
        """Start a lesson's runs (short ones, unless the teacher changed the epochs on the page) on a clean
        chart (the runs before it are hidden: the compare list shows them again); what went wrong, or ""."""
        n = LESSONS[key].epochs if epochs in (None, form.DEFAULTS["epochs"]) else int(epochs)
        hidden = compare.hide_all(session)
        try:
            session.start_plan(LESSONS[key].steps(n, form.PAGE_PRED_PERIOD), caption=LESSONS[key].caption)
        except (RuntimeError, ValueError) as e:
            renders.renders_of(session).hide(hidden)
            return f"✗ {e}"
        return ""

    async def on_lesson(self, key: str, epochs: Any, request: gr.Request):
        """Run a lesson's two runs one after the other, and stream them until the lesson ends. Pressed while a
        run trains, it starts nothing: the note beside the lesson buttons says so, and its button stops the run
        and starts this lesson (``on_pressed_lesson``)."""
        session = self.lab.session(request.session_hash)
        press = PRESSES.of(session)
        if await to_thread.run_sync(session.settle) is not None:
            press.key, press.note = key, LESSON_BUSY
            yield press.progress("busy")
            return
        press.key = None
        if problem := self.start_lesson(session, key, epochs):
            press.note = problem
            yield press.progress("stopped")
            return
        async for out in streams.follow(session, done=lambda: not session.in_lesson):
            yield out

    async def on_pressed_lesson(self, request: gr.Request, epochs: float | None = None):
        """The note's button, once the run is stopped: start the lesson whose press found it training."""
        session = self.lab.session(request.session_hash)
        key = PRESSES.of(session).key
        if key is not None:
            async for out in self.on_lesson(key, epochs, request):
                yield out

    def on_lesson_streamed(self, request: gr.Request) -> tuple:
        """After a lesson's stream: the note beside the lesson buttons (why it started nothing, in the page's
        language) and, when a run was training, the button that stops it and starts the lesson pressed."""
        session = self.lab.peek(request.session_hash)
        press = PRESSES.get(session) if session is not None else None
        if press is None or press.note is None:
            return gr.skip(), gr.skip()
        text, press.note = press.note, None
        lang = renders.renders_of(session).lang
        restart = gr.update(visible=press.key is not None, value=restart_label(press.key, lang) if press.key else "")
        return in_language(text, lang), restart

    # ------------------------------------------------------------ links
    def on_copy_link(self, request: gr.Request, **values: Any) -> str:
        query = form.to_query({k: v for k, v in values.items() if k not in ("corpus_file", "resume")})
        return base_url(request) + (f"?{query}" if query else "")


LESSON_BUSY = ("正在训练：请先停止，或点下面的按钮停止它并开始这节课 · A run is training: stop it first, or press the "
               "button below to stop it and start this lesson")


@dataclass
class LessonPress:
    """What the page keeps of a session's lesson presses."""
    key: str | None = None   # the lesson pressed while a run trained: what the note's button starts
    note: str | None = None  # why the press started nothing, shown beside the lesson buttons after its stream

    def progress(self, status: str) -> tuple:
        """The lesson stream's answer when it starts nothing: a progress dict that says why (API clients read
        it); the note beside the buttons comes with the event after the stream (``on_lesson_streamed``)."""
        return (*[gr.skip()] * 5, {"status": status, "message": self.note}, gr.skip())


PRESSES: PerSession[LessonPress] = PerSession(lambda _: LessonPress())


def restart_label(key: str, lang: str) -> str:
    """The note's button, naming the lesson it starts."""
    name = LESSONS[key].button
    return in_language(f"■▶ 停止当前训练，开始“{in_language(name, 'zh')}” · Stop the run and start "
                       f"“{in_language(name, 'en')}”", lang)


class Updates(dict):
    """Component updates to send at once; ``merge`` combines two updates of one component."""

    def merge(self, more: dict) -> "Updates":
        for component, update in more.items():
            old = self.get(component)
            if isinstance(old, dict) and isinstance(update, dict):
                update = {**old, **update}
            self[component] = update
        return self


def ended_outputs(code: str | None, lang: str = "both") -> tuple:
    code = html.escape(code or "")
    text = either(f"**班级 {code} 不存在或已结束。** 请向老师要新的链接，或[自己打开实验室](./)。",
                  f"**The class {code} is unknown or has ended.** Ask your teacher for the new link, or "
                  "[open the lab yourself](./).", lang, "  \n")
    return (text, *[gr.skip()] * 6)


def watching_banner(code: str, lang: str = "both", experiment: bool = False) -> str:
    """A watcher's banner: what the page shows (the teacher's runs, or the class's experiment: how to join it)."""
    code = html.escape(code)
    if experiment:
        return either(f"👀 **班级 {code} 正在做实验** — 每位同学的训练都实时显示在下面的全班图上；输入昵称加入，"
                      "训练你自己的。",
                      f"👀 **Class {code} runs an experiment** — every student's run appears live on the class chart "
                      "below; type a nickname to join and train your own.", lang, "  \n")
    return either(f"👀 **正在观看班级 {code}** — 老师的训练在这里实时显示；你可以用老师的模型在下面写歌词。",
                  f"👀 **Watching class {code}** — the teacher's runs appear here live; you can write with the "
                  "teacher's model below.", lang, "  \n")

