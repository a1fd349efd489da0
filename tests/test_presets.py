import math

import pytest
import torch

from camera.cameras import Cameras, intrinsics_matrix, look_at
from camera.presets import (
    MOVES,
    PATH_PRESETS,
    dolly_zoom_in,
    dolly_zoom_out,
    im3d_orbit,
    lemniscate,
    move,
    orbit,
    orbit_basis,
    pan_left,
    pan_right,
    roll,
    spiral,
    through_cameras,
    v3d_orbit,
    zoom_in,
    zoom_out,
)

TARGET = torch.tensor([0.3, -0.2, 0.5], dtype=torch.float64)
UP = torch.tensor([0.0, 0.0, 1.0], dtype=torch.float64)


def anchor_camera() -> Cameras:
    """A camera with a roll and non-square, off-centre intrinsics: presets must keep all of it."""
    c2w = look_at(torch.tensor([[1.5, 1.0, 0.8]], dtype=torch.float64), TARGET, UP)
    a = math.radians(12)
    roll_z = torch.tensor(
        [[math.cos(a), -math.sin(a), 0], [math.sin(a), math.cos(a), 0], [0, 0, 1]], dtype=torch.float64
    )
    c2w[0, :3, :3] = c2w[0, :3, :3] @ roll_z
    K = intrinsics_matrix(
        torch.tensor([200.0], dtype=torch.float64), torch.tensor([210.0], dtype=torch.float64), 70.0, 50.0
    )
    return Cameras(K, c2w, 96, 128)


def assert_looks_at(cams: Cameras, target: torch.Tensor, atol: float = 1e-9) -> None:
    """The target projects to the principal point of every frame, in front of the camera."""
    uv, z = cams.project(target[None])
    assert torch.all(z > 0)
    assert torch.allclose(uv[:, 0], torch.stack([cams.cx, cams.cy], -1), atol=atol)


def polar(offsets: torch.Tensor, up: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    e1, e2, u = orbit_basis(up)
    return torch.asin(offsets @ u / offsets.norm(dim=-1)), torch.atan2(offsets @ e2, offsets @ e1)


@pytest.mark.parametrize("up", [(0.0, 0.0, 1.0), (0.0, -1.0, 0.2)])
def test_orbit_on_circle_of_radius_and_elevation_looking_at_target(up):
    up = torch.tensor(up, dtype=torch.float64)
    cams = orbit(12, radius=1.7, elevation_deg=25.0, azimuth_deg=40.0, look_at=TARGET, up=up, fov_deg=50.0)
    offsets = cams.centers - TARGET
    assert torch.allclose(offsets.norm(dim=-1), torch.full((12,), 1.7, dtype=torch.float64))
    elevation, azimuth = polar(offsets, up)
    assert torch.allclose(elevation, torch.full((12,), math.radians(25.0), dtype=torch.float64))
    steps = torch.remainder(azimuth.diff(append=azimuth[:1]), 2 * math.pi)  # includes the wrap to frame 0
    assert torch.allclose(steps, torch.full((12,), 2 * math.pi / 12, dtype=torch.float64))
    assert math.isclose(float(azimuth[0]), math.radians(40.0))
    assert_looks_at(cams, TARGET)
    assert torch.allclose(cams.fov_y_deg, torch.full((12,), 50.0, dtype=torch.float64))
    # upright: the up vector projects upwards (towards -y) in every image
    assert torch.all((cams.R[:, :, 1] @ (up / up.norm())) < 0)


def test_partial_orbit_includes_endpoint_and_clockwise_reverses():
    ccw = orbit(5, arc_deg=90.0, look_at=TARGET)
    cw = orbit(5, arc_deg=90.0, look_at=TARGET, clockwise=True)
    _, az = polar(ccw.centers - TARGET, UP)
    assert torch.allclose(az - az[0], torch.linspace(0, math.pi / 2, 5, dtype=torch.float64))
    _, az = polar(cw.centers - TARGET, UP)
    assert torch.allclose(az - az[0], -torch.linspace(0, math.pi / 2, 5, dtype=torch.float64))


def test_paper_orbits():
    v3d = v3d_orbit()
    assert len(v3d) == 18 and (v3d.height, v3d.width) == (256, 256)
    assert torch.allclose(v3d.centers.norm(dim=-1), torch.full((18,), 2.0, dtype=torch.float64))
    assert torch.allclose(v3d.centers[:, 2], torch.zeros(18, dtype=torch.float64), atol=1e-12)
    assert torch.allclose(v3d.fov_y_deg, torch.full((18,), 60.0, dtype=torch.float64))
    gaps = (v3d.centers - v3d.centers.roll(-1, 0)).norm(dim=-1)  # even spacing, wrap included
    assert torch.allclose(gaps, gaps[:1].expand(18))
    im3d = im3d_orbit(30.0)
    assert len(im3d) == 16
    elevation, _ = polar(im3d.centers, UP)
    assert torch.allclose(elevation, torch.full((16,), math.radians(30.0), dtype=torch.float64))


def test_spiral_and_lemniscate_look_at_target_around_the_start():
    s = spiral(25, radius=2.0, elevation_deg=10.0, amplitude=0.3, turns=2.0, look_at=TARGET)
    assert_looks_at(s, TARGET)
    offsets = s.centers - s.centers[0]
    assert torch.allclose(offsets.norm(dim=-1), torch.linspace(0, 0.6, 25, dtype=torch.float64))
    assert torch.allclose(offsets @ s.R[0, :, 2], torch.zeros(25, dtype=torch.float64), atol=1e-12)
    lem = lemniscate(40, radius=2.0, amplitude=0.25, look_at=TARGET)
    assert_looks_at(lem, TARGET)
    x = (lem.centers - lem.centers[0]) @ lem.R[0, :, 0]
    y = -(lem.centers - lem.centers[0]) @ lem.R[0, :, 1]
    a = 0.5  # amplitude * radius
    assert torch.allclose((x**2 + y**2) ** 2, a**2 * (x**2 - y**2), atol=1e-12)  # lemniscate of Bernoulli
    assert float(x.max()) == pytest.approx(a, rel=0.02) and float(x.min()) == pytest.approx(-a, rel=0.02)


def test_roll_keeps_centre_and_view_direction():
    cams = roll(8, roll_deg=360.0, look_at=TARGET)
    assert torch.equal(cams.centers, cams.centers[:1].expand(8, 3))
    assert torch.allclose(cams.R[:, :, 2], cams.R[:1, :, 2].expand(8, 3))
    cos = (cams.R[:, :, 0] * cams.R[:1, :, 0]).sum(-1)
    assert torch.allclose(cos, torch.cos(torch.arange(8, dtype=torch.float64) * 2 * math.pi / 8))


def test_zoom_changes_only_focal():
    zin, zout = zoom_in(6, zoom=3.0), zoom_out(6, zoom=3.0)
    for cams, end in ((zin, 3.0), (zout, 1 / 3.0)):
        assert torch.equal(cams.c2w, cams.c2w[:1].expand(6, 4, 4))
        assert float(cams.fy[-1] / cams.fy[0]) == pytest.approx(end)
        assert torch.allclose(cams.fx, cams.fy)
    assert torch.all(zin.fov_y_deg.diff() < 0) and torch.all(zout.fov_y_deg.diff() > 0)


@pytest.mark.parametrize("preset, ratio", [(dolly_zoom_in, 0.4), (dolly_zoom_out, 2.5)])
def test_dolly_zoom_keeps_focal_over_distance(preset, ratio):
    cams = preset(7, distance_ratio=ratio, radius=2.0, elevation_deg=15.0, look_at=TARGET)
    forward = cams.R[:, :, 2]
    distance = ((TARGET - cams.centers) * forward).sum(-1)
    assert torch.allclose(cams.fy / distance, (cams.fy / distance)[:1].expand(7))
    assert float(distance[-1] / distance[0]) == pytest.approx(ratio)
    assert torch.allclose(forward, forward[:1].expand(7, 3))
    # a point on the look-at plane stays on the same pixel: the plane keeps its size in the image
    on_plane = TARGET + 0.3 * cams.R[0, :, 0] - 0.2 * cams.R[0, :, 1]
    uv, _ = cams.project(on_plane[None])
    assert torch.allclose(uv, uv[:1].expand_as(uv))


@pytest.mark.parametrize("preset, sign", [(pan_left, 1.0), (pan_right, -1.0)])
def test_pan_rotates_in_place_about_up(preset, sign):
    cams = preset(5, angle_deg=60.0, look_at=TARGET)
    assert torch.equal(cams.centers, cams.centers[:1].expand(5, 3))
    rel = cams.R @ cams.R[0].T  # world rotations; all about the up axis
    assert torch.allclose(rel @ UP, UP.expand(5, 3))
    angles = torch.atan2(rel[:, 1, 0], rel[:, 0, 0])
    assert torch.allclose(angles, sign * torch.linspace(0, math.radians(60), 5, dtype=torch.float64))
    # turning left brings the view towards the start camera's left (-x)
    assert sign * float(cams.R[-1, :, 2] @ -cams.R[0, :, 0]) > 0


@pytest.mark.parametrize("direction", list(MOVES))
def test_move_translates_along_camera_axis(direction):
    cams = move(direction, 5, distance=0.8, elevation_deg=20.0, look_at=TARGET)
    axis, sign = MOVES[direction]
    expected = cams.centers[0] + sign * torch.linspace(0, 0.8, 5, dtype=torch.float64)[:, None] * cams.R[0, :, axis]
    assert torch.allclose(cams.centers, expected)
    assert torch.equal(cams.R, cams.R[:1].expand(5, 3, 3))
    named = PATH_PRESETS[f"move_{direction}"](5, distance=0.8, elevation_deg=20.0, look_at=TARGET)
    assert torch.equal(named.c2w, cams.c2w)
    camera_axis = {
        "right": (0, 1),
        "left": (0, -1),
        "down": (1, 1),
        "up": (1, -1),
        "forward": (2, 1),
        "backward": (2, -1),
    }
    k, s = camera_axis[direction]  # the move in the start camera's own coordinates
    local = (cams.centers[-1] - cams.centers[0]) @ cams.R[0]
    assert float(local[k]) == pytest.approx(s * 0.8) and float(local.abs().sum()) == pytest.approx(0.8)


def test_the_registry_holds_every_preset_of_its_modules():
    from camera.presets import in_place, moves, orbits

    defined = {
        name: value
        for module in (orbits, in_place, moves)
        for name, value in vars(module).items()
        if callable(value) and not name.startswith("_") and getattr(value, "__module__", "") == module.__name__
    }
    # move takes a direction and through_cameras given cameras: the registry holds their named forms
    assert set(PATH_PRESETS) == set(defined) - {"move", "through_cameras"}
    assert all(PATH_PRESETS[name] is defined[name] for name in PATH_PRESETS)


ANCHORED = [name for name in PATH_PRESETS if name not in ("v3d_orbit", "im3d_orbit")]


@pytest.mark.parametrize("name", ANCHORED)
def test_anchored_presets_start_at_the_anchor(name):
    anchor = anchor_camera()
    cams = PATH_PRESETS[name](num_frames=24, anchor=anchor)
    assert torch.equal(cams.c2w[0], anchor.c2w[0]) and torch.equal(cams.K[0], anchor.K[0])
    assert (cams.height, cams.width) == (96, 128)
    assert torch.allclose(cams.cx, anchor.cx.expand(24)) and torch.allclose(cams.cy, anchor.cy.expand(24))
    # continuous: the second frame is near the first (radius 2 along the optical axis)
    assert float((cams.centers[1] - cams.centers[0]).norm()) < 1.0


def test_anchored_orbit_uses_anchor_distance_elevation_and_roll():
    anchor = anchor_camera()
    cams = orbit(9, anchor=anchor, look_at=TARGET)
    offsets = cams.centers - TARGET
    r0 = (anchor.centers[0] - TARGET).norm()
    assert torch.allclose(offsets.norm(dim=-1), r0.expand(9))
    el, _ = polar(offsets, UP)
    assert torch.allclose(el, el[:1].expand(9))
    # the anchor's roll relative to its look-at frame is kept on every frame
    base = look_at(cams.centers, TARGET, UP)[:, :3, :3]
    rel = base.transpose(1, 2) @ cams.R
    assert torch.allclose(rel, rel[:1].expand(9, 3, 3), atol=1e-12)
    assert_looks_at(cams, TARGET)  # the roll is about the optical axis: target still at the principal point


def test_anchor_look_at_defaults_along_optical_axis():
    anchor = anchor_camera()
    cams = orbit(5, anchor=anchor, radius=0.7)
    point = anchor.centers[0] + 0.7 * anchor.R[0, :, 2]
    assert torch.allclose((cams.centers - point).norm(dim=-1), torch.full((5,), 0.7, dtype=torch.float64))


def test_through_cameras_passes_first_and_last():
    keys = orbit(4, arc_deg=120.0, look_at=TARGET)
    path = through_cameras(keys, 13)
    assert len(path) == 13
    assert torch.equal(path.c2w[0], keys.c2w[0]) and torch.equal(path.c2w[-1], keys.c2w[-1])


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda: orbit(0), "num_frames"),
        (lambda: orbit(2.5), "num_frames"),
        (lambda: orbit(4, radius=0.0), "radius"),
        (lambda: orbit(4, radius=float("nan")), "radius"),
        (lambda: orbit(4, fov_deg=0.0), "fov_deg"),
        (lambda: orbit(4, fov_deg=180.0), "fov_deg"),
        (lambda: orbit(4, look_at=(0.0, float("nan"), 0.0)), "look_at"),
        (lambda: orbit(4, up=(0.0, 0.0, 0.0)), "up"),
        (lambda: orbit(4, elevation_deg=90.0), "parallel"),
        (lambda: orbit(4, anchor=anchor_camera(), look_at=anchor_camera().centers[0]), "equals the camera position"),
        (lambda: orbit(4, anchor=Cameras.cat([anchor_camera(), anchor_camera()])), "one camera"),
        (lambda: zoom_in(4, zoom=0.5), "zoom > 1"),
        (lambda: dolly_zoom_in(4, distance_ratio=1.5), "distance_ratio"),
        (lambda: dolly_zoom_out(4, distance_ratio=0.5), "distance_ratio"),
        (lambda: move("sideways"), "unknown move direction"),
        (lambda: spiral(4, amplitude=-1.0), "amplitude"),
    ],
)
def test_bad_inputs_raise_clear_errors(call, match):
    with pytest.raises(ValueError, match=match):
        call()
