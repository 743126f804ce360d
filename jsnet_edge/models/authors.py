"""The authors' released SR checkpoints as models named `authors-x2`, `authors-x3` and
`authors-x4`: downloaded from the authors' repository on first use, checked, converted.

jsnet-edge does not ship the authors' weights (their repository states no licence, so they
are not ours to redistribute); it fetches them for the user from the authors, at a pinned
commit, and checks each file's sha256 before anything reads it. The conversion is the one
`convert-official` does (`load_official`: `torch.load(weights_only=True)`, no code runs).
The converted model and a model card naming the source and its terms are kept in the user
cache (`jsnet_edge.cache`, folder `authors/`), so later runs read them without the network.

`JSNET_EDGE_AUTHORS_URL` points the download at another folder (a mirror, a file server on
an offline network, a folder on this machine, as a path or a `file://` address) holding
the files under the names this module gives them (`jsnet_sr_x2_official.pt` ...).
Offline, the error says which file to fetch and where to put it: a file placed there is
checked and converted like a download.
"""

from __future__ import annotations

import hashlib
import http.client
import os
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from jsnet_edge.cache import cache_dir
from jsnet_edge.errors import DownloadError, ModelError
from jsnet_edge.outputs import write_bytes, write_text

REPOSITORY = "https://github.com/it-hao/JSNet"
COMMIT = "3dcc79857a09e3f877bb700e44276df55b6c9c1a"
PAPER = (
    "Shen, Liao, Zhao, Tian, Huang: Joint operation and attention block search for "
    "lightweight image restoration. Pattern Recognition 132 (2022) 108909, "
    "doi 10.1016/j.patcog.2022.108909"
)
TERMS = (
    "The authors' repository states no licence: the weights remain the authors' work. "
    "jsnet-edge does not redistribute them; it downloads them from the authors for your "
    "use. Cite the paper when you publish results made with them, and ask the authors "
    "before redistributing them."
)
URL_VARIABLE = "JSNET_EDGE_AUTHORS_URL"
TIMEOUT_S = 30.0
CHUNK = 1 << 16


@dataclass(frozen=True)
class AuthorsCheckpoint:
    """One released checkpoint: where the authors keep it, and what its bytes must hash to."""

    name: str
    scale: int
    repo_path: str  # inside the authors' repository, at COMMIT
    sha256: str

    @property
    def filename(self) -> str:
        """The name the file is kept under (in the cache, and in a mirror folder)."""
        return f"jsnet_sr_x{self.scale}_official.pt"

    @property
    def url(self) -> str:
        mirror = os.environ.get(URL_VARIABLE)
        if mirror and "://" not in mirror:  # a plain folder on this machine
            return (Path(mirror).expanduser().resolve() / self.filename).as_uri()
        if mirror:
            return f"{mirror.rstrip('/')}/{self.filename}"
        return f"{REPOSITORY}/raw/{COMMIT}/{self.repo_path}"


def _checkpoint(scale: int, sha256: str) -> AuthorsCheckpoint:
    folder = f"exp_final/TestCode/pre_train_model/exp_final_x{scale}_layers_5"
    return AuthorsCheckpoint(f"authors-x{scale}", scale, f"{folder}/model_best.pt", sha256)


AUTHORS: dict[str, AuthorsCheckpoint] = {
    c.name: c
    for c in (
        _checkpoint(2, "3020d1ccb371f64f307d16a6c1c48be1de9f932ec4e35b9ae4e0e0151b6ceacd"),
        _checkpoint(3, "3e19aca5741e2916c94abeaf922a9d9e5ccd87ba9b427a4b0112559ef7c84359"),
        _checkpoint(4, "82c0a2cdf2d44e953c66ac836eae4e77d7e51a1f96c257db8b9a87287737e646"),
    )
}


def authors_folder() -> Path:
    """Where downloads, converted models and their cards are kept."""
    try:
        return cache_dir("authors")
    except LookupError:
        raise ModelError(
            "the authors' models live in the user cache, and caching is off (JSNET_EDGE_CACHE "
            "is empty); set JSNET_EDGE_CACHE to a folder, or convert the checkpoint yourself "
            "with `jsnet-edge convert-official CKPT --scale S -o model.safetensors`"
        ) from None


def model_path(name: str) -> Path:
    return authors_folder() / f"{name}.safetensors"


def card_path(name: str) -> Path:
    return authors_folder() / f"{name}.md"


def is_fetched(name: str) -> bool:
    try:
        return model_path(name).is_file()
    except ModelError:  # caching is off: nothing is kept
        return False


def fetch(name: str, progress: bool | None = None) -> Path:
    """The converted model file of `name` ("authors-x2" ...): from the cache, else from a
    checkpoint placed in the cache folder, else downloaded; always sha256-checked.

    progress: a progress bar on stderr; None: where stderr is a terminal.
    """
    if name not in AUTHORS:
        raise ModelError(f"no authors' model named {name!r} (there are {', '.join(AUTHORS)})")
    ckpt = AUTHORS[name]
    out = model_path(name)
    if out.is_file():
        return out
    raw = authors_folder() / ckpt.filename
    if raw.is_file():
        digest = hashlib.sha256(raw.read_bytes()).hexdigest()
        if digest != ckpt.sha256:
            raise DownloadError(
                f"{raw} is not the authors' x{ckpt.scale} checkpoint (sha256 {digest[:12]}..., "
                f"expected {ckpt.sha256[:12]}...); delete it and run `jsnet-edge models fetch "
                f"{name}` again"
            )
    else:
        write_bytes(raw, _download(ckpt, raw, progress))
    return _convert(ckpt, raw, out)


def _offline_hint(ckpt: AuthorsCheckpoint, dest: Path) -> str:
    return (
        f"download {ckpt.url} and put it at {dest} (or set {URL_VARIABLE} to a folder holding it)"
    )


def _download(ckpt: AuthorsCheckpoint, dest: Path, progress: bool | None) -> bytes:
    """The checkpoint's bytes, complete and with the expected sha256, or a DownloadError
    (nothing is written before the bytes are checked)."""
    from tqdm import tqdm

    url = ckpt.url
    try:
        response = urllib.request.urlopen(url, timeout=TIMEOUT_S)
    except urllib.error.HTTPError as e:
        raise DownloadError(
            f"cannot download the authors' x{ckpt.scale} checkpoint: {url} answered "
            f"{e.code} {e.reason}; {_offline_hint(ckpt, dest)}"
        ) from None
    except (urllib.error.URLError, OSError, ValueError) as e:
        reason = getattr(e, "reason", e)
        raise DownloadError(
            f"cannot download the authors' x{ckpt.scale} checkpoint ({reason}); "
            f"{_offline_hint(ckpt, dest)}"
        ) from None
    data = bytearray()
    with response:
        length = response.headers.get("Content-Length")
        total = int(length) if length and length.isdigit() else None
        bar = tqdm(
            total=total,
            unit="B",
            unit_scale=True,
            desc=f"{ckpt.name} from the authors",
            disable=None if progress is None else not progress,
            leave=False,
        )
        with bar:
            try:
                while chunk := response.read(CHUNK):
                    data += chunk
                    bar.update(len(chunk))
            except (http.client.HTTPException, OSError) as e:
                raise DownloadError(
                    f"the download of {url} was cut short after {len(data)} bytes "
                    f"({type(e).__name__}); run the command again, or "
                    f"{_offline_hint(ckpt, dest)}"
                ) from None
    if total is not None and len(data) != total:
        raise DownloadError(
            f"the download of {url} was cut short ({len(data)} of {total} bytes); run the "
            f"command again, or {_offline_hint(ckpt, dest)}"
        )
    digest = hashlib.sha256(data).hexdigest()
    if digest != ckpt.sha256:
        raise DownloadError(
            f"{url} did not give the authors' x{ckpt.scale} checkpoint (sha256 "
            f"{digest[:12]}..., expected {ckpt.sha256[:12]}...); nothing was kept. Check "
            f"{URL_VARIABLE}, or {_offline_hint(ckpt, dest)}"
        )
    return bytes(data)


def _convert(ckpt: AuthorsCheckpoint, raw: Path, out: Path) -> Path:
    from jsnet_edge.models.modelfile import save_model
    from jsnet_edge.models.official import load_official

    net = load_official(raw, ckpt.scale)
    net.provenance = {
        **net.provenance,
        "source": f"the authors' released x{ckpt.scale} checkpoint, converted by jsnet-edge",
        "url": f"{REPOSITORY}/blob/{COMMIT}/{ckpt.repo_path}",
        "terms": TERMS,
    }
    write_text(card_path(ckpt.name), card(ckpt))
    save_model(net, out, overwrite=True)
    return out


def card(ckpt: AuthorsCheckpoint) -> str:
    """The model card kept beside the converted model: where it came from, on what terms."""
    return (
        f"# {ckpt.name}\n\n"
        f"The authors' JSNet x{ckpt.scale} super-resolution network, as they released it "
        "(bicubic degradation, trained on DIV2K), converted to a jsnet-edge model file.\n\n"
        "| | |\n|---|---|\n"
        f"| task | sr-x{ckpt.scale} |\n"
        f"| source | {REPOSITORY}/blob/{COMMIT}/{ckpt.repo_path} |\n"
        f"| commit | {COMMIT} |\n"
        f"| sha256 | {ckpt.sha256} |\n"
        f"| paper | {PAPER} |\n"
        "| conversion | `torch.load(weights_only=True)` (no code runs), weight norm folded, "
        "`cpam` -> `csfm`, `up` -> `tail` |\n\n"
        f"## Terms\n\n{TERMS}\n"
    )
