"""Time and peak memory of the PixelNeRF conditioner vs input views and samples per ray.

Default (GPU): V3D's sizes (ResNet-34 encoder, 128 map channels) on 25 targets x 72 x 128 rays
(576 x 1024 images, latent grid / 8), views (1, 2, 3, 6) x samples (16, 32, 64, 128), in two
modes: ``inference`` (no grad) and ``train`` (grad, per-chunk checkpointing, backward of the
maps and the RGB loss). Peak memory is ``torch.cuda.max_memory_allocated`` above what the model
and inputs already hold; a linear fit against views x samples (R^2) shows the growth is linear.
On CPU (``--quick``) peak memory is not measured (reported as null); the timings still are.

    python -m benchmarks.pixelnerf_memory --out runs/pixelnerf_memory          # GPU
    python -m benchmarks.pixelnerf_memory --out /tmp/pnm --quick               # CPU, tiny
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from camera.cameras import Cameras, look_at
from camera.plot import save_figure
from conditioning.base import ConditioningInputs
from conditioning.pixelnerf import PixelNeRFConditioner

FULL = {
    "targets": 25,
    "image": (576, 1024),
    "latent": (72, 128),
    "views": (1, 2, 3, 6),
    "samples": (16, 32, 64, 128),
    "model": {
        "map_channels": 128,
        "encoder_blocks": [3, 4, 6, 3],
        "encoder_width": 64,
        "encoder_channels": 64,
        "hidden_channels": 128,
        "chunk_size": 8192,
    },
    "repeats": 3,
}
QUICK = {
    "targets": 2,
    "image": (72, 128),
    "latent": (9, 16),
    "views": (1, 2),
    "samples": (4, 8),
    "model": {
        "map_channels": 8,
        "encoder_blocks": [1, 1],
        "encoder_width": 8,
        "encoder_channels": 8,
        "hidden_channels": 16,
        "chunk_size": 256,
    },
    "repeats": 1,
}


def orbit_cameras(n: int, height: int, width: int, device: torch.device, radius: float = 3.0) -> Cameras:
    azimuth = torch.linspace(0, 2 * math.pi, n + 1, device=device)[:-1] + 0.3
    eye = torch.stack([radius * azimuth.cos(), radius * azimuth.sin(), torch.full_like(azimuth, 1.0)], -1)
    c2w = look_at(eye, torch.zeros(3, device=device), torch.tensor([0.0, 0.0, 1.0], device=device))
    return Cameras.from_fov(c2w, 50.0, height, width)


def measure(
    model: PixelNeRFConditioner, inputs: ConditioningInputs, mode: str, repeats: int
) -> tuple[float, float | None]:
    """Median seconds per call and peak extra memory in GiB (None on CPU)."""
    cuda = inputs.input_images.is_cuda
    model.train(mode == "train")
    times = []
    peak = None
    for r in range(repeats + 1):  # the first call warms up
        if cuda:
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
            base = torch.cuda.memory_allocated()
        start = time.perf_counter()
        if mode == "train":
            out = model(inputs)
            loss = out.maps.float().square().mean() + out.losses["pixelnerf_rgb"]
            loss.backward()
            model.zero_grad(set_to_none=True)
        else:
            with torch.no_grad():
                out = model(inputs)
        if cuda:
            torch.cuda.synchronize()
            peak = (torch.cuda.max_memory_allocated() - base) / 2**30
        if r:
            times.append(time.perf_counter() - start)
        del out
    return float(np.median(times)), peak


def linear_fit_r2(x: list[float], y: list[float]) -> float | None:
    """R^2 of the least-squares line y = a x + b (None without enough distinct points)."""
    if len(set(x)) < 2 or any(v is None for v in y):
        return None
    a, b = np.polyfit(x, y, 1)
    pred = np.polyval([a, b], x)
    ss_res = float(np.sum((np.asarray(y) - pred) ** 2))
    ss_tot = float(np.sum((np.asarray(y) - np.mean(y)) ** 2))
    return 1.0 - ss_res / ss_tot if ss_tot > 0 else 1.0


def run(sizes: dict, device: torch.device, out_dir: Path) -> dict:
    torch.manual_seed(0)
    h, w = sizes["image"]
    rows = []
    combos = [(m, v, s) for m in ("inference", "train") for v in sizes["views"] for s in sizes["samples"]]
    model = PixelNeRFConditioner(num_samples=max(sizes["samples"]), **sizes["model"]).to(device)
    targets = orbit_cameras(sizes["targets"], h, w, device, radius=2.5)
    for mode, views, samples in tqdm(combos, desc="configs", file=sys.stdout):
        model.num_samples = samples
        inputs = ConditioningInputs(
            torch.rand(1, views, 3, h, w, device=device),
            orbit_cameras(views, h, w, device),
            targets,
            sizes["latent"],
            target_images=torch.rand(1, sizes["targets"], 3, h, w, device=device),
        )
        seconds, peak = measure(model, inputs, mode, sizes["repeats"])
        rows.append({"mode": mode, "views": views, "samples": samples, "seconds": seconds, "peak_gib": peak})
        del inputs
    fits = {}
    for mode in ("inference", "train"):
        sel = [r for r in rows if r["mode"] == mode]
        x = [r["views"] * r["samples"] for r in sel]
        fits[mode] = {
            "seconds_r2": linear_fit_r2(x, [r["seconds"] for r in sel]),
            "peak_gib_r2": linear_fit_r2(x, [r["peak_gib"] for r in sel]),
        }
    result = {
        "device": str(device),
        "device_name": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
        "targets": sizes["targets"],
        "latent": list(sizes["latent"]),
        "image": list(sizes["image"]),
        "rays": sizes["targets"] * sizes["latent"][0] * sizes["latent"][1],
        "model": sizes["model"],
        "rows": rows,
        "linear_fit_vs_views_x_samples": fits,
    }
    out_dir.mkdir(parents=True, exist_ok=True)
    tmp = out_dir / f".pixelnerf_memory.json.tmp{os.getpid()}"
    tmp.write_text(json.dumps(result, indent=1))
    os.replace(tmp, out_dir / "pixelnerf_memory.json")
    print(format_table(result))
    plot(result, out_dir / "pixelnerf_memory.png")
    return result


def format_table(result: dict) -> str:
    lines = [
        f"{result['targets']} targets x {result['latent'][0]}x{result['latent'][1]} rays = {result['rays']} rays "
        f"on {result['device_name']}",
        f"{'mode':<10} {'views':>5} {'samples':>7} {'seconds':>9} {'peak GiB':>9}",
    ]
    for r in result["rows"]:
        peak = "n/a" if r["peak_gib"] is None else f"{r['peak_gib']:.2f}"
        lines.append(f"{r['mode']:<10} {r['views']:>5} {r['samples']:>7} {r['seconds']:>9.3f} {peak:>9}")
    for mode, fit in result["linear_fit_vs_views_x_samples"].items():
        lines.append(
            f"{mode}: linear fit vs views x samples, R^2 seconds {fit['seconds_r2']}, peak {fit['peak_gib_r2']}"
        )
    return "\n".join(lines)


def plot(result: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    keys = ["seconds"] + (["peak_gib"] if result["rows"][0]["peak_gib"] is not None else [])
    fig, axes = plt.subplots(len(keys), 2, figsize=(10, 3.5 * len(keys)), squeeze=False)
    for i, key in enumerate(keys):
        for j, mode in enumerate(("inference", "train")):
            ax = axes[i, j]
            for views in sorted({r["views"] for r in result["rows"]}):
                sel = [r for r in result["rows"] if r["mode"] == mode and r["views"] == views]
                ax.plot([r["samples"] for r in sel], [r[key] for r in sel], "o-", label=f"{views} views")
            ax.set(xlabel="samples per ray", ylabel=key, title=f"{mode}: {result['rays']} rays")
            ax.legend()
    fig.tight_layout()
    save_figure(fig, path, close=True, dpi=110)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.pixelnerf_memory", description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, required=True, help="output folder")
    parser.add_argument("--quick", action="store_true", help="tiny CPU version")
    parser.add_argument("--chunk-size", type=int, default=None, help="rays per chunk (default: 8192)")
    args = parser.parse_args(argv)
    sizes = dict(QUICK if args.quick else FULL)
    if args.chunk_size is not None:
        sizes["model"] = {**sizes["model"], "chunk_size": args.chunk_size}
    if args.quick:
        device = torch.device("cpu")
    elif torch.cuda.is_available():
        device = torch.device("cuda")
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
    else:
        print("pixelnerf_memory: the full benchmark needs a CUDA GPU; run with --quick on CPU", file=sys.stderr)
        return 2
    run(sizes, device, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
