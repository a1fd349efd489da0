import pytest
import torch
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from nvs.evaluation import metrics


def _pair(seed=0, f=2, h=20, w=24):
    g = torch.Generator().manual_seed(seed)
    gt = torch.rand(f, 3, h, w, generator=g, dtype=torch.float64)
    pred = (gt + 0.1 * torch.randn(f, 3, h, w, generator=g, dtype=torch.float64)).clamp(0, 1)
    return pred, gt


def test_psnr_matches_skimage():
    pred, gt = _pair()
    ours = metrics.psnr(pred, gt)
    for i in range(2):
        ref = peak_signal_noise_ratio(gt[i].numpy(), pred[i].numpy(), data_range=1.0)
        assert ours[i].item() == pytest.approx(ref, abs=1e-9)
    assert metrics.psnr(pred[0], gt[0]).item() == pytest.approx(ours[0].item())


def test_psnr_mask_restricts_error():
    pred, gt = _pair(f=1)
    mask = torch.zeros(1, 1, 20, 24, dtype=torch.float64)
    mask[..., :10, :] = 1
    ours = metrics.psnr(pred, gt, mask)
    ref = peak_signal_noise_ratio(gt[0, :, :10].numpy(), pred[0, :, :10].numpy(), data_range=1.0)
    assert ours.item() == pytest.approx(ref, abs=1e-9)
    with pytest.raises(ValueError, match="no pixels"):
        metrics.psnr(pred, gt, torch.zeros_like(mask))


@pytest.mark.parametrize("variant", ["skimage", "gaussian"])
def test_ssim_matches_skimage(variant):
    pred, gt = _pair(seed=1)
    kwargs = {} if variant == "skimage" else {"gaussian_weights": True, "sigma": 1.5, "use_sample_covariance": False}
    ours = metrics.ssim(pred, gt, variant)
    for i in range(2):
        ref = structural_similarity(gt[i].numpy(), pred[i].numpy(), channel_axis=0, data_range=1.0, **kwargs)
        assert ours[i].item() == pytest.approx(ref, abs=1e-7)


def test_ssim_identical_is_one_and_bad_input_raises():
    _, gt = _pair()
    assert torch.allclose(metrics.ssim(gt, gt), torch.ones(2, dtype=torch.float64))
    with pytest.raises(ValueError, match="one shape"):
        metrics.ssim(gt, gt[:, :, :10])
    with pytest.raises(ValueError, match="variant"):
        metrics.ssim(gt, gt, "box")
    with pytest.raises(ValueError, match="at least 11x11"):
        metrics.ssim(gt[..., :8, :8], gt[..., :8, :8], "gaussian")


def test_sparsefusion_rule_and_image_metrics():
    pred, gt = _pair()
    mask = torch.rand(2, 1, 20, 24, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    valid = torch.zeros_like(mask)
    valid[..., :15, :] = 1
    out = metrics.image_metrics(pred, gt, mask=mask, valid_region=valid)
    assert set(out) == {"psnr", "ssim", "ssim_gaussian"}
    ref = peak_signal_noise_ratio((gt[0] * mask[0]).numpy(), (pred[0] * valid[0]).numpy(), data_range=1.0)
    assert out["psnr"][0] == pytest.approx(ref, abs=1e-9)
    with pytest.raises(ValueError, match="both"):
        metrics.image_metrics(pred, gt, mask=mask)


def test_lpips_unavailable_without_weights(tmp_path):
    model, reason = metrics.load_lpips(tmp_path / "missing.pth")
    assert model is None and "not found" in reason and "missing.pth" in reason
    scorer = metrics.LpipsVgg(tmp_path / "missing.pth")
    assert not scorer.available
    with pytest.raises(RuntimeError, match="unavailable"):
        scorer(torch.zeros(3, 8, 8), torch.zeros(3, 8, 8))
    pred, gt = _pair()
    assert "lpips" not in metrics.image_metrics(pred, gt, lpips_fn=scorer)


def test_lpips_loads_a_torchvision_style_state_dict(tmp_path):
    from torchvision.models.vgg import cfgs, make_layers

    torch.manual_seed(0)
    features = make_layers(cfgs["D"])  # vgg16().features, without initialising its 120M-weight classifier
    path = tmp_path / "vgg.pth"
    torch.save({f"features.{k}": v for k, v in features.state_dict().items()}, path)
    scorer = metrics.LpipsVgg(path)
    assert scorer.reportable
    loaded = scorer.model.net.slice3.state_dict()["10.weight"]
    assert torch.equal(loaded, features[10].weight.detach())
    pred, gt = _pair(h=32, w=32)
    d = scorer(pred.float(), gt.float())
    assert d.shape == (2,) and torch.all(d > 0)
    assert torch.allclose(scorer(gt.float(), gt.float()), torch.zeros(2, dtype=torch.float64), atol=1e-6)
    torch.save({"features.0.weight": torch.zeros(1)}, tmp_path / "bad.pth")
    with pytest.raises(ValueError, match="bad.pth"):
        metrics.load_lpips(tmp_path / "bad.pth")


def test_lpips_random_backbone_is_flagged():
    scorer = metrics.LpipsVgg("/nonexistent/vgg.pth", allow_random=True)
    assert scorer.available and not scorer.reportable and "random" in scorer.reason
