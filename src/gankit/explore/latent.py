"""Interpolation in a generator's latent space.

Walking smoothly between latent vectors and watching the images change smoothly is the
classic check that a GAN has not memorised its data (Radford, Metz & Chintala 2015,
"Unsupervised Representation Learning with Deep Convolutional GANs", §6.1 "Walking in
the latent space"). For Gaussian latents, straight-line interpolation passes through
low-norm points that the generator rarely saw in training; spherical interpolation
(slerp) follows the great circle instead (White 2016, "Sampling Generative Networks",
arXiv:1609.04468).

Latents are batches ``(N, D)`` or ``(N, D, 1, 1)`` (trailing dims are flattened for the
maths and restored). ``t`` is a float, giving ``(N, ...)``, or a 1-D tensor of T
fractions, giving ``(T, N, ...)``: every pair interpolated at every fraction.
"""

from __future__ import annotations

import torch
from torch import Tensor

from ..errors import GankitError

# Below this |sin(angle)| the two directions are treated as parallel (or anti-parallel)
# and slerp falls back to lerp: the great circle is ill-defined and sin() would divide by ~0.
_PARALLEL_EPS = 1e-4


def _prepare(a: Tensor, b: Tensor, t: float | Tensor):
    """Flatten a, b to (N, D) and shape t for broadcasting; also return the output shape."""
    if a.shape != b.shape:
        raise ValueError(f"a and b must have the same shape, got {tuple(a.shape)} and {tuple(b.shape)}")
    dtype = torch.promote_types(a.dtype, torch.float32)
    a2 = a.to(dtype).reshape(a.shape[0], -1) if a.ndim >= 2 else a.to(dtype).reshape(1, -1)
    b2 = b.to(dtype).reshape(a2.shape)
    tt = torch.as_tensor(t, dtype=dtype, device=a.device)
    if tt.ndim == 0:
        return a2, b2, tt, tuple(a.shape)
    if tt.ndim == 1:
        return a2, b2, tt.view(-1, 1, 1), (tt.shape[0], *a.shape)
    raise ValueError(f"t must be a float or a 1-D tensor, got shape {tuple(tt.shape)}")


def lerp(a: Tensor, b: Tensor, t: float | Tensor) -> Tensor:
    """Linear interpolation ``(1 - t) * a + t * b`` (see the module doc for shapes)."""
    a2, b2, tt, shape = _prepare(a, b, t)
    return ((1 - tt) * a2 + tt * b2).reshape(shape).to(a.dtype)


def slerp(a: Tensor, b: Tensor, t: float | Tensor) -> Tensor:
    """Spherical linear interpolation (White 2016), row by row.

    ``sin((1-t)w)/sin(w) * a + sin(tw)/sin(w) * b`` with ``w`` the angle between the rows
    of ``a`` and ``b``. The path goes along the arc at constant angular speed; unit vectors
    stay unit length, and vectors of equal norm keep that norm. Rows that are (nearly)
    parallel or anti-parallel fall back to :func:`lerp` (no NaN); zero rows are fine too.
    """
    a2, b2, tt, shape = _prepare(a, b, t)
    tiny = torch.finfo(a2.dtype).tiny
    an = a2 / a2.norm(dim=-1, keepdim=True).clamp_min(tiny)
    bn = b2 / b2.norm(dim=-1, keepdim=True).clamp_min(tiny)
    omega = (an * bn).sum(-1, keepdim=True).clamp(-1.0, 1.0).acos()  # (N, 1)
    so = omega.sin()
    parallel = so.abs() < _PARALLEL_EPS
    safe_so = torch.where(parallel, torch.ones_like(so), so)
    wa = torch.where(parallel, 1 - tt * torch.ones_like(so), ((1 - tt) * omega).sin() / safe_so)
    wb = torch.where(parallel, tt * torch.ones_like(so), (tt * omega).sin() / safe_so)
    return (wa * a2 + wb * b2).reshape(shape).to(a.dtype)


_METHODS = {"slerp": slerp, "lerp": lerp}


def latent_walk(keyframes: Tensor, frames: int, method: str = "slerp", loop: bool = True) -> Tensor:
    """A smooth path through K keyframe latents for each of N walkers.

    Args:
        keyframes: ``(K, N, D...)`` with K >= 2: keyframe k of walker n is ``keyframes[k, n]``.
        frames: number of frames to return (>= 1).
        method: ``"slerp"`` (default, for Gaussian latents) or ``"lerp"``.
        loop: if True the path goes 0 -> 1 -> ... -> K-1 -> back towards 0 over K equal
            segments, and the last frame is one step *before* keyframe 0, so a GIF of the
            frames loops seamlessly with no duplicated frame. If False it runs over K-1
            segments and the last frame is exactly keyframe K-1.

    Returns ``(frames, N, D...)``. Frames are spaced evenly in the path parameter, so
    each segment gets the same number of frames (exactly when ``frames`` divides evenly:
    with loop=True, frame ``i * frames // K`` is keyframe i).
    """
    interp = _METHODS.get(method)
    if interp is None:
        raise GankitError(f"unknown interpolation method {method!r}: use one of {sorted(_METHODS)}")
    if keyframes.ndim < 3 or keyframes.shape[0] < 2:
        raise GankitError(f"latent_walk needs keyframes shaped (K>=2, N, D...), got {tuple(keyframes.shape)}")
    if frames < 1:
        raise GankitError(f"frames must be at least 1, got {frames}")
    k = keyframes.shape[0]
    segments = k if loop else k - 1
    steps = torch.arange(frames, dtype=torch.float64)
    # Path parameter s in [0, segments): integer part = segment, fraction = t within it.
    s = steps * segments / frames if loop else steps * segments / max(frames - 1, 1)
    seg = s.floor().long().clamp(max=segments - 1)
    frac = (s - seg).to(torch.float32 if keyframes.dtype != torch.float64 else torch.float64)
    out = keyframes.new_empty((frames, *keyframes.shape[1:]))
    for i in range(segments):
        idx = (seg == i).nonzero().flatten()
        if idx.numel():
            a, b = keyframes[i], keyframes[(i + 1) % k]
            out[idx] = interp(a, b, frac[idx].to(keyframes.device))
    return out
