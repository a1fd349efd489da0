"""3D reconstruction from posed frames: Gaussians (fit, carve, render, export), COLMAP, meshes,
IM-3D refinement. Imports only :mod:`camera` among the project's packages. Import the submodules
(``recon.fit``, ``recon.colmap``, ...); this package itself imports nothing heavy."""

import camera  # noqa: F401  (its root makes torchvision importable)
