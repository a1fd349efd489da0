"""What the path editor shows: the input cameras, their images and the scene's point cloud.

SCENE is anything pathnvs reads (the first rule that matches wins):

* a CO3D sequence folder ``ROOT/<category>/<sequence>`` (real or ``nvs data synth``): the frames
  through :class:`nvs.data.co3d.Co3dDataset`, its ``pointcloud.ply``;
* a posed folder (``transforms.json`` or a COLMAP model with ``images/``, see
  :func:`nvs.data.posed_folder.load_posed_folder`), or a ``transforms.json`` file in one;
* a COLMAP model folder without images (cameras only), or any camera file of :mod:`camera.io`.

Points come from the COLMAP model's ``points3D`` (pycolmap) or a ``pointcloud.ply`` beside the
cameras. Views are subsampled to ``max_views`` and shrunk to ``max_side`` pixels: they texture
the frustums and are the input views of the preview.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor

from camera.cameras import Cameras
from camera.views import Views

SCENE_KINDS = "a COLMAP model, a transforms.json, a CO3D sequence folder, a posed folder or a camera file"


@dataclass
class EditorScene:
    """cameras [V] (OpenCV, float64); views: the same cameras with images, or None; points [P, 3]
    and colors [P, 3] in [0, 1], or None."""

    name: str
    cameras: Cameras
    views: Views | None = None
    points: Tensor | None = None
    colors: Tensor | None = None


def _co3d_sequence(path: Path) -> bool:
    return path.is_dir() and (path.parent / "frame_annotations.jgz").is_file()


def check_scene(path: str | os.PathLike) -> None:
    """Raise ValueError (one line naming the file and the fix) when ``path`` cannot be a scene."""
    from camera.io import infer_format

    path = Path(path)
    if not path.exists():
        raise ValueError(f"{path}: no such file or folder; give {SCENE_KINDS}")
    if path.is_dir():
        from nvs.data.posed_folder import colmap_model_dir

        if not (_co3d_sequence(path) or (path / "transforms.json").is_file() or colmap_model_dir(path) is not None):
            raise ValueError(
                f"{path}: folder holds no transforms.json, COLMAP model (sparse/0, sparse or cameras/"
                f"images/points3D) nor CO3D frame_annotations.jgz one level up; give {SCENE_KINDS}"
            )
        return
    infer_format(path)  # raises with the file named when no reader applies


def _spread(count: int, keep: int) -> list[int]:
    """At most ``keep`` indices spread evenly over ``range(count)``."""
    if count <= keep:
        return list(range(count))
    return sorted({round(i * (count - 1) / (keep - 1)) for i in range(keep)})


def shrink_views(views: Views, max_side: int) -> Views:
    """Views resized (area) so that their longer side is at most ``max_side`` pixels."""
    import torch.nn.functional as F

    h, w = views.images.shape[-2:]
    scale = min(1.0, max_side / max(h, w))
    if scale == 1.0:
        return views
    size = (max(1, round(h * scale)), max(1, round(w * scale)))
    images = F.interpolate(views.images.float(), size=size, mode="area").clamp(0, 1)
    return Views(
        images, views.cameras.resize(*size), frame_ids=list(views.frame_ids), scene=views.scene, category=views.category
    )


def _colmap_points(model_dir: Path) -> tuple[Tensor | None, Tensor | None]:
    from camera.io.colmap import read_colmap

    _, info = read_colmap(model_dir)
    if info.points is None or len(info.points) == 0:
        return None, None
    return info.points.float(), info.colors.float() / 255


def _ply_beside(folder: Path) -> tuple[Tensor | None, Tensor | None]:
    from nvs.data.co3d import read_ply_points

    ply = folder / "pointcloud.ply"
    return read_ply_points(ply) if ply.is_file() else (None, None)


def _load_co3d(path: Path, max_views: int) -> EditorScene:
    from nvs.data.co3d import Co3dDataset

    dataset = Co3dDataset(path.parent.parent, category=path.parent.name)
    rows = dataset.frames(path.parent.name).get(path.name)
    if not rows:
        raise ValueError(f"{path}: sequence {path.name!r} has no frames in {path.parent / 'frame_annotations.jgz'}")
    numbers = [rows[i]["frame_number"] for i in _spread(len(rows), max_views)]
    views = dataset.load_views(path.name, numbers, category=path.parent.name, with_depth=False)
    try:
        points, colors = dataset.load_pointcloud(path.name, path.parent.name)
    except FileNotFoundError:
        points, colors = None, None
    return EditorScene(f"{path.parent.name}/{path.name}", views.cameras, views, points, colors)


def _load_folder(path: Path, max_views: int) -> EditorScene:
    from nvs.data.posed_folder import colmap_model_dir, load_posed_folder

    model = colmap_model_dir(path)
    points, colors = _colmap_points(model) if model is not None else _ply_beside(path)
    try:
        views = load_posed_folder(path)
    except FileNotFoundError:  # poses without their images (e.g. a bare COLMAP model): cameras only
        from camera.io import load_cameras

        transforms = path / "transforms.json"
        cameras = load_cameras(transforms) if transforms.is_file() else load_cameras(model)
        return EditorScene(path.name, cameras[_spread(len(cameras), max_views)], None, points, colors)
    return EditorScene(path.name, views.cameras, views[_spread(len(views), max_views)], points, colors)


def load_scene(path: str | os.PathLike, max_views: int = 48, max_side: int = 256) -> EditorScene:
    """SCENE (see the module docstring) -> :class:`EditorScene`."""
    from camera.io import infer_format, load_cameras

    path = Path(path)
    check_scene(path)
    if _co3d_sequence(path):
        scene = _load_co3d(path, max_views)
    elif path.is_dir():
        scene = _load_folder(path, max_views)
    elif path.name == "transforms.json":
        scene = _load_folder(path.parent, max_views)
    elif infer_format(path) == "colmap":
        scene = _load_folder(path.parent, max_views)
    else:
        cameras = load_cameras(path)
        scene = EditorScene(path.name, cameras[_spread(len(cameras), max_views)], None, *_ply_beside(path.parent))
    if scene.views is not None:
        scene.views = shrink_views(scene.views, max_side)
        scene.cameras = scene.views.cameras
    scene.cameras = scene.cameras.to(dtype=torch.float64)
    return scene


def scene_up(cameras: Cameras) -> Tensor:
    """The world direction [3] that is up in the input images on average (mean of -y camera axes)."""
    up = -cameras.R[:, :, 1].double().mean(0)
    return up / up.norm() if up.norm() > 1e-6 else torch.tensor([0.0, 0.0, 1.0], dtype=torch.float64)


def scene_scale(scene: EditorScene) -> float:
    """A length for frustum sizes: the median distance of the cameras to their mean centre (or 1)."""
    centers = scene.cameras.centers.double()
    spread = float((centers - centers.mean(0)).norm(dim=-1).median()) if len(centers) > 1 else 0.0
    return spread if spread > 1e-9 else 1.0


def scene_center(scene: EditorScene) -> Tensor:
    """A point [3] the scene is about: the mean of its points, else the mean camera centre."""
    if scene.points is not None and len(scene.points):
        return scene.points.double().mean(0)
    return scene.cameras.centers.double().mean(0)
