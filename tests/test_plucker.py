import pytest
import torch

from camera.cameras import Cameras
from camera.rays import plucker
from conditioning.plucker import PluckerConditioner, target_plucker
from tests.conditioning_scenes import make_inputs, single_thread  # noqa: F401  (fixture)

pytestmark = pytest.mark.usefixtures("single_thread")


@pytest.mark.parametrize("views,targets", [(1, 1), (6, 25), (3, 7)])
def test_shapes_and_finite(views, targets):
    out = PluckerConditioner()(make_inputs(2, views, targets))
    assert out.maps.shape == (2, targets, 6, 4, 4) and torch.isfinite(out.maps).all()


def test_equals_camera_plucker_relative_to_the_first_input():
    inputs = make_inputs(2, 3, 4)
    maps = PluckerConditioner(order="direction_first")(inputs).maps
    for b in range(2):
        cams = Cameras.cat([inputs.input_cameras[b * 3], inputs.target_cameras[b * 4 : (b + 1) * 4]])
        want = plucker(cams, 4, 4, "direction_first", relative_to_first=True)[1:]
        torch.testing.assert_close(maps[b], want)


def test_invariant_to_a_rigid_motion_of_the_world_and_orders_swap():
    inputs = make_inputs(1, 2, 3)
    a = target_plucker(inputs.input_cameras, inputs.target_cameras, 1, 4, 4, "moment_first")
    move = torch.eye(4)
    c, s = torch.cos(torch.tensor(1.1)), torch.sin(torch.tensor(1.1))
    move[:3, :3] = torch.tensor([[1.0, 0, 0], [0, c, -s], [0, s, c]])
    move[:3, 3] = torch.tensor([2.0, 3.0, -1.0])
    b = target_plucker(
        inputs.input_cameras.with_c2w(move @ inputs.input_cameras.c2w),
        inputs.target_cameras.with_c2w(move @ inputs.target_cameras.c2w),
        1,
        4,
        4,
        "moment_first",
    )
    torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-5)
    d = target_plucker(inputs.input_cameras, inputs.target_cameras, 1, 4, 4, "direction_first")
    torch.testing.assert_close(d[:, :, :3], a[:, :, 3:])


def test_scale_normalisation_puts_the_first_camera_at_the_given_distance():
    inputs = make_inputs(1, 2, 2)
    scaled = inputs.input_cameras.with_c2w(inputs.input_cameras.c2w.clone())
    scaled.c2w[:, :3, 3] *= 7.0
    t_scaled = inputs.target_cameras.with_c2w(inputs.target_cameras.c2w.clone())
    t_scaled.c2w[:, :3, 3] *= 7.0
    a = target_plucker(inputs.input_cameras, inputs.target_cameras, 1, 4, 4, first_camera_distance=2.0)
    b = target_plucker(scaled, t_scaled, 1, 4, 4, first_camera_distance=2.0)
    torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-4)


def test_input_latents_are_concatenated():
    inputs = make_inputs(2, 2, 3)
    cond = PluckerConditioner(input_latent_views=3)
    assert cond.map_channels == 18 and cond.uses_input_latents
    maps = cond(inputs).maps
    assert maps.shape == (2, 3, 18, 4, 4)
    torch.testing.assert_close(maps[0, 1, 6:10], inputs.input_latents[0, 0])
    assert torch.all(maps[:, :, 14:] == 0)
    with pytest.raises(ValueError, match="order"):
        PluckerConditioner(order="xyz")


def test_scene_normalisation_matches_stable_virtual_camera_over_every_camera_of_the_pass():
    from tests.test_rays import seva_plucker

    inputs = make_inputs(2, 3, 5)
    shift = torch.eye(4)
    shift[:3, 3] = torch.tensor([4.0, -2.0, 1.5])  # an uncentred world
    cin = inputs.input_cameras.with_c2w(shift @ inputs.input_cameras.c2w)
    cout = inputs.target_cameras.with_c2w(shift @ inputs.target_cameras.c2w)
    got = target_plucker(cin, cout, 2, 4, 4, "direction_first", first_camera_distance=2.0)
    for b in range(2):
        cams = Cameras.cat([cin[b * 3], cout[b * 5 : (b + 1) * 5]])
        everyone = torch.cat([cin.c2w[b * 3 : (b + 1) * 3], cout.c2w[b * 5 : (b + 1) * 5]])
        want = seva_plucker(cams.c2w.double(), cams.K.double(), (16, 16), (4, 4), 2.0, ref_c2w=everyone.double())
        torch.testing.assert_close(got[b], want[1:].float(), atol=1e-5, rtol=1e-5)
