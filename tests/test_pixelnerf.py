import pytest
import torch
import torch.nn.functional as F

from camera.rays import ray_bundle
from conditioning import build_conditioner
from conditioning.pixelnerf import PixelNeRFConditioner, normalize_scene_cameras
from conditioning.render import ray_box_bounds
from tests.conditioning_scenes import TINY_PIXELNERF, make_inputs, orbit, single_thread  # noqa: F401  (fixture)

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
    assert (
        "pixelnerf_rgb" not in PixelNeRFConditioner(**TINY_PIXELNERF)(make_inputs(1, 2, 2, with_targets=False)).losses
    )


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
    for bad in (
        {"aggregation": "max"},
        {"compositing": "sum"},
        {"rgb_loss": "l3"},
        {"num_samples": 0},
        {"background_samples": -1},
        {"background_far": 0.0},
        {"rgb_mode": "mix"},
    ):
        with pytest.raises(ValueError):
            PixelNeRFConditioner(**{**TINY_PIXELNERF, **bad})
    with pytest.raises(ValueError, match="sample_colors"):
        PixelNeRFConditioner(**{**TINY_PIXELNERF, "rgb_mode": "blend", "sample_colors": False})


# ------------------------------------------------------------- background samples, blended colours
BACKGROUND_AND_BLEND = [
    {"background_samples": 3},
    {"rgb_mode": "blend"},
    {"rgb_mode": "blend", "background_samples": 3, "aggregation": "attention", "compositing": "softmax"},
]


@pytest.mark.parametrize("views", [1, 3, 6])
@pytest.mark.parametrize("options", BACKGROUND_AND_BLEND)
def test_background_and_blend_give_shaped_finite_outputs_for_any_number_of_views(options, views):
    torch.manual_seed(0)
    model = PixelNeRFConditioner(**{**TINY_PIXELNERF, **options, "gradient_checkpointing": True}).train()
    out = model(make_inputs(2, views, 3))
    assert out.maps.shape == (2, 3, 8, 4, 4) and out.extras["rgb"].shape == (2, 3, 3, 4, 4)
    assert out.extras["depth"].shape == out.extras["opacity"].shape == (2, 3, 1, 4, 4)
    for t in (out.maps, out.extras["rgb"], out.extras["depth"], out.extras["opacity"], out.losses["pixelnerf_rgb"]):
        assert torch.isfinite(t).all()
    # the blend is a convex combination of input colours and the decoded (sigmoid) colour
    assert ((out.extras["rgb"] >= 0) & (out.extras["rgb"] <= 1)).all()
    out.losses["pixelnerf_rgb"].backward()  # through the checkpointed chunks
    assert model.encoder.conv1.weight.grad.abs().sum() > 0
    if options.get("rgb_mode") == "blend" and views > 1:
        assert model.blend_score[0].weight.grad.abs().sum() > 0


def test_defaults_are_bit_for_bit_the_options_set_to_their_defaults():
    explicit = {"background_samples": 0, "background_far": 16.0, "rgb_mode": "decode"}
    results = []
    for options in ({}, explicit):
        torch.manual_seed(0)
        model = PixelNeRFConditioner(**{**TINY_PIXELNERF, **options}).train()  # stratified samples
        out = model(make_inputs(2, 3, 5))
        (out.losses["pixelnerf_rgb"] + out.maps.square().mean()).backward()
        results.append(
            [out.maps, out.extras["rgb"], out.extras["depth"], out.extras["opacity"], model.encoder.conv1.weight.grad]
        )
    assert all(torch.equal(a, b) for a, b in zip(*results))


@pytest.mark.parametrize("options", BACKGROUND_AND_BLEND)
def test_new_options_round_trip_through_a_saved_folder_and_chunking(options, tmp_path):
    torch.manual_seed(0)
    model = PixelNeRFConditioner(**{**TINY_PIXELNERF, **options}).eval()
    assert build_conditioner(model.build_config).build_config == model.build_config
    model.save_pretrained(tmp_path)
    again = PixelNeRFConditioner.from_pretrained(tmp_path)
    assert again.build_config == model.build_config and not again.training
    saved, read = model.state_dict(), again.state_dict()
    assert saved.keys() == read.keys() and all(torch.equal(saved[k], read[k]) for k in saved)
    inputs = make_inputs(2, 3, 5)
    a = model(inputs)
    again.chunk_size = 7
    b = again(inputs)
    torch.testing.assert_close(b.maps, a.maps)
    torch.testing.assert_close(b.extras["rgb"], a.extras["rgb"])


def _set_density(model: PixelNeRFConditioner, sigma: float) -> None:
    """Every sample gets the density softplus(logit) = sigma, whatever its inputs."""
    last = model.point_mlp[-1]
    with torch.no_grad():
        last.weight[0] = 0.0
        last.bias[0] = torch.log(torch.expm1(torch.tensor(sigma)))


@pytest.mark.parametrize("background_samples", [0, 3])
def test_background_samples_extend_each_ray_to_background_far(background_samples):
    """Constant density sigma: opacity = 1 - exp(-sigma (end - t_0)) (Beer-Lambert) with end the
    box exit without background samples, background_far with them."""
    sigma, num = 0.05, 4
    model = PixelNeRFConditioner(**{**TINY_PIXELNERF, "background_samples": background_samples}).eval()
    _set_density(model, sigma)
    cams_in, target = orbit(2, size=(16, 16)), orbit(1, 2.5, 0.5, size=(16, 16), phase=0.3)
    images = torch.rand(1, 2, 3, 16, 16, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        _, _, depth, opacity = model.render(images, cams_in, target, 4, 4)
    origins, dirs = ray_bundle(target, 4, 4)
    near, far, _ = ray_box_bounds(origins, dirs)
    t0 = near + (far - near) / (2 * num)
    end = far.clamp(min=16.0) if background_samples else far
    torch.testing.assert_close(opacity[0, 0, 0], 1 - torch.exp(-sigma * (end - t0))[0], atol=1e-5, rtol=1e-4)
    if background_samples:
        assert (depth[0, 0, 0] > far[0]).any()  # background samples beyond the box exit carry weight


@pytest.mark.parametrize("compositing,background_samples", [("softmax", 0), ("alpha", 0), ("alpha", 3)])
def test_blend_with_the_target_camera_as_input_reproduces_its_image(compositing, background_samples):
    """One input view whose camera is the target's: every sample along a target ray projects to
    the ray's own pixel, so the blend is the input colour there (the 2x2 mean at a 2x coarser
    grid), whatever the density; with weights summing to 1 (softmax, or an opaque first sample)
    the decoded colour has no influence."""
    torch.manual_seed(0)
    model = PixelNeRFConditioner(
        **{**TINY_PIXELNERF, "rgb_mode": "blend", "compositing": compositing, "background_samples": background_samples}
    ).eval()
    if compositing == "alpha":
        _set_density(model, 50.0)  # opaque at once
    cams = orbit(1, size=(16, 16))
    image = torch.rand(1, 1, 3, 16, 16, generator=torch.Generator().manual_seed(1))
    expected = F.avg_pool2d(image[0], 2)  # [1, 3, 8, 8]
    with torch.no_grad():
        _, rgb, _, opacity = model.render(image, cams, cams, 8, 8)
        # alpha: rays that only graze the box have too short an interval to become opaque
        opaque = (opacity[0, :, 0] > 1 - 1e-6)[:, None].expand_as(expected)
        assert opaque.float().mean() > 0.8
        torch.testing.assert_close(rgb[0][opaque], expected[opaque], atol=1e-5, rtol=0)
        model.decoder[-1].weight[:3] += 5 * torch.randn_like(model.decoder[-1].weight[:3])
        model.decoder[-1].bias[:3] += 3.0
        again = model.render(image, cams, cams, 8, 8)[1][0]
        torch.testing.assert_close(again[opaque], rgb[0][opaque], atol=1e-5, rtol=0)
    # the decoded colour does matter in decode mode, and for what no view sees
    decode = PixelNeRFConditioner(**{**TINY_PIXELNERF, "compositing": compositing}).eval()
    with torch.no_grad():
        assert (decode.render(image, cams, cams, 8, 8)[1][0] - expected).abs().max() > 0.05


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
