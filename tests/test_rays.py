import torch

from camera.cameras import Cameras, look_at
from camera.rays import pixel_grid, plucker, ray_bundle
from tests.test_cameras import random_cameras


def test_pixel_centres_are_at_half_integers():
    grid = pixel_grid(2, 3)
    assert torch.equal(grid[0, 0], torch.tensor([0.5, 0.5]))
    assert torch.equal(grid[1, 2], torch.tensor([2.5, 1.5]))


def test_rays_hit_the_points_that_project_to_their_pixels():
    cams = random_cameras(3)
    origins, dirs = ray_bundle(cams, 6, 8)  # a latent-like grid: image / 8
    depth = 1.7
    pts = origins + depth * dirs  # [N, h, w, 3]
    uv, z = cams.resize(6, 8).project(pts.reshape(3, -1, 3))
    expected = pixel_grid(6, 8, dtype=torch.float64).reshape(1, -1, 2).expand(3, -1, -1)
    assert torch.allclose(uv, expected, atol=1e-8)
    assert torch.all(z > 0)
    assert torch.allclose(dirs.norm(dim=-1), torch.ones(()).double())


def test_plucker_invariants():
    cams = random_cameras(4)
    emb = plucker(cams, 5, 7)  # moment first
    m, d = emb[:, :3], emb[:, 3:]
    assert emb.shape == (4, 6, 5, 7)
    assert torch.allclose((m * d).sum(1), torch.zeros(()).double(), atol=1e-10)  # moment ⟂ direction
    # sliding the origin along the ray keeps the moment
    origins, dirs = ray_bundle(cams, 5, 7)
    slid = torch.cross(origins + 3.0 * dirs, dirs, dim=-1).permute(0, 3, 1, 2)
    assert torch.allclose(slid, m, atol=1e-10)


def test_plucker_orders_and_relative_pose():
    cams = random_cameras(3)
    mf = plucker(cams, 4, 4, order="moment_first")
    df = plucker(cams, 4, 4, order="direction_first")
    assert torch.equal(mf[:, :3], df[:, 3:]) and torch.equal(mf[:, 3:], df[:, :3])
    rel = plucker(cams, 4, 4, relative_to_first=True)
    # the first camera sits at the origin: zero moments
    assert torch.allclose(rel[0, :3], torch.zeros(()).double(), atol=1e-12)
    # relative embeddings do not depend on where the rig is in the world
    moved = cams.with_c2w(
        look_at(
            torch.tensor([[3.0, 1.0, 2.0]]).double(), torch.zeros(3).double(), torch.tensor([0.0, 0.0, 1.0]).double()
        )
        @ cams.c2w
    )
    assert torch.allclose(plucker(moved, 4, 4, relative_to_first=True), rel, atol=1e-9)


def test_plucker_scale_normalisation_puts_first_camera_at_given_distance():
    c2w = look_at(torch.tensor([[0.0, -5.0, 0.0], [5.0, 0.0, 0.0]]), torch.zeros(3), torch.tensor([0.0, 0.0, 1.0]))
    cams = Cameras.from_fov(c2w, 50.0, 16, 16)
    emb = plucker(cams, 2, 2, first_camera_distance=2.0)
    scaled = c2w.clone()
    scaled[:, :3, 3] *= 2.0 / 5.0
    origins, dirs = ray_bundle(cams.with_c2w(scaled), 2, 2)
    expected = torch.cross(origins, dirs, dim=-1).permute(0, 3, 1, 2)
    assert torch.allclose(emb[:, :3], expected, atol=1e-6)
