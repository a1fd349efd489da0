"""A tiny CO3D v2 layout written by hand for the loader and manifest tests.

Viewpoints are written with the PyTorch3D formula of docs/conventions.md §3 directly (not through
camera/), so the loader's conversion is checked against an independent writer.
"""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from camera.cameras import Cameras, intrinsics_matrix, look_at


def orbit_cameras(n: int, height: int, width: int, seed: int) -> Cameras:
    g = torch.Generator().manual_seed(seed)
    angles = torch.linspace(0, 2 * torch.pi, n + 1, dtype=torch.float64)[:-1]
    radius = 3.0 + 0.2 * torch.rand(n, generator=g, dtype=torch.float64)
    eye = torch.stack([radius * torch.cos(angles), radius * torch.sin(angles), 0.8 + 0.1 * angles.sin()], -1)
    c2w = look_at(eye, torch.zeros(3, dtype=torch.float64), torch.tensor([0.0, 0.0, 1.0], dtype=torch.float64))
    f = torch.full((n,), 1.1 * width, dtype=torch.float64)
    K = intrinsics_matrix(f, f * 1.02, width / 2 + 0.7, height / 2 - 0.4)
    return Cameras(K, c2w, height, width)


def pytorch3d_viewpoint(cameras: Cameras, i: int) -> dict:
    """docs/conventions.md §3 inverted by hand: R = (F R_w2c)^T, T = F t_w2c, f = K_f / s, p = (size/2 - c) / s."""
    flip = torch.diag(torch.tensor([-1.0, -1.0, 1.0], dtype=torch.float64))
    w2c = torch.linalg.inv(cameras.c2w[i])
    s = min(cameras.height, cameras.width) / 2
    K = cameras.K[i]
    return {
        "R": (flip @ w2c[:3, :3]).T.tolist(),
        "T": (flip @ w2c[:3, 3]).tolist(),
        "focal_length": [float(K[0, 0] / s), float(K[1, 1] / s)],
        "principal_point": [float((cameras.width / 2 - K[0, 2]) / s), float((cameras.height / 2 - K[1, 2]) / s)],
        "intrinsics_format": "ndc_isotropic",
    }


def _gz(path: Path, data) -> None:
    path.write_bytes(gzip.compress(json.dumps(data).encode()))


def write_tiny_co3d(
    root: Path,
    categories: dict[str, dict[str, int]],
    height: int = 24,
    width: int = 32,
    empty_mask_frames: tuple[int, ...] = (),
) -> dict[str, dict[str, Cameras]]:
    """categories: {category: {sequence: number of frames}}. Every frame is in fewview_dev "test"
    except frame 0 ("train"); timestamps run backwards so that the timestamp order differs from the
    frame-number order; frames in ``empty_mask_frames`` get mask mass 0. Returns the cameras."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "category_to_subset_name_list.json").write_text(json.dumps({c: ["fewview_dev"] for c in categories}))
    out: dict[str, dict[str, Cameras]] = {}
    for ci, (category, sequences) in enumerate(sorted(categories.items())):
        frames, seq_annots, split = [], [], {"train": [], "val": [], "test": []}
        out[category] = {}
        for si, (seq, n) in enumerate(sorted(sequences.items())):
            cams = orbit_cameras(n, height, width, seed=100 * ci + si)
            out[category][seq] = cams
            seq_dir = root / category / seq
            for sub in ("images", "masks", "depths", "depth_masks"):
                (seq_dir / sub).mkdir(parents=True, exist_ok=True)
            rng = np.random.default_rng(100 * ci + si)
            for i in range(n):
                name = f"frame{i + 1:06d}"
                image = rng.integers(0, 256, (height, width, 3), dtype=np.uint8)
                mask = np.zeros((height, width), np.uint8)
                if i not in empty_mask_frames:
                    mask[4 + i % 3 : 18, 6 : 20 + i % 5] = 255
                    mask[3, 6] = 120  # a soft pixel
                depth = (2.0 + np.arange(height * width, dtype=np.float32).reshape(height, width) / 400).astype(
                    np.float16
                )
                depth_mask = np.ones((height, width), np.uint8) * 255
                depth_mask[:, :3] = 0
                Image.fromarray(image).save(seq_dir / "images" / f"{name}.png")
                Image.fromarray(mask).save(seq_dir / "masks" / f"{name}.png")
                Image.fromarray(depth.view(np.uint16)).save(seq_dir / "depths" / f"{name}.png")
                Image.fromarray(depth_mask).save(seq_dir / "depth_masks" / f"{name}.png")
                rel = f"{category}/{seq}"
                frames.append(
                    {
                        "sequence_name": seq,
                        "frame_number": i,
                        "frame_timestamp": float(n - i) / 10,
                        "image": {"path": f"{rel}/images/{name}.png", "size": [height, width]},
                        "depth": {
                            "path": f"{rel}/depths/{name}.png",
                            "scale_adjustment": 0.5,
                            "mask_path": f"{rel}/depth_masks/{name}.png",
                        },
                        "mask": {"path": f"{rel}/masks/{name}.png", "mass": float(mask.sum() / 255)},
                        "viewpoint": pytorch3d_viewpoint(cams, i),
                        "meta": {"frame_type": "test_unseen" if i else "train_known"},
                    }
                )
                split["test" if i else "train"].append([seq, i, f"{rel}/images/{name}.png"])
            points = np.array([[0.1, 0.2, 0.3], [-0.5, 0.0, 0.25]], np.float32)
            _write_ply(seq_dir / "pointcloud.ply", points, np.array([[255, 0, 0], [0, 128, 255]], np.uint8))
            seq_annots.append(
                {
                    "sequence_name": seq,
                    "category": category,
                    "point_cloud": {"path": f"{category}/{seq}/pointcloud.ply", "n_points": 2},
                }
            )
        _gz(root / category / "frame_annotations.jgz", frames)
        _gz(root / category / "sequence_annotations.jgz", seq_annots)
        (root / category / "set_lists").mkdir(exist_ok=True)
        (root / category / "set_lists" / "set_lists_fewview_dev.json").write_text(json.dumps(split))
    return out


def _write_ply(path: Path, points: np.ndarray, colors: np.ndarray) -> None:
    header = (
        f"ply\nformat binary_little_endian 1.0\nelement vertex {len(points)}\n"
        "property float x\nproperty float y\nproperty float z\n"
        "property uchar red\nproperty uchar green\nproperty uchar blue\nend_header\n"
    )
    rows = np.zeros(
        len(points), dtype=[("x", "<f4"), ("y", "<f4"), ("z", "<f4"), ("r", "u1"), ("g", "u1"), ("b", "u1")]
    )
    rows["x"], rows["y"], rows["z"] = points.T
    rows["r"], rows["g"], rows["b"] = colors.T
    path.write_bytes(header.encode() + rows.tobytes())
