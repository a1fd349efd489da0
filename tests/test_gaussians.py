import pytest
import torch

from recon.gaussians import Gaussians, gaussians_from_points, random_gaussians, rgb_to_sh0, sh0_to_rgb


def test_from_points_scale_is_mean_nearest_neighbour_distance():
    grid = torch.stack(torch.meshgrid(*[torch.arange(4.0)] * 3, indexing="ij"), -1).reshape(-1, 3) * 0.1
    g = gaussians_from_points(grid, torch.rand(64, 3), sh_degree=1, opacity=0.3)
    # interior points of a 0.1 lattice have 6 neighbours at 0.1: the 3 nearest are all at 0.1
    assert torch.allclose(torch.exp(g.scales[21]), torch.full((3,), 0.1), atol=1e-6)
    assert torch.allclose(torch.sigmoid(g.opacities), torch.full((64,), 0.3), atol=1e-6)
    assert g.sh_degree == 1 and g.shN.shape == (64, 3, 3)
    assert torch.allclose(g.activated()["quats"], torch.tensor([1.0, 0, 0, 0]).expand(64, 4))


def test_sh_dc_round_trip():
    rgb = torch.rand(10, 3)
    assert torch.allclose(sh0_to_rgb(rgb_to_sh0(rgb)), rgb, atol=1e-6)


def test_random_gaussians_inside_ball_and_seeded():
    a = random_gaussians(500, center=(1.0, 2.0, 3.0), radius=0.5, seed=3)
    b = random_gaussians(500, center=(1.0, 2.0, 3.0), radius=0.5, seed=3)
    assert torch.equal(a.means, b.means)
    assert ((a.means - torch.tensor([1.0, 2.0, 3.0])).norm(dim=-1) <= 0.5 + 1e-6).all()


def test_parameters_round_trip_and_validation():
    g = random_gaussians(10)
    params = g.parameters_dict()
    assert set(params) == {"means", "quats", "scales", "opacities", "sh0", "shN"}
    assert torch.equal(Gaussians.from_parameters(params).means, g.means)
    with pytest.raises(ValueError, match="quats"):
        Gaussians(g.means, g.quats[:, :3], g.scales, g.opacities, g.sh0, g.shN)
    with pytest.raises(ValueError, match="non-empty"):
        gaussians_from_points(torch.zeros(0, 3))
