import shutil
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch

from camera.cameras import Cameras, intrinsics_matrix
from camera.io.colmap import ColmapInfo, find_model_dir, read_colmap, write_colmap

KAPTURE = Path(__file__).parent / "data" / "kapture_maupertuis"


def parse_text_model(folder: Path):
    """Independent reader of COLMAP text: {name: (image_id, [(x, y, point_id)])}, {point_id: xyz}."""
    lines = [ln for ln in (folder / "images.txt").read_text().splitlines() if not ln.startswith("#")]
    images = {}
    for header, keypoints in zip(lines[0::2], lines[1::2]):
        fields = header.split()
        kp = np.array(keypoints.split(), dtype=np.float64).reshape(-1, 3)
        images[fields[9]] = (int(fields[0]), kp)
    points = {}
    for ln in (folder / "points3D.txt").read_text().splitlines():
        if not ln.startswith("#") and ln.strip():
            f = ln.split()
            points[int(f[0])] = np.array(f[1:4], dtype=np.float64)
    return images, points


def test_kapture_model_loads_sorted_by_name():
    cams, info = read_colmap(KAPTURE)
    images, points = parse_text_model(KAPTURE)
    assert info.names == sorted(images) == ["00.jpg", "01.jpg", "02.jpg", "03.jpg"]
    assert info.image_ids == [images[n][0] for n in info.names]
    assert (len(cams), cams.height, cams.width) == (4, 1079, 1919)
    assert torch.all(cams.fx == 1847.53) and torch.all(cams.cx == 959.5) and torch.all(cams.cy == 539.5)
    assert info.models == {1: "SIMPLE_PINHOLE"} and info.distortion == {1: {}}
    assert info.points.shape == (1039, 3) and info.colors.dtype == torch.uint8
    assert np.allclose(info.points[info.point_ids.index(708)].numpy(), points[708])


def test_kapture_points_project_onto_their_keypoints():
    cams, info = read_colmap(KAPTURE)
    images, points = parse_text_model(KAPTURE)
    for i, name in enumerate(info.names):
        kp = images[name][1]
        kp = kp[kp[:, 2] >= 0]
        xyz = torch.tensor(np.stack([points[int(p)] for p in kp[:, 2]]))
        uv, depth = cams[i].project(xyz)
        err = (uv[0] - torch.tensor(kp[:, :2])).norm(dim=-1)
        assert torch.all(depth > 0) and err.median() < 2.0, (name, float(err.median()))


def test_kapture_projection_matches_pycolmap():
    import pycolmap

    rec = pycolmap.Reconstruction(str(KAPTURE))
    cams, info = read_colmap(KAPTURE)
    xyz = info.points[:50].numpy()
    for i, image_id in enumerate(info.image_ids):
        image = rec.images[image_id]
        pose = image.cam_from_world()
        quat = pose.rotation.quat / np.linalg.norm(pose.rotation.quat)  # the file's are rounded, not unit
        in_cam = xyz @ pycolmap.Rotation3d(quat).matrix().T + pose.translation
        expected = rec.cameras[image.camera_id].img_from_cam(in_cam)
        assert np.allclose(cams[i].project(torch.tensor(xyz))[0][0].numpy(), expected, atol=1e-8)


def test_kapture_round_trips_text_binary_text(tmp_path):
    cams, info = read_colmap(KAPTURE)
    write_colmap(tmp_path / "bin", cams, info, binary=True)
    assert (tmp_path / "bin" / "images.bin").is_file() and not (tmp_path / "bin" / "images.txt").exists()
    cams_b, info_b = read_colmap(tmp_path / "bin")
    write_colmap(tmp_path / "txt", cams_b, info_b)
    cams_t, info_t = read_colmap(tmp_path / "txt")
    for c, i in ((cams_b, info_b), (cams_t, info_t)):
        assert torch.equal(c.K, cams.K) and torch.equal(c.c2w, cams.c2w)
        assert (i.names, i.image_ids, i.camera_ids, i.models, i.point_ids) == (
            info.names,
            info.image_ids,
            info.camera_ids,
            info.models,
            info.point_ids,
        )
        assert torch.equal(i.points, info.points) and torch.equal(i.colors, info.colors)
        assert torch.equal(i.qvecs, info.qvecs) and torch.equal(i.tvecs, info.tvecs)
    assert (tmp_path / "txt" / "cameras.txt").read_text().splitlines()[
        -1
    ].split() == "1 SIMPLE_PINHOLE 1919 1079 1847.53 959.5 539.5".split()


def test_new_cameras_and_points_round_trip(tmp_path):
    from scipy.spatial.transform import Rotation

    n = 3
    c2w = torch.eye(4, dtype=torch.float64).repeat(n, 1, 1)
    c2w[:, :3, :3] = torch.tensor(Rotation.random(n, random_state=0).as_matrix())
    c2w[:, :3, 3] = torch.randn(n, 3, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    K = intrinsics_matrix(
        torch.tensor([60.0, 60.0, 70.5], dtype=torch.float64),
        torch.tensor([60.0, 60.0, 71.0], dtype=torch.float64),
        32.0,
        24.0,
    )
    cams = Cameras(K, c2w, 48, 64)
    points = torch.randn(5, 3, dtype=torch.float64)
    colors = torch.arange(15, dtype=torch.uint8).reshape(5, 3)
    write_colmap(tmp_path / "m", cams, points=points, colors=colors)
    back, info = read_colmap(tmp_path / "m")
    assert info.names == ["00000.png", "00001.png", "00002.png"]
    assert info.models == {1: "SIMPLE_PINHOLE", 2: "PINHOLE"} and info.camera_ids == [1, 1, 2]
    assert torch.allclose(back.c2w, cams.c2w, atol=1e-12) and torch.equal(back.K, cams.K)
    assert torch.equal(info.points, points) and torch.equal(info.colors, colors)


def test_distortion_is_reported_and_kept(tmp_path):
    model = tmp_path / "radial"
    shutil.copytree(KAPTURE, model)
    (model / "cameras.txt").write_text("1 SIMPLE_RADIAL 1919 1079 1847.53 959.5 539.5 0.0125\n")
    with pytest.warns(UserWarning, match=r"COLMAP camera 1 of .*radial \(SIMPLE_RADIAL\): distortion k=0.0125"):
        cams, info = read_colmap(model)
    assert info.distortion == {1: {"k": 0.0125}}
    write_colmap(tmp_path / "out", cams, info)
    fields = (tmp_path / "out" / "cameras.txt").read_text().splitlines()[-1].split()
    assert fields[1] == "SIMPLE_RADIAL" and float(fields[7]) == 0.0125
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        read_colmap(KAPTURE)


def test_bad_models_are_rejected(tmp_path):
    with pytest.raises(FileNotFoundError, match="no such COLMAP model folder"):
        read_colmap(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="not a COLMAP model: expected cameras, images and points3D"):
        read_colmap(tmp_path / "empty")
    cut = tmp_path / "cut"
    shutil.copytree(KAPTURE, cut)
    (cut / "images.txt").write_text((KAPTURE / "images.txt").read_text()[:3000])
    with pytest.raises(ValueError, match="cut: pycolmap cannot read this COLMAP model"):
        read_colmap(cut)
    (cut / "images.txt").write_text("# no images\n")
    (cut / "points3D.txt").write_text("# no points\n")
    with pytest.raises(ValueError, match="zero images"):
        read_colmap(cut)
    assert find_model_dir(KAPTURE / "cameras.txt") == KAPTURE


def test_writer_rejects_bad_points(tmp_path):
    cams = Cameras.from_fov(torch.eye(4, dtype=torch.float64)[None], 60.0, 8, 8)
    with pytest.raises(ValueError, match=r"points must have shape \[P, 3\]"):
        write_colmap(tmp_path / "m", cams, points=torch.zeros(4, 2))
    with pytest.raises(ValueError, match="NaN or inf"):
        write_colmap(tmp_path / "m", cams, points=torch.full((1, 3), float("nan")))
    with pytest.raises(ValueError, match="names and ids must be unique"):
        write_colmap(tmp_path / "m", Cameras.cat([cams, cams]), ColmapInfo(names=["a.png", "a.png"]))
