import gzip
import importlib.util

import numpy as np
import pytest
import torch
from PIL import Image

from nvs.data.co3d import Co3dDataset, read_ply_points
from nvs.data.crop import sparsefusion_crop
from tests.co3d_layout import write_tiny_co3d

H, W = 24, 32


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    root = tmp_path_factory.mktemp("co3d")
    cams = write_tiny_co3d(root, {"apple": {"seq_b": 5, "seq_a": 4}, "vase": {"seq_c": 3}}, H, W)
    return root, cams


def test_index(tiny):
    root, _ = tiny
    ds = Co3dDataset(root)
    assert ds.categories == ["apple", "vase"]
    assert ds.subsets("apple") == ["fewview_dev"]
    assert ds.sequences("apple") == ["seq_a", "seq_b"]
    assert [f["frame_number"] for f in ds.frames("apple")["seq_b"]] == [0, 1, 2, 3, 4]
    assert ds.frame_type(ds.frames("apple")["seq_b"][1]) == "test_unseen"
    test = ds.set_list("apple")["test"]
    assert ("seq_a", 3, "apple/seq_a/images/frame000004.png") in test and len(test) == 3 + 4
    assert ds.category_of("seq_c") == "vase"
    assert Co3dDataset(root, category="vase").categories == ["vase"]


def test_views_pixels_cameras_masks_depth(tiny):
    root, cams = tiny
    views = Co3dDataset(root).load_views("seq_b", [3, 1])
    assert views.images.shape == (2, 3, H, W) and views.frame_ids == [3, 1] and views.category == "apple"
    png = np.array(Image.open(root / "apple/seq_b/images/frame000004.png"))
    assert torch.equal((views.images[0].permute(1, 2, 0) * 255).round().byte(), torch.from_numpy(png))
    assert views.masks[0, 0, 3, 6].item() == pytest.approx(120 / 255)
    # depth: float16 bits x scale_adjustment 0.5, zero where depth_masks is 0
    expected = (2.0 + np.arange(H * W, dtype=np.float32).reshape(H, W) / 400).astype(np.float16).astype(
        np.float32
    ) * 0.5
    expected[:, :3] = 0
    assert torch.equal(views.depths[1, 0], torch.from_numpy(expected))
    # cameras: points project where the writer's cameras put them
    points = torch.randn(50, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(0)) * 0.5
    ours, _ = views.cameras.project(points)
    ref, _ = cams["apple"]["seq_b"][[3, 1]].project(points)
    assert (ours - ref).abs().max() < 1e-6


def test_background_and_resize(tiny):
    root, _ = tiny
    ds = Co3dDataset(root)
    raw = ds.load_views("seq_a", [2])
    black = ds.load_views("seq_a", [2], background="black")
    white = ds.load_views("seq_a", [2], background="white")
    assert torch.allclose(black.images, raw.images * raw.masks)
    assert torch.allclose(white.images, raw.images * raw.masks + 1 - raw.masks)
    small = ds.load_views("seq_a", [2], size=16)
    assert small.images.shape == (1, 3, 16, 16)
    assert small.valid_region[0, 0, :12].all() and not small.valid_region[0, 0, 12:].any()  # 24x32 -> 12x16
    assert small.cameras.fx.item() == pytest.approx(raw.cameras.fx.item() / 2)


def test_sparsefusion_crop_keeps_projection(tiny):
    root, cams = tiny
    views = Co3dDataset(root).load_views("seq_b", [0, 2], size=20, crop="sparsefusion", background="black")
    assert views.images.shape == (2, 3, 20, 20) and views.valid_region is not None
    assert torch.all(views.images * (1 - views.valid_region) == 0)
    full = Co3dDataset(root).load_views("seq_b", [0, 2])
    images, masks, _, valid, cameras = sparsefusion_crop(full.images, full.masks, full.cameras, 20)
    assert torch.equal(views.cameras.K, cameras.K) and torch.equal(views.valid_region, valid)
    assert torch.allclose(views.images, images * masks) and torch.equal(views.masks, masks)


def test_pointcloud(tiny):
    root, _ = tiny
    points, colors = Co3dDataset(root).load_pointcloud("seq_c")
    assert torch.allclose(points, torch.tensor([[0.1, 0.2, 0.3], [-0.5, 0.0, 0.25]]))
    assert torch.allclose(colors[1], torch.tensor([0, 128 / 255, 1]))


@pytest.mark.skipif(
    importlib.util.find_spec("open3d") is None, reason="open3d not installed: ascii PLY cross-check skipped"
)
def test_ply_reader_matches_open3d(tmp_path):
    import open3d as o3d

    pcd = o3d.geometry.PointCloud()
    pts = np.random.default_rng(0).normal(size=(7, 3))
    pcd.points = o3d.utility.Vector3dVector(pts)
    pcd.colors = o3d.utility.Vector3dVector(np.random.default_rng(1).random((7, 3)))
    for ascii_ in (True, False):
        path = tmp_path / f"p{ascii_}.ply"
        o3d.io.write_point_cloud(str(path), pcd, write_ascii=ascii_)
        points, colors = read_ply_points(path)
        assert np.allclose(points.numpy(), pts, atol=1e-6)
        assert colors.shape == (7, 3)


def test_missing_and_corrupt_annotations_name_the_file(tmp_path):
    root = tmp_path / "co3d"
    write_tiny_co3d(root, {"apple": {"s": 2}}, 8, 8)
    (root / "apple" / "frame_annotations.jgz").write_bytes(b"\x1f\x8b garbage")
    with pytest.raises(ValueError, match="frame_annotations.jgz"):
        Co3dDataset(root, "apple").frames("apple")
    (root / "apple" / "frame_annotations.jgz").write_bytes(gzip.compress(b'[{"sequence_name": '))
    with pytest.raises(ValueError, match="frame_annotations.jgz"):
        Co3dDataset(root, "apple").frames("apple")
    (root / "apple" / "frame_annotations.jgz").unlink()
    with pytest.raises(FileNotFoundError, match="frame_annotations.jgz"):
        Co3dDataset(root, "apple").frames("apple")
    (root / "apple" / "set_lists" / "set_lists_fewview_dev.json").write_text("{not json")
    with pytest.raises(ValueError, match="set_lists_fewview_dev.json"):
        Co3dDataset(root, "apple").set_list("apple")
    with pytest.raises(FileNotFoundError, match="set_lists_fewview_test.json"):
        Co3dDataset(root, "apple").set_list("apple", "fewview_test")


def test_bad_arguments(tiny):
    root, _ = tiny
    ds = Co3dDataset(root)
    with pytest.raises(KeyError, match="no frames"):
        ds.load_views("seq_a", [99])
    with pytest.raises(KeyError, match="none of the categories"):
        ds.load_views("nope", [0])
    with pytest.raises(ValueError, match="crop must be"):
        ds.load_views("seq_a", [0], crop="square")
    with pytest.raises(FileNotFoundError, match="no such category"):
        Co3dDataset(root, category="car")


@pytest.fixture(scope="module")
def synthetic_world(tmp_path_factory):
    from nvs.data.synthetic.writer import write_co3d_world

    root = tmp_path_factory.mktemp("synth") / "world"
    write_co3d_world(
        root,
        categories=1,
        sequences_per_category=1,
        frames=4,
        size=32,
        seed=3,
        supersample=1,
        num_points=400,
        show_progress=False,
    )
    return root


def test_synthetic_world_round_trip(synthetic_world):
    from nvs.data.synthetic import capture_cameras, make_scene, render

    ds = Co3dDataset(synthetic_world)
    category = ds.categories[0]
    sequence = ds.sequences(category)[0]
    views = ds.load_views(sequence)
    scene_seed = 3 * 1000  # the writer's seed of sequence 0
    scene = make_scene(category, scene_seed)
    cams = capture_cameras(scene, 4, 32, 32, scene_seed)
    truth = render(scene, cams, supersample=1)
    err = (views.images - truth.rgb).abs()
    assert err.mean() < 0.02 and err.max() < 0.35  # JPEG at quality 95
    assert (views.masks - truth.mask).abs().max() <= 0.5 / 255 + 1e-6
    inside = truth.depth > 0
    assert torch.allclose(views.depths[inside], truth.depth[inside], rtol=1e-3)
    points, colors = ds.load_pointcloud(sequence)
    assert points.shape == (400, 3) and colors.shape == (400, 3)
    ours, z = views.cameras.project(points.double())
    ref, _ = cams.to(dtype=torch.float64).project(points.double())
    assert (z > 0).all() and (ours - ref).abs().max() < 0.01
