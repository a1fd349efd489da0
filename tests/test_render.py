import numpy as np
import pytest
import torch

from conditioning.render import (
    compositing_weights,
    contract,
    lookup_features,
    masked_mean_var,
    positional_encoding,
    project_points,
    ray_box_bounds,
    sample_along_rays,
    sample_in_disparity,
)
from tests.conditioning_scenes import orbit, single_thread  # noqa: F401  (fixture)

pytestmark = pytest.mark.usefixtures("single_thread")


def _inside_interval(o, d, ts):
    """Brute force: the [first, last] t of ts whose point lies inside [-1, 1]^3, or None."""
    pts = o[None] + ts[:, None] * d[None]
    inside = np.all(np.abs(pts) <= 1.0, axis=1)
    if not inside.any():
        return None
    idx = np.nonzero(inside)[0]
    return ts[idx[0]], ts[idx[-1]]


def test_ray_box_bounds_match_brute_force():
    g = torch.Generator().manual_seed(0)
    origins = (torch.rand(100, 3, generator=g) - 0.5) * 8
    origins[:20] = (torch.rand(20, 3, generator=g) - 0.5) * 1.5  # some start inside the box
    dirs = torch.nn.functional.normalize(torch.randn(100, 3, generator=g), dim=-1)
    near, far, hit = ray_box_bounds(origins.double(), dirs.double(), fallback=(0.3, 5.0))
    ts = np.linspace(0, 12, 40001)  # step 3e-4; rays leave the box by t = 4 * sqrt(3) + 2 * sqrt(3)
    for i in range(100):
        ref = _inside_interval(origins[i].double().numpy(), dirs[i].double().numpy(), ts)
        if ref is None:
            assert not hit[i] and near[i] == 0.3 and far[i] == 5.0
        else:
            assert hit[i]
            assert abs(float(near[i]) - ref[0]) < 4e-4 and abs(float(far[i]) - ref[1]) < 4e-4


def test_samples_are_midpoints_at_inference_and_in_bins_when_stratified():
    near, far = torch.tensor([1.0, 2.0]), torch.tensor([3.0, 6.0])
    t = sample_along_rays(near, far, 4, stratified=False)
    torch.testing.assert_close(t, torch.tensor([[1.25, 1.75, 2.25, 2.75], [2.5, 3.5, 4.5, 5.5]]))
    ts = sample_along_rays(near, far, 4, stratified=True, generator=torch.Generator().manual_seed(1))
    edges = near[:, None] + (far - near)[:, None] * torch.arange(5) / 4
    assert torch.all(ts >= edges[:, :-1]) and torch.all(ts <= edges[:, 1:])
    assert not torch.allclose(ts, t)


def test_disparity_samples_are_midpoints_in_inverse_depth_and_in_bins_when_stratified():
    near, far = torch.tensor([1.0, 2.0, 3.0]), torch.tensor([16.0, 4.0, 3.0])  # the last: empty interval
    t = sample_in_disparity(near, far, 4, stratified=False)
    assert t.shape == (3, 4)
    inv_edges = 1 / near[:, None] + (1 / far - 1 / near)[:, None] * torch.arange(5) / 4  # [3, 5], decreasing
    torch.testing.assert_close(1 / t, (inv_edges[:, :-1] + inv_edges[:, 1:]) / 2)  # midpoints in disparity
    torch.testing.assert_close(t[0], 1 / (1 - (1 - 1 / 16) * (torch.arange(4) + 0.5) / 4))  # by hand
    assert torch.all(t[:2, 1:] > t[:2, :-1]) and torch.all(t[2] == 3.0)
    ts = sample_in_disparity(near, far, 4, stratified=True, generator=torch.Generator().manual_seed(1))
    edges = 1 / inv_edges
    assert torch.all(ts >= edges[:, :-1] * (1 - 1e-6)) and torch.all(ts <= edges[:, 1:] * (1 + 1e-6))
    assert torch.all(ts >= near[:, None] * (1 - 1e-6)) and torch.all(ts <= far[:, None] * (1 + 1e-6))
    assert not torch.allclose(ts[:2], t[:2])


def test_contraction_keeps_the_inside_and_maps_the_outside_into_the_double_ball():
    x = torch.tensor([[0.3, -0.4, 0.5], [0.0, 0.0, 2.0], [0.0, -8.0, 6.0], [1e6, 0.0, 0.0]])
    out = contract(x)
    torch.testing.assert_close(out[0], x[0])
    torch.testing.assert_close(out[1], torch.tensor([0.0, 0.0, 1.5]))  # 2 - 1/2
    torch.testing.assert_close(out[2], torch.tensor([0.0, -0.8, 0.6]) * 1.9)  # |x| = 10: 2 - 1/10, same direction
    assert abs(float(out[3].norm()) - 2.0) < 1e-5
    # radius r: r * contract(x / r); continuous at |x| = r
    torch.testing.assert_close(contract(x, 2.0), 2.0 * contract(x / 2.0))
    on = torch.tensor([[0.0, 2.0, 0.0]])
    torch.testing.assert_close(contract(on * (1 + 1e-6), 2.0), on, atol=1e-5, rtol=0)


def test_painted_feature_is_picked_up_at_its_3d_point():
    cams = orbit(3, size=(32, 48))  # B=1 scene, V=3 views
    feats = torch.zeros(3, 5, 8, 12)  # features at 1/4 resolution
    # a 3D point: the unprojection of feature pixel (i=3, j=7) of view 1 at depth 2.5
    i, j = 3, 7
    pixel = torch.tensor([[[(j + 0.5) * 4, (i + 0.5) * 4]]])
    point = cams[1].unproject(pixel, torch.tensor([[2.5]]))  # [1, 1, 3]
    feats[1, 2, i, j] = 1.0
    grid, visible, depth = project_points(cams, point)
    looked = lookup_features(feats, grid)  # [3, 1, 5]
    assert visible[1, 0] and abs(float(depth[1, 0]) - 2.5) < 1e-4
    torch.testing.assert_close(looked[1, 0], torch.tensor([0.0, 0.0, 1.0, 0.0, 0.0]), atol=1e-5, rtol=0)
    # the same lookup through the formula u = K (R^T (x - c)) / z, by hand
    w2c = torch.linalg.inv(cams.c2w[1])
    cam = w2c[:3, :3] @ point[0, 0] + w2c[:3, 3]
    uv = (cams.K[1] @ cam)[:2] / cam[2]
    torch.testing.assert_close(uv, pixel[0, 0], atol=1e-4, rtol=0)


def test_visibility_mask_behind_and_outside():
    cams = orbit(1, radius=3.0, height=0.0, size=(16, 16))  # camera at (3, 0, 0) looking at the origin
    points = torch.tensor([[[0.0, 0.0, 0.0], [6.0, 0.0, 0.0], [0.0, 50.0, 0.0], [0.0, 0.1, 0.1]]])
    _, visible, depth = project_points(cams, points)
    assert visible[0].tolist() == [True, False, False, True]
    assert depth[0, 1] < 0


def test_masked_mean_var_matches_numpy():
    g = torch.Generator().manual_seed(2)
    values = torch.randn(2, 4, 5, 3, generator=g)
    visible = torch.rand(2, 4, 5, generator=g) > 0.4
    visible[0, :, 0] = False
    mean, var, count = masked_mean_var(values, visible)
    for b in range(2):
        for p in range(5):
            sel = values[b, visible[b, :, p], p].numpy()
            assert count[b, p] == len(sel)
            if len(sel):
                np.testing.assert_allclose(mean[b, p].numpy(), sel.mean(0), atol=1e-6)
                np.testing.assert_allclose(var[b, p].numpy(), sel.var(0), atol=1e-6)
            else:
                assert torch.all(mean[b, p] == 0) and torch.all(var[b, p] == 0)


def test_positional_encoding():
    x = torch.tensor([[0.25, -0.5, 1.0]])
    pe = positional_encoding(x, 2)
    assert pe.shape == (1, 15)
    torch.testing.assert_close(pe[0, :3], x[0])
    torch.testing.assert_close(pe[0, 3], torch.sin(torch.tensor(0.25 * torch.pi)))
    torch.testing.assert_close(pe[0, 9], torch.cos(torch.tensor(0.25 * torch.pi)))


def test_alpha_compositing_of_constant_density_matches_beer_lambert():
    sigma, near, far, n = 0.7, 1.0, 3.0, 64
    t = sample_along_rays(torch.tensor([near]), torch.tensor([far]), n, stratified=False)
    # midpoints: deltas are (far-near)/n except the last, which runs to far (half a bin)
    logit = torch.log(torch.expm1(torch.tensor(sigma)))  # softplus(logit) = sigma
    w = compositing_weights(logit.expand(1, n), t, torch.tensor([far]), "alpha")
    travelled = far - float(t[0, 0])
    np.testing.assert_allclose(float(w.sum()), 1 - np.exp(-sigma * travelled), rtol=1e-4)
    assert torch.all(w[0, 1:] < w[0, :-1])  # transmittance decays


def test_softmax_compositing_sums_to_one_and_rejects_unknown_mode():
    logits = torch.randn(3, 7)
    w = compositing_weights(logits, torch.rand(3, 7), torch.ones(3), "softmax")
    torch.testing.assert_close(w.sum(-1), torch.ones(3))
    with pytest.raises(ValueError, match="compositing"):
        compositing_weights(logits, torch.rand(3, 7), torch.ones(3), "max")
