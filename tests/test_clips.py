import pytest
import torch

from camera.cameras import Cameras, look_at
from camera.views import Views
from nvs.data.clips import ClipSampler, TrainBatch, load_batch
from nvs.data.scenes import MemoryScenes, synthetic_scenes


def _orbit_views(n: int, scene: int, size: int = 16) -> Views:
    angles = torch.linspace(0, 2 * torch.pi, n + 1, dtype=torch.float64)[:n]
    eye = torch.stack([3 * torch.cos(angles), 3 * torch.sin(angles), torch.full_like(angles, 0.5)], -1) + scene
    c2w = look_at(eye, torch.zeros(3, dtype=torch.float64) + scene, torch.tensor([0.0, 0.0, 1.0], dtype=torch.float64))
    cams = Cameras.from_fov(c2w.float(), 50.0, size, size)
    images = torch.arange(n, dtype=torch.float32)[:, None, None, None].expand(n, 3, size, size) / n
    return Views(images.contiguous(), cams, scene=f"s{scene}")


def _specs(sampler: ClipSampler, steps: int) -> list:
    return [next(sampler) for _ in range(steps)]


def test_sampler_is_deterministic_and_resumable():
    kw = dict(frame_counts=[12, 15, 20], num_frames=4, global_batch=2, seed=7)
    straight = _specs(ClipSampler(**kw), 8)
    assert straight == _specs(ClipSampler(**kw), 8)
    first = ClipSampler(**kw)
    _specs(first, 3)
    resumed = ClipSampler(**kw)
    resumed.load_state_dict(first.state_dict())
    assert _specs(resumed, 5) == straight[3:]
    assert _specs(ClipSampler(**{**kw, "seed": 8}), 8) != straight


def test_sampler_resume_with_other_batch_size_is_refused():
    a = ClipSampler([12], 4, global_batch=2)
    b = ClipSampler([12], 4, global_batch=4)
    with pytest.raises(ValueError, match="batch_size"):
        b.load_state_dict(a.state_dict())


def test_clips_follow_the_trajectory_and_draw_one_to_four_inputs():
    counts = [12, 30]
    sampler = ClipSampler(counts, num_frames=5, global_batch=3, seed=0, max_stride=3)
    seen_v, seen_strides = set(), set()
    for step in range(60):
        batch = sampler.batch(step)
        assert len({len(s.inputs) for s in batch}) == 1  # one V per batch, so it stacks
        for spec in batch:
            n = counts[spec.scene]
            t = torch.tensor(spec.targets)
            stride = t[1:] - t[:-1]
            assert len(t) == 5 and torch.all(stride == stride[0]) and 1 <= stride[0] <= 3
            assert 0 <= t.min() and t.max() < n
            assert all(spec.targets[0] <= i <= spec.targets[-1] for i in spec.inputs)
            assert len(set(spec.inputs)) == len(spec.inputs)  # window wider than 4 frames: no repeats
            seen_v.add(len(spec.inputs))
            seen_strides.add(int(stride[0]))
    assert seen_v == {1, 2, 3, 4}
    assert seen_strides == {1, 2, 3}


def test_every_scene_once_per_epoch():
    sampler = ClipSampler([10] * 6, num_frames=4, global_batch=2, seed=3)
    scenes = [s.scene for step in range(3) for s in sampler.batch(step)]
    assert sorted(scenes) == list(range(6))


def test_ranks_split_the_global_batch():
    kw = dict(frame_counts=[12, 15, 20, 13], num_frames=4, global_batch=4, seed=1)
    whole = ClipSampler(**kw)
    halves = [ClipSampler(**kw, rank=r, world_size=2) for r in range(2)]
    for step in range(5):
        assert halves[0].batch(step) + halves[1].batch(step) == whole.batch(step)
    with pytest.raises(ValueError, match="multiple of the number of processes"):
        ClipSampler(**{**kw, "global_batch": 3}, world_size=2)


def test_short_scene_is_a_clear_error():
    with pytest.raises(ValueError, match="fewer frames than num_frames"):
        ClipSampler([12, 3], num_frames=4, global_batch=1)


def test_load_batch_shapes_and_camera_normalisation():
    scenes = MemoryScenes([_orbit_views(12, 0), _orbit_views(14, 1)])
    sampler = ClipSampler(scenes.frame_counts, num_frames=4, global_batch=2, seed=0)
    specs = sampler.batch(2)
    batch = load_batch(scenes, specs, camera_radius=1.5)
    v = len(specs[0].inputs)
    assert batch.input_images.shape == (2, v, 3, 16, 16) and batch.target_images.shape == (2, 4, 3, 16, 16)
    assert len(batch.input_cameras) == 2 * v and len(batch.target_cameras) == 8
    assert batch.sample_ids.tolist() == [4, 5]
    # images carry their frame index: targets and inputs are the frames the spec names
    for b, spec in enumerate(specs):
        n = scenes.frame_counts[spec.scene]
        assert batch.target_images[b, :, 0, 0, 0].tolist() == pytest.approx([t / n for t in spec.targets])
        assert batch.input_images[b, :, 0, 0, 0].tolist() == pytest.approx([i / n for i in spec.inputs])
        centres = torch.cat(
            [batch.input_cameras.centers[b * v : (b + 1) * v], batch.target_cameras.centers[b * 4 : (b + 1) * 4]]
        )
        assert centres.mean(0).abs().max() < 1e-5
        assert centres.norm(dim=-1).max() == pytest.approx(1.5, abs=1e-5)
    joined = TrainBatch.cat([load_batch(scenes, specs[:1]), load_batch(scenes, specs[1:])])
    assert torch.equal(joined.target_images, batch.target_images)


def test_black_target_background_masks_targets_only():
    scenes = MemoryScenes(synthetic_scenes(1, 6, 16, 16, seed=0, supersample=1))
    spec = ClipSampler(scenes.frame_counts, 3, 1, seed=0, min_inputs=2, max_inputs=2).clip(0, 0)
    whole = load_batch(scenes, [spec])
    black = load_batch(scenes, [spec], target_background="black")
    views = scenes.load(spec.scene, list(spec.targets))
    assert torch.equal(black.input_images, whole.input_images)
    assert torch.equal(black.target_images[0], views.images * views.masks)
    with pytest.raises(ValueError, match="target_background"):
        load_batch(scenes, [spec], target_background="white")


def test_a_batch_knows_its_rows_of_the_global_batch():
    scenes = MemoryScenes([_orbit_views(12, 0), _orbit_views(14, 1)])
    halves = [ClipSampler(scenes.frame_counts, 4, global_batch=4, seed=0, rank=r, world_size=2) for r in range(2)]
    for r, sampler in enumerate(halves):
        batch = load_batch(scenes, sampler.batch(3), global_batch=4)
        assert batch.step == 3 and batch.positions == slice(2 * r, 2 * r + 2)
    whole = load_batch(scenes, ClipSampler(scenes.frame_counts, 4, global_batch=4, seed=0).batch(3))
    assert whole.step == 3 and whole.positions == slice(0, 4)
    moved = whole.to("meta")
    assert moved.input_images.device.type == "meta" and moved.target_images.device.type == "meta"
    assert moved.input_cameras is whole.input_cameras and moved.sample_ids is whole.sample_ids  # host side
