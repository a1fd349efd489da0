"""pathnvs: novel view synthesis with video diffusion models along camera paths.

Importing this package stays light; the heavy parts (diffusers, transformers) load where used.
"""

import camera  # noqa: F401  (camera's root makes torchvision importable before diffusers / transformers)

__version__ = "0.1.0"
