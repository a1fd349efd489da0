import pytest
import torch

from nvs.data.synthetic.scene import CATEGORIES, make_scene


def test_categories_fit_the_unit_box_and_are_deterministic():
    assert len(CATEGORIES) >= 4
    for category in CATEGORIES:
        for seed in range(10):
            scene = make_scene(category, seed)
            lo, hi = scene.bounds
            assert (lo[:2] >= -1).all() and (hi[:2] <= 1).all() and lo[2] >= 0 and hi[2] <= 2.0
            assert ((hi - lo) / 2 <= 1).all()  # centred on its box centre it fits [-1, 1]^3
            assert (scene.room[:2] > 2 * 3).all()  # walls far beyond any capture orbit
            assert len(scene.kind) == len(scene.local_from_world) == len(scene.texture) == len(scene.tint) >= 2
            again = make_scene(category, seed)
            assert torch.equal(scene.local_from_world, again.local_from_world)
            assert torch.equal(scene.texture, again.texture)
        assert not torch.equal(make_scene(category, 0).tint, make_scene(category, 1).tint)


def test_unknown_category_names_the_choices():
    with pytest.raises(ValueError, match="snowman"):
        make_scene("dragon", 0)


def test_every_primitive_rests_above_the_floor():
    for category in CATEGORIES:
        scene = make_scene(category, 2)
        assert scene.bounds[0, 2] >= 0 and scene.light_dir[2] > 0
        assert torch.allclose(scene.light_dir.norm(), torch.tensor(1.0))
