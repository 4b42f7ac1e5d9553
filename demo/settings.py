"""The page's settings: one table of every setting, its API/URL name, label, hint, widget, default and limits.

``SETTINGS`` lists them in the order of the ``/train`` API's parameters (their names are the API's and the
URL's); every setting has its label and hint in Chinese and English (``Setting.text``, ``choice_labels``).
No gradio here: the form's rules (``demo.rules``) and the links (``demo.links``) read the same table.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

from charrnn.config import TrainConfig
from charrnn.models import KINDS, MAX_LAYERS
from demo.languages import SEP, check_lang, in_language

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
        if check_lang(lang) == "both":
            return self.label, f"{self.hint_zh}{SEP}{self.hint}"
        return in_language(self.label, lang), self.hint_zh if lang == "zh" else self.hint


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
    Setting("decoding", "解码 · decoding", "greedy argmax loops; sampling with a temperature does not",
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
    Setting("validation", "留出比例 · held out", "share of the text's end not trained on, its perplexity drawn dashed "
            "(0 to 0.5; the chapter: 0)", "float", 0.0, low=0, high=0.5,
            hint_zh="文本末尾留出这一比例不参加训练，每个周期算一次它的困惑度（虚线）；0 到 0.5，书中为 0"),
    # shown only where training runs on a CUDA GPU (``demo.rules.trains_on_cuda``); refused elsewhere
    Setting("fast", "CUDA 图 · fast (CUDA graph)", "replay each training step as one CUDA graph: one launch "
            "instead of hundreds, several times faster on this GPU; the numbers may differ in their last digits",
            "bool", False,
            hint_zh="把每个训练步录成一个 CUDA 图重放：一次启动代替几百次，在这块 GPU 上快几倍；"
                    "数值的最后几位可能不同"),
)
BY_NAME: dict[str, Setting] = {s.name: s for s in SETTINGS}
NAMES: tuple[str, ...] = tuple(BY_NAME)
DEFAULTS: dict[str, Any] = {s.name: s.default for s in SETTINGS}
# Settings whose config field has another name (the messages use the setting's name).
FIELD_OF = {"theta": "clip_theta"}
SETTING_OF = {v: k for k, v in FIELD_OF.items()}


def complete(values: Mapping[str, Any]) -> dict[str, Any]:
    """Every setting: the given values over the defaults; unknown names are dropped."""
    return {name: values.get(name, DEFAULTS[name]) for name in NAMES}


def choice_labels(setting: Setting, lang: str) -> list[tuple[str, Any]]:
    """A choice setting's (label, value) pairs in ``lang`` ("both" keeps the "中文 · English" labels)."""
    check_lang(lang)
    return [(in_language(label, lang), value) for label, value in setting.choices]
