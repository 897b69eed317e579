"""Toonify: resolution-dependent blending of two StyleGAN2 generators (Pinkney & Adler 2020,
"Resolution Dependent GAN Interpolation for Controllable Image Synthesis Between Domains",
arXiv:2010.05334).

A base model (faces) fine-tuned briefly on a second domain (cartoons, paintings, nebulae) keeps a
close relationship with its base: the same w gives "the same" image in both. Each synthesis
block acts at one resolution, and low resolutions decide pose and shape while high resolutions
decide texture and lighting (StyleGAN §3.1). Taking the blocks up to a swap resolution from one
model and the rest from the other gives a model of a new domain: with the tuned model's low
resolutions and the base model's high ones, cartoon structure with photographic rendering
(Toonify); the other way round, photographic structure drawn in the second domain's style. The
paper's smooth form interpolates the weights, p = (1 - a(r)) p_low + a(r) p_high, with a(r) a
sigmoid in log2 of the block's resolution; width 0 is the hard swap.

The mapping network and the mean w come from the base model, so a latent found for a real photo
with the base model (``gankit project``) drives the blend directly: the "toonified" portrait.
"""

from __future__ import annotations

import copy
import math
import re

import torch

from gankit.errors import GankitError

_BLOCK = re.compile(r"^synthesis\.b(\d+)\.")


def block_resolution(name: str) -> int | None:
    """The resolution of the synthesis block a parameter belongs to (None: the mapping network)."""
    m = _BLOCK.match(name)
    return int(m.group(1)) if m else None


def high_weight(resolution: int, swap: int, width: float = 0.0) -> float:
    """a(r): the share of the high-resolution model in a block at ``resolution``. Hard swap
    (width 0): 0 up to ``swap``, 1 above; smooth: a sigmoid in log2(r) centred between the swap
    resolution and the next, ``width`` octaves wide."""
    x = math.log2(resolution) - (math.log2(swap) + 0.5)
    if width <= 0:
        return 1.0 if x > 0 else 0.0
    return 1.0 / (1.0 + math.exp(-x / width))


def blend_state_dicts(base: dict[str, torch.Tensor], tuned: dict[str, torch.Tensor], swap: int, *,
                      width: float = 0.0, low: str = "tuned") -> dict[str, torch.Tensor]:
    """Blend two generators' state dicts of one architecture: blocks up to ``swap`` from the ``low``
    model ("tuned" | "base"), above it from the other, smoothly over ``width`` octaves; the mapping
    network and w_avg from ``base``."""
    if low not in ("tuned", "base"):
        raise GankitError(f"--low takes tuned or base, got {low!r}")
    if base.keys() != tuned.keys() or any(base[k].shape != tuned[k].shape for k in base):
        raise GankitError("the two models have different architectures; blending needs a model and a "
                          "fine-tuned copy of it (gankit train stylegan2 --init BASE ...)")
    lo_sd, hi_sd = (tuned, base) if low == "tuned" else (base, tuned)
    out = {}
    for name, value in base.items():
        r = block_resolution(name)
        if r is None or not value.is_floating_point():
            out[name] = value.clone()
            continue
        a = high_weight(r, swap, width)
        out[name] = torch.lerp(lo_sd[name].float(), hi_sd[name].float(), a).to(value.dtype)
    return out


def blend_models(base, tuned, swap: int, *, width: float = 0.0, low: str = "tuned"):
    """A new :class:`gankit.api.Model`: ``base`` with its synthesis blocks blended with ``tuned``'s
    (see :func:`blend_state_dicts`). Both must be style-based models of one architecture."""
    for m in (base, tuned):
        if not m.family_cls.style_based:
            raise GankitError(f"blend needs two style-based models (stylegan2); one is {m.family}")
    resolutions = [2 ** i for i in range(2, int(math.log2(base.config.resolution)) + 1)]
    if swap not in resolutions:
        raise GankitError(f"--swap must be one of the model's resolutions {resolutions}, got {swap}")
    if not 0 <= width < math.inf:  # NaN wrote a model of NaNs
        raise GankitError(f"--width must be a finite number >= 0 (0 = hard swap), got {width}")
    sd = blend_state_dicts(base.generator.state_dict(), tuned.generator.state_dict(), swap, width=width, low=low)
    blended = copy.copy(base)
    blended.generator = copy.deepcopy(base.generator)
    blended.generator.load_state_dict(sd)
    blended.extra = {}
    return blended


@torch.no_grad()
def blend_rows(models: list, ws: torch.Tensor, *, noise: str = "const") -> torch.Tensor:
    """The same ws through each model's synthesis network: (len(models) * N, C, H, W) in [-1, 1],
    one row per model."""
    return torch.cat([m.synthesis(ws, noise=noise).clamp(-1, 1).float().cpu() for m in models])

