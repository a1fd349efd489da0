"""nvs/memory.py: every memory mode gives the default mode's frames (tiny model, CPU), puts each part
back where it keeps it, and is reachable from ``nvs generate`` and ``nvs bench co3d``.

On this CPU the execution and the storage device are one, so the moves are checked on the meta device.
"""

from __future__ import annotations

import copy
import itertools

import pytest
import torch
from torch import nn

import nvs  # noqa: F401
from camera.validate import InputError
from nvs.chunking import plan_chunks
from nvs.memory import DEFAULT_MEMORY, MEMORY_MODES, PARTS, LowMemory, memory_mode, resident, sliced_time_mixing
from nvs.pipeline import PathNVSPipeline, SamplerSettings
from nvs.sampling import Guidance
from tests.tiny_nvs import scene, tiny_model

# Frames are in [0, 1]; a quarter of one 8-bit level. Measured: 3e-5 (float32 CPU kernels sum in another
# order for another batch size); a mode that dropped guidance or mixed chunks' frames is off by > 0.05.
TOLERANCE = {"atol": 1e-3, "rtol": 0.0}
OTHER_MODES = [name for name in MEMORY_MODES if name != DEFAULT_MEMORY]
SAMPLER = SamplerSettings(steps=2, guidance=Guidance(1.0, 2.5))  # a ramp: both guidance passes run


def _own_copy():
    return copy.deepcopy(tiny_model())  # the shared tiny model stays as built


@pytest.mark.parametrize("mode", OTHER_MODES)
def test_generate_gives_the_default_frames_on_a_chunked_path(mode):
    model = tiny_model()
    inputs, path = scene(2, model.settings.num_frames + 1)
    assert len(plan_chunks(len(path), 2, model.settings.num_frames, model.settings.max_input_views)) > 1
    want = PathNVSPipeline(model, SAMPLER).generate(inputs, path, seed=1).images
    got = PathNVSPipeline(_own_copy(), SAMPLER, memory=mode).generate(inputs, path, seed=1).images
    torch.testing.assert_close(got, want, **TOLERANCE)


@pytest.mark.parametrize("mode", OTHER_MODES)
def test_sdedit_gives_the_default_frames(mode):
    inputs, path = scene(2, tiny_model().settings.num_frames + 1)  # two chunks
    frames = torch.rand(len(path), 3, 32, 32, generator=torch.Generator().manual_seed(0))
    args = (frames, path, inputs)
    want = PathNVSPipeline(tiny_model(), SAMPLER).sdedit(*args, sigma=2.0, steps=2, seed=2)
    got = PathNVSPipeline(_own_copy(), SAMPLER, memory=mode).sdedit(*args, sigma=2.0, steps=2, seed=2)
    torch.testing.assert_close(got, want, **TOLERANCE)


def test_low_mode_runs_each_part_its_way_and_puts_everything_back():
    from diffusers.models.resnet import AlphaBlender

    model = _own_copy()
    pipe = PathNVSPipeline(model, SAMPLER, memory="low")
    assert isinstance(pipe.memory, LowMemory) and pipe.device == torch.device("cpu")
    tensors = {name: t.data_ptr() for name, t in itertools.chain(model.named_parameters(), model.named_buffers())}
    blocks = [m for m in model.unet.modules() if hasattr(m, "set_chunk_feed_forward")]
    seen = {}

    def record(name):
        def hook(module, args, kwargs):
            seen.setdefault(name, []).extend(p.device for p in module.parameters())
            if name == "unet":
                seen.setdefault("unet batch", set()).add(args[0].shape[0])
                seen.setdefault("chunks", set()).update(b._chunk_size for b in blocks)

        return hook

    handles = [
        module.register_forward_pre_hook(record(name), with_kwargs=True)
        for name, make in PARTS.items()
        for module in make(model)[:1]
    ]
    inputs, path = scene(2, 3)
    pipe.generate(inputs, path, seed=0)
    for h in handles:
        h.remove()
    assert {name for name in PARTS} <= set(seen) and all(d == pipe.device for n in PARTS for d in seen[n])
    assert seen["unet batch"] == {2} and seen["chunks"] == {None}  # guidance passes batched, no feed-forward chunks
    assert all(t.device == pipe.memory.storage_device for t in itertools.chain(model.parameters(), model.buffers()))
    after = {name: t.data_ptr() for name, t in itertools.chain(model.named_parameters(), model.named_buffers())}
    assert after == tensors  # the very tensors: nothing copied back
    assert all(b._chunk_size is None for b in blocks)
    assert not any("forward" in m.__dict__ for m in model.modules() if isinstance(m, AlphaBlender))


def test_default_mode_batches_the_guidance_passes():
    model, batches = tiny_model(), set()
    handle = model.unet.register_forward_pre_hook(lambda m, args: batches.add(args[0].shape[0]))
    try:
        PathNVSPipeline(model, SAMPLER).generate(*scene(1, 2), seed=0)
    finally:
        handle.remove()
    assert batches == {2}


def test_the_parts_hold_every_weight_of_the_model():
    model = tiny_model()

    def every(module):
        return [id(t) for t in itertools.chain(module.parameters(), module.buffers())]

    held = [i for make in PARTS.values() for module in make(model) for i in every(module)]
    assert sorted(held) == sorted(every(model)) and len(held) > 0


def test_resident_moves_a_part_and_puts_its_own_tensors_back():
    first, second = nn.Linear(4, 4), nn.Linear(4, 4)
    second.weight = first.weight  # a Parameter shared by two modules
    module = nn.Sequential(first, nn.BatchNorm1d(4), second)  # with buffers
    module.again = first  # the same submodule twice

    def state():
        return dict(itertools.chain(module.named_parameters(), module.named_buffers()))

    before = {name: (t, t.data_ptr(), t.detach().clone()) for name, t in state().items()}
    with resident(module, "meta"):
        assert all(t.device.type == "meta" for t in state().values())
        assert module[2].weight is module[0].weight  # still shared
    for name, t in state().items():
        tensor, pointer, value = before[name]
        assert t is tensor and t.device.type == "cpu" and t.data_ptr() == pointer and torch.equal(t, value)


def test_sliced_blends_decode_exactly_the_same(monkeypatch):
    from diffusers.models.resnet import AlphaBlender

    model = tiny_model()
    latents = torch.randn(1, 4, 4, 4, 4, generator=torch.Generator().manual_seed(0))
    calls, forward = [], AlphaBlender.forward
    monkeypatch.setattr(AlphaBlender, "forward", lambda self, *a, **k: calls.append(1) or forward(self, *a, **k))
    with torch.no_grad():
        want = model.decode_latents(latents)
        whole = len(calls)
        with sliced_time_mixing(model.vae.decoder):
            got = model.decode_latents(latents)
    assert len(calls) - whole > 2 * whole  # the blends ran in slices
    assert torch.equal(got, want)  # elementwise: the same sums in any slicing


def test_an_unknown_mode_is_refused_naming_the_modes():
    with pytest.raises(InputError, match=r"unknown memory mode 'huge'; use one of default, low \(--memory\)"):
        memory_mode("huge")
    with pytest.raises(InputError, match="default, low"):
        PathNVSPipeline(tiny_model(), memory="huge")
    assert memory_mode(None).name == DEFAULT_MEMORY and memory_mode("low", "cpu").device == torch.device("cpu")
    mode = LowMemory()
    assert memory_mode(mode) is mode


# ------------------------------------------------------------------------------ the commands
UNKNOWN = "nvs {}: error: unknown memory mode 'huge'; use one of default, low (--memory)"  # docs/robustness.md


def _one_line_error(capsys, command: str) -> str:
    lines = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith(f"nvs {command}: error: "), lines
    return lines[0]


def test_generate_takes_the_memory_flag_to_the_pipeline(tmp_path, monkeypatch, capsys):
    import nvs.pipeline
    from nvs.cli import main

    class Built(Exception):
        pass

    class Recording(nvs.pipeline.PathNVSPipeline):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            raise Built(self)  # the pipeline as the command built it; no need to generate

    monkeypatch.setattr(nvs.pipeline, "PathNVSPipeline", Recording)
    common = ["generate", "--random-model", "tiny", "--steps", "1", "--path-frames", "2", "--device", "cpu"]
    with pytest.raises(Built) as built:
        main([*common, "--memory", "low", "--out", str(tmp_path / "low")])
    pipe = built.value.args[0]
    assert isinstance(pipe.memory, LowMemory) and pipe.device == torch.device("cpu")
    assert all(p.device.type == "cpu" for p in pipe.model.parameters())

    assert main([*common, "--memory", "huge", "--out", str(tmp_path / "huge")]) == 2
    assert _one_line_error(capsys, "generate") == UNKNOWN.format("generate") and not (tmp_path / "huge").exists()


def test_bench_co3d_takes_the_memory_flag_to_the_runner(tmp_path, monkeypatch, capsys):
    import nvs.evaluation.co3d
    from nvs.cli import main

    seen = {}
    monkeypatch.setattr(nvs.evaluation.co3d, "run_co3d_benchmark", lambda *a, **k: seen.update(k))
    common = ["bench", "co3d", "--root", str(tmp_path), "--manifest", "m.json", "--model", str(tmp_path)]
    assert main([*common, "--memory", "low", "--out", str(tmp_path / "out")]) == 0
    assert seen["memory"] == "low"

    assert main([*common, "--memory", "huge", "--out", str(tmp_path / "huge")]) == 2
    assert _one_line_error(capsys, "bench co3d") == UNKNOWN.format("bench co3d") and not (tmp_path / "huge").exists()


def test_the_benchmark_loads_its_pipeline_in_the_memory_mode(tmp_path):
    from nvs.evaluation.co3d import load_pipeline
    from tests.bench_world import TINY_PLUCKER, save_tiny_model

    folder = save_tiny_model(tmp_path / "model", TINY_PLUCKER)
    pipe = load_pipeline(folder, "cpu", memory="low")
    assert isinstance(pipe.memory, LowMemory) and pipe.memory.device == torch.device("cpu")
    assert load_pipeline(folder).memory.name == DEFAULT_MEMORY


def test_the_pixelnerf_baseline_runs_in_the_pipelines_memory_mode():
    from camera.cameras import Cameras
    from camera.views import Views
    from nvs.evaluation.co3d import predict
    from nvs.models import PathNVSModel
    from tests.bench_world import TINY_PIXELNERF

    torch.manual_seed(0)
    model = PathNVSModel.from_preset("tiny", TINY_PIXELNERF).eval()
    inputs, path = scene(2, 2)
    views = Views(torch.cat([inputs.images, torch.rand(2, 3, 32, 32)]), Cameras.cat([inputs.cameras, path]))
    args = (views, [0, 1], [2, 3], 1, 1.0, 0)
    want = predict("pixelnerf_rgb", PathNVSPipeline(model), *args)
    low = PathNVSPipeline(copy.deepcopy(model), memory="low")
    torch.testing.assert_close(predict("pixelnerf_rgb", low, *args), want, **TOLERANCE)
    assert all(p.device == low.memory.storage_device for p in low.model.parameters())
