"""Latent-space exploration: interpolation and latent walks (pure tensor functions)."""

from .latent import latent_walk, lerp, slerp

__all__ = ["latent_walk", "lerp", "slerp"]
