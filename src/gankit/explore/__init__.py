"""Latent-space exploration: pure functions on a trained (or imported) generator, one per tool of
``gankit``: latent walks, vector arithmetic, dissection, projection of a real photo, blending two
models (toonify)."""

from .arithmetic import Arithmetic, choose_exemplars, latent_arithmetic
from .blend import blend_models, blend_state_dicts
from .dissect import Dissection, dissect, feature_layers
from .latent import latent_walk, lerp, slerp
from .project import ProjectionResult, noise_maps, project

__all__ = ["Arithmetic", "Dissection", "ProjectionResult", "blend_models", "blend_state_dicts", "choose_exemplars",
           "dissect", "feature_layers", "latent_arithmetic", "latent_walk", "lerp", "noise_maps", "project", "slerp"]
