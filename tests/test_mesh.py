import math
import sys
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).parent))
from recon_scenes import one_thread, ring_cameras  # noqa: E402,F401

from recon.gaussians import gaussians_from_points  # noqa: E402
from recon.mesh import Mesh, opacity_mesh, save_mesh, tsdf_mesh  # noqa: E402
from recon.ply import read_ply_vertices  # noqa: E402


def _sphere_gaussians(radius=0.5, n=2000):
    g = torch.Generator().manual_seed(0)
    pts = torch.nn.functional.normalize(torch.randn(n, 3, generator=g), dim=-1) * radius
    return gaussians_from_points(pts, torch.rand(n, 3, generator=g), opacity=0.95, scale_factor=0.7)


def test_opacity_mesh_of_one_gaussian_is_its_analytic_level_set():
    # o·exp(-r²/2σ²) = L  <=>  r = σ·sqrt(2 ln(o/L))
    sigma, o, level = 0.2, 0.9, 0.3
    g = gaussians_from_points(torch.zeros(1, 3), opacity=o)
    g.scales[:] = math.log(sigma)
    mesh = opacity_mesh(g, resolution=32, level=level, centre=torch.zeros(3), half_size=0.5)
    r = mesh.vertices.norm(dim=-1)
    expected = sigma * math.sqrt(2 * math.log(o / level))
    assert mesh.faces.shape[0] > 100
    assert float((r - expected).abs().max()) < 1.0 / 32
    with pytest.raises(ValueError, match="never crosses"):
        opacity_mesh(g, resolution=16, level=5.0, centre=torch.zeros(3), half_size=0.5)


def test_tsdf_mesh_of_rendered_depth():
    pytest.importorskip("open3d", reason="open3d is optional (pip install open3d-cpu)")
    cams = ring_cameras(8, 32, distance=2.5, elevations_deg=(-30.0, 30.0), fov_deg=40.0)
    mesh = tsdf_mesh(_sphere_gaussians(), cams, resolution=32, centre=torch.zeros(3), half_size=0.8, progress=False)
    assert mesh.faces.shape[0] > 50
    # the surface is the front of the shell: within a voxel (0.05) and a Gaussian's size (~0.03) of it
    assert float((mesh.vertices.norm(dim=-1) - 0.5).abs().median()) < 0.08


def test_save_mesh_ply_and_obj(tmp_path):
    mesh = Mesh(torch.eye(3), torch.tensor([[0, 1, 2]]), torch.tensor([[1.0, 0, 0]] * 3))
    save_mesh(tmp_path / "m.ply", mesh)
    v = read_ply_vertices(tmp_path / "m.ply")
    assert v["x"].tolist() == [1.0, 0.0, 0.0] and v["red"].tolist() == [255, 255, 255]
    save_mesh(tmp_path / "m.obj", mesh)
    lines = (tmp_path / "m.obj").read_text().splitlines()
    assert lines[0] == "v 1 0 0 1.0000 0.0000 0.0000" and lines[-1] == "f 1 2 3"
    with pytest.raises(ValueError, match=".ply or .obj"):
        save_mesh(tmp_path / "m.stl", mesh)
