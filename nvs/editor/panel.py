"""The path editor's side panel: viser widgets that call :class:`nvs.editor.app.PathEditor` methods.

:meth:`Panel.refresh` writes the path's state back into the widgets (with their callbacks muted),
so widgets and path never disagree whichever side changed.
"""

from __future__ import annotations

import functools
import inspect
import math
from pathlib import Path

import numpy as np

from camera import keyframes as kp
from camera.presets import PATH_PRESETS
from nvs.editor.convention import c2w_to_viser
from nvs.editor.scene import scene_center

# file name suggested for each format (colmap writes a folder)
DEFAULT_NAMES = {
    "nerfstudio": "camera_path.json",
    "transforms": "transforms.json",
    "re10k": "path.txt",
    "colmap": "path_colmap",
    "motionctrl": "path_motionctrl.json",
    "co3d": "path.jgz",
}
# preset arguments the editor sets itself rather than as controls
FIXED_PARAMETERS = {
    "num_frames",
    "height",
    "width",
    "fov_deg",
    "elevation_deg",
    "azimuth_deg",
    "anchor",
    "look_at",
    "up",
}


class Panel:
    def __init__(self, editor) -> None:
        self.editor = editor
        self._muted = False
        gui = editor.server.gui
        path = editor.path
        with gui.add_folder("Keyframes"):
            self.add_button = gui.add_button("Add keyframe from view")
            self.selected = gui.add_number("Keyframe", 0, min=0, step=1)
            self.fov = gui.add_number("FoV (deg)", 50.0, min=1.0, max=179.0, step=0.5)
            self.pin = gui.add_checkbox("Pin time", False)
            self.time = gui.add_number("Time (s)", 0.0, min=0.0, step=0.05)
            self.go_to = gui.add_button("Go to keyframe")
            self.earlier = gui.add_button("Move earlier")
            self.later = gui.add_button("Move later")
            self.delete = gui.add_button("Delete keyframe", color="red")
        with gui.add_folder("Path"):
            self.tension = gui.add_slider("Tension", -1.0, 1.0, 0.05, path.tension)
            self.loop = gui.add_checkbox("Loop", path.loop)
            self.frames = gui.add_number("Frames", path.num_frames, min=1, step=1)
            self.fps = gui.add_number("FPS", path.fps, min=1.0, step=1.0)
            self.duration = gui.add_number("Duration (s)", path.duration_sec, min=0.05, step=0.05)
        with gui.add_folder("Playback"):
            self.scrubber = gui.add_slider("Frame", 0, max(path.num_frames - 1, 1), 1, 0)
            self.follow = gui.add_checkbox("Move browser camera", False)
            self.preview_on = gui.add_checkbox(
                "Preview (PixelNeRF RGB)", editor.preview is not None, disabled=editor.preview is None
            )
            self.preview_image = gui.add_image(np.zeros((96, 96, 3), np.uint8), label="preview at the frame")
        with gui.add_folder("Presets"):
            presets = kp.anchored_presets()
            first = "orbit" if "orbit" in presets else presets[0]
            self.preset = gui.add_dropdown("Preset", presets, initial_value=first)
            self.anchor = gui.add_number("Anchor camera", 0, min=0, max=len(editor.scene.cameras) - 1, step=1)
            self.num_keyframes = gui.add_number("Keyframes", 8, min=2, step=1)
            self.parameters_folder = gui.add_folder("Parameters")
            self.apply = gui.add_button("Apply preset")
        self.parameters: dict = {}
        self._build_parameters()
        with gui.add_folder("File"):
            self.file = gui.add_text("File", DEFAULT_NAMES["nerfstudio"])
            self.format = gui.add_dropdown("Format", kp.SAVE_FORMATS, initial_value="nerfstudio")
            self.save = gui.add_button("Save")
            self.load = gui.add_button("Load")
            self.status = gui.add_markdown("")
        self._connect()

    # ------------------------------------------------------------------ callbacks
    def _guarded(self, fn):
        """``fn(event)`` skipped while the panel writes its own widgets; user errors go to the status line."""

        @functools.wraps(fn)
        def run(event) -> None:
            if self._muted:
                return
            try:
                fn(event)
            except (ValueError, IndexError, FileNotFoundError) as e:
                self.editor.status = f"error: {e}"
                self.refresh()

        return run

    def _connect(self) -> None:
        ed, on = self.editor, lambda handle, fn: handle.on_update(self._guarded(fn))
        self.add_button.on_click(self._guarded(lambda e: ed.add_keyframe_from_view(e.client)))
        on(self.selected, lambda e: self.refresh())
        on(self.fov, lambda e: ed.edit_keyframe(self._index(), fov_y_deg=float(self.fov.value)))
        on(self.pin, lambda e: ed.edit_keyframe(self._index(), time_sec=self.time.value if self.pin.value else None))
        on(self.time, lambda e: self.pin.value and ed.edit_keyframe(self._index(), time_sec=float(self.time.value)))
        self.go_to.on_click(self._guarded(lambda e: self._go_to(e.client)))
        self.earlier.on_click(self._guarded(lambda e: self._move(-1)))
        self.later.on_click(self._guarded(lambda e: self._move(1)))
        self.delete.on_click(self._guarded(lambda e: ed.delete_keyframe(self._index())))
        on(self.tension, lambda e: ed.update_settings(tension=float(self.tension.value)))
        on(self.loop, lambda e: ed.update_settings(loop=bool(self.loop.value)))
        on(self.frames, lambda e: ed.update_settings(num_frames=max(1, int(self.frames.value))))
        on(self.fps, lambda e: ed.update_settings(fps=float(self.fps.value)))
        on(self.duration, lambda e: ed.update_settings(duration_sec=float(self.duration.value)))
        on(self.scrubber, lambda e: ed.scrub(self.scrubber.value))
        on(self.follow, lambda e: (setattr(ed, "follow", bool(self.follow.value)), ed.scrub(ed.frame)))
        on(self.preview_on, lambda e: ed.scrub(ed.frame))
        on(self.preset, lambda e: self._build_parameters())
        on(self.anchor, lambda e: self._build_parameters())
        self.apply.on_click(
            self._guarded(
                lambda e: ed.apply_preset(
                    self.preset.value,
                    int(self.anchor.value),
                    int(self.num_keyframes.value),
                    **{name: handle.value for name, handle in self.parameters.items()},
                )
            )
        )
        on(self.format, lambda e: self._suggest_name())
        self.save.on_click(self._guarded(lambda e: (ed.save(self.file.value, self.format.value), self.refresh())))
        self.load.on_click(self._guarded(lambda e: ed.load(self.file.value, self.format.value)))

    def _index(self) -> int:
        if not self.editor.path.keyframes:
            raise ValueError("no keyframes yet: add one from the view or apply a preset")
        return min(int(self.selected.value), len(self.editor.path.keyframes) - 1)

    def _move(self, step: int) -> None:
        i = self._index()
        j = min(max(i + step, 0), len(self.editor.path.keyframes) - 1)
        self.editor.reorder_keyframe(i, j)
        self.selected.value = j

    def _go_to(self, client) -> None:
        keyframe = self.editor.path.keyframes[self._index()]
        wxyz, position = c2w_to_viser(keyframe.c2w)
        with client.atomic():
            client.camera.wxyz = wxyz
            client.camera.position = position
            client.camera.fov = math.radians(keyframe.fov_y_deg)

    def _suggest_name(self) -> None:
        self.file.value = str(Path(self.file.value).parent / DEFAULT_NAMES[self.format.value])

    def _build_parameters(self) -> None:
        """One control per tunable argument of the chosen preset, at its default (lengths at the scene's scale)."""
        for handle in self.parameters.values():
            handle.remove()
        self.parameters = {}
        gui = self.editor.server.gui
        with self.parameters_folder:
            for name, p in inspect.signature(PATH_PRESETS[self.preset.value]).parameters.items():
                if name in FIXED_PARAMETERS or p.default is None or p.default is inspect.Parameter.empty:
                    continue
                if isinstance(p.default, bool):
                    self.parameters[name] = gui.add_checkbox(name, p.default)
                elif isinstance(p.default, (int, float)):
                    value = self._radius() if name == "radius" else p.default
                    value = 0.5 * self.editor.scale if name == "distance" else value
                    self.parameters[name] = gui.add_number(name, float(value), step=0.05)

    def _radius(self) -> float:
        """Distance from the anchor camera to the scene's centre (at least half the scene's scale)."""
        anchor = self.editor.scene.cameras.centers[int(self.anchor.value)].double()
        return round(max(float((anchor - scene_center(self.editor.scene)).norm()), 0.5 * self.editor.scale), 4)

    # ------------------------------------------------------------------ state -> widgets
    def refresh(self) -> None:
        path, self._muted = self.editor.path, True
        try:
            k = len(path.keyframes)
            self.selected.max = max(k - 1, 0)
            if k and self.selected.value > k - 1:
                self.selected.value = k - 1
            if k:
                keyframe = path.keyframes[min(int(self.selected.value), k - 1)]
                self.fov.value = round(keyframe.fov_y_deg, 6)
                self.pin.value = keyframe.time_sec is not None
                if keyframe.time_sec is not None:
                    self.time.value = keyframe.time_sec
            self.tension.value = path.tension
            self.loop.value = path.loop
            self.frames.value = path.num_frames
            self.fps.value = path.fps
            self.duration.value = round(path.duration_sec, 6)
            self.scrubber.max = max(path.num_frames - 1, 1)
            self.scrubber.value = min(int(round(self.editor.frame)), path.num_frames - 1)
            self.status.content = (
                f"{k} keyframes, {path.num_frames} frames ({path.duration_sec:.2f} s), "
                f"{path.height}x{path.width}  \n{self.editor.status}"
            )
        finally:
            self._muted = False

    def preview_enabled(self) -> bool:
        return bool(self.preview_on.value)

    def show_preview(self, image: np.ndarray) -> None:
        self.preview_image.image = image
