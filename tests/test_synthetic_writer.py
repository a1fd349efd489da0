"""Synthetic scene -> written CO3D v2 layout, read back with gzip/json/PIL and camera/convert.py only."""

import gzip
import json

import numpy as np
import pytest
import torch
from PIL import Image

from camera.convert import pytorch3d_to_cameras
from nvs.data.synthetic.render import render
from nvs.data.synthetic.scene import make_scene
from nvs.data.synthetic.trajectories import capture_cameras
from nvs.data.synthetic.writer import SUBSETS, split_sequences, write_co3d_world

KW = dict(
    categories=["snowman", "tower"],
    sequences_per_category=2,
    frames=8,
    size=48,
    seed=3,
    num_points=400,
    show_progress=False,
)


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    return write_co3d_world(tmp_path_factory.mktemp("w") / "world", **KW)


def _frames(root, category):
    with gzip.open(root / category / "frame_annotations.jgz", "rt") as f:
        return json.load(f)


def _read_ply(path):
    data = path.read_bytes()
    head, body = data.split(b"end_header\n", 1)
    lines = head.decode().splitlines()
    assert lines[:2] == ["ply", "format binary_little_endian 1.0"]
    n = int(lines[2].split()[-1])
    rows = np.frombuffer(body, dtype=[("x", "<f4"), ("y", "<f4"), ("z", "<f4"), ("r", "u1"), ("g", "u1"), ("b", "u1")])
    assert len(rows) == n
    return np.stack([rows["x"], rows["y"], rows["z"]], -1).astype(np.float64)


def _sequence(frames, name):
    rows = sorted((f for f in frames if f["sequence_name"] == name), key=lambda f: f["frame_number"])
    vp = lambda k: torch.tensor([f["viewpoint"][k] for f in rows], dtype=torch.float64)  # noqa: E731
    assert {f["viewpoint"]["intrinsics_format"] for f in rows} == {"ndc_isotropic"}
    h, w = rows[0]["image"]["size"]
    return rows, pytorch3d_to_cameras(
        vp("R"), vp("T"), vp("focal_length"), vp("principal_point"), h, w, "ndc_isotropic"
    )


def test_images_masks_depths_match_the_renderer(world):
    frames = _frames(world, "snowman")
    name = "101_03001_00001"  # sequence 1 of seed 3: scene seed 3 * 1000 + 1
    rows, _ = _sequence(frames, name)
    scene = make_scene("snowman", 3001)
    out = render(scene, capture_cameras(scene, 8, 48, 48, 3001))
    for row in rows:
        i = row["frame_number"]
        image = np.asarray(Image.open(world / row["image"]["path"]), dtype=np.float64) / 255
        mse = ((image - out.rgb[i].permute(1, 2, 0).numpy()) ** 2).mean()
        assert 10 * np.log10(1 / mse) > 30
        mask = np.asarray(Image.open(world / row["mask"]["path"]), dtype=np.float64) / 255
        assert np.abs(mask - out.mask[i, 0].numpy()).max() <= 0.5 / 255 + 1e-6
        assert row["mask"]["mass"] == pytest.approx(float(mask.sum()), rel=1e-6)
        raw = np.asarray(Image.open(world / row["depth"]["path"])).astype(np.uint16)
        depth = raw.view(np.float16).astype(np.float64) * row["depth"]["scale_adjustment"]
        np.testing.assert_allclose(depth, out.depth[i, 0].numpy(), rtol=1e-3)
        assert np.asarray(Image.open(world / row["depth"]["mask_path"])).min() == 255


def test_stored_viewpoints_reproject_the_point_cloud_like_the_renderer_cameras(world):
    frames = _frames(world, "tower")
    annotations = json.loads(gzip.decompress((world / "tower" / "sequence_annotations.jgz").read_bytes()))
    for ann in annotations:
        name = ann["sequence_name"]
        _, stored = _sequence(frames, name)
        scene_seed = int(name.split("_")[1])
        truth = capture_cameras(make_scene("tower", scene_seed), 8, 48, 48, scene_seed)
        points = torch.from_numpy(_read_ply(world / ann["point_cloud"]["path"]))
        assert len(points) == ann["point_cloud"]["n_points"] == 400
        uv_stored, z_stored = stored.project(points)
        uv_truth, z_truth = truth.project(points)
        assert (z_truth > 0).all()
        assert (uv_stored - uv_truth).abs().max() < 0.01
        inside = ((uv_truth >= 0) & (uv_truth <= 48)).all(-1)
        assert inside.float().mean() > 0.9  # the object is in view


def test_set_lists_eval_batches_and_subsets(world):
    subsets = json.loads((world / "category_to_subset_name_list.json").read_text())
    assert subsets == {"snowman": list(SUBSETS), "tower": list(SUBSETS)}
    frames = _frames(world, "snowman")
    paths = {(f["sequence_name"], f["frame_number"]): f["image"]["path"] for f in frames}
    splits = split_sequences(sorted({f["sequence_name"] for f in frames}))
    for subset in SUBSETS:
        lists = json.loads((world / "snowman" / "set_lists" / f"set_lists_{subset}.json").read_text())
        assert set(lists) == {"train", "val", "test"}
        for rows in lists.values():
            for seq, number, path in rows:
                assert paths[(seq, number)] == path and (world / path).is_file()
        if subset != "fewview_train":
            batches = json.loads((world / "snowman" / "eval_batches" / f"eval_batches_{subset}.json").read_text())
            assert batches and all(len({r[0] for r in b}) == 1 and list(b[0]) in lists["test"] for b in batches)
    dev = json.loads((world / "snowman" / "set_lists" / "set_lists_fewview_dev.json").read_text())
    assert {r[0] for r in dev["test"]} == set(splits["dev"])
    assert {r[0] for r in dev["train"]} == set(splits["train"])
    types = {f["meta"]["frame_type"] for f in frames}
    assert types == {"train_known", "test_known", "test_unseen"}
    assert (world / "contact_sheets" / "snowman" / "101_03000_00000.png").is_file()


def test_two_writes_are_byte_identical(tmp_path):
    small = dict(KW, categories=["rocket"], sequences_per_category=1, frames=6, size=24, num_points=100)
    first, again = write_co3d_world(tmp_path / "a", **small), write_co3d_world(tmp_path / "b", **small)
    files = sorted(p.relative_to(first) for p in first.rglob("*") if p.is_file())
    # 4 files per frame, 2 annotation files, 5 eval batches, 6 set lists, 2 root files, the ply, the contact sheet
    assert len(files) == 4 * 6 + 2 + 5 + 6 + 2 + 1 + 1
    assert files == sorted(p.relative_to(again) for p in again.rglob("*") if p.is_file())
    for rel in files:
        assert (first / rel).read_bytes() == (again / rel).read_bytes(), rel


def test_refuses_a_non_empty_out_and_bad_arguments(world, tmp_path, capsys):
    from nvs.cli import main

    with pytest.raises(FileExistsError, match="--overwrite"):
        write_co3d_world(world, **KW)
    assert main(["data", "synth", "--out", str(world), "--frames", "2", "--size", "16"]) == 2
    assert "--overwrite" in capsys.readouterr().err
    with pytest.raises(ValueError, match="unknown"):
        write_co3d_world(tmp_path / "x", categories=["dragon"])
    assert not (tmp_path / "x").exists()


def test_cli_writes_a_world_and_overwrite_replaces_it(tmp_path):
    from nvs.commands.data import main

    out = tmp_path / "cli"
    args = [
        "synth",
        "--out",
        str(out),
        "--categories",
        "1",
        "--sequences",
        "1",
        "--frames",
        "3",
        "--size",
        "16",
        "--points",
        "50",
    ]
    assert main(args) == 0
    assert (out / "snowman" / "frame_annotations.jgz").is_file()
    assert main(args + ["--categories", "table", "--overwrite"]) == 0
    assert (out / "table").is_dir() and not (out / "snowman").exists()
    assert not any(p.name.startswith(".") for p in tmp_path.iterdir())


def test_split_rule():
    assert split_sequences(["a"]) == {"train": ["a"], "dev": ["a"], "test": ["a"]}
    names = [f"s{i}" for i in range(10)]
    s = split_sequences(names)
    assert s["test"] == ["s8", "s9"] and s["dev"] == ["s6", "s7"] and len(s["train"]) == 6
