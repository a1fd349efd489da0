import pytest
import torch

from recon.gaussians import Gaussians
from recon.ply import (
    load_gaussians_ply,
    load_point_cloud_ply,
    read_ply_vertices,
    save_gaussians_ply,
    save_point_cloud_ply,
)


def _gaussians(n=7, degree=2):
    g = torch.Generator().manual_seed(0)
    r = lambda *s: torch.randn(*s, generator=g)  # noqa: E731
    return Gaussians(r(n, 3), r(n, 4), r(n, 3), r(n), r(n, 1, 3), r(n, (degree + 1) ** 2 - 1, 3))


def test_gaussian_ply_round_trips_exactly_and_has_inria_layout(tmp_path):
    g = _gaussians()
    save_gaussians_ply(tmp_path / "g.ply", g)
    names = list(read_ply_vertices(tmp_path / "g.ply"))
    assert names[:9] == ["x", "y", "z", "nx", "ny", "nz", "f_dc_0", "f_dc_1", "f_dc_2"]
    assert names[9:33] == [f"f_rest_{i}" for i in range(24)]
    assert names[33:] == ["opacity", "scale_0", "scale_1", "scale_2", "rot_0", "rot_1", "rot_2", "rot_3"]
    back = load_gaussians_ply(tmp_path / "g.ply")
    for name in ("means", "quats", "scales", "opacities", "sh0", "shN"):
        assert torch.equal(getattr(back, name), getattr(g, name)), name
    # f_rest is channel-major: f_rest_1 is band 2 of the red channel
    assert read_ply_vertices(tmp_path / "g.ply")["f_rest_1"][3] == g.shN[3, 1, 0]


def test_degree_zero_and_point_cloud(tmp_path):
    g = _gaussians(degree=0)
    save_gaussians_ply(tmp_path / "g.ply", g)
    assert load_gaussians_ply(tmp_path / "g.ply").shN.shape == (7, 0, 3)
    pts = torch.rand(20, 3, dtype=torch.float64)
    save_point_cloud_ply(tmp_path / "p.ply", pts, torch.rand(20, 3))
    assert torch.allclose(load_point_cloud_ply(tmp_path / "p.ply"), pts.float().double())
    assert set(read_ply_vertices(tmp_path / "p.ply")) == {"x", "y", "z", "red", "green", "blue"}


def test_not_a_gaussian_ply(tmp_path):
    save_point_cloud_ply(tmp_path / "p.ply", torch.rand(3, 3))
    with pytest.raises(ValueError, match="not a 3D Gaussian"):
        load_gaussians_ply(tmp_path / "p.ply")
    (tmp_path / "x.ply").write_bytes(b"hello")
    with pytest.raises(ValueError, match="not a .ply"):
        read_ply_vertices(tmp_path / "x.ply")
