import math

import numpy as np
import pytest
import torch
from scipy.spatial.transform import Rotation, Slerp

from camera.cameras import Cameras, look_at
from camera.interpolate import (
    METHODS,
    constant_speed_parameters,
    interpolate,
    interpolate_at,
    path_lengths,
    quat_exp,
    quat_log,
    quat_slerp,
)
from camera.presets import orbit, pan_left

UP = torch.tensor([0.0, 0.0, 1.0], dtype=torch.float64)


def wobbly_keyframes(n: int = 5, seed: int = 0) -> Cameras:
    """Keyframes on a bumpy loop with varying FoV and a roll, all roughly facing a centre."""
    gen = torch.Generator().manual_seed(seed)
    angle = torch.linspace(0, 2 * math.pi, n + 1, dtype=torch.float64)[:-1] + 0.2 * torch.rand(
        n, generator=gen, dtype=torch.float64
    )
    radius = 2 + 0.5 * torch.rand(n, generator=gen, dtype=torch.float64)
    eyes = torch.stack(
        [radius * torch.cos(angle), radius * torch.sin(angle), 0.5 * torch.rand(n, generator=gen, dtype=torch.float64)],
        -1,
    )
    c2w = look_at(eyes, torch.zeros(3, dtype=torch.float64), UP)
    tilt = torch.tensor(Rotation.from_rotvec(0.3 * torch.rand(n, 3, generator=gen).numpy()).as_matrix())
    c2w[:, :3, :3] = c2w[:, :3, :3] @ tilt
    fov = 40 + 30 * torch.rand(n, generator=gen, dtype=torch.float64)
    return Cameras.from_fov(c2w, fov, 64, 96)


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("closed", [False, True])
def test_passes_exactly_through_keyframes(method, closed):
    kf = wobbly_keyframes()
    at = interpolate_at(kf, torch.arange(5, dtype=torch.float64), method=method, closed=closed)
    assert torch.equal(at.c2w, kf.c2w) and torch.equal(at.K, kf.K)
    # the formulas themselves reach the keyframes (not only the exact copy made at integer u)
    for eps in (1e-7, -1e-7):
        u = (torch.arange(5, dtype=torch.float64) + eps).clamp(0, 5 if closed else 4)
        near = interpolate_at(kf, u, method=method, closed=closed)
        assert torch.allclose(near.c2w, kf.c2w, atol=1e-5) and torch.allclose(near.K, kf.K, rtol=1e-5)
    # uniform parameter spacing with m (K-1) + 1 frames lands on every keyframe
    frames = 3 * 4 + 1 if not closed else 3 * 5
    path = interpolate(kf, frames, method=method, closed=closed, constant_speed=False)
    assert torch.allclose(path.c2w[::3][:5], kf.c2w, atol=1e-12)


@pytest.mark.parametrize("method", METHODS)
def test_dense_path_is_continuous_and_closed_loops_wrap(method):
    kf = wobbly_keyframes()
    u = torch.linspace(0, 5, 501, dtype=torch.float64)
    dense = interpolate_at(kf, u, method=method, closed=True)
    steps = (dense.centers[1:] - dense.centers[:-1]).norm(dim=-1)
    assert float(steps.max()) < 5 * float(steps.mean())
    rel = dense.R[:-1].transpose(1, 2) @ dense.R[1:]
    angle = torch.acos(((rel.diagonal(dim1=1, dim2=2).sum(-1) - 1) / 2).clamp(-1, 1))
    assert float(angle.max()) < 0.05  # no jumps (and no long way round)
    assert torch.allclose(dense.c2w[-1], kf.c2w[0], atol=1e-12)  # u = K is keyframe 0 again


def test_kb_is_c1_at_keyframes_and_matches_catmull_rom():
    kf = wobbly_keyframes()
    h = 1e-5
    steps = path_lengths(kf)
    for k in (1, 2, 3):
        p = interpolate_at(kf, torch.tensor([k - h, k, k + h], dtype=torch.float64)).centers
        before, after = (p[1] - p[0]) / h, (p[2] - p[1]) / h
        # same direction; speeds in u differ by the ratio of the neighbouring steps (uneven timing)
        assert torch.allclose(before / before.norm(), after / after.norm(), atol=1e-4)
        assert float(after.norm() / before.norm()) == pytest.approx(float(steps[k] / steps[k - 1]), rel=1e-3)
    # Catmull-Rom reference on segment 1 -> 2 (tension = continuity = bias = 0, evenly spaced keyframes)
    kf = orbit(5, arc_deg=240.0, elevation_deg=20.0)
    p0, p1, p2, p3 = kf.centers[:4]
    s = 0.3
    ref = 0.5 * (2 * p1 + (p2 - p0) * s + (2 * p0 - 5 * p1 + 4 * p2 - p3) * s**2 + (3 * p1 - p0 - 3 * p2 + p3) * s**3)
    got = interpolate_at(kf, torch.tensor([1.3], dtype=torch.float64)).centers[0]
    assert torch.allclose(got, ref)


def test_tension_one_stops_at_keyframes():
    kf = wobbly_keyframes()
    h = 1e-6
    p = interpolate_at(kf, torch.tensor([2 - h, 2.0, 2 + h], dtype=torch.float64), tension=1.0).centers
    assert float((p[2] - p[1]).norm() / h) < 1e-3 and float((p[1] - p[0]).norm() / h) < 1e-3


def test_slerp_matches_scipy_and_takes_shortest_arc():
    kf = wobbly_keyframes()
    u = torch.linspace(0, 4, 41, dtype=torch.float64)
    ours = interpolate_at(kf, u, method="slerp").R
    ref = Slerp(np.arange(5), Rotation.from_matrix(kf.R.numpy()))(u.numpy()).as_matrix()
    assert np.allclose(ours.numpy(), ref, atol=1e-10)
    # 0 and 350 degrees about z: the way between goes through -5, not 175
    pan = pan_left(2, angle_deg=350.0)
    mid = interpolate_at(pan, torch.tensor([0.5], dtype=torch.float64), method="slerp")
    rel = mid.R[0] @ pan.R[0].T
    assert math.degrees(math.atan2(float(rel[1, 0]), float(rel[0, 0]))) == pytest.approx(-5.0)


def test_squad_reduces_to_slerp_on_uniform_single_axis_rotations():
    keys = pan_left(5, angle_deg=120.0)  # uniform steps about one axis: all squad tangents agree
    u = torch.linspace(0, 4, 17, dtype=torch.float64)
    assert torch.allclose(interpolate_at(keys, u, method="kb").R, interpolate_at(keys, u, method="slerp").R, atol=1e-12)


def test_constant_speed_equal_steps():
    kf = orbit(4, arc_deg=270.0, elevation_deg=20.0)[[0, 1, 3]]  # uneven keyframe spacing
    path = interpolate(kf, 30, method="kb")
    u = constant_speed_parameters(kf, 30)
    assert torch.allclose(interpolate_at(kf, u).c2w, path.c2w)
    # arc length along a much finer polyline than the one the parameters were found on
    fine_u = torch.linspace(0, 2, 4001, dtype=torch.float64)
    arc = torch.cat([torch.zeros(1, dtype=torch.float64), path_lengths(interpolate_at(kf, fine_u)).cumsum(0)])
    at_frames = torch.tensor(np.interp(u.numpy(), fine_u.numpy(), arc.numpy()))
    spacing = at_frames.diff()
    assert float(spacing.max() / spacing.min()) < 1.002
    uniform = interpolate(kf, 30, method="kb", constant_speed=False)
    assert float(path_lengths(uniform).max() / path_lengths(uniform).min()) > 1.2  # the test can fail


def test_focal_interpolates_in_log_space():
    kf = orbit(2, arc_deg=30.0)
    K = kf.K.clone()
    K[1, 0, 0] *= 4
    K[1, 1, 1] *= 4
    kf = Cameras(K, kf.c2w, kf.height, kf.width)
    mid = interpolate_at(kf, torch.tensor([0.5], dtype=torch.float64), method="linear")
    assert float(mid.fy[0]) == pytest.approx(2 * float(kf.fy[0]))  # geometric mean of f and 4f
    assert float(mid.cx[0]) == kf.width / 2


def test_quaternion_log_exp_inverse():
    v = torch.tensor([[0.0, 0.0, 0.0], [0.1, -0.2, 0.3], [1.0, 0.5, -0.7]], dtype=torch.float64)
    assert torch.allclose(quat_log(quat_exp(v)), v)
    q0, q1 = quat_exp(v[1:2]), quat_exp(v[2:3])
    assert torch.allclose(quat_slerp(q0, q1, torch.tensor([1.0], dtype=torch.float64)), q1)


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda: interpolate(orbit(1), 5), "at least 2 keyframes"),
        (lambda: interpolate(orbit(3), 5, method="cubic"), "unknown interpolation method"),
        (lambda: interpolate(orbit(3), 0), "num_frames"),
        (lambda: interpolate(orbit(3), 5, tension=2.0), "tension"),
        (lambda: interpolate_at(orbit(3), torch.tensor([2.5])), r"\[0, 2\]"),
    ],
)
def test_bad_inputs(call, match):
    with pytest.raises(ValueError, match=match):
        call()
