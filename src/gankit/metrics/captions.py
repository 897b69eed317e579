"""Caption fidelity on the built-in ``mnist-captions`` (:mod:`gankit.data.captions`).

A text-to-image generator (StackGAN, Zhang et al. 2017, arXiv:1612.03242) should draw what its
caption says. On natural images that is judged by people or by a learnt image-text model
(R-precision, Xu et al. 2018, AttnGAN, arXiv:1711.10485); on ``mnist-captions`` every caption is
four known attributes, so each can be read back from the pixels (:func:`read_caption_attributes`)
and compared with the caption's (:func:`caption_fidelity`):

* background: the median colour of the border pixels, nearest :data:`BACKGROUND_COLOURS`;
* stroke colour: the palette colour whose blends with that background (``bg + a (stroke - bg)``,
  ``a`` in [0, 1]) best explain the pixels away from the background: the smallest distance of the
  pixels from their nearest blend, averaged with the pixels' distance from the background as
  weight (anti-aliased edges are such blends, so a real render fits its own colour exactly);
* ink: the blend weight ``a`` of that colour at each pixel, a grey stroke map;
* size: the larger side of the ink's bounding box (pixels of ink above one half, the outer 1 %
  of them on each side left out against speckle) over the image side, above :data:`SIZE_THRESHOLD`
  for large;
* digit: the ink (faint ink dropped, :data:`INK_FLOOR`) cropped to a square around that box,
  resized to 28x28 with the box about as large as an MNIST digit (:data:`CROP_EXTENT`), read by
  the shipped MNIST classifier.

Uint8 images are mapped to [-1, 1]; float images are clamped there. Everything runs in batches.
"""

from __future__ import annotations

from functools import lru_cache

import torch
import torch.nn.functional as F
from torch import nn

from gankit.data.captions import BACKGROUND_COLOURS, CAPTION_ATTRIBUTES, SIZES, SMALL_SCALE, STROKE_COLOURS
from gankit.errors import GankitError

BATCH = 500
INK = 0.5  # blend weight above which a pixel counts as ink for the bounding box
TRIM = 0.01  # share of ink pixels left out on each side of the bounding box
# MNIST digits have a larger side of 20 of 28 pixels (0.71 of the frame), small ones 0.55 of that
# (0.39): the threshold is their geometric mean, a factor 1.35 from each.
LARGE_EXTENT = 20 / 28
SIZE_THRESHOLD = LARGE_EXTENT * SMALL_SCALE ** 0.5
# The ink box (above one half) of a digit is a little smaller than MNIST's 20 px from faint edge to
# faint edge, and the strokes of small digits grow bold when upscaled: a crop in which the box
# fills 0.64 of the side read best over sizes 28-64 (2,000 test renders each; 0.71 read small
# digits at 28 px 3 points worse, the other cases within 0.5 point).
CROP_EXTENT = 0.64
# Ink below this is set to none before the digit is read, the rest stretched back to [0, 1]: Gaussian
# pixel noise of std 0.1 ([-1, 1] units) then costs the digit reading 1 point instead of 7.
INK_FLOOR = 0.15


def _unit(images: torch.Tensor) -> torch.Tensor:
    """``(N, 3, H, W)`` uint8 or float in [-1, 1] -> float RGB in [0, 1]."""
    if images.dtype == torch.uint8:
        return images.float() / 255.0
    return (images.float().clamp(-1.0, 1.0) + 1.0) / 2.0


def _check(images: torch.Tensor) -> None:
    if not isinstance(images, torch.Tensor) or images.dim() != 4 or images.shape[1] != 3:
        shape = tuple(images.shape) if isinstance(images, torch.Tensor) else type(images).__name__
        raise GankitError(f"mnist-captions images must be a (N, 3, H, W) tensor, got {shape}")
    if images.shape[0] == 0:
        raise GankitError("mnist-captions images: no images")
    if images.shape[-1] < 8 or images.shape[-2] < 8:
        raise GankitError(f"mnist-captions images must be at least 8x8 pixels, got {tuple(images.shape[-2:])}")


def _palette(colours: dict[str, tuple[int, int, int]], device) -> torch.Tensor:
    return torch.tensor(list(colours.values()), dtype=torch.float32, device=device) / 255.0


def _border(h: int, w: int, device) -> torch.Tensor:
    b = max(1, round(min(h, w) / 16))  # 2 px at 32: a large digit leaves a margin of about 4
    m = torch.ones(h, w, dtype=torch.bool, device=device)
    m[b:h - b, b:w - b] = False
    return m


def read_colours(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """For RGB ``(N, 3, H, W)`` in [0, 1]: background index ``(N,)``, stroke index ``(N,)`` into
    the palettes of :mod:`gankit.data.captions`, and the ink ``(N, 1, H, W)`` in [0, 1] (the blend
    weight of the read stroke colour over the measured background)."""
    bg = x[:, :, _border(*x.shape[-2:], x.device)].median(dim=2).values  # (N, 3)
    background = torch.cdist(bg, _palette(BACKGROUND_COLOURS, x.device)).argmin(1)
    d = (x - bg[:, :, None, None]).flatten(2)  # (N, 3, P)
    weight = d.norm(dim=1)  # distance from the background
    costs, inks = [], []
    for colour in _palette(STROKE_COLOURS, x.device):
        u = colour[None, :] - bg  # (N, 3)
        a = ((d * u[:, :, None]).sum(1) / u.square().sum(1, keepdim=True).clamp_min(1e-6)).clamp(0, 1)
        residual = (d - a[:, None] * u[:, :, None]).norm(dim=1)
        costs.append((weight * residual).sum(1) / weight.sum(1).clamp_min(1e-6))
        inks.append(a)
    stroke = torch.stack(costs, 1).argmin(1)
    ink = torch.stack(inks, 1)[torch.arange(len(x), device=x.device), stroke]
    return background, stroke, ink.view(len(x), 1, *x.shape[-2:])


def ink_box(ink: torch.Tensor) -> torch.Tensor:
    """Bounding boxes ``(N, 4)`` float (top, left, bottom, right; bottom/right exclusive) of the
    ink ``(N, 1, H, W)`` above :data:`INK`, the outer :data:`TRIM` of ink pixels left out on each
    side. An image without ink gets an empty box at its centre."""
    h, w = ink.shape[-2:]
    mask = (ink[:, 0] > INK).float()
    boxes = []
    for profile, side in ((mask.sum(2), h), (mask.sum(1), w)):  # ink per row, per column
        total = profile.sum(1, keepdim=True)
        cum = profile.cumsum(1) / total.clamp_min(1e-6)
        lo = (cum <= TRIM).sum(1).float()  # first row/column past the trimmed share
        hi = (cum < 1 - TRIM).sum(1).float() + 1
        empty = total[:, 0] == 0
        boxes.append((torch.where(empty, torch.full_like(lo, side / 2), lo),
                      torch.where(empty, torch.full_like(hi, side / 2), hi)))
    (top, bottom), (left, right) = boxes
    return torch.stack([top, left, bottom, right], 1)


def read_sizes(ink: torch.Tensor) -> torch.Tensor:
    """Size index ``(N,)`` (0 small, 1 large) of the ink: the larger side of :func:`ink_box` over
    the image side above :data:`SIZE_THRESHOLD`."""
    box = ink_box(ink)
    extent = torch.maximum((box[:, 2] - box[:, 0]) / ink.shape[-2], (box[:, 3] - box[:, 1]) / ink.shape[-1])
    return (extent > SIZE_THRESHOLD).long()


def digit_crops(ink: torch.Tensor) -> torch.Tensor:
    """The ink ``(N, 1, H, W)`` as MNIST digits ``(N, 1, 28, 28)`` in [-1, 1]: a square around
    :func:`ink_box`, its side the box's larger side over :data:`CROP_EXTENT` (about the 20 px of 28
    of an MNIST digit), padded with no ink where it leaves the image, resized to 28x28. Ink below
    :data:`INK_FLOOR` is dropped first."""
    n = ink.shape[0]
    box = ink_box(ink)
    ink = ((ink - INK_FLOOR) / (1 - INK_FLOOR)).clamp(0, 1)
    cy, cx = (box[:, 0] + box[:, 2]) / 2, (box[:, 1] + box[:, 3]) / 2
    side = (torch.maximum(box[:, 2] - box[:, 0], box[:, 3] - box[:, 1]) / CROP_EXTENT).clamp_min(8).round().long()
    pad = int(side.max()) + 1
    padded = F.pad(ink, (pad, pad, pad, pad))
    out = torch.empty((n, 1, 28, 28), device=ink.device)
    for i in range(n):
        s = int(side[i])
        top, left = int(torch.round(cy[i] - s / 2)) + pad, int(torch.round(cx[i] - s / 2)) + pad
        crop = padded[i:i + 1, :, top:top + s, left:left + s]
        out[i:i + 1] = F.interpolate(crop, size=(28, 28), mode="bilinear", align_corners=False, antialias=s > 28)
    return out.clamp_(0, 1) * 2 - 1


@lru_cache(maxsize=1)
def _default_classifier() -> nn.Module:
    from gankit.metrics.mnist_classifier import load_mnist_classifier

    return load_mnist_classifier()


@torch.no_grad()
def read_caption_attributes(images: torch.Tensor, classifier: nn.Module | None = None, *,
                            batch: int = BATCH) -> torch.Tensor:
    """The attributes of ``mnist-captions`` images ``(N, 3, H, W)`` in [-1, 1] (or uint8), read
    from the pixels: int64 ``(N, 4)`` in the columns of
    :data:`~gankit.data.captions.CAPTION_ATTRIBUTES` (digit, stroke index, background index, size
    index), the encoding of ``render_mnist_captions(...).attributes``. ``classifier``: the digit
    reader, default the shipped MNIST CNN (:func:`~gankit.metrics.mnist_classifier.load_mnist_classifier`)."""
    _check(images)
    model = classifier if classifier is not None else _default_classifier()
    device = next(model.parameters()).device
    out = []
    for start in range(0, images.shape[0], batch):
        x = _unit(images[start:start + batch].to(device))
        background, stroke, ink = read_colours(x)
        digit = model(digit_crops(ink)).argmax(1)
        out.append(torch.stack([digit, stroke, background, read_sizes(ink)], 1).cpu())
    return torch.cat(out)


def caption_fidelity(images: torch.Tensor, target_attributes: torch.Tensor,
                     classifier: nn.Module | None = None) -> dict[str, float]:
    """How often generated ``mnist-captions`` images show what their captions asked for.

    ``images`` ``(N, 3, H, W)`` in [-1, 1] (or uint8); ``target_attributes`` int ``(N, 4)`` as in
    ``render_mnist_captions(...).attributes``. Returns the accuracy of each attribute, keyed
    ``digit``, ``stroke``, ``background`` and ``size``, and ``all``, the share of images with all
    four right. Real renders score about 1 on each; images unrelated to their captions score the
    chance of guessing (0.1 for the digit, 1/6 for the stroke, 1/4 for the background, 1/2 for size).
    """
    _check(images)
    target = torch.as_tensor(target_attributes).long().cpu()
    if target.dim() != 2 or target.shape != (images.shape[0], len(CAPTION_ATTRIBUTES)):
        raise GankitError(f"caption_fidelity: {images.shape[0]} images need ({images.shape[0]}, "
                          f"{len(CAPTION_ATTRIBUTES)}) target attributes, got {tuple(target.shape)}")
    limits = (10, len(STROKE_COLOURS), len(BACKGROUND_COLOURS), len(SIZES))
    for j, (name, k) in enumerate(zip(CAPTION_ATTRIBUTES, limits)):
        if bool(((target[:, j] < 0) | (target[:, j] >= k)).any()):
            raise GankitError(f"caption_fidelity: target {name} must be in 0..{k - 1}")
    right = read_caption_attributes(images, classifier) == target
    scores = {name: float(right[:, j].float().mean()) for j, name in enumerate(CAPTION_ATTRIBUTES)}
    scores["all"] = float(right.all(1).float().mean())
    return scores


__all__ = [
    "SIZE_THRESHOLD", "caption_fidelity", "digit_crops", "ink_box", "read_caption_attributes", "read_colours",
    "read_sizes",
]
