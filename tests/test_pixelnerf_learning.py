import json

import pytest
import torch

from benchmarks.pixelnerf_learning import (
    METHODS,
    baselines,
    cosine_lr,
    eval_split,
    main,
    quick_settings,
    run,
)
from benchmarks.pixelnerf_learning_report import markdown_table
from camera.views import Views
from tests.conditioning_scenes import orbit, single_thread  # noqa: F401  (fixture)

pytestmark = pytest.mark.usefixtures("single_thread")


def test_tiny_cpu_training_learns_and_writes_its_report(tmp_path):
    settings = quick_settings()
    settings.categories = ("snowman",)
    settings.steps = 40
    settings.eval_every = 40
    result = run(settings, tmp_path, torch.device("cpu"))
    losses = result["curve"]["loss"]
    assert sum(losses[-5:]) / 5 < 0.5 * sum(losses[:3]) / 3  # the RGB loss falls well below its start
    for name in ("pixelnerf_learning.json", "pixelnerf_learning.md", "learning_curve.png", "samples.png"):
        assert (tmp_path / name).stat().st_size > 0
    saved = json.loads((tmp_path / "pixelnerf_learning.json").read_text())
    assert set(saved["metrics"]) == {"1", "2", "3", "6"}
    assert set(saved["metrics"]["3"]) == set(METHODS)
    assert 0 < saved["metrics"]["6"]["pixelnerf"]["psnr"] < 60


def test_baselines_copy_the_nearest_view_and_fill_the_mean_colour():
    cams = orbit(4, size=(8, 8))
    images = torch.stack([torch.full((3, 8, 8), float(i) / 4) for i in range(4)])
    scene = Views(images=images, cameras=cams)
    out = baselines(scene, inputs=[1, 2], targets=[0, 3], grid=4)
    assert torch.all(out["nearest_view"][0] == 0.25) and torch.all(out["nearest_view"][1] == 0.5)
    torch.testing.assert_close(out["mean_colour"], torch.full((2, 3, 4, 4), 0.375))


def test_eval_split_is_nested_and_disjoint():
    inputs, targets = eval_split(3, 24, 8)
    assert len(inputs) == 6 and len(targets) == 8 and not set(inputs) & set(targets)
    assert eval_split(3, 24, 8) == (inputs, targets)


def test_markdown_table_has_one_row_per_view_count():
    metrics = {v: {m: {"psnr": 20.0, "ssim": 0.5} for m in METHODS} for v in (1, 2, 3, 6)}
    assert markdown_table(metrics, METHODS).count("\n") == 6


def test_cli_rejects_missing_out():
    with pytest.raises(SystemExit):
        main(["--quick"])


def test_cosine_lr_follows_the_budget_that_runs_out_first():
    assert cosine_lr(1.0, 0, 100, 0.0, 10.0) == pytest.approx(1.0)
    assert cosine_lr(1.0, 50, 100, 1.0, 10.0) == pytest.approx(0.05 + 0.95 * 0.5)  # half the steps
    assert cosine_lr(1.0, 10, 100, 5.0, 10.0) == pytest.approx(0.05 + 0.95 * 0.5)  # half the time
    assert cosine_lr(1.0, 10, 100, 20.0, 10.0) == pytest.approx(0.05)  # past the time limit: the floor
