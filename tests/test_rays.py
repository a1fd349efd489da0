import pytest
import torch

from camera.cameras import Cameras, look_at
from camera.rays import inverse_3x3, normalize_translations, pixel_grid, plucker, ray_bundle, robust_center
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


def seva_plucker(c2w: torch.Tensor, K: torch.Tensor, image_hw, grid_hw, camera_scale: float, ref_c2w=None):
    """Stable Virtual Camera's Plücker maps, written from its formulas (seva/eval.py get_value_dict and
    seva/geometry.py get_plucker_coordinates): robust re-centring, scaling of the w2c translations,
    rays in the frame of w2c[0], intrinsics normalised by the image size then scaled to the grid, (d, o x d)."""
    ref = (c2w if ref_c2w is None else ref_c2w)[:, :3, 3]
    dist_to_median = (ref - ref.median(0, keepdim=True).values).norm(dim=-1)
    valid = dist_to_median <= torch.clamp(torch.quantile(dist_to_median, 0.97) * 10, max=1e6)
    c2w = c2w.clone()
    c2w[:, :3, 3] -= ref[valid].mean(0, keepdim=True)
    w2c = torch.linalg.inv(c2w)
    first = c2w[0, :3, 3].norm()
    w2c[:, :3, 3] *= (
        camera_scale if torch.isclose(first, torch.zeros((), dtype=first.dtype), atol=1e-5) else (camera_scale / first)
    )
    rel = torch.einsum("vnm,mp->vnp", w2c, torch.linalg.inv(w2c[0]))
    k = K.clone()
    k[:, :2] /= torch.tensor([image_hw[1], image_hw[0]], dtype=k.dtype).view(1, -1, 1)
    k[:, :2] *= torch.tensor([grid_hw[1], grid_hw[0]], dtype=k.dtype).view(1, -1, 1)
    ys, xs = torch.meshgrid(
        torch.arange(grid_hw[0], dtype=k.dtype) + 0.5, torch.arange(grid_hw[1], dtype=k.dtype) + 0.5, indexing="ij"
    )
    grid = torch.stack([xs, ys, torch.ones_like(xs)], -1).view(-1, 3)
    cam_pts = grid @ k.inverse().transpose(-1, -2)  # [V, HW, 3]
    pose_inv = torch.linalg.inv(rel)[:, :3, :4]
    world = torch.cat([cam_pts, torch.ones_like(cam_pts[..., :1])], -1) @ pose_inv.transpose(-1, -2)
    center = pose_inv[:, None, :3, 3].expand_as(world)
    rays = torch.nn.functional.normalize(world - center, dim=-1)
    out = torch.cat([rays, torch.cross(center, rays, dim=-1)], -1)
    return out.permute(0, 2, 1).reshape(len(c2w), 6, *grid_hw)


def _uncentred(n: int, offset) -> Cameras:
    cams = random_cameras(n, seed=3)
    c2w = cams.c2w.clone()
    c2w[:, :3, 3] += torch.tensor(offset, dtype=c2w.dtype)
    return cams.with_c2w(c2w)


@pytest.mark.parametrize(
    "case",
    ["uncentred_world", "first_camera_at_the_centre", "one_far_outlier", "even_count_median"],
)
def test_plucker_matches_stable_virtual_camera(case):
    cams = _uncentred(40 if case == "one_far_outlier" else 7, [5.0, -3.0, 2.0])  # 40: the 97% quantile excludes one
    c2w = cams.c2w.clone()
    if case == "first_camera_at_the_centre":
        c2w[0, :3, 3] = c2w[1:, :3, 3].mean(0)  # then the mean of all centres is c_0 itself
        assert normalize_translations(c2w, 2.0)[0, :3, 3].norm() < 1e-5  # the fallback scale applies
    elif case == "one_far_outlier":
        c2w[4, :3, 3] = torch.tensor([1e4, 0.0, 0.0], dtype=c2w.dtype)
        assert not torch.allclose(robust_center(c2w[:, :3, 3]), c2w[:, :3, 3].mean(0))  # the outlier is left out
    elif case == "even_count_median":
        c2w = c2w[:6]
    cams = Cameras(cams.K[: len(c2w)], c2w, cams.height, cams.width)
    got = plucker(cams, 6, 8, order="direction_first", relative_to_first=True, first_camera_distance=2.0)
    want = seva_plucker(cams.c2w, cams.K, (cams.height, cams.width), (6, 8), 2.0)
    torch.testing.assert_close(got, want, atol=1e-8, rtol=1e-7)


def test_plucker_reference_centres_are_the_scene_not_the_cameras_embedded():
    cams = _uncentred(6, [0.0, 4.0, -1.0])
    others = _uncentred(9, [1.0, 1.0, 1.0])
    got = plucker(cams, 3, 4, "direction_first", True, 2.0, reference_centers=others.centers)
    want = seva_plucker(cams.c2w, cams.K, (cams.height, cams.width), (3, 4), 2.0, ref_c2w=others.c2w)
    torch.testing.assert_close(got, want, atol=1e-8, rtol=1e-7)
    first = normalize_translations(cams.c2w, 2.0, others.centers)[0, :3, 3]
    assert torch.isclose(first.norm(), torch.tensor(2.0, dtype=first.dtype))


def test_inverse_3x3_is_linalg_inverse():
    gen = torch.Generator().manual_seed(0)
    m = torch.randn(64, 3, 3, generator=gen, dtype=torch.float64) + 3 * torch.eye(3, dtype=torch.float64)
    torch.testing.assert_close(inverse_3x3(m), torch.linalg.inv(m), rtol=1e-12, atol=1e-12)
    K = torch.tensor([[[120.0, 0.3, 64.0], [0.0, 110.0, 60.0], [0.0, 0.0, 1.0]]])
    torch.testing.assert_close(inverse_3x3(K) @ K, torch.eye(3)[None], rtol=0, atol=1e-6)
