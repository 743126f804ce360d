"""Restoring whole archives: many images and videos, on one machine or a Ray cluster.

We do not write a scheduler: Ray runs the work. Each Ray worker is an actor that holds one
`Restorer` for its whole life (the model loads once per worker), one GPU per actor where
the cluster has GPUs, else the CPU threads it was given; files go to the actors one at a
time as they free up. Without Ray the same plan runs here, file after file.

Guarantees are the single machine's: every output is written through the output guard
(atomic; never replacing a file without `overwrite`), outputs already there are skipped (a
re-run resumes), a file that fails is reported with its reason while the rest go on, and
the restored files are those of `jsnet-edge image` / `video` with the same model, backend
and precision (bit for bit for images).
"""

from __future__ import annotations

import contextlib
import signal
import socket
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from pathlib import Path

from jsnet_edge.errors import JSNetEdgeError, MissingDependencyError, OptionError
from jsnet_edge.image_files import restore_image_file
from jsnet_edge.images import IMAGE_SUFFIXES, is_image_path, list_images
from jsnet_edge.outputs import check_output
from jsnet_edge.restorer import Restorer
from jsnet_edge.video.config import VideoConfig
from jsnet_edge.video.pipeline import process
from jsnet_edge.video.writers import container_for

VIDEO_SUFFIXES = (
    ".mp4",
    ".m4v",
    ".mov",
    ".mkv",
    ".avi",
    ".webm",
    ".mts",
    ".m2ts",
    ".ts",
    ".mpg",
    ".mpeg",
    ".wmv",
    ".flv",
    ".3gp",
)
RAY_MISSING = "Ray is not installed: pip install 'jsnet-edge[ray]'"


@dataclass(frozen=True)
class ArchiveConfig:
    """How an archive is restored: the Restorer every worker builds, and the outputs.

    Args:
        kind: "image" or "video".
        model, backend, device, precision, tile, tile_overlap: as for `Restorer`.
        threads: CPU threads per worker (runtimes and torch); None: the runtime's choice.
        video: codec, batch ... of each video (its `overwrite` is this config's).
    """

    kind: str
    model: str
    backend: str = "auto"
    device: str = "cpu"
    precision: str | None = "auto"
    tile: int = 512
    tile_overlap: int = 32
    overwrite: bool = False
    threads: int | None = None
    video: VideoConfig = field(default_factory=VideoConfig)

    def __post_init__(self) -> None:
        if self.kind not in ("image", "video"):
            raise OptionError(f"kind must be image or video, not {self.kind!r}")
        if self.threads is not None and self.threads < 1:
            raise OptionError(f"--threads must be at least 1, got {self.threads}")

    def restorer(self) -> Restorer:
        order = "bgr"  # OpenCV's order: files are read and written without conversion
        return Restorer(
            self.model,
            backend=self.backend,
            device=self.device,
            precision=self.precision,
            tile=self.tile,
            tile_overlap=self.tile_overlap,
            color_order=order,
            threads=self.threads,
        )


@dataclass
class Summary:
    done: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)  # input -> reason
    units: int = 0  # images, or video frames, restored
    seconds: float = 0.0
    workers: int = 1

    def describe(self, kind: str) -> str:
        what = "images" if kind == "image" else "frames"
        rate = f"{self.units / self.seconds:.2f} {what}/s" if self.seconds > 0 else ""
        return (
            f"{len(self.done)} done, {len(self.skipped)} skipped (already there), "
            f"{len(self.failed)} failed; {self.units} {what} in {self.seconds:.1f} s on "
            f"{self.workers} worker{'s' if self.workers != 1 else ''}"
            + (f": {rate}" if rate else "")
        )


def expand_inputs(inputs: Iterable[str | Path], kind: str) -> list[Path]:
    """Files, folders (their images or videos) and text files listing paths (one a line,
    relative to the list) as one list without repeats, in the order given. A missing
    input, a listed path that does not exist and a folder without any are refused here,
    before any work. Linear in the number of files."""
    suffixes = IMAGE_SUFFIXES if kind == "image" else VIDEO_SUFFIXES
    found: list[Path] = []
    for item in map(Path, inputs):
        if item.is_dir():
            if kind == "image":
                here = list_images(item)
            else:
                here = sorted(
                    p for p in item.iterdir() if p.is_file() and p.suffix.lower() in suffixes
                )
            if not here:
                raise OptionError(f"folder {item} holds no {kind}s")
            found += here
        elif item.suffix.lower() == ".txt" and item.is_file():
            for line in item.read_text(errors="replace").splitlines():
                if line.strip() and not line.lstrip().startswith("#"):
                    p = Path(line.strip())
                    p = p if p.is_absolute() else item.parent / p
                    if not p.is_file():
                        raise OptionError(
                            f"{p} (listed in {item}) does not exist or is not a file; fix the list"
                        )
                    found.append(p)
        elif item.exists():
            found.append(item)
        else:
            raise OptionError(f"input {item} does not exist")
    unique = list(dict.fromkeys(p.resolve() for p in found))
    if not unique:
        raise OptionError(f"no {kind}s found in the inputs")
    return unique


def plan_outputs(
    sources: list[Path], out_dir: Path, kind: str, codec: str | None = None
) -> list[tuple[Path, Path]]:
    """Each input's output in `out_dir`: images keep their name; videos keep their stem,
    in their own container where we write it and it holds `codec` (see `container_for`)."""
    if out_dir.exists() and not out_dir.is_dir():
        raise OptionError(f"the output {out_dir} is a file; give a folder for many inputs")
    if out_dir.suffix and (is_image_path(out_dir) or out_dir.suffix.lower() in VIDEO_SUFFIXES):
        raise OptionError(f"several inputs need an output folder, not the file {out_dir}")
    plan = []
    for src in sources:
        if kind == "image":
            name = src.name
        else:
            name = src.stem + container_for(codec, src.suffix)
        plan.append((src, out_dir / name))
    dup = [t for t, n in Counter(dst for _, dst in plan).items() if n > 1]
    if dup:
        raise OptionError(
            f"several inputs are named {sorted(dup)[0].name}; restore them separately"
        )
    inputs = set(sources)
    for _, dst in plan:
        if dst.resolve() in inputs:
            raise OptionError(f"the output {dst} is one of the inputs; choose another folder")
    out_dir.mkdir(parents=True, exist_ok=True)
    check_output(out_dir / ".jsnet-edge-write-check", overwrite=True)  # writable, first
    return plan


def restore_one(restorer: Restorer, cfg: ArchiveConfig, src: Path, dst: Path) -> dict:
    """One file, as the single-machine command restores it; a result, never an exception."""
    try:
        if dst.exists() and not cfg.overwrite:
            return {"input": str(src), "status": "skipped"}
        if cfg.kind == "image":
            restore_image_file(restorer, src, dst, overwrite=cfg.overwrite)
            units = 1
        else:
            video = VideoConfig(**{**cfg.video.__dict__, "overwrite": cfg.overwrite})
            stats = process(src, dst, restorer, video)
            units = stats.frames_restored
        return {"input": str(src), "status": "done", "units": units}
    except JSNetEdgeError as e:
        return {"input": str(src), "status": "failed", "reason": str(e)}
    except Exception as e:  # noqa: BLE001 - one file's bug must not stop the archive
        return {"input": str(src), "status": "failed", "reason": f"{type(e).__name__}: {e}"}


class _Worker:
    """A Ray actor: one Restorer for its life, many files."""

    def __init__(self, cfg: ArchiveConfig) -> None:
        if cfg.threads:
            import torch

            torch.set_num_threads(cfg.threads)  # its own process: no one else's setting
        self.cfg = cfg
        self.restorer = cfg.restorer()

    def restore(self, src: str, dst: str) -> dict:
        return restore_one(self.restorer, self.cfg, Path(src), Path(dst))

    def chosen(self) -> tuple[str, str]:
        """The backend and precision this worker's Restorer runs (what "auto" picked)."""
        return self.restorer.backend.name, self.restorer.backend.precision


def connect(address: str, workers: int | None, threads: int = 1):
    """ray.init for `address`: "local" starts a cluster on this machine (with `workers` x
    `threads` CPUs when `workers` is given: each actor asks for `threads` CPUs, and a
    cluster smaller than that would leave actors waiting forever), "auto" joins the
    cluster `ray start` made here, else its address."""
    try:
        import ray
    except ImportError:
        raise MissingDependencyError(RAY_MISSING) from None
    if ray.is_initialized():
        return ray
    kwargs = dict(include_dashboard=False, log_to_driver=False, configure_logging=False)
    if address not in ("local", "auto"):
        probe(address)
    with _own_sigterm():
        if address == "local":
            ray.init(num_cpus=workers * threads if workers else None, **kwargs)
        else:
            try:
                ray.init(address=address, **kwargs)
            except (ConnectionError, RuntimeError, ValueError) as e:
                raise OptionError(f"cannot join the Ray cluster at {address!r}: {e}") from None
    return ray


@contextlib.contextmanager
def _own_sigterm():
    """ray.init installs its own SIGTERM handler in the driver, which aborts the process
    with a stack dump (exit 134); the command's handler (stop cleanly, exit 143) is put
    back."""
    main = threading.current_thread() is threading.main_thread()
    previous = signal.getsignal(signal.SIGTERM) if main else None
    try:
        yield
    finally:
        if main and previous is not None:
            signal.signal(signal.SIGTERM, previous)


def probe(address: str, timeout: float = 5.0) -> None:
    """Refuse at once an address where nothing listens: ray.init would retry for
    minutes, with a warning every few seconds."""
    client = address.startswith("ray://")
    hostport = address.removeprefix("ray://")
    host, _, port = hostport.rpartition(":")
    if not host or not port.isdigit():  # no port: Ray's own (client 10001, GCS 6379)
        host, port = hostport, "10001" if client else "6379"
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=timeout).close()
    except OSError as e:
        raise OptionError(
            f"cannot join the Ray cluster at {address!r}: nothing answers at {host}:{port} "
            f"({e.strerror or e}); start one there with `ray start --head`, or give "
            "--ray local"
        ) from None


def restore_archive(
    inputs: Iterable[str | Path],
    out_dir: str | Path,
    cfg: ArchiveConfig,
    *,
    ray_address: str | None = None,
    workers: int | None = None,
    progress: bool = False,
    on_result: Callable[[dict], None] | None = None,
) -> Summary:
    """Restore every input into `out_dir`, here or on a Ray cluster (`ray_address`:
    "local", "auto" or an address). Paths must be the same on every node (a shared
    filesystem)."""
    from tqdm import tqdm

    out_dir = Path(out_dir)
    if ray_address not in (None, "local", "auto"):
        probe(ray_address)  # before the plan and the progress bar: a wrong address is told
    sources = expand_inputs(inputs, cfg.kind)
    plan = plan_outputs(sources, out_dir, cfg.kind, cfg.video.codec)
    summary = Summary()
    todo = []
    for src, dst in plan:
        if dst.exists() and not cfg.overwrite:
            summary.skipped.append(str(src))
        else:
            todo.append((src, dst))
    bar = tqdm(
        total=len(plan),
        initial=len(summary.skipped),
        unit=cfg.kind,
        file=sys.stderr,
        disable=not progress,
        dynamic_ncols=True,
    )
    start = time.perf_counter()
    try:
        for result in _run(todo, cfg, ray_address, workers, summary):
            status = result["status"]
            if status == "done":
                summary.done.append(result["input"])
                summary.units += result["units"]
            elif status == "skipped":
                summary.skipped.append(result["input"])
            else:
                summary.failed[result["input"]] = result["reason"]
            if on_result is not None:
                on_result(result)
            bar.update(1)
    finally:
        bar.close()
        summary.seconds = time.perf_counter() - start
    return summary


def _run(todo, cfg: ArchiveConfig, ray_address: str | None, workers: int | None, summary):
    if not todo:
        return
    if ray_address is None:
        restorer = cfg.restorer()
        for src, dst in todo:
            yield restore_one(restorer, cfg, src, dst)
        return
    ray = connect(ray_address, workers, cfg.threads or 1)
    from ray.util import ActorPool

    resources = ray.cluster_resources()
    gpus = resources.get("GPU", 0)
    if gpus and not cfg.device.startswith("cuda"):
        gpus = 0  # a CPU run on a cluster with GPUs takes CPUs only
    cpus, threads = resources.get("CPU", 0), cfg.threads or 1
    if not gpus and threads > cpus:
        raise OptionError(
            f"each Ray worker asks for --threads {cfg.threads} CPUs but the cluster has "
            f"{cpus:g}; lower --threads"
        )
    count = workers or int(gpus or max(1, (cpus or 1) // threads))
    count = max(1, min(count, len(todo)))
    summary.workers = count
    options = {"num_gpus": 1} if gpus else {"num_cpus": threads}
    # A worker that dies (killed, out of memory, its node lost) is restarted and the file
    # it held is tried again, as often as this; the rest of the archive goes on meanwhile.
    options.update(max_restarts=RESTARTS, max_task_retries=RESTARTS)
    actor = ray.remote(**options)(_Worker)
    first = actor.remote(cfg)
    if cfg.backend == "auto" or cfg.precision == "auto":
        # Every worker runs what the first one picked: workers measuring at the same
        # moment on shared cores could pick differently, and one archive would then mix
        # precisions (outputs must match a single-machine run bit for bit).
        backend, precision = ray.get(first.chosen.remote())
        cfg = replace(cfg, backend=backend, precision=precision)
    actors = [first] + [actor.remote(cfg) for _ in range(count - 1)]
    pool = ActorPool(actors)
    try:
        yield from pool.map_unordered(
            lambda a, job: a.restore.remote(str(job[0]), str(job[1])), todo
        )
    finally:  # stopped (Ctrl-C, SIGTERM) or done: the workers go, not a core dump at exit
        for a in actors:
            ray.kill(a, no_restart=True)


RESTARTS = 3
