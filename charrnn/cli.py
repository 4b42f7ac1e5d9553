"""``python -m charrnn train|generate``: the chapter's training printout, and writing from a checkpoint.

Every TrainConfig field is a flag. Unset flags take the chapter's value for the chosen model and
sampling (``--preset`` picks a setup by name), so ``--model scratch --sampling consecutive`` is the
chapter's second run and ``--model concise`` its third.
"""
from __future__ import annotations

import argparse
import dataclasses
import sys
import threading
import types
from typing import Any, Sequence, Union, get_args, get_origin, get_type_hints

from .config import CHOICES, PRESETS, ConfigError, TrainConfig, field_help, preset_for
from .corpus import CorpusError, load_corpus
from .checkpoint import CheckpointError, load_checkpoint
from .generate import PrefixError, stream
from .train import Diverged, EpochEnd, Sample, Stopped, Trainer

NONE_WORDS = ("none", "off")


def _typed(kind: type, optional: bool):
    def parse(text: str) -> Any:
        if optional and text.lower() in NONE_WORDS:
            return None
        try:
            return kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not {'an integer' if kind is int else 'a number'}"
                                             + (" (or 'off'/'none')" if optional else ""))
    return parse


def _unwrap(hint: Any) -> tuple[Any, bool]:
    """``int | None`` -> (int, True); ``float`` -> (float, False)."""
    if get_origin(hint) in (Union, types.UnionType):
        kinds = [t for t in get_args(hint) if t is not type(None)]
        if len(kinds) != 1:
            raise TypeError(f"no flag for a field of type {hint}")
        return kinds[0], len(kinds) < len(get_args(hint))
    return hint, False


def _add_config_flags(p: argparse.ArgumentParser) -> None:
    hints = get_type_hints(TrainConfig)  # the annotations as types, not strings
    for f in dataclasses.fields(TrainConfig):
        flag = "--" + f.name.replace("_", "-")
        hint = f"{field_help(f.name)} (default: {_chapter_values(f.name)})"
        kind, optional = _unwrap(hints[f.name])
        if kind is bool:  # a switch: given means True
            p.add_argument(flag, action="store_true", default=argparse.SUPPRESS, help=hint)
            continue
        if get_origin(kind) is list:  # prefixes: one or more words
            p.add_argument(flag, nargs="+", default=argparse.SUPPRESS, help=hint)
            continue
        choices = CHOICES.get(f.name)
        p.add_argument(flag, type=_typed(kind, optional) if kind in (int, float) else str, choices=choices,
                       default=argparse.SUPPRESS, help=hint, metavar=None if choices else f.name.upper())


def _chapter_values(name: str) -> str:
    """The chapter's value of a field, per preset where the presets differ."""
    values = {p: getattr(TrainConfig(**PRESETS[p]), name) for p in PRESETS}
    if len({repr(v) for v in values.values()}) == 1:
        return str(next(iter(values.values())))
    return ", ".join(f"{v} for {p}" for p, v in values.items())


def config_from_args(args: argparse.Namespace) -> TrainConfig:
    """Preset (named, or the one matching --model/--sampling), then every flag that was given."""
    given = {f.name: getattr(args, f.name) for f in dataclasses.fields(TrainConfig) if hasattr(args, f.name)}
    name = args.preset or preset_for(given.get("model", "scratch"), given.get("sampling", "random"))
    return TrainConfig(**{**PRESETS[name], **given})


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m charrnn", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)

    t = sub.add_parser("train", help="train a model and print the chapter's lines")
    t.add_argument("--preset", choices=list(PRESETS), help="start from one of the chapter's three setups")
    _add_config_flags(t)
    t.add_argument("--corpus-path", help="explicit location of the named corpus file (e.g. jaychou_lyrics.txt.zip)")
    t.add_argument("--save", nargs="?", const="", metavar="PATH",
                   help="save a checkpoint at the end (default path: checkpoints/<run-id>/epoch-NNNN.safetensors)")
    t.add_argument("--save-every", type=int, default=0, metavar="N", help="also save every N epochs")
    t.add_argument("--resume", metavar="PATH", help="continue training a checkpoint (flags given override its config)")
    t.add_argument("--no-progress", action="store_true", help="no progress bar")

    g = sub.add_parser("generate", help="write text with a saved model")
    g.add_argument("--checkpoint", required=True, help="a .safetensors file written by charrnn")
    g.add_argument("--prefix", default="分开", help="text to start from (default: 分开)")
    g.add_argument("--length", type=int, default=50, help="characters to generate (default: 50)")
    g.add_argument("--temperature", type=float, default=0.0, help="0 is greedy argmax, the chapter's (default: 0)")
    g.add_argument("--top-k", type=int, default=None, help="sample only among the k likeliest characters")
    g.add_argument("--seed", type=int, default=None, help="seed for sampling (temperature > 0)")
    return parser


def cmd_train(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    if args.resume:
        given = {f.name: getattr(args, f.name) for f in dataclasses.fields(TrainConfig) if hasattr(args, f.name)}
        ck = load_checkpoint(args.resume)
        saved = ck.config.replace(**given)
        data = load_corpus(saved.corpus, saved.max_chars, path=args.corpus_path) if args.corpus_path else None
        trainer = Trainer.from_checkpoint(ck, data, **given)
        config = trainer.config
    else:
        config = config_from_args(args)
        corpus = load_corpus(config.corpus, config.max_chars, path=args.corpus_path)
        trainer = Trainer(config, corpus)
    print(f"{config.label()} · corpus {config.corpus} ({len(trainer.data):,} chars, vocab {len(trainer.vocab)}) · "
          f"device {trainer.device} · run {trainer.run_id}", flush=True)
    bar = tqdm(total=config.epochs, initial=trainer.epoch, unit="epoch", disable=args.no_progress,
               dynamic_ncols=True, file=sys.stderr)
    stop = threading.Event()
    end = None
    try:
        for ev in trainer.run(stop):
            if isinstance(ev, EpochEnd):
                bar.update(1)
                bar.set_postfix(ppl=f"{ev.perplexity:.3f}", clipped=f"{ev.clipped:.0%}")
                if ev.epoch % config.pred_period == 0:
                    held = "" if ev.val_perplexity is None else f", validation perplexity {ev.val_perplexity:f}"
                    bar.write(f"epoch {ev.epoch}, perplexity {ev.perplexity:f}{held}, time {ev.seconds:.2f} sec")
                if args.save_every and ev.epoch % args.save_every == 0:
                    trainer.save()
            elif isinstance(ev, Sample):
                bar.write(f" - {ev.text}")
            else:
                end = ev
    except KeyboardInterrupt:
        stop.set()
        end = Stopped(trainer.epoch, f"interrupted after {trainer.epoch} epochs")
    bar.close()
    print(end.message)
    if args.save is not None:
        print(f"saved {trainer.save(args.save or None)}")
    return 3 if isinstance(end, Diverged) else 0


def cmd_generate(args: argparse.Namespace) -> int:
    ck = load_checkpoint(args.checkpoint)
    chars = stream(ck.model, ck.vocab, args.prefix, args.length, args.temperature, args.top_k, args.seed)
    sys.stdout.write(args.prefix)
    for ch in chars:
        sys.stdout.write(ch)
        sys.stdout.flush()
    sys.stdout.write("\n")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return cmd_train(args) if args.command == "train" else cmd_generate(args)
    except (ConfigError, CorpusError, CheckpointError, PrefixError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
