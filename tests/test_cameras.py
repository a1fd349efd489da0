import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from camera.cameras import Cameras, SimilarityTransform, intrinsics_matrix, look_at, rigid_inverse


def random_rotations(n: int, generator: torch.Generator) -> torch.Tensor:
    q = torch.randn(n, 4, generator=generator, dtype=torch.float64)
    q = q / q.norm(dim=-1, keepdim=True)
    w, x, y, z = q.unbind(-1)
    return torch.stack(
        [
            1 - 2 * (y * y + z * z),
            2 * (x * y - w * z),
            2 * (x * z + w * y),
            2 * (x * y + w * z),
            1 - 2 * (x * x + z * z),
            2 * (y * z - w * x),
            2 * (x * z - w * y),
            2 * (y * z + w * x),
            1 - 2 * (x * x + y * y),
        ],
        -1,
    ).reshape(n, 3, 3)


def random_cameras(n: int = 5, seed: int = 0, height: int = 48, width: int = 64) -> Cameras:
    g = torch.Generator().manual_seed(seed)
    c2w = torch.eye(4, dtype=torch.float64).repeat(n, 1, 1)
    c2w[:, :3, :3] = random_rotations(n, g)
    c2w[:, :3, 3] = torch.randn(n, 3, generator=g, dtype=torch.float64)
    f = 40 + 20 * torch.rand(n, generator=g, dtype=torch.float64)
    K = intrinsics_matrix(f, f * 1.1, width / 2 + torch.rand(n, generator=g, dtype=torch.float64), height / 2)
    return Cameras(K, c2w, height, width)


def test_project_known_point():
    cams = Cameras.from_fov(torch.eye(4)[None], 90.0, 100, 100)  # f = 50
    uv, z = cams.project(torch.tensor([[1.0, -0.5, 2.0]]))
    assert torch.allclose(uv[0, 0], torch.tensor([50 + 50 * 0.5, 50 - 50 * 0.25]))
    assert z[0, 0] == 2.0


def test_unproject_inverts_project():
    cams = random_cameras()
    pts = torch.randn(7, 3, dtype=torch.float64) * 0.2
    uv, z = cams.project(pts)
    back = cams.unproject(uv, z)
    assert torch.allclose(back, pts.expand(len(cams), -1, -1), atol=1e-9)


def test_look_at_axes_follow_opencv():
    eye = torch.tensor([[0.0, -3.0, 1.0]])
    c2w = look_at(eye, torch.zeros(3), torch.tensor([0.0, 0.0, 1.0]))
    forward, down = c2w[0, :3, 2], c2w[0, :3, 1]
    assert torch.allclose(forward, -eye[0] / eye[0].norm())
    assert down[2] < 0  # image "down" points away from world up
    assert torch.allclose(torch.linalg.det(c2w[0, :3, :3]), torch.tensor(1.0))
    # the target projects to the image centre
    cams = Cameras.from_fov(c2w, 60.0, 32, 32)
    uv, _ = cams.project(torch.zeros(1, 3))
    assert torch.allclose(uv[0, 0], torch.tensor([16.0, 16.0]), atol=1e-5)
    # a point above the target (world +z) appears above the centre (smaller v)
    uv_up, _ = cams.project(torch.tensor([[0.0, 0.0, 0.3]]))
    assert uv_up[0, 0, 1] < 16.0


def test_resize_scales_pixels_and_crop_shifts_them():
    cams = random_cameras()
    pts = torch.randn(4, 3, dtype=torch.float64) * 0.1
    uv, _ = cams.project(pts)
    uv_half, _ = cams.resize(24, 32).project(pts)
    assert torch.allclose(uv_half, uv / 2, atol=1e-9)
    uv_crop, _ = cams.crop(5, 7, 20, 30).project(pts)
    assert torch.allclose(uv_crop, uv - torch.tensor([7.0, 5.0], dtype=torch.float64), atol=1e-9)


def test_relative_to_makes_reference_identity_and_keeps_relative_geometry():
    cams = random_cameras()
    rel = cams.relative_to(2)
    assert torch.allclose(rel.c2w[2], torch.eye(4, dtype=torch.float64), atol=1e-12)
    a, b = cams.c2w, rel.c2w
    assert torch.allclose(rigid_inverse(a[0]) @ a[1], rigid_inverse(b[0]) @ b[1], atol=1e-12)


def test_normalize_scene_returns_the_transform_it_applied():
    cams = random_cameras(6)
    out, tf = cams.normalize_scene(target_radius=1.5)
    assert math.isclose(float(out.centers.norm(dim=-1).max()), 1.5, rel_tol=1e-9)
    assert torch.allclose(out.centers.mean(0), torch.zeros(3, dtype=torch.float64), atol=1e-12)
    pts = torch.randn(5, 3, dtype=torch.float64)
    # projections are invariant when the world and the cameras move together
    uv, _ = cams.project(pts)
    uv2, _ = out.project(tf.apply_points(pts))
    assert torch.allclose(uv, uv2, atol=1e-9)
    inv = tf.inverse()
    assert torch.allclose(inv.apply_points(tf.apply_points(pts)), pts, atol=1e-12)
    assert torch.allclose(tf.matrix() @ inv.matrix(), torch.eye(4, dtype=torch.float64), atol=1e-12)


def test_similarity_with_rotation_keeps_c2w_rigid():
    g = torch.Generator().manual_seed(3)
    rot = random_rotations(1, g)[0]
    tf = SimilarityTransform(2.5, rot, torch.tensor([1.0, -2.0, 0.5], dtype=torch.float64))
    cams = random_cameras().transform(tf)  # constructor validates rigidity
    assert len(cams) == 5


def test_indexing_cat_and_moves():
    cams = random_cameras(5)
    assert len(cams[1:3]) == 2 and len(cams[[0, 4]]) == 2 and len(cams[-1]) == 1
    assert torch.equal(cams[-1].c2w[0], cams.c2w[4])
    both = Cameras.cat([cams, cams[:2]])
    assert len(both) == 7
    f32 = cams.to(dtype=torch.float32)
    assert f32.dtype == torch.float32 and f32.K.dtype == torch.float32
    with pytest.raises(ValueError, match="one image size"):
        Cameras.cat([cams, cams.resize(10, 10)])


def test_fov_roundtrip():
    cams = Cameras.from_fov(torch.eye(4).repeat(3, 1, 1), torch.tensor([30.0, 60.0, 90.0]), 64, 128)
    assert torch.allclose(cams.fov_y_deg, torch.tensor([30.0, 60.0, 90.0]), atol=1e-4)


@settings(max_examples=25, deadline=None)
@given(st.integers(0, 10_000))
def test_rigid_inverse_property(seed):
    c2w = random_cameras(3, seed).c2w
    assert torch.allclose(rigid_inverse(c2w) @ c2w, torch.eye(4, dtype=torch.float64).expand(3, 4, 4), atol=1e-12)


# ------------------------------------------------------------------ bad input
def _eye(n=1):
    return torch.eye(4).repeat(n, 1, 1)


@pytest.mark.parametrize(
    "make, match",
    [
        (lambda: Cameras(intrinsics_matrix(torch.tensor([float("nan")]), 1.0, 1.0, 1.0), _eye(), 8, 8), "NaN"),
        (lambda: Cameras(intrinsics_matrix(torch.tensor([-1.0]), 1.0, 1.0, 1.0), _eye(), 8, 8), "positive"),
        (lambda: Cameras(intrinsics_matrix(torch.tensor([1.0]), 1.0, 1.0, 1.0), _eye(), 0, 8), "positive"),
        (lambda: Cameras(torch.zeros(0, 3, 3), torch.zeros(0, 4, 4), 8, 8), "zero frames"),
        (
            lambda: Cameras(intrinsics_matrix(torch.tensor([1.0]), 1.0, 1.0, 1.0), _eye() * 2, 8, 8),
            "last row|orthonormal",
        ),
        (
            lambda: Cameras(
                intrinsics_matrix(torch.tensor([1.0]), 1.0, 1.0, 1.0),
                torch.diag(torch.tensor([1.0, 1.0, -1.0, 1.0]))[None],
                8,
                8,
            ),
            "reflection",
        ),
        (lambda: Cameras(intrinsics_matrix(torch.tensor([1.0]), 1.0, 1.0, 1.0), _eye(2), 8, 8), "one intrinsics"),
        (lambda: look_at(torch.zeros(1, 3), torch.zeros(3), torch.tensor([0.0, 0.0, 1.0])), "look-at point equals"),
        (lambda: look_at(torch.tensor([[0.0, 0.0, 2.0]]), torch.zeros(3), torch.tensor([0.0, 0.0, 1.0])), "parallel"),
        (lambda: Cameras.from_fov(_eye(), 180.0, 8, 8), "fov_y_deg"),
    ],
)
def test_bad_input_is_rejected_with_a_clear_error(make, match):
    with pytest.raises(ValueError, match=match):
        make()


def test_derived_cameras_skip_only_the_value_checks():
    """Cameras derived from valid ones (moves, resizes, crops, indexing, joining, relative poses)
    read no tensor values, so they cost a GPU step no synchronisation; user-built cameras are
    still checked, and the shape checks stay on derived ones."""
    from tests.host_reads import NoHostReads

    eye = torch.tensor([[3.0, 0.0, 1.0], [0.0, 3.0, 1.0], [-3.0, 0.0, 1.0], [0.0, -3.0, 1.0]])
    cams = Cameras.from_fov(look_at(eye, torch.zeros(3), torch.tensor([0.0, 0.0, 1.0])), 50.0, 32, 32)
    rows = torch.tensor([0, 2])
    with NoHostReads():
        derived = [cams.to(dtype=torch.float64), cams.resize(8, 8), cams.crop(1, 2, 16, 16), cams[1:3], cams[rows]]
        derived += [Cameras.cat([cams, cams]), cams.relative_to(1)]
    torch.testing.assert_close(derived[1].K[:, :2], cams.K[:, :2] / 4)  # a resize scales fx, cx, fy, cy
    bad_c2w = cams.c2w.clone()
    bad_c2w[0, 0, 0] = 2.0
    with pytest.raises(ValueError, match="not orthonormal"):
        Cameras(cams.K, bad_c2w, 32, 32)
    Cameras.derived(cams.K, bad_c2w, 32, 32)  # the caller vouches for the values
    with NoHostReads(), pytest.raises(ValueError, match=r"\[N, 4, 4\]"):
        Cameras.derived(cams.K, bad_c2w[:, :3], 32, 32)
    with pytest.raises(ValueError, match="4 cameras but"):
        Cameras.derived(cams.K, bad_c2w[:2], 32, 32)
