"""COLMAP sparse models (text or binary), read and written through pycolmap.

Images are returned sorted by image name (the order of a video's frames); their COLMAP ids,
camera ids and names are kept in :class:`ColmapInfo`, as are the 3D points and their colours.
Keypoints (``POINTS2D``) and point tracks are not carried over: a written model has points
without tracks. Camera models: see :data:`camera.convert.COLMAP_MODELS`; distortion is reported
(warning) and kept, and written back with the camera's original model.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from camera.cameras import Cameras, rigid_inverse
from camera.convert import COLMAP_MODELS, cameras_to_colmap, colmap_to_cameras, qvec_to_rotmat
from camera.io._common import reuse_unchanged
from camera.validate import InputError, MissingInputError, check_finite, check_frames

MODEL_FILES = ("cameras", "images", "points3D")


@dataclass
class ColmapInfo:
    """Per image (in the order of the cameras): ``names``, ``image_ids``, ``camera_ids``; per COLMAP
    camera id: ``models`` (model name) and ``distortion`` (coefficient -> value); and the points:
    ``points`` [P, 3] float64, ``colors`` [P, 3] uint8, ``point_ids`` [P]. ``qvecs`` [N, 4] and
    ``tvecs`` [N, 3] are the poses as stored, reused by the writer for unchanged cameras."""

    names: list[str] = field(default_factory=list)
    image_ids: list[int] = field(default_factory=list)
    camera_ids: list[int] = field(default_factory=list)
    models: dict[int, str] = field(default_factory=dict)
    distortion: dict[int, dict[str, float]] = field(default_factory=dict)
    points: Tensor | None = None
    colors: Tensor | None = None
    point_ids: list[int] = field(default_factory=list)
    qvecs: Tensor | None = None
    tvecs: Tensor | None = None


def _w2c(qvec: Tensor, tvec: Tensor) -> Tensor:
    """[N, 4] (w, x, y, z), [N, 3] -> world-to-camera [N, 4, 4], as colmap_to_cameras builds it."""
    w2c = torch.zeros(len(qvec), 4, 4, dtype=qvec.dtype)
    w2c[:, :3, :3], w2c[:, :3, 3], w2c[:, 3, 3] = qvec_to_rotmat(qvec), tvec, 1
    return w2c


def find_model_dir(path: str | os.PathLike) -> Path:
    """The folder holding cameras/images/points3D (.txt or .bin): ``path`` itself, or the folder
    of a model file given directly."""
    path = Path(path)
    if path.is_file() and path.stem in MODEL_FILES:
        path = path.parent
    if not path.is_dir():
        raise MissingInputError(f"{path}: no such COLMAP model folder; give the folder with cameras.txt/.bin")
    for ext in (".bin", ".txt"):
        if all((path / f"{name}{ext}").is_file() for name in MODEL_FILES):
            return path
    raise InputError(
        f"{path}: not a COLMAP model: expected cameras, images and points3D as .txt or .bin "
        "(for a COLMAP project, give its sparse/0 folder)"
    )


def read_colmap(path: str | os.PathLike) -> tuple[Cameras, ColmapInfo]:
    """A COLMAP model folder -> (OpenCV :class:`Cameras` in float64 sorted by image name, :class:`ColmapInfo`)."""
    import pycolmap

    model_dir = find_model_dir(path)
    where = str(model_dir)
    try:
        rec = pycolmap.Reconstruction(str(model_dir))
    except Exception as e:  # pycolmap raises its own error types for malformed files
        raise InputError(
            f"{where}: pycolmap cannot read this COLMAP model ({e}); the files are truncated or corrupt"
        ) from None
    images = sorted(rec.images.values(), key=lambda im: im.name)
    pose_file = "frames" if any((model_dir / f"frames{ext}").is_file() for ext in (".txt", ".bin")) else "images"
    if not images:
        raise InputError(f"{where}: the model holds zero images; it needs at least one posed image")
    sizes = {(rec.cameras[im.camera_id].height, rec.cameras[im.camera_id].width) for im in images}
    if len(sizes) > 1:
        raise InputError(
            f"{where}: images have different sizes {sorted(sizes)}; Cameras holds one size: "
            "undistort/resize to one size (colmap image_undistorter) or split the model"
        )
    height, width = sizes.pop()
    info = ColmapInfo(
        names=[im.name for im in images],
        image_ids=[im.image_id for im in images],
        camera_ids=[im.camera_id for im in images],
    )
    parts = []
    for im in images:
        if not im.has_pose:
            raise InputError(f"{where}: image {im.name} (id {im.image_id}) has no pose; drop unregistered images")
        cam = rec.cameras[im.camera_id]
        pose = im.cam_from_world()
        x, y, z, w = pose.rotation.quat
        qvec = torch.tensor([[w, x, y, z]], dtype=torch.float64)
        if not torch.isfinite(qvec).all() or qvec.norm() < 1e-12:
            raise InputError(
                f"{where}: image {im.name} (id {im.image_id}): quaternion qvec {qvec[0].tolist()} is zero or not "
                f"finite; give a unit quaternion (QW QX QY QZ) in {pose_file}.txt/.bin"
            )
        tvec = torch.tensor(pose.translation, dtype=torch.float64)[None]
        params = torch.tensor(cam.params, dtype=torch.float64)
        cameras, distortion = colmap_to_cameras(
            qvec, tvec, cam.model.name, params, height, width, camera_name=f"{cam.camera_id} of {where}"
        )
        info.models[cam.camera_id] = cam.model.name
        info.distortion[cam.camera_id] = {k: float(v[0]) for k, v in distortion.items()}
        parts.append((cameras, qvec, tvec))
    cameras = Cameras.cat([p[0] for p in parts])
    info.qvecs, info.tvecs = torch.cat([p[1] for p in parts]), torch.cat([p[2] for p in parts])
    check_frames(where, cameras.c2w, cameras.K, pose_field="images qvec/tvec", intrinsics_field="cameras params")
    point_ids = sorted(rec.points3D)
    info.point_ids = point_ids
    info.points = torch.from_numpy(np.array([rec.points3D[i].xyz for i in point_ids], dtype=np.float64).reshape(-1, 3))
    info.colors = torch.from_numpy(np.array([rec.points3D[i].color for i in point_ids], dtype=np.uint8).reshape(-1, 3))
    return cameras, info


def write_colmap(
    path: str | os.PathLike,
    cameras: Cameras,
    info: ColmapInfo | None = None,
    points: Tensor | None = None,
    colors: Tensor | None = None,
    binary: bool = False,
) -> None:
    """Write ``cameras`` (and points [P, 3] with colours [P, 3] uint8) as a COLMAP model folder.

    Names and ids come from ``info`` when it has one per camera (else ``00000.png``... and ids
    1..N). Cameras with identical intrinsics share one COLMAP camera: SIMPLE_PINHOLE when
    fx == fy, else PINHOLE, or the model ``info`` recorded for that camera id together with its
    distortion. ``points``/``colors`` default to ``info``'s. Each file is replaced atomically, and
    a model of the other kind (.bin when writing text, .txt when writing binary) in the folder is
    removed so that the folder holds one unambiguous model.
    """
    import pycolmap

    info = info or ColmapInfo()
    n = len(cameras)
    names = info.names if len(info.names) == n else [f"{i:05d}.png" for i in range(n)]
    image_ids = info.image_ids if len(info.image_ids) == n else list(range(1, n + 1))
    if len(set(names)) != n or len(set(image_ids)) != n:
        raise ValueError("write_colmap: image names and ids must be unique, one per camera")
    keep_point_ids = points is None and info.points is not None and len(info.point_ids) == len(info.points)
    points = info.points if points is None else points
    colors = info.colors if colors is None else colors
    if points is not None:
        points = torch.as_tensor(points, dtype=torch.float64)
        if points.ndim != 2 or points.shape[1] != 3:
            raise ValueError(f"write_colmap: points must have shape [P, 3], got {list(points.shape)}")
        check_finite(points, "write_colmap: points")
        colors = torch.zeros_like(points, dtype=torch.uint8) if colors is None else torch.as_tensor(colors)
        if tuple(colors.shape) != tuple(points.shape):
            raise ValueError(f"write_colmap: colors must have shape {list(points.shape)}, got {list(colors.shape)}")
        if colors.numel() and (colors.min() < 0 or colors.max() > 255):
            raise ValueError("write_colmap: colors must be 0..255 (uint8 RGB); scale float colours by 255 first")

    rec = pycolmap.Reconstruction()
    K = cameras.K.double()
    camera_of_K: dict[tuple[float, ...], int] = {}
    for i in range(n):
        key = tuple(K[i].flatten().tolist())
        if key in camera_of_K:
            continue
        reserved = set(camera_of_K.values()) | (set(info.camera_ids) if len(info.camera_ids) == n else set())
        cam_id = (
            info.camera_ids[i]
            if len(info.camera_ids) == n and info.camera_ids[i] not in camera_of_K.values()
            else max(reserved, default=0) + 1
        )
        model = info.models.get(cam_id) if len(info.camera_ids) == n else None
        if model is None or ("f" in COLMAP_MODELS[model] and K[i, 0, 0] != K[i, 1, 1]):
            model = "SIMPLE_PINHOLE" if K[i, 0, 0] == K[i, 1, 1] else "PINHOLE"
        _, _, params = cameras_to_colmap(cameras[i].to(dtype=torch.float64), model, info.distortion.get(cam_id))
        rec.add_camera_with_trivial_rig(
            pycolmap.Camera(
                model=model, width=cameras.width, height=cameras.height, params=params[0].numpy(), camera_id=cam_id
            )
        )
        camera_of_K[key] = cam_id
    qvec, tvec, _ = cameras_to_colmap(cameras.to(dtype=torch.float64))
    if info.qvecs is not None and len(info.qvecs) == n:
        as_read = rigid_inverse(_w2c(info.qvecs, info.tvecs))
        unchanged = (as_read == cameras.c2w.double()).flatten(1).all(1)
        qvec, tvec = reuse_unchanged(qvec, info.qvecs, unchanged), reuse_unchanged(tvec, info.tvecs, unchanged)
    for i in range(n):
        w, x, y, z = qvec[i].tolist()
        pose = pycolmap.Rigid3d(pycolmap.Rotation3d(np.array([x, y, z, w])), tvec[i].numpy())
        image = pycolmap.Image(
            name=names[i], camera_id=camera_of_K[tuple(K[i].flatten().tolist())], image_id=image_ids[i]
        )
        rec.add_image_with_trivial_frame(image, pose)
    if points is not None:
        point_ids = info.point_ids if keep_point_ids else list(range(1, len(points) + 1))
        for pid, xyz, rgb in zip(point_ids, points.numpy(), colors.numpy().astype(np.uint8)):
            rec.add_point3D_with_id(pid, pycolmap.Point3D(xyz=xyz, color=rgb, track=pycolmap.Track()))

    out = Path(path)
    out.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=out, prefix=".colmap-"))
    try:
        (rec.write_binary if binary else rec.write_text)(str(tmp))
        ext = ".bin" if binary else ".txt"
        for f in sorted(tmp.iterdir()):
            os.replace(f, out / f.name)
        for name in MODEL_FILES + ("rigs", "frames"):
            stale = out / f"{name}{'.txt' if binary else '.bin'}"
            if stale.exists() and (out / f"{name}{ext}").exists():
                stale.unlink()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
