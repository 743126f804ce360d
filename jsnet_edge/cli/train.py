"""`jsnet-edge train`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from jsnet_edge.cli.app import DeviceOpt, app, command_line
from jsnet_edge.errors import OptionError


def _factors(text: str) -> tuple[float, ...]:
    try:
        return tuple(float(v) for v in text.split(",") if v.strip())
    except ValueError:
        raise OptionError(f"--scales must be numbers like 1,0.5,0.25, got {text!r}") from None


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
    noise: Annotated[
        str,
        typer.Option(
            help=(
                "Denoising: gaussian (white, in RGB), or camera: sensor noise, 4:2:0 chroma and "
                "H.264/JPEG at random strengths, as videos people have."
            )
        ),
    ] = "gaussian",
    workers: Annotated[
        int, typer.Option(help="Processes preparing batches ahead (camera noise: use 1).")
    ] = 0,
    clip_frames: Annotated[
        int,
        typer.Option(
            help=(
                "Recurrent genotypes (`-R`): frames of each moving training clip (pans, "
                "moving objects; each clip is one batch item)."
            )
        ),
    ] = 5,
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
                "the learning rate then follows the longer schedule (it rises again: a warm "
                "restart)."
            )
        ),
    ] = False,
    threads: Annotated[int | None, typer.Option(help="CPU threads for torch.")] = None,
    scales: Annotated[
        str,
        typer.Option(
            help=(
                "Also train on the photographs downscaled by these factors, e.g. 1,0.5,0.25 "
                "(large photographs are smooth at the pixel level)."
            )
        ),
    ] = "1",
    max_side: Annotated[
        int,
        typer.Option(help=("Downscale larger training photographs to this side first (0: never).")),
    ] = 2048,
) -> None:
    """Train a JSNet for one task; writes the model, its model card, a log and checkpoints."""
    from jsnet_edge.train.trainer import TrainConfig
    from jsnet_edge.train.trainer import train as run_training

    s = _pair(sigma_range, "sigma-range", float) or sigma
    q = _pair(quality_range, "quality-range", int) or quality
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
        noise=noise,
        workers=workers,
        clip_frames=clip_frames,
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
        scales=_factors(scales),
        command=command_line(),
    )
    result = run_training(cfg)
    psnr = f", validation PSNR {result.val_psnr:.2f} dB" if result.val_psnr else ""
    typer.echo(
        f"wrote {result.out} and {result.card} ({result.steps} steps in "
        f"{result.wall_time_s / 60:.1f} min{psnr})"
    )
