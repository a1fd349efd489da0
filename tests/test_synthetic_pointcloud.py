import math

import torch

from nvs.data.synthetic.pointcloud import sample_surface
from nvs.data.synthetic.primitives import BOX, SPHERE
from nvs.data.synthetic.scene import SyntheticScene, make_scene


def _scene(kinds, centers, halves) -> SyntheticScene:
    affines = []
    for c, h in zip(centers, halves):
        c, h = torch.tensor(c), torch.tensor(h)
        affines.append(torch.cat([torch.diag(1 / h), (-c / h)[:, None]], 1))
    n = len(kinds)
    return SyntheticScene(
        category="test",
        seed=0,
        kind=torch.tensor(kinds),
        local_from_world=torch.stack(affines).float(),
        texture=torch.zeros(n, dtype=torch.long),
        tint=torch.ones(n, 3),
        uv_scale=torch.ones(n, 2),
        room=torch.tensor([6.0, 6.0, 5.0]),
        room_texture=torch.tensor([0, 0]),
        room_tint=torch.ones(2, 3),
        light_dir=torch.tensor([0.0, 0.0, 1.0]),
        bounds=torch.tensor([[-3.0, -3.0, 0.0], [3.0, 3.0, 3.0]]),
    )


def test_points_lie_on_spheres_with_area_weights():
    scene = _scene([SPHERE, SPHERE], [[-1.5, 0.0, 1.5], [1.5, 0.0, 1.5]], [[0.5] * 3, [1.0] * 3])
    points, colors = sample_surface(scene, 4000, seed=0)
    assert points.shape == colors.shape == (4000, 3) and 0 <= colors.min() and colors.max() <= 1
    small = points[:, 0] < 0
    d_small = (points[small] - torch.tensor([-1.5, 0, 1.5])).norm(dim=-1)
    d_big = (points[~small] - torch.tensor([1.5, 0, 1.5])).norm(dim=-1)
    assert torch.allclose(d_small, torch.tensor(0.5), atol=1e-5) and torch.allclose(d_big, torch.tensor(1.0), atol=1e-5)
    assert abs(float(small.float().mean()) - 0.2) < 0.03  # areas 0.25 : 1


def test_box_faces_are_weighted_by_their_area():
    scene = _scene([BOX], [[0.0, 0.0, 1.0]], [[1.0, 0.5, 0.25]])
    points, _ = sample_surface(scene, 7000, seed=1)
    on_z = ((points[:, 2] - 1).abs() > 0.25 - 1e-5).float().mean()
    assert abs(float(on_z) - 4 / 7) < 0.03  # faces z: 2*2*1*2 = 8 of 14


def test_hidden_surfaces_are_dropped_and_sampling_is_deterministic():
    scene = _scene([SPHERE, SPHERE], [[0.0, 0.0, 1.0], [0.6, 0.0, 1.0]], [[0.5] * 3, [0.5] * 3])
    points, _ = sample_surface(scene, 2000, seed=2)
    d0 = (points - torch.tensor([0.0, 0.0, 1.0])).norm(dim=-1)
    d1 = (points - torch.tensor([0.6, 0.0, 1.0])).norm(dim=-1)
    assert (torch.minimum(d0, d1) > 0.5 - 1e-4).all()  # nothing inside either sphere
    again, _ = sample_surface(scene, 2000, seed=2)
    assert torch.equal(points, again)


def test_real_scene_points_stay_in_its_bounds():
    scene = make_scene("table", 0)
    points, _ = sample_surface(scene, 1000, seed=0)
    assert (points >= scene.bounds[0] - 1e-4).all() and (points <= scene.bounds[1] + 1e-4).all()
    assert math.isclose(float(points[:, 2].min()), 0.0, abs_tol=0.2)
