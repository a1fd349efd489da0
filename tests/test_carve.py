import sys
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).parent))
from recon_scenes import one_thread, ring_cameras, sphere_views  # noqa: E402,F401

from recon.carve import carve_occupancy, default_bounds, space_carve  # noqa: E402


def test_carving_recovers_sphere_radius_within_a_voxel():
    cams = ring_cameras(18, 48, distance=3.0, elevations_deg=(-50.0, 0.0, 50.0), fov_deg=40.0)
    views = sphere_views(cams, radius=0.6)
    result = space_carve(
        views.images, views.masks, cams, num_points=2000, resolution=40, centre=torch.zeros(3), half_size=0.8
    )
    assert result.voxel_size == pytest.approx(0.04)
    radius = result.points.norm(dim=-1)
    assert abs(float(radius.median()) - 0.6) < result.voxel_size
    assert float(radius.max()) < 0.6 + 3 * result.voxel_size
    # outward normals, colours taken from the views where they look at the point
    assert float((result.normals * torch.nn.functional.normalize(result.points, dim=-1)).sum(-1).mean()) > 0.9
    assert result.colors.shape == (2000, 3) and float(result.colors.std()) > 0.1


def test_default_bounds_centre_on_the_looked_at_point():
    cams = ring_cameras(6, 16, distance=3.0, elevations_deg=(20.0,), fov_deg=40.0)
    centre, half = default_bounds(cams)
    assert torch.allclose(centre, torch.zeros(3), atol=1e-5)
    assert half == pytest.approx(3.0 * float(torch.tan(torch.deg2rad(torch.tensor(20.0)))), rel=1e-4)


def test_carving_errors():
    cams = ring_cameras(4, 16)
    with pytest.raises(ValueError, match="one per camera"):
        carve_occupancy(torch.ones(3, 1, 16, 16), cams, 8)
    with pytest.raises(ValueError, match="removed every voxel"):
        space_carve(torch.zeros(4, 3, 16, 16), torch.zeros(4, 1, 16, 16), cams, resolution=8)
