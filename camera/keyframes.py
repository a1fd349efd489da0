"""Editable camera paths: a list of keyframes and the settings that turn them into :class:`Cameras`.

A :class:`KeyframePath` holds keyframes (OpenCV camera-to-world pose, vertical FoV in degrees,
optionally the time in seconds at which the path passes it), the Kochanek–Bartels ``tension``,
``loop``, the frame count and fps (duration = frames / fps) and the image size of the frames.
:func:`path_cameras` interpolates it with :mod:`camera.interpolate` (``"kb"``: spline for the
centres and the intrinsics, squad for the orientations). Frame ``j`` is at time ``j / fps``:

* no keyframe time pinned: the frames are equally spaced along the path (constant speed);
* some pinned: keyframe 0 defaults to time 0 and the end of the path (the last keyframe, or the
  return to keyframe 0 of a loop) to the last frame's time ((N-1)/fps, or N/fps for a loop);
  unpinned keyframes in between get times linear in their index between pinned neighbours; the
  spline parameter is piecewise linear in time between keyframes.

Every edit (:func:`add_keyframe`, :func:`move_keyframe`, ...) returns a new path. :func:`save_path`
writes any format of :mod:`camera.io`: nerfstudio ``camera_path.json`` keeps the keyframes and
settings (``keyframes``, ``smoothness_value`` = tension, ``is_cycle`` = loop, ``fps``, ``seconds``),
so :func:`load_path` gives the same path back; the other formats store the dense frames only, and
loading one subsamples its frames into keyframes. Every saved file is read by ``nvs generate --path``.
"""

from __future__ import annotations

import dataclasses
import inspect
import json
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from camera.cameras import Cameras
from camera.interpolate import constant_speed_parameters, interpolate_at, path_lengths

DTYPE = torch.float64


@dataclass(frozen=True, eq=False)
class Keyframe:
    """One keyframe: ``c2w`` [4, 4] (OpenCV, float64), vertical FoV in degrees, optional time in seconds."""

    c2w: Tensor
    fov_y_deg: float
    time_sec: float | None = None

    def __post_init__(self) -> None:
        if tuple(self.c2w.shape) != (4, 4):
            raise ValueError(f"Keyframe.c2w must be [4, 4], got {tuple(self.c2w.shape)}")
        if not (math.isfinite(self.fov_y_deg) and 0 < self.fov_y_deg < 180):
            raise ValueError(f"Keyframe.fov_y_deg must lie in (0, 180) degrees, got {self.fov_y_deg}")
        if self.time_sec is not None and not (math.isfinite(self.time_sec) and self.time_sec >= 0):
            raise ValueError(f"Keyframe.time_sec must be a non-negative number of seconds or None, got {self.time_sec}")
        object.__setattr__(self, "c2w", self.c2w.to(DTYPE))


@dataclass(frozen=True, eq=False)
class KeyframePath:
    """Keyframes plus the settings of the path through them (see the module docstring)."""

    keyframes: tuple[Keyframe, ...]
    height: int
    width: int
    num_frames: int = 48
    fps: float = 24.0
    tension: float = 0.0
    loop: bool = False

    def __post_init__(self) -> None:
        object.__setattr__(self, "keyframes", tuple(self.keyframes))
        if isinstance(self.num_frames, bool) or int(self.num_frames) != self.num_frames or self.num_frames < 1:
            raise ValueError(f"num_frames must be a positive integer, got {self.num_frames!r}")
        if not (math.isfinite(self.fps) and self.fps > 0):
            raise ValueError(f"fps must be a positive number, got {self.fps}")
        if not -1 <= self.tension <= 1:
            raise ValueError(f"tension must lie in [-1, 1] (0 is Catmull-Rom), got {self.tension}")
        if self.height < 1 or self.width < 1:
            raise ValueError(f"image size must be positive, got {self.height}x{self.width}")

    @property
    def duration_sec(self) -> float:
        return self.num_frames / self.fps

    def with_duration(self, seconds: float) -> KeyframePath:
        """The same path with ``round(seconds * fps)`` frames (at least one)."""
        return dataclasses.replace(self, num_frames=max(1, round(seconds * self.fps)))


# ----------------------------------------------------------------------------- building
def keyframe_from_camera(camera: Cameras, time_sec: float | None = None) -> Keyframe:
    """One camera (``cameras[i]``) -> a keyframe with its pose and vertical FoV (principal point dropped)."""
    if len(camera) != 1:
        raise ValueError(f"keyframe_from_camera takes one camera, got {len(camera)}")
    return Keyframe(camera.c2w[0], float(camera.fov_y_deg[0]), time_sec)


def keyframes_from_cameras(cameras: Cameras, count: int, closed: bool = False) -> tuple[Keyframe, ...]:
    """``count`` keyframes at evenly spaced indices of ``cameras`` [N]: first and last included, or for
    a closed path spaced evenly around the loop (index ``i N / count``)."""
    if count < 1:
        raise ValueError(f"need at least one keyframe, got count={count}")
    n = len(cameras)
    spacing = n / count if closed else (n - 1) / max(count - 1, 1)
    picks = sorted({min(round(i * spacing), n - 1) for i in range(min(count, n))})
    return tuple(keyframe_from_camera(cameras[i]) for i in picks)


def looks_closed(cameras: Cameras) -> bool:
    """Whether a dense path [N] loops: its step from the last frame back to the first is no longer
    than 1.5 times its median step (lengths of :func:`camera.interpolate.path_lengths`)."""
    if len(cameras) < 3:
        return False
    steps = path_lengths(Cameras.cat([cameras, cameras[:1]]))
    median = float(steps[:-1].median())
    return median > 0 and float(steps[-1]) <= 1.5 * median


def path_from_cameras(
    cameras: Cameras, num_keyframes: int = 8, fps: float = 24.0, tension: float = 0.0, loop: bool | None = None
) -> KeyframePath:
    """A dense path [N] -> an editable path of ``num_keyframes`` of its frames, N frames, looping if
    ``loop`` (default: :func:`looks_closed`)."""
    loop = looks_closed(cameras) if loop is None else loop
    keyframes = keyframes_from_cameras(cameras, num_keyframes, closed=loop)
    return KeyframePath(keyframes, cameras.height, cameras.width, len(cameras), fps, tension, loop)


def anchored_presets() -> list[str]:
    """Names of the presets of :data:`camera.presets.PATH_PRESETS` that start at a given camera."""
    from camera.presets import PATH_PRESETS

    return [name for name, fn in PATH_PRESETS.items() if "anchor" in inspect.signature(fn).parameters]


def path_from_preset(
    name: str,
    anchor: Cameras,
    num_keyframes: int = 8,
    num_frames: int = 48,
    fps: float = 24.0,
    tension: float = 0.0,
    **params: Any,
) -> KeyframePath:
    """The preset ``name`` of :data:`camera.presets.PATH_PRESETS` started at ``anchor`` (one camera), its
    ``params`` as keywords, subsampled into ``num_keyframes`` editable keyframes."""
    from camera.presets import PATH_PRESETS

    if name not in anchored_presets():
        raise ValueError(
            f"unknown preset {name!r} (or one that takes no anchor camera); choose one of "
            f"{', '.join(anchored_presets())}"
        )
    dense = PATH_PRESETS[name](num_frames=max(num_frames, num_keyframes), anchor=anchor.to(dtype=DTYPE), **params)
    path = path_from_cameras(dense, num_keyframes, fps, tension)
    return dataclasses.replace(path, num_frames=num_frames)


# ---------------------------------------------------------------------------- editing
def _index(path: KeyframePath, index: int) -> int:
    if not -len(path.keyframes) <= index < len(path.keyframes):
        raise IndexError(f"keyframe {index} does not exist: the path has {len(path.keyframes)} keyframes")
    return index % len(path.keyframes)


def add_keyframe(path: KeyframePath, keyframe: Keyframe, index: int | None = None) -> KeyframePath:
    """Insert ``keyframe`` before position ``index`` (default: append)."""
    keyframes = list(path.keyframes)
    keyframes.insert(len(keyframes) if index is None else index, keyframe)
    return dataclasses.replace(path, keyframes=tuple(keyframes))


_KEEP = object()


def move_keyframe(
    path: KeyframePath, index: int, c2w: Tensor | None = None, fov_y_deg: float | None = None, time_sec: Any = _KEEP
) -> KeyframePath:
    """Keyframe ``index`` with a new pose, FoV or time (``time_sec=None`` unpins it); the rest kept."""
    i = _index(path, index)
    old = path.keyframes[i]
    new = Keyframe(
        old.c2w if c2w is None else torch.as_tensor(c2w),
        old.fov_y_deg if fov_y_deg is None else fov_y_deg,
        old.time_sec if time_sec is _KEEP else time_sec,
    )
    return dataclasses.replace(path, keyframes=path.keyframes[:i] + (new,) + path.keyframes[i + 1 :])


def delete_keyframe(path: KeyframePath, index: int) -> KeyframePath:
    i = _index(path, index)
    return dataclasses.replace(path, keyframes=path.keyframes[:i] + path.keyframes[i + 1 :])


def reorder_keyframe(path: KeyframePath, index: int, new_index: int) -> KeyframePath:
    """Keyframe ``index`` taken out and put back at position ``new_index``."""
    keyframes = list(path.keyframes)
    moved = keyframes.pop(_index(path, index))
    keyframes.insert(_index(path, new_index), moved)
    return dataclasses.replace(path, keyframes=tuple(keyframes))


# ------------------------------------------------------------------------ interpolation
def keyframe_cameras(path: KeyframePath) -> Cameras:
    """The keyframes as cameras [K] of the path's image size (square pixels, centred principal point)."""
    if not path.keyframes:
        raise ValueError("the path has no keyframes; add at least two")
    c2w = torch.stack([k.c2w for k in path.keyframes])
    fov = torch.tensor([k.fov_y_deg for k in path.keyframes], dtype=DTYPE)
    return Cameras.from_fov(c2w, fov, path.height, path.width)


def keyframe_times(path: KeyframePath) -> Tensor | None:
    """Times in seconds [K] (or [K+1] for a loop, the last one the return to keyframe 0) of the
    keyframes with none pinned -> None; see the module docstring for the defaults."""
    pinned = [k.time_sec for k in path.keyframes]
    if all(t is None for t in pinned):
        return None
    end = (path.num_frames if path.loop else path.num_frames - 1) / path.fps
    pinned = pinned + [end] if path.loop else pinned
    pinned[0] = 0.0 if pinned[0] is None else pinned[0]
    pinned[-1] = end if pinned[-1] is None else pinned[-1]
    known = torch.tensor([i for i, t in enumerate(pinned) if t is not None], dtype=DTYPE)
    values = torch.tensor([t for t in pinned if t is not None], dtype=DTYPE)
    index = torch.arange(len(pinned), dtype=DTYPE)
    segment = torch.searchsorted(known, index, right=True).clamp(1, len(known) - 1)
    lo, hi = known[segment - 1], known[segment]
    times = values[segment - 1] + (index - lo) / (hi - lo) * (values[segment] - values[segment - 1])
    steps = times[1:] - times[:-1]
    if (steps <= 0).any():
        i = int((steps <= 0).nonzero()[0])
        raise ValueError(
            f"keyframe times must increase along the path: keyframe {i} is at {float(times[i]):.3g} s "
            f"and keyframe {i + 1} at {float(times[i + 1]):.3g} s (the path ends at {end:.3g} s); "
            "change the pinned times or the duration"
        )
    return times


def spline_parameters(path: KeyframePath) -> Tensor:
    """Spline parameters u [N] of the frames (keyframe i at u = i; see :func:`camera.interpolate.interpolate_at`)."""
    k = len(path.keyframes)
    if k < 2:
        raise ValueError(f"a path needs at least 2 keyframes, it has {k}; add keyframes")
    times = keyframe_times(path)
    if times is None:
        return constant_speed_parameters(keyframe_cameras(path), path.num_frames, "kb", path.tension, closed=path.loop)
    frame_times = torch.arange(path.num_frames, dtype=DTYPE) / path.fps
    segment = torch.searchsorted(times, frame_times, right=True).clamp(1, len(times) - 1)
    lo, hi = times[segment - 1], times[segment]
    u = (segment - 1) + ((frame_times - lo) / (hi - lo)).clamp(0, 1)
    return u.clamp(0, k if path.loop else k - 1)


def path_cameras(path: KeyframePath) -> Cameras:
    """The path's frames as cameras [N] (float64)."""
    return interpolate_at(keyframe_cameras(path), spline_parameters(path), "kb", path.tension, closed=path.loop)


def camera_at(path: KeyframePath, frame: float) -> Cameras:
    """The camera [1] at a (fractional) frame index in [0, N-1], e.g. for a scrubber."""
    u = spline_parameters(path)
    frame = min(max(float(frame), 0.0), path.num_frames - 1)
    lo = int(math.floor(frame))
    hi = min(lo + 1, path.num_frames - 1)
    at = u[lo] + (frame - lo) * (u[hi] - u[lo])
    return interpolate_at(keyframe_cameras(path), at.reshape(1), "kb", path.tension, closed=path.loop)


# ------------------------------------------------------------------------------ files
SAVE_FORMATS = ("nerfstudio", "transforms", "re10k", "colmap", "motionctrl", "co3d")


def _nerfstudio_info(path: KeyframePath):
    """The keyframes and settings as nerfstudio file metadata; the legacy viewer's ``TIME`` property
    is each keyframe's time as a fraction of the duration."""
    import numpy as np

    from camera.io.nerfstudio import NerfstudioPathInfo

    k = len(path.keyframes)
    frame_times = np.arange(path.num_frames) / path.fps
    times = np.interp(np.arange(k, dtype=np.float64), spline_parameters(path).numpy(), frame_times) / path.duration_sec
    properties = [
        json.dumps([["FOV", kf.fov_y_deg], ["NAME", f"Camera {i}"], ["TIME", float(t)]])
        for i, (kf, t) in enumerate(zip(path.keyframes, times))
    ]
    return NerfstudioPathInfo(
        keyframes=keyframe_cameras(path),
        keyframe_fov=[kf.fov_y_deg for kf in path.keyframes],
        keyframe_aspect=[path.width / path.height] * k,
        keyframe_properties=properties,
        keyframe_time_sec=[kf.time_sec for kf in path.keyframes],
        fps=path.fps,
        seconds=path.duration_sec,
        smoothness_value=path.tension,
        is_cycle=path.loop,
    )


def save_path(file: str | os.PathLike, path: KeyframePath, format: str | None = None) -> Cameras:
    """Write the path's frames in ``format`` (default: from the name, see :func:`camera.io.infer_format`);
    nerfstudio files also hold the keyframes and settings. Returns the frames written [N]."""
    from camera.io import infer_format, save_cameras

    format = format or infer_format(file, for_writing=True)
    if format not in SAVE_FORMATS:
        raise ValueError(f"unknown path format {format!r}; choose one of {', '.join(SAVE_FORMATS)}")
    dense = path_cameras(path)
    if format == "nerfstudio":
        save_cameras(file, dense, format, info=_nerfstudio_info(path))
    elif format == "co3d":
        save_cameras(file, dense, format, sequence_name=Path(file).stem.split(".")[0] or "path")
    else:
        save_cameras(file, dense, format)
    return dense


def load_path(
    file: str | os.PathLike,
    format: str | None = None,
    height: int | None = None,
    width: int | None = None,
    num_keyframes: int = 8,
) -> KeyframePath:
    """Read a path file: a nerfstudio file with keyframes gives them back with its settings; any
    other file (or one without keyframes) is subsampled into ``num_keyframes`` keyframes.
    ``height``/``width`` size the cameras of formats that store no image size (re10k, motionctrl)."""
    from camera.io import infer_format, load_cameras

    format = format or infer_format(file)
    if format == "nerfstudio":
        from camera.io.nerfstudio import read_nerfstudio_path

        dense, info = read_nerfstudio_path(file)
        if info.keyframes is not None and len(info.keyframes) >= 2:
            if not -1 <= info.smoothness_value <= 1:
                raise ValueError(f"{file}: smoothness_value {info.smoothness_value} is not a tension in [-1, 1]")
            times = info.keyframe_time_sec or [None] * len(info.keyframes)
            keyframes = tuple(
                Keyframe(info.keyframes.c2w[i], float(info.keyframe_fov[i]), times[i])
                for i in range(len(info.keyframes))
            )
            return KeyframePath(
                keyframes,
                dense.height,
                dense.width,
                len(dense),
                float(info.fps),
                float(info.smoothness_value),
                info.is_cycle,
            )
        return path_from_cameras(dense, num_keyframes, float(info.fps), float(info.smoothness_value), info.is_cycle)
    size = {k: v for k, v in (("height", height), ("width", width)) if v is not None}
    kw = size if format in ("re10k", "motionctrl", "transforms") else {}
    return path_from_cameras(load_cameras(file, format, **kw), num_keyframes)
