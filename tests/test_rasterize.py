import math

import pytest
import torch

from camera.cameras import Cameras, look_at
from camera.convert import qvec_to_rotmat
from recon.rasterize import covariances, project_gaussians, rasterize


def _scene(n=40, seed=0):
    g = torch.Generator().manual_seed(seed)
    means = torch.randn(n, 3, generator=g) * 0.3
    quats = torch.randn(n, 4, generator=g)
    scales = torch.rand(n, 3, generator=g) * 0.05 + 0.01
    eye = torch.tensor([[0.0, -3.0, 0.5], [3.0, 0.2, 0.2], [0.1, 0.3, 3.0]])
    cams = Cameras.from_fov(look_at(eye, torch.zeros(3), torch.tensor([0.0, 1.0, 1.0])), 50.0, 24, 32)
    return means, quats, scales, cams


def test_projection_matches_gsplat_torch_reference():
    from gsplat.cuda._torch_impl import _fully_fused_projection, _quat_scale_to_covar_preci

    means, quats, scales, cams = _scene()
    ref_cov, _ = _quat_scale_to_covar_preci(quats, scales, compute_preci=False)
    assert torch.allclose(covariances(quats, scales), ref_cov, atol=1e-7)
    vm, K = cams.w2c.float(), cams.K.float()
    radii, means2d, depths, conics, _ = _fully_fused_projection(means, ref_cov, vm, K, 32, 24)
    m2, con, d, r = project_gaussians(means, covariances(quats, scales), vm, K, 32, 24)
    assert torch.allclose(m2, means2d, atol=1e-4)
    assert torch.allclose(con, conics, rtol=1e-4, atol=1e-5)
    assert torch.allclose(d, depths, atol=1e-6)
    assert torch.equal(r, radii)


def test_opacity_aware_radius_is_gsplats_bound():
    # gsplat's fused projection with opacities: radius = ceil(min(3.33, sqrt(2 ln(255 o)))·sqrt(Σ2d_ii)), culled
    # under opacity 1/255; Σ2d from the reference conics (its inverse).
    from gsplat.cuda._torch_impl import _fully_fused_projection

    means, quats, scales, cams = _scene()
    opacities = torch.linspace(0.002, 0.999, 40)
    vm, K = cams.w2c.float(), cams.K.float()
    _, _, _, conics, _ = _fully_fused_projection(means, covariances(quats, scales), vm, K, 32, 24)
    a, b, c = conics.double().unbind(-1)
    det = a * c - b * b
    sigma = torch.stack([c / det, a / det], -1).sqrt()  # sqrt of Σ2d's diagonal
    extend = torch.sqrt(2 * torch.log(255 * opacities.double())).clamp(max=3.33)
    expected = torch.ceil(extend[:, None] * sigma)
    _, _, _, radii = project_gaussians(means, covariances(quats, scales), vm, K, 32, 24, opacities=opacities)
    culled = opacities < 1 / 255
    assert (radii[:, culled] == 0).all() and culled.sum() == 1
    seen = (radii > 0).all(-1)
    assert torch.equal(radii[seen].double(), expected[seen])


def _reference_render(means, quats, scales, opacities, sh, viewmats, Ks, width, height, background):
    """gsplat 1.5.3's CUDA rasterizer written out per Gaussian (RasterizeToPixels3DGSFwd.cu) over every pixel of
    every image, on gsplat's own pure-torch projection and SH: front to back in depth order, alpha =
    min(0.999, o·exp(-σ)), skipped when σ < 0 or alpha < 1/255, a pixel done at the first Gaussian whose
    T·(1 - alpha) <= 1e-4 (that one excluded); colour = Σ alpha·T·c + T_final·background. Differentiable.
    -> colours [C, H, W, 3], alphas [C, H, W, 1], the number of pixels that stopped early."""
    from gsplat.cuda._torch_impl import _fully_fused_projection, _quat_scale_to_covar_preci, _spherical_harmonics

    covars, _ = _quat_scale_to_covar_preci(quats, scales, compute_preci=False)
    radii, means2d, depths, conics, _ = _fully_fused_projection(means, covars, viewmats, Ks, width, height)
    ys, xs = torch.meshgrid(torch.arange(height) + 0.5, torch.arange(width) + 0.5, indexing="ij")
    images, alphas, stopped = [], [], 0
    for cam in range(len(viewmats)):
        dirs = means - torch.linalg.inv(viewmats[cam])[:3, 3]
        rgb = (_spherical_harmonics(1, dirs, sh) + 0.5).clamp(min=0)
        T = torch.ones(height, width)
        done = torch.zeros(height, width, dtype=torch.bool)
        color = torch.zeros(height, width, 3)
        for n in torch.argsort(depths[cam]).tolist():
            dx, dy = means2d[cam, n, 0] - xs, means2d[cam, n, 1] - ys
            a, b, c = conics[cam, n]
            sig = 0.5 * (a * dx * dx + c * dy * dy) + b * dx * dy
            alpha = (opacities[n] * torch.exp(-sig)).clamp(max=0.999)
            use = (sig >= 0) & (alpha >= 1 / 255) & ~done
            next_T = T * (1 - alpha)
            stop = use & (next_T <= 1e-4)
            done = done | stop
            use = use & ~stop
            color = color + torch.where(use[..., None], (alpha * T)[..., None] * rgb[n], 0.0)
            T = torch.where(use, next_T, T)
        images.append(color + T[..., None] * background)
        alphas.append(1 - T)
        stopped += int(done.sum())
    return torch.stack(images), torch.stack(alphas)[..., None], stopped


@pytest.mark.parametrize("opaque", [False, True])
def test_torch_rasterizer_matches_gsplats_kernel_and_its_gradients(opaque):
    # opaque: a dense stack of nearly opaque Gaussians, so that pixels stop at transmittance 1e-4
    g = torch.Generator().manual_seed(3)
    n = 30
    means, quats, scales, cams = _scene(n, seed=3)
    opacities = torch.rand(n, generator=g) * 0.5 + 0.2
    if opaque:
        means, scales, opacities = means * 0.1, scales * 6, opacities * 0.4 + 0.72
        opacities[0] = 1.0  # min(0.999, ·) clamps: no gradient there
    sh = torch.randn(n, 4, 3, generator=g) * 0.5
    bg = torch.tensor([0.2, 0.3, 0.9])
    vm, K = cams.w2c.float(), cams.K.float()
    inputs = [x.clone().requires_grad_() for x in (means, quats, scales, opacities, sh)]
    weights = torch.rand(3, 24, 32, 3, generator=g), torch.rand(3, 24, 32, 1, generator=g)
    results = []
    for render in ("torch", "reference"):
        params = [x.detach().clone().requires_grad_() for x in inputs]
        if render == "torch":
            rgb, alpha, _ = rasterize(*params, vm, K, 32, 24, sh_degree=1, backgrounds=bg.expand(3, 3))
        else:
            rgb, alpha, stopped = _reference_render(*params, vm, K, 32, 24, bg)
        ((rgb * weights[0]).sum() + (alpha * weights[1]).sum()).backward()
        results.append((rgb.detach(), alpha.detach(), *[p.grad for p in params]))
    if opaque:
        assert stopped > 50
    for ours, ref in zip(*results):
        assert torch.allclose(ours, ref, rtol=1e-4, atol=1e-5 * max(1.0, float(ref.abs().max())))


def test_single_gaussian_matches_analytic_2d_gaussian():
    # An isotropic Gaussian straight ahead: Σ2d = (f s / z)² I + 0.3 I; the centre pixel sees o·exp(-½ dᵀΣ⁻¹d).
    cams = Cameras.from_fov(torch.eye(4)[None], 60.0, 33, 33)
    f, z, s, o = float(cams.fx[0]), 4.0, 0.05, 0.8
    means = torch.tensor([[0.0, 0.0, z]])
    rgb, alpha, meta = rasterize(
        means,
        torch.tensor([[1.0, 0, 0, 0]]),
        torch.full((1, 3), s),
        torch.tensor([o]),
        torch.ones(1, 3),
        cams.w2c.float(),
        cams.K.float(),
        33,
        33,
    )
    var = (f * s / z) ** 2 + 0.3
    ys, xs = torch.meshgrid(torch.arange(33) + 0.5, torch.arange(33) + 0.5, indexing="ij")
    analytic = o * torch.exp(-((xs - 16.5) ** 2 + (ys - 16.5) ** 2) / (2 * var))
    analytic = torch.where(analytic >= 1 / 255, analytic, torch.zeros_like(analytic))
    assert alpha[0, 16, 16, 0] == pytest.approx(o, abs=1e-6)
    assert torch.allclose(alpha[0, ..., 0], analytic, atol=1e-6)
    assert torch.allclose(rgb[0, ..., 0], analytic, atol=1e-6)
    assert meta["means2d"].shape == (1, 1, 2)


def test_alpha_is_clamped_at_0999_with_no_gradient_there():
    cams = Cameras.from_fov(torch.eye(4)[None], 60.0, 33, 33)
    opacity = torch.ones(1, requires_grad=True)
    _, alpha, _ = rasterize(
        torch.tensor([[0.0, 0.0, 4.0]]), torch.tensor([[1.0, 0, 0, 0]]), torch.full((1, 3), 0.3), opacity,
        torch.ones(1, 3), cams.w2c.float(), cams.K.float(), 33, 33,
    )  # fmt: skip
    assert float(alpha[0, 16, 16, 0].detach()) == pytest.approx(0.999, abs=1e-7)
    (grad_centre,) = torch.autograd.grad(alpha[0, 16, 16, 0], opacity, retain_graph=True)
    (grad_side,) = torch.autograd.grad(alpha[0, 16, 20, 0], opacity)
    assert float(grad_centre) == 0.0 and float(grad_side) > 0.1


def test_depth_sorting_and_background():
    cams = Cameras.from_fov(torch.eye(4)[None], 60.0, 9, 9)
    means = torch.tensor([[0.0, 0.0, 3.0], [0.0, 0.0, 2.0]])  # the red one is behind
    colors = torch.tensor([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])
    rgb, alpha, _ = rasterize(
        means,
        torch.tensor([[1.0, 0, 0, 0]] * 2),
        torch.full((2, 3), 0.5),
        torch.tensor([0.9, 0.5]),
        colors,
        cams.w2c.float(),
        cams.K.float(),
        9,
        9,
        backgrounds=torch.tensor([[0.0, 0.0, 1.0]]),
        render_mode="RGB+ED",
    )
    # front green 0.5, behind red 0.9·0.5, background blue the rest
    assert rgb[0, 4, 4, :3].tolist() == pytest.approx([0.45, 0.5, 0.05], abs=1e-5)
    assert rgb[0, 4, 4, 3] == pytest.approx((0.5 * 2 + 0.45 * 3) / 0.95, abs=1e-4)


def test_a_pixel_stops_where_transmittance_would_reach_1e4():
    # Five Gaussians of alpha 0.95 at the centre pixel, front to back: T goes 1, .05, .0025, 1.25e-4; the
    # fourth would take it to 6.25e-6 <= 1e-4, so the pixel is done before it (gsplat excludes it).
    cams = Cameras.from_fov(torch.eye(4)[None], 60.0, 9, 9)
    means = torch.tensor([[0.0, 0.0, z] for z in (2.0, 2.5, 3.0, 3.5, 4.0)])
    colors = torch.eye(5, 3) + torch.tensor([[0.0, 0, 0], [0, 0, 0], [0, 0, 0], [1, 1, 1], [1, 1, 1]])
    rgb, alpha, _ = rasterize(
        means, torch.tensor([[1.0, 0, 0, 0]] * 5), torch.full((5, 3), 2.0), torch.full((5,), 0.95),
        colors, cams.w2c.float(), cams.K.float(), 9, 9,
    )  # fmt: skip
    assert alpha[0, 4, 4, 0] == pytest.approx(1 - 0.05**3, abs=1e-6)
    assert rgb[0, 4, 4].tolist() == pytest.approx([0.95, 0.95 * 0.05, 0.95 * 0.05**2], abs=1e-6)


def test_quaternion_convention_is_wxyz():
    half = math.pi / 4  # 90° about z
    R = qvec_to_rotmat(torch.tensor([math.cos(half), 0.0, 0.0, math.sin(half)]))
    assert torch.allclose(R @ torch.tensor([1.0, 0.0, 0.0]), torch.tensor([0.0, 1.0, 0.0]), atol=1e-6)


def test_bad_input_and_backend_errors():
    means, quats, scales, cams = _scene(5)
    args = (means, quats, scales, torch.ones(5), torch.ones(5, 3), cams.w2c.float(), cams.K.float(), 32, 24)
    with pytest.raises(ValueError, match="quats"):
        rasterize(means, quats[:4], *args[2:])
    with pytest.raises(ValueError, match="CUDA"):
        rasterize(*args, backend="gsplat")
    with pytest.raises(ValueError, match="SH degree 0 or 1"):
        rasterize(*args[:4], torch.ones(5, 9, 3), *args[5:], sh_degree=2)


def test_torch_meta_feeds_gsplat_default_strategy():
    # The densification state gsplat accumulates: per Gaussian, the views it is visible in and the
    # norm of its screen-space gradient, from the meta (no "gaussian_ids" key -> gsplat asserts).
    from gsplat.strategy import DefaultStrategy

    means, quats, scales, cams = _scene()
    params = torch.nn.ParameterDict(
        {"means": means, "quats": quats, "scales": scales.log(), "opacities": torch.zeros(40)}
    )
    optimizers = {k: torch.optim.Adam([p]) for k, p in params.items()}
    strategy = DefaultStrategy(refine_start_iter=10)
    state = strategy.initialize_state(scene_scale=1.0)
    rgb, _, meta = rasterize(
        params["means"],
        params["quats"],
        params["scales"].exp(),
        params["opacities"].sigmoid(),
        torch.rand(40, 3),
        cams.w2c.float(),
        cams.K.float(),
        cams.width,
        cams.height,
        backend="torch",
    )
    strategy.step_pre_backward(params, optimizers, state, 0, meta)
    rgb.sum().backward()
    strategy.step_post_backward(params, optimizers, state, 0, meta, packed=False)
    visible = (meta["radii"] > 0).all(-1)
    assert torch.equal(state["count"], visible.sum(0).float())
    assert (state["grad2d"][visible.any(0)] > 0).all()
