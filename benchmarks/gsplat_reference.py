"""The reference fit of ``benchmarks.recon_gaussians``: the training loop of gsplat 1.5.3's example trainer
(``examples/simple_trainer.py``), re-written in a few lines of this project's own.

What it keeps of that trainer, at its defaults: one Adam per parameter with the 3DGS learning rates, scaled
for a batch of B views by sqrt(B) (eps 1e-15/sqrt(B), betas 1 - B·(1 - β)); the means' rate times the scene
scale, decayed 100x over the run; initial Gaussians at the given points with random quaternions, opacity
0.1 and the root-mean-square distance to the 3 nearest neighbours as scale; ``DefaultStrategy()`` with
gsplat's defaults (refining from step 500 every 100 steps, until 15000); the loss 0.8·L1 + 0.2·(1 - SSIM)
on valid windows; unpacked rasterization; ``loss.item()`` every step (the trainer prints it); the
strategy's step after the optimisers'. What differs, so that both fits solve the same problem: the views'
background colour composited behind the Gaussians (the trainer renders on black), the SH degree and the
views of :mod:`benchmarks.recon_gaussians`, and this project's SSIM (:func:`recon.losses.d_ssim`, equal to
kornia's) for ``fused_ssim`` (not installed here).
On a CPU the pure-torch rasterizer stands in for gsplat's (``--quick`` only).
"""

from __future__ import annotations

import math
import time

import torch
import torch.nn.functional as F
from torch import Tensor

from camera.views import Views
from recon.gaussians import Gaussians, rgb_to_sh0
from recon.losses import d_ssim
from recon.rasterize import rasterize, torch_extensions_dir


def reference_gaussians(points: Tensor, colors: Tensor, sh_degree: int, seed: int = 42) -> Gaussians:
    """The trainer's "sfm" initialisation of points [N, 3] with colours [N, 3]."""
    from scipy.spatial import cKDTree

    g = torch.Generator().manual_seed(seed)
    dist, _ = cKDTree(points.double().numpy()).query(points.double().numpy(), k=4)
    scale = torch.from_numpy(dist[:, 1:] ** 2).mean(1).sqrt().float().clamp(min=1e-7)
    n = points.shape[0]
    return Gaussians(
        points.float(),
        torch.rand(n, 4, generator=g),
        torch.log(scale)[:, None].repeat(1, 3),
        torch.logit(torch.full((n,), 0.1)),
        rgb_to_sh0(colors.float()),
        torch.zeros(n, (sh_degree + 1) ** 2 - 1, 3),
    )


def train_reference(
    views: Views,
    initial: Gaussians,
    iterations: int,
    batch_size: int,
    scene_scale: float,
    background: tuple[float, float, float],
    device: str | torch.device,
    seed: int = 42,
) -> tuple[Gaussians, float]:
    """Train ``initial`` on ``views`` as gsplat's example trainer does -> (Gaussians on the CPU, seconds)."""
    from gsplat.strategy import DefaultStrategy

    device = torch.device(device)
    torch_extensions_dir()
    gen = torch.Generator().manual_seed(seed)
    params = initial.parameters_dict().to(device)
    rates = {"means": 1.6e-4 * scene_scale, "scales": 5e-3, "quats": 1e-3, "opacities": 5e-2, "sh0": 2.5e-3}
    rates["shN"] = 2.5e-3 / 20
    bs = batch_size
    optimizers = {
        name: torch.optim.Adam(
            [params[name]], lr=lr * math.sqrt(bs), eps=1e-15 / math.sqrt(bs), betas=(1 - bs * 0.1, 1 - bs * 0.001)
        )
        for name, lr in rates.items()
    }
    schedule = torch.optim.lr_scheduler.ExponentialLR(optimizers["means"], gamma=0.01 ** (1.0 / iterations))
    strategy = DefaultStrategy()
    strategy.check_sanity(params, optimizers)
    state = strategy.initialize_state(scene_scale=scene_scale)
    images = views.images.float().to(device)  # [F, 3, H, W]
    w2c, K = views.cameras.w2c.float().to(device), views.cameras.K.float().to(device)
    bg = torch.tensor(background, dtype=torch.float32, device=device).expand(bs, 3)
    backend = "gsplat" if device.type == "cuda" else "torch"
    extra = {"packed": False, "absgrad": False, "sparse_grad": False} if backend == "gsplat" else {}
    order, cursor = torch.randperm(len(views), generator=gen), 0
    start = time.perf_counter()
    for step in range(iterations):
        if cursor + bs > len(order):  # the data loader's next shuffled epoch
            order, cursor = torch.randperm(len(views), generator=gen), 0
        pick = order[cursor : cursor + bs].to(device)
        cursor += bs
        colors, _, info = rasterize(
            params["means"],
            params["quats"],
            torch.exp(params["scales"]),
            torch.sigmoid(params["opacities"]),
            torch.cat([params["sh0"], params["shN"]], 1),
            w2c[pick],
            K[pick],
            views.cameras.width,
            views.cameras.height,
            backend=backend,
            sh_degree=initial.sh_degree,
            backgrounds=bg,
            **extra,
        )
        strategy.step_pre_backward(params, optimizers, state, step, info)
        pred, target = colors.permute(0, 3, 1, 2), images[pick]
        loss = F.l1_loss(pred, target) * 0.8 + 0.2 * (2 * d_ssim(pred, target))  # 1 - SSIM = 2·D-SSIM
        loss.backward()
        loss.item()  # the trainer's progress bar reads the loss every step
        for optimizer in optimizers.values():
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
        schedule.step()
        strategy.step_post_backward(params, optimizers, state, step, info, packed=False)
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return Gaussians.from_parameters(params).to("cpu"), time.perf_counter() - start
