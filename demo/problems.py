"""Why a press started nothing, in the page's language.

The library (``charrnn``) says what is wrong in English; the page's own rules (``demo.rules``) already say it
"中文 · English". ``bilingual`` gives a library message its Chinese side, by the message's form (the values in it
kept as they are), so that ``in_page`` can show one side on a page in one language. A message of a form not
listed here stays English on every page.
"""
from __future__ import annotations

import re

from demo.languages import SEP, in_language

# What a setting allows (the tail of "name=value is not allowed: ..."), English -> Chinese.
ALLOWED = (
    (r"a number above 0 and at most (\S+)", r"大于 0、不超过 \1 的数"),
    (r"an integer from (\S+) to (\S+)", r"\1 到 \2 的整数"),
    (r"an integer of at least (\S+), or None for the whole text", r"不小于 \1 的整数（None：全文）"),
    (r"an integer of at least 1, or None for all characters", r"不小于 1 的整数（None：全部字符）"),
    (r"an integer of at least (\S+)", r"不小于 \1 的整数"),
    (r"a number above 0, or None for no clipping", r"大于 0 的数（None：不裁剪）"),
    (r"a number from 0 \(greedy\) to (\S+)", r"0（贪心）到 \1 的数"),
    (r"1 for model (\S+) \(the from-scratch models have one layer\); stack layers with a concise model",
     r"1（模型 \1 从零实现，只有一层）；要叠多层，请用简洁实现"),
    (r"choose one of (.+)", r"\1 之一"),
    (r"a corpus name or a file path", r"语料名或文件路径"),
    (r"true or false", r"true 或 false"),
)
# Whole messages, English -> Chinese.
MESSAGES = (
    (r"(\w+)=(.+?) is not allowed: (.+)", None),  # by ALLOWED
    (r"not in the corpus's vocabulary: (.+); use characters that occur in the training text",
     r"训练文本里没有这些字：\1；请用训练文本里有的字"),
    (r"choose a UTF-8 \.txt file to upload, or pick another corpus", r"请选择要上传的 UTF-8 .txt 文件，或换一个语料"),
    (r"upload a checkpoint first, or untick resume", r"请先上传检查点，或取消勾选“继续训练”"),
    (r"the text could not be read \((.+)\): press Train again, or pick another corpus",
     r"读不了这个文本（\1）：请再点一次“训练”，或换一个语料"),
    (r"fast needs a CUDA GPU, and this machine trains on the CPU: untick it",
     r"CUDA 图（fast）需要 CUDA GPU，这台机器用 CPU 训练：请取消勾选"),
    (r"the file (.+) looks binary \(it holds NUL bytes\): only UTF-8 text is allowed",
     r"文件 \1 像是二进制文件（含 NUL 字节）：只接受 UTF-8 文本"),
    (r"the file (.+) is empty: it needs some UTF-8 text", r"文件 \1 是空的：需要 UTF-8 文本"),
    (r"the file (.+) is not UTF-8 text \(byte (\d+) cannot be decoded\).*",
     r"文件 \1 不是 UTF-8 文本（第 \2 个字节无法解码）"),
    (r"the file (.+) is ([\d,]+) bytes; the limit is ([\d,]+) bytes.*", r"文件 \1 有 \2 字节，上限是 \3 字节"),
    (r"the prefix (.+) has (\d+) character\(s\) the model has never seen: (.+)\. Use characters from its "
     r"training text\.",
     r"前缀 \1 里有 \2 个模型没见过的字：\3。请用训练文本里的字"),
    (r"the prefix is empty: type at least one character", r"前缀是空的：请至少输入一个字"),
    (r"the prefix has ([\d,]+) characters; at most ([\d,]+) are allowed", r"前缀有 \1 个字，最多 \2 个"),
    (r"no run is training: press Train first", r"没有正在进行的训练：请先点“训练”"),
    (r"no run yet: press Train first", r"还没有训练过：请先点“训练”"),
    (r"the run is not paused: Pause it first.*", r"训练没有暂停：请先点“暂停”"),
    (r"a run is still training: it goes on by itself", r"训练还在进行，会自己继续"),
    (r"this run's model is released \(a newer run started\).*", r"这次训练的模型已释放（之后又开始了新的训练）"),
    (r"there is no run #(\d+) in this session", r"这个会话里没有第 \1 次训练"),
    (r"this page watches a class: it trains nothing", r"这个页面在观看全班的训练：它不训练"),
    (r"no run to export yet: press Train first", r"还没有可导出的训练：请先点“训练”"),
    (r"(\d+) more epochs is not allowed: a run trains at most 100000 epochs in all",
     r"不能再训练 \1 个周期：一次训练总共最多 100000 个周期"),
    # an uploaded checkpoint (charrnn.checkpoint), the file's name kept
    (r"(.+) is not a charrnn checkpoint(?:, or it is truncated)?: .*", r"\1 不是 charrnn 的检查点（或文件不完整）"),
    (r"(.+) is truncated: .*", r"\1 不完整：文件被截断了"),
    (r"(.+) is a safetensors file but not a charrnn checkpoint .*", r"\1 是 safetensors 文件，但不是 charrnn 的检查点"),
    (r"(.+) is a charrnn checkpoint of version (.+); this charrnn reads version (\S+)",
     r"\1 是第 \2 版的检查点；这个 charrnn 读第 \3 版"),
    (r"(.+) is (?:damaged|corrupted): .*", r"\1 已损坏"),
    (r"(.+) has invalid metadata: .*", r"\1 的元数据无效"),
    (r"(.+) does not fit a (\S+) model with (\d+) characters and (\d+) hidden units: .*",
     r"\1 与 \2 模型（\3 个字符、\4 个隐藏单元）对不上"),
    (r"(.+) is ([\d,]+) bytes; checkpoints above ([\d,]+) bytes are refused", r"\1 有 \2 字节，检查点最多 \3 字节"),
    (r"send a \.safetensors checkpoint file saved by charrnn \(Save, or `python -m charrnn train --save`\), at most "
     r"(\d+) MB",
     r"请上传 charrnn 保存的 .safetensors 检查点（“保存当前模型”或 `python -m charrnn train --save`），最大 \1 MB"),
    # a class's experiment (charrnn.experiments, charrnn.lab.Lab.join)
    (r"type a nickname to join \(1 to 20 characters\)", r"请输入昵称加入（1 到 20 个字符）"),
    (r"a nickname has at most (\d+) characters \(this one has (\d+)\)", r"昵称最多 \1 个字符（这个有 \2 个）"),
    (r"a nickname cannot hold control characters", r"昵称不能含控制字符"),
    (r"the nickname (.+) is taken in this class: choose another", r"昵称 \1 在这个班里已经有人用了：请换一个"),
    (r"this experiment has ended: ask your teacher for the next one", r"这个实验已结束：请向老师要下一个实验"),
    (r"this experiment has ended: your runs stay on your page", r"这个实验已结束：你的训练仍留在你的页面上"),
    (r"the teacher removed you from this experiment", r"老师已把你移出这个实验"),
    (r"join the experiment first: type a nickname", r"请先输入昵称加入实验"),
    (r"(\w+): choose a value from (\S+) to (\S+)", r"\1：请选 \2 到 \3 之间的值"),
    (r"choose a value from (\S+) to (\S+)", r"请选 \1 到 \2 之间的值"),
    (r"choose one of (.+)", r"请从 \1 中选一个"),
    (r"the teacher fixed it at (.+) for this experiment", r"老师在这个实验里把它定为 \1"),
    (r"(\w+): choose one of (.+)", r"\1：请从 \2 中选一个"),
    (r"(\w+): the teacher fixed it at (.+) for this experiment", r"\1：老师在这个实验里把它定为 \2"),
    (r"too many tries to join: wait a minute, then try again", r"尝试加入的次数太多：请等一分钟再试"),
    (r"the class (.+) is unknown, has ended or runs no experiment: ask your teacher for the link",
     r"班级 \1 不存在、已结束或没有实验：请向老师要链接"),
    (r"this is your own experiment: your students join it with the class link",
     r"这是你自己的实验：学生用班级链接加入"),
    (r"a run is training on this page: stop it first, then join", r"这个页面正在训练：请先停止，再加入"),
    (r"in the class's experiment every run trains (\d+) epochs: press Train for another run",
     r"全班实验里每次训练 \1 个周期：再点“训练”开始新的一次"),
    (r"in the class's experiment a run keeps its (.+): press Train again to try another value",
     r"全班实验里一次训练不改 \1：想试别的值，请再点“训练”"),
    (r"open an experiment first \(in the share panel\)", r"请先开始一个实验（在“全班一起看”里）"),
    (r"no student is called (.+) in this experiment", r"这个实验里没有叫 \1 的学生"),
    (r"no student has trained yet: nothing to export", r"还没有学生训练过：没有可导出的结果"),
    (r"type the question the class answers, e\.g\. which learning rate trains best\?",
     r"请输入全班要回答的问题，例如：哪个学习率训练得最好？"),
    (r"choose at least one setting the students may change", r"请至少选一项学生可以改的设置"),
    (r"an experiment trains a corpus every student has: .*",
     r"实验要用每个学生都有的语料：请选 jaychou、timemachine 或 offline，不要用上传的文本"),
    (r"the text has ([\d,]+) characters, too short for one minibatch of (.+?) with (\w+) sampling: it needs at "
     r"least ([\d,]+) characters.*",
     r"文本只有 \1 个字，不够一个小批量（\2，\3 采样）：至少需要 \4 个字（请用更长的文本，或减小批量大小、时间步数）"),
)


def _allowed_zh(allowed: str) -> str | None:
    for pattern, zh in ALLOWED:
        if re.fullmatch(pattern, allowed):
            return re.sub(pattern, zh, allowed)
    return None


def chinese(message: str) -> str | None:
    """The Chinese of a library message, or None for a form not listed here."""
    for pattern, zh in MESSAGES:
        m = re.fullmatch(pattern, message, re.S)
        if m is None:
            continue
        if zh is not None:
            return m.expand(zh)
        allowed = _allowed_zh(m[3])
        if allowed is None:
            return None
        return f"{m[1]}={m[2]} 不允许，须为{' ' if allowed[0].isascii() else ''}{allowed}"
    return None


def _is_pair(message: str) -> bool:
    """Written "中文 · English" already (its first side holds Chinese)."""
    return SEP in message and bool(re.search(r"[\u3400-\u9fff]", message.split(SEP)[0]))


def bilingual(message: str) -> str:
    """``message`` as "中文 · English" (already so, or its Chinese put in front), or as it is."""
    if _is_pair(message):
        return message
    zh = chinese(message)
    return message if zh is None else f"{zh}{SEP}{message}"


def in_page(message: str, lang: str) -> str:
    """A problem's message as a page in ``lang`` (both, zh or en) shows it."""
    text = bilingual(message)
    return in_language(text, lang) if _is_pair(text) else text
