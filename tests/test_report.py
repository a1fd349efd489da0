"""nvs.evaluation.report: scores against independent references, summary.md and the terminal table."""

from __future__ import annotations

import math

import numpy as np
import torch
from skimage.metrics import structural_similarity

from camera.views import Views
from nvs.evaluation.report import METHOD_NAMES, print_summary, score, summary_markdown
from tests.tiny_nvs import scene


def _truth(valid: bool):
    _, path = scene(1, 2, size=16)
    g = torch.Generator().manual_seed(0)
    images = torch.rand(2, 3, 16, 16, generator=g)
    masks = torch.rand(2, 1, 16, 16, generator=g)
    region = torch.zeros(2, 1, 16, 16)
    region[..., :12, :] = 1
    return Views(images, path, masks, None, region if valid else None), torch.rand(2, 3, 16, 16, generator=g)


def _reference(pred: torch.Tensor, gt: torch.Tensor) -> tuple[list[float], list[float]]:
    p, g = pred.double().numpy(), gt.double().numpy()
    psnr = [-10 * math.log10(((a - b) ** 2).mean()) for a, b in zip(p, g)]
    ssim = [structural_similarity(a, b, channel_axis=0, data_range=1.0) for a, b in zip(p, g)]
    return psnr, ssim


def test_whole_frames_score_plain_psnr_and_scikit_image_ssim():
    truth, pred = _truth(valid=False)
    got = score(pred, truth)
    psnr, ssim = _reference(pred, truth.images)
    np.testing.assert_allclose(got["psnr"], psnr, atol=1e-4)
    np.testing.assert_allclose(got["ssim"], ssim, atol=1e-4)
    assert math.isclose(got["psnr_mean"], np.mean(psnr), abs_tol=1e-4) and len(got["ssim_gaussian"]) == 2


def test_cropped_truth_scores_by_the_sparsefusion_rule():
    truth, pred = _truth(valid=True)
    got = score(pred, truth)
    psnr, ssim = _reference(pred * truth.valid_region, truth.images * truth.masks)
    np.testing.assert_allclose(got["psnr"], psnr, atol=1e-4)
    np.testing.assert_allclose(got["ssim"], ssim, atol=1e-4)


def _metrics() -> dict:
    scored = {"psnr": [20.0, 22.0], "ssim": [0.5, 0.7], "psnr_mean": 21.0, "ssim_mean": 0.6}
    return {
        "scene": {
            "name": "snowman_10000",
            "input_positions": [12.25],
            "path_positions": [4.0, 26.5],
            "scoring": "whole frames",
        },
        "model": {"folder": "m", "parameters": 2.5e6, "num_frames": 8, "image_size": [128, 128], "conditioner": "x"},
        "sampler": {"method": "euler", "steps": 25, "guidance": 1.0},
        "methods": {
            "model": scored,
            "nearest_view": scored,
            "pixelnerf_rgb": {"skipped": "no PixelNeRF"},
            "recon": {"skipped": "--no-recon"},
        },
        "seconds": {"scene": 1.0, "total": 3.0},
        "device": "cpu",
        "threads": 1,
        "notes": ["a note"],
    }


def test_summary_lists_every_method_frame_and_stage():
    text = summary_markdown(_metrics())
    assert text.startswith("# nvs demo: snowman_10000\n")
    assert "2.5 M parameters" in text and "1 torch thread)" in text
    assert f"| {METHOD_NAMES['model']} | 21.00 | 0.600 |" in text
    assert f"| {METHOD_NAMES['recon']} | - | - (--no-recon) |" in text
    assert "| 1 | 26.5 | 22.00 / 0.700 | 22.00 / 0.700 |" in text
    assert "| total | 3.00 |" in text and "- a note" in text


def test_the_terminal_table(capsys, tmp_path):
    print_summary(_metrics(), tmp_path)
    out = capsys.readouterr().out
    assert all(name in out for name in METHOD_NAMES.values()) and "21.00" in out and str(tmp_path) in out
