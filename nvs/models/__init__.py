"""The NVS model (SVD U-Net + VAE + CLIP + camera conditioner), its presets and EDM preconditioning.

Importing this package stays light; diffusers and transformers load when a model is built.
"""

from nvs.models.pathnvs import Condition, PathNVSModel
from nvs.models.settings import ModelSettings

__all__ = ["Condition", "ModelSettings", "PathNVSModel"]
