import pytest
import torch

from conditioning.camera_embedding import CameraEmbeddingConditioner, relative_poses
from tests.conditioning_scenes import make_inputs, single_thread  # noqa: F401  (fixture)

pytestmark = pytest.mark.usefixtures("single_thread")


def test_relative_pose_of_the_first_input_is_identity():
    inputs = make_inputs(2, 3, 2)
    inputs.target_cameras = inputs.input_cameras[[0, 0, 3, 3]]
    poses = relative_poses(inputs.input_cameras, inputs.target_cameras, 2)
    eye = torch.eye(4)[:3].flatten()
    torch.testing.assert_close(poses, eye.expand(2, 2, 12), atol=1e-6, rtol=0)


def test_relative_poses_ignore_world_motion_and_scale():
    inputs = make_inputs(1, 2, 3)
    a = relative_poses(inputs.input_cameras, inputs.target_cameras, 1)
    move = torch.eye(4)
    c, s = torch.cos(torch.tensor(0.4)), torch.sin(torch.tensor(0.4))
    move[:3, :3] = torch.tensor([[c, 0, s], [0, 1.0, 0], [-s, 0, c]])
    move[:3, 3] = torch.tensor([1.0, -4.0, 2.0])

    def moved(cams):
        c2w = move @ cams.c2w
        c2w[:, :3, 3] *= 2.5
        return cams.with_c2w(c2w)

    b = relative_poses(moved(inputs.input_cameras), moved(inputs.target_cameras), 1)
    torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-5)
    translations = a.reshape(1, 3, 3, 4)[..., 3]
    assert translations.norm(dim=-1).max() <= 1 + 1e-5  # scaled by the largest camera distance


@pytest.mark.parametrize("views,targets", [(1, 1), (6, 25)])
def test_frame_embedding_starts_at_zero_and_learns(views, targets):
    cond = CameraEmbeddingConditioner(embedding_dim=32, hidden_dim=16)
    out = cond(make_inputs(2, views, targets))
    assert out.frame_embedding.shape == (2, targets, 32) and torch.all(out.frame_embedding == 0)
    assert cond.frame_embedding_dim == 32 and cond.token_dim == 0 and out.maps is None
    out.frame_embedding.sum().backward()
    assert cond.mlp[-1].weight.grad.abs().sum() > 0


def test_tokens_and_input_latents():
    torch.manual_seed(0)
    cond = CameraEmbeddingConditioner(embedding_dim=8, hidden_dim=16, output="tokens", input_latent_views=1)
    torch.nn.init.normal_(cond.mlp[-1].weight)
    inputs = make_inputs(2, 3, 4)
    out = cond(inputs)
    assert out.tokens.shape == (2, 4, 1, 8) and out.frame_embedding is None
    assert cond.token_dim == 8 and cond.map_channels == 4 and cond.uses_input_latents
    assert not torch.allclose(out.tokens[:, 0], out.tokens[:, 1])  # different poses, different tokens
    torch.testing.assert_close(out.maps[1, 3], inputs.input_latents[1, 0])
    with pytest.raises(ValueError, match="output"):
        CameraEmbeddingConditioner(output="both")
