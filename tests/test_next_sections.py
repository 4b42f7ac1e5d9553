"""The chapter's next sections run in full: 6.7's GRU and 6.8's LSTM from scratch, 160 epochs on the first 10,000
characters of the lyrics, with the book's settings (consecutive sampling, h 256, 35 steps, batch 32, SGD lr
100, θ 0.01, samples every 40 epochs).

The book prints one unseeded run each (6.7 GRU, 6.8 LSTM; docs/results.md's second table): the GRU ends at 1.82
(1.44 with the older formula), the LSTM at 4.27 (4.07 in the MXNet original), so a reproduction is held to that
range, "or better". charrnn ends at 1.779 (GRU) and 4.041 (LSTM), the same to four digits with 1, 2 and 4 threads
(docs/results.md). Another CPU, BLAS or a GPU sums float32 in another order and sends the 1,280 SGD steps
down a slightly different trajectory (the chapter's RNN moved about 2% that way, see test_chapter_setups.py); the
bounds, 1.9 and 4.4, are the top of the book's range plus about that much and a little more. A run that stops
learning, or a gate wired wrong, ends far above (epoch 1 scores about 1,000).
"""
from __future__ import annotations

import math

import pytest
import torch

from charrnn import EpochEnd, Finished, Sample, Trainer, preset
from conftest import DEVICES
from test_chapter_setups import chapter_threads  # noqa: F401  (the thread count the chapter runs use)

pytestmark = pytest.mark.slow  # chapter-length runs of GRU and LSTM (minutes)

V = 1027
# see the module docstring
BOUNDS = {"scratch-gru": 1.9, "scratch-lstm": 4.4}
EPOCH_40_BELOW = {"scratch-gru": 300, "scratch-lstm": 400}  # the book: 151 and 211; charrnn: ~153 and ~212


@pytest.mark.parametrize("name", list(BOUNDS))
@pytest.mark.parametrize("where", DEVICES)
def test_next_section_setup(where, name, jaychou_10k, chapter_threads):  # noqa: F811
    config = preset(name, device=where)
    assert (config.epochs, config.num_steps, config.batch_size, config.num_hiddens, config.pred_period) == \
        (160, 35, 32, 256, 40)
    assert (config.sampling, config.optimizer, config.lr, config.clip_theta) == ("consecutive", "sgd", 100.0, 0.01)
    trainer = Trainer(config, jaychou_10k)
    events = list(trainer.run())
    epochs = [e for e in events if isinstance(e, EpochEnd)]
    ppl = [e.perplexity for e in epochs]
    assert [e.epoch for e in epochs] == list(range(1, 161)) and isinstance(events[-1], Finished)
    assert all(math.isfinite(p) for p in ppl)
    print(f"\n{name}: perplexity at 1/40/80/120/160: " + " / ".join(f"{ppl[i - 1]:.4g}" for i in (1, 40, 80, 120, 160))
          + f"; {sum(e.seconds for e in epochs) / 160:.3f} s per epoch, "
          + (f"{chapter_threads} thread(s)" if where == "cpu" else torch.cuda.get_device_name()))
    assert 0.5 * V < ppl[0] < 1.5 * V  # the book's N(0, 0.01) weights: the first epoch scores about a uniform guess
    assert ppl[39] < EPOCH_40_BELOW[name]
    assert ppl[79] < ppl[39] and ppl[119] < ppl[79]
    assert ppl[-1] < BOUNDS[name], ppl[-5:]
    samples = [(s.epoch, s.prefix) for s in events if isinstance(s, Sample)]
    assert samples == [(e, p) for e in (40, 80, 120, 160) for p in ("分开", "不分开")]
