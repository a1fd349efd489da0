"""Training batches assembled on the device from scenes held there (the synthetic world fits: 200
scenes x 32 frames x 3 x 128² float32 is 1.3 GB).

:class:`DeviceClips` stacks the frames of a :class:`~nvs.data.scenes.MemoryScenes` once into
``[N, n_max, 3, H, W]`` on the device (and the object-on-black targets beside them when the
targets are masked); a batch is then one gather per tensor, with index tensors built on the host
and copied without waiting. Cameras are normalised per clip on the host by
:func:`~nvs.data.clips.clip_cameras`, exactly as :func:`~nvs.data.clips.load_batch` does, so both
give the same batch. :meth:`DeviceClips.cache_target_latents` encodes every target frame once
with a frozen encoder; batches then carry their targets' latents (``TrainBatch.target_latents``).
:func:`batch_on_device` moves a batch's cameras too, before a training step (which then reads
nothing from the host).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace

import torch
from torch import Tensor

from camera.cameras import Cameras
from nvs.data.clips import ClipSpec, TrainBatch, check_target_background, clip_cameras
from nvs.data.scenes import MemoryScenes


class DeviceClips:
    """The frames of in-memory scenes on ``device``, and :class:`TrainBatch` es gathered from them.

    ``camera_radius`` and ``target_background`` as in :func:`~nvs.data.clips.load_batch`.
    """

    def __init__(
        self,
        scenes: MemoryScenes,
        device: torch.device | str,
        camera_radius: float | None = 1.5,
        target_background: str | None = None,
    ) -> None:
        check_target_background(target_background)
        shapes = {tuple(v.images.shape[1:]) for v in scenes.scenes}
        if len(shapes) != 1:
            raise ValueError(f"DeviceClips needs scenes of one image size, got {sorted(shapes)}: resize them first")
        if target_background == "black":
            unmasked = [i for i, v in enumerate(scenes.scenes) if v.masks is None]
            if unmasked:
                raise ValueError(
                    f"scenes {unmasked[:5]} have no masks: clips.target_background=black needs masked data"
                )
        self.device = torch.device(device)
        self.camera_radius, self.target_background = camera_radius, target_background
        self.frame_counts = list(scenes.frame_counts)
        n_max = max(self.frame_counts)
        # cameras stay on the host, padded like the frames (identity poses past a scene's end, never read)
        dtype = scenes.scenes[0].cameras.dtype
        self.K = torch.eye(3, dtype=dtype).repeat(len(scenes), n_max, 1, 1)
        self.c2w = torch.eye(4, dtype=dtype).repeat(len(scenes), n_max, 1, 1)
        for i, views in enumerate(scenes.scenes):
            self.K[i, : len(views)], self.c2w[i, : len(views)] = views.cameras.K, views.cameras.c2w
        self.size = (scenes.scenes[0].cameras.height, scenes.scenes[0].cameras.width)
        self.images = torch.zeros(len(scenes), n_max, *shapes.pop(), device=self.device)  # [N, n_max, 3, H, W]
        for i, views in enumerate(scenes.scenes):
            self.images[i, : len(views)] = views.images.to(self.device)
        self.targets = self.images  # the frames the model learns to produce
        if target_background == "black":
            self.targets = torch.zeros_like(self.images)
            for i, views in enumerate(scenes.scenes):
                self.targets[i, : len(views)] = views.images.to(self.device) * views.masks.to(self.device)
        self.target_latents: Tensor | None = None  # [N, n_max, C, h, w] once cached

    @torch.no_grad()
    def cache_target_latents(self, encode: Callable[[Tensor], Tensor], chunk: int = 512) -> None:
        """Encode every target frame once: ``encode`` maps images [n, 3, H, W] to latents
        [n, C, h, w] frame by frame (a frozen, deterministic encoder such as the VAE's mode)."""
        frames = self.targets.flatten(0, 1)
        latents = torch.cat([encode(part) for part in frames.split(chunk)])
        self.target_latents = latents.unflatten(0, self.targets.shape[:2])

    def _indices(self, specs: Sequence[ClipSpec]) -> tuple[Tensor, Tensor]:
        """scene [B, 1] and frame [B, V + F] indices on the device (copied without waiting)."""
        for spec in specs:
            n = self.frame_counts[spec.scene]
            if max(*spec.inputs, *spec.targets) >= n:
                raise IndexError(f"clip {spec} reaches past scene {spec.scene}'s {n} frames")
        rows = torch.tensor([[s.scene, *s.inputs, *s.targets] for s in specs], dtype=torch.long)
        if self.device.type == "cuda":
            rows = rows.pin_memory()
        rows = rows.to(self.device, non_blocking=True)
        return rows[:, :1], rows[:, 1:]

    def batch(self, specs: Sequence[ClipSpec], global_batch: int | None = None) -> TrainBatch:
        """The clips of ``specs`` (one V for all) on the device; ``global_batch`` as in load_batch."""
        v = len(specs[0].inputs)
        if any(len(s.inputs) != v or len(s.targets) != len(specs[0].targets) for s in specs):
            raise ValueError(
                "a batch's clips must share the number of inputs and of targets (ClipSampler draws them so)"
            )
        scene, frames = self._indices(specs)
        targets = (scene, frames[:, v:])
        rows = torch.tensor([[*s.inputs, *s.targets] for s in specs])
        scenes = torch.tensor([s.scene for s in specs])[:, None]
        cameras = Cameras(self.K[scenes, rows].flatten(0, 1), self.c2w[scenes, rows].flatten(0, 1), *self.size)
        in_cams, tg_cams = clip_cameras(cameras, len(specs), v, self.camera_radius)
        return TrainBatch(
            self.images[scene, frames[:, :v]],
            in_cams,
            self.targets[targets],
            tg_cams,
            torch.tensor([s.sample_id for s in specs], dtype=torch.long),
            global_batch,
            None if self.target_latents is None else self.target_latents[targets],
        )


def cameras_on(cameras: Cameras, device: torch.device) -> Cameras:
    """The cameras on ``device``, copied through pinned memory without waiting (a pageable copy
    would wait for the GPU) and not validated again (:meth:`Cameras.derived`)."""
    if cameras.device.type != "cpu" or device.type == "cpu":
        return cameras.to(device)
    packed = torch.cat([cameras.K.flatten(1), cameras.c2w.flatten(1)], 1)  # [N, 9 + 16]
    packed = (packed.pin_memory() if device.type == "cuda" else packed).to(device, non_blocking=True)
    K, c2w = packed[:, :9].unflatten(1, (3, 3)), packed[:, 9:].unflatten(1, (4, 4))
    return Cameras.derived(K, c2w, cameras.height, cameras.width)


def batch_on_device(batch: TrainBatch, device: torch.device) -> TrainBatch:
    """Images, cached latents and cameras of ``batch`` on ``device`` (sample ids stay on the host):
    the step's device work then reads nothing from the host."""
    moved = batch.to(device)
    return replace(
        moved,
        input_cameras=cameras_on(batch.input_cameras, device),
        target_cameras=cameras_on(batch.target_cameras, device),
    )
