"""Shared fixtures: real photographs (scikit-image ships them) and the authors' files."""

from __future__ import annotations

import functools
import http.server
import os
import subprocess
import sys
import threading
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest

SHARED = Path(os.environ.get("JSNET_SHARED", Path(__file__).resolve().parents[1] / ".." / "shared"))
OFFICIAL = SHARED / "official"


def pytest_configure(config):
    """The tests' own user cache (exported graphs, compiled models, latency tables): the
    suite neither reads nor fills the cache of the person running it."""
    import tempfile

    os.environ["XDG_CACHE_HOME"] = tempfile.mkdtemp(prefix="jsnet-edge-tests-cache-")
    os.environ.pop("JSNET_EDGE_CACHE", None)


def official_checkpoint(scale: int) -> Path:
    path = OFFICIAL / f"jsnet_sr_x{scale}_official.pt"
    if not path.is_file():
        pytest.skip(f"the authors' checkpoints are not here ({path}); CI has them in ../shared")
    return path


@pytest.fixture(scope="session")
def official_x2():
    from jsnet_edge.models import load_official

    return load_official(official_checkpoint(2), 2)


@pytest.fixture(scope="session")
def photo() -> np.ndarray:
    """A colour photograph, RGB uint8, 512x512."""
    from skimage import data

    return data.astronaut()


@pytest.fixture(scope="session")
def gray_photo() -> np.ndarray:
    from skimage import data

    return data.camera()


@pytest.fixture(scope="session")
def photo_dir(tmp_path_factory) -> Path:
    """A folder of three colour photographs (PNG), for training, search and calibration
    data. Read only."""
    import cv2
    from skimage import data

    d = tmp_path_factory.mktemp("photos")
    for name in ("astronaut", "coffee", "chelsea"):
        cv2.imwrite(str(d / f"{name}.png"), cv2.cvtColor(getattr(data, name)(), cv2.COLOR_RGB2BGR))
    return d


def default_sigint() -> None:
    """`preexec_fn` for a child that a test will Ctrl-C: SIGINT back to its default, as a
    terminal's foreground job has it, even where the test runner was started with SIGINT
    ignored (a background job of a non-interactive shell, as CI may run it): Python then
    never installs its KeyboardInterrupt handler."""
    import signal

    signal.signal(signal.SIGINT, signal.SIG_DFL)


def run_cli(*args: str, cwd: Path | None = None, check: bool = True) -> subprocess.CompletedProcess:
    """Run the real `jsnet-edge` entry point (through the module, same code path)."""
    proc = subprocess.run(
        [sys.executable, "-m", "jsnet_edge", *map(str, args)],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=600,
    )
    if check and proc.returncode != 0:
        raise AssertionError(
            f"jsnet-edge {' '.join(map(str, args))} failed ({proc.returncode}):\n"
            f"{proc.stdout}\n{proc.stderr}"
        )
    return proc


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args) -> None:  # no request log in the test output
        pass


@contextmanager
def serve(folder: Path, handler=QuietHandler):
    """An HTTP server on 127.0.0.1 (a free port) serving `folder`; yields its base URL."""
    server = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), functools.partial(handler, directory=str(folder))
    )
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
