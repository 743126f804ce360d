"""Video commands: video, make-sample-clip."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from jsnet_edge.cli.app import (
    BackendOpt,
    DeviceOpt,
    ModelOpt,
    OverlapOpt,
    OverwriteOpt,
    RayOpt,
    ThreadsOpt,
    WorkersOpt,
    app,
    note,
    run_archive,
)
from jsnet_edge.errors import OptionError


@app.command()
def video(
    sources: Annotated[
        list[str],
        typer.Argument(
            help=(
                "Video file, camera index (0, 1 ...) or rtsp/http URL; several files, folders "
                "or lists of paths (.txt) with -o FOLDER (and --ray to spread them)."
            ),
            show_default=False,
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
        str,
        typer.Option(
            "--precision",
            help=(
                "fp32, bf16, fp16 (cuda), int8 (a calibrated .onnx) or auto: bf16 where the "
                "backend is OpenVINO on a CPU with bf16 (costs <= 0.05 dB; int8 where a zoo model "
                "ships an INT8 file within 0.1 dB that runs faster), else fp32 or the "
                "file's own."
            ),
        ),
    ] = "auto",
    batch: Annotated[int, typer.Option(help="Frames per backend call (raise it on GPUs).")] = 1,
    codec: Annotated[
        str | None,
        typer.Option(
            help=(
                "h264 (the default for .mp4/.mov/.mkv: libx264, CRF 18), hevc, av1, vp9 "
                "(the .webm default), ffv1 (lossless RGB, .mkv/.avi), another FFmpeg encoder, or "
                "4 characters for an OpenCV fourcc (mp4v for old players; MJPG, the .avi default)."
            )
        ),
    ] = None,
    crf: Annotated[
        int | None,
        typer.Option(
            help="Quality: lower is better (h264 18, hevc 20, av1 30, vp9 31 by default)."
        ),
    ] = None,
    chroma: Annotated[
        str,
        typer.Option(
            help=(
                "Colour resolution of h264/hevc/av1/vp9 outputs: 420 (default) plays everywhere, "
                "as cameras record; 444 keeps the restored colour for software players."
            )
        ),
    ] = "420",
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
        int | None,
        typer.Option(
            "--tile",
            help=(
                "Largest tile side in input pixels. Default: whole frames up to 1920 for the "
                "real-time models (tiles would recompute their overlaps), 640 for the others."
            ),
            show_default=False,
        ),
    ] = None,
    tile_overlap: OverlapOpt = 32,
    ray: RayOpt = None,
    workers: WorkersOpt = None,
    threads: ThreadsOpt = None,
) -> None:
    """Restore a video (file, camera or stream): same frames, rate, audio and metadata."""
    from jsnet_edge.restorer import Restorer
    from jsnet_edge.tiling import WHOLE_FRAME_TILE
    from jsnet_edge.video.config import VIDEO_TILE, VideoConfig
    from jsnet_edge.video.errors import IncompleteVideoError
    from jsnet_edge.video.paths import check_paths, default_output
    from jsnet_edge.video.pipeline import process
    from jsnet_edge.video.source import frame_size
    from jsnet_edge.zoo import check_model_task, is_video_model, pick_model

    cfg = VideoConfig(
        batch=batch,
        codec=codec,
        crf=crf,
        chroma=chroma,
        preview=preview,
        stats_path=stats,
        realtime=realtime,
        max_frames=max_frames,
        overwrite=overwrite,
        keep_partial=keep_partial,
    )
    first = sources[0]
    size = frame_size(Path(first)) if len(sources) == 1 and Path(first).is_file() else None
    name = pick_model(model, task, video=True, size=size)
    if tile is None:
        tile = WHOLE_FRAME_TILE if is_video_model(name) else VIDEO_TILE
    options = dict(
        backend=backend,
        device=device,
        precision=precision,
        tile=tile,
        tile_overlap=tile_overlap,
        threads=threads,
    )
    if ray is not None or len(sources) > 1 or Path(sources[0]).is_dir():
        if output is None:
            raise OptionError("several videos need an output folder: -o FOLDER")
        run_archive(
            "video",
            sources,
            output,
            name,
            task,
            options,
            video=cfg,
            ray=ray,
            workers=workers,
            overwrite=overwrite,
        )
        return
    source = sources[0]
    dst = output if output is not None else default_output(source)
    check_paths(source, dst, cfg)
    restorer = Restorer(name, color_order="bgr", **options)
    check_model_task(restorer.task, task, name)
    note(f"{name}: {restorer.describe()}")
    try:
        result = process(source, dst, restorer, cfg, progress=progress, log=note)
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
