import copy

import pytest
import torch
from torch import nn

from camera.validate import InputError
from nvs.models.speed import (
    SPEED_MODES,
    SpeedMode,
    accelerate,
    channels_last_convs,
    fuse_attention_projections,
    speed_mode,
)
from nvs.pipeline import PathNVSPipeline, SamplerSettings
from tests.tiny_nvs import scene, tiny_model


def fresh():
    return copy.deepcopy(tiny_model())


def generate(model, seed=0):
    inputs, path = scene(2, 4)
    return PathNVSPipeline(model, SamplerSettings(steps=2)).generate(inputs, path, guidance=2.0, seed=seed).images


@pytest.fixture(scope="module")
def eager_frames():
    return generate(tiny_model())


@pytest.fixture
def compiled(monkeypatch):
    """nn.Module.compile recorded instead of run (dynamo on this CPU takes longer than a test may)."""
    calls = []
    monkeypatch.setattr(nn.Module, "compile", lambda self, **kw: calls.append((self, kw)))
    return calls


def test_modes_by_name_and_errors():
    assert speed_mode(None) == speed_mode("eager") == SpeedMode()
    assert speed_mode("compile") is SPEED_MODES["compile"] and speed_mode(SPEED_MODES["compile"]).compiles
    with pytest.raises(InputError, match=r"unknown speed mode 'fp8'; use one of eager, compile \(--speed\)"):
        speed_mode("fp8")


def test_channels_last_weights_of_every_rank():
    model = fresh()
    convs = [m for m in model.unet.modules() if isinstance(m, (nn.Conv2d, nn.Conv3d))]
    assert {m.weight.ndim for m in convs} == {4, 5}  # SVD's spatial and temporal convolutions
    assert channels_last_convs(model.unet) == len(convs)
    for m in convs:
        fmt = torch.channels_last if m.weight.ndim == 4 else torch.channels_last_3d
        assert m.weight.is_contiguous(memory_format=fmt) and m.weight.stride(1) == 1  # input channels innermost


def test_fused_projections_compute_the_same_denoiser():
    from diffusers.models.attention_processor import FusedAttnProcessor2_0

    from nvs.models import Condition

    model, plain = fresh(), tiny_model()
    g = torch.Generator().manual_seed(1)
    h, w = plain.settings.latent_size
    x = torch.randn(2, 4, 4, h, w, generator=g)
    cond = Condition(torch.randn(2, 2, 32, generator=g), torch.randn(2, 4, h, w, generator=g))
    cond.conditioning.maps = torch.randn(2, 4, plain.conditioner.map_channels, h, w, generator=g)
    sigma = torch.tensor([0.5, 20.0])
    with torch.no_grad():
        ref = plain.denoise(x, sigma, cond)
        assert fuse_attention_projections(model.unet) == 4 * 4  # 4 transformer models x 2 blocks x 2 attentions
        out = model.denoise(x, sigma, cond)
    assert all(isinstance(p, FusedAttnProcessor2_0) for p in model.unet.attn_processors.values())
    attn = model.unet.down_blocks[0].attentions[0].transformer_blocks[0]
    assert attn.attn1.to_qkv.out_features == 3 * attn.attn1.to_q.out_features and hasattr(attn.attn2, "to_kv")
    torch.testing.assert_close(out, ref, rtol=1e-5, atol=1e-5)


def test_compile_mode_gives_the_eager_frames(compiled, eager_frames):
    model = accelerate(fresh(), "compile")
    recipe = SPEED_MODES["compile"]
    assert [m for m, _ in compiled] == [model.unet, model.vae.decoder]
    assert all(kw == {"backend": "inductor", "dynamic": False, "options": recipe.options} for _, kw in compiled)
    assert model.speed is recipe
    torch.testing.assert_close(generate(model), eager_frames, rtol=0, atol=1e-4)


def test_eager_mode_changes_nothing_and_a_second_mode_is_refused(compiled, eager_frames):
    model = accelerate(fresh(), "eager")
    assert not compiled
    assert torch.equal(generate(model), eager_frames)
    accelerate(model, SpeedMode(channels_last=True, compile_unet=True, backend="eager", options={"max_autotune": True}))
    assert compiled[0][1] == {"backend": "eager", "dynamic": False}  # inductor options go to inductor only
    with pytest.raises(ValueError, match="already runs in speed mode"):
        accelerate(model, "compile")


def test_an_unknown_speed_flag_fails_before_work(tmp_path, capsys):
    from nvs.cli import main

    message = "unknown speed mode 'fast'; use one of eager, compile (--speed)"
    out = tmp_path / "gen"
    argv = ["generate", "--random-model", "tiny", "--device", "cpu", "--speed", "fast", "--out", str(out)]
    assert main(argv) == 2
    assert message in capsys.readouterr().err and not out.exists()
    bench = ["bench", "co3d", "--root", str(tmp_path / "none"), "--manifest", str(tmp_path / "m.json")]
    assert main([*bench, "--out", str(tmp_path / "bench"), "--speed", "fast", "device=cpu"]) == 2
    assert message in capsys.readouterr().err and not (tmp_path / "bench").exists()


def test_the_benchmark_pipeline_loads_in_a_speed_mode(tmp_path, compiled):
    from nvs.evaluation.co3d import load_pipeline
    from tests.bench_world import TINY_PLUCKER, save_tiny_model

    folder = save_tiny_model(tmp_path / "model", TINY_PLUCKER)
    pipe = load_pipeline(folder, speed="compile")
    assert pipe.model.speed is SPEED_MODES["compile"] and [m for m, _ in compiled] == [
        pipe.model.unet,
        pipe.model.vae.decoder,
    ]
    assert load_pipeline(folder).model.speed == SpeedMode()
