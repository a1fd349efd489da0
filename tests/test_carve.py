import sys
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).parent))
from recon_scenes import one_thread, ring_cameras, sphere_views  # noqa: E402,F401

import recon.carve  # noqa: E402
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


@pytest.mark.parametrize("pairs", [2**24, 1000])  # one slab; one x-slice per slab
def test_occupancy_is_the_voxels_every_view_sees_on_its_mask(pairs, monkeypatch):
    # reference: each voxel centre projected into each view on its own (pixel = floor of the projection)
    monkeypatch.setattr(recon.carve, "VOXEL_VIEW_PAIRS", pairs)
    cams = ring_cameras(5, 20, distance=3.0, elevations_deg=(-30.0, 30.0), fov_deg=40.0)
    masks = sphere_views(cams, radius=0.6).masks
    occupancy, origin, voxel = carve_occupancy(masks, cams, 12, centre=torch.zeros(3), half_size=0.9)
    axis = torch.arange(12) * voxel + voxel / 2
    grid = torch.stack(torch.meshgrid(axis, axis, axis, indexing="ij"), -1).reshape(-1, 3) + origin
    expected = torch.ones(len(grid), dtype=torch.bool)
    for f in range(len(cams)):
        uv, depth = cams[[f]].to(dtype=torch.float32).project(grid)
        for i, ((u, v), z) in enumerate(zip(uv[0].tolist(), depth[0].tolist())):
            col, row = int(torch.floor(torch.tensor(u))), int(torch.floor(torch.tensor(v)))
            seen = z > 0 and 0 <= col < 20 and 0 <= row < 20 and bool(masks[f, 0, row, col] > 0.5)
            expected[i] &= seen
    assert 0 < int(expected.sum()) < len(grid)
    assert torch.equal(occupancy.reshape(-1), expected)
