"""Does the PixelNeRF conditioner learn? Train its RGB branch alone on the synthetic world and
score held-out novel views against two baselines.

Scenes: ``categories`` x ``train_seeds`` hand-held captures (``nvs.data.synthetic``), rendered
once and kept in memory; held-out scenes use other seeds. Images show the object in its room;
``--masked`` puts the object on black (image x mask, inputs and targets alike), as the
SparseFusion CO3D protocol behind V3D's Table 3 does. Each step draws ``batch`` scenes,
1-4 input views and ``targets`` other views, and minimises the L2 loss of the RGB branch
against the targets area-downsampled to the render grid. Evaluation (per held-out scene, a fixed
permutation of its frames seeded by the scene index): inputs = the first V of it for V in
(1, 2, 3, 6) (nested), targets = the next ``eval_targets`` frames (the same for every V);
PSNR and SSIM (scikit-image, data range 1) at the render grid, for PixelNeRF, the nearest input
view (by camera-centre distance) copied, and the mean colour of the inputs.

The model is the best configuration found, not V3D's: ``rgb_mode="blend"`` (each sample's
colour blended from the input colours at its projections, IBRNet-style) and 16
``background_samples`` per ray beyond the box [-1, 1]^3 (the room's walls and floor lie outside
it). ``--rgb-mode decode --background-samples 0`` is V3D's branch, the earlier runs in
``benchmarks/results/pixelnerf_learning_{l1,l2,masked}``.

    python -m benchmarks.pixelnerf_learning --out runs/pixelnerf_learning           # GPU
    python -m benchmarks.pixelnerf_learning --out /tmp/pnl --quick                  # CPU, tiny
    python -m benchmarks.pixelnerf_learning --out DIR --rgb-mode decode --background-samples 0   # V3D's

Writes ``pixelnerf_learning.json``, ``pixelnerf_learning.md``, ``learning_curve.png`` and
``samples.png`` (held-out targets: ground truth, PixelNeRF, nearest view, mean colour), through
:mod:`benchmarks.pixelnerf_learning_report`.
"""

from __future__ import annotations

import argparse
import json
import math
import random
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor
from tqdm import tqdm

from benchmarks.pixelnerf_learning_report import markdown_table, plot_curve, plot_samples
from camera.cameras import Cameras
from camera.io import atomic_write_bytes
from camera.views import Views
from conditioning.base import ConditioningInputs
from conditioning.pixelnerf import PixelNeRFConditioner

EVAL_VIEWS = (1, 2, 3, 6)
METHODS = ("pixelnerf", "nearest_view", "mean_colour")


@dataclass
class Settings:
    categories: tuple[str, ...] = ("snowman", "table", "tower", "mushroom", "rocket")
    train_seeds: int = 40
    eval_seeds: int = 4
    frames: int = 24
    image_size: int = 64
    render_size: int = 32
    steps: int = 4000
    max_train_seconds: float = 270.0
    budget_seconds: float = 450.0  # whole run; training stops early to leave time for evaluation
    batch: int = 8
    targets: int = 4
    max_inputs: int = 4
    eval_targets: int = 8
    eval_every: int = 250
    masked: bool = False  # True: object on black, as the SparseFusion CO3D protocol (docs/protocol.md)
    lr: float = 5e-4
    seed: int = 0
    model: dict = field(
        default_factory=lambda: {
            "map_channels": 0,
            "encoder_blocks": [2, 2, 2],
            "encoder_width": 64,
            "encoder_channels": 64,
            "num_samples": 32,
            "hidden_channels": 128,
            "mlp_layers": 3,
            "pe_freqs": 6,
            "compositing": "alpha",
            "chunk_size": 1 << 17,
            "gradient_checkpointing": False,
            "rgb_mode": "blend",
            "background_samples": 16,
        }
    )


def quick_settings() -> Settings:
    return Settings(
        categories=("snowman", "table"),
        train_seeds=2,
        eval_seeds=1,
        frames=8,
        image_size=32,
        render_size=16,
        steps=40,
        max_train_seconds=120.0,
        batch=2,
        targets=2,
        eval_targets=2,
        eval_every=20,
        lr=2e-3,
        model={
            "map_channels": 0,
            "encoder_blocks": [1, 1],
            "encoder_width": 16,
            "encoder_channels": 16,
            "num_samples": 8,
            "hidden_channels": 32,
            "mlp_layers": 2,
            "pe_freqs": 4,
            "compositing": "alpha",
            "chunk_size": 4096,
            "gradient_checkpointing": False,
            "rgb_mode": "blend",
            "background_samples": 4,
        },
    )


# ---------------------------------------------------------------------------------- data
def render_scenes(categories, seeds, settings: Settings, device: torch.device, desc: str) -> list[Views]:
    """One hand-held capture per (category, seed), rendered on ``device`` and kept there (float32 cameras)."""
    from nvs.data.synthetic import capture_cameras, make_scene, object_orbit_views

    scenes = []
    pairs = [(c, s) for s in seeds for c in categories]
    for category, seed in tqdm(pairs, desc=desc, file=sys.stdout):
        size = settings.image_size
        cams = capture_cameras(make_scene(category, seed), settings.frames, size, size, seed).to(device)
        views = object_orbit_views(category, seed, cams)
        images = views.images.to(device, torch.float32).clamp(0, 1)
        if settings.masked:
            images = images * views.masks.to(device, torch.float32)
        scenes.append(
            Views(images=images, cameras=views.cameras.to(device, torch.float32), scene=views.scene, category=category)
        )
    return scenes


def make_inputs(
    scenes: list[Views], inputs: list[list[int]], targets: list[list[int]], grid: int
) -> ConditioningInputs:
    """Stack per-scene input/target frame indices (same counts across scenes) into one batch."""
    images = torch.stack([s.images[i] for s, i in zip(scenes, inputs)])
    tgt = torch.stack([s.images[i] for s, i in zip(scenes, targets)])
    cin = Cameras.cat([s.cameras[i] for s, i in zip(scenes, inputs)])
    cout = Cameras.cat([s.cameras[i] for s, i in zip(scenes, targets)])
    return ConditioningInputs(images, cin, cout, (grid, grid), target_images=tgt)


def downsample(images: Tensor, grid: int) -> Tensor:
    """[..., 3, H, W] -> [..., 3, grid, grid] by area averaging."""
    lead = images.shape[:-3]
    return F.interpolate(images.flatten(0, -4), size=(grid, grid), mode="area").reshape(*lead, 3, grid, grid)


def baselines(scene: Views, inputs: list[int], targets: list[int], grid: int) -> dict[str, Tensor]:
    """nearest_view: the input whose camera centre is nearest each target's, copied; mean_colour:
    the inputs' mean RGB everywhere. Both [T, 3, grid, grid]."""
    centres = scene.cameras.centers
    dist = torch.cdist(centres[targets], centres[inputs])  # [T, V]
    nearest = [inputs[j] for j in dist.argmin(1).tolist()]
    mean = scene.images[inputs].mean((0, 2, 3))  # [3]
    return {
        "nearest_view": downsample(scene.images[nearest], grid),
        "mean_colour": mean[None, :, None, None].expand(len(targets), 3, grid, grid),
    }


def image_scores(pred: Tensor, gt: Tensor) -> tuple[list[float], list[float]]:
    """PSNR and SSIM (scikit-image defaults, data range 1) of [T, 3, h, w] pairs."""
    from skimage.metrics import peak_signal_noise_ratio, structural_similarity

    p = pred.detach().float().clamp(0, 1).permute(0, 2, 3, 1).cpu().numpy().astype(np.float64)
    g = gt.detach().float().permute(0, 2, 3, 1).cpu().numpy().astype(np.float64)
    psnr = [float(peak_signal_noise_ratio(a, b, data_range=1.0)) for a, b in zip(g, p)]
    ssim = [float(structural_similarity(a, b, data_range=1.0, channel_axis=-1)) for a, b in zip(g, p)]
    return psnr, ssim


def eval_split(scene_index: int, frames: int, num_targets: int) -> tuple[list[int], list[int]]:
    perm = torch.randperm(frames, generator=torch.Generator().manual_seed(scene_index)).tolist()
    return perm[: max(EVAL_VIEWS)], perm[max(EVAL_VIEWS) : max(EVAL_VIEWS) + num_targets]


@torch.no_grad()
def evaluate(
    model: PixelNeRFConditioner,
    scenes: list[Views],
    settings: Settings,
    view_counts=EVAL_VIEWS,
    keep_samples: bool = False,
) -> tuple[dict, list]:
    """{V: {method: {"psnr", "ssim"}}} averaged over scenes (each scene's mean over its targets)."""
    was_training = model.training
    model.eval()
    grid = settings.render_size
    per: dict[int, dict[str, dict[str, list[float]]]] = {}
    samples = []
    for index, scene in enumerate(scenes):
        order, targets = eval_split(index, settings.frames, settings.eval_targets)
        for v in view_counts:
            inputs = order[:v]
            out = model(make_inputs([scene], [inputs], [targets], grid))
            gt = downsample(scene.images[targets], grid)
            preds = {"pixelnerf": out.extras["rgb"][0], **baselines(scene, inputs, targets, grid)}
            for method, pred in preds.items():
                psnr, ssim = image_scores(pred, gt)
                slot = per.setdefault(v, {}).setdefault(method, {"psnr": [], "ssim": []})
                slot["psnr"].append(float(np.mean(psnr)))
                slot["ssim"].append(float(np.mean(ssim)))
            if keep_samples and v == 3 and len(samples) < 4:
                samples.append({"gt": gt[0].cpu(), **{m: p[0].float().cpu() for m, p in preds.items()}})
    model.train(was_training)
    result = {
        v: {m: {k: float(np.mean(x)) for k, x in d.items()} for m, d in methods.items()} for v, methods in per.items()
    }
    return result, samples


# ------------------------------------------------------------------------------ training
def cosine_lr(peak: float, step: int, steps: int, seconds: float, max_seconds: float, floor: float = 0.05) -> float:
    """Cosine decay from ``peak`` to ``floor * peak`` over whichever budget runs out first, the
    steps or the seconds, so that a run stopped by its time limit still ends at the low rate."""
    progress = min(1.0, max(step / max(steps, 1), seconds / max(max_seconds, 1e-9)))
    return peak * (floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * progress)))


def train(
    model: PixelNeRFConditioner,
    train_scenes: list[Views],
    eval_scenes: list[Views],
    settings: Settings,
    max_seconds: float | None = None,
) -> dict:
    """Adam on losses["pixelnerf_rgb"] for ``settings.steps`` steps or ``max_seconds`` (default
    ``settings.max_train_seconds``), the rate on :func:`cosine_lr`; returns the curve (step, loss,
    lr) and periodic held-out PSNR at 3 views."""
    max_seconds = settings.max_train_seconds if max_seconds is None else max_seconds
    rng = random.Random(settings.seed)
    opt = torch.optim.Adam(model.parameters(), lr=settings.lr)
    curve = {"step": [], "loss": [], "eval_step": [], "eval_psnr_3_views": [], "lr": []}
    model.train()
    start = time.perf_counter()
    bar = tqdm(range(1, settings.steps + 1), desc="train", file=sys.stdout)
    for step in bar:
        picked = rng.sample(range(len(train_scenes)), min(settings.batch, len(train_scenes)))
        v = rng.randint(1, min(settings.max_inputs, settings.frames - settings.targets))
        inputs, targets = [], []
        for _ in picked:
            frames = rng.sample(range(settings.frames), v + settings.targets)
            inputs.append(frames[:v])
            targets.append(frames[v:])
        batch = make_inputs([train_scenes[i] for i in picked], inputs, targets, settings.render_size)
        lr = cosine_lr(settings.lr, step - 1, settings.steps, time.perf_counter() - start, max_seconds)
        for group in opt.param_groups:
            group["lr"] = lr
        loss = model(batch).losses["pixelnerf_rgb"]
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        curve["step"].append(step)
        curve["lr"].append(lr)
        curve["loss"].append(loss.item())
        bar.set_postfix(loss=f"{curve['loss'][-1]:.4f}")
        out_of_time = time.perf_counter() - start > max_seconds
        if step % settings.eval_every == 0 or step == settings.steps or out_of_time:
            metrics, _ = evaluate(model, eval_scenes, settings, view_counts=(3,))
            curve["eval_step"].append(step)
            curve["eval_psnr_3_views"].append(metrics[3]["pixelnerf"]["psnr"])
        if out_of_time:
            print(f"stopping after {step} steps: the training time limit ({max_seconds:.0f} s) is reached")
            break
    curve["train_seconds"] = time.perf_counter() - start
    return curve


def run(settings: Settings, out_dir: Path, device: torch.device) -> dict:
    torch.manual_seed(settings.seed)
    t0 = time.perf_counter()
    train_scenes = render_scenes(settings.categories, range(settings.train_seeds), settings, device, "render train")
    eval_seeds = range(10_000, 10_000 + settings.eval_seeds)
    eval_scenes = render_scenes(settings.categories, eval_seeds, settings, device, "render held-out")
    render_seconds = time.perf_counter() - t0
    model = PixelNeRFConditioner(**settings.model).to(device)
    left = settings.budget_seconds - (time.perf_counter() - t0) - 60.0  # keep a minute for the evaluation
    curve = train(
        model, train_scenes, eval_scenes, settings, max_seconds=max(10.0, min(settings.max_train_seconds, left))
    )
    metrics, samples = evaluate(model, eval_scenes, settings, keep_samples=True)
    beats = {
        v: all(metrics[v]["pixelnerf"][k] > metrics[v][b][k] for b in METHODS[1:] for k in ("psnr", "ssim"))
        for v in metrics
    }
    result = {
        "settings": asdict(settings),
        "device": str(device),
        "device_name": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
        "render_seconds": render_seconds,
        "train_seconds": curve["train_seconds"],
        "steps_done": len(curve["step"]),
        "initial_loss": curve["loss"][0],
        "final_loss_mean_last_10pct": float(np.mean(curve["loss"][-max(1, len(curve["loss"]) // 10) :])),
        "metrics": {str(v): m for v, m in metrics.items()},
        "pixelnerf_beats_both_baselines": {str(v): b for v, b in beats.items()},
        "curve": curve,
    }
    out_dir.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(out_dir / "pixelnerf_learning.json", json.dumps(result, indent=1).encode())
    table = markdown_table(metrics, METHODS)
    atomic_write_bytes(out_dir / "pixelnerf_learning.md", table.encode())
    plot_curve(curve, metrics, METHODS, out_dir / "learning_curve.png")
    plot_samples(samples, METHODS, out_dir / "samples.png")
    print(table)
    print(
        f"render {render_seconds:.1f} s, train {curve['train_seconds']:.1f} s ({len(curve['step'])} steps), "
        f"loss {result['initial_loss']:.4f} -> {result['final_loss_mean_last_10pct']:.4f}; "
        f"beats both baselines: {result['pixelnerf_beats_both_baselines']}"
    )
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.pixelnerf_learning", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--out", type=Path, required=True, help="output folder")
    parser.add_argument("--quick", action="store_true", help="tiny CPU version (seconds)")
    parser.add_argument("--device", default=None, help="default: cuda if available, else cpu (always cpu with --quick)")
    parser.add_argument("--steps", type=int, default=None)
    parser.add_argument("--max-train-seconds", type=float, default=None)
    parser.add_argument("--budget-seconds", type=float, default=None, help="whole run (default 450)")
    parser.add_argument(
        "--masked",
        action="store_true",
        help="object on black (image x mask) for inputs and targets, as the SparseFusion protocol",
    )
    parser.add_argument("--train-seeds", type=int, default=None, help="training scenes per category (default 40)")
    parser.add_argument("--rgb-loss", choices=("l2", "l1"), default=None, help="photometric loss (default l2)")
    parser.add_argument(
        "--rgb-mode",
        choices=("decode", "blend"),
        default=None,
        help="RGB branch: blend the input colours (default) or decode them (V3D)",
    )
    parser.add_argument(
        "--background-samples",
        type=int,
        default=None,
        help="samples per ray beyond the box (default 16, --quick 4; V3D: 0)",
    )
    args = parser.parse_args(argv)
    settings = quick_settings() if args.quick else Settings()
    for name in ("steps", "max_train_seconds", "budget_seconds", "train_seeds"):
        if getattr(args, name) is not None:
            setattr(settings, name, getattr(args, name))
    settings.masked = args.masked
    for flag, key in (("rgb_loss", "rgb_loss"), ("rgb_mode", "rgb_mode"), ("background_samples", "background_samples")):
        if getattr(args, flag) is not None:
            settings.model = {**settings.model, key: getattr(args, flag)}
    device = torch.device("cpu" if args.quick else (args.device or ("cuda" if torch.cuda.is_available() else "cpu")))
    if device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
    run(settings, args.out, device)
    return 0


if __name__ == "__main__":
    sys.exit(main())
