"""Writing with the current model, mid-training too: the page's Write panel."""
from __future__ import annotations

import time

import gradio as gr

from charrnn import generate as gen
from charrnn.lab import Lab

WRITE_EVERY = 3.0  # seconds between two writes of one page watching a class


class Writing:
    def __init__(self, lab: Lab):
        self.lab = lab

    @staticmethod
    def validate_write(prefix, length, decoding, temperature, top_k, seed) -> list:
        ok = bool(prefix) and len(prefix) <= gen.MAX_PREFIX
        whole = [v is None or float(v).is_integer() for v in (length, top_k, seed)]
        return [gr.validate(ok, "" if ok else f"type 1 to {gen.MAX_PREFIX:,} characters"),
                gr.validate(whole[0] and length is not None and 1 <= length <= 2000, "a whole number from 1 to 2000"),
                gr.validate(True, ""), gr.validate(True, ""),
                gr.validate(whole[1] and (top_k is None or top_k >= 0), "a whole number: 0 (all) or more"),
                gr.validate(whole[2], "a whole number")]

    def on_write(self, prefix, length, decoding, temperature, top_k, seed, request: gr.Request):
        """Write with the current model (mid-training too), streaming the text as it grows.

        A page watching a class writes with the teacher's model: one writer at a time, once every
        ``WRITE_EVERY`` seconds each, so a class cannot slow the teacher's run."""
        session = self.lab.session(request.session_hash)
        if session.membership.watching is None:
            yield from self._write(session, prefix, length, decoding, temperature, top_k, seed)
            return
        teacher = self.lab.by_key(session.membership.watching)
        if teacher is None:
            raise gr.Error("The class has ended · 课堂已结束")
        wait = session.membership.last_write + WRITE_EVERY - time.monotonic()
        if wait > 0:
            raise gr.Error(f"One write every {WRITE_EVERY:g} s: try again in {wait:.0f} s · 请稍候再写")
        if not teacher.membership.write_gate.acquire(timeout=10):
            raise gr.Error("Your classmates are writing: try again in a moment · 同学们正在写，请稍候")
        try:
            session.membership.last_write = time.monotonic()
            yield from self._write(teacher, prefix, length, decoding, temperature, top_k, seed)
        finally:
            teacher.membership.write_gate.release()

    def _write(self, session, prefix, length, decoding, temperature, top_k, seed):
        current = session.model()
        if current is None:
            raise gr.Error("No model yet: press Train, or upload a checkpoint · 还没有模型")
        model, vocab, source = current
        sample = decoding == "sample"
        try:
            chars = gen.stream(model, vocab, prefix or "", int(length or 0), float(temperature) if sample else 0.0,
                               int(top_k) if sample and top_k else None, int(seed) if sample and seed else None)
        except (gen.PrefixError, ValueError) as e:
            yield "", f"✗ {e}"
            return
        text, last, note = prefix, 0.0, f"written by {source}"
        for ch in chars:
            text += ch
            if time.monotonic() - last > 0.03:
                last = time.monotonic()
                yield text, note
        yield text, note
