"""The page's settings: one table, the rules that check them, and the way to and from a TrainConfig.

No gradio here, so every rule is tested without a server. ``SETTINGS`` lists the settings in the order
of the ``/train`` API's parameters (their names are the API's and the URL's). ``form_to_config`` turns
form values into a TrainConfig and a message per setting that is not allowed; ``config_to_form`` goes
back (the presets, an uploaded checkpoint and a link's settings all fill the form through it);
``check`` also reads the corpus and checks the prefixes against it, so a run that passes it can start.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Mapping

from charrnn.checkpoint import Checkpoint
from charrnn.config import PRESETS, TrainConfig
from charrnn.corpus import NAMED, Corpus, CorpusError, cached_corpus, describe_unknown, from_file
from charrnn.batches import check_length
from charrnn.threads import one_thread

PAGE_PRED_PERIOD = 10  # on the page samples change while people watch; the CLI keeps the chapter's 50


@dataclass(frozen=True)
class Setting:
    """One setting of the form: its API/URL name, its label and hint, its widget and its limits."""
    name: str
    label: str                      # 中文 · English
    hint: str
    kind: str                       # int, float, bool, choice, text, file, slider
    default: Any
    choices: tuple[tuple[str, Any], ...] = ()
    low: float | None = None        # the smallest value the page allows (None: the library's rule)
    high: float | None = None       # the largest value the page allows, where it is below the library's
    step: float | None = None       # a slider's step

    @property
    def values(self) -> tuple[Any, ...]:
        return tuple(v for _, v in self.choices)


_chapter = TrainConfig()
CORPUS_CHOICES = (("周杰伦歌词 · Jay Chou lyrics", "jaychou"), ("时间机器 · The Time Machine", "timemachine"),
                  ("离线语料 · offline (Python docstrings)", "offline"), ("上传 .txt · upload a .txt", "upload"))
MODEL_CHOICES = (("从零开始 · from scratch", "scratch"), ("nn.RNN", "concise"))

SETTINGS: tuple[Setting, ...] = (
    Setting("corpus", "语料 · corpus", "the text to learn from; upload any UTF-8 .txt up to 10 MiB", "choice",
            "jaychou", CORPUS_CHOICES),
    Setting("corpus_file", "上传文本 · upload a .txt", "a UTF-8 text file, with corpus = upload", "file", None),
    Setting("max_chars", "字符数 · characters used", "first N characters (the chapter: 10,000); 0 = the whole text",
            "int", _chapter.max_chars, low=0),
    Setting("model", "模型 · model", "from scratch: explicit W_xh, W_hh, W_hq; nn.RNN: torch's layer + Linear",
            "choice", _chapter.model, MODEL_CHOICES),
    Setting("sampling", "采样 · sampling", "random resets the state per minibatch; consecutive carries it",
            "choice", _chapter.sampling, (("随机 · random", "random"), ("相邻 · consecutive", "consecutive"))),
    Setting("optimizer", "优化器 · optimizer", "the chapter: SGD from scratch, Adam for nn.RNN", "choice",
            _chapter.optimizer, (("SGD", "sgd"), ("Adam", "adam"))),
    Setting("lr", "学习率 · learning rate", "chapter: 100 (SGD), 0.001 (Adam)", "float", _chapter.lr),
    Setting("clip", "梯度裁剪 · clip gradients", "untick to watch what clipping prevents", "bool", True),
    Setting("theta", "裁剪阈值 θ · clipping threshold", "rescale g when ‖g‖ > θ (chapter: 0.01)", "float",
            _chapter.clip_theta),
    Setting("epochs", "迭代周期 · epochs", "passes over the text (when resuming: how many more)", "int",
            _chapter.epochs, high=5000),
    Setting("num_hiddens", "隐藏单元 · hidden units", "size h of the state", "int", _chapter.num_hiddens,
            high=1024),
    Setting("batch_size", "批量大小 · batch size", "windows per minibatch", "int", _chapter.batch_size, high=512),
    Setting("num_steps", "时间步数 · time steps", "characters per window", "int", _chapter.num_steps, high=200),
    Setting("seed", "随机种子 · seed", "same seed, same run", "int", _chapter.seed),
    Setting("prefixes", "前缀 · prefixes", "samples start from these; separate with commas", "text",
            ", ".join(_chapter.prefixes)),
    Setting("pred_len", "样本长度 · sample length", "characters written after each prefix", "int",
            _chapter.pred_len, high=500),
    Setting("pred_period", "采样间隔 · sample every", "epochs between samples (and at the end of every run)",
            "int", PAGE_PRED_PERIOD),
    Setting("decoding", "解码 · decoding of the samples", "greedy argmax loops; sampling with a temperature does not",
            "choice", "greedy", (("贪心 · greedy (chapter)", "greedy"), ("采样 · sample", "sample"))),
    Setting("temperature", "温度 · temperature", "below 1: safer; above 1: wilder", "slider", 1.0,
            low=0.05, high=2.0, step=0.05),
    Setting("top_k", "top-k", "sample among the k likeliest; 0 = all", "int", 0, low=0),
    Setting("resume", "继续训练上传的检查点 · resume the uploaded checkpoint", "upload one in Checkpoints below",
            "bool", False),
)
BY_NAME: dict[str, Setting] = {s.name: s for s in SETTINGS}
NAMES: tuple[str, ...] = tuple(BY_NAME)
DEFAULTS: dict[str, Any] = {s.name: s.default for s in SETTINGS}
# Settings whose config field has another name (the messages use the setting's name).
FIELD_OF = {"theta": "clip_theta"}
SETTING_OF = {v: k for k, v in FIELD_OF.items()}


# ---------------------------------------------------------------- form values -> config
def parse_prefixes(text: str | None) -> list[str]:
    """Prefixes separated by commas (, ，、) or new lines; spaces inside a prefix are kept."""
    return [p.strip() for p in re.split(r"[,，、\n]", text or "") if p.strip()]


def _whole(value: Any) -> Any:
    """2.0 -> 2 (a number box sends floats); 0.5 stays 0.5 and is refused by the integer rule."""
    return int(value) if isinstance(value, float) and value.is_integer() else value


def complete(values: Mapping[str, Any]) -> dict[str, Any]:
    """Every setting: the given values over the defaults; unknown names are dropped."""
    return {name: values.get(name, DEFAULTS[name]) for name in NAMES}


def form_to_config(values: Mapping[str, Any]) -> tuple[TrainConfig, dict[str, str]]:
    """A TrainConfig (unchecked) from form values, and every problem keyed by the setting it belongs to."""
    v = complete(values)
    sample = v["decoding"] == "sample"
    config = TrainConfig.unchecked(
        corpus=str(v["corpus_file"]) if v["corpus"] == "upload" and v["corpus_file"] else v["corpus"],
        max_chars=None if v["max_chars"] in (None, 0) else _whole(v["max_chars"]),
        model=v["model"], sampling=v["sampling"], optimizer=v["optimizer"], lr=v["lr"],
        clip_theta=v["theta"] if v["clip"] else None, epochs=_whole(v["epochs"]),
        num_hiddens=_whole(v["num_hiddens"]), batch_size=_whole(v["batch_size"]),
        num_steps=_whole(v["num_steps"]), seed=_whole(v["seed"]), prefixes=parse_prefixes(v["prefixes"]),
        pred_len=_whole(v["pred_len"]), pred_period=_whole(v["pred_period"]),
        temperature=v["temperature"] if sample else 0.0,
        top_k=None if not sample or v["top_k"] in (None, 0) else _whole(v["top_k"]))
    problems: dict[str, str] = {}
    for s in SETTINGS:  # the page's own limits first: they are the ones that hold here
        message = _page_limit(s, v[s.name])
        if message:
            problems[s.name] = message
    for name, message in config.problems().items():
        setting = SETTING_OF.get(name, name)
        problems.setdefault(setting, message.replace(f"{name}=", f"{setting}=", 1))
    for s in SETTINGS:  # a fraction where the library did not already say what is allowed (top_k when greedy)
        if s.kind == "int" and v[s.name] is not None and not _is_whole(v[s.name]):
            problems.setdefault(s.name, f"{s.name}={v[s.name]!r} is not allowed: a whole number")
    if v["corpus"] not in BY_NAME["corpus"].values:
        problems["corpus"] = f"corpus={v['corpus']!r} is not allowed: choose one of {', '.join(BY_NAME['corpus'].values)}"
    elif v["corpus"] == "upload" and not v["corpus_file"]:
        problems["corpus_file"] = "choose a UTF-8 .txt file to upload, or pick another corpus"
    for name in ("clip", "resume"):
        if not isinstance(v[name], bool):
            problems[name] = f"{name}={v[name]!r} is not allowed: true or false"
    if v["decoding"] not in ("greedy", "sample"):
        problems["decoding"] = f"decoding={v['decoding']!r} is not allowed: choose greedy or sample"
    return config, problems


def _page_limit(s: Setting, value: Any) -> str | None:
    """What the page allows beyond the library's rules (a shared server allows less)."""
    if s.kind in ("int", "float", "slider") and isinstance(value, (int, float)) and not isinstance(value, bool):
        if s.high is not None and value > s.high:
            return f"{s.name}={value:g} is not allowed on this page: at most {s.high:,g}"
        if s.low is not None and value < s.low:
            return f"{s.name}={value:g} is not allowed on this page: at least {s.low:,g}"
    return None


def _is_whole(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) or isinstance(value, float) and value.is_integer()


def config_to_form(config: TrainConfig) -> dict[str, Any]:
    """The form values that give ``config`` (corpus_file and resume are left to the caller)."""
    named = config.corpus in NAMED
    return dict(
        corpus=config.corpus if named else "upload", max_chars=config.max_chars or 0, model=config.model,
        sampling=config.sampling, optimizer=config.optimizer, lr=config.lr, clip=config.clip_theta is not None,
        theta=config.clip_theta if config.clip_theta is not None else DEFAULTS["theta"], epochs=config.epochs,
        num_hiddens=config.num_hiddens, batch_size=config.batch_size, num_steps=config.num_steps, seed=config.seed,
        prefixes=", ".join(config.prefixes), pred_len=config.pred_len, pred_period=config.pred_period,
        decoding="sample" if config.temperature > 0 else "greedy",
        temperature=config.temperature if config.temperature > 0 else DEFAULTS["temperature"],
        top_k=config.top_k or 0)


def preset_form(name: str) -> dict[str, Any]:
    """The form for one of the chapter's setups: its values, the chapter's corpus, the page's sample period."""
    return {**config_to_form(TrainConfig(**PRESETS[name])), "pred_period": PAGE_PRED_PERIOD, "resume": False}


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

