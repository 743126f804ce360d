"""Writing outputs safely: to a temporary file beside the target, renamed when complete.

An error or Ctrl-C half way never leaves a truncated file under the name the user asked
for, and never destroys an existing file before its replacement is whole. The temporary
file gets the permissions a plain `open()` would (mkstemp's default is owner-only).
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


def _read_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


_UMASK = _read_umask()  # read once: os.umask is process-wide and not thread-safe


def temp_beside(path: str | Path, suffix: str = ".partial") -> Path:
    """A new empty hidden file next to `path` (same folder, so the rename is atomic)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=suffix, dir=path.parent)
    os.close(fd)
    os.chmod(tmp, 0o666 & ~_UMASK)
    return Path(tmp)


@contextmanager
def atomic_output(path: str | Path, suffix: str = ".partial") -> Iterator[Path]:
    """Yield a temporary path to write; it replaces `path` only if the block succeeds."""
    tmp = temp_beside(path, suffix)
    try:
        yield tmp
        os.chmod(tmp, 0o666 & ~_UMASK)  # again: some writers (safetensors) recreate the file
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
