"""Write synthetic scenes to disk in the CO3D v2 layout (docs/conventions.md §8), readable by any CO3D v2 reader.

Layout under ``out_dir`` (paths inside the annotations are relative to ``out_dir``)::

    category_to_subset_name_list.json   {category: [subset, ...]}
    synthetic_world.json                the generation parameters
    contact_sheets/<category>/<sequence>.png
    <category>/frame_annotations.jgz, sequence_annotations.jgz
    <category>/set_lists/set_lists_<subset>.json     {"train"|"val"|"test": [[sequence, frame_number, image_path]]}
    <category>/eval_batches/eval_batches_<subset>.json   [[target row, known row, ...], ...]
    <category>/<sequence>/images/frame000001.jpg, masks/frame000001.png,
        depths/frame000001.jpg.geometric.png, depth_masks/frame000001.png, pointcloud.ply

Frame numbers start at 0 (file ``frame000001``); timestamps are frame_number / 30 s. Viewpoints are
PyTorch3D ``ndc_isotropic`` cameras (:func:`camera.convert.cameras_to_pytorch3d`). Depth PNGs hold
float16 bit patterns in 16-bit pixels (depth = value x ``scale_adjustment``), as CO3D's.

Sequence splits per category (sorted names): with 3 or more sequences the last fifth (at least one)
is test, the fifth before it dev, the rest train; with 2, the second is both dev and test; with 1,
it is train, dev and test at once (a tiny world cannot hold disjoint splits). Subsets:
``fewview_{train,dev,test}`` list all frames of train sequences under "train" and all frames of
dev / test sequences under "test"; ``manyview_{dev_0,dev_1,test_0}`` hold one sequence whose
every fifth frame (frame_number % 5 == 2) is "test" and the others "train". Frames of dev / test
sequences have ``meta.frame_type`` ``test_unseen`` (frame_number % 5 == 2) or ``test_known``;
frames of train sequences ``train_known``. Eval batches: one per unseen frame of a subset's
"test" list, with two known frames of the same sequence drawn from the seed.
"""

from __future__ import annotations

import gzip
import json
import os
import shutil
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from camera.io.co3d import cameras_to_co3d_frames, write_co3d_frame_annotations
from nvs.data.synthetic.pointcloud import sample_surface
from nvs.data.synthetic.render import render
from nvs.data.synthetic.scene import CATEGORIES, make_scene
from nvs.data.synthetic.trajectories import capture_cameras
from nvs.writers import contact_sheet, frame_rows

SUBSETS = ("fewview_train", "fewview_dev", "fewview_test", "manyview_dev_0", "manyview_dev_1", "manyview_test_0")
FPS = 30.0
JPEG_QUALITY = 95
RENDER_BATCH = 8


def sequence_name(category_index: int, scene_seed: int, sequence_index: int) -> str:
    """CO3D-like ``<a>_<b>_<c>`` name, e.g. ``101_00042_00000``."""
    return f"{101 + category_index}_{scene_seed:05d}_{sequence_index:05d}"


def split_sequences(names: Sequence[str]) -> dict[str, list[str]]:
    """{"train", "dev", "test"} -> sequence names (see the module docstring for the rule)."""
    names = sorted(names)
    n = len(names)
    if n == 1:
        return {"train": names, "dev": names, "test": names}
    if n == 2:
        return {"train": names[:1], "dev": names[1:], "test": names[1:]}
    n_held = max(1, n // 5)
    return {"train": names[: n - 2 * n_held], "dev": names[n - 2 * n_held : n - n_held], "test": names[n - n_held :]}


def _is_unseen(frame_number: int) -> bool:
    return frame_number % 5 == 2


def _write_bytes(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)


def _png(array: np.ndarray) -> bytes:
    from io import BytesIO

    buf = BytesIO()
    Image.fromarray(array).save(buf, format="PNG")
    return buf.getvalue()


def _jpeg(array: np.ndarray) -> bytes:
    from io import BytesIO

    buf = BytesIO()
    Image.fromarray(array).save(buf, format="JPEG", quality=JPEG_QUALITY, subsampling=0)
    return buf.getvalue()


def encode_depth(depth: np.ndarray, scale_adjustment: float = 1.0) -> np.ndarray:
    """Depth [H, W] float -> uint16 [H, W] holding the float16 bits of depth / scale_adjustment (CO3D's encoding)."""
    return (depth / scale_adjustment).astype(np.float16).view(np.uint16)


def write_ply(path: Path, points: np.ndarray, colors: np.ndarray) -> None:
    """Binary little-endian PLY, float x, y, z and uchar red, green, blue: points [P, 3], colors [P, 3] in [0, 1]."""
    header = (
        "ply\nformat binary_little_endian 1.0\n"
        f"element vertex {len(points)}\n"
        "property float x\nproperty float y\nproperty float z\n"
        "property uchar red\nproperty uchar green\nproperty uchar blue\nend_header\n"
    ).encode("ascii")
    rows = np.zeros(
        len(points), dtype=[("x", "<f4"), ("y", "<f4"), ("z", "<f4"), ("red", "u1"), ("green", "u1"), ("blue", "u1")]
    )
    for i, axis in enumerate("xyz"):
        rows[axis] = points[:, i]
    for i, channel in enumerate(("red", "green", "blue")):
        rows[channel] = np.round(colors[:, i] * 255).astype(np.uint8)
    _write_bytes(path, header + rows.tobytes())


def _json(path: Path, data) -> None:
    _write_bytes(path, json.dumps(data).encode("utf-8"))


def _write_sequence(
    root: Path,
    category: str,
    category_index: int,
    sequence_index: int,
    seed: int,
    frames: int,
    size: int,
    supersample: int,
    num_points: int,
    progress,
) -> tuple[list[dict], dict]:
    scene_seed = seed * 1000 + sequence_index
    name = sequence_name(category_index, scene_seed, sequence_index)
    scene = make_scene(category, scene_seed)
    cameras = capture_cameras(scene, frames, size, size, scene_seed)
    seq_dir = root / category / name
    base_frames, images, masks = [], [], []
    for start in range(0, frames, RENDER_BATCH):
        out = render(scene, cameras[start : start + RENDER_BATCH], supersample)
        for j in range(len(out.rgb)):
            i = start + j
            stem = f"frame{i + 1:06d}"
            rgb = (out.rgb[j].permute(1, 2, 0).cpu().numpy() * 255).round().astype(np.uint8)
            mask = (out.mask[j, 0].cpu().numpy() * 255).round().astype(np.uint8)
            depth = out.depth[j, 0].cpu().numpy()
            depth_mask = ((depth > 0) & np.isfinite(depth)).astype(np.uint8) * 255
            _write_bytes(seq_dir / "images" / f"{stem}.jpg", _jpeg(rgb))
            _write_bytes(seq_dir / "masks" / f"{stem}.png", _png(mask))
            _write_bytes(
                seq_dir / "depths" / f"{stem}.jpg.geometric.png", _png(encode_depth(np.where(depth_mask > 0, depth, 0)))
            )
            _write_bytes(seq_dir / "depth_masks" / f"{stem}.png", _png(depth_mask))
            ys, xs = np.nonzero(mask > 0.4 * 255)
            box = None
            if len(xs):
                box = [int(xs.min()), int(ys.min()), int(xs.max() - xs.min() + 1), int(ys.max() - ys.min() + 1)]
            rel = f"{category}/{name}"
            base_frames.append(
                {
                    "sequence_name": name,
                    "frame_number": i,
                    "frame_timestamp": round(i / FPS, 6),
                    "image": {"path": f"{rel}/images/{stem}.jpg", "size": [size, size]},
                    "depth": {
                        "path": f"{rel}/depths/{stem}.jpg.geometric.png",
                        "scale_adjustment": 1.0,
                        "mask_path": f"{rel}/depth_masks/{stem}.png",
                    },
                    "mask": {
                        "path": f"{rel}/masks/{stem}.png",
                        "mass": float(mask.astype(np.float64).sum() / 255),
                        "bounding_box_xywh": box,
                    },
                    "meta": {},
                }
            )
        images.append(out.rgb.cpu())
        masks.append(out.mask.cpu())
        progress.update(len(out.rgb))
    points, colors = sample_surface(scene, num_points, scene_seed)
    write_ply(seq_dir / "pointcloud.ply", points.numpy(), colors.numpy())
    sheet = contact_sheet(frame_rows(torch.cat(images), masks=torch.cat(masks), max_frames=16), numbered=False)
    _write_bytes(root / "contact_sheets" / category / f"{name}.png", _png(sheet))
    annotation = {
        "sequence_name": name,
        "category": category,
        "video": None,
        "point_cloud": {"path": f"{category}/{name}/pointcloud.ply", "quality_score": 1.0, "n_points": num_points},
        "viewpoint_quality_score": 1.0,
    }
    return cameras_to_co3d_frames(cameras, name, "ndc_isotropic", frames=base_frames), annotation


def _rows_by_sequence(frames: list[dict]) -> dict[str, list[list]]:
    """sequence -> its set-list rows [sequence, frame_number, image_path], in frame order."""
    by_sequence: dict[str, list[list]] = {}
    for f in frames:
        row = [f["sequence_name"], f["frame_number"], f["image"]["path"]]
        by_sequence.setdefault(f["sequence_name"], []).append(row)
    return by_sequence


def _set_lists(frames: list[dict], splits: dict[str, list[str]]) -> dict[str, dict[str, list]]:
    by_sequence = _rows_by_sequence(frames)
    rows = lambda names: [r for n in names for r in by_sequence[n]]  # noqa: E731
    lists = {
        f"fewview_{split}": {
            "train": rows(splits["train"]),
            "val": [],
            "test": [] if split == "train" else rows(splits[split]),
        }
        for split in ("train", "dev", "test")
    }
    for subset, names, index in (
        ("manyview_dev_0", splits["dev"], 0),
        ("manyview_dev_1", splits["dev"], 1),
        ("manyview_test_0", splits["test"], 0),
    ):
        seq = by_sequence[names[index % len(names)]]
        lists[subset] = {
            "train": [r for r in seq if not _is_unseen(r[1])],
            "val": [],
            "test": [r for r in seq if _is_unseen(r[1])],
        }
    return lists


def _eval_batches(set_list: dict[str, list], by_sequence: dict[str, list[list]], rng: np.random.Generator) -> list:
    batches = []
    for row in set_list["test"]:
        if not _is_unseen(row[1]):
            continue
        known = [r for r in by_sequence[row[0]] if not _is_unseen(r[1])]
        pick = rng.choice(len(known), size=min(2, len(known)), replace=False) if known else []
        batches.append([row] + [known[int(i)] for i in sorted(pick)])
    return batches


def _write_category(
    root: Path,
    category: str,
    category_index: int,
    sequences: int,
    seed: int,
    frames: int,
    size: int,
    supersample: int,
    num_points: int,
    progress,
) -> None:
    all_frames, annotations = [], []
    for s in range(sequences):
        seq_frames, annotation = _write_sequence(
            root, category, category_index, s, seed, frames, size, supersample, num_points, progress
        )
        all_frames += seq_frames
        annotations.append(annotation)
    splits = split_sequences([a["sequence_name"] for a in annotations])
    held_out = set(splits["dev"]) | set(splits["test"])
    for f in all_frames:
        held = f["sequence_name"] in held_out
        held_type = "test_unseen" if _is_unseen(f["frame_number"]) else "test_known"
        f["meta"]["frame_type"] = held_type if held else "train_known"
    cat_dir = root / category
    write_co3d_frame_annotations(cat_dir / "frame_annotations.jgz", all_frames)
    _write_bytes(cat_dir / "sequence_annotations.jgz", gzip.compress(json.dumps(annotations).encode("utf-8"), mtime=0))
    by_sequence = _rows_by_sequence(all_frames)
    rng = np.random.default_rng(seed * 1000 + category_index)
    for subset, lists in _set_lists(all_frames, splits).items():
        _json(cat_dir / "set_lists" / f"set_lists_{subset}.json", lists)
        if subset != "fewview_train":
            _json(cat_dir / "eval_batches" / f"eval_batches_{subset}.json", _eval_batches(lists, by_sequence, rng))


def resolve_categories(categories: int | Sequence[str]) -> list[str]:
    """A count K (the first K of :data:`CATEGORIES`) or category names -> names, checked."""
    if isinstance(categories, int):
        if not 1 <= categories <= len(CATEGORIES):
            raise ValueError(
                f"categories: the synthetic world has {len(CATEGORIES)} categories {CATEGORIES}; "
                f"ask for 1 to {len(CATEGORIES)}, got {categories}"
            )
        return list(CATEGORIES[:categories])
    unknown = [c for c in categories if c not in CATEGORIES]
    if unknown or not categories:
        raise ValueError(f"categories: unknown {unknown or 'empty list'}; choose from {CATEGORIES}")
    return list(dict.fromkeys(categories))


def _process_alive(pid: str) -> bool:
    """Whether process ``pid`` (this machine) still runs; a non-number counts as alive (left alone)."""
    if not pid.isdigit():
        return True
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def write_co3d_world(
    out_dir: str | os.PathLike,
    categories: int | Sequence[str] = 2,
    sequences_per_category: int = 2,
    frames: int = 50,
    size: int = 256,
    seed: int = 0,
    supersample: int = 2,
    num_points: int = 20000,
    overwrite: bool = False,
    show_progress: bool = True,
) -> Path:
    """Render and write a synthetic world in the CO3D v2 layout; returns the root.

    Byte-identical for the same arguments (on the same torch build and thread count). Written into a
    temporary sibling folder and renamed into place, so ``out_dir`` is either complete or untouched.
    """
    from tqdm.auto import tqdm

    names = resolve_categories(categories)
    for label, value, lo in (
        ("sequences_per_category", sequences_per_category, 1),
        ("frames", frames, 1),
        ("size", size, 8),
        ("supersample", supersample, 1),
        ("num_points", num_points, 1),
    ):
        if not (isinstance(value, int) and value >= lo):
            raise ValueError(f"write_co3d_world: {label} must be an integer >= {lo}, got {value!r}")
    out = Path(out_dir)
    if out.exists() and (not out.is_dir() or any(out.iterdir())) and not overwrite:
        raise FileExistsError(f"{out} exists and is not empty; choose another --out or pass --overwrite to replace it")
    out.parent.mkdir(parents=True, exist_ok=True)
    for stale in out.parent.glob(f".{out.name}.partial-*"):  # left by a killed run: restart cleanly
        if not _process_alive(stale.name.rsplit("-", 1)[-1]):
            shutil.rmtree(stale, ignore_errors=True)
    tmp = out.parent / f".{out.name}.partial-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    try:
        with tqdm(
            total=len(names) * sequences_per_category * frames,
            unit="frame",
            desc="nvs data synth",
            disable=not show_progress,
        ) as progress:
            for category in names:
                _write_category(
                    tmp,
                    category,
                    CATEGORIES.index(category),
                    sequences_per_category,
                    seed,
                    frames,
                    size,
                    supersample,
                    num_points,
                    progress,
                )
        _json(tmp / "category_to_subset_name_list.json", {c: list(SUBSETS) for c in names})
        _json(
            tmp / "synthetic_world.json",
            {
                "categories": names,
                "sequences_per_category": sequences_per_category,
                "frames": frames,
                "size": size,
                "seed": seed,
                "supersample": supersample,
                "num_points": num_points,
                "jpeg_quality": JPEG_QUALITY,
            },
        )
        old = out.parent / f".{out.name}.old-{os.getpid()}"
        if out.exists():
            out.rename(old)
        tmp.rename(out)
        shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out
