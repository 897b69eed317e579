"""Latent-space exploration: pure functions on a trained (or imported) generator, one per tool of
``gankit``: latent walks, vector arithmetic, dissection, projection of a real photo, directions
in W and edits along them, blending two models (toonify); and SinGAN's single-image tools
(``gankit.explore.singan``: any-size samples, harmonisation, editing, paint-to-image,
super-resolution, animation)."""

from .arithmetic import Arithmetic, choose_exemplars, latent_arithmetic
from .blend import blend_models, blend_state_dicts
from .directions import condition, fit_boundary, ganspace, load_directions, save_directions, sefa
from .dissect import Dissection, dissect, feature_layers
from .edit import apply_direction, edit_strip
from .latent import latent_walk, lerp, slerp
from .project import ProjectionResult, noise_maps, project
from . import singan

__all__ = ["Arithmetic", "Dissection", "ProjectionResult", "apply_direction", "blend_models", "blend_state_dicts",
           "choose_exemplars", "condition", "dissect", "edit_strip", "feature_layers", "fit_boundary", "ganspace",
           "latent_arithmetic", "latent_walk", "lerp", "load_directions", "noise_maps", "project", "save_directions",
           "sefa", "singan", "slerp"]
