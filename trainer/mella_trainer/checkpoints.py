"""Checkpoint layout, atomic publication, discovery and pruning; the output dir's lock.

A checkpoint or the final dir is written into `<output>/.tmp-<name>-<pid>/`, every file fsynced, then a
`COMPLETE` marker (JSON: step and the size of every file) written and fsynced last, then the dir is
renamed to its name and the output dir fsynced. A dir named `checkpoint-<n>` without a valid marker can
only be a leftover of something else and is never resumed from.
"""

from __future__ import annotations

import fcntl
import json
import os
import re
import shutil
from dataclasses import dataclass
from typing import Any, Callable

from .protocol import LockedError, note

MARKER = "COMPLETE"
TMP_PREFIX = ".tmp-"
CHECKPOINT_RE = re.compile(r"^checkpoint-(\d+)$")


def fsync_path(path: str) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _files_under(root: str) -> dict[str, int]:
    sizes = {}
    for dirpath, _, files in os.walk(root):
        for f in files:
            full = os.path.join(dirpath, f)
            sizes[os.path.relpath(full, root)] = os.path.getsize(full)
    return dict(sorted(sizes.items()))


def publish_dir(output: str, name: str, write: Callable[[str], None], marker: dict[str, Any]) -> str:
    """Runs write(tmp_dir), seals it with the marker and renames it to <output>/<name>. Returns the path."""
    final = os.path.join(output, name)
    tmp = os.path.join(output, f"{TMP_PREFIX}{name}-{os.getpid()}")
    if os.path.exists(tmp):
        shutil.rmtree(tmp)
    os.makedirs(tmp)
    write(tmp)
    files = _files_under(tmp)
    for rel in files:
        fsync_path(os.path.join(tmp, rel))
    for dirpath, _, _ in os.walk(tmp):
        fsync_path(dirpath)
    with open(os.path.join(tmp, MARKER), "w") as f:
        json.dump({**marker, "files": files}, f, indent=1)
        f.flush()
        os.fsync(f.fileno())
    fsync_path(tmp)
    if os.path.exists(final):
        remove_dir(final)
    os.rename(tmp, final)
    fsync_path(output)
    return final


def read_marker(path: str) -> dict[str, Any] | None:
    """The marker if the dir is complete: marker present, parseable, and every listed file of its size."""
    try:
        with open(os.path.join(path, MARKER)) as f:
            marker = json.load(f)
        for rel, size in marker["files"].items():
            if os.path.getsize(os.path.join(path, rel)) != size:
                return None
        return marker
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None


def remove_dir(path: str) -> None:
    """Removes the marker first, so that a removal cut short never leaves a dir that looks complete."""
    try:
        os.unlink(os.path.join(path, MARKER))
    except FileNotFoundError:
        pass
    shutil.rmtree(path, ignore_errors=True)


@dataclass
class Checkpoint:
    path: str
    step: int


def scan(output: str, clean: bool) -> list[Checkpoint]:
    """Complete checkpoints, oldest first. With clean, removes temp dirs and incomplete checkpoints."""
    found: list[Checkpoint] = []
    if not os.path.isdir(output):
        return found
    for name in sorted(os.listdir(output)):
        full = os.path.join(output, name)
        if name.startswith(TMP_PREFIX) and os.path.isdir(full):
            if clean:
                note(f"removing an unfinished write: {full}")
                remove_dir(full)
            continue
        m = CHECKPOINT_RE.match(name)
        if not m or not os.path.isdir(full):
            continue
        marker = read_marker(full)
        if marker is None or marker.get("step") != int(m.group(1)):
            if clean:
                note(f"removing an incomplete checkpoint: {full}")
                remove_dir(full)
            continue
        found.append(Checkpoint(full, int(m.group(1))))
    return sorted(found, key=lambda c: c.step)


def prune(output: str, keep: int) -> list[str]:
    """Keeps the newest `keep` complete checkpoints (keep <= 0 keeps all); returns the removed paths."""
    if keep <= 0:
        return []
    removed = []
    for ckpt in scan(output, clean=False)[:-keep]:
        remove_dir(ckpt.path)
        removed.append(ckpt.path)
    return removed


class OutputLock:
    """An flock on <output>/.lock for the process's lifetime; the kernel drops it when the process dies,
    even by SIGKILL, so a stale lock never blocks a retry."""

    def __init__(self, output: str) -> None:
        self.path = os.path.join(output, ".lock")
        self.fd: int | None = None

    def acquire(self) -> None:
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = ""
            try:
                holder = os.pread(fd, 64, 0).decode().strip()
            except OSError:
                pass
            os.close(fd)
            raise LockedError(
                f"another trainer (pid {holder or '?'}) is writing to {os.path.dirname(self.path)}",
                holder_pid=int(holder) if holder.isdigit() else None,
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, str(os.getpid()).encode(), 0)
        self.fd = fd
