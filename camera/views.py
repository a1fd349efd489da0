"""The one sample structure that every loader returns and every later stage consumes."""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import Tensor

from camera.cameras import Cameras


@dataclass
class Views:
    """F posed views of one scene.

    Attributes:
        images: [F, 3, H, W] RGB in [0, 1].
        cameras: F cameras (OpenCV, c2w, pixels) of size H x W.
        masks: [F, 1, H, W] foreground probability in [0, 1], or None.
        depths: [F, 1, H, W] camera-space z depth (0 where unknown), or None.
        valid_region: [F, 1, H, W] 1 where the image holds data (e.g. after a pasted crop), or None.
        frame_ids: one id per view (CO3D frame numbers, file names, ...).
        scene: sequence or scene name; category: its category, if any.
    """

    images: Tensor
    cameras: Cameras
    masks: Tensor | None = None
    depths: Tensor | None = None
    valid_region: Tensor | None = None
    frame_ids: list = field(default_factory=list)
    scene: str = ""
    category: str = ""

    def __post_init__(self) -> None:
        if self.images.ndim != 4 or self.images.shape[1] != 3:
            raise ValueError(f"Views.images must be [F, 3, H, W], got {tuple(self.images.shape)}")
        f, _, h, w = self.images.shape
        if len(self.cameras) != f:
            raise ValueError(f"Views has {f} images but {len(self.cameras)} cameras")
        if (self.cameras.height, self.cameras.width) != (h, w):
            raise ValueError(
                f"Views.cameras are for {self.cameras.height}x{self.cameras.width} images but the images are "
                f"{h}x{w}: resize the cameras with Cameras.resize"
            )
        for name in ("masks", "depths", "valid_region"):
            x = getattr(self, name)
            if x is not None and tuple(x.shape) != (f, 1, h, w):
                raise ValueError(f"Views.{name} must be [{f}, 1, {h}, {w}], got {tuple(x.shape)}")
        if not self.frame_ids:
            self.frame_ids = list(range(f))

    def __len__(self) -> int:
        return self.images.shape[0]

    def __getitem__(self, index) -> Views:
        idx = torch.as_tensor([index] if isinstance(index, int) else index, dtype=torch.long)
        pick = lambda x: None if x is None else x[idx]  # noqa: E731
        return Views(
            self.images[idx],
            self.cameras[idx],
            pick(self.masks),
            pick(self.depths),
            pick(self.valid_region),
            [self.frame_ids[i] for i in idx.tolist()],
            self.scene,
            self.category,
        )
