"""What ``nvs generate`` writes: frames as PNGs, a video, a contact sheet, the path plot and a
transforms.json of the generated frames (readable by the recon step, nerfstudio, splat trainers).

Every file is written to a temporary name beside its destination, then renamed over it.
"""

from __future__ import annotations

import importlib.util
import logging
import math
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
from torch import Tensor

from camera.io._common import new_file_mode
from camera.views import Views

log = logging.getLogger(__name__)


@contextmanager
def atomic_path(path: Path) -> Iterator[Path]:
    """A temporary path with ``path``'s suffix beside it, renamed over ``path`` on success."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.stem}.", suffix=path.suffix)
    os.close(fd)
    try:
        yield Path(tmp)
        os.chmod(tmp, new_file_mode())
        os.replace(tmp, path)
    finally:
        Path(tmp).unlink(missing_ok=True)


def to_uint8(images: Tensor) -> np.ndarray:
    """images [F, 3, H, W] in [0, 1] -> [F, H, W, 3] uint8."""
    return (images.detach().float().clamp(0, 1).permute(0, 2, 3, 1).cpu().numpy() * 255 + 0.5).astype(np.uint8)


def write_frames(images: Tensor, folder: Path, prefix: str = "frame") -> list[Path]:
    """images [F, 3, H, W] -> ``folder/<prefix>_00000.png``, ... ."""
    from PIL import Image

    paths = []
    for i, pixels in enumerate(to_uint8(images)):
        path = folder / f"{prefix}_{i:05d}.png"
        with atomic_path(path) as tmp:
            Image.fromarray(pixels).save(tmp, format="PNG")
        paths.append(path)
    return paths


def write_video(images: Tensor, path: Path, fps: float = 8.0) -> Path:
    """images [F, 3, H, W] -> an mp4 at ``path`` through imageio-ffmpeg when it is installed, else a
    GIF beside it (``path`` with suffix .gif; the log says so). Returns the path written."""
    pixels = to_uint8(images)
    if importlib.util.find_spec("imageio_ffmpeg") is not None:
        import imageio.v2 as imageio

        with atomic_path(path) as tmp:
            imageio.mimwrite(
                tmp, list(pixels), format="FFMPEG", fps=fps, codec="libx264", quality=8, macro_block_size=2
            )
        return path
    from PIL import Image

    gif = path.with_suffix(".gif")
    log.warning("imageio-ffmpeg is not installed: writing %s instead of an mp4 (pip install imageio-ffmpeg)", gif)
    frames = [Image.fromarray(p) for p in pixels]
    with atomic_path(gif) as tmp:
        frames[0].save(tmp, format="GIF", save_all=True, append_images=frames[1:], duration=int(1000 / fps), loop=0)
    return gif


def contact_sheet(
    images: Tensor, path: Path, inputs: Tensor | None = None, columns: int | None = None, title: str = ""
) -> Path:
    """A grid of the frames [F, 3, H, W] numbered in path order, after a row of input views [V, 3, H, W]."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    frames = to_uint8(images)
    extra = to_uint8(inputs) if inputs is not None else np.zeros((0,) + frames.shape[1:], np.uint8)
    columns = columns or min(8, max(len(frames), len(extra), 1))
    rows_frames = math.ceil(len(frames) / columns)
    rows_inputs = math.ceil(len(extra) / columns)
    rows = rows_frames + rows_inputs
    aspect = frames.shape[1] / frames.shape[2]
    fig, axes = plt.subplots(rows, columns, figsize=(1.6 * columns, 1.6 * aspect * rows + 0.4), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for i, pixels in enumerate(extra):
        ax = axes[i // columns, i % columns]
        ax.imshow(pixels)
        ax.set_title(f"input {i}", fontsize=7, color="tab:blue")
    for i, pixels in enumerate(frames):
        ax = axes[rows_inputs + i // columns, i % columns]
        ax.imshow(pixels)
        ax.set_title(f"frame {i}", fontsize=7)
    if title:
        fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=100, format="png")
    plt.close(fig)
    return path


def _close(figure) -> None:
    import matplotlib.pyplot as plt

    plt.close(figure)


def write_generation(
    out_dir: str | os.PathLike, frames: Views, inputs: Views | None = None, fps: float = 8.0
) -> dict[str, Path]:
    """Everything ``nvs generate`` writes, under ``out_dir``:

    ``frames/frame_00000.png``..., ``video.mp4`` (or ``video.gif``), ``contact_sheet.png``,
    ``path.png`` (the path and the input cameras) and ``transforms.json`` (frames and cameras).
    Returns the written paths by name.
    """
    from camera.io import save_cameras
    from camera.plot import plot_cameras

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    frame_paths = write_frames(frames.images, out / "frames")
    written = {"frames": out / "frames", "video": write_video(frames.images, out / "video.mp4", fps)}
    written["contact_sheet"] = contact_sheet(
        frames.images, out / "contact_sheet.png", None if inputs is None else inputs.images, title=frames.scene
    )
    figure = plot_cameras(
        frames.cameras, inputs.cameras if inputs is not None else None, out=out / "path.png", title=frames.scene or None
    )
    _close(figure)
    written["path_plot"] = out / "path.png"
    save_cameras(
        out / "transforms.json",
        frames.cameras,
        format="transforms",
        file_paths=[p.relative_to(out).as_posix() for p in frame_paths],
    )
    written["transforms"] = out / "transforms.json"
    return written
