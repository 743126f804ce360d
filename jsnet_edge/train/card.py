"""The model card written beside every trained model: task, data, command, steps, measured
quality. Weights we ship carry one."""

from __future__ import annotations

from pathlib import Path

from jsnet_edge.outputs import write_text


def write_card(
    path: Path, prov: dict, *, genotype: str, gray: bool, init_count: int, settings: str
) -> Path:
    """Write the card for a model with provenance `prov` (as stored in the model file).

    settings: one line on how it was trained (batch, patch, loss, optimiser, precision).
    """
    val = (
        f"{prov['val_psnr']:.2f} dB PSNR / {prov['val_ssim']:.4f} SSIM on {prov['validation']}"
        if prov.get("val_psnr") is not None
        else "not measured (no --val)"
    )
    init = prov["init"] if init_count == 0 else f"{prov['init']} ({init_count} tensors matched)"
    lines = [
        f"# {path.stem}",
        "",
        "| | |",
        "| --- | --- |",
        f"| task | {prov['task']} ({'gray' if gray else 'RGB'}) |",
        f"| genotype | `{genotype}` |",
        f"| degradation | {prov['degradation']} |",
        f"| data | {prov['data']} |",
        f"| initialisation | {init} |",
        f"| steps | {prov['steps']} ({settings}) |",
        f"| wall time | {prov['wall_time_s'] / 3600:.2f} h |",
        f"| machine | {prov['machine']} |",
        f"| validation | {val} |",
        f"| date | {prov['date']} |",
        "",
        "Command:",
        "",
        "```",
        prov["command"] or "(library call)",
        "```",
        "",
    ]
    if len(prov.get("commands", [])) > 1:
        lines += [
            "The run was stopped and resumed (from the step it resumes at, the learning "
            "rate follows the schedule of that command's --steps: a longer run restarts "
            "it warm); the commands, with the step each started at:",
            "",
        ]
        lines += [f"- step {c['step']}: `{c['command']}`" for c in prov["commands"]]
        lines.append("")
    return write_text(path, "\n".join(lines))
