import copy
import importlib.machinery
import sys
import types

import pytest
import torch
from torch import nn

from camera.validate import InputError
from nvs.models.speed import (
    SPEED_MODES,
    SpeedMode,
    accelerate,
    channels_last_convs,
    check_fp8,
    fp8_linear_names,
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


def test_describe_lists_fp8():
    assert SpeedMode(fp8=True).describe() == "fp8"
    assert SpeedMode(channels_last=True, fuse_qkv=True, fp8=True, compile_unet=True).describe() == (
        "channels_last + fuse_qkv + fp8 + compile_unet"
    )


def test_fp8_converts_the_linear_layers_with_sides_of_multiples_of_16():
    module = nn.Sequential(
        nn.Linear(32, 64),  # converted
        nn.Linear(64, 24),  # out 24: kept
        nn.Sequential(nn.Linear(48, 16), nn.Linear(20, 32), nn.Conv2d(16, 16, 1)),  # the first only
        nn.Linear(16, 16, bias=False),  # converted
    )
    assert fp8_linear_names(module) == ["0", "2.0", "3"]


@pytest.fixture
def no_torchao(monkeypatch):
    monkeypatch.setitem(sys.modules, "torchao", None)  # `import torchao` fails, find_spec finds nothing


@pytest.fixture
def fake_torchao(monkeypatch):
    """A torchao that is found but never imported: the checks after the import one run on CPU."""
    module = types.ModuleType("torchao")
    module.__spec__ = importlib.machinery.ModuleSpec("torchao", None)
    monkeypatch.setitem(sys.modules, "torchao", module)


def unchanged(model):
    conv = model.unet.conv_in
    return not hasattr(model, "speed") and not conv.weight.is_contiguous(memory_format=torch.channels_last)


def test_fp8_without_torchao_fails_before_any_change(no_torchao, compiled):
    model = fresh()
    with pytest.raises(InputError, match=r"^fp8 needs torchao, which is not installed: pip install torchao==0\.18\.0$"):
        accelerate(model, SpeedMode(channels_last=True, fuse_qkv=True, fp8=True, compile_unet=True))
    assert unchanged(model) and not compiled


def test_fp8_on_a_cpu_fails_before_any_change(fake_torchao, compiled):
    model = fresh()
    with pytest.raises(InputError, match=r"compute capability >= 8\.9 \(Ada, Hopper\); the U-Net is on cpu$"):
        accelerate(model, SpeedMode(channels_last=True, fp8=True, compile_unet=True))
    assert unchanged(model) and not compiled


def test_fp8_needs_compute_capability_8_9_and_bf16(fake_torchao, monkeypatch):
    cuda = torch.device("cuda", 0)
    capability = {"value": (8, 6)}  # Ampere: no float8 tensor cores
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda device=None: capability["value"])
    with pytest.raises(InputError, match=r"cuda:0 has 8\.6$"):
        check_fp8(cuda, torch.bfloat16)
    capability["value"] = (8, 9)  # Ada
    check_fp8(cuda, torch.bfloat16)
    capability["value"] = (9, 0)  # Hopper
    check_fp8(cuda, torch.bfloat16)
    with pytest.raises(ValueError, match="per-row scales needs bf16 weights, the U-Net holds torch.float32"):
        check_fp8(cuda, torch.float32)
