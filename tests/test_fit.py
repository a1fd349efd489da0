import sys
from dataclasses import replace
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
from recon_scenes import one_thread, ring_cameras, sphere_views  # noqa: E402,F401

from recon.fit import FIT_PRESETS, FitConfig, estimate_background, fit_gaussians, resolve_config  # noqa: E402
from recon.losses import LossWeights  # noqa: E402
from recon.strategy import DefaultStrategy, MCMCStrategy  # noqa: E402


def _views():
    return sphere_views(
        ring_cameras(6, 16, distance=3.0, elevations_deg=(0.0, 30.0), fov_deg=35.0), radius=0.6, background=1.0
    )


def test_presets_follow_the_papers():
    v3d, im3d = FIT_PRESETS["v3d"], FIT_PRESETS["im3d"]
    assert (v3d.iterations, v3d.sh_degree, v3d.loss.ssim, v3d.loss.lpips) == (4000, 0, 1.0, 2.0)
    assert v3d.init_points == 100_000
    assert (v3d.carve_resolution, v3d.carve_level, v3d.init) == (256, 0.5, "carve")
    assert (im3d.iterations, im3d.loss.lpips, im3d.loss.ssim, im3d.loss.mask) == (1200, 10.0, 0.2, 1.0)
    assert im3d.init_points == 5000
    # densification: gsplat's DefaultStrategy, V3D every 100 steps from 500 to 3000, IM-3D every 50 from 100
    assert isinstance(v3d.strategy, DefaultStrategy) and isinstance(im3d.strategy, DefaultStrategy)
    assert (v3d.strategy.refine_every, v3d.strategy.refine_start_iter, v3d.strategy.refine_stop_iter) == (
        100,
        500,
        3000,
    )
    assert (im3d.strategy.refine_every, im3d.strategy.refine_start_iter, im3d.strategy.refine_stop_iter) == (
        50,
        100,
        1000,
    )
    assert resolve_config("im3d", iterations=7, init=None).iterations == 7
    with pytest.raises(ValueError, match="unknown fit preset"):
        resolve_config("nerf")


def test_tiny_fit_lowers_the_loss_and_says_what_is_off():
    views = _views()
    config = FitConfig(
        iterations=40,
        init="carve",
        init_points=150,
        carve_resolution=24,
        views_per_step=3,
        loss=LossWeights("mse", ssim=0.2, lpips=1.0, mask=1.0),
        lr_sh0=5e-2,
        lr_opacities=0.2,
        lr_scales=5e-2,
    )
    logged = []
    result = fit_gaussians(views, config, progress=False, log=logged.append, eval_views=views[[0]], eval_every=10)
    first, last = result.history[0]["total"], result.history[-1]["total"]
    assert last < 0.8 * first
    assert result.background == pytest.approx((1.0, 1.0, 1.0))
    assert any(n.startswith("LPIPS loss off") for n in result.notes) and result.notes[0] in logged
    assert "eval_psnr" in result.history[-1] and result.backend == "torch"
    assert len(result.gaussians) == 150


def test_carve_without_masks_is_refused_before_work():
    views = replace(_views(), masks=None)
    with pytest.raises(ValueError, match="needs foreground masks"):
        fit_gaussians(views, "v3d", progress=False)
    assert estimate_background(views) == (0.0, 0.0, 0.0)


def _tiny_config(**kw):
    return FitConfig(
        init="carve", init_points=150, carve_resolution=24, views_per_step=3, loss=LossWeights("mse"), lr_sh0=5e-2,
        lr_opacities=0.2, lr_scales=5e-2, **kw,
    )  # fmt: skip


def test_default_strategy_densifies_on_the_cpu():
    # gsplat's DefaultStrategy reads the torch rasterizer's meta: at step 6 it clones / splits the Gaussians
    # whose mean screen-space gradient passed the threshold, and prunes none at this opacity.
    strategy = DefaultStrategy(refine_start_iter=5, refine_every=6, refine_stop_iter=7, grow_grad2d=1e-6)
    result = fit_gaussians(_views(), _tiny_config(strategy=strategy, iterations=10), progress=False, log=lambda _: None)
    counts = [h["num_gaussians"] for h in result.history]
    assert counts[0] == 150 and counts[-1] > 150 and len(result.gaussians) == counts[-1]
    assert not any("densification" in n for n in result.notes)


def test_strategies_that_cannot_act_are_switched_off_with_a_note():
    views = _views()
    mcmc = fit_gaussians(views, _tiny_config(strategy=MCMCStrategy(), iterations=3), progress=False, log=print)
    assert "densification off: MCMCStrategy needs gsplat's CUDA kernels (CPU fit)" in mcmc.notes
    late = fit_gaussians(views, _tiny_config(iterations=3), progress=False, log=print)  # refines from 500
    assert any("refines from iteration 500" in n for n in late.notes) and len(late.gaussians) == 150
    with pytest.raises(ValueError, match="gsplat Strategy"):
        FitConfig(strategy="default")


def test_history_holds_plain_floats():
    result = fit_gaussians(_views(), _tiny_config(iterations=4), progress=False, log=lambda _: None)
    assert [h["iteration"] for h in result.history] == [1, 2, 3, 4]
    assert all(type(h["mse"]) is float and h["total"] == pytest.approx(h["mse"]) for h in result.history)
