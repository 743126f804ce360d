"""The bundled model zoo: weights trained by jsnet-edge's own code, shipped in the package.

Each entry is a safetensors model file beside this module and a model card (Markdown) that
says how it was made and what it measures. The dict is literal on purpose: what exists is
written here, not discovered by scanning folders.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from jsnet_edge.errors import ModelError, OptionError
from jsnet_edge.tasks import check_task

HERE = Path(__file__).parent


@dataclass(frozen=True)
class ZooEntry:
    name: str
    task: str
    summary: str

    @property
    def path(self) -> Path:
        return HERE / f"{self.name}.safetensors"

    @property
    def onnx_path(self) -> Path:
        """The fp32 ONNX exported from the model file, shipped for the real-time models so
        that their first video frame does not wait for torch and an export."""
        return HERE / f"{self.name}.onnx"

    @property
    def int8_path(self) -> Path:
        """The calibrated INT8 ONNX (`jsnet-edge calibrate`) shipped beside some models."""
        return HERE / f"{self.name}-int8.onnx"

    @property
    def card_path(self) -> Path:
        return HERE / f"{self.name}.md"

    def card(self) -> str:
        return self.card_path.read_text() if self.card_path.is_file() else "(no model card)"


ZOO: dict[str, ZooEntry] = {
    "denoise": ZooEntry("denoise", "denoise", "colour Gaussian denoising, blind (sigma 0-50)"),
    "denoise-camera": ZooEntry(
        "denoise-camera",
        "denoise",
        "colour denoising of camera photographs and video (sensor noise, 4:2:0, H.264/JPEG)",
    ),
    "denoise-gray": ZooEntry("denoise-gray", "denoise", "gray Gaussian denoising, sigma 25"),
    "jpeg": ZooEntry("jpeg", "jpeg", "colour JPEG deblocking, blind (quality 10-40)"),
    "sr-x2": ZooEntry("sr-x2", "sr-x2", "x2 super-resolution (bicubic degradation)"),
    "sr-x4": ZooEntry("sr-x4", "sr-x4", "x4 super-resolution (bicubic degradation)"),
    "denoise-rt": ZooEntry(
        "denoise-rt",
        "denoise",
        "real-time colour denoising, blind (sigma 0-50), searched for 640x360 video on 2 CPU cores",
    ),
    "denoise-hd": ZooEntry(
        "denoise-hd",
        "denoise",
        "real-time colour denoising for 720p and 1080p video on 2 CPU cores: denoise-rt with "
        "one residual block and no cross-scale fusion",
    ),
    "sr-x2-rt": ZooEntry(
        "sr-x2-rt",
        "sr-x2",
        "real-time x2 super-resolution, searched for 640x360 -> 1280x720 video on 2 CPU cores",
    ),
}

# The model a task uses when none is named.
DEFAULT_FOR_TASK: dict[str, str] = {
    "denoise": "denoise",
    "jpeg": "jpeg",
    "sr-x2": "sr-x2",
    "sr-x4": "sr-x4",
}


def zoo_entry(name: str) -> ZooEntry:
    if name not in ZOO:
        known = ", ".join(ZOO) or "none bundled in this version"
        raise ModelError(
            f"no model named {name!r} in the zoo (available: {known}); "
            "or pass the path of a .safetensors model file"
        )
    entry = ZOO[name]
    if not entry.path.is_file():
        raise ModelError(
            f"the zoo model {name!r} is missing from the installed package "
            f"({entry.path}); reinstall jsnet-edge"
        )
    return entry


# Video (`jsnet-edge video --task T`) takes the real-time model of a task where there is
# one: per task, (smallest frame in pixels, model), largest first; the first that the
# frame reaches wins. denoise-hd is denoise-rt with one residual block and no cross-scale
# fusion (0.6 the time a frame): from 720p on it runs 1.3-1.5x the frames a second, 0.4-0.7
# dB lower in luma (still 0.7-2 dB above ffmpeg's nlmeans; docs/benchmarks.md); below 720p
# denoise-rt is real time already and keeps the detail.
VIDEO_MODELS: dict[str, tuple[tuple[int, str], ...]] = {
    "denoise": ((1280 * 720, "denoise-hd"), (0, "denoise-rt")),
    "sr-x2": ((0, "sr-x2-rt"),),
}


def default_model_for(task: str, video: bool = False, size: tuple[int, int] | None = None) -> str:
    """The zoo model a task uses; for video its real-time one for frames of `size` (W, H;
    None: unknown, e.g. a camera: the smallest frame's)."""
    if video and task in VIDEO_MODELS:
        pixels = size[0] * size[1] if size else 0
        for least, name in VIDEO_MODELS[task]:
            if pixels >= least and name in ZOO:
                return name
    if task not in DEFAULT_FOR_TASK:
        raise ModelError(f"no bundled model for task {task!r}; pass --model with a model file")
    return DEFAULT_FOR_TASK[task]


def is_video_model(name: str) -> bool:
    """A real-time zoo model (small, body at reduced resolution: whole frames fit)."""
    return any(name == m for rows in VIDEO_MODELS.values() for _, m in rows)


def pick_model(
    model: str | None,
    task: str | None,
    video: bool = False,
    size: tuple[int, int] | None = None,
) -> str:
    """The model to use: `model` if given (check it with `check_model_task` once loaded),
    else the task's default (for video its real-time model for frames of `size`, where
    the zoo has one)."""
    if task is not None:
        check_task(task)
    if model is None:
        if task is None:
            raise OptionError("give --model (a model file or zoo name) or --task")
        return default_model_for(task, video, size)
    return model


def check_model_task(model_task: str, task: str | None, model: str) -> None:
    """Refuse a model made for another task than the one asked for."""
    if task is not None and model_task != task:
        raise OptionError(
            f"model {model} is for {model_task}, not {task}; "
            f"pick a {task} model (see `jsnet-edge models`)"
        )
