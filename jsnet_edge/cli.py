"""`jsnet-edge`: a thin command line over the library.

Each command parses its options, calls one library function, and prints. Only here are
exceptions turned into messages and exit codes: a user error (`JSNetEdgeError`) prints one
line and exits 1; nothing the user can cause prints a traceback.
"""

from __future__ import annotations

import json
import os
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
    version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True,
                                          help="Print the version and exit.")] = False,
) -> None:
    """JSNet image restoration, from architecture search to edge deployment."""


ModelOpt = Annotated[str | None, typer.Option("--model", "-m", help=(
    "Model file (.safetensors) or zoo name (see `jsnet-edge models`)."))]
TaskOpt = Annotated[str | None, typer.Option("--task", help=(
    "sr-x2, sr-x3, sr-x4, denoise or jpeg: picks the zoo model for the task, or checks that "
    "--model is for it."))]
BackendOpt = Annotated[str, typer.Option("--backend", help="Runtime: torch.")]
DeviceOpt = Annotated[str, typer.Option("--device", help="cpu or cuda.")]
PrecisionOpt = Annotated[str, typer.Option("--precision", help="fp32, bf16 or fp16 (cuda).")]
TileOpt = Annotated[int, typer.Option("--tile", help="Largest tile side in input pixels.")]
OverlapOpt = Annotated[int, typer.Option("--tile-overlap", help="Overlap between tiles.")]
OverwriteOpt = Annotated[bool, typer.Option("--overwrite", help="Replace existing outputs.")]


def _pick_model(model: str | None, task: str | None) -> str:
    """The model to use: --model if given (checked against --task), else the task's default."""
    from jsnet_edge.tasks import check_task
    from jsnet_edge.zoo import default_model_for

    if task is not None:
        check_task(task)
    if model is None:
        if task is None:
            raise OptionError("give --model (a model file or zoo name) or --task")
        return default_model_for(task)
    return model


def _check_task(restorer_task: str, task: str | None, model: str) -> None:
    if task is not None and restorer_task != task:
        raise OptionError(f"model {model} is for {restorer_task}, not {task}; "
                          f"pick a {task} model (see `jsnet-edge models`)")


@app.command()
def image(
    inputs: Annotated[list[Path], typer.Argument(help="Image files and/or folders of images.",
                                                 show_default=False)],
    output: Annotated[Path, typer.Option("--output", "-o", help=(
        "Output file (one input) or folder (created if needed)."), show_default=False)],
    model: ModelOpt = None,
    task: TaskOpt = None,
    backend: BackendOpt = "torch",
    device: DeviceOpt = "cpu",
    precision: PrecisionOpt = "fp32",
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
            raise OptionError(f"several inputs are named {sorted(dup)[0]}; restore them into "
                              "separate folders")
        targets = [output / s.name for s in sources]
    resolved = {s.resolve() for s in sources}
    for t in targets:
        if t.resolve() in resolved:
            raise OptionError(f"output {t} is one of the inputs; choose another output")
        if t.exists() and not overwrite:
            raise OptionError(f"{t} exists; pass --overwrite to replace it")
    name = _pick_model(model, task)
    restorer = Restorer(name, backend=backend, device=device, precision=precision, tile=tile,
                        tile_overlap=tile_overlap, color_order="rgb")
    _check_task(restorer.task, task, name)
    bar = tqdm(list(zip(sources, targets, strict=True)), unit="img", disable=len(sources) < 2,
               file=sys.stderr)
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
    typer.echo(f"parameters:  {facts['parameters']:,} (paper convention; "
               f"{facts['stored_weights']:,} after folding weight norm)")
    typer.echo(f"multi-adds:  {facts['macs_720p'] / 1e9:.1f} G for a 1280x720 output")
    for k, v in net.provenance.items():
        typer.echo(f"{k + ':':<13}{v}")


@app.command("convert-official")
def convert_official(
    checkpoint: Annotated[Path, typer.Argument(help="The authors' .pt checkpoint.",
                                               show_default=False)],
    scale: Annotated[int, typer.Option("--scale", "-s", help="2, 3 or 4.", show_default=False)],
    output: Annotated[Path, typer.Option("--output", "-o", help="Output .safetensors file.",
                                         show_default=False)],
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
    model: Annotated[str, typer.Option("--model", "-m", help="Model file or zoo name.",
                                       show_default=False)],
    data: Annotated[Path, typer.Option("--data", help="Folder of clean images.",
                                       show_default=False)],
    sigma: Annotated[float | None, typer.Option(help="Noise sigma (denoise; default 25).")] = None,
    quality: Annotated[int | None, typer.Option(help="JPEG quality (jpeg; default 10).")] = None,
    metric: Annotated[str | None, typer.Option(help=(
        "y (BT.601 luma) or rgb; default y for SR, rgb for colour denoise/JPEG."))] = None,
    crop: Annotated[int | None, typer.Option(help="Centre-crop images to this side first.")
                    ] = None,
    limit: Annotated[int | None, typer.Option(help="Use the first N images only.")] = None,
    backend: BackendOpt = "torch",
    device: DeviceOpt = "cpu",
    precision: PrecisionOpt = "fp32",
    json_out: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Degrade clean images for the model's task, restore them, and report PSNR/SSIM."""
    from jsnet_edge.restorer import Restorer
    from jsnet_edge.train.evaluate import EvalConfig, evaluate

    restorer = Restorer(model, backend=backend, device=device, precision=precision,
                        color_order="rgb")
    cfg = EvalConfig(data=data, sigma=sigma, quality=quality, metric=metric, crop=crop,
                     limit=limit)
    report = evaluate(restorer, cfg)
    typer.echo(json.dumps(report.to_dict(), indent=2) if json_out else report.table())


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
    task: Annotated[str, typer.Option(help="sr-x2, sr-x3, sr-x4, denoise or jpeg.",
                                      show_default=False)],
    data: Annotated[Path, typer.Option(help="Folder of clean training photographs.",
                                       show_default=False)],
    steps: Annotated[int, typer.Option(help="Optimisation steps.", show_default=False)],
    out: Annotated[Path, typer.Option("--out", "-o", help="Output model (.safetensors).",
                                      show_default=False)],
    genotype: Annotated[str, typer.Option(help="paper, a genotype.json, or a compact string."
                                          )] = "paper",
    val: Annotated[Path | None, typer.Option(help="Folder of held-out photographs.")] = None,
    batch: Annotated[int, typer.Option(help="Patches per step.")] = 16,
    patch: Annotated[int, typer.Option(help="Target patch side (pixels).")] = 64,
    sigma: Annotated[float | None, typer.Option(help="Noise sigma (denoise).")] = None,
    sigma_range: Annotated[str | None, typer.Option(help="Blind denoising: low,high.")] = None,
    quality: Annotated[int | None, typer.Option(help="JPEG quality (jpeg).")] = None,
    quality_range: Annotated[str | None, typer.Option(help="Blind JPEG: low,high.")] = None,
    gray: Annotated[bool, typer.Option(help="Train a 1-channel model.")] = False,
    init: Annotated[str | None, typer.Option(help=(
        "Start from compatible weights: a model file, zoo name or foreign checkpoint."))] = None,
    device: DeviceOpt = "cpu",
    precision: Annotated[str, typer.Option(help="bf16 (autocast) or fp32.")] = "bf16",
    lr: Annotated[float, typer.Option(help="Peak learning rate (cosine decay).")] = 5e-4,
    val_every: Annotated[int, typer.Option(help="Validate every N steps.")] = 500,
    checkpoint_every: Annotated[int, typer.Option(help="Checkpoint every N steps.")] = 250,
    seed: Annotated[int, typer.Option(help="Seeds crops, noise and initialisation.")] = 0,
    resume: Annotated[bool, typer.Option(help="Continue from the run's checkpoint.")] = False,
    threads: Annotated[int | None, typer.Option(help="CPU threads for torch.")] = None,
) -> None:
    """Train a JSNet for one task; writes the model, its model card, a log and checkpoints."""
    from jsnet_edge.train.trainer import TrainConfig
    from jsnet_edge.train.trainer import train as run_training

    s = _pair(sigma_range, "sigma-range", float) or ((sigma, sigma) if sigma is not None
                                                      else (25.0, 25.0))
    q = _pair(quality_range, "quality-range", int) or ((quality, quality) if quality is not None
                                                       else (10, 10))
    if task != "denoise" and (sigma is not None or sigma_range is not None):
        raise OptionError(f"--sigma applies to --task denoise, not {task}")
    if task != "jpeg" and (quality is not None or quality_range is not None):
        raise OptionError(f"--quality applies to --task jpeg, not {task}")
    cfg = TrainConfig(task=task, data=data, out=out, steps=steps, genotype=genotype, val=val,
                      batch=batch, patch=patch, sigma=s, quality=q, gray=gray, init=init,
                      device=device, precision=precision, lr=lr, val_every=val_every,
                      checkpoint_every=checkpoint_every, seed=seed, resume=resume,
                      threads=threads, command="jsnet-edge " + " ".join(sys.argv[1:]))
    result = run_training(cfg)
    psnr = f", validation PSNR {result.val_psnr:.2f} dB" if result.val_psnr else ""
    typer.echo(f"wrote {result.out} and {result.card} ({result.steps} steps in "
               f"{result.wall_time_s / 60:.1f} min{psnr})")


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


def main() -> None:
    # OpenCV prints its own warnings for corrupt files; ours say it in one line.
    os.environ.setdefault("OPENCV_LOG_LEVEL", "OFF")
    try:
        app()
    except JSNetEdgeError as e:
        typer.echo(f"error: {e}", err=True)
        sys.exit(1)
    except KeyboardInterrupt:
        typer.echo("interrupted", err=True)
        sys.exit(130)
    except Exception as e:  # a bug, not a user error: one line, traceback on request
        if os.environ.get("JSNET_EDGE_DEBUG"):
            raise
        typer.echo(f"internal error: {type(e).__name__}: {e} (set JSNET_EDGE_DEBUG=1 for the "
                   "traceback, and please report it)", err=True)
        sys.exit(3)
