import torch

from camera.views import Views
from nvs.data.synthetic.render import render
from nvs.data.synthetic.scene import make_scene
from nvs.data.synthetic.trajectories import capture_cameras
from nvs.data.synthetic.views import object_orbit_views, synthetic_views


def test_synthetic_views_are_the_rendered_capture():
    views = synthetic_views("mushroom", 5, num_frames=3, height=24, width=32)
    assert isinstance(views, Views) and views.images.shape == (3, 3, 24, 32)
    assert views.category == "mushroom" and views.scene == "mushroom_00005" and views.frame_ids == [0, 1, 2]
    scene = make_scene("mushroom", 5)
    cams = capture_cameras(scene, 3, 24, 32, 5)
    assert torch.equal(views.cameras.c2w, cams.c2w)
    out = render(scene, cams)
    assert (
        torch.equal(views.images, out.rgb)
        and torch.equal(views.masks, out.mask)
        and torch.equal(views.depths, out.depth)
    )
    assert float(views.masks.mean()) > 0.02


def test_object_orbit_views_render_at_the_given_cameras():
    cams = capture_cameras(make_scene("rocket", 0), 2, 16, 16, 9)
    views = object_orbit_views("rocket", 0, cams, supersample=1)
    assert views.cameras is cams and views.depths.shape == (2, 1, 16, 16)
