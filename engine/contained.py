"""Reading the files of a policy without leaving its directory.

A policy is trusted only within its own vendor directory: a ``source:
{file: ../../etc/hostname}``, an absolute path, or a ``policy.yaml`` that is
a symbolic link to ``/etc/passwd`` must not be read (and then quoted in a
diagnostic or stored in the decision log). Paths are resolved with every
symbolic link followed before they are compared, only regular files are
read (``/dev/zero`` would never end), and sizes are bounded.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

MAX_FILE_BYTES = 4 << 20  # 4 MiB: far above any terms of service, far below trouble


class FileRefused(Exception):
    """A file may not, or cannot, be read: ``cannot read PATH: REASON``."""

    def __init__(self, path: Path, reason: str) -> None:
        super().__init__(f"cannot read {path}: {reason}")
        self.path, self.reason = path, reason


def read_inside(path: Path, root: Path, *, limit: int = MAX_FILE_BYTES) -> str:
    """The UTF-8 text of ``path``, which must resolve to a regular file inside ``root``.

    Raises:
        FileRefused: outside ``root`` (symbolic links included), not a
        regular file, larger than ``limit`` bytes, unreadable, or not UTF-8.
    """
    try:  # links followed as far as they exist: a missing file outside is still "outside"
        base = root.resolve(strict=True)
        target = path.resolve()
    except (OSError, RuntimeError) as err:  # RuntimeError: a symlink loop
        raise FileRefused(path, getattr(err, "strerror", None) or str(err)) from None
    if not target.is_relative_to(base):
        raise FileRefused(path, f"it is outside the policy's directory {base} "
                          "(files a policy names must stay inside it, links included)")
    try:  # non-blocking open: a FIFO must not hang us; fstat then checks what was opened
        fd = os.open(target, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
        with os.fdopen(fd, "rb") as fh:
            if not stat.S_ISREG(os.fstat(fd).st_mode):
                raise FileRefused(path, "not a regular file")
            data = fh.read(limit + 1)
    except OSError as err:
        raise FileRefused(path, err.strerror or str(err)) from None
    if len(data) > limit:
        raise FileRefused(path, f"larger than {limit:,} bytes")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as err:
        raise FileRefused(path, f"not UTF-8 text ({err.reason} at byte {err.start})") from None

