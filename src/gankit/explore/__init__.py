"""Latent-space exploration: interpolation and latent walks (pure tensor functions)."""

from .arithmetic import Arithmetic, choose_exemplars, latent_arithmetic
from .dissect import Dissection, dissect, feature_layers
from .latent import latent_walk, lerp, slerp

__all__ = ["Arithmetic", "choose_exemplars", "Dissection", "dissect", "feature_layers", "latent_arithmetic",
           "latent_walk", "lerp", "slerp"]
