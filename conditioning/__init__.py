"""Camera conditioning of the video U-Net: PixelNeRF feature maps, Plücker rays, learned camera
embeddings, their combinations, and the U-Net input surgery (``conditioning.unet``, which
imports diffusers and is therefore not imported here)."""

from conditioning.base import Conditioner, ConditioningInputs, ConditioningOutput, NoConditioner
from conditioning.build import build_conditioner
from conditioning.camera_embedding import CameraEmbeddingConditioner
from conditioning.combine import CombinedConditioner
from conditioning.pixelnerf import PixelNeRFConditioner
from conditioning.plucker import PluckerConditioner

__all__ = [
    "CameraEmbeddingConditioner", "CombinedConditioner", "Conditioner", "ConditioningInputs",
    "ConditioningOutput", "NoConditioner", "PixelNeRFConditioner", "PluckerConditioner", "build_conditioner",
]
