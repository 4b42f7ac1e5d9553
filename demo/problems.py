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
)
# Whole messages, English -> Chinese.
MESSAGES = (
    (r"(\w+)=(.+?) is not allowed: (.+)", None),  # by ALLOWED
    (r"not in the corpus's vocabulary: (.+); use characters that occur in the training text",
     r"训练文本里没有这些字：\1；请用训练文本里有的字"),
    (r"choose a UTF-8 \.txt file to upload, or pick another corpus", r"请选择要上传的 UTF-8 .txt 文件，或换一个语料"),
    (r"upload a checkpoint first, or untick resume", r"请先上传检查点，或取消勾选“继续训练”"),
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
