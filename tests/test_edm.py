import math

import numpy as np
import pytest
import torch

import nvs  # noqa: F401
from nvs.models import edm


@pytest.mark.parametrize("sigma", [0.002, 0.1, 1.0, 7.3, 700.0])
def test_preconditioning_matches_the_formula(sigma):
    s = torch.tensor([sigma], dtype=torch.float64)
    assert float(edm.c_skip(s)) == pytest.approx(1 / (sigma**2 + 1), rel=1e-12)
    assert float(edm.c_out(s)) == pytest.approx(-sigma / math.sqrt(sigma**2 + 1), rel=1e-12)
    assert float(edm.c_in(s)) == pytest.approx(1 / math.sqrt(sigma**2 + 1), rel=1e-12)
    assert float(edm.c_noise(s)) == pytest.approx(0.25 * math.log(sigma), rel=1e-12)
    assert float(edm.loss_weight(s)) == pytest.approx((sigma**2 + 1) / sigma**2, rel=1e-12)


def test_denoiser_matches_diffusers_v_prediction_scheduler():
    """diffusers' SVD scheduler turns a v prediction into x0 the same way: D = c_skip x + c_out v."""
    from diffusers import EulerDiscreteScheduler

    sched = EulerDiscreteScheduler(
        prediction_type="v_prediction",
        use_karras_sigmas=True,
        sigma_min=0.002,
        sigma_max=700.0,
        timestep_type="continuous",
        timestep_spacing="leading",
    )
    sched.set_timesteps(5)
    g = torch.Generator().manual_seed(0)
    x, v = torch.randn(2, 4, 3, 3, generator=g), torch.randn(2, 4, 3, 3, generator=g)
    sigma = sched.sigmas[1]
    sched._step_index = 1
    # the model input scaling and the timestep fed to the U-Net
    torch.testing.assert_close(sched.scale_model_input(x, sched.timesteps[1]), edm.c_in(sigma) * x)
    step = sched.step(v, sched.timesteps[1], x)
    ours = edm.c_skip(sigma) * x + edm.c_out(sigma) * v
    torch.testing.assert_close(step.pred_original_sample, ours)
    np.testing.assert_allclose(float(sched.timesteps[1]), float(edm.c_noise(sigma)), rtol=1e-5)
