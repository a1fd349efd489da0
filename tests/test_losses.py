import pytest
import torch
from skimage.metrics import structural_similarity

from recon.losses import LossWeights, d_ssim, graphed_image_loss, image_loss, psnr


def test_d_ssim_matches_scikit_image_gaussian():
    g = torch.Generator().manual_seed(0)
    a = torch.rand(1, 3, 24, 24, generator=g, dtype=torch.float64)
    b = (a + 0.1 * torch.randn(1, 3, 24, 24, generator=g, dtype=torch.float64)).clamp(0, 1)
    ref = structural_similarity(
        a[0].numpy(),
        b[0].numpy(),
        channel_axis=0,
        data_range=1.0,
        gaussian_weights=True,
        sigma=1.5,
        use_sample_covariance=False,
    )
    assert float(d_ssim(a, b)) == pytest.approx((1 - ref) / 2, abs=1e-6)


def test_d_ssim_matches_kornia_on_several_channels_and_frames():
    import kornia

    g = torch.Generator().manual_seed(1)
    a = torch.rand(3, 3, 40, 33, generator=g)
    b = (a + 0.2 * torch.randn(3, 3, 40, 33, generator=g)).clamp(0, 1)
    want = kornia.losses.ssim_loss(a, b, 11, max_val=1.0, reduction="mean", padding="valid")
    assert float(d_ssim(a, b)) == pytest.approx(float(want), abs=1e-6)
    a.requires_grad_(True)
    d_ssim(a, b).backward()
    ours = a.grad.clone()
    a.grad = None
    kornia.losses.ssim_loss(a, b, 11, max_val=1.0, reduction="mean", padding="valid").backward()
    torch.testing.assert_close(ours, a.grad, atol=1e-7, rtol=1e-4)


def test_psnr_is_the_mean_of_per_frame_psnr():
    g = torch.Generator().manual_seed(2)
    gt = torch.rand(3, 3, 8, 8, generator=g, dtype=torch.float64)
    pred = (gt + 0.05 * torch.randn(3, 3, 8, 8, generator=g, dtype=torch.float64)).clamp(0, 1)
    per_frame = -10 * torch.log10(((pred - gt) ** 2).mean(dim=(1, 2, 3)))
    assert float(psnr(pred, gt)) == pytest.approx(float(per_frame.mean()), abs=1e-9)


def test_loss_terms_and_gradients():
    g = torch.Generator().manual_seed(1)
    gt = torch.rand(2, 3, 16, 16, generator=g)
    pred = torch.rand(2, 3, 16, 16, generator=g, requires_grad=True)
    alpha, mask = torch.full((2, 1, 16, 16), 0.5), torch.ones(2, 1, 16, 16)
    total, parts = image_loss(pred, gt, LossWeights("l1", ssim=0.2, lpips=10.0, mask=1.0), alpha, mask)
    expected = (pred - gt).abs().mean() + 0.2 * d_ssim(pred, gt) + 0.25
    assert float(total.detach()) == pytest.approx(float(expected.detach()), rel=1e-5)
    assert "lpips" not in parts and float(parts["mask"]) == pytest.approx(0.25)
    assert all(not p.requires_grad for p in parts.values())
    total.backward()
    assert pred.grad is not None and torch.isfinite(pred.grad).all()


def test_lpips_term_uses_the_given_network():
    class Half(torch.nn.Module):
        def forward(self, x, y):
            assert x.min() >= -1 and x.max() <= 1
            return torch.full((x.shape[0], 1, 1, 1), 0.5)

    x = torch.rand(1, 3, 16, 16)
    _, parts = image_loss(x, x, LossWeights(lpips=2.0), lpips_fn=Half())
    assert float(parts["lpips"]) == 0.5 and float(parts["total"]) == pytest.approx(1.0)


def test_bad_weights():
    with pytest.raises(ValueError, match="photometric"):
        LossWeights("l2")
    with pytest.raises(ValueError, match=">= 0"):
        LossWeights(ssim=-1)


@pytest.mark.parametrize("with_mask", [False, True])
def test_graphed_loss_returns_image_loss_terms(monkeypatch, with_mask):
    # The capture is torch's (CUDA only); what is ours is the plumbing around it: which arguments go in,
    # the terms' names and order, and fresh copies of the terms. Identity stands in for the capture here.
    seen = []

    def no_capture(fn, sample):
        seen.append([(tuple(t.shape), t.requires_grad) for t in sample])
        return fn

    monkeypatch.setattr(torch.cuda, "make_graphed_callables", no_capture)
    weights = LossWeights("mse", ssim=0.5, mask=1.0)
    loss = graphed_image_loss(weights, (2, 3, 16, 16), with_mask, torch.device("cpu"))
    want = [((2, 3, 16, 16), True), ((2, 3, 16, 16), False)] + [((2, 1, 16, 16), True), ((2, 1, 16, 16), False)] * (
        with_mask
    )
    assert seen == [want]
    g = torch.Generator().manual_seed(3)
    pred, gt = torch.rand(2, 3, 16, 16, generator=g, requires_grad=True), torch.rand(2, 3, 16, 16, generator=g)
    alpha, mask = torch.rand(2, 1, 16, 16, generator=g), torch.rand(2, 1, 16, 16, generator=g)
    total, parts = loss(pred, gt, alpha, mask)
    ref_total, ref = image_loss(pred, gt, weights, alpha if with_mask else None, mask if with_mask else None)
    assert list(parts) == list(ref) == ["mse", "dssim"] + ["mask"] * with_mask + ["total"]
    assert all(float(parts[k]) == pytest.approx(float(ref[k]), rel=1e-6) for k in ref)
    assert float(total.detach()) == pytest.approx(float(ref_total.detach()), rel=1e-6) and total.requires_grad
    assert all(not p.requires_grad for p in parts.values())
