"""The path editor's server: the scene and the path drawn in viser, and the editing API.

Every edit goes through :class:`PathEditor` methods, which update the :class:`KeyframePath`
(pure functions of :mod:`camera.keyframes`), redraw and refresh the panel; the panel's widgets
(:mod:`nvs.editor.panel`) only call these methods, so a test drives the editor the same way.
"""

from __future__ import annotations

import dataclasses
import math
import threading
from pathlib import Path

import numpy as np
import torch

from camera import keyframes as kp
from camera.cameras import Cameras
from nvs.editor.convention import c2w_to_viser, viser_to_c2w
from nvs.editor.scene import EditorScene, scene_scale, scene_up

INPUT_COLOR = (90, 90, 90)
KEYFRAME_COLOR = (220, 30, 40)
PATH_COLOR = (40, 110, 230)
SCRUB_COLOR = (20, 180, 60)
MAX_PATH_FRUSTUMS = 16
TEXTURE_SIDE = 96


def _uint8_image(image: torch.Tensor) -> np.ndarray:
    """[3, H, W] in [0, 1] -> [H, W, 3] uint8, at most ``TEXTURE_SIDE`` pixels on its longer side."""
    import torch.nn.functional as F

    h, w = image.shape[-2:]
    scale = min(1.0, TEXTURE_SIDE / max(h, w))
    if scale < 1.0:
        image = F.interpolate(
            image[None].float(), size=(max(1, round(h * scale)), max(1, round(w * scale))), mode="area"
        )[0]
    return (image.permute(1, 2, 0).clamp(0, 1).numpy() * 255).round().astype(np.uint8)


class PathEditor:
    """A viser server showing ``scene`` and editing a camera path over it.

    Usage (the server runs until stopped; ``nvs path edit`` wraps this)::

        editor = PathEditor(load_scene("scene/"), port=8080)
        editor.add_keyframe(editor.scene.cameras.c2w[0], 50.0)
        editor.save("camera_path.json")
    """

    def __init__(
        self,
        scene: EditorScene,
        host: str = "127.0.0.1",
        port: int = 8080,
        preview=None,
        path: kp.KeyframePath | None = None,
    ) -> None:
        import viser

        self.scene = scene
        self.preview = preview
        self.scale = scene_scale(scene)
        self.up = scene_up(scene.cameras)
        self.path = path or kp.KeyframePath((), scene.cameras.height, scene.cameras.width)
        self.frame = 0.0
        self.follow = False
        self.status = ""
        self._lock = threading.RLock()
        self._nodes: list = []
        self._gizmos: list = []
        self.server = viser.ViserServer(host=host, port=port, verbose=False)
        self.server.scene.set_up_direction(tuple(self.up.tolist()))
        self._draw_scene()
        self._set_initial_camera()
        from nvs.editor.panel import Panel

        self.panel = Panel(self)
        self.redraw()

    @property
    def url(self) -> str:
        return f"http://{self.server.get_host()}:{self.server.get_port()}"

    def stop(self) -> None:
        self.server.stop()

    # ------------------------------------------------------------------- drawing
    def _draw_scene(self) -> None:
        cams = self.scene.cameras
        images = self.scene.views.images if self.scene.views is not None else None
        for i in range(len(cams)):
            wxyz, position = c2w_to_viser(cams.c2w[i])
            self.server.scene.add_camera_frustum(
                f"/inputs/{i}",
                fov=math.radians(float(cams.fov_y_deg[i])),
                aspect=cams.width / cams.height,
                scale=0.15 * self.scale,
                color=INPUT_COLOR,
                wxyz=wxyz,
                position=position,
                image=None if images is None else _uint8_image(images[i]),
                thickness=0.004 * self.scale,
            )
        if self.scene.points is not None:
            colors = self.scene.colors if self.scene.colors is not None else torch.full_like(self.scene.points, 0.6)
            self.server.scene.add_point_cloud(
                "/points",
                self.scene.points.numpy(),
                (colors.numpy() * 255).astype(np.uint8),
                point_size=0.01 * self.scale,
            )

    def _set_initial_camera(self) -> None:
        c2w = self.scene.cameras.c2w[0]
        forward, center = c2w[:3, 2], c2w[:3, 3]
        eye = center - 1.5 * self.scale * forward + 0.8 * self.scale * self.up
        self.server.initial_camera.position = eye.tolist()
        self.server.initial_camera.look_at = (center + self.scale * forward).tolist()
        self.server.initial_camera.up = self.up.tolist()

    def _clear(self) -> None:
        for node in self._nodes:
            node.remove()
        self._nodes = []

    def _draw_gizmos(self) -> None:
        for gizmo in self._gizmos:
            gizmo.remove()
        self._gizmos = []
        for i, keyframe in enumerate(self.path.keyframes):
            wxyz, position = c2w_to_viser(keyframe.c2w)
            gizmo = self.server.scene.add_transform_controls(
                f"/keyframes/{i}", scale=0.3 * self.scale, wxyz=wxyz, position=position
            )
            gizmo.on_update(
                lambda event, i=i: self.move_keyframe_pose(i, viser_to_c2w(event.target.wxyz, event.target.position))
            )
            self._gizmos.append(gizmo)

    def redraw(self, gizmos: bool = True) -> None:
        """Redraw keyframes (with their gizmos unless ``gizmos`` is False), the path and the panel."""
        with self._lock:
            self._clear()
            if gizmos:
                self._draw_gizmos()
            aspect = self.path.width / self.path.height
            for i, keyframe in enumerate(self.path.keyframes):  # children of the gizmos: they move with them
                self._nodes.append(
                    self.server.scene.add_camera_frustum(
                        f"/keyframes/{i}/frustum",
                        fov=math.radians(keyframe.fov_y_deg),
                        aspect=aspect,
                        scale=0.2 * self.scale,
                        color=KEYFRAME_COLOR,
                        thickness=0.006 * self.scale,
                    )
                )
                self._nodes.append(self.server.scene.add_label(f"/keyframes/{i}/label", str(i)))
            dense = self.cameras()
            if dense is not None and len(dense) > 1:
                centers = dense.centers.numpy()
                ends = np.concatenate([centers, centers[:1]]) if self.path.loop else centers
                self._nodes.append(
                    self.server.scene.add_line_segments(
                        "/path/line", np.stack([ends[:-1], ends[1:]], 1), PATH_COLOR, thickness=0.01 * self.scale
                    )
                )
                step = max(1, len(dense) // MAX_PATH_FRUSTUMS)
                for j in range(0, len(dense), step):
                    wxyz, position = c2w_to_viser(dense.c2w[j])
                    self._nodes.append(
                        self.server.scene.add_camera_frustum(
                            f"/path/frames/{j}",
                            fov=math.radians(float(dense.fov_y_deg[j])),
                            aspect=aspect,
                            scale=0.08 * self.scale,
                            color=PATH_COLOR,
                            wxyz=wxyz,
                            position=position,
                            thickness=0.003 * self.scale,
                        )
                    )
            self.panel.refresh()
            self.scrub(self.frame)

    # ------------------------------------------------------------------- editing
    def cameras(self) -> Cameras | None:
        """The path's frames [N], or None while it has fewer than 2 keyframes (or bad times)."""
        if len(self.path.keyframes) < 2:
            return None
        try:
            return kp.path_cameras(self.path)
        except ValueError as e:
            self.status = str(e)
            return None

    def set_path(self, path: kp.KeyframePath, gizmos: bool = True) -> None:
        with self._lock:
            self.path = path
            self.frame = min(self.frame, path.num_frames - 1)
            self.redraw(gizmos)

    def add_keyframe(self, c2w: torch.Tensor, fov_y_deg: float, index: int | None = None) -> None:
        self.set_path(kp.add_keyframe(self.path, kp.Keyframe(torch.as_tensor(c2w), float(fov_y_deg)), index))

    def add_keyframe_from_view(self, client) -> None:
        """A keyframe at a browser's current camera (its pose and vertical FoV)."""
        camera = client.camera
        self.add_keyframe(viser_to_c2w(camera.wxyz, camera.position), math.degrees(camera.fov))

    def move_keyframe_pose(self, index: int, c2w: torch.Tensor) -> None:
        """New pose of keyframe ``index`` (a gizmo drag): the gizmos stay, the rest is redrawn."""
        self.set_path(kp.move_keyframe(self.path, index, c2w=c2w), gizmos=False)

    def edit_keyframe(self, index: int, **change) -> None:
        """``fov_y_deg=`` or ``time_sec=`` (None unpins) of keyframe ``index``."""
        self.set_path(kp.move_keyframe(self.path, index, **change))

    def delete_keyframe(self, index: int) -> None:
        self.set_path(kp.delete_keyframe(self.path, index))

    def reorder_keyframe(self, index: int, new_index: int) -> None:
        self.set_path(kp.reorder_keyframe(self.path, index, new_index))

    def update_settings(self, **settings) -> None:
        """``tension``, ``loop``, ``num_frames``, ``fps`` or ``duration_sec`` of the path."""
        path = self.path
        if "duration_sec" in settings:
            path = path.with_duration(settings.pop("duration_sec"))
        self.set_path(dataclasses.replace(path, **settings))

    def apply_preset(self, name: str, anchor_index: int, num_keyframes: int, **params) -> None:
        anchor = self.scene.cameras[anchor_index].resize(self.path.height, self.path.width)
        params.setdefault("up", self.up.tolist())
        path = kp.path_from_preset(
            name, anchor, num_keyframes, self.path.num_frames, self.path.fps, self.path.tension, **params
        )
        self.set_path(path)

    # ------------------------------------------------------------------- playback
    def scrub(self, frame: float) -> None:
        """Show frame ``frame`` of the path: a frustum, the browsers' cameras when following, the preview."""
        with self._lock:
            self.frame = float(frame)
            if len(self.path.keyframes) < 2:
                return
            try:
                camera = kp.camera_at(self.path, self.frame)
            except ValueError as e:
                self.status = str(e)
                return
            wxyz, position = c2w_to_viser(camera.c2w[0])
            fov = math.radians(float(camera.fov_y_deg[0]))
            self._nodes.append(
                self.server.scene.add_camera_frustum(
                    "/path/scrub",
                    fov=fov,
                    aspect=self.path.width / self.path.height,
                    scale=0.25 * self.scale,
                    color=SCRUB_COLOR,
                    wxyz=wxyz,
                    position=position,
                    thickness=0.008 * self.scale,
                )
            )
            if self.follow:
                for client in self.server.get_clients().values():
                    with client.atomic():
                        client.camera.wxyz = wxyz
                        client.camera.position = position
                        client.camera.fov = fov
            if self.preview is not None and self.panel.preview_enabled():
                self.panel.show_preview(self.preview.render(camera))

    # ------------------------------------------------------------------- files
    def save(self, file: str | Path, format: str | None = None) -> Path:
        """Write the path (see :func:`camera.keyframes.save_path`); returns the file written."""
        kp.save_path(file, self.path, format)
        self.status = f"saved {file}"
        return Path(file)

    def load(self, file: str | Path, format: str | None = None) -> None:
        path = kp.load_path(file, format, self.path.height, self.path.width)
        self.status = f"loaded {file}"
        self.set_path(path)


def serve(
    scene_path: str | Path,
    port: int = 8080,
    model: str | Path | None = None,
    host: str = "127.0.0.1",
    stop: threading.Event | None = None,
) -> PathEditor:
    """Load SCENE (and the preview model), serve the editor and block until ``stop`` is set (or Ctrl-C)."""
    from nvs.editor.scene import load_scene

    scene = load_scene(scene_path)
    preview = None
    if model is not None and scene.views is not None:
        from nvs.editor.preview import PixelNeRFPreview

        preview = PixelNeRFPreview.from_folder(model, scene.views)
    elif model is not None:
        print(f"no preview: {scene_path} has cameras but no images for the PixelNeRF branch to read")
    editor = PathEditor(scene, host=host, port=port, preview=preview)
    print(
        f"path editor on {editor.url} ({len(scene.cameras)} input cameras"
        f"{', preview from ' + str(model) if preview is not None else ''}); Ctrl-C stops it"
    )
    stop = stop or threading.Event()
    try:
        while not stop.wait(0.5):
            pass
    except KeyboardInterrupt:
        pass
    finally:
        editor.stop()
    return editor
