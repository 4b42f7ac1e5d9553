"""Saving, downloading and uploading checkpoints, and the texts people upload to train on.

Everything a session saves or uploads is its own: held by its ``SessionFiles`` (a private folder, caps,
deletion when the session closes), and reached only through that session's download link.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import gradio as gr
from gradio import processing_utils

from demo import form
from charrnn.checkpoint import CheckpointError, load_checkpoint
from charrnn.corpus import NAMED, CorpusError, decode_bytes, describe_source
from charrnn.files import QuotaError
from charrnn.lab import Lab, Session
from charrnn.threads import one_thread
from demo.languages import in_language
from demo.renders import renders_of
from demo.training import hold_upload

UPLOAD_MAX_CHECKPOINT_BYTES = 64 * 1024 * 1024


NOTHING_TO_SAVE = "💡 还没有可保存的模型：先点“训练” · No model to save yet: press Train first"


class Checkpoints:
    """The handlers of Save, the checkpoint upload and the text upload."""

    def __init__(self, lab: Lab, cache_dir: str):
        self.lab = lab
        self.cache_dir = cache_dir  # where Gradio serves downloads from (under unguessable names)

    def session(self, request: gr.Request) -> Session:
        return self.lab.session(request.session_hash)

    def on_save(self, request: gr.Request):
        """Save the current model in the session's private folder; only this session's download serves it."""
        one_thread()
        session = self.session(request)
        lang = renders_of(session).lang
        trainer = session.latest_trainer()
        if trainer is None:  # a hint beside the button, not an error: nothing went wrong
            return None, in_language(NOTHING_TO_SAVE, lang)
        try:
            path = session.files.new_path(f"{trainer.run_id}-epoch-{trainer.epoch:04d}.safetensors")
            trainer.save(str(path))
            try:
                session.files.add(path, make_room=True)
            except QuotaError:
                path.unlink(missing_ok=True)
                raise
            download = session.files.add(processing_utils.save_file_to_cache(path, self.cache_dir), copy_of=path)
        except QuotaError as e:
            return gr.skip(), f"✗ {e}"
        number = session.runs[-1].number
        saved = {"zh": f"已保存第 {number} 次训练（第 {trainer.epoch} 个周期）",
                 "en": f"saved epoch {trainer.epoch} of run #{number}"}
        return str(download), saved.get(lang, f"{saved['en']} · 已保存")

    def on_upload_checkpoint(self, request: gr.Request, file: str | None = None) -> list:
        """Load a checkpoint to write with or to resume; its settings fill the form."""
        if not file:
            return [f"✗ send a .safetensors checkpoint file saved by charrnn (Save, or `python -m charrnn train "
                    f"--save`), at most {UPLOAD_MAX_CHECKPOINT_BYTES // 2**20} MB"] + [gr.skip()] * len(form.NAMES)
        session = self.session(request)
        one_thread()
        try:
            ck = load_checkpoint(file, max_bytes=UPLOAD_MAX_CHECKPOINT_BYTES)
        except CheckpointError as e:
            return [f"✗ {e}"] + [gr.skip()] * len(form.NAMES)
        finally:
            Path(file).unlink(missing_ok=True)  # the weights are in memory now; the upload is not kept
        session.loaded = ck
        values: dict[str, Any] = {**form.config_to_form(ck.config), "resume": True}
        own_text = ck.config.corpus not in NAMED
        msg = (f"✓ loaded {ck.config.label()} · epoch {ck.epoch} · vocabulary {len(ck.vocab)} · corpus "
               f"{describe_source(ck.config.corpus)}. Write with it below, or press Train to resume it (epochs = how "
               f"many more){': upload that text first' if own_text else ''}.")
        return [msg] + [values.get(n, gr.skip()) for n in form.NAMES]

    def on_loaded_prefixes(self, write_prefix: str, next_prefix: str, request: gr.Request) -> tuple:
        """After a checkpoint is loaded: the Write prefix and the next-character prefix become the checkpoint's
        own first prefix (words of its text, which its run sampled from) where the model has never seen one of
        their characters (分开 for a model of The Time Machine), as an upload of a text does for the samples."""
        ck = self.session(request).loaded
        first = next((p for p in ck.config.prefixes if p and not ck.vocab.unknown(p)), None) if ck else None
        if first is None:
            return gr.skip(), gr.skip(), gr.skip()
        stale = [not isinstance(p, str) or not p or bool(ck.vocab.unknown(p)) for p in (write_prefix, next_prefix)]
        if not any(stale):
            return gr.skip(), gr.skip(), gr.skip()
        return (*(first if s else gr.skip() for s in stale),
                f"前缀 · prefix set to “{first}”, a prefix of the checkpoint's text (the model has never seen "
                "the characters of the one before)")

    def on_upload_text(self, path: str | None, prefixes: str, request: gr.Request):
        """Keep the text for this session only; suggest prefixes from it when the current ones do not occur in it."""
        if not path:
            return gr.skip(), ""
        try:
            hold_upload(self.session(request), path)
            text = decode_bytes(Path(path).read_bytes(), Path(path).name)
        except (CorpusError, QuotaError, OSError) as e:
            return gr.skip(), f"✗ {e}"
        current = form.parse_prefixes(prefixes)
        if current and all(p in text for p in current):
            return gr.skip(), ""
        suggested = form.suggest_prefixes(text)
        return suggested, (f"前缀 · prefixes set to “{suggested}”, taken from the text's first words"
                           if suggested else "")
