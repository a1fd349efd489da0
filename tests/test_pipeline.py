import pytest
import torch

import nvs  # noqa: F401
from camera.cameras import Cameras
from camera.views import Views
from nvs.pipeline import PathNVSPipeline, SamplerSettings, resize_views
from nvs.sampling import Guidance
from tests.tiny_nvs import scene, tiny_model


@pytest.mark.parametrize("num_inputs,num_targets", [(1, 1), (6, 5), (2, 40)])
def test_generate_shapes_and_finiteness(num_inputs, num_targets):
    inputs, path = scene(num_inputs, num_targets)
    out = PathNVSPipeline(tiny_model()).generate(inputs, path, steps=1, guidance=1.0, seed=0)
    assert out.images.shape == (num_targets, 3, 32, 32)
    assert torch.isfinite(out.images).all() and out.images.min() >= 0 and out.images.max() <= 1
    torch.testing.assert_close(out.cameras.c2w, path.c2w)


def test_generate_is_seeded_and_takes_targets_on_inputs_and_other_sizes():
    inputs, path = scene(2, 2)
    path = Cameras.cat([path, inputs.cameras[1:]])  # the last target is an input view
    big = resize_views(inputs, 96, 80)  # other input sizes are resized to the model's
    pipe = PathNVSPipeline(tiny_model(), SamplerSettings(method="heun", steps=2, guidance=Guidance(1.0, 2.0)))
    a = pipe.generate(big, path, seed=3)
    b = pipe.generate(big, path, seed=3)
    assert a.images.shape == (3, 3, 32, 32) and torch.isfinite(a.images).all()
    assert torch.equal(a.images, b.images)


def test_sdedit_shapes_and_its_start():
    inputs, path = scene(2, 5)
    frames = torch.rand(5, 3, 48, 48, generator=torch.Generator().manual_seed(0))
    pipe = PathNVSPipeline(tiny_model())
    out = pipe.sdedit(frames, path.resize(48, 48), inputs, sigma=2.0, steps=2, guidance=1.0, seed=0)
    assert out.shape == frames.shape and torch.isfinite(out).all()
    with pytest.raises(ValueError, match="sigma must exceed"):
        pipe.sdedit(frames, path.resize(48, 48), inputs, sigma=0.001, steps=2)
    with pytest.raises(ValueError, match="one camera each"):
        pipe.sdedit(frames[:2], path, inputs, sigma=1.0, steps=2)


@pytest.mark.parametrize("preset,frames", [("v3d", 18), ("im3d", 16)])
def test_orbit_from_one_image(preset, frames, monkeypatch):
    pipe = PathNVSPipeline(tiny_model())
    seen = {}
    monkeypatch.setattr(pipe, "generate", lambda inputs, path, *a: seen.update(inputs=inputs, path=path))
    pipe.orbit(torch.rand(3, 40, 40, generator=torch.Generator().manual_seed(0)), preset, elevation_deg=20.0)
    inputs, path = seen["inputs"], seen["path"]
    assert len(path) == frames and (path.height, path.width) == (32, 32)
    assert inputs.images.shape == (1, 3, 32, 32)
    torch.testing.assert_close(inputs.cameras.c2w, path[:1].c2w.float())  # the image is seen from pose 0
    elevation = torch.rad2deg(torch.asin(path.centers[:, 2] / path.centers.norm(dim=-1)))
    torch.testing.assert_close(elevation, torch.full_like(elevation, 0.0 if preset == "v3d" else 20.0))


def test_errors_before_work():
    pipe = PathNVSPipeline(tiny_model())
    inputs, path = scene(6, 4)
    seven = Views(torch.cat([inputs.images, inputs.images[:1]]), Cameras.cat([inputs.cameras, inputs.cameras[:1]]))
    with pytest.raises(ValueError, match="takes 1 to 6"):
        pipe.generate(seven, path, steps=1)
    still = Cameras.cat([path[:1]] * 3)
    with pytest.raises(ValueError, match="same pose"):
        pipe.generate(inputs, still, steps=1)
    with pytest.raises(ValueError, match="'v3d'"):
        pipe.orbit(torch.rand(3, 8, 8), "spiral")


def test_chunking_comes_from_the_model_settings_unless_given():
    from dataclasses import replace
    from types import SimpleNamespace

    from nvs.models.settings import ModelSettings
    from nvs.pipeline import PathNVSPipeline

    model = SimpleNamespace(settings=replace(ModelSettings(), chunking="windows"))
    assert PathNVSPipeline(model).chunking == "windows"
    assert PathNVSPipeline(model, chunking="anchors").chunking == "anchors"
    with pytest.raises(ValueError, match="chunking"):
        PathNVSPipeline(model, chunking="sliding")
    with pytest.raises(ValueError, match="chunking"):
        ModelSettings(chunking="sliding")


@pytest.mark.parametrize("conditioner", ["pixelnerf", "plucker"])
def test_a_bfloat16_model_generates_what_its_float32_copy_does(conditioner):
    """The whole model cast to bf16, as `nvs generate` does on CUDA: the conditioner takes the float32
    inputs through autocast (PixelNeRF's encoder failed on them before), geometry stays float32."""
    import copy

    model = tiny_model(conditioner)
    inputs, path = scene(2, 3)
    want = PathNVSPipeline(model).generate(inputs, path, steps=2, guidance=1.0, seed=0).images
    low = copy.deepcopy(model).to(torch.bfloat16)
    got = PathNVSPipeline(low).generate(inputs, path, steps=2, guidance=1.0, seed=0).images
    assert got.dtype == torch.float32 and torch.isfinite(got).all()
    assert (got - want).abs().mean() < 0.02  # bf16 rounding through a random tiny model; measured ~0.003
