"""The command line. Names follow LLaMA-Factory's keys (kebab-case) where one exists."""

from __future__ import annotations

import argparse
from typing import Any, Sequence

from .protocol import ConfigError


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> Any:  # argparse would exit 2, which is the dataset's code
        raise ConfigError(f"invalid arguments: {message}")


def _positive_int(v: str) -> int:
    n = int(v)
    if n < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {v}")
    return n


def _non_negative_int(v: str) -> int:
    n = int(v)
    if n < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {v}")
    return n


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(
        prog="mella_train.py",
        description="Supervised fine-tuning of a vision-language model (Qwen2-VL family) on a LLaMA-Factory "
        "sharegpt export. Protocol lines on stdout (MELLA_*), notes on stderr; see docs/trainer.md.",
    )
    g = p.add_argument_group("data")
    g.add_argument("--dataset-dir", required=True, help="the export: dataset_info.json + sharegpt json/jsonl files + images")
    g.add_argument("--dataset", default=None, help="dataset name(s) in dataset_info.json, comma-separated (default: the only one)")
    g.add_argument("--validate-images", choices=["decode", "header", "exists"], default="decode",
                   help="how hard to check every image before training (default: decode each one)")
    g.add_argument("--validate-only", action="store_true", help="validate the dataset, print MELLA_VALID {json} and exit 0")
    g.add_argument("--cutoff-len", type=_positive_int, default=2048, help="max tokens per sample (LLaMA-Factory cutoff_len)")
    g.add_argument("--image-max-pixels", type=_positive_int, default=768 * 768,
                   help="images above this many pixels are downscaled before the image processor (LLaMA-Factory image_max_pixels)")
    g.add_argument("--default-system", default="You are a helpful assistant.",
                   help="system message for samples without one (Qwen2-VL's default); '' for none")

    g = p.add_argument_group("model")
    g.add_argument("--model", default="tiny-random",
                   help="'tiny-random' (a tiny Qwen2-VL built locally, no download) or a local HF model dir (qwen2_vl, qwen2_5_vl)")
    g.add_argument("--method", choices=["lora", "full"], default="lora", help="finetuning_type")
    g.add_argument("--lora-rank", type=_positive_int, default=8)
    g.add_argument("--lora-alpha", type=float, default=16.0)
    g.add_argument("--lora-dropout", type=float, default=0.05)
    g.add_argument("--lora-target", default="all",
                   help="'all' (every attention and MLP projection of the language model) or comma-separated module names")
    g.add_argument("--additional-target", default="",
                   help="lora: comma-separated modules trained in full and saved with the adapter (peft modules_to_save), "
                   "e.g. lm_head,embed_tokens")
    g.add_argument("--freeze-vision-tower", action=argparse.BooleanOptionalAction, default=True,
                   help="full method: keep the vision encoder and merger frozen (default: yes, as LLaMA-Factory)")
    g.add_argument("--tiny-vocab-size", type=_positive_int, default=1024, help="tiny-random: BPE vocabulary size (upper bound)")

    g = p.add_argument_group("optimisation")
    g.add_argument("--learning-rate", type=float, default=1e-4)
    g.add_argument("--num-train-epochs", type=float, default=3.0)
    g.add_argument("--max-steps", type=_non_negative_int, default=0, help="optimizer steps; > 0 overrides --num-train-epochs")
    g.add_argument("--per-device-train-batch-size", type=_positive_int, default=1)
    g.add_argument("--gradient-accumulation-steps", type=_positive_int, default=1)
    g.add_argument("--lr-scheduler-type", choices=["cosine", "linear", "constant"], default="cosine")
    g.add_argument("--warmup-ratio", type=float, default=0.0)
    g.add_argument("--warmup-steps", type=_non_negative_int, default=0, help="> 0 overrides --warmup-ratio")
    g.add_argument("--weight-decay", type=float, default=0.0)
    g.add_argument("--max-grad-norm", type=float, default=1.0, help="0 disables clipping")
    g.add_argument("--seed", type=int, default=42)
    g.add_argument("--gradient-checkpointing", action="store_true")

    g = p.add_argument_group("runtime")
    g.add_argument("--output", required=True, help="output dir: checkpoints, final/, trainer_log.jsonl")
    g.add_argument("--device", default="auto", help="auto (cuda if available, else cpu), cpu, cuda, cuda:N")
    g.add_argument("--dtype", choices=["auto", "bf16", "fp16", "fp32"], default="auto",
                   help="auto: bf16 on a CUDA device that supports it, else fp32")
    g.add_argument("--cpu-threads", default="auto",
                   help="torch threads on the CPU: auto (1 for tiny-random, which gains nothing from more and "
                   "slows down badly on a busy machine; else torch's default) or a number")
    g.add_argument("--logging-steps", type=_positive_int, default=1)
    g.add_argument("--save-steps", type=_non_negative_int, default=500, help="checkpoint every N steps (0: none)")
    g.add_argument("--save-total-limit", type=_non_negative_int, default=3, help="keep the newest K checkpoints (0: all)")
    g.add_argument("--resume", default="auto",
                   help="auto (latest complete checkpoint in --output, if any), never, or a checkpoint dir")
    g.add_argument("--overwrite-output", action="store_true",
                   help="with --resume never: clear a previous run's checkpoints, final/ and logs from --output")
    g.add_argument("--save-on-signal", action=argparse.BooleanOptionalAction, default=True,
                   help="on SIGTERM/SIGINT, write a checkpoint at the step boundary before exiting (default: yes)")
    g.add_argument("--stop-on-stdin-eof", action="store_true",
                   help="stop as on SIGTERM when stdin reaches EOF or stdout breaks: the launching process died "
                   "(the fine-tune activity passes it, with stdin a pipe)")
    return p


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    args = build_parser().parse_args(argv)
    if args.max_steps == 0 and not args.num_train_epochs > 0:
        raise ConfigError("--num-train-epochs must be > 0 when --max-steps is 0")
    if args.cpu_threads != "auto" and not (args.cpu_threads.isdigit() and int(args.cpu_threads) > 0):
        raise ConfigError(f"--cpu-threads must be auto or a positive number, got {args.cpu_threads!r}")
    if not args.learning_rate > 0:
        raise ConfigError("--learning-rate must be > 0")
    if not 0 <= args.lora_dropout < 1:
        raise ConfigError("--lora-dropout must be in [0, 1)")
    if not 0 <= args.warmup_ratio < 1:
        raise ConfigError("--warmup-ratio must be in [0, 1)")
    return args
