"""Commands on images and model files: image, info, convert-official, eval, models."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from jsnet_edge.cli.app import (
    BackendOpt,
    DeviceOpt,
    ModelOpt,
    OverlapOpt,
    OverwriteOpt,
    PrecisionOpt,
    RayOpt,
    TaskOpt,
    ThreadsOpt,
    TileOpt,
    WorkersOpt,
    app,
    run_archive,
)
from jsnet_edge.errors import OptionError


@app.command()
def image(
    inputs: Annotated[
        list[Path],
        typer.Argument(
            help="Image files, folders of images and/or lists of paths (.txt, one a line).",
            show_default=False,
        ),
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
    precision: PrecisionOpt = "auto",
    tile: TileOpt = 512,
    tile_overlap: OverlapOpt = 32,
    overwrite: OverwriteOpt = False,
    ray: RayOpt = None,
    workers: WorkersOpt = None,
    threads: ThreadsOpt = None,
) -> None:
    """Restore images: files, folders or lists of paths (.txt) in, restored images out."""
    from jsnet_edge.image_files import plan_image_outputs, restore_images
    from jsnet_edge.restorer import Restorer
    from jsnet_edge.zoo import check_model_task, pick_model

    name = pick_model(model, task)
    options = dict(
        backend=backend,
        device=device,
        precision=precision,
        tile=tile,
        tile_overlap=tile_overlap,
        threads=threads,
    )
    one_file = len(inputs) == 1 and inputs[0].is_file() and inputs[0].suffix.lower() != ".txt"
    if ray is not None or not one_file:
        # folders, lists and several files: the archive planner, here or on Ray (one
        # planner: lists of paths, re-runs skip what is done, a bad file does not stop the rest)
        run_archive(
            "image",
            inputs,
            output,
            name,
            task,
            options,
            ray=ray,
            workers=workers,
            overwrite=overwrite,
        )
        return
    plan = plan_image_outputs(inputs, output, overwrite=overwrite)
    # OpenCV's own colour order: files are read and written without a copy
    restorer = Restorer(name, color_order="bgr", **options)
    check_model_task(restorer.task, task, name)
    typer.echo(f"restoring with {restorer.describe()}")
    restore_images(restorer, plan, overwrite=overwrite, progress=True)
    typer.echo(f"wrote {plan[0][1]}")


@app.command()
def info(
    model: Annotated[str, typer.Argument(help="Model file or zoo name.", show_default=False)],
    json_out: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Parameters, multiply-adds (1280x720 output) and provenance of a model."""
    from jsnet_edge.models.complexity import count_macs, count_parameters, count_stored_weights
    from jsnet_edge.models.resolve import resolve_model

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
    from jsnet_edge.outputs import check_output

    if output.suffix != ".safetensors":
        raise OptionError(f"the output must end in .safetensors, got {output.name}")
    check_output(output, overwrite=overwrite, inputs=[checkpoint])
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
    noise: Annotated[
        str, typer.Option(help="Denoising: gaussian, or camera (sensor noise, 4:2:0, H.264/JPEG).")
    ] = "gaussian",
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
    cfg = EvalConfig(
        data=data,
        sigma=sigma,
        quality=quality,
        noise=noise,
        metric=metric,
        crop=crop,
        limit=limit,
    )
    report = evaluate(restorer, cfg)
    typer.echo(json.dumps(report.to_dict(), indent=2) if json_out else report.table())


@app.command()
def models(
    name: Annotated[
        str | None, typer.Argument(help="Show this model's card; or `fetch`.", show_default=False)
    ] = None,
    names: Annotated[
        list[str] | None,
        typer.Argument(help="With fetch: authors-x2, authors-x3, authors-x4.", show_default=False),
    ] = None,
) -> None:
    """List the models, show one model card, or `fetch` the authors' models (downloaded
    from the authors' repository, sha256-checked, converted, kept in the user cache)."""
    from jsnet_edge.models.authors import AUTHORS, card, card_path, fetch, is_fetched
    from jsnet_edge.zoo import ZOO, zoo_entry

    if name == "fetch":
        if not names:
            raise OptionError(f"name the models to fetch: {', '.join(AUTHORS)}")
        for each in names:
            typer.echo(f"{each}: {fetch(each, progress=True)}")
        return
    if names:
        raise OptionError(f"one model card at a time, or `fetch NAME...`; got {name} {names}")
    if name in AUTHORS:
        path = card_path(name)
        typer.echo(path.read_text() if path.is_file() else card(AUTHORS[name]))
        return
    if name is not None:
        typer.echo(zoo_entry(name).card())
        return
    for entry in ZOO.values():
        typer.echo(f"{entry.name:<16}{entry.task:<9}{entry.summary}")
    for c in AUTHORS.values():
        where = "fetched" if is_fetched(c.name) else "downloaded on first use, or `models fetch`"
        typer.echo(f"{c.name:<16}sr-x{c.scale:<5}the authors' released checkpoint ({where})")
