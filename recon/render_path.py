"""Render fitted Gaussians along any camera path: frames, PNGs and a video.

The video is an mp4 through imageio when imageio-ffmpeg is importable, else an animated GIF (a
note is printed and returned). Frames are written one PNG each, atomically.
"""

from __future__ import annotations

import io
import os
from pathlib import Path

import numpy as np
import torch
from torch import Tensor
from tqdm import tqdm

from camera.cameras import Cameras
from camera.io import atomic_write_bytes
from recon.gaussians import Gaussians
from recon.rasterize import Backend, rasterize


def render_gaussians(
    gaussians: Gaussians,
    cameras: Cameras,
    background: Tensor | tuple = (0.0, 0.0, 0.0),
    device: str | torch.device = "cpu",
    backend: Backend = "auto",
    render_mode: str = "RGB",
    views_per_batch: int = 4,
    progress: bool = False,
) -> tuple[Tensor, Tensor]:
    """-> renders [F, D, H, W] (D = 3 for RGB, 4 with depth), alpha [F, 1, H, W], on the CPU, no grad."""
    g = gaussians.to(device)
    act = g.activated()
    bg = torch.as_tensor(background, dtype=torch.float32, device=device)
    if "D" in render_mode:  # gsplat wants one background value per rendered channel
        bg = torch.cat([bg, bg.new_zeros(1)]) if render_mode.startswith("RGB") else bg.new_zeros(1)
    w2c, K = cameras.w2c.float().to(device), cameras.K.float().to(device)
    frames, alphas = [], []
    starts = range(0, len(cameras), views_per_batch)
    with torch.no_grad():
        for s in tqdm(starts, desc="rendering", disable=not progress, leave=False):
            c = slice(s, s + views_per_batch)
            n = w2c[c].shape[0]
            img, alpha, _ = rasterize(
                act["means"],
                act["quats"],
                act["scales"],
                act["opacities"],
                act["colors"],
                w2c[c],
                K[c],
                cameras.width,
                cameras.height,
                backend=backend,
                sh_degree=g.sh_degree,
                backgrounds=bg.expand(n, -1),
                render_mode=render_mode,
            )
            frames.append(img.permute(0, 3, 1, 2).cpu())
            alphas.append(alpha.permute(0, 3, 1, 2).cpu())
    return torch.cat(frames), torch.cat(alphas)


def _png_bytes(frame: np.ndarray) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(frame).save(buf, format="PNG")
    return buf.getvalue()


def to_uint8(frames: Tensor) -> np.ndarray:
    """[F, 3, H, W] in [0, 1] -> [F, H, W, 3] uint8."""
    return (frames.clamp(0, 1) * 255).round().byte().permute(0, 2, 3, 1).numpy()


def write_frames(frames: Tensor, out_dir: str | os.PathLike, fps: int = 12, stem: str = "render") -> dict[str, str]:
    """frames [F, 3, H, W] -> ``out_dir/frames/NNNNN.png`` and ``out_dir/<stem>.mp4`` (or ``.gif``).

    Returns {"frames": folder, "video": path, "note": why no mp4 (empty when mp4)}.
    """
    import imageio.v3 as iio

    out = Path(out_dir)
    (out / "frames").mkdir(parents=True, exist_ok=True)
    data = to_uint8(frames)
    for i, frame in enumerate(data):
        atomic_write_bytes(out / "frames" / f"{i:05d}.png", _png_bytes(frame))
    note = ""
    try:
        import imageio_ffmpeg  # noqa: F401

        video = out / f"{stem}.mp4"
        even = data[:, : data.shape[1] // 2 * 2, : data.shape[2] // 2 * 2]
        encoded = iio.imwrite("<bytes>", even, extension=".mp4", fps=fps, codec="libx264")
    except ImportError:
        video = out / f"{stem}.gif"
        note = "imageio-ffmpeg is not installed: wrote an animated GIF instead of an mp4 (pip install imageio-ffmpeg)"
        print(note)
        encoded = iio.imwrite("<bytes>", data, extension=".gif", duration=1000 / fps, loop=0)
    atomic_write_bytes(video, encoded)
    return {"frames": str(out / "frames"), "video": str(video), "note": note}


def render_path(
    gaussians: Gaussians,
    cameras: Cameras,
    out_dir: str | os.PathLike | None = None,
    background: Tensor | tuple = (0.0, 0.0, 0.0),
    device: str | torch.device = "cpu",
    fps: int = 12,
    progress: bool = True,
) -> tuple[Tensor, dict[str, str]]:
    """Render ``cameras`` -> frames [F, 3, H, W] and, with ``out_dir``, the files of :func:`write_frames`."""
    frames, _ = render_gaussians(gaussians, cameras, background, device, progress=progress)
    files = write_frames(frames, out_dir, fps) if out_dir is not None else {}
    return frames, files
