"""charrnn: the character-level RNN language model of the RNN chapter of Dive into Deep Learning (zh).

Importing it never imports gradio or plotly. The pieces, one noun per module:
config (TrainConfig, presets), corpus (corpora, Vocab), batches (random/consecutive sampling),
models (RNN, GRU, LSTM; from scratch and concise), train (Trainer, events), generate (greedy/temperature/top-k),
checkpoint (safetensors files), cli (``python -m charrnn``). Imported on their own: lab (sessions and
background runs for a server) and threads (how many torch threads each thread uses).
"""
from .batches import epoch_batches, num_batches
from .checkpoint import Checkpoint, CheckpointError, load_checkpoint, save_checkpoint
from .config import PRESETS, ConfigError, TrainConfig, preset
from .corpus import Corpus, CorpusError, Vocab, from_file, from_text, load_corpus
from .generate import PrefixError, predict, stream
from .models import (KINDS, CharModel, ConciseGRU, ConciseLSTM, ConciseRNN, ScratchGRU, ScratchLSTM, ScratchRNN,
                     build_model)
from .train import Diverged, End, EpochEnd, Finished, Sample, Stopped, Trainer, clip_gradients, train

__version__ = "0.1.0"
__all__ = [
    "Checkpoint", "CheckpointError", "CharModel", "ConciseGRU", "ConciseLSTM", "ConciseRNN", "ConfigError", "Corpus",
    "CorpusError", "Diverged", "End", "EpochEnd", "Finished", "KINDS", "PRESETS", "PrefixError", "Sample", "ScratchGRU",
    "ScratchLSTM", "ScratchRNN", "Stopped",
    "TrainConfig", "Trainer", "Vocab", "build_model", "clip_gradients", "epoch_batches", "from_file",
    "from_text", "load_checkpoint", "load_corpus", "num_batches", "predict", "preset", "save_checkpoint",
    "stream", "train",
]
