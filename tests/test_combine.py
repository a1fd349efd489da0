import pytest
import torch

from conditioning.build import load_conditioner
from conditioning.camera_embedding import CameraEmbeddingConditioner
from conditioning.combine import CombinedConditioner
from conditioning.pixelnerf import PixelNeRFConditioner
from conditioning.plucker import PluckerConditioner
from tests.conditioning_scenes import TINY_PIXELNERF, make_inputs, single_thread  # noqa: F401  (fixture)

pytestmark = pytest.mark.usefixtures("single_thread")

TINY = {"name": "pixelnerf", **TINY_PIXELNERF}


@pytest.mark.parametrize("views,targets", [(1, 25), (6, 1)])
def test_maps_concatenate_in_order_and_losses_merge(views, targets):
    torch.manual_seed(0)
    combined = CombinedConditioner([TINY, {"name": "plucker", "input_latent_views": 1}]).eval()
    pixelnerf, plucker = combined.conditioners
    assert isinstance(pixelnerf, PixelNeRFConditioner) and isinstance(plucker, PluckerConditioner)
    assert combined.map_channels == 8 + 10 and combined.uses_input_latents
    inputs = make_inputs(2, views, targets)
    out = combined(inputs)
    assert out.maps.shape == (2, targets, 18, 4, 4) and torch.isfinite(out.maps).all()
    torch.testing.assert_close(out.maps[:, :, :8], pixelnerf(inputs).maps)
    torch.testing.assert_close(out.maps[:, :, 8:], plucker(inputs).maps)
    assert set(out.losses) == {"pixelnerf_rgb"} and {"rgb", "depth"} <= set(out.extras)


def test_frame_embeddings_sum_and_tokens_concatenate():
    torch.manual_seed(0)
    embedding = {"name": "camera_embedding", "embedding_dim": 8, "hidden_dim": 8}
    tokens = {"name": "camera_embedding", "embedding_dim": 6, "hidden_dim": 8, "output": "tokens"}
    combined = CombinedConditioner(
        [embedding, {**embedding, "normalize_scale": False}, tokens, tokens, {"name": "plucker"}]
    )
    a, b, t1, t2, _ = combined.conditioners
    for m in (a, b, t1, t2):
        torch.nn.init.normal_(m.mlp[-1].weight)
    inputs = make_inputs(1, 2, 3)
    out = combined(inputs)
    torch.testing.assert_close(out.frame_embedding, a(inputs).frame_embedding + b(inputs).frame_embedding)
    assert out.tokens.shape == (1, 3, 2, 6)
    torch.testing.assert_close(out.tokens[:, :, 1:], t2(inputs).tokens)
    assert out.maps.shape == (1, 3, 6, 4, 4)


def test_the_config_holds_every_part_in_full_and_a_saved_folder_rebuilds_them(tmp_path):
    torch.manual_seed(0)
    combined = CombinedConditioner([TINY, {"name": "plucker"}])
    parts = combined.config["parts"]
    assert parts[0] == combined.conditioners[0].build_config and parts[0]["rgb_mode"] == "decode"  # defaults too
    assert parts[1] == {"name": "plucker", **PluckerConditioner().build_config}
    combined.save_pretrained(tmp_path)
    loaded = load_conditioner(tmp_path)
    assert type(loaded) is CombinedConditioner and loaded.build_config == combined.build_config
    saved, read = combined.state_dict(), loaded.state_dict()
    assert saved.keys() == read.keys() and all(torch.equal(saved[k], read[k]) for k in saved)
    inputs = make_inputs(1, 2, 3)
    torch.testing.assert_close(loaded(inputs).maps, combined.eval()(inputs).maps, atol=1e-5, rtol=1e-5)


def test_mismatched_sizes_are_rejected():
    with pytest.raises(ValueError, match="frame_embedding_dim"):
        CombinedConditioner(
            [{"name": "camera_embedding", "embedding_dim": 8}, {"name": "camera_embedding", "embedding_dim": 4}]
        )
    with pytest.raises(ValueError, match="at least one"):
        CombinedConditioner([])
    with pytest.raises(TypeError, match="build_config"):
        CombinedConditioner([CameraEmbeddingConditioner()])
    twice = CombinedConditioner([TINY, TINY])
    with pytest.raises(ValueError, match="pixelnerf_rgb"):
        twice(make_inputs(1, 1, 1))
