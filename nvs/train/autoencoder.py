"""Stage 1 for a model trained from scratch: the temporal VAE (``AutoencoderKLTemporalDecoder``).

Real SVD weights come with their VAE; a small model built here has none, and the diffusion
stage needs a latent space that decodes back to images. This trains the VAE on clips of the
same scenes (frames in trajectory order, since the decoder mixes the frames of a clip)::

    L = |D(z) − x|₁ + λ_kl · KL(q(z|x) ‖ N(0, I)),   z ~ q(z|x),   x in [-1, 1]

Half of the clips are shown as image x mask (object on black), half whole, because the
diffusion stage encodes both: whole input views and, on the SparseFusion protocol, masked
targets. Afterwards the latent scale is set as Stable Diffusion's was chosen: ``scaling_factor``
= 1 / std of the latent means over the training frames, so the diffusion space has unit variance.

Output folder: ``vae/`` (diffusers ``save_pretrained``, written atomically), ``vae_curve.json``
and ``vae_curve.png``, ``vae_samples.png`` (input / reconstruction rows).
"""

from __future__ import annotations

import json
import math
import time
from contextlib import nullcontext
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from torch import Tensor, nn

from nvs.data.clips import SceneSet
from nvs.evaluation.metrics import psnr


@dataclass
class AutoencoderSettings:
    """The ``autoencoder:`` block of configs/train_vae.yaml: these are the defaults (registered by
    :mod:`nvs.config`), the YAML files override them."""

    out: str  # writes <out>/vae, vae_curve.{json,png}, vae_samples.png (mandatory: autoencoder.out=runs/NAME)
    steps: int = 2000
    batch_size: int = 8  # clips of ``frames`` consecutive frames
    frames: int | None = None  # the decoder's temporal window; None: the model's num_frames (set by nvs train-vae)
    lr: float = 4e-4
    warmup_steps: int = 100
    kl_weight: float = 1e-6  # LDM's KL weight
    masked_fraction: float = 0.5  # clips shown as image x mask (object on black)
    grad_clip: float = 1.0
    precision: str = "auto"  # auto = bf16 autocast on CUDA, fp32 on CPU; or "bf16", "fp32"
    device: str = "auto"
    scale_batches: int = 8  # batches whose latents set scaling_factor
    log_every: int = 10
    time_limit_minutes: float | None = None  # stop early (the VAE is still scaled and saved)
    progress: bool = True
    seed: int = 0  # configs/train_vae.yaml: the run's seed

    def __post_init__(self) -> None:
        if self.steps < 1 or self.batch_size < 1 or (self.frames is not None and self.frames < 1):
            raise ValueError("autoencoder.steps, batch_size and frames must be >= 1")
        if not 0.0 <= self.masked_fraction <= 1.0:
            raise ValueError(f"autoencoder.masked_fraction must be in [0, 1], got {self.masked_fraction}")
        if self.precision not in ("auto", "bf16", "fp32"):
            raise ValueError(f"autoencoder.precision must be auto, bf16 or fp32, got {self.precision!r}")


def draw_clips(scenes: SceneSet, batch: int, frames: int, masked_fraction: float, rng: np.random.Generator) -> Tensor:
    """[B, F, 3, H, W] in [0, 1]: B windows of ``frames`` consecutive frames of random scenes,
    a ``masked_fraction`` of them multiplied by their masks."""
    clips = []
    for _ in range(batch):
        scene = int(rng.integers(len(scenes)))
        n = scenes.frame_counts[scene]
        if n < frames:
            raise ValueError(f"scene {scene} has {n} frames, fewer than autoencoder.frames={frames}")
        start = int(rng.integers(0, n - frames + 1))
        views = scenes.load(scene, range(start, start + frames))
        images = views.images
        if views.masks is not None and rng.random() < masked_fraction:
            images = images * views.masks
        clips.append(images)
    return torch.stack(clips)


def autoencoder_loss(
    vae: nn.Module, clips: Tensor, kl_weight: float, generator: torch.Generator | None = None
) -> tuple[Tensor, dict[str, float], Tensor]:
    """clips [B, F, 3, H, W] in [0, 1] -> (loss, terms, reconstructions [B, F, 3, H, W] in [0, 1])."""
    b, f = clips.shape[:2]
    x = clips.flatten(0, 1) * 2 - 1
    posterior = vae.encode(x).latent_dist
    z = posterior.sample(generator)
    recon = vae.decode(z, num_frames=f).sample.float()
    l1 = (recon - x.float()).abs().mean()
    kl = posterior.kl().float().mean()  # summed over the latent of a frame, as LDM's kl_weight expects
    loss = l1 + kl_weight * kl / x[0].numel()  # LDM: per-frame sums, here both divided by the pixel count
    terms = {"loss": loss.item(), "l1": l1.item(), "kl_per_dim": kl.item() / z[0].numel()}
    return loss, terms, ((recon.detach() + 1) / 2).clamp(0, 1).unflatten(0, (b, f))


@torch.no_grad()
def latent_scale(
    vae: nn.Module, scenes: SceneSet, settings: AutoencoderSettings, device: torch.device, rng: np.random.Generator
) -> float:
    """1 / std of the latent means over ``scale_batches`` batches of training clips."""
    values = []
    for _ in range(settings.scale_batches):
        clips = draw_clips(scenes, settings.batch_size, settings.frames, settings.masked_fraction, rng)
        x = clips.flatten(0, 1).to(device) * 2 - 1
        values.append(vae.encode(x).latent_dist.mean.float().flatten().cpu())
    std = float(torch.cat(values).std())
    if not math.isfinite(std) or std <= 0:
        raise FloatingPointError(f"the VAE latents have std {std}: the autoencoder did not train")
    return 1.0 / std


def fit_autoencoder(vae: nn.Module, scenes: SceneSet, settings: AutoencoderSettings) -> dict:
    """Train ``vae`` in place, set its ``scaling_factor``, write the output folder; returns the summary."""
    if settings.frames is None:
        raise ValueError("autoencoder.frames is None: set it to the model's num_frames (nvs train-vae does)")
    device = torch.device(
        settings.device if settings.device != "auto" else ("cuda" if torch.cuda.is_available() else "cpu")
    )
    use_bf16 = settings.precision == "bf16" or (settings.precision == "auto" and device.type == "cuda")
    autocast = (lambda: torch.autocast(device.type, dtype=torch.bfloat16)) if use_bf16 else nullcontext
    torch.manual_seed(settings.seed)
    rng = np.random.default_rng(settings.seed)
    gen = torch.Generator(device).manual_seed(settings.seed)
    vae = vae.to(device).train()
    optimizer = torch.optim.AdamW(vae.parameters(), lr=settings.lr, weight_decay=0.0)
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: min(1.0, (s + 1) / max(1, settings.warmup_steps))
    )
    curve: dict[str, list[float]] = {"step": [], "loss": [], "l1": [], "kl_per_dim": []}
    deadline = time.monotonic() + 60 * settings.time_limit_minutes if settings.time_limit_minutes else None
    from tqdm.auto import tqdm

    start = time.perf_counter()
    bar = tqdm(range(1, settings.steps + 1), desc="train vae", disable=not settings.progress)
    step = 0
    for step in bar:
        clips = draw_clips(scenes, settings.batch_size, settings.frames, settings.masked_fraction, rng).to(device)
        with autocast():
            loss, terms, _ = autoencoder_loss(vae, clips, settings.kl_weight, gen)
        if not torch.isfinite(loss):
            raise FloatingPointError(f"VAE loss is {loss.item()} at step {step}: lower autoencoder.lr")
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        nn.utils.clip_grad_norm_(vae.parameters(), settings.grad_clip)
        optimizer.step()
        scheduler.step()
        if step % max(1, settings.log_every) == 0 or step == 1:
            curve["step"].append(step)
            for k in ("loss", "l1", "kl_per_dim"):
                curve[k].append(terms[k])
            bar.set_postfix(l1=f"{terms['l1']:.4f}")
        if deadline is not None and time.monotonic() > deadline:
            print(f"autoencoder: time limit of {settings.time_limit_minutes} min reached at step {step}")
            break
    bar.close()
    train_seconds = time.perf_counter() - start
    vae.eval()
    scale = latent_scale(vae, scenes, settings, device, rng)
    vae.register_to_config(scaling_factor=scale)
    with torch.no_grad(), autocast():
        clips = draw_clips(scenes, 2, settings.frames, 0.5, np.random.default_rng(settings.seed + 1)).to(device)
        _, eval_terms, recon = autoencoder_loss(vae, clips, settings.kl_weight, gen)
    out = Path(settings.out)
    save_vae(vae, out / "vae")
    summary = {
        "settings": asdict(settings),
        "steps_done": step,
        "train_seconds": train_seconds,
        "scaling_factor": scale,
        "final_l1": curve["l1"][-1] if curve["l1"] else None,
        "train_clip_psnr": float(psnr(recon.cpu().flatten(0, 1), clips.cpu().flatten(0, 1)).mean()),
        "device": str(device),
        "curve": curve,
    }
    from camera.io import atomic_write_text

    atomic_write_text(out / "vae_curve.json", json.dumps(summary, indent=1))
    plot_curve(curve, out / "vae_curve.png")
    plot_reconstructions(clips[0].cpu(), recon[0].cpu(), out / "vae_samples.png")
    return summary


def save_vae(vae: nn.Module, folder: Path) -> None:
    """``save_pretrained`` into a temporary sibling, then renamed over ``folder``."""
    from camera.io import atomic_folder

    with atomic_folder(folder) as tmp:
        vae.save_pretrained(tmp, safe_serialization=True)


def plot_curve(curve: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from camera.plot import save_figure

    fig, ax = plt.subplots(figsize=(5, 3.2))
    ax.plot(curve["step"], curve["l1"], label="L1 ([-1, 1] units)")
    ax.set(xlabel="step", ylabel="reconstruction L1", yscale="log", title="VAE training")
    ax.legend()
    fig.tight_layout()
    save_figure(fig, path, close=True, dpi=110)


def plot_reconstructions(images: Tensor, recon: Tensor, path: Path) -> None:
    """Rows: frames of one clip, their reconstructions. images, recon [F, 3, H, W]."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from camera.plot import save_figure

    f = images.shape[0]
    fig, axes = plt.subplots(2, f, figsize=(1.5 * f, 3.2), squeeze=False)
    for row, (label, x) in enumerate((("input", images), ("reconstruction", recon))):
        for c in range(f):
            axes[row, c].imshow(x[c].permute(1, 2, 0).clamp(0, 1).numpy())
            axes[row, c].axis("off")
        axes[row, 0].set_title(label, fontsize=8, loc="left")
    fig.tight_layout()
    save_figure(fig, path, close=True, dpi=90)
