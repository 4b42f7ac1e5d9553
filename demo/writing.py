"""Writing with the current model, mid-training too: the page's Write panel."""
from __future__ import annotations

import time

import gradio as gr

from charrnn import generate as gen
from charrnn.lab import Lab
from demo import render, rules, values
from demo.languages import CLASS_ENDED, either, in_language
from demo.problems import in_page
from demo.renders import renders_of

WRITE_EVERY = 3.0  # seconds between two writes of one page watching a class
# What /generate allows (the write panel's widgets: demo.layout.write_panel); demo.rules.number reads them.
RULES = dict(length=dict(whole=True, low=1, high=2000), temperature=dict(low=0.05, high=2.0),
             top_k=dict(whole=True, low=0, means="0 = all"), seed=dict(whole=True, low=0, high=2**63 - 1,
                                                                      means="0 = random"))


NO_MODEL = "💡 还没有模型：先训练，或上传一个检查点 · No model yet: press Train, or upload a checkpoint"


class Writing:
    def __init__(self, lab: Lab):
        self.lab = lab

    @staticmethod
    def validate_write(prefix, length, decoding, temperature, top_k, seed) -> list:
        """Every field by demo.rules's one rule (the event sends the values as they came: no rounding)."""
        text = rules.problem(rules.text, "prefix", prefix, gen.MAX_PREFIX)
        choice = decoding in ("greedy", "sample")
        return [gr.validate(text is None, text or ""), values.field("length", length, **RULES["length"]),
                gr.validate(choice, "" if choice else f"decoding 须为 greedy 或 sample · decoding={decoding!r} is "
                                                      "not allowed: greedy or sample"),
                values.field("temperature", temperature, **RULES["temperature"]),
                values.field("top_k", 0 if top_k is None else top_k, **RULES["top_k"]),
                values.field("seed", seed, **RULES["seed"])]

    def on_write(self, prefix, length, decoding, temperature, top_k, seed, request: gr.Request):
        """Write with the current model (mid-training too), streaming the text as it grows.

        A page watching a class writes with the teacher's model: one writer at a time, once every
        ``WRITE_EVERY`` seconds each, so a class cannot slow the teacher's run."""
        session = self.lab.session(request.session_hash)
        lang = renders_of(session).lang
        if session.membership.watching is None:
            yield from self._write(session, prefix, length, decoding, temperature, top_k, seed, lang)
            return
        teacher = self.lab.by_key(session.membership.watching)
        if teacher is None:
            raise gr.Error(CLASS_ENDED)
        wait = session.membership.last_write + WRITE_EVERY - time.monotonic()
        if wait > 0:
            raise gr.Error(f"请 {wait:.0f} 秒后再写 · One write every {WRITE_EVERY:g} s: try again in {wait:.0f} s")
        if not teacher.membership.write_gate.acquire(timeout=10):
            raise gr.Error("同学们正在写，请稍候 · Your classmates are writing: try again in a moment")
        try:
            session.membership.last_write = time.monotonic()
            yield from self._write(teacher, prefix, length, decoding, temperature, top_k, seed, lang)
        finally:
            teacher.membership.write_gate.release()

    def _write(self, session, prefix, length, decoding, temperature, top_k, seed, lang="both"):
        current = session.model()
        if current is None:  # a hint beside the button, not an error: nothing went wrong
            yield "", in_language(NO_MODEL, lang)
            return
        model, vocab, source = current
        sample = decoding == "sample"
        length, temperature, seed = (values.read(n, v, **RULES[n]) for n, v in
                                     (("length", length), ("temperature", temperature), ("seed", seed)))
        top_k = values.read("top_k", 0 if top_k is None else top_k, **RULES["top_k"])
        try:
            chars = gen.stream(model, vocab, values.read_text("prefix", prefix, gen.MAX_PREFIX), length,
                               temperature if sample else 0.0, top_k if sample and top_k else None,
                               seed if sample and seed else None)
        except (gen.PrefixError, ValueError) as e:
            yield "", f"✗ {in_page(str(e), lang)}"
            return
        text, last = prefix, 0.0
        note = either(f"由{render.source_zh(source)}写成", f"written by {source}", lang)
        for ch in chars:
            text += ch
            if time.monotonic() - last > 0.03:
                last = time.monotonic()
                yield text, note
        yield text, note

