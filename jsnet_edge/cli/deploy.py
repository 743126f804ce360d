"""Deployment commands: export, calibrate, build-engine, bench, doctor."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from jsnet_edge.cli.app import DeviceOpt, OverwriteOpt, app, err
from jsnet_edge.errors import OptionError, TargetNotMetError


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
    from jsnet_edge.export.onnx import export_onnx
    from jsnet_edge.export.verify import verify_onnx
    from jsnet_edge.models.resolve import resolve_model
    from jsnet_edge.outputs import check_output
    from jsnet_edge.sizes import parse_size

    if output.suffix != ".onnx":
        raise OptionError(f"the output must end in .onnx, got {output.name}")
    check_output(output, overwrite=overwrite, inputs=[model])
    size = parse_size(input_size)
    net = resolve_model(model)
    path = export_onnx(net, output, precision=precision, input_size=size, overwrite=overwrite)
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
            help=(
                "Folder of photographs like the ones the model will restore, split by "
                "photograph into calibration and held-out ones (16 or more is best); default: "
                "the bundled photographs and scikit-image's."
            )
        ),
    ] = None,
    num_images: Annotated[int, typer.Option(help="Calibration crops.")] = 32,
    heldout: Annotated[
        int, typer.Option(help="Held-out photographs the loss is measured on (fewer if few).")
    ] = 8,
    method: Annotated[str, typer.Option(help="minmax, percentile or entropy.")] = "percentile",
    max_drop: Annotated[
        float,
        typer.Option(
            help=(
                "Largest PSNR loss (dB) to accept, held to the 90% upper bound of the mean loss "
                "over the held-out photographs of --data (without --data: to the worst "
                "held-out generic photograph)."
            )
        ),
    ] = 0.1,
    target: Annotated[
        str,
        typer.Option(
            help=("cpu (onnxruntime/OpenVINO, uint8 activations) or tensorrt (symmetric int8).")
        ),
    ] = "cpu",
    qat: Annotated[
        bool,
        typer.Option(
            "--qat",
            help=(
                "Quantisation-aware fine-tuning (NNCF fake quantisers, weights and ranges "
                "trained on the calibration photographs): whole-network int8 at a fraction "
                "of post-training loss. Needs the \\[qat] extra."
            ),
        ),
    ] = False,
    steps: Annotated[int, typer.Option(help="QAT: optimiser steps.")] = 1000,
    teacher: Annotated[
        str,
        typer.Option(
            help="QAT target: self (the float model's output), clean (the photo) or both."
        ),
    ] = "self",
    lr: Annotated[float, typer.Option(help="QAT: Adam learning rate (cosine-decayed).")] = 5e-4,
    loss: Annotated[
        str,
        typer.Option(
            help="QAT loss: db (the PSNR loss per crop: smooth crops count as much), or l1."
        ),
    ] = "db",
    scope: Annotated[
        str,
        typer.Option(
            help=(
                "QAT: what runs in int8. convs: the inputs and weights of the body's "
                "convolutions (ModelOpt's placement for TensorRT; the least loss); body: "
                "also adds, multiplications and concatenations (OpenVINO's); all: body plus "
                "the layers that read or write image values."
            )
        ),
    ] = "convs",
    batch: Annotated[int, typer.Option(help="QAT: crops per step.")] = 8,
    crop: Annotated[
        int,
        typer.Option(
            help="QAT: side of the training crops in input pixels (smaller is faster per step)."
        ),
    ] = 64,
    checkpoint_every: Annotated[
        int, typer.Option(help="QAT: steps between checkpoints (and one on Ctrl-C).")
    ] = 100,
    resume: Annotated[
        bool, typer.Option("--resume", help="QAT: continue an interrupted run from its checkpoint.")
    ] = False,
    overwrite: OverwriteOpt = False,
) -> None:
    """Calibrate INT8 (explicit Q/DQ ONNX), keeping sensitive blocks in float; --qat
    fine-tunes with fake quantisation first."""
    from jsnet_edge.calibration.quantize import CalibrationConfig, report_path
    from jsnet_edge.calibration.quantize import calibrate as run_calibration
    from jsnet_edge.models.resolve import resolve_model

    cfg = CalibrationConfig(
        data=data,
        num_images=num_images,
        heldout=heldout,
        method=method,
        max_drop=max_drop,
        target=target,
    )
    if not (qat or resume) and (
        (steps, teacher, lr, loss, scope, batch, crop, checkpoint_every)
        != (1000, "self", 5e-4, "db", "convs", 8, 64, 100)
    ):
        raise OptionError(
            "--steps, --teacher, --lr, --loss, --scope, --batch, --crop and --checkpoint-every "
            "set the fine-tuning of --qat: add --qat"
        )
    net = resolve_model(model)
    if qat or resume:
        from jsnet_edge.calibration.qat import QATConfig
        from jsnet_edge.calibration.qat import qat as run_qat

        qcfg = QATConfig(
            steps=steps,
            teacher=teacher,
            lr=lr,
            loss=loss,
            scope=scope,
            batch=batch,
            crop=crop,
            checkpoint_every=checkpoint_every,
        )
        report = run_qat(net, output, cfg, qcfg, overwrite=overwrite, resume=resume, log=err)
    else:
        report = run_calibration(net, output, cfg, overwrite=overwrite, log=err)
    typer.echo(report.summary())
    typer.echo(f"wrote {output} and {report_path(output)}")
    if report.shortfall():
        raise TargetNotMetError(report.shortfall())


@app.command("build-engine")
def build_engine_cmd(
    model: Annotated[
        str,
        typer.Argument(
            help="Model file, zoo name, or an .onnx from export/calibrate.", show_default=False
        ),
    ],
    output: Annotated[
        Path, typer.Option("--output", "-o", help="Output .engine file.", show_default=False)
    ],
    fp16: Annotated[bool, typer.Option("--fp16", help="Build from the fp16 ONNX.")] = False,
    int8: Annotated[
        bool,
        typer.Option(
            "--int8", help="Calibrate (symmetric int8 Q/DQ for TensorRT) and build from it."
        ),
    ] = False,
    calib: Annotated[Path | None, typer.Option(help="Calibration photographs (--int8).")] = None,
    min_shape: Annotated[str, typer.Option(help="Smallest input WxH.")] = "64x64",
    opt_shape: Annotated[str, typer.Option(help="Input WxH to tune for.")] = "640x360",
    max_shape: Annotated[str, typer.Option(help="Largest input WxH.")] = "1920x1088",
    compute_capability: Annotated[
        str | None,
        typer.Option(
            "--compute-capability",
            help=(
                "TensorRT for RTX: the GPUs to build for, e.g. 8.6,8.9,12.0 (current: this "
                "GPU); default: the builder's own set (8.0, 8.6, 8.9, 12.0)."
            ),
        ),
    ] = None,
    workspace: Annotated[
        float | None, typer.Option(help="Builder workspace limit (GB); default: none.")
    ] = None,
    via: Annotated[str, typer.Option(help="tensorrt, or torch-tensorrt.")] = "tensorrt",
    overwrite: OverwriteOpt = False,
) -> None:
    """Build a TensorRT engine: ahead of time without a GPU with TensorRT for RTX, or on the
    GPU it is for with TensorRT 10/11."""
    from jsnet_edge.engine import EngineConfig, build_engine_for
    from jsnet_edge.export.tensorrt import Profile, parse_compute_capabilities
    from jsnet_edge.sizes import parse_size

    profile = Profile(parse_size(min_shape), parse_size(opt_shape), parse_size(max_shape))
    cfg = EngineConfig(
        fp16=fp16,
        int8=int8,
        calib=calib,
        profile=profile,
        compute_capabilities=parse_compute_capabilities(compute_capability),
        workspace_gb=workspace,
        via=via,
        overwrite=overwrite,
    )
    report = build_engine_for(model, output, cfg, log=err)
    typer.echo(report.summary())
    typer.echo(f"wrote {report.engine.path} and {report.engine.path.name}.json")


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
    overwrite: OverwriteOpt = False,
) -> None:
    """Latency, fps, peak memory and PSNR loss of every available backend and precision."""
    from jsnet_edge.bench import bench as run_bench
    from jsnet_edge.bench import check_int8_file, check_some_ran, default_configs, save_json, table
    from jsnet_edge.devices import machine_description
    from jsnet_edge.outputs import check_output
    from jsnet_edge.sizes import parse_size

    size = parse_size(input_size)
    if json_path is not None:
        check_output(json_path, overwrite=overwrite, inputs=[model])
    if int8 is not None:
        check_int8_file(int8)
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
        save_json(json_path, rows, size, machine_description(device), overwrite=overwrite)
    check_some_ran(rows)


@app.command()
def doctor(
    json_out: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """What this machine offers: runtimes and versions, CPU features, GPU and TensorRT,
    what auto picks, and what the user cache holds."""
    import json

    from jsnet_edge.doctor import diagnose, report

    facts = diagnose()
    typer.echo(json.dumps(facts, indent=2) if json_out else report(facts))
