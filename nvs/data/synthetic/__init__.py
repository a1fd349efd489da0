"""The synthetic world: procedural textured objects in a room, a torch ray caster, hand-held capture
paths, ground-truth point clouds, and a writer of the CO3D v2 layout.

Example:
    >>> from nvs.data.synthetic import synthetic_views
    >>> views = synthetic_views("snowman", seed=0, num_frames=2, height=32, width=32, supersample=1)
    >>> views.images.shape, len(views.cameras)
    (torch.Size([2, 3, 32, 32]), 2)
"""

from nvs.data.synthetic.pointcloud import sample_surface
from nvs.data.synthetic.render import RenderOutput, render
from nvs.data.synthetic.scene import CATEGORIES, SyntheticScene, make_scene
from nvs.data.synthetic.trajectories import capture_cameras
from nvs.data.synthetic.views import object_orbit_views, synthetic_views

__all__ = [
    "CATEGORIES",
    "RenderOutput",
    "SyntheticScene",
    "capture_cameras",
    "make_scene",
    "object_orbit_views",
    "render",
    "sample_surface",
    "synthetic_views",
]
