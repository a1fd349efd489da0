"""MVImgNet: ``ROOT/<class>/<instance>/images/*.jpg`` posed by the COLMAP model ``sparse/0``.

Cameras come through :func:`camera.io.colmap.read_colmap` (frames sorted by image name, OpenCV).
MVImgNet ships its masks separately; a ``masks/`` folder beside ``images/`` is used when present.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from camera.io.colmap import read_colmap
from camera.views import Views
from nvs.data.posed_folder import resolve_image, views_from_files


def mvimgnet_instances(root: str | os.PathLike, class_name: str | None = None) -> list[tuple[str, str]]:
    """(class, instance) pairs that have ``sparse/0``, sorted."""
    root = Path(root)
    classes = [class_name] if class_name is not None else sorted(p.name for p in root.iterdir() if p.is_dir())
    return [(c, p.name) for c in classes for p in sorted((root / c).iterdir()) if (p / "sparse" / "0").is_dir()]


def load_mvimgnet_views(
    root: str | os.PathLike,
    class_name: str,
    instance: str,
    size: int | tuple[int, int] | None = None,
    frames: Sequence[int] | None = None,
) -> Views:
    """One MVImgNet instance -> :class:`Views`; ``frames`` picks positions in image-name order."""
    folder = Path(root) / str(class_name) / instance
    model = folder / "sparse" / "0"
    if not model.is_dir():
        raise FileNotFoundError(f"{model}: no COLMAP model for MVImgNet instance {class_name}/{instance}")
    cameras, info = read_colmap(model)
    names = info.names
    if frames is not None:
        bad = [i for i in frames if not 0 <= i < len(names)]
        if bad:
            raise IndexError(f"{folder}: frames {bad[:5]} out of range; the instance has {len(names)} posed images")
        cameras, names = cameras[list(frames)], [names[i] for i in frames]
    paths = [resolve_image(folder / "images", name) for name in names]
    return views_from_files(cameras, paths, folder / "masks", size, instance, str(class_name))
