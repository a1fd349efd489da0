"""The report of ``nvs demo``: every method scored against the ground truth, then summary.md and the
terminal table, both read from the metrics.json dictionary (see :func:`nvs.evaluation.demo_run.run_demo`)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from torch import Tensor

from camera.views import Views
from nvs.evaluation.metrics import image_metrics

METHOD_NAMES = {
    "model": "model (generated)",
    "nearest_view": "nearest input view",
    "pixelnerf_rgb": "PixelNeRF RGB branch",
    "recon": "3D Gaussians (recon)",
}


def score(pred: Tensor, truth: Views) -> dict[str, Any]:
    """pred [F, 3, H, W] against the ground-truth Views -> per-frame PSNR / SSIM (scikit-image's) /
    SSIM (Gaussian window) and the means of the first two; the SparseFusion rule (pred x valid
    region, truth x soft mask) when the truth was cropped (it has a valid region)."""
    cropped = truth.valid_region is not None
    m = image_metrics(
        pred.float(),
        truth.images.float(),
        None,
        truth.masks if cropped else None,
        truth.valid_region if cropped else None,
    )
    return {**m, "psnr_mean": float(np.mean(m["psnr"])), "ssim_mean": float(np.mean(m["ssim"]))}


def summary_markdown(metrics: dict[str, Any]) -> str:
    """summary.md: the mean table, per-frame PSNR / SSIM and the wall time of each stage."""
    methods = metrics["methods"]
    scene = metrics["scene"]
    model = metrics["model"]
    threads = metrics["threads"]
    lines = [
        f"# nvs demo: {scene['name']}",
        "",
        f"Model `{model['folder']}` ({model['parameters'] / 1e6:.1f} M parameters, "
        f"{model['num_frames']} frames of {model['image_size'][0]}x{model['image_size'][1]}, "
        f"conditioner {model['conditioner']}), "
        f"{len(scene['input_positions'])} input views at capture positions {scene['input_positions']}, "
        f"{len(scene['path_positions'])}-frame path from {scene['path_positions'][0]:g} to "
        f"{scene['path_positions'][-1]:g}; {metrics['sampler']['method']} sampler, "
        f"{metrics['sampler']['steps']} steps, guidance {metrics['sampler']['guidance']}, on "
        f"{metrics['device']} ({threads} torch thread{'s' if threads != 1 else ''}). "
        f"Scoring: {scene['scoring']}.",
        "",
        "| method | PSNR (dB) | SSIM |",
        "|---|---|---|",
    ]
    for key, m in methods.items():
        if "psnr_mean" in m:
            lines.append(f"| {METHOD_NAMES[key]} | {m['psnr_mean']:.2f} | {m['ssim_mean']:.3f} |")
        else:
            lines.append(f"| {METHOD_NAMES[key]} | - | - ({m.get('skipped', '')}) |")
    scored = [k for k, m in methods.items() if "psnr" in m]
    lines += [
        "",
        "## Per frame (PSNR dB / SSIM)",
        "",
        "| frame | capture position | " + " | ".join(METHOD_NAMES[k] for k in scored) + " |",
        "|---|---|" + "---|" * len(scored),
    ]
    for i, position in enumerate(scene["path_positions"]):
        cells = [f"{methods[k]['psnr'][i]:.2f} / {methods[k]['ssim'][i]:.3f}" for k in scored]
        lines.append(f"| {i} | {position:g} | " + " | ".join(cells) + " |")
    lines += ["", "## Wall time (s)", "", "| stage | seconds |", "|---|---|"]
    lines += [f"| {k} | {v:.2f} |" for k, v in metrics["seconds"].items()]
    if metrics["notes"]:
        lines += ["", "## Notes", ""] + [f"- {n}" for n in metrics["notes"]]
    return "\n".join(lines) + "\n"


def print_summary(metrics: dict[str, Any], out: Path) -> None:
    """The mean table and the wall time of each stage, printed to the terminal with rich."""
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"nvs demo: {metrics['scene']['name']}, {len(metrics['scene']['path_positions'])} frames")
    table.add_column("method")
    table.add_column("PSNR (dB)", justify="right")
    table.add_column("SSIM", justify="right")
    for key, m in metrics["methods"].items():
        if "psnr_mean" in m:
            table.add_row(METHOD_NAMES[key], f"{m['psnr_mean']:.2f}", f"{m['ssim_mean']:.3f}")
        else:
            table.add_row(METHOD_NAMES[key], "-", m.get("skipped", ""))
    console = Console(soft_wrap=True)
    console.print(table)
    stages = ", ".join(f"{k} {v:.1f}" for k, v in metrics["seconds"].items() if k != "total")
    console.print(f"wall time {metrics['seconds']['total']:.1f} s ({stages}) -> {out}")
