import json
import math
import time

import pytest

import nvs  # noqa: F401
from benchmarks import generation


@pytest.fixture(scope="module")
def quick(tmp_path_factory):
    out = tmp_path_factory.mktemp("generation")
    assert generation.main(["--quick", "--out", str(out)]) == 0
    return json.loads((out / "generation.json").read_text())


def test_quick_run_covers_every_stage(quick, capsys):
    stages = quick["stages"]
    assert list(stages) == ["setup", "reference", "eager", "compile", "long", "memory"]
    assert all(stage["status"] == "ok" for stage in stages.values())
    eager, ref = quick["speed"]["eager"], quick["reference"]
    assert eager["step_s"] > 0 and ref["step_s"] > 0 and quick["tflop_per_step"] > 0
    gen = eager["generate"]
    assert set(gen["parts_s"]) == {"clip", "vae_encode", "conditioner", "unet", "vae_decode", "other"}
    assert math.isclose(sum(gen["shares"].values()), 1.0, rel_tol=1e-6) and gen["seconds"] > 0
    rows = {(r["memory"], r["frames"]): r for r in quick["memory"]}
    assert rows[("default", 4)]["seconds"] > 0 and rows[("default", 6)]["width"] == 64
    for mode in ["low"]:  # the low-memory mode: the default's frames (float32 on CPU)
        for frames in (4, 6):
            assert rows[(mode, frames)]["frames_vs_first_mode"]["psnr_db"] > 80
    assert quick["long"]["frames"] == 7 and quick["long"]["passes"] > 1


def test_quick_run_matches_diffusers_and_eager(quick):
    # float32 on CPU: the same computation as diffusers' StableVideoDiffusionPipeline on the same
    # weights (our extra conv_in channels are zero), and every speed mode the same frames as eager
    floor = quick["noise_floor"]
    assert floor["eager_vs_diffusers"]["psnr_db"] > 80 and floor["split_cfg_vs_eager"]["psnr_db"] > 80
    assert quick["reference"]["ours_vs_diffusers_step"]["rel_diff"] < 1e-5
    compiled = quick["speed"]["compile"]
    assert compiled["frames_vs_eager"]["psnr_db"] > 80 and compiled["latents_rel_diff"] < 1e-3
    assert "channels_last" in compiled["recipe"] and "not compiled" in compiled["recipe"]


def test_a_stage_stops_at_its_limit():
    with pytest.raises(generation.StageTimeout, match="1 s limit"), generation.time_limit(1):
        time.sleep(30)


def test_a_stage_timeout_is_not_turned_into_another_error():
    # inspect.getfullargspec (Triton calls it while compiling) re-raises any Exception as
    # TypeError('unsupported callable'); the stage's timeout must pass through it
    import inspect

    class SlowSignature:
        def __call__(self):
            pass

        @property
        def __signature__(self):
            time.sleep(30)

    with pytest.raises(generation.StageTimeout), generation.time_limit(1):
        inspect.getfullargspec(SlowSignature())


def test_non_finite_frames_fail_the_psnr_target():
    import torch

    from benchmarks import generation_parts, generation_report

    reference = torch.rand(2, 3, 8, 8, generator=torch.Generator().manual_seed(0))
    broken = reference.clone()
    broken[0, 0, 0, 0] = float("nan")
    assert generation_parts.compare(reference, reference)["psnr_db"] == math.inf
    row = generation_parts.compare(broken, reference)
    assert math.isnan(row["psnr_db"]) and math.isnan(row["max_abs_diff"])
    result = {"targets": generation.TARGETS, "speed": {"fp8": {"frames_vs_eager": row}}}
    assert "fp8 frames vs eager >= 40.0 dB: missed" in generation_report.target_lines(result)
