import pytest
import torch

from conditioning.encoder import ResNetEncoder
from tests.conditioning_scenes import single_thread  # noqa: F401  (fixture)

pytestmark = pytest.mark.usefixtures("single_thread")


@pytest.mark.parametrize("blocks", [(1,), (1, 1), (1, 1, 1, 1)])
def test_features_at_quarter_resolution(blocks):
    enc = ResNetEncoder(blocks, base_width=8, out_channels=5)
    out = enc(torch.rand(2, 3, 32, 48))
    assert out.shape == (2, 5, 8, 12) and torch.isfinite(out).all()


def _torchvision_resnet18():
    import torchvision

    torch.manual_seed(0)
    return torchvision.models.resnet18(weights=None).eval()


def test_loads_torchvision_resnet_and_matches_its_stages(tmp_path):
    ref = _torchvision_resnet18()
    path = tmp_path / "resnet18.pth"
    torch.save(ref.state_dict(), path)
    enc = ResNetEncoder((2, 2, 2), base_width=64, out_channels=16, pretrained_path=path).eval()
    torch.testing.assert_close(enc.layer3[1].conv2.weight, ref.layer3[1].conv2.weight)
    x = torch.rand(1, 3, 64, 64)
    with torch.no_grad():
        normed = (x - enc.mean) / enc.std
        want = ref.layer3(ref.layer2(ref.layer1(ref.maxpool(ref.relu(ref.bn1(ref.conv1(normed)))))))
        h = torch.nn.functional.max_pool2d(torch.relu(enc.bn1(enc.conv1(normed))), 3, 2, 1)
        got = enc.layer3(enc.layer2(enc.layer1(h)))
    torch.testing.assert_close(got, want)


def test_loads_safetensors_file(tmp_path):
    from safetensors.torch import save_file

    ref = _torchvision_resnet18()
    path = tmp_path / "resnet18.safetensors"
    save_file({k: v.contiguous() for k, v in ref.state_dict().items()}, str(path))
    enc = ResNetEncoder((2,), base_width=64, out_channels=8, pretrained_path=path)
    torch.testing.assert_close(enc.conv1.weight, ref.conv1.weight)


def test_mismatched_file_is_a_clear_error(tmp_path):
    path = tmp_path / "resnet18.pth"
    torch.save(_torchvision_resnet18().state_dict(), path)
    with pytest.raises(ValueError, match="mis-shaped.*blocks_per_stage"):
        ResNetEncoder((2, 2), base_width=32, pretrained_path=path)
    with pytest.raises(ValueError, match="missing layer1.2"):
        ResNetEncoder((3, 4), base_width=64, pretrained_path=path)
    with pytest.raises(FileNotFoundError):
        ResNetEncoder((1,), pretrained_path=tmp_path / "absent.pth")
