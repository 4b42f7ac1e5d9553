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
from charrnn.corpus import NAMED, TEXT_ID, CorpusError, decode_bytes, describe_source
from charrnn.files import QuotaError
from charrnn.lab import Lab, Session
from charrnn.threads import one_thread
from demo.languages import either, in_language
from demo.problems import in_page
from demo.renders import renders_of
from demo.training import hold_upload

UPLOAD_MAX_CHECKPOINT_BYTES = 64 * 1024 * 1024


NO_CHECKPOINT = (f"send a .safetensors checkpoint file saved by charrnn (Save, or `python -m charrnn train --save`), "
                 f"at most {UPLOAD_MAX_CHECKPOINT_BYTES // 2**20} MB")
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
        session = self.session(request)
        lang = renders_of(session).lang
        if not file:
            return [f"✗ {in_page(NO_CHECKPOINT, lang)}"] + [gr.skip()] * len(form.NAMES)
        one_thread()
        try:
            ck = load_checkpoint(file, max_bytes=UPLOAD_MAX_CHECKPOINT_BYTES)
        except CheckpointError as e:
            return [f"✗ {in_page(str(e), lang)}"] + [gr.skip()] * len(form.NAMES)
        finally:
            Path(file).unlink(missing_ok=True)  # the weights are in memory now; the upload is not kept
        session.loaded = ck
        values: dict[str, Any] = {**form.config_to_form(ck.config), "resume": True}
        own_text = ck.config.corpus not in NAMED
        source = describe_source(ck.config.corpus)
        m = TEXT_ID.fullmatch(ck.config.corpus)
        source_zh = f"自己的一段文本（sha256 {m[1][:12]}…，{int(m[2]):,} 个字）" if m else source
        zh = (f"已载入 {ck.config.label()}，第 {ck.epoch} 个周期，{len(ck.vocab)} 个字符，语料 {source_zh}。可以在下面"
              f"用它写作，或点“训练”接着训练（迭代周期 = 再训练多少个）{'：请先上传那段文本' if own_text else ''}。")
        en = (f"loaded {ck.config.label()} · epoch {ck.epoch} · vocabulary {len(ck.vocab)} · corpus {source}. Write "
              f"with it below, or press Train to resume it (epochs = how many more)"
              f"{': upload that text first' if own_text else ''}.")
        msg = "✓ " + either(zh, en, lang, sep="  \n")
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
        lang = renders_of(self.session(request)).lang
        return (*(first if s else gr.skip() for s in stale),
                either(f"前缀改成了“{first}”：检查点那段文本的前缀（模型没见过原来前缀里的字）",
                       f"prefix set to “{first}”, a prefix of the checkpoint's text (the model has never seen the "
                       "characters of the one before)", lang))

    def on_upload_text(self, path: str | None, prefixes: str, request: gr.Request):
        """Keep the text for this session only; suggest prefixes from it when the current ones do not occur in it."""
        if not path:
            return gr.skip(), ""
        lang = renders_of(self.session(request)).lang
        try:
            hold_upload(self.session(request), path)
            text = decode_bytes(Path(path).read_bytes(), Path(path).name)
        except (CorpusError, QuotaError, OSError) as e:
            return gr.skip(), f"✗ {in_page(str(e), lang)}"
        current = form.parse_prefixes(prefixes)
        if current and all(p in text for p in current):
            return gr.skip(), ""
        suggested = form.suggest_prefixes(text)
        return suggested, (either(f"前缀改成了“{suggested}”：取自这段文本开头的词",
                                  f"prefixes set to “{suggested}”, taken from the text's first words", lang)
                           if suggested else "")
