import math

import numpy as np
import pytest
import torch
from torch import nn

import nvs  # noqa: F401
from nvs.sampling import (
    SAMPLERS,
    EulerSampler,
    Guidance,
    HeunSampler,
    Sampler,
    SamplerSettings,
    guided_denoise,
    karras_sigmas,
    sample,
)


def test_karras_schedule_matches_the_formula():
    n, lo, hi, rho = 25, 0.002, 700.0, 7.0
    i = np.arange(n)
    expected = (hi ** (1 / rho) + i / (n - 1) * (lo ** (1 / rho) - hi ** (1 / rho))) ** rho
    sigmas = karras_sigmas(n, lo, hi, rho).numpy()
    np.testing.assert_allclose(sigmas[:-1], expected, rtol=1e-12)
    assert sigmas[-1] == 0 and sigmas[0] == pytest.approx(hi) and sigmas[-2] == pytest.approx(lo)


def test_karras_schedule_matches_diffusers_svd_scheduler():
    from diffusers import EulerDiscreteScheduler

    sched = EulerDiscreteScheduler(
        prediction_type="v_prediction",
        use_karras_sigmas=True,
        sigma_min=0.002,
        sigma_max=700.0,
        timestep_type="continuous",
    )
    sched.set_timesteps(25)
    np.testing.assert_allclose(sched.sigmas.numpy(), karras_sigmas(25).numpy(), rtol=1e-5)


def test_schedule_errors():
    with pytest.raises(ValueError, match="steps"):
        karras_sigmas(0)
    with pytest.raises(ValueError, match="sigma_min < sigma_max"):
        karras_sigmas(5, sigma_min=1.0, sigma_max=0.5)


def test_guidance_ramp_and_constant():
    torch.testing.assert_close(Guidance(1.0, 3.0).scales(5), torch.tensor([1.0, 1.5, 2.0, 2.5, 3.0]))
    torch.testing.assert_close(Guidance(1.0, 3.5, constant=True).scales(3), torch.full((3,), 3.5))
    assert Guidance.of(2.0) == Guidance(2.0, 2.0, True)


class GaussianData(nn.Module):
    """Exact denoiser of data ~ N(mean, s² I): D(x; σ) = mean + (x - mean)·s²/(s² + σ²); with a
    condition-dependent mean so that guidance has an effect."""

    def __init__(self, s: float):
        super().__init__()
        self.s = s
        self.dummy = nn.Parameter(torch.zeros(()))
        self.calls = 0

    def denoise(self, x, sigma, cond):
        self.calls += 1
        mean = cond.mean[:, None, None, None, None]
        s2 = sigma[:, None, None, None, None].double() ** 2
        return (mean + (x.double() - mean) * self.s**2 / (self.s**2 + s2)).to(x.dtype)


class MeanCondition:
    def __init__(self, mean):
        self.mean = mean

    def unconditional(self):
        return MeanCondition(torch.zeros_like(self.mean))

    @staticmethod
    def cat(conds):
        return MeanCondition(torch.cat([c.mean for c in conds]))


def _ode_error(method: str, steps: int) -> float:
    """Relative error at σ = 0 for N(0, s²) data, whose ODE maps x_T to x_T·s/sqrt(s² + σ_T²)."""
    s, hi = 0.5, 80.0
    model = GaussianData(s)
    cond = MeanCondition(torch.zeros(1, dtype=torch.float64))
    x0 = sample(
        model,
        cond,
        (1, 2, 1, 2, 2),
        karras_sigmas(steps, 0.002, hi),
        1.0,
        torch.Generator().manual_seed(3),
        SAMPLERS[method](),
    )
    x_T = torch.randn((1, 2, 1, 2, 2), generator=torch.Generator().manual_seed(3)) * math.sqrt(1 + hi**2)
    expected = x_T * s / math.sqrt(s**2 + hi**2)
    return float((x0 - expected).abs().max() / expected.abs().max())


@pytest.mark.parametrize("method,order", [("euler", 1), ("heun", 2)])
def test_ode_solution_of_gaussian_data_converges_at_the_method_order(method, order):
    coarse, fine = _ode_error(method, 20), _ode_error(method, 40)
    assert fine < coarse
    assert 0.8 * 2**order < coarse / fine < 1.25 * 2**order


def test_guidance_one_is_the_conditional_prediction_and_skips_the_uncond_pass():
    model = GaussianData(1.0)
    cond = MeanCondition(torch.tensor([2.0]))
    x = torch.randn(1, 3, 1, 2, 2)
    sigma = torch.tensor([1.5])
    model.calls = 0
    out = guided_denoise(model, x, sigma, cond, torch.ones(3))
    assert model.calls == 1
    assert torch.equal(out, model.denoise(x, sigma, cond))


def test_guidance_combines_per_frame():
    model = GaussianData(1.0)
    cond = MeanCondition(torch.tensor([2.0]))
    x = torch.randn(1, 3, 1, 2, 2)
    sigma = torch.tensor([1.0])
    scales = torch.tensor([1.0, 2.0, 3.0])
    out = guided_denoise(model, x, sigma, cond, scales)
    d_c, d_u = model.denoise(x, sigma, cond), model.denoise(x, sigma, cond.unconditional())
    torch.testing.assert_close(out, d_u + scales[None, :, None, None, None] * (d_c - d_u))


def test_sampling_is_seeded():
    model = GaussianData(0.5)
    cond = MeanCondition(torch.tensor([1.0]))
    sigmas = karras_sigmas(4)
    a = sample(model, cond, (1, 2, 1, 2, 2), sigmas, Guidance(1.0, 3.0), torch.Generator().manual_seed(7))
    b = sample(model, cond, (1, 2, 1, 2, 2), sigmas, Guidance(1.0, 3.0), torch.Generator().manual_seed(7))
    c = sample(model, cond, (1, 2, 1, 2, 2), sigmas, Guidance(1.0, 3.0), torch.Generator().manual_seed(8))
    assert torch.equal(a, b) and not torch.equal(a, c)


def test_sdedit_start_and_bad_inputs():
    model = GaussianData(0.5)
    cond = MeanCondition(torch.tensor([0.0]))
    clean = torch.full((1, 2, 1, 2, 2), 0.3)
    start = 0.01
    out = sample(
        model,
        cond,
        clean.shape,
        karras_sigmas(40, 0.002, start),
        1.0,
        torch.Generator().manual_seed(0),
        x_start=clean,
        sampler=HeunSampler(),
    )
    # SDEdit starts from clean + σ·ε; the exact ODE then scales by s/sqrt(s² + σ²) for N(0, s²) data
    eps = torch.randn(clean.shape, generator=torch.Generator().manual_seed(0))
    expected = (clean + start * eps) * 0.5 / math.sqrt(0.25 + start**2)
    torch.testing.assert_close(out, expected, atol=1e-5, rtol=0)
    with pytest.raises(ValueError, match="ending with 0"):
        sample(model, cond, clean.shape, torch.tensor([1.0, 0.5]), 1.0)
    with pytest.raises(TypeError, match="Sampler"):
        sample(model, cond, clean.shape, karras_sigmas(2), 1.0, sampler="heun")


def _old_sample(model, cond, shape, sigmas, guidance, generator, method, x_start=None):
    """The sampling loop as it was written before the samplers became objects (method a string)."""
    batch, frames = shape[0], shape[1]
    scales = Guidance.of(guidance).scales(frames)
    uncond = None if torch.all(scales == 1) else cond.unconditional()
    noise = torch.randn(shape, generator=generator).to(dtype=torch.float32)
    sig = sigmas.to(dtype=torch.float32)
    x = noise * torch.sqrt(1 + sig[0] ** 2) if x_start is None else x_start.to(noise) + sig[0] * noise

    def denoise(x, s):
        return guided_denoise(model, x, s.expand(batch), cond, scales, uncond).float()

    for i in range(len(sig) - 1):
        s, s_next = sig[i], sig[i + 1]
        d = (x - denoise(x, s)) / s
        x_next = x + (s_next - s) * d
        if method == "heun" and s_next > 0:
            d_next = (x_next - denoise(x_next, s_next)) / s_next
            x_next = x + (s_next - s) * 0.5 * (d + d_next)
        x = x_next
    return x


class ToyDenoiser(nn.Module):
    """A fixed nonlinear D(x; σ) whose output depends on the condition, so guidance matters."""

    def __init__(self):
        super().__init__()
        self.w = nn.Parameter(torch.linspace(-0.5, 0.7, 2))

    def denoise(self, x, sigma, cond):
        c = cond.mean[:, None, None, None, None]
        s = sigma[:, None, None, None, None]
        return torch.tanh(x / (1 + s)) * self.w[0] + c * self.w[1] / (1 + s**2)


@pytest.mark.parametrize("method", ["euler", "heun"])
@pytest.mark.parametrize("guidance", [1.0, Guidance(1.0, 3.0)])
@pytest.mark.parametrize("sdedit", [False, True])
def test_sampler_objects_give_exactly_what_the_string_method_gave(method, guidance, sdedit):
    model, cond = ToyDenoiser(), MeanCondition(torch.tensor([0.8]))
    shape = (1, 3, 2, 2, 2)
    x_start = torch.linspace(-1, 1, 24).reshape(shape) if sdedit else None
    sigmas = karras_sigmas(6, 0.002, 2.0 if sdedit else 80.0)
    new = sample(model, cond, shape, sigmas, guidance, torch.Generator().manual_seed(5), SAMPLERS[method](), x_start)
    old = _old_sample(model, cond, shape, sigmas, guidance, torch.Generator().manual_seed(5), method, x_start)
    assert torch.equal(new, old)


def test_heun_takes_two_evaluations_per_step_but_one_on_the_last():
    calls = []

    def denoise(x, s):
        calls.append(float(s))
        return 0.5 * x

    x = torch.ones(1, 1, 1, 1, 1)
    sigmas = karras_sigmas(3, 0.1, 10.0).float()
    for i in range(3):
        x = HeunSampler().step(denoise, x, sigmas[i], sigmas[i + 1])
    assert len(calls) == 2 + 2 + 1
    calls.clear()
    EulerSampler().step(denoise, x, sigmas[0], sigmas[1])
    assert len(calls) == 1
    with pytest.raises(NotImplementedError):
        Sampler().step(denoise, x, sigmas[0], sigmas[1])


def test_sampler_settings_choose_the_object_and_check_themselves():
    assert isinstance(SamplerSettings().make_sampler(), EulerSampler)
    assert isinstance(SamplerSettings(method="heun").make_sampler(), HeunSampler)
    assert SamplerSettings().guidance == Guidance(1.0, 3.5, constant=True)  # V3D's constant 3.5
    with pytest.raises(ValueError, match="euler, heun"):
        SamplerSettings(method="dpm")
    with pytest.raises(ValueError, match="steps"):
        SamplerSettings(steps=0)
    torch.testing.assert_close(SamplerSettings(steps=4).sigmas(), karras_sigmas(4, 0.002, 700.0, 7.0))
    torch.testing.assert_close(SamplerSettings().sigmas(3, sigma_max=2.0), karras_sigmas(3, 0.002, 2.0, 7.0))
    # a dict merges like hydra: missing keys, also of guidance, keep the defaults
    loaded = SamplerSettings.from_dict({"method": "heun", "guidance": {"max_scale": 2.0}})
    assert loaded == SamplerSettings(method="heun", guidance=Guidance(1.0, 2.0, constant=True))
    with pytest.raises(ValueError, match="unknown sampler settings"):
        SamplerSettings.from_dict({"stepz": 3})


@pytest.mark.parametrize("scale", [float("nan"), float("inf"), -50.0])
def test_guidance_must_be_finite_and_non_negative(scale):
    from camera.validate import InputError

    with pytest.raises(InputError, match="guidance scale must be a finite number >= 0"):
        Guidance.of(scale)
    with pytest.raises(InputError, match="min_scale"):
        Guidance(scale, 3.5)
