"""nerfstudio camera path JSON (the viewer's export, read by ``ns-render camera-path``).

Layout (nerfstudio ``cameras/camera_paths.py::get_path_from_json``): ``camera_path`` is the dense
path, one entry per rendered frame with ``camera_to_world`` (flat row-major 4x4, OpenGL axes),
``fov`` (vertical, degrees; f = (H/2)/tan(fov/2), principal point at the image centre) and
``aspect``; ``render_height``/``render_width`` give the image size. ``keyframes`` hold the viewer's
keyframes: the legacy three.js viewer writes each ``matrix`` as a *string* of a column-major flat
4x4 (``Matrix4.elements``), the viser viewer (``viewer/render_panel.py``) as a *list*, row-major
(``pose.as_matrix().flatten()``); both are read, strings are written. ``aspect`` is stored but
ignored by nerfstudio's renderer, so it is kept as metadata only. ``time_sec`` on a keyframe is
pathnvs's own key (nerfstudio ignores it): the time in seconds at which the path passes the
keyframe, when the editor pinned one (:mod:`camera.keyframes`).
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from camera.cameras import Cameras, intrinsics_matrix
from camera.convert import opencv_to_opengl_c2w, opengl_to_opencv_c2w
from camera.io._common import as_tensor64, atomic_write_text, number, prefer_original
from camera.validate import InputError, check_frames

_KNOWN_TOP = {
    "keyframes",
    "camera_type",
    "render_height",
    "render_width",
    "camera_path",
    "fps",
    "seconds",
    "smoothness_value",
    "is_cycle",
}
_KNOWN_FRAME = {"camera_to_world", "fov", "aspect"}
_KNOWN_KEYFRAME = {"matrix", "fov", "aspect", "properties", "time_sec"}


@dataclass
class NerfstudioPathInfo:
    """Everything in a camera path file besides the dense cameras.

    ``fov``/``aspect`` are the file's per-frame values; the writer reuses a fov where it still
    matches the cameras' focal length to 1e-12, so unchanged files round-trip digit for digit.
    ``extra`` / ``frame_extra`` / ``keyframe_extra`` keep keys this reader does not interpret.
    """

    keyframes: Cameras | None = None
    keyframe_fov: list[float] = field(default_factory=list)
    keyframe_aspect: list[float] = field(default_factory=list)
    keyframe_properties: list[str] = field(default_factory=list)
    keyframe_time_sec: list[float | None] = field(default_factory=list)
    keyframe_extra: list[dict[str, Any]] = field(default_factory=list)
    fov: list[float] | None = None
    aspect: list[float] | None = None
    fps: float = 24
    seconds: float | None = None
    smoothness_value: float = 0.5
    is_cycle: bool = False
    camera_type: str = "perspective"
    extra: dict[str, Any] = field(default_factory=dict)
    frame_extra: list[dict[str, Any]] = field(default_factory=list)


def _focal_from_fov(fov_deg: torch.Tensor, height: int) -> torch.Tensor:
    return (height / 2) / torch.tan(torch.deg2rad(fov_deg) / 2)


def _fov_from_focal(focal: torch.Tensor, height: int) -> torch.Tensor:
    return torch.rad2deg(2 * torch.atan((height / 2) / focal))


def _fov_cameras(where: str, c2w_gl: torch.Tensor, fov: torch.Tensor, height: int, width: int, field_: str) -> Cameras:
    bad = ~((fov > 0) & (fov < 180))
    if bad.any():
        i = int(bad.nonzero()[0])
        raise InputError(f"{where}: frame {i}: {field_}.fov must lie in (0, 180) degrees, got {float(fov[i])}")
    f = _focal_from_fov(fov, height)
    K = intrinsics_matrix(f, f, torch.full_like(f, width / 2), torch.full_like(f, height / 2))
    c2w = opengl_to_opencv_c2w(c2w_gl)
    check_frames(where, c2w, K, pose_field=f"{field_}.camera_to_world/matrix", intrinsics_field=f"{field_}.fov")
    return Cameras(K, c2w, height, width)


def read_nerfstudio_path(path: str | os.PathLike) -> tuple[Cameras, NerfstudioPathInfo]:
    """A nerfstudio camera path file -> (dense path as OpenCV :class:`Cameras` in float64, the rest)."""
    where = str(path)
    try:
        data = json.loads(Path(path).read_text())
    except json.JSONDecodeError as e:
        raise InputError(f"{where}: not valid JSON ({e}); the file is truncated or not a camera path") from None
    if not isinstance(data, dict) or "camera_path" not in data:
        raise InputError(f"{where}: a nerfstudio camera path needs a top-level 'camera_path' list")
    for key in ("render_height", "render_width"):
        if key not in data:
            raise InputError(f"{where}: missing '{key}'; add the render size in pixels")
    height, width = data["render_height"], data["render_width"]
    if not (
        isinstance(height, (int, float))
        and isinstance(width, (int, float))
        and height > 0
        and width > 0
        and int(height) == height
        and int(width) == width
    ):
        raise InputError(f"{where}: render_height/render_width must be positive integers, got {height}x{width}")
    height, width = int(height), int(width)
    frames = data["camera_path"]
    if not isinstance(frames, list) or not frames:
        raise InputError(f"{where}: 'camera_path' holds zero frames; it needs at least one camera")
    for i, frame in enumerate(frames):
        missing = [k for k in ("camera_to_world", "fov") if not isinstance(frame, dict) or k not in frame]
        if missing:
            raise InputError(f"{where}: camera_path[{i}] is missing {missing}")
    c2w_gl = as_tensor64([f["camera_to_world"] for f in frames], f"{where}: camera_path[*].camera_to_world", (-1, 16))
    fov = as_tensor64([f["fov"] for f in frames], f"{where}: camera_path[*].fov", (-1,))
    cameras = _fov_cameras(where, c2w_gl.reshape(-1, 4, 4), fov, height, width, "camera_path")

    keyframes = data.get("keyframes") or []
    keyframe_cameras = None
    if keyframes:
        for i, kf in enumerate(keyframes):
            if not isinstance(kf, dict) or "matrix" not in kf or "fov" not in kf:
                raise InputError(f"{where}: keyframes[{i}] needs 'matrix' and 'fov'")
        try:
            matrices = [json.loads(kf["matrix"]) if isinstance(kf["matrix"], str) else kf["matrix"] for kf in keyframes]
        except json.JSONDecodeError as e:
            raise InputError(f"{where}: a keyframes[*].matrix string is not a JSON list ({e})") from None
        flat = as_tensor64(matrices, f"{where}: keyframes[*].matrix", (-1, 16)).reshape(-1, 4, 4)
        column_major = torch.tensor([isinstance(kf["matrix"], str) for kf in keyframes])
        c2w_gl = torch.where(column_major[:, None, None], flat.transpose(1, 2), flat)
        kf_fov = as_tensor64([kf["fov"] for kf in keyframes], f"{where}: keyframes[*].fov", (-1,))
        keyframe_cameras = _fov_cameras(where, c2w_gl, kf_fov, height, width, "keyframes")
        for i, kf in enumerate(keyframes):
            t = kf.get("time_sec")
            if t is not None and (isinstance(t, bool) or not isinstance(t, (int, float)) or not math.isfinite(t)):
                raise InputError(
                    f"{where}: keyframes[{i}].time_sec must be a finite number of seconds or null, got {t!r}"
                )

    info = NerfstudioPathInfo(
        keyframes=keyframe_cameras,
        keyframe_fov=[kf["fov"] for kf in keyframes],
        keyframe_aspect=[kf.get("aspect", width / height) for kf in keyframes],
        keyframe_properties=[kf.get("properties", "[]") for kf in keyframes],
        keyframe_time_sec=[kf.get("time_sec") for kf in keyframes],
        keyframe_extra=[{k: v for k, v in kf.items() if k not in _KNOWN_KEYFRAME} for kf in keyframes],
        fov=[f["fov"] for f in frames],
        aspect=[f.get("aspect", width / height) for f in frames],
        fps=data.get("fps", 24),
        seconds=data.get("seconds"),
        smoothness_value=data.get("smoothness_value", 0.5),
        is_cycle=bool(data.get("is_cycle", False)),
        camera_type=data.get("camera_type", "perspective"),
        extra={k: v for k, v in data.items() if k not in _KNOWN_TOP},
        frame_extra=[{k: v for k, v in f.items() if k not in _KNOWN_FRAME} for f in frames],
    )
    return cameras, info


def _check_representable(cameras: Cameras, what: str) -> None:
    """nerfstudio paths hold one vertical FoV per frame: square pixels, centred principal point."""
    H, W = cameras.height, cameras.width
    tol = 1e-9
    for name, got, want in (
        ("fx", cameras.fx, cameras.fy),
        ("cx", cameras.cx, torch.full_like(cameras.cx, W / 2)),
        ("cy", cameras.cy, torch.full_like(cameras.cy, H / 2)),
    ):
        bad = (got - want).abs() > tol * want.abs()
        if bad.any():
            i = int(bad.nonzero()[0])
            raise InputError(
                f"nerfstudio camera path: {what} {i} has {name}={float(got[i])}, but the format stores only a "
                f"vertical FoV (fx = fy, principal point at the image centre {W / 2}, {H / 2}); "
                "crop/resize the cameras to that, or save as 'transforms' which keeps full intrinsics"
            )


def _frames_json(cameras: Cameras, fov_original: list[float] | None) -> tuple[list[list[float]], list[float]]:
    fov = _fov_from_focal(cameras.fy, cameras.height)
    original = torch.tensor(fov_original, dtype=fov.dtype) if fov_original is not None else None
    fov = prefer_original(fov, original)
    c2w_gl = opencv_to_opengl_c2w(cameras.c2w).double()
    return c2w_gl.reshape(-1, 16).tolist(), fov.tolist()


def write_nerfstudio_path(path: str | os.PathLike, cameras: Cameras, info: NerfstudioPathInfo | None = None) -> None:
    """Write ``cameras`` as the dense ``camera_path`` of a nerfstudio camera path file.

    ``info`` supplies keyframes, timing and the file's other keys (e.g. from
    :func:`read_nerfstudio_path`); without it the file has no keyframes, fps 24 and
    seconds = frames / fps, which ``ns-render camera-path`` renders but the viewer cannot edit.
    """
    info = info or NerfstudioPathInfo()
    _check_representable(cameras, "camera")
    n, H, W = len(cameras), cameras.height, cameras.width
    seconds = info.seconds if info.seconds is not None else n / info.fps
    if not (math.isfinite(seconds) and seconds > 0 and math.isfinite(info.fps) and info.fps > 0):
        raise InputError(f"nerfstudio camera path: fps and seconds must be positive, got {info.fps}, {seconds}")
    matrices, fovs = _frames_json(cameras, info.fov if info.fov and len(info.fov) == n else None)
    aspects = info.aspect if info.aspect and len(info.aspect) == n else [W / H] * n
    extras = info.frame_extra if len(info.frame_extra) == n else [{}] * n
    camera_path = [
        {"camera_to_world": [number(x) for x in m], "fov": number(f), "aspect": number(a), **e}
        for m, f, a, e in zip(matrices, fovs, aspects, extras)
    ]
    keyframes = []
    if info.keyframes is not None:
        kf = info.keyframes
        if (kf.height, kf.width) != (H, W):
            raise ValueError(
                f"nerfstudio camera path: keyframes are {kf.height}x{kf.width} but the path is {H}x{W}; "
                "resize the keyframes to the render size"
            )
        _check_representable(kf, "keyframe")
        k = len(kf)
        kf_matrices, kf_fovs = _frames_json(kf, info.keyframe_fov if len(info.keyframe_fov) == k else None)
        column_major = torch.tensor(kf_matrices, dtype=torch.float64).reshape(-1, 4, 4).transpose(1, 2).reshape(-1, 16)
        for i in range(k):
            entry = {
                "matrix": json.dumps([number(x) for x in column_major[i].tolist()], separators=(",", ":")),
                "fov": number(kf_fovs[i]),
                "aspect": number(info.keyframe_aspect[i] if len(info.keyframe_aspect) == k else W / H),
                "properties": info.keyframe_properties[i]
                if len(info.keyframe_properties) == k
                else json.dumps([["FOV", number(kf_fovs[i])], ["NAME", f"Camera {i}"], ["TIME", i / max(k - 1, 1)]]),
            }
            if len(info.keyframe_time_sec) == k and info.keyframe_time_sec[i] is not None:
                entry["time_sec"] = number(info.keyframe_time_sec[i])
            entry.update(info.keyframe_extra[i] if len(info.keyframe_extra) == k else {})
            keyframes.append(entry)
    data = {
        "keyframes": keyframes,
        "camera_type": info.camera_type,
        "render_height": H,
        "render_width": W,
        "camera_path": camera_path,
        "fps": number(info.fps),
        "seconds": number(seconds),
        "smoothness_value": number(info.smoothness_value),
        "is_cycle": bool(info.is_cycle),
        **info.extra,
    }
    atomic_write_text(path, json.dumps(data, indent=2))
