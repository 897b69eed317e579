"""Measurements of image-to-image translation: pure functions on image tensors in [-1, 1].

* paired tasks (Pix2Pix, Isola et al. 2017, arXiv:1611.07004): :func:`paired_scores` compares a
  translation with its ground truth by L1, PSNR and SSIM (Wang et al. 2004);
* cycle consistency (CycleGAN, Zhu et al. 2017, arXiv:1703.10593; DiscoGAN, Kim et al. 2017):
  :func:`cycle_error`, the mean L1 between x and F(G(x));
* content kept by a translation of digits: :func:`class_keep_rate` reads the class of each
  translated digit with the shipped MNIST classifier;
* attribute edits (StarGAN, Choi et al. 2018, arXiv:1711.09020) on the built-in
  ``mnist-attributes`` (:mod:`gankit.data.attributes`), where every attribute has a known
  rendering: :func:`read_mnist_attributes` reads Red, Light_Background and Thick back from pixels
  and :func:`attribute_edit_success` scores edits against their targets.

Uint8 images (as datasets hold them) are accepted wherever float images are and are mapped to
[-1, 1] first. Everything runs in batches of :data:`BATCH` images, so tens of thousands of
64x64 images fit in memory.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Literal

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torchmetrics.functional.image import peak_signal_noise_ratio, structural_similarity_index_measure

from gankit.data.attributes import MNIST_ATTRIBUTES, render_mnist_attributes, thick_kernel
from gankit.data.two_domain import LUMA, luma
from gankit.errors import GankitError

BATCH = 500
PSNR_CAP = 100.0  # dB: an image equal to its target (MSE 0, PSNR infinite) counts as 100 dB
RED_THRESHOLD = 0.5  # stroke redness (0 grey/white/black stroke, 1 pure red) above which an image is Red


def _signed(images: torch.Tensor) -> torch.Tensor:
    """uint8 -> [-1, 1]; float images clamped to [-1, 1] (generators may overshoot slightly)."""
    if images.dtype == torch.uint8:
        return images.float().div(127.5).sub(1.0)
    return images.float().clamp(-1.0, 1.0)


def _check_images(x: torch.Tensor, what: str = "images") -> None:
    if not isinstance(x, torch.Tensor) or x.dim() != 4:
        shape = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
        raise GankitError(f"{what} must be a (N, C, H, W) tensor, got {shape}")
    if x.shape[0] == 0:
        raise GankitError(f"{what}: no images")


def _check_pair(a: torch.Tensor, b: torch.Tensor, what: str) -> None:
    _check_images(a, what)
    _check_images(b, what)
    if a.shape != b.shape:
        raise GankitError(f"{what}: shapes differ, {tuple(a.shape)} vs {tuple(b.shape)}")


# ----------------------------------------------------------------------------- paired

def paired_scores(pred: torch.Tensor, target: torch.Tensor, *, batch: int = BATCH) -> dict[str, float]:
    """How close translations are to their ground truth, averaged over images.

    ``l1``: mean absolute error in [-1, 1] units (Pix2Pix's L1 term; 0 for equal images, at most
    2). ``psnr`` and ``ssim`` are computed on the images mapped to [0, 1] (data range 1):
    ``psnr`` is the mean over images of ``10 log10(1 / MSE)`` in dB, each image capped at
    :data:`PSNR_CAP` (an exact copy would be infinite); ``ssim`` the mean SSIM of torchmetrics'
    ``structural_similarity_index_measure`` with its defaults (11x11 Gaussian window, sigma 1.5,
    K1 0.01, K2 0.03, reflection padding, colour channels averaged). Images must be at least
    6 pixels on each side.
    """
    _check_pair(pred, target, "paired_scores")
    n = pred.shape[0]
    l1 = psnr = ssim = 0.0
    for start in range(0, n, batch):
        p = (_signed(pred[start:start + batch]) + 1) / 2
        t = (_signed(target[start:start + batch]).to(p.device) + 1) / 2
        l1 += float((p - t).abs().mean((1, 2, 3)).sum()) * 2  # [0, 1] units -> [-1, 1] units
        mse = (p - t).square().mean((1, 2, 3))
        per_image = peak_signal_noise_ratio(p, t, data_range=1.0, reduction="none", dim=(1, 2, 3))
        per_image = torch.where(mse > 0, per_image, torch.full_like(per_image, PSNR_CAP)).clamp(max=PSNR_CAP)
        psnr += float(per_image.double().sum())
        s = structural_similarity_index_measure(p, t, data_range=1.0, reduction="none")
        ssim += float(s.double().sum())
    return {"l1": l1 / n, "psnr": psnr / n, "ssim": ssim / n}


def cycle_error(x: torch.Tensor, x_reconstructed: torch.Tensor) -> float:
    """Mean absolute error between images and their reconstructions F(G(x)) in [-1, 1] units
    (the cycle-consistency loss of CycleGAN, Zhu et al. 2017, Eq. 2)."""
    _check_pair(x, x_reconstructed, "cycle_error")
    total = 0.0
    for start in range(0, x.shape[0], BATCH):
        a, b = _signed(x[start:start + BATCH]), _signed(x_reconstructed[start:start + BATCH])
        total += float((a - b.to(a.device)).abs().double().sum())
    return total / x.numel()


def sharpness(images: torch.Tensor) -> float:
    """Mean absolute 4-neighbour Laplacian of the luma, in [0, 1] pixel units: how much fine
    detail (edges, texture) images hold. Regression to the mean (an L1- or L2-trained network
    hedging between plausible outputs) blurs, so it lowers this; compare outputs with their
    targets (Isola et al. 2017, §4.3, discuss the blur of L1 alone)."""
    _check_images(images, "sharpness")
    kernel = torch.tensor([[0.0, 1.0, 0.0], [1.0, -4.0, 1.0], [0.0, 1.0, 0.0]]).view(1, 1, 3, 3)
    total, count = 0.0, 0
    for start in range(0, images.shape[0], BATCH):
        x = (_signed(images[start:start + BATCH]).cpu() + 1) / 2
        if x.shape[1] == 3:
            x = luma(x)
        lap = F.conv2d(x, kernel)
        total += float(lap.abs().double().sum())
        count += lap.numel()
    return total / count


# ----------------------------------------------------------------------------- class kept

def _border_mask(h: int, w: int, device) -> torch.Tensor:
    b = max(1, round(min(h, w) / 14))  # 2 px at 28: MNIST digits leave a margin of 4
    m = torch.ones(h, w, dtype=torch.bool, device=device)
    m[b:h - b, b:w - b] = False
    return m


def to_digit_grey(images: torch.Tensor, invert: bool | Literal["auto"] = "auto") -> torch.Tensor:
    """Images ``(N, 1 or 3, H, W)`` -> ``(N, 1, H, W)`` in [-1, 1] as the MNIST classifier wants:
    luminance of colour images, contrast stretched to the full range per image, and dark digits
    on light ground inverted (``invert=True``: all; ``"auto"``: each image whose border is
    brighter than its centre; ``False``: none)."""
    x = _signed(images)
    if x.shape[1] == 3:
        x = luma(x)
    elif x.shape[1] != 1:
        raise GankitError(f"digit images need 1 or 3 channels, got {x.shape[1]}")
    h, w = x.shape[-2:]
    if invert == "auto":
        border = _border_mask(h, w, x.device)
        centre = torch.zeros(h, w, dtype=torch.bool, device=x.device)
        centre[h // 4:h - h // 4, w // 4:w - w // 4] = True
        flip = x[:, 0][:, border].mean(1) > x[:, 0][:, centre].mean(1)
        x = torch.where(flip[:, None, None, None], -x, x)
    elif invert is True:
        x = -x
    elif invert is not False:
        raise GankitError(f"invert must be True, False or 'auto', got {invert!r}")
    lo = x.amin((1, 2, 3), keepdim=True)
    hi = x.amax((1, 2, 3), keepdim=True)
    return torch.where(hi - lo > 1e-3, (x - lo) / (hi - lo).clamp_min(1e-3) * 2 - 1, x)


@lru_cache(maxsize=1)
def _default_classifier() -> nn.Module:
    from gankit.metrics.mnist_classifier import load_mnist_classifier

    return load_mnist_classifier()


@torch.no_grad()
def classify_digits(images: torch.Tensor, classifier: nn.Module | None = None, *,
                    invert: bool | Literal["auto"] = "auto", batch: int = BATCH) -> torch.Tensor:
    """Digit class ``(N,)`` int64 of each image, read by ``classifier`` (default: the shipped MNIST
    CNN, which resizes any size to 28x28) after :func:`to_digit_grey`."""
    _check_images(images)
    model = classifier if classifier is not None else _default_classifier()
    device = next(model.parameters()).device
    out = []
    for start in range(0, images.shape[0], batch):
        x = to_digit_grey(images[start:start + batch].to(device), invert)
        out.append(model(x).argmax(1).cpu())
    return torch.cat(out)


def class_keep_rate(images: torch.Tensor, labels: torch.Tensor, classifier: nn.Module | None = None, *,
                    invert: bool | Literal["auto"] = "auto") -> float:
    """Share of translated digits whose class, as the MNIST classifier reads it, is still the
    source digit's label: 1.0 when a translation keeps every digit, ~0.1 when it keeps none.
    Colour images are read by their luminance; see :func:`to_digit_grey` for ``invert``."""
    _check_images(images)
    labels = torch.as_tensor(labels).reshape(-1).cpu()
    if labels.shape[0] != images.shape[0]:
        raise GankitError(f"{images.shape[0]} images but {labels.shape[0]} labels")
    return float((classify_digits(images, classifier, invert=invert) == labels).float().mean())


def stroke_colours(images: torch.Tensor, share: float = 0.15) -> torch.Tensor:
    """The mean RGB ``(N, 3)`` in [0, 1] of each image's brightest ``share`` of pixels (by
    luma): the ink colour of a digit drawn on black."""
    _check_images(images)
    x = (_signed(images) + 1) / 2
    if x.shape[1] == 1:
        x = x.expand(-1, 3, -1, -1)
    flat = x.flatten(2)  # (N, 3, HW)
    k = max(1, int(share * flat.shape[2]))
    top = luma(x).flatten(1).topk(k, dim=-1).indices  # (N, k) brightest pixels
    return flat.gather(2, top[:, None, :].expand(-1, 3, -1)).mean(2)


def colour_class_rate(images: torch.Tensor, labels: torch.Tensor, palette: np.ndarray | torch.Tensor) -> float:
    """Share of digits whose ink colour (:func:`stroke_colours`, scaled to a maximum channel of
    1) is nearest to their class's colour in ``palette`` ((classes, 3), 0-255, scaled alike):
    how often a grey -> class-colour translation (``mnist-colour``) picks the right colour."""
    labels = torch.as_tensor(labels).reshape(-1).cpu()
    if labels.shape[0] != images.shape[0]:
        raise GankitError(f"{images.shape[0]} images but {labels.shape[0]} labels")

    def shade(c: torch.Tensor) -> torch.Tensor:  # brightness left out: anti-aliased ink is darker
        return c / c.amax(1, keepdim=True).clamp_min(1e-3)

    colours = shade(torch.as_tensor(np.asarray(palette), dtype=torch.float32))
    nearest = torch.cdist(shade(stroke_colours(images).cpu()), colours).argmin(1)
    return float((nearest == labels).float().mean())


# ----------------------------------------------------------------------------- mnist-attributes

def _background_and_alpha(images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """RGB in [0, 1] ``(N, 3, H, W)``, background colour ``(N, 3)`` (median of the border
    pixels) and ink ``(N, 1, H, W)``: the largest per-channel distance from the background.
    For every stroke/background combination of mnist-attributes that distance is the digit's
    own alpha: pure red differs from black in R and from white in G and B."""
    x = (_signed(images) + 1) / 2
    if x.shape[1] == 1:
        x = x.expand(-1, 3, -1, -1)
    elif x.shape[1] != 3:
        raise GankitError(f"mnist-attributes images have 3 channels, got {x.shape[1]}")
    border = _border_mask(*x.shape[-2:], x.device)
    bg = x[:, :, border].median(dim=2).values
    alpha = (x - bg[:, :, None, None]).abs().amax(1, keepdim=True).clamp(0, 1)
    return x, bg, alpha


def thickness(alpha: torch.Tensor) -> torch.Tensor:
    """How much of the ink ``(N, 1, H, W)`` survives an erosion by the ``Thick`` filter
    (:func:`~gankit.data.attributes.thick_kernel`, a grey min filter): ``sum(erode(a)^2) /
    sum(a^2)``, near 0 for thin strokes (narrower than the filter) and well above for thick
    ones. The minimum ignores speckle noise and squaring weights the stroke cores, so this
    reads Thick right under noise and mild blur where a width from area / contour does not."""
    a = alpha.float()
    k = thick_kernel(a.shape[-1])
    lo, hi = (k - 1) // 2, k // 2
    eroded = -F.max_pool2d(F.pad(-a, (lo, hi, lo, hi), value=-2.0), k, 1)
    total = a.square().sum((1, 2, 3))
    return torch.where(total > 0, eroded.square().sum((1, 2, 3)) / total.clamp_min(1e-12), torch.zeros_like(total))


@lru_cache(maxsize=8)
def thick_threshold(resolution: int) -> float:
    """:func:`thickness` above which an image of this size reads as ``Thick``: midway between the
    99th percentile of 2,000 built-in digits drawn thin and the 1st percentile of the same digits
    drawn thick (digits 8,000-9,999, so the first 2,000 stay a fair test)."""
    from gankit.data.builtin import _mnist
    from gankit.data.images import resize_center_crop_array

    digits = _mnist(28)[0][8000:]
    if resolution != 28:  # as _mnist(resolution) resizes, without resizing all 10,000
        digits = np.stack([resize_center_crop_array(d, resolution) for d in digits])
    attrs = np.zeros((len(digits), len(MNIST_ATTRIBUTES)), np.float32)
    thin = thickness(_background_and_alpha(render_mnist_attributes(digits, attrs))[2])
    attrs[:, MNIST_ATTRIBUTES.index("Thick")] = 1
    thick = thickness(_background_and_alpha(render_mnist_attributes(digits, attrs))[2])
    return float((torch.quantile(thin, 0.99) + torch.quantile(thick, 0.01)) / 2)


@torch.no_grad()
def read_mnist_attributes(images: torch.Tensor, *, batch: int = BATCH) -> torch.Tensor:
    """(Red, Light_Background, Thick) of ``mnist-attributes`` images ``(N, 3, H, W)`` in [-1, 1]
    (or uint8) as a float32 ``(N, 3)`` tensor of 0/1, read from the pixels with no learning:

    * ``Light_Background``: the median border colour has luminance above 0.5;
    * ``Red``: over the ink (distance from the background), the change from the background is
      red, ``d_R - (d_G + d_B) / 2``, on average more than half the ink (pure red gives 1, a
      white, black or grey stroke 0);
    * ``Thick``: the share of ink that survives an erosion by the Thick filter
      (:func:`thickness`) is above :func:`thick_threshold` for the image size.

    Blank images read as (0, background, 0).
    """
    _check_images(images)
    limit = thick_threshold(int(images.shape[-2]))
    out = []
    for start in range(0, images.shape[0], batch):
        x, bg, alpha = _background_and_alpha(images[start:start + batch])
        light = (bg * torch.tensor(LUMA, device=bg.device)).sum(1) > 0.5
        d = x - bg[:, :, None, None]
        redness = (alpha[:, 0] * (d[:, 0] - (d[:, 1] + d[:, 2]) / 2)).sum((1, 2))
        weight = alpha[:, 0].square().sum((1, 2))
        red = redness > RED_THRESHOLD * weight.clamp_min(1e-6)
        thick = thickness(alpha) > limit
        out.append(torch.stack([red, light, thick], 1).float().cpu())
    return torch.cat(out)


@torch.no_grad()
def digits_from_attribute_images(images: torch.Tensor, *, batch: int = BATCH) -> torch.Tensor:
    """Undo colour and background of ``mnist-attributes`` images: ``(N, 1, H, W)`` in [-1, 1],
    a white digit on black as MNIST draws it (the ink of :func:`read_mnist_attributes`), for
    the MNIST classifier. Thick strokes stay thick: eroding them back read no better."""
    _check_images(images)
    out = []
    for start in range(0, images.shape[0], batch):
        alpha = _background_and_alpha(images[start:start + batch])[2]
        out.append(alpha * 2 - 1)
    return torch.cat(out)


def attribute_edit_success(edited: torch.Tensor, target_attributes: torch.Tensor, source_labels: torch.Tensor,
                           classifier: nn.Module | None = None) -> dict[str, float]:
    """Score StarGAN-style edits of ``mnist-attributes`` digits: ``edited`` images ``(N, 3, H, W)``
    against the attributes they were asked to have ``(N, 3)`` and the source digits' classes.

    Returns the accuracy of each attribute (keyed by name: ``Red``, ``Light_Background``,
    ``Thick``), ``all_attributes`` (share of edits with every attribute right), ``class_kept``
    (share whose digit still reads as the source class, through
    :func:`digits_from_attribute_images`) and ``success`` (both at once).
    """
    _check_images(edited, "edited images")
    target = torch.as_tensor(target_attributes).float().cpu().reshape(edited.shape[0], -1) > 0.5
    labels = torch.as_tensor(source_labels).reshape(-1).cpu()
    if target.shape[1] != len(MNIST_ATTRIBUTES) or labels.shape[0] != edited.shape[0]:
        raise GankitError(f"attribute_edit_success: {edited.shape[0]} images need ({edited.shape[0]}, "
                          f"{len(MNIST_ATTRIBUTES)}) targets and {edited.shape[0]} labels, got "
                          f"{tuple(target.shape)} and {labels.shape[0]}")
    read = read_mnist_attributes(edited) > 0.5
    right = read == target
    kept = classify_digits(digits_from_attribute_images(edited), classifier, invert=False) == labels
    every = right.all(1)
    scores = {name: float(right[:, i].float().mean()) for i, name in enumerate(MNIST_ATTRIBUTES)}
    scores.update(all_attributes=float(every.float().mean()), class_kept=float(kept.float().mean()),
                  success=float((every & kept).float().mean()))
    return scores


__all__ = [
    "PSNR_CAP", "attribute_edit_success", "class_keep_rate", "classify_digits", "cycle_error",
    "digits_from_attribute_images", "paired_scores", "read_mnist_attributes", "thick_threshold", "thickness",
    "to_digit_grey",
]
