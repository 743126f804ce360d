"""Search commands: profile (latency tables) and search."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from jsnet_edge.cli.app import DeviceOpt, OverwriteOpt, app, command_line, err

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
            "fp32, fp16, bf16 or int8, as the backend supports; int8 times each block and "
            "network as the quantisation-aware Q/DQ graph `calibrate --qat` writes (the \\[qat] "
            "extra)."
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


CsfmOpt = Annotated[
    str,
    typer.Option(
        help=(
            "The fusion before the tail: yes (the paper's cross-scale fusion module), no (a "
            "plain 1x1 convolution: `-P` genotypes, cheaper at video sizes) or search."
        )
    ),
]


def _search_space(widths: str, max_cells: int, nodes: int, unshuffle: int = 1, csfm: str = "yes"):
    from jsnet_edge.search.space import SearchSpace, parse_csfm, parse_widths

    return SearchSpace(
        parse_widths(widths), max_cells, nodes, unshuffle=unshuffle, csfm=parse_csfm(csfm)
    )


def _input_size(text: str) -> tuple[int, int]:
    from jsnet_edge.sizes import parse_size

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
    csfm: CsfmOpt = "yes",
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
    overwrite: OverwriteOpt = False,
    runtime_threads: Annotated[
        int | None,
        typer.Option(help=("Threads of the runtime being profiled (default: its own choice).")),
    ] = None,
    seed: Annotated[int, typer.Option(help="Seeds the validation networks.")] = 0,
) -> None:
    """Measure the latency table of the search space on a device and backend."""
    from jsnet_edge.runtime.timing import TimingMethod
    from jsnet_edge.search.profile import ProfileConfig
    from jsnet_edge.search.profile import profile as run_profile

    cfg = ProfileConfig(
        device=device,
        backend=backend,
        precision=precision,
        input_size=_input_size(input_size),
        task=task,
        space=_search_space(widths, max_cells, nodes, unshuffle, csfm),
        out=output,
        table=table,
        validate=validate,
        refresh=refresh,
        gray=gray,
        timing=TimingMethod(repeats=repeats, min_repeats=max(1, min(5, repeats))),
        threads=runtime_threads,
        seed=seed,
        overwrite=overwrite,
    )
    result, v = run_profile(cfg, log=err)
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
    csfm: CsfmOpt = "yes",
    batch: Annotated[int, typer.Option(help="Patches per step.")] = 8,
    patch: Annotated[int, typer.Option(help="Target patch side (pixels).")] = 64,
    noise: Annotated[
        str,
        typer.Option(help="Denoising: gaussian, or camera (sensor noise, 4:2:0, H.264/JPEG)."),
    ] = "gaussian",
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
    from jsnet_edge.runtime.timing import TimingMethod
    from jsnet_edge.search.config import SearchConfig, budget_label, parse_budget, parse_budgets
    from jsnet_edge.search.search import search as run_search
    from jsnet_edge.search.space import parse_csfm, parse_widths

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
        csfm=parse_csfm(csfm),
        batch=batch,
        patch=patch,
        noise=noise,
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
        timing=TimingMethod(repeats=repeats, min_repeats=max(1, min(5, repeats))),
        seed=seed,
        threads=threads,
        runtime_threads=runtime_threads,
        overwrite=overwrite,
        command=command_line(),
    )
    result = run_search(cfg, log=err)
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
