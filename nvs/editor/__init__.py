"""``nvs path edit``: a camera-path editor in the browser (viser), over a scene's cameras and points.

:mod:`nvs.editor.scene` loads SCENE, :mod:`nvs.editor.app` serves it (viser is imported there, on
use), :mod:`nvs.editor.panel` holds the widgets, :mod:`nvs.editor.preview` the PixelNeRF preview.
The path logic itself is :mod:`camera.keyframes`.
"""
