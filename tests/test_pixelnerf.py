import pytest
import torch

from conditioning.pixelnerf import PixelNeRFConditioner, normalize_scene_cameras
from tests.conditioning_scenes import TINY_PIXELNERF, make_inputs, single_thread  # noqa: F401  (fixture)

pytestmark = pytest.mark.usefixtures("single_thread")


@pytest.mark.parametrize("views,targets", [(1, 1), (2, 25), (6, 3)])
def test_shapes_and_finite_for_any_number_of_views_and_targets(views, targets):
    torch.manual_seed(0)
    model = PixelNeRFConditioner(**TINY_PIXELNERF)
    out = model(make_inputs(2, views, targets))
    assert out.maps.shape == (2, targets, 8, 4, 4)
    assert out.extras["rgb"].shape == (2, targets, 3, 4, 4)
    assert out.extras["depth"].shape == (2, targets, 1, 4, 4)
    for t in (out.maps, out.extras["rgb"], out.extras["depth"], out.losses["pixelnerf_rgb"]):
        assert torch.isfinite(t).all()
    assert ((out.extras["rgb"] >= 0) & (out.extras["rgb"] <= 1)).all()


@pytest.mark.parametrize("options", [{"aggregation": "attention"}, {"compositing": "softmax"}, {"rgb_loss": "l1"}])
def test_options_give_finite_outputs(options):
    torch.manual_seed(0)
    out = PixelNeRFConditioner(**{**TINY_PIXELNERF, **options})(make_inputs(1, 3, 2))
    assert torch.isfinite(out.maps).all() and torch.isfinite(out.losses["pixelnerf_rgb"])


def test_rgb_loss_is_l2_against_area_downsampled_target():
    torch.manual_seed(0)
    inputs = make_inputs(1, 2, 2)
    out = PixelNeRFConditioner(**TINY_PIXELNERF).eval()(inputs)
    target = torch.nn.functional.avg_pool2d(inputs.target_images[0], 4)  # 16 -> 4 by area
    torch.testing.assert_close(out.losses["pixelnerf_rgb"], ((out.extras["rgb"][0] - target) ** 2).mean())
    assert "pixelnerf_rgb" not in PixelNeRFConditioner(**TINY_PIXELNERF)(make_inputs(1, 2, 2, with_targets=False)).losses


def test_chunking_does_not_change_the_result():
    torch.manual_seed(0)
    model = PixelNeRFConditioner(**TINY_PIXELNERF).eval()
    inputs = make_inputs(2, 3, 5)
    a = model(inputs).maps
    model.chunk_size = 7
    torch.testing.assert_close(model(inputs).maps, a)


def test_gradients_reach_the_encoder_with_checkpointing():
    torch.manual_seed(0)
    model = PixelNeRFConditioner(**{**TINY_PIXELNERF, "gradient_checkpointing": True}).train()
    out = model(make_inputs(1, 2, 2))
    (out.losses["pixelnerf_rgb"] + out.maps.square().mean()).backward()
    assert model.encoder.conv1.weight.grad.abs().sum() > 0
    assert model.point_mlp[0].weight.grad.abs().sum() > 0


def test_scene_normalisation_puts_the_farthest_camera_at_the_radius():
    inputs = make_inputs(2, 4, 3)
    for use in ("inputs", "all"):
        cin, cout = normalize_scene_cameras(inputs.input_cameras, inputs.target_cameras, 2, 1.5, use)
        for b in range(2):
            centres = cin.centers[b * 4 : (b + 1) * 4]
            if use == "all":
                centres = torch.cat([centres, cout.centers[b * 3 : (b + 1) * 3]])
            torch.testing.assert_close(centres.mean(0), torch.zeros(3), atol=1e-5, rtol=0)
            torch.testing.assert_close(centres.norm(dim=-1).max(), torch.tensor(1.5))
    with pytest.raises(ValueError, match="normalize_with"):
        normalize_scene_cameras(inputs.input_cameras, inputs.target_cameras, 2, 1.5, "targets")


def test_renders_the_same_scene_whatever_the_world_origin_and_scale():
    """Translating and rescaling the whole world must not change what is rendered (the scene
    normalisation removes both; rotations are kept, the box and the positional encoding see them)."""
    torch.manual_seed(0)
    model = PixelNeRFConditioner(**TINY_PIXELNERF).eval()
    inputs = make_inputs(1, 3, 2)
    a = model(inputs).maps

    def moved(cams):
        c2w = cams.c2w.clone()
        c2w[:, :3, 3] = (c2w[:, :3, 3] + torch.tensor([5.0, -2.0, 1.0])) * 3.0
        return cams.with_c2w(c2w)

    inputs.input_cameras, inputs.target_cameras = moved(inputs.input_cameras), moved(inputs.target_cameras)
    torch.testing.assert_close(model(inputs).maps, a, atol=2e-4, rtol=1e-3)


def test_bad_options_are_rejected():
    for bad in ({"aggregation": "max"}, {"compositing": "sum"}, {"rgb_loss": "l3"}, {"num_samples": 0}):
        with pytest.raises(ValueError):
            PixelNeRFConditioner(**{**TINY_PIXELNERF, **bad})


def test_overfits_a_fixed_batch():
    """Tiny fixed-seed CPU training: the RGB loss falls well below its start."""
    torch.manual_seed(0)
    inputs = make_inputs(1, 2, 2, size=(16, 16), latent=(4, 4))
    y, x = torch.meshgrid(torch.linspace(0, 1, 16), torch.linspace(0, 1, 16), indexing="ij")
    inputs.target_images = torch.stack([x, y, 1 - x * y])[None, None].expand(1, 2, 3, 16, 16).clone()
    model = PixelNeRFConditioner(**{**TINY_PIXELNERF, "num_samples": 8, "hidden_channels": 32})
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    losses = []
    for _ in range(40):
        loss = model(inputs).losses["pixelnerf_rgb"]
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert sum(losses[-5:]) / 5 < 0.5 * losses[0]
