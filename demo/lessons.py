"""The chapter's lessons, one click each: two runs that differ in one thing, one after the other, on one chart, or
one run that shows one thing (overfitting: its training and held-out perplexity part ways).

Each lesson says in one line, in both languages, what to look at. Its runs are short (``EPOCHS`` epochs)
unless the teacher has changed the epochs on the page. A Stop ends the lesson. The runs are ordinary runs
of the session: a class watching it sees them too.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from charrnn.config import PRESETS, TrainConfig
from charrnn.corpus import cached_corpus
from charrnn.plans import Continues, Step
from charrnn.runs import Run
from charrnn.train import Trainer

EPOCHS = 100  # a lesson's runs unless the page's epochs say otherwise


@dataclass(frozen=True)
class Lesson:
    key: str                              # its name in links: ?lesson=<key>
    button: str                           # 中文 · English
    caption: str                          # what to look at, 中文 · English
    runs: tuple[dict[str, Any], ...]      # each run's settings over the chapter's: one or two runs (or one and
    #                                       its fork)
    fork: dict[str, Any] = field(default_factory=dict)  # the second run writes with the first's model, these
    #                                                     changed: it trains no epoch more (the decoding lesson)
    epochs: int = EPOCHS                  # each run's, unless the teacher changed the page's epochs

    def __post_init__(self) -> None:
        # the page shows a lesson's lyrics in at most two columns, and a fork goes on from the one run before it
        if not 1 <= len(self.runs) <= 2 or self.fork and len(self.runs) != 1:
            raise ValueError(f"lesson {self.key!r}: one or two runs, or one run and its fork")

    def steps(self, epochs: int, pred_period: int) -> list[Step]:
        """What ``Session.start_plan`` runs: a function per run that makes its Trainer."""
        def fresh(changes: dict[str, Any]) -> Step:
            def make(_: Run | None) -> Trainer:
                config = TrainConfig(**{**changes, "epochs": epochs, "pred_period": pred_period})
                return Trainer(config, cached_corpus(config.corpus, config.max_chars))
            return make

        def forked(previous: Run | None) -> Trainer:
            if previous is None or previous.trainer is None:
                raise RuntimeError("the first run's model is gone")
            return previous.trainer.fork(**{"epochs": max(previous.trainer.epoch, 1), **self.fork})

        steps = [fresh(changes) for changes in self.runs]
        if self.fork:
            steps.append(Continues(forked))
        return steps


LESSONS: dict[str, Lesson] = {lesson.key: lesson for lesson in (
    Lesson("sampling", "随机 vs 相邻采样 · random vs consecutive",
           "随机采样 vs 相邻采样：相邻采样把隐状态带到下一个小批量，困惑度降得更快 · random vs consecutive sampling: "
           "consecutive sampling carries the hidden state into the next minibatch, so its perplexity falls faster",
           (PRESETS["scratch-random"], PRESETS["scratch-consecutive"])),
    Lesson("clipping", "梯度裁剪 开 vs 关 · clipping on vs off",
           "梯度裁剪 开 vs 关（学习率 10）：θ=0.1 时稳步下降；不裁剪，困惑度几轮内爆炸，训练发散 · clipping on vs off "
           "(lr 10): with θ=0.1 the perplexity falls steadily; without clipping it explodes within a few epochs "
           "and the run diverges",
           # lr 10 with θ 0.1 caps each step at 1, as the chapter's lr 100 with θ 0.01 does (same curve); at lr 100
           # an unclipped run is infinite in its first epoch and draws nothing, at lr 10 it climbs for ~10 epochs.
           ({**PRESETS["scratch-random"], "lr": 10.0, "clip_theta": 0.1},
            {**PRESETS["scratch-random"], "lr": 10.0, "clip_theta": None})),
    Lesson("concise", "从零开始 vs nn.RNN · from scratch vs nn.RNN",
           "从零开始 vs nn.RNN：同一个网络的两种写法（SGD 与 Adam）；比较曲线和速度（每秒字符数） · from scratch vs "
           "torch.nn.RNN: one network written two ways (SGD and Adam); compare the curves and the speed (chars/s)",
           (PRESETS["scratch-consecutive"], PRESETS["concise"])),
    Lesson("decoding", "贪心 vs 采样解码 · greedy vs sampled",
           "贪心 vs 采样：同一个模型写的歌词并排放；贪心解码容易重复同一句，按温度采样每次不同 · greedy vs sampled "
           "decoding: the same model's lyrics side by side; greedy argmax tends to repeat itself, sampling with a "
           "temperature varies",
           (PRESETS["scratch-random"],), fork=dict(temperature=0.8, top_k=None)),
    Lesson("lr", "学习率 太大 vs 合适 · learning rate too large vs right",
           "学习率太大 vs 合适：lr 300 的步子跳过了低谷，困惑度一直高于词表大小（比瞎猜还差）；lr 100 稳步下降 · a "
           "learning rate too large vs one that works: at lr 300 the steps jump over the valley and the perplexity "
           "stays above the vocabulary size (worse than guessing); at lr 100 it falls steadily",
           # bench/lessons.py prints both curves (figures: docs/performance.md)
           ({**PRESETS["scratch-random"], "lr": 300.0}, PRESETS["scratch-random"])),
    Lesson("gates", "梯度消失：RNN vs GRU · vanishing gradients: RNN vs GRU",
           "打开“模型内部 → 梯度随时间”：训练 10 个周期后，普通 RNN 从最后一步传回第 1 步的梯度只剩约 1e-16，"
           "GRU 的更新门"
           "让它多出约一千万倍 · open Inside the model → Gradients through time: after 10 epochs, what reaches step 1 "
           "of the last step's gradient is about 1e-16 in the plain RNN; the GRU's update gate passes some ten "
           "million times more",
           # 10 epochs: later the RNN's recurrent weights grow and its gradients reach further (clipping holds
           # them); bench/lessons.py prints how much reaches step 1 (figures: docs/performance.md)
           (PRESETS["scratch-consecutive"], PRESETS["scratch-gru"]),
           epochs=10),
    Lesson("overfitting", "过拟合 · overfitting",
           "过拟合：前 1,500 个字，最后 300 个留作检验、不参与训练。训练困惑度降到 1.1；留出文本的困惑度在第 49 个周期"
           "降到最低的 53，之后升到几百（最后 10 个周期平均 673），超过词表大小 261，比瞎猜还差：模型背下了这段歌词，"
           "却没学会写新的 · overfitting: the first 1,500 characters, the last 300 held out (not trained on). The "
           "training perplexity falls to 1.1 while the held-out perplexity bottoms out at 53 at epoch 49, then climbs "
           "to several hundred (673 on average over the last 10 epochs), above the vocabulary size of 261, worse than "
           "guessing: the model memorises these lyrics instead of learning to write",
           # the chapter's model on a text 7 times shorter, its last fifth held out; 4 windows a minibatch give
           # the 1,200 characters trained on 8 minibatches an epoch (32 would give one). bench/lessons.py
           # --overfitting prints the candidates (the chapter's batch, consecutive sampling, 512 hidden units,
           # longer texts) and bench/lessons.py --only overfitting this run's curves: the numbers above, the same
           # on 1 and 2 torch threads. 26-28 ms an epoch on 1 thread of a 2-core machine (200 epochs in 6 s). As
           # the page trains it, 40 epochs took 1.9 s with CPU_CORES=1 and 34.7 s on both cores (a lone run gets
           # every core: 2 threads contend) while other tests loaded them; 200 epochs took 209 s to over 300 s so
           ({**PRESETS["scratch-random"], "max_chars": 1500, "validation": 0.2, "batch_size": 4},),
           epochs=200),
)}
