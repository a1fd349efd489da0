import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from camera.compose import concatenate, ping_pong, resample, reverse
from camera.interpolate import interpolate_at, path_lengths
from camera.presets import move_forward, orbit, pan_left, zoom_in


def test_reverse_twice_is_identity_and_reverses_order():
    path = orbit(7, arc_deg=120.0, elevation_deg=10.0)
    back = reverse(path)
    assert torch.equal(back.c2w[0], path.c2w[-1]) and torch.equal(back.K[-1], path.K[0])
    twice = reverse(back)
    assert torch.equal(twice.c2w, path.c2w) and torch.equal(twice.K, path.K)


@pytest.mark.parametrize("n", [1, 2, 6])
def test_ping_pong_goes_out_and_back(n):
    path = orbit(n, arc_deg=90.0)
    pp = ping_pong(path)
    assert len(pp) == max(2 * n - 1, 1)
    assert torch.equal(pp.c2w, reverse(pp).c2w)  # palindrome: ends where it started
    assert torch.equal(pp.c2w[:n], path.c2w)


def test_concatenate_keeps_order_and_checks_size():
    a, b = orbit(3), move_forward(4)
    cat = concatenate(a, b)
    assert len(cat) == 7 and torch.equal(cat.c2w[3:], b.c2w)
    with pytest.raises(ValueError, match="image size"):
        concatenate(a, orbit(3, height=64, width=64))
    with pytest.raises(ValueError, match="at least one"):
        concatenate()


@settings(max_examples=15, deadline=None)
@given(num_frames=st.integers(2, 40), seed=st.integers(0, 1000))
def test_resample_is_equally_spaced_along_the_path(num_frames, seed):
    gen = torch.Generator().manual_seed(seed)
    line = move_forward(2, distance=3.0, elevation_deg=30.0)
    # 6 frames at random, unevenly spaced positions along the line (ends kept)
    inner = torch.rand(4, generator=gen, dtype=torch.float64).sort().values
    u = torch.cat([torch.zeros(1, dtype=torch.float64), inner, torch.ones(1, dtype=torch.float64)])
    uneven = interpolate_at(line, u, method="linear")
    out = resample(uneven, num_frames)
    along = (out.centers - line.centers[0]) @ line.R[0, :, 2]
    assert torch.allclose(along, torch.linspace(0, 3.0, num_frames, dtype=torch.float64), atol=1e-12)
    sideways = out.centers - line.centers[0] - along[:, None] * line.R[0, :, 2]
    assert torch.allclose(sideways, torch.zeros_like(sideways), atol=1e-12)
    assert torch.equal(out.c2w[0], uneven.c2w[0]) and torch.equal(out.c2w[-1], uneven.c2w[-1])


def test_resample_orbit_keeps_ends_and_length():
    path = orbit(9, arc_deg=200.0, elevation_deg=20.0)
    out = resample(path, 17)  # twice as dense: the original frames are kept, midpoints between
    assert torch.allclose(out.c2w[::2], path.c2w, atol=1e-12)
    assert float(path_lengths(out).sum()) == pytest.approx(float(path_lengths(path).sum()))


def test_resample_falls_back_to_angle_then_focal():
    pan = pan_left(3, angle_deg=90.0)
    uneven = concatenate(pan[:1], pan_left(2, angle_deg=10.0)[1:], pan[2:])  # angles 0, 10, 90
    out = resample(uneven, 10)
    rel = out.R[:-1].transpose(1, 2) @ out.R[1:]
    angles = torch.acos(((rel.diagonal(dim1=1, dim2=2).sum(-1) - 1) / 2).clamp(-1, 1))
    assert torch.allclose(angles, torch.full((9,), math.radians(10.0), dtype=torch.float64))
    zoom = zoom_in(4, zoom=8.0)
    out = resample(zoom[[0, 1, 3]], 4)  # log focal 0, 1/3, 1 of log 8 -> equal thirds
    assert torch.allclose(out.fy, zoom.fy)


def test_resample_bad_count():
    with pytest.raises(ValueError, match="num_frames"):
        resample(orbit(3), 0)
