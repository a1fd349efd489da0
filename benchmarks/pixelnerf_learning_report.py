"""The report of ``benchmarks.pixelnerf_learning``: its Markdown table, learning curve and samples.

``metrics`` is ``{V: {method: {"psnr", "ssim"}}}`` (held-out scores per number of input views V);
``methods`` the compared methods in column order, the learned one first and the baselines after.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from camera.plot import save_figure

BASELINE_STYLES = ("--", ":", "-.")


def markdown_table(metrics: dict, methods: Sequence[str]) -> str:
    """One row per number of input views, one ``PSNR / SSIM`` column per method."""
    lines = [
        "| input views | " + " | ".join(f"{m} PSNR / SSIM" for m in methods) + " |",
        "|---|" + "---|" * len(methods),
    ]
    for v in sorted(metrics):
        cells = [f"{metrics[v][m]['psnr']:.2f} / {metrics[v][m]['ssim']:.3f}" for m in methods]
        lines.append(f"| {v} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def plot_curve(curve: dict, metrics: dict, methods: Sequence[str], path: Path) -> None:
    """Training loss (log scale, with a running mean) beside the held-out PSNR at 3 input views
    over the steps, the baselines' final PSNR as horizontal lines."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax0, ax1) = plt.subplots(1, 2, figsize=(11, 4))
    loss = np.asarray(curve["loss"])
    k = max(1, len(loss) // 50)
    smooth = np.convolve(loss, np.ones(k) / k, mode="valid")
    ax0.plot(curve["step"], loss, alpha=0.3, label="step loss")
    ax0.plot(curve["step"][k - 1 :], smooth, label=f"mean of {k}")
    ax0.set(xlabel="step", ylabel="L2 loss (RGB branch)", yscale="log", title="training loss")
    ax0.legend()
    ax1.plot(curve["eval_step"], curve["eval_psnr_3_views"], "o-", label="PixelNeRF")
    for method, style in zip(methods[1:], BASELINE_STYLES):
        ax1.axhline(metrics[3][method]["psnr"], ls=style, color="gray", label=method)
    ax1.set(xlabel="step", ylabel="PSNR (dB)", title="held-out novel views, 3 input views")
    ax1.legend()
    fig.tight_layout()
    save_figure(fig, path, close=True, dpi=120)


def plot_samples(samples: list[dict], methods: Sequence[str], path: Path) -> None:
    """One row per sample: the ground truth (``gt``), then each method's image [3, h, w]."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cols = ("gt", *methods)
    fig, axes = plt.subplots(len(samples), len(cols), figsize=(2 * len(cols), 2 * len(samples)), squeeze=False)
    for r, sample in enumerate(samples):
        for c, name in enumerate(cols):
            axes[r, c].imshow(sample[name].clamp(0, 1).permute(1, 2, 0).numpy())
            axes[r, c].set_axis_off()
            if r == 0:
                axes[r, c].set_title(name, fontsize=9)
    fig.tight_layout()
    save_figure(fig, path, close=True, dpi=100)
