"""Compare runs: which of a session's runs its charts show.

Every run of a session stays for comparison, and the charts show all of them but those hidden
(``Renders.hide``): a lesson hides the runs before it, so that it starts on a clean chart, and the page's list
of runs (a box per run) shows or hides each, for every page that shows the session (a class sees what its
teacher compares). A click on a run's legend entry hides it on that one chart of that one page, and another
click shows it again (plotly's own toggle, kept through the live updates).
"""
from __future__ import annotations

from typing import Any

import gradio as gr

from demo import charts
from demo import renders
from demo.page_state import PerSession
from charrnn.lab import Lab
from charrnn.sessions import Session

OFFERED: PerSession[dict[str, tuple]] = PerSession(lambda _: {})  # page -> (choices, ticked) it was last sent


def choices(session: Session) -> list[tuple[str, int]]:
    """(label, number) of every run of the session, oldest first, labelled by what differs between them."""
    views = session.views()
    names = charts.labels(views)
    return [(names[v.number], v.number) for v in views]


def hide_all(session: Session) -> frozenset[int]:
    """Hide every run the session has now (a lesson starts on a clean chart); what was hidden before."""
    look = renders.renders_of(session)
    before = look.hidden
    look.hide({r.number for r in session.all_runs()} | before)
    return before


class Compare:
    """The handlers of the list of runs: filled when it opens and while it is open, ticked by the user."""

    def __init__(self, lab: Lab):
        self.lab = lab

    def on_refresh(self, request: gr.Request) -> Any:
        """The runs, each ticked when the charts show it; nothing is sent when this page has it already."""
        session = self.lab.peek(request.session_hash)
        if session is None:
            return gr.skip()
        offered = choices(session)
        hidden = renders.renders_of(session).hidden
        ticked = [n for _, n in offered if n not in hidden]
        sent = OFFERED.of(session)
        if sent.get(request.session_hash) == (offered, ticked):
            return gr.skip()
        sent[request.session_hash] = (offered, ticked)
        return gr.update(choices=offered, value=ticked)

    def on_pick(self, ticked: list[Any], request: gr.Request) -> tuple:
        """The user ticked or unticked a run: the charts show the ticked ones among those this page was offered
        (a run that started since keeps its place), for every page that shows the session."""
        session = self.lab.session(request.session_hash)
        look = renders.renders_of(session)
        offered = {n for _, n in OFFERED.of(session).get(request.session_hash, ((), ()))[0]}
        picked = {int(n) for n in ticked or ()}
        look.hide((look.hidden - offered) | (offered - picked))
        OFFERED.of(session).pop(request.session_hash, None)  # the next refresh sends the list as it is now
        return renders.outputs(session)
