"""Activation memory of the video U-Net's training forward under each gradient-checkpointing
granularity: none, diffusers' per-layer checkpointing (``layers``: ResNets and spatial transformer
layers; the temporal layers, time mixers and projections keep their activations) and whole-block
checkpointing (``blocks``, :meth:`nvs.models.unet.PathUNet.enable_block_checkpointing`).

    python -m benchmarks.checkpoint_memory --out DIR [--preset svd] [--latent 16,24] [--frames 14] [--batch 1]

For each latent size: the bytes the forward keeps for the backward (distinct storages packed by
autograd's saved-tensor hooks, plus the inputs that checkpointed regions keep for their
recomputation; parameters left out), bf16 autocast as in training, random weights and inputs.
The count does not depend on the device, so it runs on a CPU; it grows with the latent pixels and
the frames: a fit of constant + slope x latent pixels over the sizes extrapolates it to
``--extrapolate`` (72: 576² images). On CUDA it also reports the peak allocated memory and
the seconds of one forward + backward. Prints a table, writes ``checkpoint_memory.json``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import time
from pathlib import Path

import torch
import torch.utils.checkpoint

MODES = ("none", "layers", "blocks")


@contextlib.contextmanager
def counting_saved_bytes(exclude: set[int]):
    """Yields a dict whose ``bytes`` is, on exit, the distinct storage bytes saved for backward."""
    seen: dict[int, int] = {}

    def note(t: torch.Tensor) -> None:
        storage = t.untyped_storage()
        if storage.data_ptr() not in exclude:
            seen[storage.data_ptr()] = storage.nbytes()

    def pack(t: torch.Tensor) -> torch.Tensor:
        note(t)
        return t

    real = torch.utils.checkpoint.checkpoint

    def checkpoint(fn, *args, **kwargs):  # its inputs stay alive for the recomputation
        for value in (*args, *kwargs.values()):
            if isinstance(value, torch.Tensor):
                note(value)
        return real(fn, *args, **kwargs)

    result: dict[str, int] = {}
    torch.utils.checkpoint.checkpoint = checkpoint
    try:
        with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
            yield result
    finally:
        torch.utils.checkpoint.checkpoint = real
        result["bytes"] = sum(seen.values())


def build_unet(preset: str, frames: int, device: torch.device, mode: str, dtype: torch.dtype = torch.float32):
    from nvs.models.presets import preset_config, unet_arguments
    from nvs.models.unet import PathUNet

    torch.manual_seed(0)
    args = unet_arguments(preset_config(preset)) | {"num_frames": frames}
    with torch.device(device):
        unet = PathUNet(**args).to(dtype).train()
    if mode == "layers":
        unet.enable_gradient_checkpointing()
    elif mode == "blocks":
        unet.enable_block_checkpointing()
    return unet


def unet_inputs(unet, batch: int, frames: int, latent: int, device: torch.device) -> tuple:
    g = torch.Generator(device=device).manual_seed(1)
    c = unet.config

    def randn(*shape):
        return torch.randn(*shape, generator=g, device=device)

    return (
        randn(batch, frames, c.in_channels, latent, latent),
        torch.full((batch,), 0.5, device=device),
        randn(batch, 1, c.cross_attention_dim),
        randn(batch, 3),
    )


def measure(unet, inputs: tuple, device: torch.device) -> dict:
    params = {p.untyped_storage().data_ptr() for p in unet.parameters()}
    autocast = torch.autocast(device.type, dtype=torch.bfloat16)
    with counting_saved_bytes(params) as saved, autocast:
        out = unet(*inputs).sample
    row = {"saved_gib": saved["bytes"] / 2**30}
    if device.type == "cuda":
        out.float().square().mean().backward()  # a warm-up step, then the timed one
        unet.zero_grad(set_to_none=True)
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        started = time.perf_counter()
        with autocast:
            out = unet(*inputs).sample
        out.float().square().mean().backward()
        torch.cuda.synchronize()
        row |= {"seconds": time.perf_counter() - started, "peak_gib": torch.cuda.max_memory_allocated() / 2**30}
    return row


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", required=True, type=Path)
    parser.add_argument("--preset", default="svd", help="configs/model preset (default svd)")
    parser.add_argument("--latent", default="16,24", help="comma-separated latent sizes (576² images: 72)")
    parser.add_argument("--frames", type=int, default=14)
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument(
        "--weights",
        choices=("float32", "bfloat16"),
        default="float32",
        help="float32 = training's master weights under bf16 autocast (whose bf16 copies the layers keep); "
        "bfloat16 = half the memory, the same activations (the constant then leaves the copies out)",
    )
    parser.add_argument("--extrapolate", type=int, default=72, help="latent size to extrapolate the fit to")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = parser.parse_args(argv)
    latents = [int(v) for v in args.latent.split(",")]
    if not all(1 <= v <= 256 for v in latents) or not 1 <= args.frames <= 64 or not 1 <= args.batch <= 64:
        parser.error("--latent sizes must be 1 to 256, --frames 1 to 64, --batch 1 to 64")
    device = torch.device(args.device)
    rows = []
    for mode in MODES:
        unet = build_unet(args.preset, args.frames, device, mode, getattr(torch, args.weights))
        for latent in latents:
            row = {"mode": mode, "latent": latent} | measure(
                unet, unet_inputs(unet, args.batch, args.frames, latent, device), device
            )
            rows.append(row)
            print(json.dumps(row), flush=True)
        del unet
    fits = {mode: fit_pixels([r for r in rows if r["mode"] == mode], args.extrapolate) for mode in MODES}
    result = {
        "weights": args.weights,
        "fits": fits,
        "preset": args.preset,
        "frames": args.frames,
        "batch": args.batch,
        "device": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
        "torch": torch.__version__,
        "rows": rows,
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "checkpoint_memory.json").write_text(json.dumps(result, indent=1) + "\n")
    print(f"\n{'mode':8} {'latent':>6} {'saved GiB':>10} {'x none':>7}")
    for r in rows:
        none = next(x for x in rows if x["mode"] == "none" and x["latent"] == r["latent"])
        print(f"{r['mode']:8} {r['latent']:>6} {r['saved_gib']:>10.3f} {r['saved_gib'] / none['saved_gib']:>7.3f}")
    for mode, fit in fits.items():
        if fit is not None:
            print(
                f"{mode}: {fit['constant_gib']:.3f} GiB + {fit['gib_per_latent_pixel'] * 2**10:.3f} MiB per "
                f"latent pixel -> {fit['extrapolated_gib']:.2f} GiB at {args.extrapolate}² (batch {args.batch})"
            )
    return 0


def fit_pixels(rows: list[dict], latent: int) -> dict | None:
    """saved = constant + slope x latent pixels, fitted to the rows (two sizes at least), and its value
    at ``latent``². The constant is what does not grow with the image (under bf16 autocast mostly the
    weights' bf16 copies that the layers keep for their backward)."""
    if len({r["latent"] for r in rows}) < 2:
        return None
    x = torch.tensor([float(r["latent"] ** 2) for r in rows], dtype=torch.float64)
    y = torch.tensor([r["saved_gib"] for r in rows], dtype=torch.float64)
    design = torch.stack([torch.ones_like(x), x], 1)
    constant, slope = torch.linalg.lstsq(design, y[:, None]).solution[:, 0].tolist()
    return {
        "constant_gib": constant,
        "gib_per_latent_pixel": slope,
        "extrapolated_gib": constant + slope * latent**2,
        "at_latent": latent,
    }


if __name__ == "__main__":
    raise SystemExit(main())
