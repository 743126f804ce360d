"""`jsnet-edge`: a thin command line over the library.

Each command parses its options, calls one library function, and prints. Only here are
exceptions turned into messages and exit codes: a user error (`JSNetEdgeError`) prints one
line and exits 1; nothing the user can cause prints a traceback.
"""

from __future__ import annotations

import json
import os
import signal
import sys
from pathlib import Path
from typing import Annotated

import typer

from jsnet_edge import __version__
from jsnet_edge.errors import JSNetEdgeError, OptionError

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


ModelOpt = Annotated[
    str | None,
    typer.Option(
        "--model", "-m", help=("Model file (.safetensors) or zoo name (see `jsnet-edge models`).")
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
        help=("auto (the fastest installed), torch, onnxruntime, openvino or tensorrt."),
    ),
]
DeviceOpt = Annotated[str, typer.Option("--device", help="cpu or cuda.")]
PrecisionOpt = Annotated[
    str | None,
    typer.Option(
        "--precision",
        help=(
            "fp32, bf16, fp16 (cuda) or int8 (a calibrated .onnx); default: fp32, or the "
            "file's own."
        ),
    ),
]
TileOpt = Annotated[int, typer.Option("--tile", help="Largest tile side in input pixels.")]
OverlapOpt = Annotated[int, typer.Option("--tile-overlap", help="Overlap between tiles.")]
OverwriteOpt = Annotated[bool, typer.Option("--overwrite", help="Replace existing outputs.")]


def _pick_model(model: str | None, task: str | None, video: bool = False) -> str:
    """The model to use: --model if given (checked against --task), else the task's default
    (for video its real-time model, where the zoo has one)."""
    from jsnet_edge.tasks import check_task
    from jsnet_edge.zoo import default_model_for

    if task is not None:
        check_task(task)
    if model is None:
        if task is None:
            raise OptionError("give --model (a model file or zoo name) or --task")
        return default_model_for(task, video)
    return model


def _check_task(restorer_task: str, task: str | None, model: str) -> None:
    if task is not None and restorer_task != task:
        raise OptionError(
            f"model {model} is for {restorer_task}, not {task}; "
            f"pick a {task} model (see `jsnet-edge models`)"
        )


@app.command()
def image(
    inputs: Annotated[
        list[Path], typer.Argument(help="Image files and/or folders of images.", show_default=False)
    ],
    output: Annotated[
        Path,
        typer.Option(
            "--output",
            "-o",
            help=("Output file (one input) or folder (created if needed)."),
            show_default=False,
        ),
    ],
    model: ModelOpt = None,
    task: TaskOpt = None,
    backend: BackendOpt = "auto",
    device: DeviceOpt = "cpu",
    precision: PrecisionOpt = None,
    tile: TileOpt = 512,
    tile_overlap: OverlapOpt = 32,
    overwrite: OverwriteOpt = False,
) -> None:
    """Restore images: files or folders in, restored images out (same format by default)."""
    from tqdm import tqdm

    from jsnet_edge.images import is_image_path, list_images, load_image, save_image
    from jsnet_edge.restorer import Restorer

    sources: list[Path] = []
    from_folder = False
    for p in inputs:
        if p.is_dir():
            found = list_images(p)
            if not found:
                raise OptionError(f"folder {p} holds no images")
            sources += found
            from_folder = True
        elif p.exists():
            sources.append(p)
        else:
            raise OptionError(f"input {p} does not exist")
    single = len(sources) == 1 and not from_folder and is_image_path(output)
    if not single and is_image_path(output):
        raise OptionError(f"{len(sources)} inputs need an output folder, not the file {output}")
    if single:
        targets = [output]
    else:
        names = [s.name for s in sources]
        dup = {n for n in names if names.count(n) > 1}
        if dup:
            raise OptionError(
                f"several inputs are named {sorted(dup)[0]}; restore them into separate folders"
            )
        targets = [output / s.name for s in sources]
    resolved = {s.resolve() for s in sources}
    for t in targets:
        if t.resolve() in resolved:
            raise OptionError(f"output {t} is one of the inputs; choose another output")
        if t.exists() and not overwrite:
            raise OptionError(f"{t} exists; pass --overwrite to replace it")
    name = _pick_model(model, task)
    restorer = Restorer(
        name,
        backend=backend,
        device=device,
        precision=precision,
        tile=tile,
        tile_overlap=tile_overlap,
        color_order="rgb",
    )
    _check_task(restorer.task, task, name)
    typer.echo(f"restoring with {restorer.describe()}")
    bar = tqdm(
        list(zip(sources, targets, strict=True)),
        unit="img",
        disable=len(sources) < 2,
        file=sys.stderr,
    )
    for src, dst in bar:
        bar.set_postfix_str(src.name)
        save_image(dst, restorer(load_image(src)), overwrite=overwrite)
    if len(sources) == 1:
        typer.echo(f"wrote {targets[0]}")
    else:
        typer.echo(f"restored {len(sources)} images into {output}")


@app.command()
def info(
    model: Annotated[str, typer.Argument(help="Model file or zoo name.", show_default=False)],
    json_out: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Parameters, multiply-adds (1280x720 output) and provenance of a model."""
    from jsnet_edge.models.complexity import count_macs, count_parameters, count_stored_weights
    from jsnet_edge.restorer import resolve_model

    net = resolve_model(model)
    facts = {
        "model": model,
        "task": net.task,
        "colors": net.colors,
        "genotype": net.genotype.to_string(),
        "parameters": count_parameters(net),
        "stored_weights": count_stored_weights(net),
        "macs_720p": count_macs(net, (720, 1280)),
        "provenance": net.provenance,
    }
    if json_out:
        typer.echo(json.dumps(facts, indent=2))
        return
    typer.echo(f"model:       {model}")
    typer.echo(f"task:        {net.task} ({'gray' if net.colors == 1 else 'RGB'})")
    typer.echo(f"genotype:    {facts['genotype']}")
    typer.echo(
        f"parameters:  {facts['parameters']:,} (paper convention; "
        f"{facts['stored_weights']:,} after folding weight norm)"
    )
    typer.echo(f"multi-adds:  {facts['macs_720p'] / 1e9:.1f} G for a 1280x720 output")
    for k, v in net.provenance.items():
        typer.echo(f"{k + ':':<13}{v}")


@app.command("convert-official")
def convert_official(
    checkpoint: Annotated[
        Path, typer.Argument(help="The authors' .pt checkpoint.", show_default=False)
    ],
    scale: Annotated[int, typer.Option("--scale", "-s", help="2, 3 or 4.", show_default=False)],
    output: Annotated[
        Path, typer.Option("--output", "-o", help="Output .safetensors file.", show_default=False)
    ],
    overwrite: OverwriteOpt = False,
) -> None:
    """Convert the authors' released SR checkpoint into a jsnet-edge model file."""
    from jsnet_edge.models import load_official, save_model

    if output.suffix != ".safetensors":
        raise OptionError(f"the output must end in .safetensors, got {output.name}")
    if output.exists() and not overwrite:
        raise OptionError(f"{output} exists; pass --overwrite to replace it")
    net = load_official(checkpoint, scale)
    save_model(net, output, overwrite=overwrite)
    typer.echo(f"wrote {output} (sr-x{scale}, genotype {net.genotype.to_string()})")


@app.command("eval")
def eval_cmd(
    model: Annotated[
        str, typer.Option("--model", "-m", help="Model file or zoo name.", show_default=False)
    ],
    data: Annotated[
        Path, typer.Option("--data", help="Folder of clean images.", show_default=False)
    ],
    sigma: Annotated[float | None, typer.Option(help="Noise sigma (denoise; default 25).")] = None,
    quality: Annotated[int | None, typer.Option(help="JPEG quality (jpeg; default 10).")] = None,
    metric: Annotated[
        str | None,
        typer.Option(
            help=("y (BT.601 luma) or rgb; default y for SR, rgb for colour denoise/JPEG.")
        ),
    ] = None,
    crop: Annotated[int | None, typer.Option(help="Centre-crop images to this side first.")] = None,
    limit: Annotated[int | None, typer.Option(help="Use the first N images only.")] = None,
    backend: BackendOpt = "torch",
    device: DeviceOpt = "cpu",
    precision: PrecisionOpt = None,
    json_out: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Degrade clean images for the model's task, restore them, and report PSNR/SSIM."""
    from jsnet_edge.restorer import Restorer
    from jsnet_edge.train.evaluate import EvalConfig, evaluate

    restorer = Restorer(
        model, backend=backend, device=device, precision=precision, color_order="rgb"
    )
    cfg = EvalConfig(data=data, sigma=sigma, quality=quality, metric=metric, crop=crop, limit=limit)
    report = evaluate(restorer, cfg)
    typer.echo(json.dumps(report.to_dict(), indent=2) if json_out else report.table())


@app.command()
def export(
    model: Annotated[str, typer.Argument(help="Model file or zoo name.", show_default=False)],
    output: Annotated[
        Path, typer.Option("--output", "-o", help="Output .onnx file.", show_default=False)
    ],
    precision: Annotated[str, typer.Option(help="fp32 or fp16 (for TensorRT / GPUs).")] = "fp32",
    input_size: Annotated[
        str | None,
        typer.Option(help=("WxH for a static graph; default: dynamic batch, height and width.")),
    ] = None,
    overwrite: OverwriteOpt = False,
) -> None:
    """Export ONNX (mean shift folded; checked with onnx.checker and against torch)."""
    from jsnet_edge.deploy.export import export_onnx, parse_size
    from jsnet_edge.deploy.verify import verify_onnx
    from jsnet_edge.restorer import resolve_model

    if output.suffix != ".onnx":
        raise OptionError(f"the output must end in .onnx, got {output.name}")
    if output.exists() and not overwrite:
        raise OptionError(f"{output} exists; pass --overwrite to replace it")
    net = resolve_model(model)
    path = export_onnx(net, output, precision=precision, input_size=parse_size(input_size))
    diff = verify_onnx(net, path)
    typer.echo(
        f"wrote {path} ({precision}); onnxruntime vs torch on a photograph: max abs "
        f"difference {diff:.2g} (0..255)"
    )


@app.command()
def calibrate(
    model: Annotated[str, typer.Argument(help="Model file or zoo name.", show_default=False)],
    output: Annotated[
        Path, typer.Option("--output", "-o", help="Output int8 .onnx file.", show_default=False)
    ],
    data: Annotated[
        Path | None,
        typer.Option(
            help=("Folder of photographs (default: the photographs shipped with jsnet-edge).")
        ),
    ] = None,
    num_images: Annotated[int, typer.Option(help="Calibration crops.")] = 16,
    method: Annotated[str, typer.Option(help="minmax, percentile or entropy.")] = "percentile",
    max_drop: Annotated[float, typer.Option(help="Largest PSNR loss (dB) to accept.")] = 0.1,
    target: Annotated[
        str,
        typer.Option(
            help=("cpu (onnxruntime/OpenVINO, uint8 activations) or tensorrt (symmetric int8).")
        ),
    ] = "cpu",
    overwrite: OverwriteOpt = False,
) -> None:
    """Calibrate INT8 (explicit Q/DQ ONNX), keeping sensitive blocks in float."""
    from jsnet_edge.calibration.quantize import CalibrationConfig
    from jsnet_edge.calibration.quantize import calibrate as run_calibration
    from jsnet_edge.restorer import resolve_model

    cfg = CalibrationConfig(
        data=data, num_images=num_images, method=method, max_drop=max_drop, target=target
    )
    net = resolve_model(model)
    report = run_calibration(
        net, output, cfg, overwrite=overwrite, log=lambda m: typer.echo(m, err=True)
    )
    report_path = output.with_suffix(".calibration.json")
    report_path.write_text(report.to_json())
    typer.echo(report.summary())
    typer.echo(f"wrote {output} and {report_path}")
    if report.drop > max_drop:
        raise OptionError(
            f"the loss {report.drop:.3f} dB is above --max-drop {max_drop}; the "
            "file keeps the best trade-off found (see the report)"
        )


@app.command("build-engine")
def build_engine_cmd(
    model: Annotated[
        str,
        typer.Argument(
            help=("Model file, zoo name, or an .onnx from export/calibrate."), show_default=False
        ),
    ],
    output: Annotated[
        Path, typer.Option("--output", "-o", help="Output .engine file.", show_default=False)
    ],
    fp16: Annotated[bool, typer.Option("--fp16", help="Build from the fp16 ONNX.")] = False,
    int8: Annotated[
        bool,
        typer.Option(
            "--int8", help=("Calibrate (symmetric int8 Q/DQ for TensorRT) and build from it.")
        ),
    ] = False,
    calib: Annotated[Path | None, typer.Option(help="Calibration photographs (--int8).")] = None,
    min_shape: Annotated[str, typer.Option(help="Smallest input WxH.")] = "64x64",
    opt_shape: Annotated[str, typer.Option(help="Input WxH to tune for.")] = "640x360",
    max_shape: Annotated[str, typer.Option(help="Largest input WxH.")] = "1920x1088",
    workspace: Annotated[float, typer.Option(help="Builder workspace (GB).")] = 2.0,
    via: Annotated[str, typer.Option(help="tensorrt, or torch-tensorrt.")] = "tensorrt",
    overwrite: OverwriteOpt = False,
) -> None:
    """Build a TensorRT engine (needs an NVIDIA GPU and the tensorrt extra)."""
    from jsnet_edge.deploy.engine_cli import build_engine_command

    path = build_engine_command(
        model,
        output,
        fp16=fp16,
        int8=int8,
        calib=calib,
        min_shape=min_shape,
        opt_shape=opt_shape,
        max_shape=max_shape,
        workspace=workspace,
        via=via,
        overwrite=overwrite,
        log=lambda m: typer.echo(m, err=True),
    )
    typer.echo(f"wrote {path} and {path.name}.json")


@app.command()
def bench(
    model: Annotated[str, typer.Argument(help="Model file or zoo name.", show_default=False)],
    input_size: Annotated[str, typer.Option(help="Input WxH.")] = "320x180",
    int8: Annotated[
        str | None,
        typer.Option(help=("A calibrated .onnx to include (see `jsnet-edge calibrate`).")),
    ] = None,
    device: DeviceOpt = "cpu",
    repeats: Annotated[int, typer.Option(help="Timed runs per configuration.")] = 10,
    threads: Annotated[int | None, typer.Option(help="CPU threads for torch.")] = None,
    json_path: Annotated[Path | None, typer.Option("--json", help="Write JSON here.")] = None,
) -> None:
    """Latency, fps, peak memory and PSNR loss of every available backend and precision."""
    from jsnet_edge.deploy.bench import bench as run_bench
    from jsnet_edge.deploy.bench import default_configs, table, to_json
    from jsnet_edge.deploy.export import parse_size
    from jsnet_edge.train.trainer import machine_description

    size = parse_size(input_size)
    rows = run_bench(
        model,
        default_configs(model, int8, device),
        size,
        device=device,
        repeats=repeats,
        threads=threads,
    )
    typer.echo(table(rows, size))
    if json_path:
        json_path.write_text(to_json(rows, size, machine_description(device)))


def _pair(text: str | None, name: str, cast):
    if text is None:
        return None
    try:
        lo, hi = (cast(v) for v in text.split(","))
    except ValueError:
        raise OptionError(f"--{name} must be two numbers like 10,40, got {text!r}") from None
    return lo, hi


@app.command()
def train(
    task: Annotated[
        str, typer.Option(help="sr-x2, sr-x3, sr-x4, denoise or jpeg.", show_default=False)
    ],
    data: Annotated[
        Path, typer.Option(help="Folder of clean training photographs.", show_default=False)
    ],
    steps: Annotated[int, typer.Option(help="Optimisation steps.", show_default=False)],
    out: Annotated[
        Path, typer.Option("--out", "-o", help="Output model (.safetensors).", show_default=False)
    ],
    genotype: Annotated[
        str, typer.Option(help="paper, a genotype.json, or a compact string.")
    ] = "paper",
    val: Annotated[Path | None, typer.Option(help="Folder of held-out photographs.")] = None,
    batch: Annotated[int, typer.Option(help="Patches per step.")] = 16,
    patch: Annotated[int, typer.Option(help="Target patch side (pixels).")] = 64,
    sigma: Annotated[float | None, typer.Option(help="Noise sigma (denoise).")] = None,
    sigma_range: Annotated[str | None, typer.Option(help="Blind denoising: low,high.")] = None,
    quality: Annotated[int | None, typer.Option(help="JPEG quality (jpeg).")] = None,
    quality_range: Annotated[str | None, typer.Option(help="Blind JPEG: low,high.")] = None,
    gray: Annotated[bool, typer.Option(help="Train a 1-channel model.")] = False,
    init: Annotated[
        str | None,
        typer.Option(
            help=("Start from compatible weights: a model file, zoo name or foreign checkpoint.")
        ),
    ] = None,
    device: DeviceOpt = "cpu",
    precision: Annotated[str, typer.Option(help="bf16 (autocast) or fp32.")] = "bf16",
    lr: Annotated[float, typer.Option(help="Peak learning rate (cosine decay).")] = 5e-4,
    val_every: Annotated[int, typer.Option(help="Validate every N steps.")] = 500,
    checkpoint_every: Annotated[int, typer.Option(help="Checkpoint every N steps.")] = 250,
    seed: Annotated[int, typer.Option(help="Seeds crops, noise and initialisation.")] = 0,
    resume: Annotated[
        bool,
        typer.Option(
            help=(
                "Continue from the run's checkpoint. With a larger --steps the run goes on to it; "
                "the learning rate then follows the longer schedule (it rises again: a warm restart)."
            )
        ),
    ] = False,
    threads: Annotated[int | None, typer.Option(help="CPU threads for torch.")] = None,
    max_side: Annotated[
        int,
        typer.Option(help=("Downscale larger training photographs to this side first (0: never).")),
    ] = 2048,
) -> None:
    """Train a JSNet for one task; writes the model, its model card, a log and checkpoints."""
    from jsnet_edge.train.trainer import TrainConfig
    from jsnet_edge.train.trainer import train as run_training

    s = _pair(sigma_range, "sigma-range", float) or (
        (sigma, sigma) if sigma is not None else (25.0, 25.0)
    )
    q = _pair(quality_range, "quality-range", int) or (
        (quality, quality) if quality is not None else (10, 10)
    )
    if task != "denoise" and (sigma is not None or sigma_range is not None):
        raise OptionError(f"--sigma applies to --task denoise, not {task}")
    if task != "jpeg" and (quality is not None or quality_range is not None):
        raise OptionError(f"--quality applies to --task jpeg, not {task}")
    cfg = TrainConfig(
        task=task,
        data=data,
        out=out,
        steps=steps,
        genotype=genotype,
        val=val,
        batch=batch,
        patch=patch,
        sigma=s,
        quality=q,
        gray=gray,
        init=init,
        device=device,
        precision=precision,
        lr=lr,
        val_every=val_every,
        checkpoint_every=checkpoint_every,
        seed=seed,
        resume=resume,
        threads=threads,
        max_side=max_side or None,
        command="jsnet-edge " + " ".join(sys.argv[1:]),
    )
    result = run_training(cfg)
    psnr = f", validation PSNR {result.val_psnr:.2f} dB" if result.val_psnr else ""
    typer.echo(
        f"wrote {result.out} and {result.card} ({result.steps} steps in "
        f"{result.wall_time_s / 60:.1f} min{psnr})"
    )


@app.command()
def models(
    name: Annotated[str | None, typer.Argument(help="Show this model's card.")] = None,
) -> None:
    """List the bundled zoo models, or show one model card."""
    from jsnet_edge.zoo import ZOO, zoo_entry

    if name is not None:
        typer.echo(zoo_entry(name).card())
        return
    if not ZOO:
        typer.echo("no models are bundled in this version")
    for entry in ZOO.values():
        typer.echo(f"{entry.name:<16}{entry.task:<9}{entry.summary}")


@app.command()
def video(
    source: Annotated[
        str,
        typer.Argument(
            help=("Video file, camera index (0, 1 ...) or rtsp/http URL."), show_default=False
        ),
    ],
    output: Annotated[
        Path | None,
        typer.Option(
            "--output",
            "-o",
            help=(
                "Output video; its extension picks the container (.mp4 .mov .mkv .avi .webm). "
                "Default: IN_restored.mp4 beside the input."
            ),
            show_default=False,
        ),
    ] = None,
    model: ModelOpt = None,
    task: Annotated[
        str | None,
        typer.Option(
            "--task",
            help=(
                "Use the zoo's model for this task: its real-time one (denoise-rt, sr-x2-rt) where "
                "there is one."
            ),
        ),
    ] = None,
    backend: BackendOpt = "auto",
    device: DeviceOpt = "cpu",
    precision: Annotated[
        str | None,
        typer.Option(
            "--precision",
            help=(
                "fp32, bf16, fp16 (cuda) or int8 (a calibrated .onnx); default: bf16 where the "
                "automatic backend is OpenVINO on a CPU with bf16, else fp32 or the file's own."
            ),
        ),
    ] = None,
    batch: Annotated[int, typer.Option(help="Frames per backend call (raise it on GPUs).")] = 1,
    codec: Annotated[
        str | None,
        typer.Option(
            help=(
                "4 characters: an OpenCV fourcc (mp4v, the default for .mp4/.mov/.mkv; MJPG for "
                ".avi); longer: a PyAV encoder such as libx264 (smaller files, takes --crf)."
            )
        ),
    ] = None,
    crf: Annotated[
        int | None,
        typer.Option(help=("Quality of PyAV encoders (libx264: 0 lossless .. 51; default 18).")),
    ] = None,
    preview: Annotated[
        str | None,
        typer.Option(
            help=(
                "Also write a side-by-side video (input | restored) to this file; 'window' shows "
                "it where OpenCV has a GUI."
            )
        ),
    ] = None,
    stats: Annotated[
        Path | None,
        typer.Option(help=("Write the summary (frames, fps, per-stage latency) as JSON here.")),
    ] = None,
    realtime: Annotated[
        bool,
        typer.Option(
            help=("Live sources: drop frames (keep the newest) when restoration falls behind.")
        ),
    ] = False,
    max_frames: Annotated[int | None, typer.Option(help="Stop after N frames.")] = None,
    overwrite: OverwriteOpt = False,
    keep_partial: Annotated[
        bool, typer.Option(help=("On an error or Ctrl-C keep the frames done as NAME.partial.EXT."))
    ] = False,
    progress: Annotated[bool, typer.Option(help="Progress bar on stderr.")] = True,
    tile: Annotated[
        int,
        typer.Option(
            "--tile",
            help=(
                "Largest tile side in input pixels (640: a 640x360 frame runs whole, not as two "
                "overlapping 512 tiles)."
            ),
        ),
    ] = 640,
    tile_overlap: OverlapOpt = 32,
) -> None:
    """Restore a video (file, camera or stream): same frames, rate, audio and metadata."""
    from jsnet_edge.restorer import Restorer
    from jsnet_edge.video.errors import IncompleteVideoError
    from jsnet_edge.video.pipeline import check_paths, default_output, process

    dst = output if output is not None else default_output(source)
    check_paths(
        source, dst, overwrite=overwrite, preview=preview, stats_path=stats, codec=codec, crf=crf
    )
    name = _pick_model(model, task, video=True)
    from jsnet_edge.deploy.openvino_backend import runs_bf16

    if precision is None and backend == "auto" and device == "cpu" and runs_bf16():
        precision = "bf16"  # video wants the fastest path; bf16 costs <= 0.05 dB (tested)
    restorer = Restorer(
        name,
        backend=backend,
        device=device,
        precision=precision,
        tile=tile,
        tile_overlap=tile_overlap,
        color_order="bgr",
    )
    _check_task(restorer.task, task, name)

    def log(msg: str) -> None:
        typer.echo(f"note: {msg}", err=True)

    log(f"{name}: {restorer.describe()}")

    try:
        result = process(
            source,
            dst,
            restorer,
            batch=batch,
            codec=codec,
            crf=crf,
            preview=preview,
            stats_path=stats,
            realtime=realtime,
            max_frames=max_frames,
            overwrite=overwrite,
            keep_partial=keep_partial,
            progress=progress,
            log=log,
        )
    except IncompleteVideoError as e:
        typer.echo(e.stats.summary(notes=False))
        raise
    typer.echo(result.summary(notes=False))


@app.command("make-sample-clip")
def make_sample_clip_cmd(
    output: Annotated[
        Path, typer.Argument(help="The clip to write (.mp4, .mov or .mkv).", show_default=False)
    ],
    sigma: Annotated[float, typer.Option(help="Gaussian noise sigma (0..255 scale).")] = 25.0,
    seconds: Annotated[float, typer.Option(help="Length.")] = 4.0,
    fps: Annotated[float, typer.Option(help="Frame rate.")] = 25.0,
    size: Annotated[str, typer.Option(help="WIDTHxHEIGHT, even.")] = "640x360",
    photo: Annotated[
        str | None,
        typer.Option(
            help=(
                "A bundled photo (coffee.png, astronaut.jpg, chelsea.png, rocket.jpg) or an image "
                "file."
            )
        ),
    ] = None,
    seed: Annotated[int, typer.Option(help="Seeds the noise.")] = 0,
    overwrite: OverwriteOpt = False,
) -> None:
    """Make a noisy demo clip: a slow pan over a bundled photo, with a sine-tone track."""
    from jsnet_edge.video.sample import make_sample_clip, parse_size

    if not 0 < seconds <= 600:
        raise OptionError(f"--seconds must be between 0 and 600, got {seconds:g}")
    w, h = parse_size(size)
    clip = make_sample_clip(
        output,
        seconds=seconds,
        fps=fps,
        size=(w, h),
        sigma=sigma,
        seed=seed,
        photo=photo,
        overwrite=overwrite,
    )
    for n in clip.notes:
        typer.echo(f"note: {n}", err=True)
    typer.echo(
        f"wrote {clip.path}: {clip.frames} frames of {w}x{h} at {float(clip.fps):g} "
        f"fps, noise sigma {sigma:g}, "
        f"{'a sine-tone audio track' if clip.audio else 'no audio'}"
    )


SearchBackendOpt = Annotated[
    str,
    typer.Option(
        "--backend",
        help=(
            "torch, onnxruntime, openvino or tensorrt: the runtime the network will be deployed on."
        ),
    ),
]
SearchPrecisionOpt = Annotated[
    str,
    typer.Option(
        "--precision",
        help=(
            "fp32, fp16 or bf16, as the backend supports (int8: search in fp32, then calibrate)."
        ),
    ),
]
InputSizeOpt = Annotated[
    str,
    typer.Option("--input-size", help=("Network input WxH (for SR, the low-resolution frame).")),
]
WidthsOpt = Annotated[
    str, typer.Option(help=("Operation widths C to choose from (cells work at 4C)."))
]


UnshuffleOpt = Annotated[
    int,
    typer.Option(
        help=(
            "The networks' body runs at 1/N of the input resolution (pixel unshuffle); 2 makes "
            "real-time budgets on CPUs reachable. 1: the paper's layout."
        )
    ),
]


def _search_space(widths: str, max_cells: int, nodes: int, unshuffle: int = 1):
    from jsnet_edge.search.space import SearchSpace, parse_widths

    return SearchSpace(parse_widths(widths), max_cells, nodes, unshuffle=unshuffle)


def _input_size(text: str) -> tuple[int, int]:
    from jsnet_edge.deploy.export import parse_size

    return parse_size(text)


@app.command()
def profile(
    device: DeviceOpt = "cpu",
    backend: SearchBackendOpt = "onnxruntime",
    precision: SearchPrecisionOpt = "fp32",
    input_size: InputSizeOpt = "640x360",
    task: Annotated[str, typer.Option(help="sr-x2, sr-x3, sr-x4, denoise or jpeg.")] = "sr-x2",
    widths: WidthsOpt = "8,12,16,24",
    max_cells: Annotated[int, typer.Option(help="Depth choices are 1..N cells.")] = 5,
    nodes: Annotated[int, typer.Option(help="Nodes per search module (fixed).")] = 3,
    unshuffle: UnshuffleOpt = 1,
    output: Annotated[
        Path | None,
        typer.Option(
            "--output",
            "-o",
            help=(
                "Also write the table here (it is always cached under ~/.cache/jsnet-edge/latency)."
            ),
        ),
    ] = None,
    table: Annotated[Path | None, typer.Option(help="Start from this table file.")] = None,
    validate: Annotated[
        int,
        typer.Option(
            help=("Measure N random whole networks, fit the correction, report the error.")
        ),
    ] = 0,
    refresh: Annotated[bool, typer.Option(help="Measure again even if a table exists.")] = False,
    gray: Annotated[bool, typer.Option(help="1-channel networks.")] = False,
    repeats: Annotated[int, typer.Option(help="Timed runs per block, at most.")] = 15,
    runtime_threads: Annotated[
        int | None,
        typer.Option(help=("Threads of the runtime being profiled (default: its own choice).")),
    ] = None,
    seed: Annotated[int, typer.Option(help="Seeds the validation networks.")] = 0,
) -> None:
    """Measure the latency table of the search space on a device and backend."""
    from jsnet_edge.search.profile import ProfileConfig
    from jsnet_edge.search.profile import profile as run_profile
    from jsnet_edge.search.timing import TimingMethod

    cfg = ProfileConfig(
        device=device,
        backend=backend,
        precision=precision,
        input_size=_input_size(input_size),
        task=task,
        space=_search_space(widths, max_cells, nodes, unshuffle),
        out=output,
        table=table,
        validate=validate,
        refresh=refresh,
        gray=gray,
        timing=TimingMethod(repeats=repeats, min_repeats=min(5, repeats)),
        threads=runtime_threads,
        seed=seed,
    )
    result, v = run_profile(cfg, log=lambda s: typer.echo(s, err=True))
    typer.echo(
        f"latency table {result.path} ({result.source}, {result.measured_blocks} blocks "
        f"timed, {len(result.table.entries)} entries)"
    )
    if output is not None:
        typer.echo(f"wrote {output}")
    if v is not None:
        loo = f", {v.mape_loo:.1f}% leave-one-out" if v.mape_loo is not None else ""
        earlier = len(v.genotypes) - v.n_new
        held = (
            f"; the previous correction predicted the {v.n_new} new ones with "
            f"{v.mape_held_out:.1f}% error"
            if v.mape_held_out is not None
            else ""
        )
        typer.echo(
            f"validation on {len(v.genotypes)} random networks"
            + (f" ({v.n_new} new, {earlier} from earlier runs)" if earlier else "")
            + f": mean absolute percentage error {v.mape_raw:.1f}% uncorrected, "
            f"{v.mape_fit:.1f}% with the fitted correction (measured = {v.a:.3f} x sum "
            f"+ {v.b:.3f} ms){loo}{held}"
        )


@app.command()
def search(
    task: Annotated[
        str, typer.Option(help="sr-x2, sr-x3, sr-x4, denoise or jpeg.", show_default=False)
    ],
    latency_budget: Annotated[
        str,
        typer.Option(
            help=("Latency budget: 10ms, 0.5s or 20 (ms); the network is measured to fit it."),
            show_default=False,
        ),
    ],
    data: Annotated[Path, typer.Option(help="Folder of training photographs.", show_default=False)],
    out: Annotated[Path, typer.Option("--out", "-o", help="Run folder.", show_default=False)],
    budgets: Annotated[
        str | None, typer.Option(help=("More budgets to sweep in the same run, e.g. 5ms,20ms."))
    ] = None,
    device: DeviceOpt = "cpu",
    backend: SearchBackendOpt = "onnxruntime",
    precision: SearchPrecisionOpt = "fp32",
    input_size: InputSizeOpt = "640x360",
    val: Annotated[
        Path | None,
        typer.Option(
            help=("Folder of validation photographs (architecture steps, PSNR); default: --data.")
        ),
    ] = None,
    steps: Annotated[int, typer.Option(help="Supernet steps per budget, warm-up included.")] = 400,
    warmup_steps: Annotated[
        int | None,
        typer.Option(
            help=("Weights-only steps first, shared by all budgets (default: steps / 4).")
        ),
    ] = None,
    finetune_steps: Annotated[
        int,
        typer.Option(
            help=("Training steps of each result (and of the paper's network) for its PSNR.")
        ),
    ] = 200,
    widths: WidthsOpt = "8,12,16,24",
    max_cells: Annotated[int, typer.Option(help="Depth choices are 1..N cells.")] = 5,
    nodes: Annotated[int, typer.Option(help="Nodes per search module (fixed).")] = 3,
    unshuffle: UnshuffleOpt = 1,
    batch: Annotated[int, typer.Option(help="Patches per step.")] = 8,
    patch: Annotated[int, typer.Option(help="Target patch side (pixels).")] = 64,
    lr: Annotated[float, typer.Option(help="Adam learning rate of the network weights.")] = 1e-3,
    arch_lr: Annotated[float, typer.Option(help="Adam learning rate of the architecture.")] = 3e-3,
    latency_weight: Annotated[
        float,
        typer.Option(
            help=("Weight of the latency term (grey levels of L1 per unit of relative overshoot).")
        ),
    ] = 20.0,
    margin: Annotated[
        float, typer.Option(help=("The latency term aims at budget x (1 - margin)."))
    ] = 0.05,
    max_skip: Annotated[
        int,
        typer.Option(
            help=(
                "Operation edges per cell the derivation may leave as skip_connect (-1: no limit); "
                "counters the drift of differentiable search towards the free skip."
            )
        ),
    ] = 1,
    grow: Annotated[
        bool,
        typer.Option(
            help=("Spend budget the derived network leaves unused on more cells or width.")
        ),
    ] = True,
    validate: Annotated[
        int,
        typer.Option(
            help=(
                "Random networks measured to fit the table's correction if it has none (0: skip)."
            )
        ),
    ] = 6,
    table: Annotated[Path | None, typer.Option(help="Use this latency table file.")] = None,
    paper: Annotated[
        bool, typer.Option(help=("Measure and fine-tune the paper's network for the Pareto plot."))
    ] = True,
    gray: Annotated[bool, typer.Option(help="Search a 1-channel network.")] = False,
    train_precision: Annotated[
        str, typer.Option(help="fp32 or bf16 (autocast) training.")
    ] = "fp32",
    train_device: Annotated[
        str,
        typer.Option(
            help=(
                "Where the supernet and the fine-tunes train (cpu or cuda); latencies are measured "
                "on --device."
            )
        ),
    ] = "cpu",
    snapshot_every: Annotated[
        int, typer.Option(help=("Record the architecture weights every N steps."))
    ] = 10,
    repeats: Annotated[int, typer.Option(help="Timed runs per latency, at most.")] = 15,
    seed: Annotated[int, typer.Option(help="Seeds patches and initialisation.")] = 0,
    threads: Annotated[int | None, typer.Option(help="CPU threads for torch training.")] = None,
    runtime_threads: Annotated[
        int | None,
        typer.Option(
            help=("Threads of the target runtime when measuring (default: its own choice).")
        ),
    ] = None,
    overwrite: OverwriteOpt = False,
) -> None:
    """Search a network that runs within a latency budget on this device and backend."""
    from jsnet_edge.search.search import SearchConfig, budget_label, parse_budget, parse_budgets
    from jsnet_edge.search.search import search as run_search
    from jsnet_edge.search.space import parse_widths
    from jsnet_edge.search.timing import TimingMethod

    main_budget = parse_budget(latency_budget)
    extra = parse_budgets(budgets) if budgets is not None else ()
    sweep = (main_budget, *[b for b in dict.fromkeys(extra) if b != main_budget])
    cfg = SearchConfig(
        task=task,
        data=data,
        out=out,
        budgets=sweep,
        device=device,
        backend=backend,
        precision=precision,
        input_size=_input_size(input_size),
        val=val,
        steps=steps,
        warmup_steps=warmup_steps,
        finetune_steps=finetune_steps,
        widths=parse_widths(widths),
        max_cells=max_cells,
        nodes=nodes,
        unshuffle=unshuffle,
        batch=batch,
        patch=patch,
        lr=lr,
        arch_lr=arch_lr,
        latency_weight=latency_weight,
        margin=margin,
        max_skip=None if max_skip < 0 else max_skip,
        grow=grow,
        validate=validate,
        table=table,
        paper=paper,
        gray=gray,
        train_precision=train_precision,
        train_device=train_device,
        snapshot_every=snapshot_every,
        timing=TimingMethod(repeats=repeats, min_repeats=min(5, repeats)),
        seed=seed,
        threads=threads,
        runtime_threads=runtime_threads,
        overwrite=overwrite,
        command="jsnet-edge " + " ".join(sys.argv[1:]),
    )
    result = run_search(cfg, log=lambda s: typer.echo(s, err=True))
    for r in result.results:
        psnr = f", PSNR {r.psnr:.2f} dB" if r.psnr is not None else ""
        typer.echo(
            f"budget {budget_label(r.budget_ms)}: {r.genotype.to_string()}: predicted "
            f"{r.fit.predicted_ms:.2f} ms, measured {r.fit.measured_ms:.2f} ms{psnr}"
        )
    if result.paper is not None:
        psnr = f", PSNR {result.paper['psnr']:.2f} dB" if result.paper.get("psnr") else ""
        typer.echo(f"paper's network: measured {result.paper['measured_ms']:.2f} ms{psnr}")
    typer.echo(
        f"wrote {result.genotype_path}, {result.report}, {result.plot} and "
        f"{result.out / 'latency_table.json'}"
    )


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


def main() -> None:
    # OpenCV prints its own warnings for corrupt files; ours say it in one line.
    os.environ.setdefault("OPENCV_LOG_LEVEL", "OFF")
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
    except Exception as e:  # a bug, not a user error: one line, traceback on request
        if os.environ.get("JSNET_EDGE_DEBUG"):
            raise
        typer.echo(
            f"internal error: {type(e).__name__}: {e} (set JSNET_EDGE_DEBUG=1 for the "
            "traceback, and please report it)",
            err=True,
        )
        sys.exit(3)
