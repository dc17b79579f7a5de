"""Atomic file writes: a temporary file in the target folder, fsynced, then renamed over the target.

``os.replace`` is atomic on POSIX, so a run killed at any moment leaves either the old file or the new
one, never a torn one. Shared by the deep-training checkpoints and records and the figure writer.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def atomic_write(path: str | os.PathLike[str], write: Callable[[IO[Any]], Any], mode: str = "wb") -> None:
    """Call ``write(file)`` on a temporary file beside ``path``, then move it into place atomically.

    The parent folder is created if needed; the file gets ordinary permissions (``0o666 & ~umask``;
    ``mkstemp`` alone would leave 0600) and the rename is made durable by fsyncing the folder.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, mode) as fh:
            write(fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)
