import sys
from dataclasses import replace
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).parent))
from recon_scenes import one_thread, ring_cameras, sphere_views  # noqa: E402,F401

from recon.fit import (  # noqa: E402
    FIT_PRESETS,
    FitConfig,
    estimate_background,
    fit_gaussians,
    resolve_config,
    view_schedule,
)
from recon.losses import LossWeights  # noqa: E402
from recon.rasterize import rasterize  # noqa: E402
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


def test_view_schedule_draws_shuffled_epochs():
    picks = view_schedule(18, 4, 12, seed=3)
    assert picks.shape == (12, 4) and torch.equal(picks, view_schedule(18, 4, 12, seed=3))
    # 4 steps of 4 distinct views use 16 of the 18, then a new shuffle starts (18 - 16 < 4 left)
    for epoch in (picks[:4], picks[4:8], picks[8:]):
        assert len(set(epoch.flatten().tolist())) == 16
    assert not torch.equal(picks[:4], picks[4:8])
    assert sorted(view_schedule(3, 3, 2, seed=0)[1].tolist()) == [0, 1, 2]


def test_dense_strategy_statistics_equal_gsplats_gathered_ones():
    # gsplat's own _update_state (torch.where over the visible pairs, index_add_) is the reference
    import gsplat.strategy

    views = _views()
    gen = torch.Generator().manual_seed(0)
    n = 60
    params = torch.nn.ParameterDict(
        {
            "means": torch.nn.Parameter((torch.rand(n, 3, generator=gen) - 0.5) * 2.4),  # some out of view
            "quats": torch.nn.Parameter(torch.randn(n, 4, generator=gen)),
            "scales": torch.nn.Parameter(torch.full((n, 3), -2.5)),
            "opacities": torch.nn.Parameter(torch.linspace(-7, 3, n)),  # the faintest culled by opacity
        }
    )
    for cams, scale2d in ((slice(0, 4), 0), (slice(2, 3), 100)):
        rgb, _, info = rasterize(
            params["means"], params["quats"], params["scales"].exp(), params["opacities"].sigmoid(),
            torch.rand(n, 3, generator=gen), views.cameras.w2c[cams].float(), views.cameras.K[cams].float(),
            views.cameras.width, views.cameras.height, backend="torch",
        )  # fmt: skip
        info["means2d"].retain_grad()
        (rgb * torch.rand(rgb.shape, generator=gen)).sum().backward()
        ours, theirs = DefaultStrategy(refine_scale2d_stop_iter=scale2d), {}
        state = ours.initialize_state()
        theirs = ours.initialize_state()
        for _ in range(2):  # from empty and onto running sums
            ours._update_state(params, state, info)
            gsplat.strategy.DefaultStrategy._update_state(ours, params, theirs, info, packed=False)
        seen = (info["radii"] > 0).all(-1)
        assert 0 < int(seen.sum()) < seen.numel()
        torch.testing.assert_close(state["count"], theirs["count"], rtol=0, atol=0)
        torch.testing.assert_close(state["grad2d"], theirs["grad2d"], rtol=1e-5, atol=1e-9)
        if scale2d:  # one camera: gsplat's scatter of maxima is exact
            torch.testing.assert_close(state["radii"], theirs["radii"])


def test_sh_degree_0_renders_as_colours():
    from recon.fit import _render_colors
    from recon.gaussians import random_gaussians

    views = _views()
    g = random_gaussians(50, torch.zeros(3), 0.8, seed=1, sh_degree=0, opacity=0.5)
    params = g.parameters_dict()
    params["sh0"].data[:5] = -3.0  # colours below 0 clamp
    colors, degree = _render_colors(params, 0)
    assert degree is None and colors.shape == (50, 3)
    args = (params["means"], params["quats"], params["scales"].exp(), params["opacities"].sigmoid())
    cams = (views.cameras.w2c[:2].float(), views.cameras.K[:2].float(), views.cameras.width, views.cameras.height)
    as_rgb, _, _ = rasterize(*args, colors, *cams, backend="torch")
    as_sh, _, _ = rasterize(*args, torch.cat([params["sh0"], params["shN"]], 1), *cams, sh_degree=0, backend="torch")
    torch.testing.assert_close(as_rgb, as_sh)
    sh, degree = _render_colors(random_gaussians(5, torch.zeros(3), 1.0, sh_degree=1).parameters_dict(), 1)
    assert degree == 1 and sh.shape == (5, 4, 3)
