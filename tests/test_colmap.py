import math
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

sys.path.insert(0, str(Path(__file__).parent))
from recon_scenes import one_thread, ring_cameras, sphere_views  # noqa: E402,F401

from recon.colmap import chamfer_distance, run_colmap, score_cloud, umeyama  # noqa: E402
from recon.ply import load_point_cloud_ply  # noqa: E402


def test_known_pose_triangulation_lands_on_the_sphere(tmp_path):
    cams = ring_cameras(8, 256, distance=3.0, elevations_deg=(0.0, 20.0), span_deg=120.0)
    views = sphere_views(cams, radius=0.6)
    result = run_colmap(views.images, cams, tmp_path)
    assert result.num_registered == 8 and result.points.shape[0] >= 20
    radius = result.points.norm(dim=-1)
    assert float((radius - 0.6).abs().median()) < 0.01
    assert (result.model_dir / "points3D.bin").is_file()
    assert torch.allclose(load_point_cloud_ply(result.ply_path), result.points.float().double())
    gt = (
        torch.nn.functional.normalize(
            torch.randn(40000, 3, generator=torch.Generator().manual_seed(0), dtype=torch.float64), dim=-1
        )
        * 0.6
    )
    score = score_cloud(result.points, gt)
    assert score["num_points"] == result.points.shape[0] and score["a_to_b"] < 0.02
    assert score["object_size"] == pytest.approx(1.2 * math.sqrt(3), rel=0.05)


def test_umeyama_recovers_a_similarity():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(20, 3, generator=g, dtype=torch.float64)
    q, _ = torch.linalg.qr(torch.randn(3, 3, generator=g, dtype=torch.float64))
    rot = q * torch.sign(torch.det(q))
    y = 2.5 * x @ rot.T + torch.tensor([1.0, -2.0, 0.5], dtype=torch.float64)
    s, r, t = umeyama(x, y)
    assert s == pytest.approx(2.5) and torch.allclose(r, rot, atol=1e-9)
    assert torch.allclose(t, torch.tensor([1.0, -2.0, 0.5], dtype=torch.float64), atol=1e-9)


def test_bad_input_is_refused(tmp_path):
    cams = ring_cameras(2, 16)
    with pytest.raises(ValueError, match="one per camera"):
        run_colmap(torch.zeros(3, 3, 16, 16), cams, tmp_path)
    with pytest.raises(ValueError, match="matcher"):
        run_colmap(torch.zeros(2, 3, 16, 16), cams, tmp_path, matcher="vocab")


def test_chamfer_against_brute_force():
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(50, 3)), rng.normal(size=(70, 3))
    d = np.linalg.norm(a[:, None] - b[None], axis=-1)
    out = chamfer_distance(torch.from_numpy(a), b)
    assert out["a_to_b"] == pytest.approx(d.min(1).mean())
    assert out["b_to_a"] == pytest.approx(d.min(0).mean())
    assert out["chamfer"] == pytest.approx((d.min(1).mean() + d.min(0).mean()) / 2)
    assert (out["num_a"], out["num_b"]) == (50, 70)
    assert chamfer_distance(a, a)["chamfer"] == 0
    with pytest.raises(ValueError, match="NaN"):
        chamfer_distance(np.full((2, 3), math.nan), b)
