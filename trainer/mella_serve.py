#!/usr/bin/env python3
"""Serves model dirs the trainer wrote (base-model/, final/: full or LoRA) over a small OpenAI-compatible
HTTP API, so that the evaluate stage can ask the base and the fine-tuned model the same questions.

    .venv-trainer/bin/python trainer/mella_serve.py --model-dir OUT/final [--port 0] [--device auto]
    .venv-trainer/bin/python trainer/mella_serve.py --model base=OUT/base-model --model tuned=OUT/final

stdout: `MELLA_SERVE_READY http://host:port/v1` once listening (after every model is loaded),
`MELLA_SERVE_MODEL {json}` per model before it, `MELLA_SERVE_STOPPED {json}` on SIGTERM/SIGINT (exit 0),
`MELLA_SERVE_ERROR {json}` before a non-zero exit (3: arguments or model dir, 1: anything else).
Request log and library notes on stderr. Protocol: docs/trainer.md, "Serving a trained model".
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
import traceback

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from mella_trainer.protocol import EXIT_CONFIG, EXIT_RUNTIME, ConfigError, TrainerError, emit, emit_json  # noqa: E402


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        raise ConfigError(f"invalid arguments: {message}")


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="mella_serve.py", description="OpenAI-compatible server for model dirs written by trainer/mella_train.py.")
    p.add_argument("--model-dir", action="append", default=[], metavar="DIR",
                   help="a model dir (base-model/, final/, a checkpoint, a full model dir); served under --served-model-name "
                   "or the dir's name (OUT/final -> 'OUT-name/final')")
    p.add_argument("--served-model-name", default=None, help="the name of the single --model-dir")
    p.add_argument("--model", action="append", default=[], metavar="NAME=DIR", help="a model dir under a name; repeatable")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8000, help="0: a free port (see the READY line)")
    p.add_argument("--device", default="auto", help="auto (cuda if available, else cpu), cpu, cuda, cuda:N")
    p.add_argument("--dtype", choices=["auto", "bf16", "fp16", "fp32"], default="auto", help="auto: bf16 on CUDA where supported, else fp32")
    p.add_argument("--cpu-threads", default="auto", help="torch threads on the CPU: auto (1 for tiny models) or a number")
    p.add_argument("--default-system", default=None,
                   help="system prompt for requests without one (default: the run's --default-system, read from the model dir)")
    p.add_argument("--image-max-pixels", type=int, default=None, help="default: the run's --image-max-pixels")
    p.add_argument("--max-tokens", type=int, default=512, help="max_tokens when a request gives none")
    p.add_argument("--no-log", action="store_true", help="no request log on stderr")
    p.add_argument("--stop-on-stdin-eof", action="store_true", help="stop as on SIGTERM when stdin reaches EOF (the launcher died)")
    return p


def default_name(model_dir: str) -> str:
    d = os.path.abspath(model_dir).rstrip("/")
    base = os.path.basename(d)
    if base in ("final", "base-model") or base.startswith("checkpoint-"):
        return f"{os.path.basename(os.path.dirname(d))}/{base}"
    return base


def model_specs(args: argparse.Namespace) -> list[tuple[str, str]]:
    specs: list[tuple[str, str]] = []
    if args.served_model_name and len(args.model_dir) != 1:
        raise ConfigError("--served-model-name names exactly one --model-dir")
    for d in args.model_dir:
        specs.append((args.served_model_name or default_name(d), d))
    for m in args.model:
        name, sep, d = m.partition("=")
        if not sep or not name or not d:
            raise ConfigError(f"--model {m!r}: expected NAME=DIR")
        specs.append((name, d))
    if not specs:
        raise ConfigError("give at least one --model-dir DIR or --model NAME=DIR")
    names = [n for n, _ in specs]
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        raise ConfigError(f"model name(s) {', '.join(dup)} given twice; use --model NAME=DIR")
    return specs


def main(argv: list[str] | None = None) -> int:
    stopping = threading.Event()
    holder: dict[str, object] = {}

    def on_signal(signum: int, _frame: object) -> None:
        first = not stopping.is_set()
        stopping.set()
        holder["signal"] = signal.Signals(signum).name
        server = holder.get("server")
        if server is None:  # still loading: stop now
            raise SystemExit(0)
        if first:  # shutdown() waits for serve_forever, which runs in this (the main) thread: from another one
            threading.Thread(target=server.shutdown, daemon=True).start()  # type: ignore[attr-defined]

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    try:
        args = build_parser().parse_args(argv)
        specs = model_specs(args)
        if args.stop_on_stdin_eof:
            from mella_trainer.parent import watch_stdin

            watch_stdin()
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
        os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
        os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
        import warnings

        warnings.filterwarnings("ignore")
        for _, d in specs:  # fail on a bad dir before the slow imports
            from mella_trainer.serve_model import resolve_dirs

            resolve_dirs(d)
        import torch
        import transformers

        transformers.utils.logging.disable_progress_bar()
        transformers.utils.logging.set_verbosity_error()
        dev = args.device
        if dev == "auto":
            dev = "cuda" if torch.cuda.is_available() else "cpu"
        if dev.startswith("cuda") and not torch.cuda.is_available():
            raise ConfigError(f"--device {args.device}: CUDA is not available to this process")
        try:
            device = torch.device(dev)
        except RuntimeError as e:
            raise ConfigError(f"--device {dev}: {e}") from None
        dt = args.dtype
        if dt == "auto":
            dt = "bf16" if device.type == "cuda" and torch.cuda.is_bf16_supported() else "fp32"
        if dt in ("bf16", "fp16") and device.type == "cpu":
            raise ConfigError(f"--dtype {dt} is for CUDA; use fp32 on the CPU")
        dtype = {"bf16": torch.bfloat16, "fp16": torch.float16, "fp32": torch.float32}[dt]
        if args.max_tokens < 1:
            raise ConfigError("--max-tokens must be >= 1")

        from mella_trainer.serve_http import Server
        from mella_trainer.serve_model import ServedModel

        overrides = {"default_system": args.default_system, "image_max_pixels": args.image_max_pixels}
        models = {}
        for name, d in specs:
            models[name] = ServedModel(name, d, device, dtype, overrides)
            emit_json("MELLA_SERVE_MODEL", models[name].describe())
        if device.type == "cpu":
            threads = args.cpu_threads
            if threads == "auto":
                small = all(sum(p.numel() for p in m.model.parameters()) < 20_000_000 for m in models.values())
                threads = "1" if small else None
            if threads:
                torch.set_num_threads(int(threads))
        try:
            server = Server((args.host, args.port), models, args.max_tokens, not args.no_log)
        except OSError as e:
            raise ConfigError(f"cannot listen on {args.host}:{args.port}: {e}") from None
        holder["server"] = server
        host, port = server.server_address[:2]
        shown = "127.0.0.1" if host in ("0.0.0.0", "") else ("[::1]" if host == "::" else host)
        emit("MELLA_SERVE_READY", f"http://{shown}:{port}/v1")
        if stopping.is_set():
            return 0
        try:
            server.serve_forever(poll_interval=0.2)
        finally:
            server.server_close()
        emit_json("MELLA_SERVE_STOPPED", {"signal": holder.get("signal"), "exit_code": 0})
        return 0
    except SystemExit as e:
        return int(e.code or 0)
    except TrainerError as e:
        e.exit_code = EXIT_CONFIG if isinstance(e, ConfigError) else e.exit_code
        emit_json("MELLA_SERVE_ERROR", e.payload())
        sys.stderr.write(f"[mella-serve] {e.message}\n")
        return e.exit_code
    except Exception as e:  # noqa: BLE001 - reported, then exit 1
        traceback.print_exc()
        emit_json("MELLA_SERVE_ERROR", {"error": "runtime_error", "exit_code": EXIT_RUNTIME, "message": f"{type(e).__name__}: {e}"})
        return EXIT_RUNTIME


if __name__ == "__main__":
    sys.exit(main())
