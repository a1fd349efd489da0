import math

import numpy as np
import pytest
import torch

from camera.cameras import Cameras, intrinsics_matrix, look_at
from nvs.data.synthetic.primitives import BOX, SPHERE
from nvs.data.synthetic.render import render
from nvs.data.synthetic.scene import SyntheticScene, make_scene

CENTER = np.array([0.2, -0.1, 0.6])
RADIUS = 0.5


def _one_primitive_scene(kind: int, half: float = RADIUS) -> SyntheticScene:
    c = torch.tensor(CENTER, dtype=torch.float32)
    affine = torch.cat([torch.eye(3) / half, (-c / half)[:, None]], 1)[None]
    return SyntheticScene(
        category="test",
        seed=0,
        kind=torch.tensor([kind]),
        local_from_world=affine,
        texture=torch.tensor([0]),
        tint=torch.ones(1, 3),
        uv_scale=torch.ones(1, 2),
        room=torch.tensor([6.0, 6.0, 5.0]),
        room_texture=torch.tensor([9, 10]),
        room_tint=torch.ones(2, 3),
        light_dir=torch.tensor([0.0, 0.0, 1.0]),
        bounds=torch.tensor(np.array([CENTER - half, CENTER + half]), dtype=torch.float32),
    )


def _cameras(h=24, w=32) -> Cameras:
    eye = torch.tensor([[2.5, 1.0, 1.4], [-1.5, -2.0, 1.0]], dtype=torch.float64)
    c2w = look_at(eye, torch.tensor(CENTER), torch.tensor([0.0, 0.0, 1.0], dtype=torch.float64))
    K = intrinsics_matrix(
        torch.tensor([30.0, 36.0]), torch.tensor([31.0, 35.0]), torch.tensor([16.3, 15.2]), torch.tensor([12.1, 11.7])
    )
    return Cameras(K.double(), c2w, h, w)


def _analytic_sphere(cams: Cameras):
    """Per pixel centre: camera-space z of the first ray-sphere hit (nan on a miss), by the textbook formula."""
    K, c2w = cams.K.numpy(), cams.c2w.numpy()
    v, u = np.mgrid[0 : cams.height, 0 : cams.width] + 0.5
    pix = np.stack([u, v, np.ones_like(u)], -1)
    out = []
    for i in range(len(cams)):
        d_cam = pix @ np.linalg.inv(K[i]).T
        d = d_cam @ c2w[i, :3, :3].T
        d /= np.linalg.norm(d, axis=-1, keepdims=True)
        oc = c2w[i, :3, 3] - CENTER
        b = d @ oc
        disc = b * b - (oc @ oc - RADIUS**2)
        t = -b - np.sqrt(np.where(disc >= 0, disc, np.nan))
        out.append(t * (d @ c2w[i, :3, 2]))
    return np.stack(out)


def test_sphere_depth_matches_the_analytic_ray_sphere_distance():
    cams = _cameras()
    out = render(_one_primitive_scene(SPHERE), cams, supersample=1)
    z = _analytic_sphere(cams)
    hit = np.isfinite(z)
    assert 40 < hit.sum() < hit.size
    np.testing.assert_allclose(out.depth[:, 0].numpy()[hit], z[hit], rtol=1e-4)
    assert np.array_equal(out.mask[:, 0].numpy() > 0.5, hit)


def test_normals_are_unit_and_face_the_camera():
    cams = _cameras()
    out = render(make_scene("table", 3), cams, supersample=1)
    n = out.normal.permute(0, 2, 3, 1).reshape(len(cams), -1, 3).double()
    assert torch.allclose(n.norm(dim=-1), torch.ones(1, dtype=torch.float64), atol=1e-4)
    from camera.rays import ray_bundle

    _, dirs = ray_bundle(cams)
    dirs_cam = torch.einsum("nji,npj->npi", cams.R, dirs.reshape(len(cams), -1, 3))
    assert ((n * dirs_cam).sum(-1) < 1e-6).all()


def test_sphere_normals_point_away_from_the_centre():
    cams = _cameras()
    out = render(_one_primitive_scene(SPHERE), cams, supersample=1)
    hit = out.mask[:, 0] > 0.5
    v, u = torch.meshgrid(torch.arange(24) + 0.5, torch.arange(32) + 0.5, indexing="ij")
    pix = torch.stack([u, v], -1).reshape(1, -1, 2).expand(2, -1, -1).double()
    points = cams.unproject(pix, out.depth.reshape(2, -1).double())  # [N, P, 3] world
    expected = torch.nn.functional.normalize(points - torch.tensor(CENTER), dim=-1)
    expected_cam = torch.einsum("nji,npj->npi", cams.R, expected)
    got = out.normal.permute(0, 2, 3, 1).reshape(2, -1, 3).double()
    assert torch.allclose(got[hit.reshape(2, -1)], expected_cam[hit.reshape(2, -1)], atol=1e-3)


def test_soft_mask_area_matches_the_projected_sphere():
    h = w = 48
    eye = torch.tensor([[0.2, -3.1, 0.6]], dtype=torch.float64)  # on the sphere's horizontal through its centre
    c2w = look_at(eye, torch.tensor(CENTER), torch.tensor([0.0, 0.0, 1.0], dtype=torch.float64))
    f = 40.0
    cams = Cameras(intrinsics_matrix(torch.tensor([f]), torch.tensor([f]), w / 2, h / 2).double(), c2w, h, w)
    out = render(_one_primitive_scene(SPHERE), cams, supersample=4)
    dist = 3.0
    # a sphere seen head-on projects to a circle of radius f * r / sqrt(d² - r²)
    expected = math.pi * (f * RADIUS / math.sqrt(dist**2 - RADIUS**2)) ** 2
    assert abs(float(out.mask.sum()) - expected) / expected < 0.02
    edge = (out.mask > 0.05) & (out.mask < 0.95)
    assert edge.any()  # supersampling gives soft edges


def test_box_depth_on_its_front_face():
    h, w = 16, 16
    eye = torch.tensor([[0.2, -3.0, 0.6]], dtype=torch.float64)
    c2w = look_at(eye, torch.tensor(CENTER), torch.tensor([0.0, 0.0, 1.0], dtype=torch.float64))
    cams = Cameras(intrinsics_matrix(torch.tensor([20.0]), torch.tensor([20.0]), 8.0, 8.0).double(), c2w, h, w)
    out = render(_one_primitive_scene(BOX, half=0.3), cams, supersample=1)
    centre = out.depth[0, 0, 6:10, 6:10]
    assert torch.allclose(centre, torch.full_like(centre, 2.6), atol=1e-4)  # centre 2.9 away, face 0.3 nearer


def test_render_is_deterministic_and_in_range():
    cams = _cameras()
    scene = make_scene("rocket", 1)
    a, b = render(scene, cams), render(scene, cams)
    assert torch.equal(a.rgb, b.rgb) and torch.equal(a.depth, b.depth)
    assert a.rgb.shape == (2, 3, 24, 32) and a.mask.shape == (2, 1, 24, 32)
    assert 0 <= float(a.rgb.min()) and float(a.rgb.max()) <= 1 and (a.depth > 0).all()


def test_camera_outside_the_room_is_refused():
    cams = _cameras()
    far = cams.c2w.clone()
    far[:, :3, 3] *= 10
    with pytest.raises(ValueError, match="outside the room"):
        render(make_scene("tower", 0), cams.with_c2w(far))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="CUDA not available: the GPU path is not exercised on CPU")
def test_cuda_matches_cpu():
    cams = _cameras()
    scene = make_scene("mushroom", 0)
    cpu, gpu = render(scene, cams), render(scene, cams.to("cuda"))
    assert torch.allclose(cpu.rgb, gpu.rgb.cpu(), atol=2e-3)
