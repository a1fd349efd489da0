"""Camera conditioners of the video U-Net: PixelNeRF feature maps, Plücker rays, learned camera
embeddings and their combinations. They import only :mod:`camera`; the U-Net and its input
surgery live in :mod:`nvs.models.unet`."""

import camera  # noqa: F401  (its root makes torchvision importable)
from conditioning.base import Conditioner, ConditioningInputs, ConditioningOutput, NoConditioner
from conditioning.build import build_conditioner
from conditioning.camera_embedding import CameraEmbeddingConditioner
from conditioning.combine import CombinedConditioner
from conditioning.pixelnerf import PixelNeRFConditioner
from conditioning.plucker import PluckerConditioner

__all__ = [
    "CameraEmbeddingConditioner",
    "CombinedConditioner",
    "Conditioner",
    "ConditioningInputs",
    "ConditioningOutput",
    "NoConditioner",
    "PixelNeRFConditioner",
    "PluckerConditioner",
    "build_conditioner",
]
