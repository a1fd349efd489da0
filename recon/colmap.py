"""Sparse COLMAP reconstruction of posed frames through pycolmap (V3D's consistency check, Fig. 5).

Known poses: SIFT features → exhaustive (or sequential) matching → a ``pycolmap.Reconstruction``
whose cameras and images reuse the database's ids, posed with the known ``Rigid3d`` (COLMAP's
world-to-camera, OpenCV axes: ``Cameras.w2c``) → ``triangulate_points``. Unknown poses (optional):
``incremental_mapping``, then the estimated camera centres are aligned to the known ones by a
similarity (Umeyama) so that the cloud can be compared with a reference in the known frame.

Score: the number of points, and the Chamfer distance to a reference cloud
(:func:`chamfer_distance`).
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

from camera.cameras import Cameras
from camera.io import atomic_write_bytes
from recon.ply import save_point_cloud_ply


@dataclass
class ColmapResult:
    """points [P, 3] and colours [P, 3] (uint8) in the frame of the given cameras; the model folder;
    the cameras COLMAP used (estimated ones when poses were unknown, after alignment)."""

    points: Tensor
    colors: Tensor
    model_dir: Path
    ply_path: Path
    num_registered: int
    mean_reprojection_error: float
    estimated_cameras: Cameras | None = None
    alignment: dict = field(default_factory=dict)


def umeyama(source: Tensor, target: Tensor, with_scale: bool = True) -> tuple[float, Tensor, Tensor]:
    """Similarity minimising ``|s·R·source + t - target|²`` (Umeyama 1991).

    source, target [P, 3] (P >= 3, not collinear) -> (s, R [3, 3], t [3]), float64.
    """
    x, y = source.double(), target.double()
    if x.shape != y.shape or x.ndim != 2 or x.shape[1] != 3 or x.shape[0] < 3:
        raise ValueError(f"umeyama: need two [P, 3] point sets with P >= 3, got {tuple(x.shape)}, {tuple(y.shape)}")
    mx, my = x.mean(0), y.mean(0)
    xc, yc = x - mx, y - my
    cov = yc.T @ xc / x.shape[0]
    u, d, vt = torch.linalg.svd(cov)
    sign = torch.ones(3, dtype=torch.float64)
    if torch.det(u) * torch.det(vt) < 0:
        sign[2] = -1
    rot = u @ torch.diag(sign) @ vt
    var_x = (xc**2).sum() / x.shape[0]
    scale = float((d * sign).sum() / var_x) if with_scale else 1.0
    return scale, rot, my - scale * rot @ mx


def _silence(pycolmap) -> None:
    pycolmap.logging.minloglevel = 2  # warnings and errors only


def _write_images(images: Tensor, folder: Path) -> list[str]:
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    names = []
    for i, image in enumerate(images):
        name = f"{i:05d}.png"
        array = (image.clamp(0, 1) * 255).round().byte().permute(1, 2, 0).numpy()
        Image.fromarray(array).save(folder / name)
        names.append(name)
    return names


def _extract_and_match(
    pycolmap, database: Path, image_dir: Path, cameras: Cameras, names: list[str], matcher: str, max_features: int
) -> None:
    reader = pycolmap.ImageReaderOptions()
    reader.camera_model = "PINHOLE"
    extraction = pycolmap.FeatureExtractionOptions()
    extraction.sift.max_num_features = max_features
    extraction.num_threads = min(4, os.cpu_count() or 1)
    pycolmap.extract_features(
        database,
        image_dir,
        image_names=names,
        camera_mode=pycolmap.CameraMode.PER_IMAGE,
        reader_options=reader,
        extraction_options=extraction,
    )
    db = pycolmap.Database.open(str(database))
    try:
        index = {name: i for i, name in enumerate(names)}
        for image in db.read_all_images():
            cam = db.read_camera(image.camera_id)
            k = cameras.K[index[image.name]].double()
            cam.params = np.array([k[0, 0], k[1, 1], k[0, 2], k[1, 2]], dtype=np.float64)
            cam.has_prior_focal_length = True
            db.update_camera(cam)
    finally:
        db.close()
    if matcher == "exhaustive":
        pycolmap.match_exhaustive(database)
    elif matcher == "sequential":
        pycolmap.match_sequential(database)
    else:
        raise ValueError(f"COLMAP matcher must be 'exhaustive' or 'sequential', got {matcher!r}")


def _known_pose_reconstruction(pycolmap, database: Path, cameras: Cameras, names: list[str]):
    index = {name: i for i, name in enumerate(names)}
    rec = pycolmap.Reconstruction()
    db = pycolmap.Database.open(str(database))
    try:
        for image in db.read_all_images():
            rec.add_camera_with_trivial_rig(db.read_camera(image.camera_id))
            w2c = cameras.w2c[index[image.name]].double().numpy()
            pose = pycolmap.Rigid3d(pycolmap.Rotation3d(w2c[:3, :3]), w2c[:3, 3])
            fresh = pycolmap.Image(name=image.name, camera_id=image.camera_id, image_id=image.image_id)
            rec.add_image_with_trivial_frame(fresh, pose)
    finally:
        db.close()
    return rec


def _cloud(rec) -> tuple[Tensor, Tensor]:
    points = rec.points3D
    if len(points) == 0:
        return torch.zeros(0, 3, dtype=torch.float64), torch.zeros(0, 3, dtype=torch.uint8)
    xyz = np.stack([p.xyz for p in points.values()])
    rgb = np.stack([p.color for p in points.values()]).astype(np.uint8)
    return torch.from_numpy(xyz), torch.from_numpy(rgb)


def run_colmap(
    images: Tensor,
    cameras: Cameras,
    out_dir: str | os.PathLike,
    known_poses: bool = True,
    matcher: str = "exhaustive",
    max_features: int = 8192,
) -> ColmapResult:
    """images [F, 3, H, W] in [0, 1] with their cameras -> a sparse model in ``out_dir/sparse`` and
    ``out_dir/points.ply``.

    ``known_poses=False`` runs incremental mapping and aligns the largest model to ``cameras`` by
    the camera centres (similarity), so the cloud lives in the cameras' frame either way.
    """
    import pycolmap

    if images.ndim != 4 or images.shape[1] != 3 or images.shape[0] != len(cameras):
        raise ValueError(f"run_colmap: images must be [F, 3, H, W] with one per camera, got {tuple(images.shape)}")
    if (images.shape[2], images.shape[3]) != (cameras.height, cameras.width):
        raise ValueError(
            f"run_colmap: images are {tuple(images.shape[2:])} but the cameras are {cameras.height}x{cameras.width}"
        )
    if len(cameras) < 2:
        raise ValueError("run_colmap: needs at least two views")
    _silence(pycolmap)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(dir=out, prefix=".colmap-"))
    try:
        names = _write_images(images, work / "images")
        database = work / "database.db"
        _extract_and_match(pycolmap, database, work / "images", cameras, names, matcher, max_features)
        estimated, alignment = None, {}
        if known_poses:
            rec = _known_pose_reconstruction(pycolmap, database, cameras, names)
            (work / "tri").mkdir()
            rec = pycolmap.triangulate_points(rec, database, work / "images", work / "tri")
        else:
            options = pycolmap.IncrementalPipelineOptions()
            options.ba_refine_focal_length = False
            options.ba_refine_principal_point = False
            options.ba_refine_extra_params = False
            models = pycolmap.incremental_mapping(database, work / "images", work / "mapped", options)
            if not models:
                raise RuntimeError("COLMAP incremental mapping registered no model: too few matches between the frames")
            rec = max(models.values(), key=lambda r: r.num_reg_images())
            rec, estimated, alignment = _align_to_known(pycolmap, rec, cameras, names)
        model_dir = out / "sparse"
        tmp_model = work / "final"
        tmp_model.mkdir()
        rec.write_binary(str(tmp_model))
        if model_dir.exists():
            shutil.rmtree(model_dir)
        os.replace(tmp_model, model_dir)
        points, colors = _cloud(rec)
        ply = out / "points.ply"
        save_point_cloud_ply(ply, points, colors)
        error = float(rec.compute_mean_reprojection_error()) if len(points) else float("nan")
        return ColmapResult(points, colors, model_dir, ply, rec.num_reg_images(), error, estimated, alignment)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _align_to_known(pycolmap, rec, cameras: Cameras, names: list[str]):
    index = {name: i for i, name in enumerate(names)}
    est, known, ids = [], [], []
    for image in rec.images.values():
        if image.has_pose:
            est.append(image.projection_center())
            known.append(cameras.centers[index[image.name]].double().numpy())
            ids.append(index[image.name])
    if len(est) < 3:
        raise RuntimeError(f"COLMAP registered {len(est)} images; at least 3 are needed to align the estimated poses")
    scale, rot, trans = umeyama(torch.from_numpy(np.stack(est)), torch.from_numpy(np.stack(known)))
    sim = pycolmap.Sim3d(scale, pycolmap.Rotation3d(rot.numpy()), trans.numpy())
    rec.transform(sim)
    c2w = []
    for image in rec.images.values():
        if image.has_pose:
            m = np.eye(4)
            m[:3] = image.cam_from_world().inverse().matrix()
            c2w.append(m)
    estimated = Cameras(cameras.K[ids].double(), torch.from_numpy(np.stack(c2w)), cameras.height, cameras.width)
    errors = (estimated.centers - cameras.centers[ids].double()).norm(dim=-1)
    return (
        rec,
        estimated,
        {
            "scale": scale,
            "registered": len(ids),
            "centre_error_mean": float(errors.mean()),
            "centre_error_max": float(errors.max()),
        },
    )


def chamfer_distance(a: Tensor | np.ndarray, b: Tensor | np.ndarray) -> dict[str, float | int]:
    """Symmetric Chamfer distance between clouds a [P, 3] and b [Q, 3].

    ``a_to_b`` = mean over a of the distance to the nearest point of b (Euclidean, not squared);
    ``chamfer`` = (a_to_b + b_to_a) / 2. Also returns the point counts ``num_a``, ``num_b``.
    """
    from scipy.spatial import cKDTree

    a = np.asarray(a.detach().cpu() if isinstance(a, Tensor) else a, dtype=np.float64)
    b = np.asarray(b.detach().cpu() if isinstance(b, Tensor) else b, dtype=np.float64)
    for name, x in (("a", a), ("b", b)):
        if x.ndim != 2 or x.shape[1] != 3 or x.shape[0] == 0:
            raise ValueError(f"chamfer_distance: {name} must be a non-empty [P, 3] cloud, got {x.shape}")
        if not np.isfinite(x).all():
            raise ValueError(f"chamfer_distance: {name} holds NaN or infinite points")
    a_to_b = float(cKDTree(b).query(a)[0].mean())
    b_to_a = float(cKDTree(a).query(b)[0].mean())
    return {
        "chamfer": (a_to_b + b_to_a) / 2,
        "a_to_b": a_to_b,
        "b_to_a": b_to_a,
        "num_a": int(a.shape[0]),
        "num_b": int(b.shape[0]),
    }


def score_cloud(points: Tensor, reference: Tensor | None, object_size: float | None = None) -> dict:
    """{"num_points", and with a reference: "chamfer", "a_to_b", "b_to_a", "relative_chamfer"
    (divided by ``object_size``, default the reference's bounding-box diagonal)}."""
    score: dict = {"num_points": int(points.shape[0])}
    if reference is None or points.shape[0] == 0:
        return score
    score.update(chamfer_distance(points, reference))
    size = object_size or float((reference.max(0).values - reference.min(0).values).norm())
    score["object_size"] = size
    score["relative_chamfer"] = score["chamfer"] / size
    return score


def write_json(path: str | os.PathLike, data: dict) -> None:
    import json

    atomic_write_bytes(path, json.dumps(data, indent=2).encode())
