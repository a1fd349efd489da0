"""Time of one sampling step of the full-size model (random weights), next to docs/environment.md §3.

    python -m benchmarks.svd_step --out DIR [--compile] [--frames 14] [--size 576] [--quick]

One step = one guided denoiser call: batch 2 (conditional + unconditional) x 14 frames x 576²
through SVD's 1.52 B-parameter U-Net in bf16 on CUDA. Reports seconds per step (median of
``--repeats`` after warm-up), achieved TFLOP/s (FLOPs counted by torch's FlopCounterMode),
peak GPU memory, the same under ``torch.compile`` with ``--compile``, and the wall time of a
whole ``--generate-steps`` generation (encode, sample, decode). Prints a table and writes
``svd_step.json``. ``--quick``: the tiny preset on CPU at 32², a smoke test.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from pathlib import Path

import torch

REFERENCE = {  # docs/environment.md §3, one H100, 14 frames x 576², B = 2
    "eager": {"seconds_per_step": 0.218, "tflop_per_step": 46.1},
    "compile": {"seconds_per_step": 0.152, "tflop_per_step": 46.1},
}


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def build(preset: str, conditioning: str, size: int, device: torch.device, dtype: torch.dtype):
    from omegaconf import OmegaConf

    from nvs.config import CONFIG_DIR
    from nvs.models import PathNVSModel
    from nvs.models.presets import preset_config

    cfg = preset_config(preset)
    cfg["settings"]["image_size"] = [size, size]
    torch.manual_seed(0)
    with torch.device(device):
        model = PathNVSModel.from_preset(cfg, OmegaConf.load(CONFIG_DIR / "conditioning" / f"{conditioning}.yaml"))
    model = model.to(device=device, dtype=dtype).eval()
    for p in model.parameters():
        p.requires_grad_(False)
    return model


def scene(frames: int, size: int):
    from camera.presets import orbit, spiral
    from camera.views import Views

    cams = orbit(2, radius=2.0, elevation_deg=15.0, height=size, width=size)[:1]
    images = torch.rand(1, 3, size, size, generator=torch.Generator().manual_seed(0))
    return Views(images, cams.to(dtype=torch.float32)), spiral(frames, height=size, width=size).to(dtype=torch.float32)


def time_steps(step, device: torch.device, warmup: int, repeats: int) -> tuple[float, float]:
    """-> (median seconds per step, seconds of the warm-up)."""
    _sync(device)
    start = time.perf_counter()
    for _ in range(warmup):
        step()
    _sync(device)
    warm = time.perf_counter() - start
    times = []
    for _ in range(repeats):
        _sync(device)
        start = time.perf_counter()
        step()
        _sync(device)
        times.append(time.perf_counter() - start)
    return statistics.median(times), warm


def measure(args: argparse.Namespace, device: torch.device, dtype: torch.dtype) -> dict:
    from torch.utils.flop_counter import FlopCounterMode
    from tqdm.auto import tqdm

    from conditioning.base import ConditioningInputs
    from nvs.models import Condition
    from nvs.pipeline import PathNVSPipeline, SamplerSettings

    progress = tqdm(total=4 + bool(args.compile), desc="svd_step")
    model = build(args.preset, args.conditioning, args.size, device, dtype)
    params = sum(p.numel() for p in model.unet.parameters())
    progress.update()
    inputs, path = scene(args.frames, args.size)
    h, w = model.settings.latent_size
    with torch.no_grad():
        cond = model.condition(
            ConditioningInputs(inputs.images[None].to(device), inputs.cameras.to(device), path.to(device), (h, w))
        )
        both = Condition.cat([cond, cond.unconditional()])
        x = torch.randn(2, args.frames, 4, h, w, device=device, dtype=dtype)
        sigma = torch.full((2,), 10.0, device=device)

        def step():
            return model.denoise(x, sigma, both)

        with FlopCounterMode(display=False) as counter:
            step()
        tflop = counter.get_total_flops() / 1e12
        progress.update()
        if device.type == "cuda":
            torch.cuda.reset_peak_memory_stats()
        seconds, warm = time_steps(step, device, args.warmup, args.repeats)
        rows = [
            {
                "mode": "eager",
                "seconds_per_step": seconds,
                "warmup_seconds": warm,
                "tflop_per_step": tflop,
                "tflops": tflop / seconds,
                "peak_gib": _peak_gib(device),
            }
        ]
        progress.update()
        generate_seconds = None
        if args.generate_steps > 0:
            pipe = PathNVSPipeline(model, SamplerSettings(steps=args.generate_steps))
            _sync(device)
            start = time.perf_counter()
            pipe.generate(inputs, path, guidance=3.5, seed=0)
            _sync(device)
            generate_seconds = time.perf_counter() - start
        progress.update()
        if args.compile:
            model.unet = torch.compile(model.unet)
            if device.type == "cuda":
                torch.cuda.reset_peak_memory_stats()
            seconds, warm = time_steps(step, device, args.warmup, args.repeats)
            rows.append(
                {
                    "mode": "compile",
                    "seconds_per_step": seconds,
                    "warmup_seconds": warm,
                    "tflop_per_step": tflop,
                    "tflops": tflop / seconds,
                    "peak_gib": _peak_gib(device),
                }
            )
            progress.update()
    progress.close()
    return {
        "unet_parameters": params,
        "rows": rows,
        "generate_steps": args.generate_steps,
        "generate_seconds": generate_seconds,
    }


def _peak_gib(device: torch.device) -> float | None:
    return torch.cuda.max_memory_allocated() / 2**30 if device.type == "cuda" else None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True, type=Path)
    parser.add_argument("--quick", action="store_true", help="tiny preset on CPU at 32²: a smoke test")
    parser.add_argument("--preset", default="svd")
    parser.add_argument("--conditioning", default="none", help="configs/conditioning/<name>.yaml (none = plain SVD)")
    parser.add_argument("--frames", type=int, default=14)
    parser.add_argument("--size", type=int, default=576)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--compile", action="store_true", help="also time the U-Net under torch.compile")
    parser.add_argument("--generate-steps", type=int, default=25, help="whole generation with N steps (0: skip)")
    args = parser.parse_args(argv)
    if args.quick:
        args.preset, args.frames, args.size, args.warmup, args.repeats, args.generate_steps = "tiny", 4, 32, 1, 1, 1
        device, dtype = torch.device("cpu"), torch.float32
    else:
        if not torch.cuda.is_available():
            parser.error("the full-size benchmark needs a CUDA GPU; use --quick on CPU")
        device, dtype = torch.device("cuda"), torch.bfloat16
    result = measure(args, device, dtype)
    name = torch.cuda.get_device_name() if device.type == "cuda" else f"CPU, {torch.get_num_threads()} threads"
    result.update(
        device=name,
        torch=torch.__version__,
        preset=args.preset,
        frames=args.frames,
        size=args.size,
        batch=2,
        dtype=str(dtype).removeprefix("torch."),
        reference=REFERENCE,
    )
    print(
        f"device: {name}; U-Net {result['unet_parameters'] / 1e9:.3f} B parameters; "
        f"B=2 x {args.frames} frames x {args.size}²"
    )
    print(f"{'mode':<8} {'s/step':>8} {'TFLOP':>7} {'TFLOP/s':>8} {'peak GiB':>9} {'ref s/step':>10}")
    for r in result["rows"]:
        ref = REFERENCE[r["mode"]]["seconds_per_step"] if args.preset == "svd" and args.size == 576 else None
        peak = f"{r['peak_gib']:.1f}" if r["peak_gib"] is not None else "-"
        print(
            f"{r['mode']:<8} {r['seconds_per_step']:>8.4f} {r['tflop_per_step']:>7.2f} {r['tflops']:>8.1f} "
            f"{peak:>9} {ref if ref is not None else '-':>10}"
        )
    if result["generate_seconds"] is not None:
        print(f"whole generation, {args.generate_steps} steps: {result['generate_seconds']:.2f} s")
    args.out.mkdir(parents=True, exist_ok=True)
    tmp = args.out / "svd_step.json.tmp"
    tmp.write_text(json.dumps(result, indent=2))
    os.replace(tmp, args.out / "svd_step.json")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
