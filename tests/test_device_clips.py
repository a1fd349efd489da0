import pytest
import torch

from camera.views import Views
from nvs.data.clips import ClipSampler, load_batch
from nvs.data.device_clips import DeviceClips
from nvs.data.scenes import MemoryScenes, synthetic_scenes


@pytest.fixture(scope="module")
def scenes():
    views = synthetic_scenes(3, 9, 16, 16, seed=0, supersample=1)
    short = views[2][list(range(7))]  # scenes of different lengths: padded on the device, never read there
    return MemoryScenes([views[0], views[1], short])


@pytest.mark.parametrize("background", [None, "black"])
def test_device_batches_equal_host_batches(scenes, background):
    clips = DeviceClips(scenes, "cpu", camera_radius=1.5, target_background=background)
    sampler = ClipSampler(scenes.frame_counts, 4, global_batch=4, seed=2, max_inputs=3, input_range="sequence")
    for step in range(6):
        specs = sampler.batch(step)
        host = load_batch(scenes, specs, 1.5, background, global_batch=4)
        device = clips.batch(specs, global_batch=4)
        assert torch.equal(device.input_images, host.input_images)
        assert torch.equal(device.target_images, host.target_images)
        assert torch.equal(device.input_cameras.c2w, host.input_cameras.c2w)
        assert torch.equal(device.target_cameras.K, host.target_cameras.K)
        assert torch.equal(device.sample_ids, host.sample_ids) and device.positions == host.positions
        assert device.target_latents is None


def test_cached_latents_are_the_encoded_targets(scenes):
    clips = DeviceClips(scenes, "cpu", target_background="black")
    weights = torch.randn(4, 3)

    def encode(images):  # [n, 3, 16, 16] -> [n, 4, 2, 2], frame by frame
        return torch.einsum("cd,ndhw->nchw", weights, torch.nn.functional.avg_pool2d(images, 8))

    clips.cache_target_latents(encode, chunk=5)
    specs = ClipSampler(scenes.frame_counts, 4, global_batch=2, seed=0).batch(1)
    batch = clips.batch(specs)
    expected = encode(batch.target_images.flatten(0, 1)).unflatten(0, (2, 4))
    torch.testing.assert_close(batch.target_latents, expected, rtol=1e-5, atol=1e-6)


def test_device_clips_refuse_what_they_cannot_stack(scenes):
    v = scenes.scenes[0]
    with pytest.raises(ValueError, match="target_background=black"):
        DeviceClips(MemoryScenes([Views(v.images, v.cameras)]), "cpu", target_background="black")
    small = Views(v.images[:, :, :8, :8], v.cameras.resize(8, 8))
    with pytest.raises(ValueError, match="one image size"):
        DeviceClips(MemoryScenes([v, small]), "cpu")
    with pytest.raises(ValueError, match="target_background"):
        DeviceClips(scenes, "cpu", target_background="white")


def test_a_batch_on_the_device_keeps_its_values(scenes):
    from nvs.data.device_clips import batch_on_device, cameras_on
    from tests.host_reads import NoHostReads

    sampler = ClipSampler(scenes.frame_counts, 4, 2, seed=0)
    batch = load_batch(scenes, sampler.batch(0))
    moved = batch_on_device(batch, torch.device("cpu"))
    for name in ("input_cameras", "target_cameras"):
        assert torch.equal(getattr(moved, name).K, getattr(batch, name).K)
        assert torch.equal(getattr(moved, name).c2w, getattr(batch, name).c2w)
    assert torch.equal(moved.input_images, batch.input_images) and moved.sample_ids is batch.sample_ids
    with NoHostReads():  # moved cameras are not validated again
        cameras_on(batch.target_cameras, torch.device("cpu"))
