"""The training run's outputs beside the checkpoints: ``log.jsonl`` (the logged terms, one line
per ``log_every`` steps, cut back on resume), ``training_curve.png`` (those terms plotted) and the
preview grids ``samples/step_XXXXXXX.png`` (inputs, targets and a sample of one fixed clip)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import torch
from torch import Tensor


def append_log(path: Path, terms: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as f:
        f.write(json.dumps(terms) + "\n")


def read_log(path: Path) -> list[dict]:
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def cut_log(path: Path, step: int) -> None:
    """Drop the lines logged after ``step`` (a resumed run logs them again)."""
    rows = read_log(path)
    kept = [r for r in rows if r["step"] <= step]
    if len(kept) != len(rows):
        from camera.io import atomic_write_text

        atomic_write_text(path, "".join(json.dumps(r) + "\n" for r in kept))


def running_mean(steps: np.ndarray, values: np.ndarray, parts: int = 40) -> tuple[np.ndarray, np.ndarray, int]:
    """(steps, means, k): the mean of each ``k`` consecutive logged values, k = len // parts (>= 1),
    at the step of the last value of each window."""
    k = max(1, len(values) // parts)
    return steps[k - 1 :], np.convolve(values, np.ones(k) / k, mode="valid"), k


def plot_training_curve(log: Path, path: Path) -> None:
    """Loss terms (log scale) and learning rate against the step, from ``log.jsonl``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from camera.plot import save_figure

    rows = read_log(log)
    if not rows:
        return
    steps = np.array([r["step"] for r in rows])
    names = [k for k in rows[-1] if k not in ("step", "time", "lr", "grad_norm")]
    fig, (ax0, ax1) = plt.subplots(1, 2, figsize=(10, 3.6))
    for name in names:
        values = np.array([r.get(name, np.nan) for r in rows], dtype=float)
        ax0.plot(steps, values, alpha=0.25)
        at, means, k = running_mean(steps, values)
        ax0.plot(at, means, label=f"{name} (mean of {k})", color=ax0.lines[-1].get_color())
    ax0.set(xlabel="step", ylabel="loss", yscale="log", title="training losses")
    ax0.legend(fontsize=7)
    ax1.plot(steps, [r.get("lr", np.nan) for r in rows])
    ax1.set(xlabel="step", ylabel="learning rate", title="schedule")
    fig.tight_layout()
    save_figure(fig, path, close=True, dpi=110)


def save_grid(path: Path, inputs: Tensor, targets: Tensor, samples: Tensor, title: str) -> None:
    """Rows: input views, target frames, sampled frames. inputs [V, 3, H, W]; targets, samples [F, 3, H, W]."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [("input", inputs), ("target", targets), ("sample", samples)]
    cols = max(len(x) for _, x in rows)
    fig, axes = plt.subplots(3, cols, figsize=(1.6 * cols, 5.0), squeeze=False)
    for r, (label, images) in enumerate(rows):
        for c in range(cols):
            ax = axes[r, c]
            ax.axis("off")
            if c < len(images):
                ax.imshow(images[c].permute(1, 2, 0).clamp(0, 1).numpy())
        axes[r, 0].set_title(label, fontsize=8, loc="left")
    fig.suptitle(title)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp.png")
    fig.savefig(tmp, dpi=80)
    plt.close(fig)
    os.replace(tmp, path)


@torch.no_grad()
def sample_preview(model, batch, steps: int, guidance: float) -> Tensor:
    """The first clip of ``batch`` (a TrainBatch) sampled by ``model`` (eval mode, seed 0) -> [F, 3, H, W] on CPU."""
    from nvs.sampling import karras_sigmas, sample

    model.unet.eval()
    model.conditioner.eval()
    device = batch.input_images.device
    cond = model.condition(
        batch.conditioning_inputs(model.settings.latent_size, with_targets=False),
        generator=torch.Generator(device).manual_seed(0),
    )
    shape = (1, model.settings.num_frames, 4, *model.settings.latent_size)
    generator = torch.Generator(device).manual_seed(0)
    latents = sample(model, cond, shape, karras_sigmas(steps), guidance, generator=generator)
    return model.decode_latents(latents)[0].float().cpu()
