"""Tests for gankit.explore.latent: lerp, slerp, latent walks."""

from __future__ import annotations

import math

import pytest
import torch

from gankit.errors import GankitError
from gankit.explore import latent_walk, lerp, slerp


def _unit(*shape):
    x = torch.randn(*shape)
    return x / x.norm(dim=-1, keepdim=True)


def test_slerp_endpoints():
    torch.manual_seed(0)
    a, b = torch.randn(4, 16), torch.randn(4, 16)
    assert torch.allclose(slerp(a, b, 0.0), a, atol=1e-6)
    assert torch.allclose(slerp(a, b, 1.0), b, atol=1e-6)


def test_slerp_midpoint_of_orthogonal_unit_vectors():
    a = torch.tensor([[1.0, 0.0, 0.0]])
    b = torch.tensor([[0.0, 1.0, 0.0]])
    m = slerp(a, b, 0.5)
    assert torch.allclose(m.norm(dim=-1), torch.ones(1), atol=1e-6)
    assert torch.allclose(m @ a.T, m @ b.T, atol=1e-6)  # equal angle to both
    assert torch.allclose(m, torch.tensor([[1.0, 1.0, 0.0]]) / math.sqrt(2), atol=1e-6)


def test_slerp_keeps_unit_length_along_path():
    torch.manual_seed(1)
    a, b = _unit(8, 32), _unit(8, 32)
    path = slerp(a, b, torch.linspace(0, 1, 11))
    assert path.shape == (11, 8, 32)
    assert torch.allclose(path.norm(dim=-1), torch.ones(11, 8), atol=1e-5)


def test_lerp_midpoint_is_mean_and_4d_shapes():
    torch.manual_seed(2)
    a, b = torch.randn(3, 10, 1, 1), torch.randn(3, 10, 1, 1)
    assert torch.allclose(lerp(a, b, 0.5), (a + b) / 2)
    assert slerp(a, b, 0.3).shape == (3, 10, 1, 1)
    assert slerp(a, b, torch.tensor([0.0, 0.5])).shape == (2, 3, 10, 1, 1)


def test_slerp_parallel_and_degenerate_vectors_no_nan():
    a = torch.tensor([[1.0, 2.0, 3.0], [1.0, 0.0, 0.0], [0.0, 0.0, 0.0]])
    b = torch.tensor([[2.0, 4.0, 6.0], [-1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])
    out = slerp(a, b, torch.linspace(0, 1, 5))
    assert torch.isfinite(out).all()
    assert torch.allclose(out[2, 0], lerp(a, b, 0.5)[0])  # parallel -> lerp
    assert torch.allclose(slerp(a, a, 0.5), a)


def test_latent_walk_loop_shape_keyframes_and_even_spacing():
    torch.manual_seed(3)
    k, n, d, frames = 3, 2, 64, 24
    keys = torch.randn(k, n, d)
    walk = latent_walk(keys, frames)
    assert walk.shape == (frames, n, d)
    assert torch.allclose(walk[0], keys[0])
    assert torch.allclose(walk[frames // k], keys[1], atol=1e-5)
    assert torch.allclose(walk[2 * frames // k], keys[2], atol=1e-5)
    assert not torch.allclose(walk[-1], keys[0])  # no duplicate of the first frame at the end
    # Closing the loop: last frame -> first frame is a step like the others.
    closed = torch.cat([walk, walk[:1]])
    steps = (closed[1:] - closed[:-1]).norm(dim=-1)  # (frames, n)
    for seg in range(k):
        s = steps[seg * 8 : (seg + 1) * 8]  # 8 frames per segment, per walker
        # Roughly even (Gaussian keyframes differ in norm, so the arc speed varies a bit).
        assert (s.max(0).values / s.min(0).values).max().item() < 1.3


def test_latent_walk_even_steps_for_unit_keyframes():
    torch.manual_seed(4)
    walk = latent_walk(_unit(4, 5, 32), 40)
    closed = torch.cat([walk, walk[:1]])
    steps = (closed[1:] - closed[:-1]).norm(dim=-1).reshape(4, 10, 5)  # segment, frame, walker
    assert (steps.max(1).values / steps.min(1).values).max().item() < 1.001  # constant speed


def test_latent_walk_no_loop_ends_on_last_keyframe_and_4d():
    keys = torch.randn(4, 3, 16, 1, 1)
    walk = latent_walk(keys, 10, method="lerp", loop=False)
    assert walk.shape == (10, 3, 16, 1, 1)
    assert torch.allclose(walk[0], keys[0]) and torch.allclose(walk[-1], keys[-1], atol=1e-6)


def test_latent_walk_errors():
    keys = torch.randn(2, 1, 4)
    with pytest.raises(GankitError, match="unknown interpolation"):
        latent_walk(keys, 5, method="cubic")
    with pytest.raises(GankitError):
        latent_walk(torch.randn(1, 1, 4), 5)
    with pytest.raises(GankitError):
        latent_walk(keys, 0)
