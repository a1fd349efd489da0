import pytest
import torch

from camera.cameras import Cameras, look_at
from camera.scene_normalization import apply_similarity, normalize_scenes, scene_similarity


def _cameras(n: int, seed: int) -> Cameras:
    eye = torch.randn(n, 3, generator=torch.Generator().manual_seed(seed)) * 3 + 1.0
    return Cameras.from_fov(look_at(eye, torch.zeros(3), torch.tensor([0.0, 0.0, 1.0])), 50.0, 16, 16)


def test_batched_normalisation_is_the_per_scene_one():
    cams = _cameras(15, 0)  # 3 scenes of 5 cameras, scene-major
    out = normalize_scenes(cams, 3, 1.5)
    for b in range(3):
        ref, tf = cams[b * 5 : (b + 1) * 5].normalize_scene(1.5)
        torch.testing.assert_close(out.c2w[b * 5 : (b + 1) * 5], ref.c2w, rtol=0, atol=1e-6)
        centres = out.centers[b * 5 : (b + 1) * 5]
        assert centres.mean(0).abs().max() < 1e-5 and centres.norm(dim=-1).max() == pytest.approx(1.5, abs=1e-5)
    assert torch.equal(out.R, cams.R) and torch.equal(out.K, cams.K)  # rotations and intrinsics untouched


def test_similarity_from_reference_cameras_moves_others_alike():
    ref, others = _cameras(4, 1), _cameras(6, 2)  # 2 scenes: 2 reference and 3 other cameras each
    scale, shift = scene_similarity(ref.centers.unflatten(0, (2, 2)), 2.0)
    moved = apply_similarity(others, scale, shift)
    for b in range(2):
        _, tf = ref[b * 2 : (b + 1) * 2].normalize_scene(2.0)
        expected = tf.apply_points(others.centers[b * 3 : (b + 1) * 3])
        torch.testing.assert_close(moved.centers[b * 3 : (b + 1) * 3], expected, rtol=0, atol=1e-6)


def test_coincident_centres_are_only_recentred_and_bad_input_is_refused():
    cams = Cameras.cat([_cameras(1, 3)] * 3)
    out = normalize_scenes(cams, 1, 1.5)
    assert out.centers.abs().max() < 1e-6  # one point: moved to the origin, scale 1
    with pytest.raises(ValueError, match="radius must be positive"):
        scene_similarity(cams.centers[None], 0.0)
    with pytest.raises(ValueError, match="same count per scene"):
        apply_similarity(cams, torch.ones(2), torch.zeros(2, 3))
