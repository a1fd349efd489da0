"""pathnvs: novel view synthesis with video diffusion models along camera paths.

Importing this package stays light; the heavy parts (diffusers, transformers) load where used.
"""

from nvs import _torchvision  # noqa: F401  (must precede any torchvision import)

__version__ = "0.1.0"
