"""The page's settings: one table, the rules that check them, and the way to and from a TrainConfig.

No gradio here, so every rule is tested without a server. ``SETTINGS`` lists the settings in the order
of the ``/train`` API's parameters (their names are the API's and the URL's). ``form_to_config`` turns
form values into a TrainConfig and a message per setting that is not allowed; ``config_to_form`` goes
back (the presets, an uploaded checkpoint and a link's settings all fill the form through it);
``check`` also reads the corpus and checks the prefixes against it, so a run that passes it can start.
``from_query`` reads a link's settings by the same rules and ``to_query`` writes one; every setting has its
label and hint in Chinese and English (``Setting.text``, ``choice_labels``, ``lang_of``).
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Mapping
from urllib.parse import quote, urlencode

from charrnn.checkpoint import Checkpoint
from charrnn.config import PRESETS, TrainConfig
from charrnn.models import KINDS, MAX_LAYERS
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
    hint_zh: str = ""               # the hint in Chinese (``hint`` is the English one)

    @property
    def values(self) -> tuple[Any, ...]:
        return tuple(v for _, v in self.choices)

    def text(self, lang: str) -> tuple[str, str]:
        """(label, hint) in ``lang``: "both" (中文 · English, the default), "zh" or "en" (one language)."""
        zh, en = split_text(self.label)
        if lang == "both":
            return self.label, f"{self.hint_zh} · {self.hint}"
        if lang == "zh":
            return zh, self.hint_zh
        if lang == "en":
            return en, self.hint
        raise ValueError(f"lang={lang!r} is not allowed: choose one of {', '.join(LANGS)}")


_chapter = TrainConfig()
CORPUS_CHOICES = (("周杰伦歌词 · Jay Chou lyrics", "jaychou"), ("时间机器 · The Time Machine", "timemachine"),
                  ("离线语料 · offline (Python docstrings)", "offline"), ("上传 .txt · upload a .txt", "upload"))
MODEL_CHOICES = tuple((kind.label, name) for name, kind in KINDS.items())  # charrnn.models.KINDS: the one table

SETTINGS: tuple[Setting, ...] = (
    Setting("corpus", "语料 · corpus", "the text to learn from; upload any UTF-8 .txt up to 10 MiB", "choice",
            "jaychou", CORPUS_CHOICES,
            hint_zh="用来训练的文本；也可以上传自己的 UTF-8 文本文件（.txt，最大 10 MiB）"),
    Setting("corpus_file", "上传文本 · upload a .txt", "a UTF-8 text file, with corpus = upload", "file", None,
            hint_zh="UTF-8 编码的文本文件；语料选“上传 .txt”时使用"),
    Setting("max_chars", "字符数 · characters used", "first N characters (the chapter: 10,000); 0 = the whole text",
            "int", _chapter.max_chars, low=0,
            hint_zh="只用文本开头的这么多个字符（书中取 10,000 个）；0 表示用全文"),
    Setting("model", "模型 · model", "RNN (the chapter), GRU (6.7) or LSTM (6.8); from scratch: the book's formulas "
            "with explicit weights; nn.*: torch's layer + Linear", "choice", _chapter.model, MODEL_CHOICES,
            hint_zh="RNN（本章）、GRU（6.7 节）或 LSTM（6.8 节）；从零开始：书中的公式和手写参数；"
                    "nn.*：PyTorch 的循环层加一个全连接层"),
    Setting("sampling", "采样 · sampling", "random resets the state per minibatch; consecutive carries it",
            "choice", _chapter.sampling, (("随机 · random", "random"), ("相邻 · consecutive", "consecutive")),
            hint_zh="随机采样每个小批量都重新初始化隐状态；相邻采样把隐状态传给下一个小批量"),
    Setting("optimizer", "优化器 · optimizer", "the chapter: SGD from scratch, Adam for nn.RNN", "choice",
            _chapter.optimizer, (("SGD", "sgd"), ("Adam", "adam")),
            hint_zh="书中：从零开始实现用 SGD，nn.RNN 用 Adam"),
    Setting("lr", "学习率 · learning rate", "chapter: 100 (SGD), 0.001 (Adam)", "float", _chapter.lr,
            hint_zh="书中取 100（SGD）或 0.001（Adam）"),
    Setting("clip", "梯度裁剪 · clip gradients", "untick to watch what clipping prevents", "bool", True,
            hint_zh="取消勾选，看看梯度裁剪防止了什么（梯度爆炸）"),
    Setting("theta", "裁剪阈值 θ · clipping threshold", "rescale g when ‖g‖ > θ (chapter: 0.01)", "float",
            _chapter.clip_theta,
            hint_zh="梯度范数 ‖g‖ 超过 θ 时，把梯度 g 按比例缩小到范数为 θ（书中取 0.01）"),
    Setting("epochs", "迭代周期 · epochs", "passes over the text (when resuming: how many more)", "int",
            _chapter.epochs, high=5000,
            hint_zh="把整个文本训练多少遍（继续训练时：再训练多少个迭代周期）"),
    Setting("num_hiddens", "隐藏单元 · hidden units", "size h of the state", "int", _chapter.num_hiddens,
            high=1024,
            hint_zh="隐状态向量的长度，即隐藏单元个数"),
    Setting("batch_size", "批量大小 · batch size", "windows per minibatch", "int", _chapter.batch_size, high=512,
            hint_zh="每个小批量包含多少个序列样本"),
    Setting("num_steps", "时间步数 · time steps", "characters per window", "int", _chapter.num_steps, high=200,
            hint_zh="每个序列样本包含多少个字符"),
    Setting("seed", "随机种子 · seed", "same seed, same run", "int", _chapter.seed,
            hint_zh="种子相同，训练结果也相同"),
    Setting("prefixes", "前缀 · prefixes", "samples start from these; separate with commas", "text",
            ", ".join(_chapter.prefixes),
            hint_zh="生成文本时从这些前缀开始续写；多个前缀用逗号隔开"),
    Setting("pred_len", "样本长度 · sample length", "characters written after each prefix", "int",
            _chapter.pred_len, high=500,
            hint_zh="每个前缀后面生成多少个字符"),
    Setting("pred_period", "采样间隔 · sample every", "epochs between samples (and at the end of every run)",
            "int", PAGE_PRED_PERIOD,
            hint_zh="每隔多少个迭代周期生成一次样本（每次训练结束时也会生成）"),
    Setting("decoding", "解码 · decoding of the samples", "greedy argmax loops; sampling with a temperature does not",
            "choice", "greedy", (("贪心 · greedy (chapter)", "greedy"), ("采样 · sample", "sample")),
            hint_zh="贪心解码每步取概率最大的字符，容易陷入循环；按温度采样则不会"),
    Setting("temperature", "温度 · temperature", "below 1: safer; above 1: wilder", "slider", 1.0,
            low=0.05, high=2.0, step=0.05,
            hint_zh="小于 1：更稳妥；大于 1：更大胆"),
    Setting("top_k", "top-k", "sample among the k likeliest; 0 = all", "int", 0, low=0,
            hint_zh="只在概率最大的 k 个字符中采样；0 表示不限制"),
    Setting("resume", "继续训练上传的检查点 · resume the uploaded checkpoint", "upload one in Checkpoints below",
            "bool", False,
            hint_zh="先在下方“检查点”中上传一个检查点"),
    # last, so that API callers passing settings by position keep working
    Setting("num_layers", "层数 · layers", "stacked recurrent layers (6.9); the nn.* models only", "int", 1,
            low=1, high=MAX_LAYERS, hint_zh="堆叠几层循环层（6.9 节深度循环神经网络）；只用于 nn.* 模型"),
)
BY_NAME: dict[str, Setting] = {s.name: s for s in SETTINGS}
NAMES: tuple[str, ...] = tuple(BY_NAME)
DEFAULTS: dict[str, Any] = {s.name: s.default for s in SETTINGS}
# Settings whose config field has another name (the messages use the setting's name).
FIELD_OF = {"theta": "clip_theta"}
SETTING_OF = {v: k for k, v in FIELD_OF.items()}


# ---------------------------------------------------------------- languages
LANGS = ("both", "zh", "en")  # both side by side (the default), Chinese only, English only
_SEP = " · "


def split_text(text: str) -> tuple[str, str]:
    """("中文", "English") from a "中文 · English" label; a label in no one language ("top-k", "nn.RNN") is both."""
    zh, sep, en = text.partition(_SEP)
    return (zh, en) if sep else (text, text)


def choice_labels(setting: Setting, lang: str) -> list[tuple[str, Any]]:
    """A choice setting's (label, value) pairs in ``lang`` ("both" keeps the "中文 · English" labels)."""
    if lang not in LANGS:
        raise ValueError(f"lang={lang!r} is not allowed: choose one of {', '.join(LANGS)}")
    if lang == "both":
        return list(setting.choices)
    side = 0 if lang == "zh" else 1
    return [(split_text(label)[side], value) for label, value in setting.choices]


def lang_of(params: Mapping[str, Any]) -> str:
    """The interface language a link asks for: ``lang=zh`` or ``lang=en`` (also zh-CN, en-US...); else "both"."""
    word = _one(params.get("lang", "")).strip().lower().replace("_", "-")
    if word in LANGS:
        return word
    for lang in ("zh", "en"):
        if word.startswith(lang + "-"):
            return lang
    return "both"


def _one(value: Any) -> str:
    """One query value as text (a repeated parameter: its last value)."""
    if isinstance(value, (list, tuple)):
        value = value[-1] if value else ""
    return "" if value is None else str(value)


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
        num_hiddens=_whole(v["num_hiddens"]), num_layers=_whole(v["num_layers"]), batch_size=_whole(v["batch_size"]),
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
        problems["corpus"] = (f"corpus={v['corpus']!r} is not allowed: "
                              f"choose one of {', '.join(BY_NAME['corpus'].values)}")
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
        num_hiddens=config.num_hiddens, num_layers=config.num_layers, batch_size=config.batch_size,
        num_steps=config.num_steps, seed=config.seed,
        prefixes=", ".join(config.prefixes), pred_len=config.pred_len, pred_period=config.pred_period,
        decoding="sample" if config.temperature > 0 else "greedy",
        temperature=config.temperature if config.temperature > 0 else DEFAULTS["temperature"],
        top_k=config.top_k or 0)


def preset_form(name: str) -> dict[str, Any]:
    """The form for one of the chapter's setups: its values, the chapter's corpus, the page's sample period."""
    return {**config_to_form(TrainConfig(**PRESETS[name])), "pred_period": PAGE_PRED_PERIOD, "resume": False}


# ---------------------------------------------------------------- a link's settings
# ?preset=scratch-consecutive&lr=50&clip=off&epochs=120: a preset first, then any setting by its name.
LINK_IGNORED = ("lesson", "lang", "class", "mode", "__theme")  # parameters the app reads itself
NOT_FROM_LINK = ("corpus_file", "resume")                      # a file, or a checkpoint, cannot come with a link
LINK_NAMES: tuple[str, ...] = tuple(n for n in NAMES if n not in NOT_FROM_LINK)
TRUE_WORDS = ("on", "true", "yes", "1")
FALSE_WORDS = ("off", "false", "no", "0")
_INT_TEXT = re.compile(r"[+-]?\d+")
_NUMBER_TEXT = re.compile(r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?")


class _Unreadable(ValueError):
    """A link's text that is no value of its setting's kind; the message says what is allowed."""


def _number(text: str) -> int | float | None:
    """A number from a link ("50" stays an int, so a message says lr=-1 like the form's); None if none."""
    text = text.strip()
    if _INT_TEXT.fullmatch(text):
        return int(text)
    if _NUMBER_TEXT.fullmatch(text):
        return float(text)
    return None


def _read(s: Setting, text: str) -> Any:
    """A setting's value from the text of a link; raises _Unreadable saying what is allowed."""
    word = text.strip()
    if s.kind == "int":
        if not _INT_TEXT.fullmatch(word):
            raise _Unreadable("a whole number")
        return int(word)
    if s.kind in ("float", "slider"):
        value = _number(word)
        if value is None:
            raise _Unreadable("a number")
        return value
    if s.kind == "bool":
        if word.lower() in TRUE_WORDS + FALSE_WORDS:
            return word.lower() in TRUE_WORDS
        raise _Unreadable("on or off (also true/false, yes/no, 1/0)"
                          + (", or a number: the threshold θ, with clipping on" if s.name == "clip" else ""))
    if s.kind == "choice":
        match = next((v for v in s.values if str(v).lower() == word.lower()), None)
        if s.name == "corpus":
            named = [v for v in s.values if v != "upload"]
            if match == "upload":
                raise _Unreadable("a link cannot bring a file; choose upload on the page, or one of "
                                  + ", ".join(named))
            if match is None:
                raise _Unreadable(f"choose one of {', '.join(named)} (a text of your own: upload it on the page)")
        return match if match is not None else text  # an unknown word: the form's rule says what is allowed
    if s.kind == "text":
        return text if parse_prefixes(text) else ""
    raise _Unreadable("cannot come from a link")


def from_query(params: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, str]]:
    """The form values (every setting) a link's query parameters give, and the problems by setting name.

    ``preset`` (a name of PRESETS) is applied first, then every setting the link names, read as its kind and
    checked by the form's rules; a value that is not allowed keeps the default (or the preset's value) and
    gets the form's message. ``clip=off`` turns clipping off, ``clip=<number>`` turns it on with that θ.
    Problems that belong to no setting are under "preset" and "link". lesson, lang, class, mode and
    __theme are the app's and are ignored here; corpus_file and resume cannot come from a link.
    """
    params = {str(k): _one(v) for k, v in params.items()}
    problems: dict[str, str] = {}
    base = dict(DEFAULTS)
    if "preset" in params:
        name = params["preset"].strip()
        if name in PRESETS:
            base = complete(preset_form(name))
        else:
            problems["preset"] = f"preset={params['preset']!r} is not allowed: choose one of {', '.join(PRESETS)}"
    unknown = [k for k in params if k != "preset" and k not in LINK_IGNORED and k not in BY_NAME]
    for name in NOT_FROM_LINK:
        if name in params:
            problems[name] = (f"{name} cannot come from a link: "
                              + ("choose the file on the page" if name == "corpus_file"
                                 else "upload a checkpoint on the page, then tick resume"))
    if unknown:
        allowed = ", ".join(("preset",) + LINK_NAMES + LINK_IGNORED)
        problems["link"] = (f"unknown parameter{'s' if len(unknown) > 1 else ''} in the link: "
                            f"{', '.join(map(repr, unknown))}; allowed: {allowed}")

    given: dict[str, Any] = {}   # the link's values that have been read, by setting
    theta_from_clip = False
    for s in SETTINGS:
        if s.name not in params or s.name in NOT_FROM_LINK:
            continue
        text = params[s.name]
        if s.name == "clip" and text.strip().lower() not in TRUE_WORDS + FALSE_WORDS and _number(text) is not None:
            given["clip"] = True  # clip=0.05: clipping on with θ = 0.05
            if "theta" in params:
                problems["clip"] = f"clip={text!r} and theta={params['theta']!r} both set θ: give only one of them"
            else:
                given["theta"], theta_from_clip = _number(text), True
            continue
        try:
            given[s.name] = _read(s, text)
        except _Unreadable as e:
            problems[s.name] = f"{s.name}={text!r} is not allowed: {e}"

    while True:  # the form's rules; a setting that breaks one keeps its value from before the link
        values = {**base, **given}
        found = form_to_config(values)[1]  # as on the form, θ is not checked while clipping is off
        bad = {k: m for k, m in found.items() if k in given}
        if not bad:
            break
        for name, message in bad.items():
            if name == "theta" and theta_from_clip:
                problems["clip"] = message.replace("theta=", "clip=", 1)
                given.pop("clip", None)
            else:
                problems[name] = message
            del given[name]
    for name, value in given.items():  # a number box holds floats
        if BY_NAME[name].kind in ("float", "slider"):
            values[name] = float(value)
    return complete(values), problems


def _link_text(value: Any) -> str:
    if isinstance(value, bool):
        return "on" if value else "off"
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e15:
        return str(int(value))
    if isinstance(value, float):
        return repr(value)
    if value is None:
        return "0"  # max_chars / top_k: None means all, as 0 does
    text = str(value)
    return text if text.strip() else ","  # no prefixes: a lone comma, which survives a link (a blank value may not)


def _link_pairs(values: Mapping[str, Any], base: Mapping[str, Any]) -> list[tuple[str, str]]:
    pairs = []
    for name in LINK_NAMES:
        if values[name] != base[name]:  # θ too when clipping is off, if it was changed: the link keeps it
            pairs.append((name, _link_text(values[name])))
    return pairs


def to_query(values: Mapping[str, Any]) -> str:
    """A link's query (no "?") that gives ``values``: only what differs from the page's defaults, in table order.

    Where a preset plus its differences is shorter, ``preset=<name>`` comes first. ``clip=off`` when clipping
    is off (θ only if it was changed too); corpus_file and resume are never in a link.
    """
    v = complete(values)
    options = [_link_pairs(v, DEFAULTS)]
    options += [[("preset", name), *_link_pairs(v, complete(preset_form(name)))] for name in PRESETS]
    queries = [urlencode(pairs, quote_via=quote, safe=",") for pairs in options]
    return min(queries, key=len)  # the first of the shortest: no preset on a tie


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

