import pytest
import torch

from nvs.data.scenes import synthetic_scenes


def test_synthetic_scenes_cache_round_trip(tmp_path):
    first = synthetic_scenes(2, 5, 16, 16, seed=0, cache_dir=tmp_path)
    files = list(tmp_path.glob("synthetic_*.safetensors"))
    assert len(files) == 1
    again = synthetic_scenes(2, 5, 16, 16, seed=0, cache_dir=tmp_path)
    for a, b in zip(first, again):
        assert torch.equal(a.images, b.images) and torch.equal(a.cameras.c2w, b.cameras.c2w)
        assert torch.equal(a.cameras.K, b.cameras.K)
    assert not torch.equal(first[0].images, first[1].images)
    with pytest.raises(ValueError, match="unknown synthetic categories"):
        synthetic_scenes(1, 5, 16, 16, categories=["no-such-thing"])


def test_co3d_scenes_follow_timestamps_and_skip_short_sequences(tmp_path):
    from nvs.data.scenes import Co3dScenes, build_scenes
    from tests.co3d_layout import write_tiny_co3d

    write_tiny_co3d(tmp_path, {"apple": {"long": 6, "short": 3}, "ball": {"other": 5}})
    scenes = build_scenes("co3d", (16, 16), min_frames=4, root=tmp_path)
    assert isinstance(scenes, Co3dScenes) and scenes.frame_counts == [6, 5]
    views = scenes.load(0, [0, 1, 5])
    assert views.frame_ids == [5, 4, 0]  # timestamps run backwards in this layout
    assert views.images.shape == (3, 3, 16, 16) and (views.cameras.height, views.cameras.width) == (16, 16)
    only_ball = Co3dScenes(tmp_path, 16, categories=["ball"])
    assert [seq for _, seq, _ in only_ball.items] == ["other"]
    with pytest.raises(ValueError, match="no CO3D sequence"):
        Co3dScenes(tmp_path, 16, min_frames=10)
    with pytest.raises(ValueError, match="data.frames_per_scene"):
        build_scenes("synthetic", (16, 16), min_frames=8, frames_per_scene=4)
    with pytest.raises(ValueError, match="data.source"):
        build_scenes("mvimgnet", (16, 16), min_frames=4)


def test_sparsefusion_cropped_scenes_match_the_crop_function(tmp_path):
    from nvs.data.crop import sparsefusion_crop
    from nvs.data.synthetic import synthetic_views

    scenes = synthetic_scenes(
        1, 3, 24, 24, seed=0, cache_dir=tmp_path, crop="sparsefusion", render_size=40, supersample=1
    )
    full = synthetic_views(scenes[0].category, 0, 3, 40, 40, supersample=1)
    images, masks, _, valid, cams = sparsefusion_crop(full.images, full.masks, full.cameras, 24)
    assert torch.equal(scenes[0].images, images) and torch.equal(scenes[0].masks, masks)
    assert torch.equal(scenes[0].valid_region, valid) and torch.allclose(scenes[0].cameras.K, cams.K)
    cached = synthetic_scenes(
        1, 3, 24, 24, seed=0, cache_dir=tmp_path, crop="sparsefusion", render_size=40, supersample=1
    )
    assert torch.equal(cached[0].valid_region, valid)
    with pytest.raises(ValueError, match="data.crop"):
        synthetic_scenes(1, 3, 24, 24, crop="square")
