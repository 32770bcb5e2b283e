#!/usr/bin/env python3
"""MELLA's own trainer: supervised fine-tuning of a vision-language model on a LLaMA-Factory export.

    .venv-trainer/bin/python trainer/mella_train.py --dataset-dir EXPORT --output OUT [options]

Exit codes: 0 done, 1 runtime failure (retryable), 2 invalid dataset, 3 invalid arguments/model/output,
4 output dir locked by another trainer, 130 SIGINT, 143 SIGTERM. Protocol lines on stdout: docs/trainer.md.
"""

from __future__ import annotations

import os
import sys
import traceback

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from mella_trainer.cli import parse_args  # noqa: E402
from mella_trainer.parent import watch_stdin  # noqa: E402
from mella_trainer.protocol import EXIT_RUNTIME, TrainerError, emit_error  # noqa: E402
from mella_trainer.train import Interrupted, StopFlag, Trainer, stopped  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    stop = StopFlag()
    stop.install()
    trainer = None
    try:
        args = parse_args(argv)
        if args.stop_on_stdin_eof:
            watch_stdin()
        trainer = Trainer(args, stop)
        return trainer.run()
    except Interrupted as e:
        return stopped(trainer, e)
    except TrainerError as e:
        emit_error(e)
        return e.exit_code
    except Exception as e:  # noqa: BLE001 - reported, then the retryable exit code
        traceback.print_exc()
        err = TrainerError(f"{type(e).__name__}: {e}")
        if type(e).__name__ == "OutOfMemoryError":
            err.kind = "out_of_memory"  # same exit code; the launcher may lower the batch size and retry
        emit_error(err)
        return EXIT_RUNTIME


if __name__ == "__main__":
    sys.exit(main())
