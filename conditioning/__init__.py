"""Camera conditioners of the video U-Net: PixelNeRF feature maps, Plücker rays, learned camera
embeddings and their combinations. They import only :mod:`camera` (and diffusers, whose
``ModelMixin`` / ``ConfigMixin`` they are); the U-Net and its input surgery live in
:mod:`nvs.models.unet`."""

import camera  # noqa: F401  (first: its root makes torchvision importable, before diffusers)
from conditioning.base import CONDITIONERS, Conditioner, ConditioningInputs, ConditioningOutput, NoConditioner
from conditioning.build import build_conditioner, load_conditioner, read_build_config
from conditioning.camera_embedding import CameraEmbeddingConditioner
from conditioning.combine import CombinedConditioner
from conditioning.pixelnerf import PixelNeRFConditioner
from conditioning.plucker import PluckerConditioner

__all__ = [
    "CONDITIONERS",
    "CameraEmbeddingConditioner",
    "CombinedConditioner",
    "Conditioner",
    "ConditioningInputs",
    "ConditioningOutput",
    "NoConditioner",
    "PixelNeRFConditioner",
    "PluckerConditioner",
    "build_conditioner",
    "load_conditioner",
    "read_build_config",
]
