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


def _transmittance_through_centre(g) -> float:
    """exp(Σ log(1 - α)) along the x axis through the origin, α = o·exp(-d²/2σ²) for isotropic
    Gaussians at distance d from the axis (what a ray meets in 3DGS's alpha compositing)."""
    d2 = (g.means[:, 1:] ** 2).sum(-1).double()
    sigma2 = torch.exp(2 * g.scales[:, 0]).double()
    alpha = (torch.sigmoid(g.opacities).double() * torch.exp(-d2 / (2 * sigma2))).clamp(max=0.999)
    return float(torch.exp(torch.log1p(-alpha).sum()))


@pytest.mark.parametrize("n", [20_000, 100_000])
def test_random_cloud_is_see_through_so_its_inside_gets_gradients(n):
    # At the nearest-neighbour scale, 100k Gaussians at opacity 0.1 in a ball have optical depth ≈ 20
    # through the centre (transmittance ~1e-9): an opaque shell that stalled the V3D random-init fit.
    g = random_gaussians(n, radius=1.3, seed=1)
    assert 0.02 < _transmittance_through_centre(g) < 0.5
    assert torch.allclose(torch.sigmoid(g.opacities), torch.full((n,), 0.1))


def test_thin_random_cloud_keeps_the_nearest_neighbour_scale():
    g = random_gaussians(100, radius=1.0, seed=2)  # optical depth ≈ 1.4, under the cap
    assert torch.allclose(g.scales, gaussians_from_points(g.means).scales)
    capped = random_gaussians(100, radius=1.0, seed=2, max_optical_depth=0.5)
    ratio = torch.exp(capped.scales - g.scales)
    assert torch.allclose(ratio, ratio[0, 0].expand_as(ratio)) and ratio[0, 0] < 1
    with pytest.raises(ValueError, match="max_optical_depth"):
        random_gaussians(10, max_optical_depth=0)
