"""Fit 3D Gaussians to posed views (V3D and IM-3D presets).

The renderer is gsplat on CUDA, the pure-torch rasterizer on CPU; a gsplat densification strategy
(``FitConfig.strategy``, :mod:`recon.strategy`) clones, splits and prunes, on the CPU too where it can.
Learning rates follow the 3DGS code, the position rate scaled by the scene size and decayed 100x over
the run. A step renders ``views_per_step`` views in one call; the loss terms stay on the device and
are read (one host sync) only at the ~50 logged steps; carving runs on the fit's device.

On CUDA a step is kept free of host syncs of its own: the views of every step are drawn up front
(:func:`view_schedule`), SH degree 0 renders colours (no camera inverses, no SH kernel), gsplat's
unpacked layout needs no count of visible pairs (and :class:`recon.strategy.DefaultStrategy` sums its
statistics densely), and the image loss replays as CUDA graphs (``FitConfig.cuda_graph``). What is
left is gsplat's own read of its tile-intersection count, once per render.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace

import torch
from tqdm import tqdm

from camera.views import Views
from recon.carve import default_bounds, space_carve
from recon.gaussians import Gaussians, gaussians_from_points, random_gaussians
from recon.losses import LossFn, LossWeights, graphed_image_loss, image_loss, psnr
from recon.rasterize import SH_C0, rasterize, torch_extensions_dir
from recon.render_path import render_gaussians
from recon.strategy import DefaultStrategy, Strategy, cpu_capable, initialize_state, step_post_backward


@dataclass(frozen=True)
class FitConfig:
    """Everything a fit depends on besides the views.

    init: "carve" (space carving of the masks) or "random" (uniform in a ball of
    ``random_radius`` x the scene half size around the scene centre, sized to stay see-through: see
    :func:`recon.gaussians.random_gaussians`). background: an RGB triple, or
    "auto" (median colour outside the masks, black without masks). strategy: a gsplat densification
    strategy (:mod:`recon.strategy`), None for a fixed set of Gaussians. packed: gsplat's packed layout
    (CUDA only; the torch rasterizer has one): it gathers the visible (camera, Gaussian) pairs, which costs
    a host sync and sorted scatters in the backward, and saves little when most Gaussians are in view, as
    around an object. cuda_graph: the image loss (LPIPS off) as CUDA graphs on CUDA.
    """

    iterations: int = 4000
    sh_degree: int = 0
    loss: LossWeights = LossWeights("mse", ssim=1.0, lpips=2.0)
    init: str = "carve"
    init_points: int = 100_000
    random_radius: float = 1.0
    carve_resolution: int = 256
    carve_level: float = 0.5
    initial_opacity: float = 0.1
    views_per_step: int = 4
    background: tuple[float, float, float] | str = "auto"
    lr_means: float = 1.6e-4
    lr_scales: float = 5e-3
    lr_quats: float = 1e-3
    lr_opacities: float = 5e-2
    lr_sh0: float = 2.5e-3
    strategy: Strategy | None = field(
        default_factory=lambda: DefaultStrategy(
            refine_every=100, refine_start_iter=500, refine_stop_iter=3000, reset_every=1_000_000
        )
    )
    packed: bool = False
    cuda_graph: bool = True
    seed: int = 0

    def __post_init__(self) -> None:
        if self.init not in ("carve", "random"):
            raise ValueError(f"FitConfig.init must be 'carve' or 'random', got {self.init!r}")
        if self.iterations < 1 or self.init_points < 1 or self.views_per_step < 1:
            raise ValueError("FitConfig: iterations, init_points and views_per_step must be >= 1")
        if self.sh_degree not in range(4):
            raise ValueError(f"FitConfig.sh_degree must be 0..3, got {self.sh_degree}")
        if self.strategy is not None and not isinstance(self.strategy, Strategy):
            raise ValueError(
                "FitConfig.strategy must be a gsplat Strategy (see recon.strategy) or None, "
                f"got {type(self.strategy).__name__}"
            )


FIT_PRESETS = {
    # V3D public code: 4000 iterations, SH 0, λ_dssim 1, λ_lpips 2, carving 256³ at 0.5, 100k points;
    # densified every 100 steps from 500 to 3000.
    "v3d": FitConfig(),
    # IM-3D: LPIPS 10, SSIM 0.2, mask 1, 1200 iterations, 5000 points at the centre, refine every 50.
    "im3d": FitConfig(
        iterations=1200,
        loss=LossWeights("mse", ssim=0.2, lpips=10.0, mask=1.0),
        init="random",
        init_points=5000,
        random_radius=0.25,
        strategy=DefaultStrategy(refine_every=50, refine_start_iter=100, refine_stop_iter=1000, reset_every=1_000_000),
    ),
}


@dataclass
class FitResult:
    """gaussians (CPU); history: one dict per logged step (iteration, loss terms, num_gaussians,
    eval_psnr where evaluated); notes: what was switched off and why."""

    gaussians: Gaussians
    config: FitConfig
    background: tuple[float, float, float]
    history: list[dict] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    seconds: float = 0.0
    num_initial: int = 0
    backend: str = ""


def resolve_config(preset: str | FitConfig, **overrides) -> FitConfig:
    """A preset name or a config, with the non-None ``overrides`` applied."""
    if isinstance(preset, str):
        if preset not in FIT_PRESETS:
            raise ValueError(f"unknown fit preset {preset!r}; choose one of {sorted(FIT_PRESETS)} or pass a FitConfig")
        preset = FIT_PRESETS[preset]
    return replace(preset, **{k: v for k, v in overrides.items() if v is not None})


def estimate_background(views: Views) -> tuple[float, float, float]:
    """Median colour of the pixels outside the masks; black without masks."""
    if views.masks is None:
        return (0.0, 0.0, 0.0)
    outside = (views.masks < 0.5).expand_as(views.images)
    if not outside.any():
        return (0.0, 0.0, 0.0)
    pixels = views.images.permute(1, 0, 2, 3)[outside.permute(1, 0, 2, 3)].reshape(3, -1)
    return tuple(float(x) for x in pixels.median(dim=1).values)


def initial_gaussians(
    views: Views, config: FitConfig, progress: bool = False, device: str | torch.device = "cpu"
) -> Gaussians:
    """The starting Gaussians of ``config.init`` for ``views`` (on the CPU; carving runs on ``device``)."""
    if config.init == "carve":
        carved = space_carve(
            views.images,
            views.masks,
            views.cameras,
            config.init_points,
            config.carve_resolution,
            config.carve_level,
            seed=config.seed,
            progress=progress,
            device=device,
        )
        return gaussians_from_points(carved.points, carved.colors, config.sh_degree, config.initial_opacity)
    centre, half = default_bounds(views.cameras)
    return random_gaussians(
        config.init_points, centre, config.random_radius * half, config.seed, config.sh_degree, config.initial_opacity
    )


def _optimizers(params: torch.nn.ParameterDict, config: FitConfig, scene_scale: float) -> dict:
    """One Adam per parameter, as gsplat's strategies need (fused kernels on CUDA)."""
    rates = {
        "means": config.lr_means * scene_scale,
        "quats": config.lr_quats,
        "scales": config.lr_scales,
        "opacities": config.lr_opacities,
        "sh0": config.lr_sh0,
        "shN": config.lr_sh0 / 20,
    }
    fused = params["means"].is_cuda or None
    return {
        k: torch.optim.Adam([params[k]], lr=rates[k], eps=1e-15, fused=fused) for k in params if params[k].requires_grad
    }


def _usable_strategy(config: FitConfig, use_gsplat: bool, notes: list[str]) -> Strategy | None:
    """config.strategy, or None (with a note) where it cannot run or would never act."""
    strategy = config.strategy
    if strategy is None:
        return None
    if not use_gsplat and not cpu_capable(strategy):
        notes.append(f"densification off: {type(strategy).__name__} needs gsplat's CUDA kernels (CPU fit)")
        return None
    start = getattr(strategy, "refine_start_iter", 0)
    if start >= config.iterations - 1:
        notes.append(
            f"densification off: the strategy refines from iteration {start}, the fit ends at {config.iterations}"
        )
        return None
    return strategy


def view_schedule(num_views: int, per_step: int, iterations: int, seed: int) -> torch.Tensor:
    """The views of every step [iterations, per_step]: shuffled epochs, a new shuffle once fewer than
    ``per_step`` views are left in the current one."""
    gen = torch.Generator().manual_seed(seed)
    order, cursor, steps = torch.randperm(num_views, generator=gen), 0, []
    for _ in range(iterations):
        if cursor + per_step > num_views:
            order, cursor = torch.randperm(num_views, generator=gen), 0
        steps.append(order[cursor : cursor + per_step])
        cursor += per_step
    return torch.stack(steps)


def _loss_function(
    config: FitConfig, shape: tuple[int, ...], with_mask: bool, lpips_fn, device: torch.device, notes: list[str]
) -> LossFn:
    """f(pred, gt, alpha, mask) -> (loss, terms): graphed on CUDA where it can be, else :func:`image_loss`."""

    def eager(pred, gt, alpha=None, mask=None):
        return image_loss(pred, gt, config.loss, alpha, mask, lpips_fn)

    if device.type != "cuda" or not config.cuda_graph or lpips_fn is not None:
        return eager
    try:
        return graphed_image_loss(config.loss, shape, with_mask, device)
    except Exception as e:  # a loss that cannot be captured still fits, eagerly
        notes.append(f"image loss not graphed ({type(e).__name__}: {e}); eager instead")
        return eager


def _render_colors(params: torch.nn.ParameterDict, sh_degree: int) -> tuple[torch.Tensor, int | None]:
    """What the rasterizer takes: RGB [N, 3] at SH degree 0 (SH 0 has no view dependence: gsplat's
    C0·sh0 + 0.5 clamped at 0, without its camera inverses), else SH [N, K, 3] with the degree."""
    if sh_degree == 0:
        return (SH_C0 * params["sh0"][:, 0] + 0.5).clamp(min=0), None
    return torch.cat([params["sh0"], params["shN"]], 1), sh_degree


def fit_gaussians(
    views: Views,
    preset: str | FitConfig = "v3d",
    init: str | None = None,
    iterations: int | None = None,
    device: str | torch.device = "cpu",
    progress: bool = True,
    lpips_fn: torch.nn.Module | None = None,
    eval_views: Views | None = None,
    eval_every: int = 0,
    log: Callable[[str], None] = print,
    initial: Gaussians | None = None,
) -> FitResult:
    """Fit Gaussians to ``views`` -> :class:`FitResult`.

    ``preset``: "v3d", "im3d" or a :class:`FitConfig`; ``init`` and ``iterations`` override it.
    ``initial`` starts from given Gaussians instead (refinement rounds). ``eval_views`` are rendered
    every ``eval_every`` steps and their PSNR logged in the history. The history's loss terms are
    means over the steps since the last logged one.
    """
    config = resolve_config(preset, init=init, iterations=iterations)
    device = torch.device(device)
    if config.init == "carve" and initial is None and views.masks is None:
        raise ValueError(
            "init='carve' needs foreground masks but the views have none: add masks/<stem>.png "
            "(or RGBA images) or use init='random'"
        )
    notes: list[str] = []
    if config.loss.lpips > 0 and lpips_fn is None:
        notes.append("LPIPS loss off: no LPIPS network given (its VGG16 weights are missing)")
    if config.loss.mask > 0 and views.masks is None:
        notes.append("mask loss off: the views have no masks")
    use_gsplat = device.type == "cuda"
    strategy = _usable_strategy(config, use_gsplat, notes)
    for note in notes:
        log(note)
    background = estimate_background(views) if config.background == "auto" else tuple(config.background)

    start = time.perf_counter()
    gaussians = initial if initial is not None else initial_gaussians(views, config, progress, device)
    _, scene_scale = default_bounds(views.cameras)
    params = gaussians.parameters_dict().to(device)
    if params["shN"].numel() == 0:  # SH degree 0: nothing to optimise (the strategy carries it along)
        params["shN"].requires_grad_(False)
    optimizers = _optimizers(params, config, scene_scale)
    decay = torch.optim.lr_scheduler.ExponentialLR(optimizers["means"], gamma=0.01 ** (1 / config.iterations))
    state = None
    if strategy is not None:
        torch_extensions_dir()  # before gsplat loads its kernels: reuse a cached build
        strategy.check_sanity(params, optimizers)
        state = initialize_state(strategy, scene_scale)

    images = views.images.float().to(device)
    masks = views.masks.float().to(device) if views.masks is not None else None
    w2c, K = views.cameras.w2c.float().to(device), views.cameras.K.float().to(device)
    per_step = min(config.views_per_step, len(views))
    bg = torch.tensor(background, dtype=torch.float32, device=device).expand(per_step, 3).contiguous()
    picks = view_schedule(len(views), per_step, config.iterations, config.seed).to(device)  # one copy
    with_mask = config.loss.mask > 0 and masks is not None
    shape = (per_step, 3, views.cameras.height, views.cameras.width)
    before = len(notes)
    loss_fn = _loss_function(config, shape, with_mask, lpips_fn, device, notes)
    for note in notes[before:]:
        log(note)
    history, sums, since = [], {}, 0
    log_every = max(1, config.iterations // 50)
    gsplat_kwargs = {"packed": config.packed, "absgrad": getattr(strategy, "absgrad", False)} if use_gsplat else {}
    bar = tqdm(range(1, config.iterations + 1), desc="fitting", disable=not progress)
    for step in bar:
        pick = picks[step - 1]
        colors, sh_degree = _render_colors(params, config.sh_degree)
        render, alpha, info = rasterize(
            params["means"],
            params["quats"],
            torch.exp(params["scales"]),
            torch.sigmoid(params["opacities"]),
            colors,
            w2c[pick],
            K[pick],
            views.cameras.width,
            views.cameras.height,
            sh_degree=sh_degree,
            backgrounds=bg,
            backend="gsplat" if use_gsplat else "torch",
            **gsplat_kwargs,
        )
        if strategy is not None:
            strategy.step_pre_backward(params, optimizers, state, step - 1, info)
        loss, parts = loss_fn(
            render.permute(0, 3, 1, 2),
            images[pick],
            alpha.permute(0, 3, 1, 2) if with_mask else None,
            masks[pick] if with_mask else None,
        )
        loss.backward()
        for opt in optimizers.values():
            opt.step()
            opt.zero_grad(set_to_none=True)
        decay.step()
        if strategy is not None:  # after the optimiser step, as gsplat's trainer: refining replaces the params
            step_post_backward(strategy, params, optimizers, state, step - 1, info, decay.get_last_lr()[0])
        for key, value in parts.items():  # on the device: no host sync
            sums[key] = sums[key] + value if key in sums else value
        since += 1
        if step % log_every == 0 or step == config.iterations:
            entry = {"iteration": step, **{k: float(v) / since for k, v in sums.items()}}
            entry["num_gaussians"] = int(params["means"].shape[0])
            sums, since = {}, 0
            if eval_views is not None and eval_every and (step % eval_every == 0 or step == config.iterations):
                entry["eval_psnr"] = evaluate_psnr(Gaussians.from_parameters(params), eval_views, background, device)
            history.append(entry)
            bar.set_postfix(loss=f"{entry['total']:.4f}", n=entry["num_gaussians"])
    if eval_views is not None and eval_every and "eval_psnr" not in history[-1]:
        history[-1]["eval_psnr"] = evaluate_psnr(Gaussians.from_parameters(params), eval_views, background, device)
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return FitResult(
        Gaussians.from_parameters(params).to("cpu"),
        config,
        background,
        history,
        notes,
        time.perf_counter() - start,
        len(gaussians),
        "gsplat" if use_gsplat else "torch",
    )


def evaluate_psnr(gaussians: Gaussians, views: Views, background: tuple, device: str | torch.device) -> float:
    """Mean PSNR (data range 1) of ``gaussians`` rendered at ``views``' cameras."""
    frames, _ = render_gaussians(gaussians, views.cameras, background, device)
    return float(psnr(frames, views.images.float()))


def psnr_curve(history: list[dict]) -> tuple[list[int], list[float]]:
    """(iterations, eval PSNR) of the history entries that were evaluated."""
    pts = [(h["iteration"], h["eval_psnr"]) for h in history if "eval_psnr" in h and math.isfinite(h["eval_psnr"])]
    return [p[0] for p in pts], [p[1] for p in pts]
