"""Stopping when the launching process is gone (--stop-on-stdin-eof).

The fine-tune activity starts the trainer in its own process group with stdin a pipe that only the
activity's worker holds. If the worker dies (SIGKILL, a crash, the machine's agent killed it), the
kernel closes that pipe: stdin reaches EOF, and stdout/stderr become broken pipes. Without a watch the
trainer would keep the GPU busy as an orphan until its next write failed. With it, the trainer
points stdout/stderr at /dev/null and sends itself SIGTERM, which is the ordinary graceful stop:
checkpoint at the next step boundary, exit 143. The retried attempt then resumes from that checkpoint.
"""

from __future__ import annotations

import os
import signal
import threading

_gone = threading.Event()


def launcher_gone() -> None:
    """The launcher is gone: silence the dead pipes and stop as on SIGTERM (once)."""
    if _gone.is_set():
        return
    _gone.set()
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 1)
    os.dup2(devnull, 2)
    os.kill(os.getpid(), signal.SIGTERM)


def watch_stdin() -> None:
    """A daemon thread that reads stdin until EOF, then calls launcher_gone()."""

    def run() -> None:
        try:
            while os.read(0, 65536):
                pass
        except OSError:
            pass
        launcher_gone()

    threading.Thread(target=run, name="mella-stdin-watch", daemon=True).start()


def watching() -> bool:
    return _gone.is_set()
