"""Data: the synthetic world, loaders (CO3D v2, MVImgNet, posed folders) and protocol manifests."""

from nvs.data.sample import Views

__all__ = ["Views"]
