import torch

from nvs.data.synthetic.scene import make_scene
from nvs.data.synthetic.trajectories import capture_cameras


def test_capture_orbits_the_object_smoothly_and_looks_at_it():
    scene = make_scene("tower", 4)
    cams = capture_cameras(scene, 60, 96, 128, seed=4)
    assert len(cams) == 60 and (cams.height, cams.width) == (96, 128)
    uv, z = cams.project(scene.center[None].double())
    assert (z > 0).all()
    assert ((uv[:, 0, 0] - 64).abs() < 0.15 * 128).all() and ((uv[:, 0, 1] - 48).abs() < 0.15 * 96).all()
    rel = cams.centers - scene.center.double()
    azimuth = torch.atan2(rel[:, 1], rel[:, 0])
    sweep = torch.remainder(azimuth.diff() + torch.pi, 2 * torch.pi) - torch.pi
    assert abs(float(sweep.sum())) > torch.deg2rad(torch.tensor(280.0))  # nearly a full circle
    steps = cams.centers.diff(dim=0).norm(dim=-1)
    assert steps.max() < 2 * steps.mean()  # smooth: no jumps
    assert float(cams.fy.max() / cams.fy.min()) > 1.02  # the focal length varies
    radius = rel.norm(dim=-1)
    assert radius.std() > 0.01 and (rel[:, 2] > 0).all()
    world_up = torch.tensor([0.0, 0.0, 1.0], dtype=torch.float64)
    roll_tilt = (cams.R[:, :, 0] @ world_up).abs()  # camera x axis against the world's up
    assert (roll_tilt < 0.15).all() and (roll_tilt > 1e-4).any()


def test_capture_is_deterministic_per_seed():
    scene = make_scene("snowman", 0)
    a, b, c = (capture_cameras(scene, 10, 32, 32, seed=s) for s in (1, 1, 2))
    assert torch.equal(a.c2w, b.c2w) and torch.equal(a.K, b.K)
    assert not torch.allclose(a.c2w, c.c2w)
