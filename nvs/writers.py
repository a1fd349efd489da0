"""Images, videos and plots of generated frames: PNG frames, a video, the one contact sheet, the path
plot, and everything ``nvs generate`` writes (plus a transforms.json readable by the recon step,
nerfstudio and splat trainers).

Every file goes through :func:`camera.io.atomic_write_bytes` (a temporary file beside it, then a rename).
"""

from __future__ import annotations

import importlib.util
import io
import logging
import os
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from camera.cameras import Cameras
from camera.io import atomic_write_bytes
from camera.views import Views

log = logging.getLogger(__name__)

SHEET_GAP = 2  # pixels between and around the tiles of a contact sheet (and between side-by-side videos)
SHEET_LINE = 14  # pixels of a text line: the title, the column numbers
SHEET_LABEL_WIDTH = 88  # pixels of the row labels at the left


def to_uint8(images: Tensor) -> np.ndarray:
    """images [F, 3, H, W] in [0, 1] -> [F, H, W, 3] uint8."""
    return (images.detach().float().clamp(0, 1).permute(0, 2, 3, 1).cpu().numpy() * 255 + 0.5).astype(np.uint8)


def png_bytes(pixels: np.ndarray) -> bytes:
    """An RGB uint8 array [H, W, 3] (or gray [H, W]) as PNG file contents."""
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    return buffer.getvalue()


def write_frames(images: Tensor, folder: Path, prefix: str = "frame", remove_stale: bool = False) -> list[Path]:
    """images [F, 3, H, W] -> ``folder/<prefix>_00000.png``, ...; ``remove_stale`` deletes the
    ``<prefix>_NNNNN.png`` numbered F or more that an earlier, longer run left there."""
    paths = []
    for i, pixels in enumerate(to_uint8(images)):
        paths.append(folder / f"{prefix}_{i:05d}.png")
        atomic_write_bytes(paths[-1], png_bytes(pixels))
    if remove_stale:
        for path in folder.glob(f"{prefix}_*.png"):
            number = path.stem[len(prefix) + 1 :]
            if number.isdigit() and int(number) >= len(paths):
                path.unlink()
    return paths


def write_video(images: Tensor, path: Path, fps: float = 8.0) -> Path:
    """images [F, 3, H, W] -> an mp4 at ``path`` through imageio-ffmpeg when it is installed, else a
    GIF beside it (``path`` with suffix .gif; the log says so). Returns the path written."""
    pixels = to_uint8(images)
    if importlib.util.find_spec("imageio_ffmpeg") is not None:
        import imageio.v2 as imageio

        path.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(prefix=f".{path.stem}.", dir=path.parent) as folder:
            tmp = Path(folder) / path.name  # ffmpeg writes to a file name; the bytes then go atomically
            imageio.mimwrite(
                tmp, list(pixels), format="FFMPEG", fps=fps, codec="libx264", quality=8, macro_block_size=2
            )
            atomic_write_bytes(path, tmp.read_bytes())
        return path
    from PIL import Image

    gif = path.with_suffix(".gif")
    log.warning("imageio-ffmpeg is not installed: writing %s instead of an mp4 (pip install imageio-ffmpeg)", gif)
    frames = [Image.fromarray(p) for p in pixels]
    buffer = io.BytesIO()
    frames[0].save(buffer, format="GIF", save_all=True, append_images=frames[1:], duration=int(1000 / fps), loop=0)
    atomic_write_bytes(gif, buffer.getvalue())
    return gif


def side_by_side(*videos: Tensor) -> Tensor:
    """Videos [F, 3, H, W] each -> [F, 3, H, n*W + (n-1)*SHEET_GAP], white gaps between them."""
    f, _, h, _ = videos[0].shape
    gap = torch.ones(f, 3, h, SHEET_GAP, dtype=videos[0].dtype, device=videos[0].device)
    parts = [videos[0]]
    for v in videos[1:]:
        parts += [gap, v]
    return torch.cat(parts, dim=-1)


# ----------------------------------------------------------------------------- the contact sheet
@dataclass(frozen=True)
class SheetRow:
    """One row of a contact sheet: ``label`` at its left, ``images`` [N, 3 or 1, H, W] in [0, 1]
    at ``columns`` (one per image; None: 0..N-1). Columns without an image stay white."""

    label: str
    images: Tensor
    columns: Sequence[int] | None = None


@dataclass(frozen=True)
class SheetLayout:
    """Where the tiles of a contact sheet lie, in pixels: an optional title line, an optional line of
    column numbers, an optional label column (:data:`SHEET_LABEL_WIDTH`), then ``rows`` x ``columns``
    tiles of ``tile`` = (H, W) with :data:`SHEET_GAP` between and around them."""

    rows: int
    columns: int
    tile: tuple[int, int]
    labelled: bool = True
    numbered: bool = True
    titled: bool = False

    @property
    def top(self) -> int:
        return SHEET_LINE * (int(self.titled) + int(self.numbered))

    @property
    def left(self) -> int:
        return SHEET_LABEL_WIDTH if self.labelled else 0

    @property
    def size(self) -> tuple[int, int]:
        """(H, W) of the whole sheet."""
        h, w = self.tile
        return self.top + self.rows * (h + SHEET_GAP) + SHEET_GAP, self.left + self.columns * (
            w + SHEET_GAP
        ) + SHEET_GAP

    def origin(self, row: int, column: int) -> tuple[int, int]:
        """(y, x) of the top-left pixel of tile (row, column)."""
        h, w = self.tile
        return self.top + SHEET_GAP + row * (h + SHEET_GAP), self.left + SHEET_GAP + column * (w + SHEET_GAP)


def sheet_layout(
    rows: Sequence[SheetRow], columns: int | None = None, numbered: bool = True, title: str = ""
) -> SheetLayout:
    """The layout :func:`contact_sheet` gives ``rows``: tiles at the first row's image size,
    ``columns`` (default: enough for every row's images) wide, labels only when a row has one."""
    if not rows:
        raise ValueError("contact_sheet: give at least one row")
    needed = max((max(r.columns) + 1 if r.columns else len(r.images)) for r in rows)
    columns = needed if columns is None else columns
    if needed > columns:
        raise ValueError(f"contact_sheet: a row puts an image in column {needed - 1}, past the {columns} columns")
    tile = tuple(rows[0].images.shape[-2:])
    return SheetLayout(len(rows), columns, tile, any(r.label for r in rows), numbered, bool(title))


def contact_sheet(
    rows: Sequence[SheetRow], columns: int | None = None, numbered: bool = True, title: str = ""
) -> np.ndarray:
    """Labelled rows of tiles -> an RGB uint8 image [H', W', 3] on white (see :func:`sheet_layout`):
    ``title`` on the first line, then column numbers when ``numbered``, each row's label at its left.
    Images of another size than the first row's are resized to it (antialiased bilinear).

    Example:
        >>> import torch
        >>> rows = [SheetRow("inputs", torch.zeros(1, 3, 8, 8), [2]), SheetRow("frames", torch.ones(4, 1, 8, 8))]
        >>> contact_sheet(rows).shape == sheet_layout(rows).size + (3,)
        True
    """
    from PIL import Image, ImageDraw

    layout = sheet_layout(rows, columns, numbered, title)
    sheet = Image.new("RGB", layout.size[::-1], (255, 255, 255))
    draw = ImageDraw.Draw(sheet)
    if title:
        draw.text((4, 1), title, fill=(0, 0, 0))
    if numbered:
        for c in range(layout.columns):
            draw.text((layout.origin(0, c)[1] + 2, layout.top - SHEET_LINE + 1), str(c), fill=(80, 80, 80))
    h, w = layout.tile
    for r, row in enumerate(rows):
        images = row.images.detach().float().cpu()
        if images.ndim != 4 or images.shape[1] not in (1, 3):
            raise ValueError(
                f"contact_sheet: row {row.label!r}: images must be [N, 3 or 1, H, W], got {tuple(images.shape)}"
            )
        if row.columns is not None and len(row.columns) != len(images):
            raise ValueError(f"contact_sheet: row {row.label!r}: {len(images)} images but {len(row.columns)} columns")
        if tuple(images.shape[-2:]) != (h, w):
            images = F.interpolate(images, size=(h, w), mode="bilinear", antialias=True, align_corners=False)
        y0 = layout.origin(r, 0)[0]
        draw.text((4, y0 + h // 2 - 6), row.label, fill=(0, 0, 0))
        for c, pixels in zip(row.columns or range(len(images)), to_uint8(images.expand(-1, 3, -1, -1))):
            y, x = layout.origin(r, c)
            sheet.paste(Image.fromarray(pixels), (x, y))
    return np.asarray(sheet)


def frame_rows(
    images: Tensor,
    per_row: int = 8,
    label: str = "frames",
    masks: Tensor | None = None,
    max_frames: int | None = None,
) -> list[SheetRow]:
    """Frames [F, 3, H, W] (at most ``max_frames`` of them, evenly spaced) as sheet rows of ``per_row``,
    labelled ``<label> a-b`` by frame number; with ``masks`` [F, 1, H, W] each row is followed by their masks."""
    numbers = list(range(len(images)))
    if max_frames is not None and len(images) > max_frames:
        numbers = torch.linspace(0, len(images) - 1, max_frames).round().long().tolist()
        images, masks = images[numbers], None if masks is None else masks[numbers]
    rows = []
    for start in range(0, len(images), per_row):
        part = slice(start, start + per_row)
        first, last = numbers[part][0], numbers[part][-1]
        rows.append(SheetRow(f"{label} {first}" if first == last else f"{label} {first}-{last}", images[part]))
        if masks is not None:
            rows.append(SheetRow("masks", masks[part]))
    return rows


def write_contact_sheet(path: Path, rows: Sequence[SheetRow], **layout) -> Path:
    """:func:`contact_sheet` of ``rows`` (``columns=``, ``numbered=``, ``title=``) as a PNG at ``path``."""
    atomic_write_bytes(path, png_bytes(contact_sheet(rows, **layout)))
    return path


# ----------------------------------------------------------------------------- plots and outputs
def write_path_plot(
    path: Path,
    cameras: Cameras,
    input_cameras: Cameras | None = None,
    look_at: Tensor | None = None,
    title: str | None = None,
) -> Path:
    """The path ``cameras`` and ``input_cameras`` plotted by :func:`camera.plot.plot_cameras` to a PNG."""
    import matplotlib.pyplot as plt

    from camera.plot import plot_cameras

    figure = plot_cameras(
        cameras, input_cameras, look_at=None if look_at is None else look_at.tolist(), out=path, title=title
    )
    plt.close(figure)
    return path


def write_generation(
    out_dir: str | os.PathLike, frames: Views, inputs: Views | None = None, fps: float = 8.0
) -> dict[str, Path]:
    """Everything ``nvs generate`` writes, under ``out_dir``:

    ``frames/frame_00000.png``..., ``video.mp4`` (or ``video.gif``), ``contact_sheet.png`` (the
    inputs, then the frames eight to a row), ``path.png`` (the path and the input cameras) and
    ``transforms.json`` (frames and cameras). Returns the written paths by name.
    """
    from camera.io import save_cameras

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    frame_paths = write_frames(frames.images, out / "frames")
    written = {"frames": out / "frames", "video": write_video(frames.images, out / "video.mp4", fps)}
    rows = ([] if inputs is None else frame_rows(inputs.images, label="inputs")) + frame_rows(frames.images)
    written["contact_sheet"] = write_contact_sheet(
        out / "contact_sheet.png",
        rows,
        columns=min(8, max(len(r.images) for r in rows)),
        numbered=False,
        title=frames.scene or "",
    )
    written["path_plot"] = write_path_plot(
        out / "path.png", frames.cameras, None if inputs is None else inputs.cameras, title=frames.scene or None
    )
    save_cameras(
        out / "transforms.json",
        frames.cameras,
        format="transforms",
        file_paths=[p.relative_to(out).as_posix() for p in frame_paths],
    )
    written["transforms"] = out / "transforms.json"
    return written
