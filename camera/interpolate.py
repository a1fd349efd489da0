"""Keyframe interpolation of camera paths: positions, orientations and intrinsics.

Keyframe ``i`` sits at spline parameter ``u = i``; an open path spans ``u`` in [0, K-1], a closed
one (loop) [0, K), segment K-1 running from the last keyframe back to the first.

Methods:

* ``"kb"``: Kochanek–Bartels (TCB) Hermite spline. Positions and the intrinsics (fx, fy in log
  space so they stay positive; cx, cy as they are) use the tangents
  ``out_i = (1-t)(1+b)(1+c)/2 (p_i - p_{i-1}) + (1-t)(1-b)(1-c)/2 (p_{i+1} - p_i)`` and
  ``in_i  = (1-t)(1+b)(1-c)/2 (p_i - p_{i-1}) + (1-t)(1-b)(1+c)/2 (p_{i+1} - p_i)``;
  tension = continuity = bias = 0 is Catmull–Rom. Orientations use Shoemake's squad with the same
  tangents taken in the log space at each keyframe (differences ``log(q_i⁻¹ q_j)``):
  ``a_i = q_i exp((out_i - log(q_i⁻¹ q_{i+1})) / 2)``, ``b_i = q_i exp(-(in_i + log(q_i⁻¹ q_{i-1})) / 2)``,
  ``squad(u) = slerp(slerp(q_i, q_{i+1}, s), slerp(a_i, b_{i+1}, s), 2 s (1 - s))``, which reduces
  to the classic Catmull–Rom squad at t = c = b = 0. For unevenly spaced keyframes every tangent
  is scaled as Kochanek and Bartels propose for unequal key intervals: outgoing by
  ``2 d_i / (d_{i-1} + d_i)``, incoming by ``2 d_{i-1} / (d_{i-1} + d_i)``, d being the steps
  between keyframes (:func:`path_lengths`), so a short segment next to a long one does not
  overshoot; evenly spaced keyframes get plain Catmull–Rom.
  Open ends use a phantom keyframe mirrored through the end one (p_{-1} = 2 p_0 - p_1, likewise
  on rotations), so an open path with two keyframes is a straight line.
* ``"slerp"``: positions and intrinsics by the same spline, orientations by piecewise SLERP.
* ``"linear"``: positions and intrinsics piecewise linear (fx, fy in log space), orientations SLERP.

Every method passes exactly through its keyframes (:func:`interpolate_at` at integer ``u``) and
takes the shortest arc between consecutive orientations. ``constant_speed`` spaces the frames
equally along the path (arc length of the centres, or of the rotation angle when the centres do
not move, or of log focal length when neither moves), measured on a dense polyline of the spline.
"""

from __future__ import annotations

from typing import Literal

import torch
from torch import Tensor

from camera.cameras import Cameras
from camera.convert import qvec_to_rotmat, rotmat_to_qvec

Method = Literal["kb", "slerp", "linear"]
METHODS = ("kb", "slerp", "linear")
DENSE_SAMPLES_PER_SEGMENT = 64


# ------------------------------------------------------------------ quaternions (w, x, y, z)
def quat_mul(a: Tensor, b: Tensor) -> Tensor:
    """Hamilton product [..., 4] x [..., 4] -> [..., 4]."""
    aw, ax, ay, az = a.unbind(-1)
    bw, bx, by, bz = b.unbind(-1)
    return torch.stack(
        [
            aw * bw - ax * bx - ay * by - az * bz,
            aw * bx + ax * bw + ay * bz - az * by,
            aw * by - ax * bz + ay * bw + az * bx,
            aw * bz + ax * by - ay * bx + az * bw,
        ],
        -1,
    )


def quat_conj(q: Tensor) -> Tensor:
    return q * torch.tensor([1.0, -1.0, -1.0, -1.0], dtype=q.dtype, device=q.device)


def quat_log(q: Tensor) -> Tensor:
    """Unit quaternions [..., 4] -> rotation vectors / 2 [..., 3] (the pure-quaternion logarithm)."""
    v = q[..., 1:]
    sin_half = v.norm(dim=-1, keepdim=True)
    half = torch.atan2(sin_half, q[..., :1])
    scale = torch.where(sin_half > 1e-12, half / sin_half.clamp_min(1e-300), 1.0 / q[..., :1])
    return v * scale


def quat_exp(v: Tensor) -> Tensor:
    """[..., 3] -> unit quaternions [..., 4]; inverse of :func:`quat_log`."""
    half = v.norm(dim=-1, keepdim=True)
    sinc = torch.where(half > 1e-12, torch.sin(half) / half.clamp_min(1e-300), 1.0 - half**2 / 6)
    return torch.cat([torch.cos(half), v * sinc], -1)


def quat_slerp(q0: Tensor, q1: Tensor, s: Tensor) -> Tensor:
    """Spherical linear interpolation q0 (q0⁻¹ q1)^s of unit quaternions [..., 4] at s [...]
    along the arc as given (align signs first for the shortest arc)."""
    return quat_mul(q0, quat_exp(s[..., None] * quat_log(quat_mul(quat_conj(q0), q1))))


def shortest_arc(q: Tensor) -> Tensor:
    """Unit quaternions [K, 4] with signs flipped so consecutive ones have a non-negative dot product."""
    out = q.clone()
    for i in range(1, len(out)):
        if (out[i] * out[i - 1]).sum() < 0:
            out[i] = -out[i]
    return out


# ------------------------------------------------------------------------- spline pieces
def _hermite(p0: Tensor, p1: Tensor, m0: Tensor, m1: Tensor, s: Tensor) -> Tensor:
    """Cubic Hermite on [N, D] end points and tangents at s [N]."""
    s = s[:, None]
    s2, s3 = s * s, s * s * s
    return (2 * s3 - 3 * s2 + 1) * p0 + (s3 - 2 * s2 + s) * m0 + (-2 * s3 + 3 * s2) * p1 + (s3 - s2) * m1


def _kb_weights(tension: float, continuity: float, bias: float) -> tuple[float, float, float, float]:
    """Weights of (p_i - p_{i-1}, p_{i+1} - p_i) in the outgoing and incoming tangents at keyframe i."""
    t, c, b = tension, continuity, bias
    return (
        (1 - t) * (1 + b) * (1 + c) / 2,
        (1 - t) * (1 - b) * (1 - c) / 2,
        (1 - t) * (1 + b) * (1 - c) / 2,
        (1 - t) * (1 - b) * (1 + c) / 2,
    )


def _neighbour_differences(values: Tensor, closed: bool) -> tuple[Tensor, Tensor]:
    """Backward and forward differences [K, D] at each keyframe of values [K, D], with the ends of an
    open path mirrored (the missing difference equals the present one)."""
    if closed:
        return values - values.roll(1, 0), values.roll(-1, 0) - values
    forward = torch.cat([values[1:] - values[:-1], values[-1:] - values[-2:-1]])
    backward = torch.cat([values[1:2] - values[:1], values[1:] - values[:-1]])
    return backward, forward


def _kb_tangents(values: Tensor, closed: bool, weights, timing: tuple[Tensor, Tensor]) -> tuple[Tensor, Tensor]:
    """Outgoing and incoming KB tangents [K, D] of values [K, D], scaled by the ``timing`` factors."""
    w_out_back, w_out_fwd, w_in_back, w_in_fwd = weights
    back, fwd = _neighbour_differences(values, closed)
    scale_out, scale_in = timing
    return (
        scale_out[:, None] * (w_out_back * back + w_out_fwd * fwd),
        scale_in[:, None] * (w_in_back * back + w_in_fwd * fwd),
    )


def _timing(keyframes: Cameras, closed: bool) -> tuple[Tensor, Tensor]:
    """Tangent factors [K], [K] for unevenly spaced keyframes: ``2 d_i / (d_{i-1} + d_i)`` (outgoing)
    and ``2 d_{i-1} / (d_{i-1} + d_i)`` (incoming), with d the steps between keyframes (:func:`path_lengths`)."""
    steps = path_lengths(Cameras.cat([keyframes, keyframes[:1]]) if closed else keyframes)
    if closed:
        before, after = steps.roll(1), steps
    else:
        before, after = torch.cat([steps[:1], steps]), torch.cat([steps, steps[-1:]])
    total = before + after
    ones = torch.ones_like(total)
    return (
        torch.where(total > 0, 2 * after / total.clamp_min(1e-300), ones),
        torch.where(total > 0, 2 * before / total.clamp_min(1e-300), ones),
    )


def _segments(u: Tensor, num_keys: int, closed: bool) -> tuple[Tensor, Tensor, Tensor]:
    """Parameters u [N] -> segment start index i [N], end index j [N], local s in [0, 1] [N]."""
    num_segments = num_keys if closed else num_keys - 1
    i = u.floor().long().clamp(0, num_segments - 1)
    s = u - i
    return i, (i + 1) % num_keys, s


def _spline(values: Tensor, u: Tensor, closed: bool, method: str, weights, timing) -> Tensor:
    """values [K, D] at parameters u [N] -> [N, D]."""
    i, j, s = _segments(u, len(values), closed)
    if method == "linear":
        return values[i] + s[:, None] * (values[j] - values[i])
    tan_out, tan_in = _kb_tangents(values, closed, weights, timing)
    return _hermite(values[i], values[j], tan_out[i], tan_in[j], s)


def _relative_log(a: Tensor, b: Tensor) -> Tensor:
    """log(a⁻¹ b) [..., 3] of unit quaternions [..., 4] along the shortest arc."""
    rel = quat_mul(quat_conj(a), b)
    return quat_log(rel * torch.where(rel[..., :1] < 0, -1.0, 1.0))


def _squad(q: Tensor, u: Tensor, closed: bool, weights, timing) -> Tensor:
    """Unit quaternions q [K, 4] (shortest-arc signs) at parameters u [N] -> [N, 4]."""
    n = len(q)
    prev = torch.arange(n).roll(1)
    nxt = torch.arange(n).roll(-1)
    log_next = _relative_log(q, q[nxt])  # [K, 3] in the frame of q_i
    log_prev = _relative_log(q, q[prev])
    if not closed:
        log_next[-1] = -log_prev[-1]  # phantom keyframe mirrored through the last one
        log_prev[0] = -log_next[0]
    w_out_back, w_out_fwd, w_in_back, w_in_fwd = weights
    scale_out, scale_in = timing
    tan_out = scale_out[:, None] * (-w_out_back * log_prev + w_out_fwd * log_next)
    tan_in = scale_in[:, None] * (-w_in_back * log_prev + w_in_fwd * log_next)
    a = quat_mul(q, quat_exp((tan_out - log_next) / 2))
    b = quat_mul(q, quat_exp(-(tan_in + log_prev) / 2))
    i, j, s = _segments(u, n, closed)
    sign = torch.where((q[j] * q[i]).sum(-1, keepdim=True) < 0, -1.0, 1.0)  # the wrap of a closed path
    outer = quat_slerp(q[i], sign * q[j], s)
    inner = quat_slerp(a[i], sign * b[j], s)
    inner = inner * torch.where((inner * outer).sum(-1, keepdim=True) < 0, -1.0, 1.0)
    return quat_slerp(outer, inner, 2 * s * (1 - s))


# ------------------------------------------------------------------------------ public API
def _check(keyframes: Cameras, method: str, tension: float, continuity: float, bias: float) -> None:
    if not isinstance(keyframes, Cameras):
        raise TypeError(f"keyframes must be Cameras, got {type(keyframes).__name__}")
    if method not in METHODS:
        raise ValueError(f"unknown interpolation method {method!r}; choose one of {', '.join(METHODS)}")
    if len(keyframes) < 2:
        raise ValueError(f"interpolation needs at least 2 keyframes, got {len(keyframes)}")
    for name, value in (("tension", tension), ("continuity", continuity), ("bias", bias)):
        if not -1 <= value <= 1:
            raise ValueError(f"{name} must lie in [-1, 1] (0 is Catmull–Rom), got {value}")


def interpolate_at(
    keyframes: Cameras,
    u: Tensor,
    method: Method = "kb",
    tension: float = 0.0,
    continuity: float = 0.0,
    bias: float = 0.0,
    closed: bool = False,
) -> Cameras:
    """The interpolated cameras at spline parameters ``u`` [N] (keyframe i at u = i).

    ``u`` must lie in [0, K-1] for an open path, [0, K] for a closed one.
    """
    _check(keyframes, method, tension, continuity, bias)
    kf = keyframes.to(dtype=torch.float64)
    n = len(kf)
    u = torch.as_tensor(u, dtype=torch.float64).reshape(-1)
    upper = n if closed else n - 1
    if not torch.isfinite(u).all() or u.min() < 0 or u.max() > upper:
        raise ValueError(
            f"spline parameters must lie in [0, {upper}] for {n} keyframes "
            f"({'closed' if closed else 'open'}), got [{float(u.min())}, {float(u.max())}]"
        )
    weights = _kb_weights(tension, continuity, bias)
    timing = _timing(kf, closed)
    centers = _spline(kf.centers, u, closed, method, weights, timing)
    intrinsics = torch.stack([kf.fx.log(), kf.fy.log(), kf.cx, kf.cy], -1)  # [K, 4]
    fx_log, fy_log, cx, cy = _spline(intrinsics, u, closed, method, weights, timing).unbind(-1)
    q = shortest_arc(rotmat_to_qvec(kf.R))
    if method == "kb":
        quats = _squad(q, u, closed, weights, timing)
    else:
        i, j, s = _segments(u, n, closed)
        qj = q[j] * torch.where((q[j] * q[i]).sum(-1, keepdim=True) < 0, -1.0, 1.0)
        quats = quat_slerp(q[i], qj, s)
    c2w = torch.eye(4, dtype=torch.float64).repeat(len(u), 1, 1)
    c2w[:, :3, :3] = qvec_to_rotmat(quats)
    c2w[:, :3, 3] = centers
    K = torch.zeros(len(u), 3, 3, dtype=torch.float64)
    K[:, 0, 0], K[:, 1, 1], K[:, 0, 2], K[:, 1, 2], K[:, 2, 2] = fx_log.exp(), fy_log.exp(), cx, cy, 1.0
    at_key = (u == u.round()) & (u < n)
    if at_key.any():  # exact keyframes, free of the round trip through quaternions and logs
        keys = u[at_key].long()
        c2w[at_key], K[at_key] = kf.c2w[keys], kf.K[keys]
    return Cameras(K, c2w, kf.height, kf.width)


def path_lengths(cameras: Cameras) -> Tensor:
    """Lengths [N-1] of the steps between consecutive cameras: centre distances; where the centres
    do not move at all, rotation angles (radians); where neither moves, |log focal change|."""
    step = (cameras.centers[1:] - cameras.centers[:-1]).norm(dim=-1)
    if float(step.sum()) > 1e-12:
        return step
    rel = cameras.R[:-1].transpose(1, 2) @ cameras.R[1:]
    cos = ((rel.diagonal(dim1=1, dim2=2).sum(-1) - 1) / 2).clamp(-1, 1)
    step = torch.acos(cos)
    if float(step.sum()) > 1e-12:
        return step
    return (cameras.fy[1:].log() - cameras.fy[:-1].log()).abs()


def constant_speed_parameters(
    keyframes: Cameras,
    num_frames: int,
    method: Method = "kb",
    tension: float = 0.0,
    continuity: float = 0.0,
    bias: float = 0.0,
    closed: bool = False,
) -> Tensor:
    """Spline parameters u [num_frames] equally spaced in :func:`path_lengths` along the path."""
    n = len(keyframes)
    upper = n if closed else n - 1
    dense_u = torch.linspace(0, upper, upper * DENSE_SAMPLES_PER_SEGMENT + 1, dtype=torch.float64)
    dense = interpolate_at(keyframes, dense_u, method, tension, continuity, bias, closed)
    cumulative = torch.cat([torch.zeros(1, dtype=torch.float64), path_lengths(dense).cumsum(0)])
    if float(cumulative[-1]) <= 1e-12:
        targets = torch.linspace(0, upper, num_frames + int(closed), dtype=torch.float64)
        return targets[:num_frames]
    targets = torch.linspace(0, float(cumulative[-1]), num_frames + int(closed), dtype=torch.float64)[:num_frames]
    idx = torch.searchsorted(cumulative, targets, right=True).clamp(1, len(cumulative) - 1)
    lo, hi = cumulative[idx - 1], cumulative[idx]
    frac = torch.where(hi > lo, (targets - lo) / (hi - lo).clamp_min(1e-300), 0.0)
    return (dense_u[idx - 1] + frac * (dense_u[idx] - dense_u[idx - 1])).clamp(0, upper)


def interpolate(
    keyframes: Cameras,
    num_frames: int,
    method: Method = "kb",
    tension: float = 0.0,
    closed: bool = False,
    constant_speed: bool = True,
    continuity: float = 0.0,
    bias: float = 0.0,
) -> Cameras:
    """A path of ``num_frames`` cameras through ``keyframes`` (in their order).

    Open paths start at the first keyframe and end at the last; closed paths start at the first and
    stop one step before returning to it, so the frames loop. With ``constant_speed=False`` the
    frames are equally spaced in the spline parameter: ``num_frames = m (K - 1) + 1`` (open) or
    ``m K`` (closed) puts keyframe i exactly at frame ``m i``.

    Example:
        >>> from camera.presets import orbit
        >>> keyframes = orbit(4, radius=2.0, elevation_deg=10.0)
        >>> path = interpolate(keyframes, 60, method="kb", tension=0.0, closed=True)
        >>> len(path), torch.equal(path.c2w[0], keyframes.c2w[0])  # it starts on the first keyframe
        (60, True)
    """
    _check(keyframes, method, tension, continuity, bias)
    if isinstance(num_frames, bool) or int(num_frames) != num_frames or num_frames < 1:
        raise ValueError(f"num_frames must be a positive integer, got {num_frames!r}")
    n = len(keyframes)
    if constant_speed:
        u = constant_speed_parameters(keyframes, num_frames, method, tension, continuity, bias, closed)
    else:
        upper = n if closed else n - 1
        u = torch.linspace(0, upper, num_frames + int(closed), dtype=torch.float64)[:num_frames]
    return interpolate_at(keyframes, u, method, tension, continuity, bias, closed)
