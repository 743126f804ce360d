"""`jsnet-edge models fetch authors-x2` and first use of `authors-x2`: the authors'
checkpoints served over a real HTTP server on 127.0.0.1 (from ../shared/official), checked
by sha256, converted, and kept in a temporary user cache."""

from __future__ import annotations

import socket
from pathlib import Path

import numpy as np
import pytest

from conftest import OFFICIAL, QuietHandler, official_checkpoint, run_cli, serve
from jsnet_edge.errors import DownloadError
from jsnet_edge.models.authors import AUTHORS, URL_VARIABLE, authors_folder, fetch


class _CutShort(QuietHandler):
    """Announces the whole file, sends half of it and hangs up."""

    def do_GET(self) -> None:
        data = (Path(self.directory) / Path(self.path).name).read_bytes()
        self.send_response(200)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data[: len(data) // 2])
        self.wfile.flush()
        self.close_connection = True


def nothing_listening() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}"


@pytest.fixture
def cache(tmp_path, monkeypatch) -> Path:
    official_checkpoint(2)  # skips, saying why, where ../shared/official is absent
    monkeypatch.setenv("JSNET_EDGE_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


def kept() -> list[Path]:
    """What the cache's authors folder holds (hidden partial files included)."""
    folder = authors_folder()
    return sorted(folder.iterdir()) if folder.is_dir() else []


def test_sha256_values_are_those_of_the_released_files(monkeypatch):
    import hashlib

    monkeypatch.delenv(URL_VARIABLE, raising=False)
    for c in AUTHORS.values():
        path = official_checkpoint(c.scale)
        assert hashlib.sha256(path.read_bytes()).hexdigest() == c.sha256
        assert c.url.startswith("https://github.com/it-hao/JSNet/raw/")


def test_fetch_downloads_checks_converts_and_then_uses_the_cache(cache, monkeypatch):
    from jsnet_edge.restorer import Restorer

    with serve(OFFICIAL) as url:
        monkeypatch.setenv(URL_VARIABLE, url)
        proc = run_cli("models", "fetch", "authors-x2")
    path = authors_folder() / "authors-x2.safetensors"
    assert str(path) in proc.stdout and path.is_file()
    card = (authors_folder() / "authors-x2.md").read_text()
    assert "github.com/it-hao/JSNet" in card and AUTHORS["authors-x2"].sha256 in card
    assert "licence" in card
    stamp = path.stat().st_mtime_ns
    # Second run, now offline: the cache answers, nothing is downloaded or rewritten.
    monkeypatch.setenv(URL_VARIABLE, nothing_listening())
    assert fetch("authors-x2") == path and path.stat().st_mtime_ns == stamp
    r = Restorer("authors-x2", backend="torch", color_order="rgb")
    assert (
        r.task == "sr-x2" and r.info.provenance["checkpoint_sha256"] == AUTHORS["authors-x2"].sha256
    )
    assert "it-hao/JSNet" in r.info.provenance["url"]
    out = r(np.full((20, 24, 3), 128, np.uint8))
    assert out.shape == (40, 48, 3)
    assert "authors-x2" in run_cli("models").stdout


def test_first_use_of_the_name_fetches_it(cache, monkeypatch):
    from jsnet_edge.restorer import Restorer

    with serve(OFFICIAL) as url:
        monkeypatch.setenv(URL_VARIABLE, url)
        r = Restorer.from_pretrained("authors-x2", backend="torch")
    assert r.scale == 2 and (authors_folder() / "authors-x2.safetensors").is_file()


def test_a_mirror_can_be_a_plain_folder(cache, monkeypatch):
    """The offline error says to point JSNET_EDGE_AUTHORS_URL at a folder: a path works."""
    monkeypatch.setenv(URL_VARIABLE, str(OFFICIAL))
    assert fetch("authors-x2", progress=False) == authors_folder() / "authors-x2.safetensors"
    assert (authors_folder() / "authors-x2.safetensors").is_file()


def test_wrong_hash_keeps_nothing(cache, tmp_path, monkeypatch):
    wrong = tmp_path / "mirror"
    wrong.mkdir()
    (wrong / "jsnet_sr_x2_official.pt").symlink_to(OFFICIAL / "jsnet_sr_x3_official.pt")
    with serve(wrong) as url:
        monkeypatch.setenv(URL_VARIABLE, url)
        with pytest.raises(DownloadError, match="did not give the authors' x2 checkpoint"):
            fetch("authors-x2", progress=False)
    assert kept() == []


def test_truncated_download_keeps_nothing(cache, monkeypatch):
    with serve(OFFICIAL, _CutShort) as url:
        monkeypatch.setenv(URL_VARIABLE, url)
        with pytest.raises(DownloadError, match="cut short"):
            fetch("authors-x2", progress=False)
    assert kept() == []


def test_offline_says_what_to_download_and_where(cache, monkeypatch):
    dead = nothing_listening()
    monkeypatch.setenv(URL_VARIABLE, dead)
    proc = run_cli("models", "fetch", "authors-x2", check=False)
    assert proc.returncode == 1
    (line,) = proc.stderr.strip().splitlines()
    dest = authors_folder() / "jsnet_sr_x2_official.pt"
    assert f"{dead}/jsnet_sr_x2_official.pt" in line and str(dest) in line
    # Doing what it says works without the network.
    dest.parent.mkdir(parents=True, exist_ok=True)
    dest.write_bytes((OFFICIAL / "jsnet_sr_x2_official.pt").read_bytes())
    assert fetch("authors-x2").is_file()
