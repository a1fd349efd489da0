import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
from recon_scenes import one_thread, ring_cameras, sphere_views  # noqa: E402,F401

from recon.fit import FitConfig  # noqa: E402
from recon.losses import LossWeights  # noqa: E402
from recon.refine import refine_gaussians  # noqa: E402


class RecordingDenoiser:
    """Stand-in for the NVS model's SDEdit entry point: records calls, returns the frames darkened."""

    def __init__(self):
        self.calls = []

    def sdedit(self, frames, cameras, sigma, **kw):
        self.calls.append((tuple(frames.shape), len(cameras), sigma, kw))
        return frames * 0.5


def test_refinement_calls_the_denoiser_once_per_round_with_its_sigma():
    views = sphere_views(ring_cameras(4, 12, distance=3.0, fov_deg=35.0), radius=0.6)
    config = FitConfig(iterations=3, init="random", init_points=40, random_radius=0.3, loss=LossWeights())
    denoiser = RecordingDenoiser()
    logs = []
    result = refine_gaussians(
        views,
        denoiser,
        rounds=3,
        sigmas=[2.0, 1.0, 0.5],
        preset=config,
        iterations_per_round=2,
        progress=False,
        log=logs.append,
        sdedit_kwargs={"steps": 10},
    )
    assert [c[2] for c in denoiser.calls] == [2.0, 1.0, 0.5]
    assert all(c[0] == (4, 3, 12, 12) and c[1] == 4 and c[3] == {"steps": 10} for c in denoiser.calls)
    assert [r["sigma"] for r in result.rounds] == [2.0, 1.0, 0.5] and len(result.frames) == 3
    assert result.fit.config.iterations == 2
    assert float(result.frames[1].max()) <= 0.5 + 1e-6  # each round refits to the edited frames
    assert sum("refinement round" in line for line in logs) == 3


def test_refinement_checks_its_arguments():
    views = sphere_views(ring_cameras(2, 8), radius=0.6)
    with pytest.raises(ValueError, match="one per round"):
        refine_gaussians(views, RecordingDenoiser(), rounds=2, sigmas=[1.0])
    with pytest.raises(TypeError, match="no sdedit"):
        refine_gaussians(views, object(), rounds=1, sigmas=1.0)
    with pytest.raises(ValueError, match="positive"):
        refine_gaussians(views, RecordingDenoiser(), rounds=1, sigmas=0.0)
