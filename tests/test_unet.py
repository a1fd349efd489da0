import pytest
import torch

from conditioning.plucker import PluckerConditioner
from nvs.models.unet import PathUNet, expand_conv_in, load_path_unet, required_in_channels
from tests.conditioning_scenes import single_thread  # noqa: F401  (fixture)

pytestmark = pytest.mark.usefixtures("single_thread")

TINY_UNET = dict(
    sample_size=8,
    in_channels=8,
    out_channels=4,
    block_out_channels=(32, 64),
    layers_per_block=1,
    cross_attention_dim=32,
    num_attention_heads=(2, 4),
    transformer_layers_per_block=1,
    down_block_types=("CrossAttnDownBlockSpatioTemporal", "DownBlockSpatioTemporal"),
    up_block_types=("UpBlockSpatioTemporal", "CrossAttnUpBlockSpatioTemporal"),
    addition_time_embed_dim=8,
    projection_class_embeddings_input_dim=24,
)


def _tiny_unet():
    from diffusers.models.unets.unet_spatio_temporal_condition import UNetSpatioTemporalConditionModel

    torch.manual_seed(0)
    return UNetSpatioTemporalConditionModel(**TINY_UNET).eval()


def _call_args(channels: int, seed: int = 1):
    g = torch.Generator().manual_seed(seed)
    return (
        torch.randn(1, 3, channels, 8, 8, generator=g),
        torch.tensor(20.0),
        torch.randn(1, 1, 32, generator=g),
        torch.randn(1, 3, generator=g),
    )


@torch.no_grad()
def test_path_unet_without_extras_equals_the_parent_exactly():
    unet = _tiny_unet()
    path = load_path_unet(unet, 8)
    assert isinstance(path, PathUNet)
    args = _call_args(8)
    assert torch.equal(path(*args).sample, unet(*args).sample)
    zero_emb = path(*args, frame_embedding=torch.zeros(1, 3, 128)).sample
    assert torch.equal(zero_emb, unet(*args).sample)


@torch.no_grad()
def test_expanded_unet_ignores_the_new_channels_at_init():
    unet = _tiny_unet()
    sample, t, ctx, ids = _call_args(8)
    before = unet(sample, t, ctx, ids).sample
    expand_conv_in(unet, 6)
    assert unet.conv_in.in_channels == 14 and unet.config.in_channels == 14
    for seed in (2, 3):
        extra = 10 * torch.randn(1, 3, 6, 8, 8, generator=torch.Generator().manual_seed(seed))
        after = unet(torch.cat([sample, extra], 2), t, ctx, ids).sample
        # a 14-channel conv sums in another order than the 8-channel one: float32 noise, not a signal
        torch.testing.assert_close(after, before, atol=1e-5, rtol=1e-5)


def test_gradients_reach_the_new_input_weights():
    unet = expand_conv_in(_tiny_unet(), 6)
    sample, t, ctx, ids = _call_args(14)
    unet(sample, t, ctx, ids).sample.square().mean().backward()
    grad = unet.conv_in.weight.grad
    assert grad[:, 8:].abs().sum() > 0 and grad[:, :8].abs().sum() > 0


def test_save_and_load_round_trip(tmp_path):
    unet = expand_conv_in(_tiny_unet(), 6)
    unet.save_pretrained(tmp_path / "unet")
    assert (tmp_path / "unet" / "diffusion_pytorch_model.safetensors").is_file()
    loaded = load_path_unet(tmp_path / "unet", 14).eval()
    assert loaded.config.in_channels == 14
    saved = unet.state_dict()
    assert all(torch.equal(v, saved[k]) for k, v in loaded.state_dict().items())
    args = _call_args(14)
    with torch.no_grad():
        # bitwise-equal weights may still take other kernels (memory layout), so float32 sums differ slightly
        torch.testing.assert_close(loaded(*args).sample, unet(*args).sample, atol=1e-5, rtol=1e-5)
    loaded_from_parent = load_path_unet(tmp_path, 14)  # a pipeline folder with unet/
    assert loaded_from_parent.config.in_channels == 14


def test_mismatched_channels_are_a_clear_error(tmp_path):
    unet = _tiny_unet()
    unet.save_pretrained(tmp_path)
    need = required_in_channels(PluckerConditioner())
    assert need == 14
    with pytest.raises(ValueError, match="model has 8 input channels, conditioner needs 14: expand it"):
        load_path_unet(tmp_path, need)
    with pytest.raises(ValueError, match="model has 8 input channels, conditioner needs 14"):
        load_path_unet(unet, need)
    with pytest.raises(ValueError, match="sample has 14 channels"):
        load_path_unet(unet, 8)(*_call_args(14))


@torch.no_grad()
def test_frame_embedding_and_tokens_change_only_their_frames_conditioning():
    path = load_path_unet(_tiny_unet(), 8)
    args = _call_args(8)
    base = path(*args).sample
    emb = torch.zeros(1, 3, 128)
    emb[0, 1] = 5.0
    with_emb = path(*args, frame_embedding=emb).sample
    assert not torch.allclose(with_emb[:, 1], base[:, 1])
    tokens = torch.randn(1, 3, 2, 32, generator=torch.Generator().manual_seed(4))
    assert not torch.allclose(path(*args, frame_tokens=tokens).sample, base)
    with pytest.raises(ValueError, match="time-embedding width"):
        path(*args, frame_embedding=torch.zeros(1, 3, 64))
    with pytest.raises(ValueError, match="frame_tokens must be"):
        path(*args, frame_tokens=torch.zeros(1, 3, 2, 16))


def _loss_and_grads(unet, args):
    unet.zero_grad(set_to_none=True)
    loss = unet(*args).sample.square().mean()
    loss.backward()
    return loss.detach(), {n: p.grad.clone() for n, p in unet.named_parameters() if p.grad is not None}


def test_block_checkpointing_gives_the_gradients_and_keeps_the_least():
    """Whole-block checkpointing recomputes what the plain backward would have kept: the same loss and
    gradients as no checkpointing and as diffusers' per-layer checkpointing, with less saved for the
    backward than either (diffusers' keeps the temporal layers' activations)."""
    from benchmarks.checkpoint_memory import counting_saved_bytes

    unet = load_path_unet(_tiny_unet(), 8).train()
    args = _call_args(8)
    params = {p.untyped_storage().data_ptr() for p in unet.parameters()}
    results, saved = {}, {}
    for mode in ("none", "layers", "blocks"):
        if mode == "layers":
            unet.enable_gradient_checkpointing()
        elif mode == "blocks":
            unet.enable_block_checkpointing()
            assert not unet.is_gradient_checkpointing  # one granularity at a time
        with counting_saved_bytes(params) as count:
            results[mode] = _loss_and_grads(unet, args)
        saved[mode] = count["bytes"]
    loss, grads = results["none"]
    for mode in ("layers", "blocks"):
        torch.testing.assert_close(results[mode][0], loss, rtol=1e-6, atol=0)
        assert results[mode][1].keys() == grads.keys()
        for name, grad in grads.items():
            torch.testing.assert_close(results[mode][1][name], grad, rtol=1e-5, atol=1e-7, msg=name)
    assert saved["blocks"] < 0.5 * saved["layers"] and saved["layers"] < saved["none"], saved
    unet.disable_block_checkpointing()
    with counting_saved_bytes(params) as count:
        _loss_and_grads(unet, args)
    assert count["bytes"] == saved["none"]
