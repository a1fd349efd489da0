"""Time and memory of one training step (the whole ``Trainer.train_step``: VAE encode, conditioner,
U-Net forward + backward, clipping, fused AdamW, EMA) at a model preset, next to DESIGN.md §5.

    python -m benchmarks.train_step --out DIR [--preset small] [--batch 4] [--gradient-checkpointing] [--quick]

Data: random images on an orbit of cameras (compute does not depend on content), V = 1..4
inputs as in training. bf16 autocast on CUDA. Reports the median seconds per step after
warm-up, clips per second, and peak GPU memory; prints a table and writes ``train_step.json``.
``--quick``: the tiny preset on CPU at 32², a smoke test.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from pathlib import Path

import torch

REFERENCE = {"svd_14x576_bs1": 0.45, "svd_14x576_bs1_checkpointing": 0.60}  # DESIGN.md §5, s/step on one H100


def orbit_scene(frames: int, size: int, seed: int):
    from camera.cameras import Cameras, look_at
    from camera.views import Views

    angles = torch.linspace(0, 2 * torch.pi, frames + 1)[:frames]
    eye = torch.stack([2 * torch.cos(angles), 2 * torch.sin(angles), torch.full_like(angles, 0.5)], -1)
    cams = Cameras.from_fov(look_at(eye, torch.zeros(3), torch.tensor([0.0, 0.0, 1.0])), 50.0, size, size)
    return Views(torch.rand(frames, 3, size, size, generator=torch.Generator().manual_seed(seed)), cams)


def measure(args: argparse.Namespace) -> dict:
    from omegaconf import OmegaConf
    from tqdm.auto import tqdm

    from nvs.config import CONFIG_DIR
    from nvs.data.clips import MemoryScenes
    from nvs.models import PathNVSModel
    from nvs.models.presets import preset_config
    from nvs.train.settings import TrainerSettings
    from nvs.train.trainer import Trainer

    device = torch.device("cuda" if torch.cuda.is_available() and not args.quick else "cpu")
    cfg = preset_config(args.preset)
    if args.size:
        cfg["settings"]["image_size"] = [args.size, args.size]
    torch.manual_seed(0)
    model = PathNVSModel.from_preset(cfg, OmegaConf.load(CONFIG_DIR / "conditioning" / f"{args.conditioning}.yaml"))
    size, frames = model.settings.image_size[0], model.settings.num_frames
    scenes = MemoryScenes([orbit_scene(2 * frames, size, i) for i in range(4)])
    with tempfile.TemporaryDirectory() as out:
        settings = TrainerSettings(
            out=out,
            steps=args.warmup + args.repeats,
            batch_size=args.batch,
            warmup_steps=0,
            gradient_checkpointing=args.gradient_checkpointing,
            checkpoint_every=0,
            sample_every=0,
            export=False,
            resume=None,
            progress=False,
            device=device.type,
        )
        trainer = Trainer(model, scenes, settings, objective_options={"aux_weights": {"pixelnerf_rgb": 1.0}})
        params = sum(p.numel() for p in model.unet.parameters())
        trained = sum(p.numel() for p in trainer.named_trained().values())
        times = []
        for i in tqdm(range(args.warmup + args.repeats), desc="train_step"):
            batch = trainer.next_batch()
            if device.type == "cuda":
                torch.cuda.synchronize()
                if i == args.warmup:
                    torch.cuda.reset_peak_memory_stats()
            start = time.perf_counter()
            trainer.train_step(batch)
            if device.type == "cuda":
                torch.cuda.synchronize()
            if i >= args.warmup:
                times.append(time.perf_counter() - start)
    seconds = statistics.median(times)
    return {
        "preset": args.preset,
        "device": torch.cuda.get_device_name() if device.type == "cuda" else "cpu",
        "image_size": size,
        "num_frames": frames,
        "batch": args.batch,
        "gradient_checkpointing": args.gradient_checkpointing,
        "unet_parameters": params,
        "trained_parameters": trained,
        "seconds_per_step": seconds,
        "clips_per_second": args.batch / seconds,
        "peak_gib": torch.cuda.max_memory_allocated() / 2**30 if device.type == "cuda" else None,
        "reference_seconds_per_step": REFERENCE,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", required=True, help="folder for train_step.json")
    parser.add_argument("--preset", default="small", help="configs/model/<preset>.yaml")
    parser.add_argument("--conditioning", default="plucker", help="configs/conditioning/<name>.yaml")
    parser.add_argument("--size", type=int, default=None, help="image size (default: the preset's)")
    parser.add_argument("--batch", type=int, default=4, help="clips per step")
    parser.add_argument("--gradient-checkpointing", action="store_true")
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--quick", action="store_true", help="tiny preset on CPU at 32², 1 + 2 steps")
    args = parser.parse_args(argv)
    if args.quick:
        args.preset, args.size, args.batch, args.warmup, args.repeats = "tiny", 32, 1, 1, 2
    result = measure(args)
    print(
        f"{'preset':<8}{'device':<28}{'size':>6}{'F':>4}{'B':>4}{'ckpt':>6}{'s/step':>9}{'clips/s':>9}{'peak GiB':>10}"
    )
    peak = f"{result['peak_gib']:.1f}" if result["peak_gib"] is not None else "-"
    print(
        f"{result['preset']:<8}{result['device'][:27]:<28}{result['image_size']:>6}{result['num_frames']:>4}"
        f"{result['batch']:>4}{str(result['gradient_checkpointing'])[0]:>6}{result['seconds_per_step']:>9.3f}"
        f"{result['clips_per_second']:>9.2f}{peak:>10}"
    )
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    tmp = out / "train_step.json.tmp"
    tmp.write_text(json.dumps(result, indent=2))
    os.replace(tmp, out / "train_step.json")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
