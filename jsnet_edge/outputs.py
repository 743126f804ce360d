"""The one guard for every file jsnet-edge writes.

Every command and library function that writes a file goes through here, so that one set
of rules holds everywhere:

- `check_output` before any work: refuse writing over an input (whatever path names it), a
  folder, an existing file without `overwrite`, or into a folder that cannot be written.
- `atomic_output` for the write itself: the data goes to a hidden temporary file beside
  the target and is renamed there only when complete, so an error, a full disk or Ctrl-C
  never leaves a truncated file under the name asked for, and never destroys an existing
  file before its replacement is whole. Without `overwrite` the final rename refuses to
  replace a file that appeared meanwhile (another run writing the same output).
- `write_bytes` / `write_text` / `write_json` for small files (reports, sidecars, tables).

Temporary files get the permissions a plain `open()` would (mkstemp's default is
owner-only).
"""

from __future__ import annotations

import errno
import json
import os
import tempfile
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

from jsnet_edge.errors import OptionError, OutputExistsError, OutputWriteError


def _read_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


_UMASK = _read_umask()  # read once: os.umask is process-wide and not thread-safe


def exists_message(path: Path) -> str:
    return f"{path} exists; pass --overwrite to replace it"


def same_file(a: Path, b: Path) -> bool:
    """Whether two paths name one file (also through links or different spellings)."""
    if a.resolve() == b.resolve():
        return True
    try:
        return a.exists() and b.exists() and os.path.samefile(a, b)
    except OSError:
        return False


def _nearest_folder(path: Path) -> Path:
    """The folder `path` will be created in, or its nearest existing ancestor."""
    parent = path.absolute().parent
    while not parent.exists() and parent != parent.parent:
        parent = parent.parent
    return parent


def check_output(
    path: str | Path,
    *,
    overwrite: bool,
    inputs: Iterable[str | Path] = (),
    what: str = "output",
) -> Path:
    """Refuse, before any work, an output that would overwrite an input, is a folder,
    exists (without `overwrite`), or lies in a folder that cannot be written."""
    path = Path(path)
    _check_name_length(path, what)
    for p in inputs:
        if same_file(path, Path(p)):
            raise OptionError(
                f"the {what} {path} is one of the inputs (it is the input {p}); choose "
                f"another {what}"
            )
    if path.is_dir():
        raise OptionError(f"the {what} {path} is a folder; give a file name")
    if path.exists() and not overwrite:
        raise OutputExistsError(exists_message(path))
    folder = _nearest_folder(path)
    if not folder.is_dir():
        raise OutputWriteError(f"cannot write {path}: {folder} is not a folder")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise OutputWriteError(
            f"cannot write {path}: the folder {folder} is not writable; choose another output"
        )
    return path


def _short(path: Path, keep: int = 80) -> str:
    text = str(path)
    return text if len(text) <= keep else f"{text[: keep // 2]}...{text[-keep // 2 :]}"


def _check_name_length(path: Path, what: str) -> None:
    """File names and paths over the filesystem's limits (255 bytes a name, 4096 a path
    on Linux) are refused in one line before any work."""
    folder = _nearest_folder(path) if len(os.fsencode(str(path.absolute()))) < 4096 else None

    def limit(name: str, default: int) -> int:
        try:
            return os.pathconf(folder, name) if folder is not None else default
        except (OSError, ValueError):
            return default

    n = len(os.fsencode(path.name))
    name_max = limit("PC_NAME_MAX", 255)
    if n > name_max:
        raise OutputWriteError(
            f"cannot write {_short(path)}: the {what} name is {n} bytes, over the "
            f"{name_max}-byte limit of its filesystem; choose a shorter name"
        )
    n = len(os.fsencode(str(path.absolute())))
    path_max = limit("PC_PATH_MAX", 4096)
    if n >= path_max:
        raise OutputWriteError(
            f"cannot write {_short(path)}: its full path is {n} bytes, over the "
            f"{path_max}-byte limit; write it in a shallower folder"
        )


def temp_beside(path: str | Path, suffix: str = ".partial") -> Path:
    """A new empty hidden file next to `path` (same folder, so the rename is atomic). Its
    name is short (the start of the target's stem): a target whose name is near the
    filesystem's limit must not fail for its temporary name."""
    path = Path(path)
    stem = os.fsencode(path.stem)[:32].decode("utf-8", errors="ignore")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{stem}.", suffix=suffix[-24:], dir=path.parent)
    except OSError as e:
        raise OutputWriteError(write_error_message(path, e)) from None
    os.close(fd)
    os.chmod(tmp, 0o666 & ~_UMASK)
    return Path(tmp)


def write_error_message(path: Path, e: OSError) -> str:
    """One line for an OS error while writing `path`, naming the cause and the fix."""
    if e.errno == errno.ENOSPC:
        return f"cannot write {path}: the disk is full; free some space or choose another output"
    if e.errno == errno.EDQUOT:
        return f"cannot write {path}: the disk quota is exhausted; free some space"
    if e.errno in (errno.EROFS, errno.EACCES, errno.EPERM):
        return f"cannot write {path}: its folder is read-only or not writable ({e.strerror})"
    if e.errno == errno.ENAMETOOLONG:
        return f"cannot write {_short(path)}: the name or path is too long; choose a shorter one"
    return f"cannot write {path}: {e.strerror or e}"


def commit(tmp: Path, path: Path, *, overwrite: bool) -> None:
    """Rename the complete `tmp` to `path`; without `overwrite`, never replace a file that
    appeared meanwhile (a hard link fails if the name exists; where links are not
    supported, an existence check just before the rename is the fallback)."""
    os.chmod(tmp, 0o666 & ~_UMASK)  # again: some writers (safetensors) recreate the file
    if overwrite:
        os.replace(tmp, path)
        return
    try:
        os.link(tmp, path)
    except FileExistsError:
        raise OutputExistsError(
            f"{path} was created by something else while this ran; the result was not "
            "written (pass --overwrite to replace it)"
        ) from None
    except OSError as e:
        if e.errno not in (errno.EPERM, errno.EOPNOTSUPP, errno.EXDEV, errno.EMLINK):
            raise
        if path.exists():
            raise OutputExistsError(exists_message(path)) from None
        os.replace(tmp, path)
        return
    tmp.unlink()


@contextmanager
def atomic_output(
    path: str | Path, *, overwrite: bool = True, suffix: str = ".partial"
) -> Iterator[Path]:
    """Yield a temporary path to write; it replaces `path` only if the block succeeds.

    OS errors while writing or renaming (a full disk, a read-only folder) become one
    `OutputWriteError` naming the file and the cause; the temporary file is removed.
    """
    path = Path(path)
    tmp = temp_beside(path, suffix)
    try:
        yield tmp
        commit(tmp, path, overwrite=overwrite)
    except OSError as e:
        raise OutputWriteError(write_error_message(path, e)) from None
    finally:
        if tmp.exists():
            tmp.unlink()


def write_bytes(path: str | Path, data: bytes, *, overwrite: bool = True) -> Path:
    path = Path(path)
    if not overwrite and path.exists():
        raise OutputExistsError(exists_message(path))
    with atomic_output(path, overwrite=overwrite) as tmp:
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
    return path


def write_text(path: str | Path, text: str, *, overwrite: bool = True) -> Path:
    return write_bytes(path, text.encode("utf-8"), overwrite=overwrite)


def write_json(path: str | Path, data, *, overwrite: bool = True, indent: int = 2) -> Path:
    return write_text(path, json.dumps(data, indent=indent) + "\n", overwrite=overwrite)
