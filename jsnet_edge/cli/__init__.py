"""`jsnet-edge`: a thin command line over the library.

Each command parses its options, builds a config, calls one library function and prints.
Only here are exceptions turned into messages and exit codes (README, "Exit codes"): a user
or environment problem (`JSNetEdgeError`) prints one line and exits 1; a usage error exits
2 (typer); a bug exits 3; Ctrl-C 130 and SIGTERM 143. Nothing the user can cause prints a
traceback.

One module per command group. Commands import the library inside their bodies: torch,
OpenCV and the runtimes take seconds to import, and `jsnet-edge --help` (or the first
video frame) should not wait for the ones a command does not use.
"""

from __future__ import annotations

import errno
import os
import signal
import sys
import warnings
from pathlib import Path

import typer

from jsnet_edge.cli import deploy, images, search, train, video  # noqa: F401 (commands)
from jsnet_edge.cli.app import app
from jsnet_edge.errors import JSNetEdgeError

__all__ = ["app", "main"]

# OS errors that are the machine's state, not a bug: one line and exit 1 wherever they
# escape (a full disk, a quota, a read-only or vanished folder, a name too long)
_ENVIRONMENT_ERRNOS = (
    errno.ENOSPC,
    errno.EDQUOT,
    errno.EROFS,
    errno.EACCES,
    errno.EPERM,
    errno.ENAMETOOLONG,
    errno.EFBIG,
    errno.EIO,
)
# Only writing can cause these: the message names the output and the fix.
_WRITE_ONLY_ERRNOS = (errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.ENAMETOOLONG, errno.EFBIG)

_show_warning = warnings.showwarning

_terminated = False  # SIGTERM, not Ctrl-C, stopped the command: exit 143, not 130


def _on_sigterm(signum: int, frame: object) -> None:
    # A scheduler's stop (docker stop, systemd, Slurm preemption) ends a run the way Ctrl-C
    # does: training saves its checkpoint, video removes (or keeps) its unfinished output.
    global _terminated
    _terminated = True
    raise KeyboardInterrupt


def _stopped() -> int:
    if _terminated:
        typer.echo("terminated (SIGTERM)", err=True)
        return 143
    typer.echo("interrupted", err=True)
    return 130


def _quiet_native_logs() -> None:
    """OpenCV and the FFmpeg inside it print their own warnings for corrupt files (a line
    per damaged packet); ours say what matters in one line. The command line is the
    application, so it may set the environment; JSNET_EDGE_DEBUG=1 keeps them."""
    if os.environ.get("JSNET_EDGE_DEBUG"):
        return
    os.environ.setdefault("OPENCV_LOG_LEVEL", "OFF")
    os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")


def _note_warning(message, category, filename, lineno, file=None, line=None) -> None:
    """Our own warnings (a damaged cache healed, ...) as one `note:` line."""
    from jsnet_edge.cache import CacheHealedWarning
    from jsnet_edge.errors import DroppedContentWarning

    if issubclass(category, (CacheHealedWarning, DroppedContentWarning)):
        typer.echo(f"note: {message}", err=True)
    else:
        _show_warning(message, category, filename, lineno, file, line)


def main() -> None:
    _quiet_native_logs()
    warnings.showwarning = _note_warning
    signal.signal(signal.SIGTERM, _on_sigterm)
    try:
        app()
    except JSNetEdgeError as e:
        typer.echo(f"error: {e}", err=True)
        sys.exit(1)
    except KeyboardInterrupt:
        sys.exit(_stopped())
    except SystemExit as e:  # typer turns a KeyboardInterrupt inside a command into exit 130
        if e.code == 130:
            sys.exit(_stopped())
        raise
    except OSError as e:
        if e.errno not in _ENVIRONMENT_ERRNOS:
            _internal_error(e)
        from jsnet_edge.outputs import write_error_message

        where = Path(e.filename) if isinstance(e.filename, str) else Path("the output")
        if e.errno in _WRITE_ONLY_ERRNOS:
            message = write_error_message(where, e)
        else:  # permission or I/O errors may come from an input as well as an output
            message = f"cannot access {where}: {e.strerror or e}"
        typer.echo(f"error: {message}", err=True)
        sys.exit(1)
    except Exception as e:  # a bug, not a user error: one line, traceback on request
        _internal_error(e)


def _internal_error(e: BaseException) -> None:
    """A bug, not a user error: one line, the traceback on request (called while `e` is
    being handled, so a bare raise re-raises it)."""
    if os.environ.get("JSNET_EDGE_DEBUG"):
        raise e
    typer.echo(
        f"internal error: {type(e).__name__}: {e} (set JSNET_EDGE_DEBUG=1 for the "
        "traceback, and please report it)",
        err=True,
    )
    sys.exit(3)
