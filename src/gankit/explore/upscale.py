"""Upscaling pictures of any size with a super-resolution generator (SRGAN), in tiles.

The generator is fully convolutional, so a whole picture could go through it at once, but its
activations at 64 channels and 4x the pixels grow with the picture (a 1000x1000 input needs
several GB). :func:`upscale_tiled` cuts the low-resolution input into ``tile`` x ``tile`` pieces,
each run with ``overlap`` extra pixels of context on every side, and keeps only every piece's
centre: with an overlap at least the generator's receptive radius (:func:`receptive_radius`,
the default) the result equals the one-pass output up to float rounding, at bounded memory.
"""

from __future__ import annotations

import math
from typing import Callable

import torch
from torch import nn

from gankit.errors import GankitError


def receptive_radius(G: nn.Module, scale: int) -> int:
    """An upper bound of how far (in input pixels) an output pixel of ``G`` sees: every
    convolution's half kernel, counted at the input's resolution (layers after PixelShuffle
    reach less far), rounded up."""
    radius, factor = 0.0, 1
    for module in G.modules():
        if isinstance(module, nn.Conv2d):
            radius += (module.kernel_size[0] // 2) * module.dilation[0] / factor
        elif isinstance(module, nn.PixelShuffle):
            factor *= module.upscale_factor
    return math.ceil(radius)


@torch.no_grad()
def upscale_tiled(G: nn.Module, image: torch.Tensor, scale: int, *, tile: int = 256, overlap: int | None = None,
                  on_tile: Callable[[], None] | None = None) -> torch.Tensor:
    """``G`` applied to ``image`` (1, C, H, W) in [-1, 1] tile by tile -> (1, C, scale H, scale W)
    in [-1, 1] on the CPU. ``tile`` is in input pixels; ``overlap`` defaults to the receptive radius."""
    if image.dim() != 4 or image.shape[0] != 1:
        raise GankitError(f"upscale takes one image (1, C, H, W), got shape {tuple(image.shape)}")
    if tile < 8:
        raise GankitError(f"--tile must be at least 8 pixels, got {tile}")
    pad = receptive_radius(G, scale) if overlap is None else overlap
    device = next(G.parameters()).device
    _, c, h, w = image.shape
    out = torch.empty(1, c, h * scale, w * scale)
    was_training = G.training
    G.eval()
    try:
        for y in range(0, h, tile):
            for x in range(0, w, tile):
                y0, x0 = max(0, y - pad), max(0, x - pad)
                y1, x1 = min(h, y + tile + pad), min(w, x + tile + pad)
                piece = G(image[:, :, y0:y1, x0:x1].to(device)).float().clamp(-1, 1).cpu()
                ty, tx = (y - y0) * scale, (x - x0) * scale
                th, tw = (min(h, y + tile) - y) * scale, (min(w, x + tile) - x) * scale
                out[:, :, y * scale:y * scale + th, x * scale:x * scale + tw] = piece[:, :, ty:ty + th, tx:tx + tw]
                if on_tile is not None:
                    on_tile()
    finally:
        G.train(was_training)
    return out


def tile_count(size: tuple[int, int], tile: int) -> int:
    return math.ceil(size[0] / tile) * math.ceil(size[1] / tile)


def upscale(model, image, *, tile: int = 256, overlap: int | None = None,
            on_tile: Callable[[], None] | None = None) -> torch.Tensor:
    """A trained srgan model's upscaling of ``image`` (a file path, or a (1, C, H, W) / (C, H, W)
    tensor, uint8 or float in [-1, 1]) -> (1, C, scale H, scale W) in [-1, 1]; see :func:`upscale_tiled`."""
    from gankit.explore.singan import as_image

    if model.family != "srgan":
        raise GankitError(f"{model.source} is a {model.family} model; this upscaling needs an srgan run "
                          f"(a singan run upscales with gankit.explore.singan.upscale)")
    x = as_image(image, model.config.channels, "image to upscale")
    return upscale_tiled(model.generator, x, model.config.scale, tile=tile, overlap=overlap, on_tile=on_tile)
