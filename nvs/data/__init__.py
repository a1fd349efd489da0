"""Data: loaders (CO3D v2, MVImgNet, posed folders), protocol manifests, the synthetic world and
training clips (``nvs.data.clips``). Every loader returns :class:`camera.views.Views`."""
