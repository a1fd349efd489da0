"""3D reconstruction from posed frames: Gaussians (fit, carve, render, export), COLMAP, meshes,
IM-3D refinement. Import the submodules (``recon.fit``, ``recon.colmap``, ...); this package
itself imports nothing heavy."""
