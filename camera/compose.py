"""Composing camera paths: concatenate, reverse, ping-pong, resample at constant speed."""

from __future__ import annotations

import torch

from camera.cameras import Cameras
from camera.interpolate import interpolate_at, path_lengths


def concatenate(*paths: Cameras) -> Cameras:
    """The frames of ``paths`` one after the other (all of one image size)."""
    if not paths:
        raise ValueError("concatenate needs at least one path")
    return Cameras.cat(list(paths))


def reverse(path: Cameras) -> Cameras:
    """The frames in reverse order."""
    return path[torch.arange(len(path) - 1, -1, -1)]


def ping_pong(path: Cameras) -> Cameras:
    """Out and back: the frames, then the same in reverse without repeating the turning frame,
    ending where the path started (2N - 1 frames; one frame stays one frame)."""
    if len(path) == 1:
        return path
    return concatenate(path, reverse(path)[1:])


def resample(path: Cameras, num_frames: int) -> Cameras:
    """``num_frames`` cameras equally spaced along the polyline through ``path``'s frames, the first
    and last frames kept. Spacing is by centre distance; for paths whose centres never move (pan,
    roll) by rotation angle; when neither moves (zoom) by log focal length. Between frames the
    centres and intrinsics are linear (focal lengths in log space), rotations SLERP."""
    if isinstance(num_frames, bool) or int(num_frames) != num_frames or num_frames < 1:
        raise ValueError(f"num_frames must be a positive integer, got {num_frames!r}")
    if len(path) == 1:
        return path[[0] * num_frames]
    cumulative = torch.cat([torch.zeros(1, dtype=torch.float64), path_lengths(path).double().cumsum(0)])
    total = float(cumulative[-1])
    if total <= 1e-12:  # every frame identical
        u = torch.linspace(0, len(path) - 1, num_frames, dtype=torch.float64)
        return interpolate_at(path, u, method="linear")
    targets = torch.linspace(0, total, num_frames, dtype=torch.float64)
    idx = torch.searchsorted(cumulative, targets, right=True).clamp(1, len(path) - 1)
    lo, hi = cumulative[idx - 1], cumulative[idx]
    frac = torch.where(hi > lo, (targets - lo) / (hi - lo).clamp_min(1e-300), 0.0)
    u = (idx - 1 + frac).clamp(0, len(path) - 1)
    u[-1] = len(path) - 1
    return interpolate_at(path, u, method="linear")
