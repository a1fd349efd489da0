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
