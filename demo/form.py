"""The page's settings form, as its callers use it: ``check`` (everything a run needs) and the names of its parts.

The parts, each with one job and no gradio: ``demo.settings`` (the table of every setting, its defaults
and labels), ``demo.rules`` (form values to a TrainConfig and back, a message per setting not allowed),
``demo.links`` (a link's settings, read and written) and ``demo.languages`` (one side of "中文 · English").
``check`` also reads the corpus and checks the prefixes against it, so a run that passes it can start.
"""
from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field
from typing import Any, Mapping

from charrnn.batches import check_length
from charrnn.checkpoint import Checkpoint
from charrnn.config import TrainConfig
from charrnn.corpus import Corpus, CorpusError, cached_corpus, describe_unknown, from_file
from charrnn.threads import one_thread
# The form's names as its callers use them (``form.NAMES``, ``form.to_query``...): one door to its parts.
from demo.languages import LANGS  # noqa: F401
from demo.links import LINK_NAMES, from_query, lang_of, to_query  # noqa: F401
from demo.rules import config_to_form, file_path, form_to_config, parse_prefixes, preset_form  # noqa: F401
from demo.settings import BY_NAME, DEFAULTS, NAMES, PAGE_PRED_PERIOD, SETTINGS, Setting, choice_labels, complete  # noqa: F401


# ---------------------------------------------------------------- everything a run needs
@dataclass
class Checked:
    """The outcome of ``check``: a config and corpus ready to train, or the problems by setting."""
    config: TrainConfig | None = None
    corpus: Corpus | None = None
    resume: bool = False
    problems: dict[str, str] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.problems


def check(values: Mapping[str, Any], loaded: Checkpoint | None = None) -> Checked:
    """Check every setting, read the corpus, check its length and the prefixes against its vocabulary.

    ``loaded`` is the session's uploaded checkpoint (needed when ``resume`` is ticked).
    """
    one_thread()  # torch work outside a training run uses one thread (see charrnn.threads)
    v = complete(values)
    config, problems = form_to_config(v)
    if problems:
        return Checked(problems=problems)
    resume = bool(v["resume"])
    if resume and loaded is None:
        return Checked(problems={"resume": "upload a checkpoint first, or untick resume"})
    where = "corpus_file" if v["corpus"] == "upload" else "corpus"
    try:
        corpus = (from_file(config.corpus, max_chars=config.max_chars) if where == "corpus_file"
                  else cached_corpus(config.corpus, config.max_chars))
        vocab = loaded.vocab if resume else corpus.vocab
        if resume and vocab.unknown(corpus.text):
            raise CorpusError("the text has characters the checkpoint's model has never seen: "
                              + describe_unknown(vocab.unknown(corpus.text)))
        check_length(len(corpus), config.batch_size, config.num_steps, config.sampling)
    except CorpusError as e:
        return Checked(problems={where: str(e)})
    except Exception as e:  # a fault, not the text: said beside Train (a press that hangs says nothing), and logged
        logging.getLogger(__name__).exception("reading the corpus for a run failed")
        return Checked(problems={where: f"the text could not be read ({type(e).__name__}: {e}): press Train again, "
                                        "or pick another corpus"})
    unknown = vocab.unknown("".join(config.prefixes))
    if unknown:
        return Checked(problems={"prefixes": "not in the corpus's vocabulary: " + describe_unknown(unknown)
                                 + "; use characters that occur in the training text"})
    return Checked(config=config, corpus=corpus, resume=resume)


# ---------------------------------------------------------------- an uploaded text
_WORD = re.compile(r"[^\s\W\d_]+", re.UNICODE)
_CJK = re.compile(r"[\u3400-\u9fff\uf900-\ufaff]")


def suggest_prefixes(text: str, count: int = 2) -> str:
    """Prefixes for the samples taken from a text's first words (Chinese words: their first 2 characters)."""
    words: list[str] = []
    for match in _WORD.finditer(text[:20_000]):
        word = match.group()
        word = word[:2] if _CJK.match(word) else word[:12]
        if word not in words:
            words.append(word)
        if len(words) == count:
            break
    return ", ".join(words)
