import pytest
import torch

from conditioning.base import CONDITIONERS, Conditioner, ConditioningInputs, NoConditioner, input_latent_maps
from tests.conditioning_scenes import make_inputs, orbit


def test_inputs_validate_shapes_with_clear_errors():
    good = make_inputs(2, 3, 4)
    assert (good.num_scenes, good.num_inputs, good.num_targets) == (2, 3, 4)
    with pytest.raises(ValueError, match=r"input_images must be \[B, V, 3, H, W\]"):
        ConditioningInputs(torch.rand(2, 3, 16, 16), good.input_cameras, good.target_cameras, (4, 4))
    with pytest.raises(ValueError, match="need 6 input cameras"):
        ConditioningInputs(good.input_images, orbit(5), good.target_cameras, (4, 4))
    with pytest.raises(ValueError, match="do not split into 2 scenes"):
        ConditioningInputs(good.input_images, good.input_cameras, orbit(7), (4, 4))
    with pytest.raises(ValueError, match="input_latents must be"):
        ConditioningInputs(
            good.input_images, good.input_cameras, good.target_cameras, (4, 4), input_latents=torch.rand(2, 3, 4, 8, 8)
        )


def test_conditioner_is_abstract():
    with pytest.raises(TypeError):
        Conditioner()


def test_every_conditioner_is_registered_by_its_name_and_names_are_unique():
    assert sorted(CONDITIONERS) == ["camera_embedding", "combined", "none", "pixelnerf", "plucker"]
    assert all(cls.name == name and issubclass(cls, Conditioner) for name, cls in CONDITIONERS.items())
    with pytest.raises(TypeError, match="'plucker' is taken by PluckerConditioner"):
        type("OtherPlucker", (NoConditioner,), {"name": "plucker"})
    assert CONDITIONERS["plucker"].__name__ == "PluckerConditioner"


def test_build_config_is_the_name_and_every_argument_as_plain_json():
    from conditioning.plucker import PluckerConditioner

    cond = PluckerConditioner(first_camera_distance=2.0)
    assert cond.build_config == {
        "name": "plucker",
        "order": "moment_first",
        "first_camera_distance": 2.0,
        "input_latent_views": 0,
        "latent_channels": 4,
    }
    assert NoConditioner().build_config == {"name": "none"}


def test_no_conditioner_produces_nothing():
    out = NoConditioner()(make_inputs(1, 2, 3))
    assert out.maps is None and out.frame_embedding is None and out.tokens is None and not out.losses
    assert NoConditioner().map_channels == 0


def test_input_latent_maps_pad_missing_views_with_zeros():
    inputs = make_inputs(2, 2, 3)
    maps = input_latent_maps(inputs, 4)
    assert maps.shape == (2, 3, 16, 4, 4)
    torch.testing.assert_close(maps[1, 2, 4:8], inputs.input_latents[1, 1])
    assert torch.all(maps[:, :, 8:] == 0)
    torch.testing.assert_close(input_latent_maps(inputs, 1)[0, 0], inputs.input_latents[0, 0])
    inputs.input_latents = None
    with pytest.raises(ValueError, match="input_latents"):
        input_latent_maps(inputs, 1)
