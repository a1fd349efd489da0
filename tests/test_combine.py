import pytest
import torch

from conditioning.camera_embedding import CameraEmbeddingConditioner
from conditioning.combine import CombinedConditioner
from conditioning.pixelnerf import PixelNeRFConditioner
from conditioning.plucker import PluckerConditioner
from tests.conditioning_scenes import TINY_PIXELNERF, make_inputs, single_thread  # noqa: F401  (fixture)

pytestmark = pytest.mark.usefixtures("single_thread")


@pytest.mark.parametrize("views,targets", [(1, 25), (6, 1)])
def test_maps_concatenate_in_order_and_losses_merge(views, targets):
    torch.manual_seed(0)
    pixelnerf, plucker = PixelNeRFConditioner(**TINY_PIXELNERF).eval(), PluckerConditioner(input_latent_views=1)
    combined = CombinedConditioner([pixelnerf, plucker])
    assert combined.map_channels == 8 + 10 and combined.uses_input_latents
    inputs = make_inputs(2, views, targets)
    out = combined(inputs)
    assert out.maps.shape == (2, targets, 18, 4, 4) and torch.isfinite(out.maps).all()
    torch.testing.assert_close(out.maps[:, :, :8], pixelnerf(inputs).maps)
    torch.testing.assert_close(out.maps[:, :, 8:], plucker(inputs).maps)
    assert set(out.losses) == {"pixelnerf_rgb"} and {"rgb", "depth"} <= set(out.extras)


def test_frame_embeddings_sum_and_tokens_concatenate():
    torch.manual_seed(0)
    a = CameraEmbeddingConditioner(embedding_dim=8, hidden_dim=8)
    b = CameraEmbeddingConditioner(embedding_dim=8, hidden_dim=8, normalize_scale=False)
    t1 = CameraEmbeddingConditioner(embedding_dim=6, hidden_dim=8, output="tokens")
    t2 = CameraEmbeddingConditioner(embedding_dim=6, hidden_dim=8, output="tokens")
    for m in (a, b, t1, t2):
        torch.nn.init.normal_(m.mlp[-1].weight)
    inputs = make_inputs(1, 2, 3)
    out = CombinedConditioner([a, b, t1, t2, PluckerConditioner()])(inputs)
    torch.testing.assert_close(out.frame_embedding, a(inputs).frame_embedding + b(inputs).frame_embedding)
    assert out.tokens.shape == (1, 3, 2, 6)
    torch.testing.assert_close(out.tokens[:, :, 1:], t2(inputs).tokens)
    assert out.maps.shape == (1, 3, 6, 4, 4)


def test_mismatched_sizes_are_rejected():
    with pytest.raises(ValueError, match="frame_embedding_dim"):
        CombinedConditioner([CameraEmbeddingConditioner(embedding_dim=8), CameraEmbeddingConditioner(embedding_dim=4)])
    with pytest.raises(ValueError, match="at least one"):
        CombinedConditioner([])
    twice = CombinedConditioner([PixelNeRFConditioner(**TINY_PIXELNERF), PixelNeRFConditioner(**TINY_PIXELNERF)])
    with pytest.raises(ValueError, match="pixelnerf_rgb"):
        twice(make_inputs(1, 1, 1))
