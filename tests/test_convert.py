import math
import warnings

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.spatial.transform import Rotation

from camera.cameras import Cameras, intrinsics_matrix
from camera.convert import (
    cameras_to_colmap,
    cameras_to_pytorch3d,
    colmap_to_cameras,
    normalized_to_pixel_intrinsics,
    opencv_to_opengl_c2w,
    opengl_to_opencv_c2w,
    orthonormalize,
    pixel_to_normalized_intrinsics,
    pytorch3d_to_cameras,
    qvec_to_rotmat,
    rotmat_to_qvec,
)

SETTINGS = settings(max_examples=25, deadline=None)
quaternions = st.lists(st.floats(-1, 1), min_size=4, max_size=4).filter(lambda q: np.linalg.norm(q) > 0.1)
sizes = st.tuples(st.integers(8, 300), st.integers(8, 300))


def rotation(q) -> torch.Tensor:
    """Independent reference: scipy's quaternion (x, y, z, w) -> matrix."""
    w, x, y, z = q
    return torch.tensor(Rotation.from_quat([x, y, z, w]).as_matrix(), dtype=torch.float64)


def random_cameras(seed: int, n: int, height: int, width: int) -> Cameras:
    g = torch.Generator().manual_seed(seed)
    c2w = torch.eye(4, dtype=torch.float64).repeat(n, 1, 1)
    c2w[:, :3, :3] = torch.tensor(Rotation.random(n, random_state=seed).as_matrix())
    c2w[:, :3, 3] = torch.randn(n, 3, generator=g, dtype=torch.float64)
    f = (0.5 + torch.rand(n, generator=g, dtype=torch.float64)) * max(height, width)
    K = intrinsics_matrix(
        f,
        f * (0.8 + 0.4 * torch.rand(n, generator=g, dtype=torch.float64)),
        width * torch.rand(n, generator=g, dtype=torch.float64),
        height * torch.rand(n, generator=g, dtype=torch.float64),
    )
    return Cameras(K, c2w, height, width)


# ------------------------------------------------------------------ OpenGL
@SETTINGS
@given(q=quaternions, t=st.lists(st.floats(-10, 10), min_size=3, max_size=3))
def test_opengl_round_trip_is_exact(q, t):
    c2w = torch.eye(4, dtype=torch.float64)
    c2w[:3, :3], c2w[:3, 3] = rotation(q), torch.tensor(t, dtype=torch.float64)
    assert torch.equal(opengl_to_opencv_c2w(opencv_to_opengl_c2w(c2w)), c2w)
    assert torch.equal(opencv_to_opengl_c2w(opengl_to_opencv_c2w(c2w)), c2w)


def test_opengl_axes_look_along_minus_z_with_y_up():
    cams = random_cameras(0, 1, 32, 48)
    gl = opencv_to_opengl_c2w(cams.c2w[0])
    ahead_and_up = cams.c2w[0] @ torch.tensor([0.0, -1.0, 2.0, 1.0], dtype=torch.float64)  # OpenCV: up = -y
    in_gl_camera = torch.linalg.inv(gl) @ ahead_and_up
    assert torch.allclose(in_gl_camera, torch.tensor([0.0, 1.0, -2.0, 1.0], dtype=torch.float64))


# ------------------------------------------------------------------ PyTorch3D / CO3D
def pytorch3d_pixels(points, R, T, focal, principal, height, width, fmt):
    """Reference: PyTorch3D's row-vector transforms (world_to_view, NDC projection, perspective
    divide) followed by Implicitron's NDC -> pixel rescale (per-axis half size for
    ndc_norm_image_bounds, min half size for ndc_isotropic)."""
    n = R.shape[0]
    world_to_view = torch.zeros(n, 4, 4, dtype=torch.float64)
    world_to_view[:, :3, :3], world_to_view[:, 3, :3], world_to_view[:, 3, 3] = R, T, 1
    proj = torch.zeros(n, 4, 4, dtype=torch.float64)  # PyTorch3D PerspectiveCameras, in_ndc, transposed
    proj[:, 0, 0], proj[:, 1, 1] = focal[:, 0], focal[:, 1]
    proj[:, 2, 0], proj[:, 2, 1] = principal[:, 0], principal[:, 1]
    proj[:, 3, 2], proj[:, 2, 3] = 1, 1
    homog = torch.cat([points, torch.ones(points.shape[0], 1, dtype=torch.float64)], -1)
    clip = homog[None] @ world_to_view @ proj  # [N, P, 4]
    ndc = clip[..., :2] / clip[..., 3:4]
    half_wh = torch.tensor([width / 2, height / 2], dtype=torch.float64)
    rescale = half_wh if fmt == "ndc_norm_image_bounds" else half_wh.min()
    return half_wh - ndc * rescale, clip[..., 3]


@pytest.mark.parametrize("fmt", ["ndc_isotropic", "ndc_norm_image_bounds"])
@pytest.mark.parametrize("height,width", [(48, 80), (90, 40), (64, 64)])
def test_pytorch3d_matches_its_projection_formula(fmt, height, width):
    g = torch.Generator().manual_seed(1)
    n = 4
    R = torch.tensor(Rotation.random(n, random_state=2).as_matrix())
    T = torch.randn(n, 3, generator=g, dtype=torch.float64) * 0.3 + torch.tensor([0.0, 0.0, 5.0], dtype=torch.float64)
    focal = 1 + torch.rand(n, 2, generator=g, dtype=torch.float64)
    principal = 0.2 * torch.randn(n, 2, generator=g, dtype=torch.float64)
    points = torch.randn(20, 3, generator=g, dtype=torch.float64) * 0.5  # near the origin, ~5 in front of all
    expected, depth = pytorch3d_pixels(points, R, T, focal, principal, height, width, fmt)
    cams = pytorch3d_to_cameras(R, T, focal, principal, height, width, fmt)
    uv, z = cams.project(points)
    assert torch.all(depth > 1)
    assert torch.allclose(uv, expected, atol=1e-9)
    assert torch.allclose(z, depth, atol=1e-9)


@SETTINGS
@given(seed=st.integers(0, 10_000), size=sizes, fmt=st.sampled_from(["ndc_isotropic", "ndc_norm_image_bounds"]))
def test_pytorch3d_round_trip(seed, size, fmt):
    cams = random_cameras(seed, 3, *size)
    p3d = cameras_to_pytorch3d(cams, fmt)
    back = pytorch3d_to_cameras(p3d["R"], p3d["T"], p3d["focal_length"], p3d["principal_point"], *size, fmt)
    assert torch.allclose(back.K, cams.K, rtol=1e-12, atol=1e-9)
    assert torch.allclose(back.c2w, cams.c2w, atol=1e-12)
    again = cameras_to_pytorch3d(back, fmt)
    for key, value in p3d.items():
        assert torch.allclose(again[key], value, atol=1e-12), key


def test_pytorch3d_rejects_unknown_format_and_bad_shapes():
    R, T = torch.eye(3)[None], torch.zeros(1, 3)
    with pytest.raises(ValueError, match="intrinsics_format must be one of"):
        pytorch3d_to_cameras(R, T, torch.ones(1, 2), torch.zeros(1, 2), 10, 10, "screen")
    with pytest.raises(ValueError, match=r"focal_length must have shape \[1, 2\]"):
        pytorch3d_to_cameras(R, T, torch.ones(1, 3), torch.zeros(1, 2), 10, 10)


# ------------------------------------------------------------------ COLMAP
@SETTINGS
@given(q=quaternions)
def test_qvec_to_rotmat_matches_scipy(q):
    assert torch.allclose(qvec_to_rotmat(torch.tensor(q, dtype=torch.float64)), rotation(q), atol=1e-12)


@SETTINGS
@given(q=quaternions)
def test_rotmat_to_qvec_round_trip_with_canonical_sign(q):
    q = torch.tensor(q, dtype=torch.float64)
    q = q / q.norm()
    back = rotmat_to_qvec(qvec_to_rotmat(q))
    assert back[0] >= 0
    assert torch.allclose(back, q if q[0] >= 0 else -q, atol=1e-12) or abs(float(q[0])) < 1e-12


def test_rotmat_to_qvec_half_turns():
    for axis in torch.eye(3, dtype=torch.float64):
        R = torch.tensor(Rotation.from_rotvec(math.pi * axis.numpy()).as_matrix())
        assert torch.allclose(qvec_to_rotmat(rotmat_to_qvec(R)), R, atol=1e-12)


def test_colmap_projection_and_inverse():
    g = torch.Generator().manual_seed(3)
    q = torch.randn(3, 4, generator=g, dtype=torch.float64)
    q = q / q.norm(dim=-1, keepdim=True)
    t = torch.randn(3, 3, generator=g, dtype=torch.float64) + torch.tensor([0, 0, 6.0], dtype=torch.float64)
    params = torch.tensor([[100.0, 110.0, 31.5, 20.25]], dtype=torch.float64).expand(3, 4)
    cams, distortion = colmap_to_cameras(q, t, "PINHOLE", params, 40, 64)
    assert distortion == {}
    X = torch.randn(10, 3, generator=g, dtype=torch.float64)
    cam = X[None] @ qvec_to_rotmat(q).transpose(1, 2) + t[:, None]  # COLMAP: x = R X + t
    expected = cam[..., :2] / cam[..., 2:] * params[:, None, :2] + params[:, None, 2:]
    assert torch.allclose(cams.project(X)[0], expected, atol=1e-9)
    q2, t2, p2 = cameras_to_colmap(cams)
    assert torch.allclose(q2, torch.where(q[:, :1] < 0, -q, q), atol=1e-12)
    assert torch.allclose(t2, t, atol=1e-12)
    assert torch.allclose(p2, params)


@SETTINGS
@given(seed=st.integers(0, 10_000), size=sizes)
def test_colmap_round_trip(seed, size):
    cams = random_cameras(seed, 3, *size)
    qvec, tvec, params = cameras_to_colmap(cams)
    assert torch.all(qvec[:, 0] >= 0)
    back, distortion = colmap_to_cameras(qvec, tvec, "PINHOLE", params, *size)
    assert distortion == {} and torch.equal(back.K, cams.K)
    assert torch.allclose(back.c2w, cams.c2w, atol=1e-12)


def test_colmap_models_and_distortion_reported():
    q, t = torch.tensor([[1.0, 0, 0, 0]], dtype=torch.float64), torch.zeros(1, 3, dtype=torch.float64)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        cams, dist = colmap_to_cameras(q, t, "SIMPLE_PINHOLE", torch.tensor([50.0, 16, 12]), 24, 32)
    assert cams.fx.item() == cams.fy.item() == 50.0 and dist == {}
    with pytest.warns(UserWarning, match=r"camera 7 \(SIMPLE_RADIAL\): distortion k=0\.01"):
        cams, dist = colmap_to_cameras(
            q, t, "SIMPLE_RADIAL", torch.tensor([50.0, 16, 12, 0.01], dtype=torch.float64), 24, 32, camera_name="7"
        )
    assert float(dist["k"][0]) == 0.01
    with pytest.warns(UserWarning, match="p1"):
        _, dist = colmap_to_cameras(q, t, "OPENCV", torch.tensor([50.0, 51, 16, 12, 0, 0, 0.001, 0]), 24, 32)
    assert set(dist) == {"k1", "k2", "p1", "p2"}
    _, _, params = cameras_to_colmap(cams, "SIMPLE_RADIAL", {"k": 0.01})
    assert params.tolist() == [[50.0, 16.0, 12.0, 0.01]]


def test_colmap_bad_inputs():
    q, t = torch.tensor([[1.0, 0, 0, 0]]), torch.zeros(1, 3)
    with pytest.raises(ValueError, match="model 'FISHEYE' is not supported"):
        colmap_to_cameras(q, t, "FISHEYE", torch.tensor([1.0, 2, 3, 4]), 8, 8)
    with pytest.raises(ValueError, match=r"PINHOLE takes 4 parameters"):
        colmap_to_cameras(q, t, "PINHOLE", torch.tensor([1.0, 2, 3]), 8, 8)
    with pytest.raises(ValueError, match="finite and non-zero"):
        qvec_to_rotmat(torch.zeros(4))
    cams = Cameras(intrinsics_matrix(torch.tensor([5.0]), torch.tensor([6.0]), 4, 4), torch.eye(4)[None], 8, 8)
    with pytest.raises(ValueError, match="fx != fy; use PINHOLE"):
        cameras_to_colmap(cams, "SIMPLE_PINHOLE")


# ------------------------------------------------------------------ normalised intrinsics
@SETTINGS
@given(seed=st.integers(0, 10_000), size=sizes)
def test_normalized_intrinsics_round_trip(seed, size):
    cams = random_cameras(seed, 4, *size)
    fx, fy, cx, cy = pixel_to_normalized_intrinsics(cams.K, *size)
    assert torch.allclose(fx, cams.fx / size[1]) and torch.allclose(cy, cams.cy / size[0])
    assert torch.allclose(normalized_to_pixel_intrinsics(fx, fy, cx, cy, *size), cams.K, rtol=1e-14, atol=1e-12)


# ------------------------------------------------------------------ orthonormalize
def test_orthonormalize_finds_the_nearest_rotation():
    R = torch.tensor(Rotation.random(5, random_state=4).as_matrix())
    assert torch.allclose(orthonormalize(R), R, atol=1e-12)
    noisy = R + 1e-4 * torch.randn(5, 3, 3, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    fixed = orthonormalize(noisy)
    assert torch.allclose(fixed.transpose(1, 2) @ fixed, torch.eye(3, dtype=torch.float64).expand(5, 3, 3), atol=1e-12)
    assert torch.all(torch.linalg.det(fixed) > 0)
    # nearest: no rotation on a fine grid around it is closer to the noisy matrix
    dist = (fixed - noisy).flatten(1).norm(dim=1)
    for delta in Rotation.from_rotvec(1e-5 * np.eye(3)).as_matrix():
        assert torch.all((torch.tensor(delta) @ fixed - noisy).flatten(1).norm(dim=1) >= dist - 1e-15)


def test_orthonormalize_rejects_reflections():
    with pytest.raises(ValueError, match="reflection"):
        orthonormalize(torch.diag(torch.tensor([1.0, 1.0, -1.0])))
