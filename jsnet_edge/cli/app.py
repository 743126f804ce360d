"""The typer application and the options several commands share."""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from jsnet_edge._version import __version__

app = typer.Typer(
    name="jsnet-edge",
    help="JSNet image restoration: search, train, deploy and run on images and video.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"jsnet-edge {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_version, is_eager=True, help="Print the version and exit."
        ),
    ] = False,
) -> None:
    """JSNet image restoration, from architecture search to edge deployment."""


def command_line() -> str:
    """The command as typed, for model cards and reports."""
    return "jsnet-edge " + " ".join(sys.argv[1:])


def note(msg: str) -> None:
    typer.echo(f"note: {msg}", err=True)


def err(msg: str) -> None:
    typer.echo(msg, err=True)


ModelOpt = Annotated[
    str | None,
    typer.Option(
        "--model", "-m", help="Model file (.safetensors) or zoo name (see `jsnet-edge models`)."
    ),
]
TaskOpt = Annotated[
    str | None,
    typer.Option(
        "--task",
        help=(
            "sr-x2, sr-x3, sr-x4, denoise or jpeg: picks the zoo model for the task, or checks "
            "that --model is for it."
        ),
    ),
]
BackendOpt = Annotated[
    str,
    typer.Option(
        "--backend",
        help="auto (the fastest installed), torch, onnxruntime, openvino or tensorrt.",
    ),
]
DeviceOpt = Annotated[str, typer.Option("--device", help="cpu or cuda.")]
PrecisionOpt = Annotated[
    str | None,
    typer.Option(
        "--precision",
        help=(
            "fp32, bf16, fp16 (cuda), int8 (a calibrated .onnx) or auto (bf16 on OpenVINO where "
            "the CPU has it, <= 0.05 dB; a zoo model's shipped INT8 file where it holds <= "
            "0.1 dB and is measured faster; else fp32 or the file's own)."
        ),
    ),
]
TileOpt = Annotated[int, typer.Option("--tile", help="Largest tile side in input pixels.")]
OverlapOpt = Annotated[int, typer.Option("--tile-overlap", help="Overlap between tiles.")]
OverwriteOpt = Annotated[bool, typer.Option("--overwrite", help="Replace existing outputs.")]
RayOpt = Annotated[
    str | None,
    typer.Option(
        "--ray",
        help=(
            "Spread the inputs over a Ray cluster: local (start one here), auto (the cluster "
            "`ray start` made), or its address. Paths must be shared by every node."
        ),
    ),
]
WorkersOpt = Annotated[
    int | None,
    typer.Option(help="Ray workers (default: one per GPU, else per CPU / --threads)."),
]
ThreadsOpt = Annotated[
    int | None, typer.Option(help="CPU threads of the runtime (per worker with --ray).")
]


def run_archive(
    kind: str,
    inputs,
    output,
    model_name: str,
    task,
    restorer_options: dict,
    video=None,
    ray: str | None = None,
    workers: int | None = None,
    overwrite: bool = False,
) -> None:
    """Many inputs into a folder, here or on a Ray cluster; exit 1 if any file failed."""
    from jsnet_edge.distributed import ArchiveConfig, restore_archive
    from jsnet_edge.errors import TargetNotMetError
    from jsnet_edge.runtime.source import load_source
    from jsnet_edge.zoo import check_model_task

    check_model_task(load_source(model_name).info.task, task, model_name)
    extra = {"video": video} if video is not None else {}
    cfg = ArchiveConfig(
        kind=kind, model=model_name, overwrite=overwrite, **restorer_options, **extra
    )

    def report(result: dict) -> None:
        if result["status"] == "failed":
            note(f"{result['input']}: {result['reason']}")

    where = f" on the Ray cluster ({ray})" if ray else ""
    summary = restore_archive(
        inputs, output, cfg, ray_address=ray, workers=workers, progress=True, on_result=report
    )
    typer.echo(f"{kind}s into {output}{where}: {summary.describe(kind)}")
    if summary.failed:
        raise TargetNotMetError(
            f"{len(summary.failed)} of {len(summary.failed) + len(summary.done)} files failed "
            "(reasons above); the others were restored, and a re-run skips them"
        )
