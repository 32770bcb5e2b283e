"""The trainer's output protocol and exit codes: the contract with the process that launches it.

stdout carries only protocol lines, one per line, each flushed as it is written:

    MELLA_START {json}                    once training is about to start (totals, device, resume point)
    MELLA_RESUME <checkpoint dir> step=<n>  when it resumes from a complete checkpoint
    MELLA_PROGRESS {json}                 one per logging step, the same object as in trainer_log.jsonl
    MELLA_CHECKPOINT <checkpoint dir> step=<n>  when a checkpoint is complete (renamed, marker written)
    MELLA_STOPPED {json}                  after SIGTERM/SIGINT, just before exiting 143/130
    MELLA_DONE {json}                     at the end, after <output>/final/ is complete
    MELLA_ERROR {json}                    before a non-zero exit for any error (also on stderr)

Everything else (library warnings, notes) goes to stderr.
"""

from __future__ import annotations

import json
import sys
from typing import Any

EXIT_OK = 0
EXIT_RUNTIME = 1  # unexpected failure (CUDA OOM, a crash): worth a retry
EXIT_DATASET = 2  # the dataset is invalid: a retry cannot help
EXIT_CONFIG = 3  # the arguments or the model are invalid, or the output dir belongs to another run
EXIT_LOCKED = 4  # another trainer holds the output dir's lock: retry later
EXIT_SIGINT = 130
EXIT_SIGTERM = 143


class TrainerError(Exception):
    """An error with an exit code and a machine-readable payload."""

    exit_code = EXIT_RUNTIME
    kind = "runtime_error"

    def __init__(self, message: str, **details: Any):
        super().__init__(message)
        self.message = message
        self.details = details

    def payload(self) -> dict[str, Any]:
        return {"error": self.kind, "exit_code": self.exit_code, "message": self.message, **self.details}


class DatasetError(TrainerError):
    exit_code = EXIT_DATASET
    kind = "dataset_invalid"


class ConfigError(TrainerError):
    exit_code = EXIT_CONFIG
    kind = "config_invalid"


class LockedError(TrainerError):
    exit_code = EXIT_LOCKED
    kind = "output_locked"


def _json(obj: Any) -> str:
    return json.dumps(obj, ensure_ascii=False, separators=(", ", ": "), allow_nan=True)


def emit(tag: str, rest: str) -> None:
    try:
        sys.stdout.write(f"{tag} {rest}\n")
        sys.stdout.flush()
    except BrokenPipeError:  # the launcher is gone (see parent.py): stop gracefully instead of crashing
        from .parent import launcher_gone

        launcher_gone()


def emit_json(tag: str, obj: Any) -> None:
    emit(tag, _json(obj))


def emit_error(err: TrainerError) -> None:
    line = _json(err.payload())
    emit("MELLA_ERROR", line)
    try:
        sys.stderr.write(line + "\n")
        sys.stderr.flush()
    except BrokenPipeError:
        pass


def note(message: str) -> None:
    """A human-readable note for the log: stderr, never parsed."""
    try:
        sys.stderr.write(f"[mella-train] {message}\n")
        sys.stderr.flush()
    except BrokenPipeError:
        from .parent import launcher_gone

        launcher_gone()


def to_json_line(obj: Any) -> str:
    return _json(obj)
