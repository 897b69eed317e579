"""Quality measures for a model trained on ONE image (SinGAN: Shaham, Dekel & Michaeli 2019, arXiv:1905.01164, §4).

* :func:`sifid`: Single-Image FID, per fake. The Fréchet distance between the Gaussians fitted to the
  *internal* statistics of an early Inception layer: each position of the feature map is one sample.
* :func:`patch_swd`: an offline score that needs no network: the multi-scale sliced Wasserstein
  distance of 7x7 patches (Karras et al. 2018, ProGAN's SWD, :mod:`gankit.metrics.swd`) between the
  real image and each fake.
* :func:`diversity`: the paper's diversity, per-pixel grey-level std over the fakes / std of the real.

Images are float tensors in [-1, 1], NCHW, any H x W, 1 or 3 channels; ``real`` is one image (C, H, W)
or (1, C, H, W); ``fakes`` a batch (N, C, H, W) or a list of same-size images (the real's size may
differ). Both fidelity scores are ~0 for an exact copy of the real image, so report them beside
:func:`diversity`: a memorising model scores perfectly on fidelity and ~0 on diversity.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from gankit.errors import GankitError

from .scores import feature_stats, fid_from_stats
from .swd import laplacian_pyramid, pyramid_resolutions, sliced_wasserstein

LUMA = (0.299, 0.587, 0.114)  # ITU-R BT.601 grey level of RGB
Images = torch.Tensor | Sequence[torch.Tensor]  # (N, C, H, W), or same-size (C, H, W) / (1, C, H, W) images


def _images(x: torch.Tensor, name: str) -> torch.Tensor:
    if not isinstance(x, torch.Tensor) or x.dim() != 4 or x.shape[1] not in (1, 3) or min(x.shape[2:]) < 1:
        shape = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
        raise GankitError(f"{name} must be (N, 1 or 3, H, W) images, got {shape}")
    if not x.is_floating_point():
        raise GankitError(f"{name} must be float images in [-1, 1], got dtype {x.dtype}")
    return x


def _real_and_fakes(real: torch.Tensor, fakes: Images, min_fakes: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
    if isinstance(real, torch.Tensor) and real.dim() == 3:
        real = real[None]
    if isinstance(fakes, (list, tuple)):  # separate images: they must share one size
        if not fakes:
            raise GankitError("no fake images given")
        fakes = [_images(f[None] if isinstance(f, torch.Tensor) and f.dim() == 3 else f, "fakes") for f in fakes]
        if len({tuple(f.shape[1:]) for f in fakes}) > 1:
            raise GankitError(f"the fakes must share one size, got {sorted({tuple(f.shape[1:]) for f in fakes})}")
        fakes = torch.cat(fakes)
    real, fakes = _images(real, "real"), _images(fakes, "fakes")
    if real.shape[0] != 1:
        raise GankitError(f"real must be ONE image (C, H, W) or (1, C, H, W), got {real.shape[0]} images")
    if fakes.shape[1] != real.shape[1]:
        raise GankitError(f"fakes have {fakes.shape[1]} channels but the real image has {real.shape[1]}")
    if fakes.shape[0] < min_fakes:
        raise GankitError(f"need at least {min_fakes} fake images, got {fakes.shape[0]}")
    return real, fakes


# ---- SIFID --------------------------------------------------------------------------------------
def sifid_extractor(weights_path: str | os.PathLike | None = None, *, dims: int = 192,
                    device: str | torch.device = "cpu") -> nn.Module:
    """The early layers of the FID Inception-v3 used by SIFID, as ``(N, 3, H, W) -> (N, dims, h, w)``.

    ``dims=192`` (default): the output of Conv2d_4a_3x3 (after Conv2d_1a, 2a, 2b, max-pool, Conv2d_3b), "the
    convolutional layer just before the second pooling layer" of the paper, and what the authors' latest
    ``SIFID/sifid_score.py`` (tamarott/SinGAN 963b528) computes. ``dims=64``: the output of Conv2d_2b_3x3,
    BEFORE the first max-pool, which that script used from its first release (ee59494, ``dims=64``; its
    ``inception.py`` block 0 omits pytorch-fid's pool). The weights are pytorch-fid's FID Inception, found
    on disk only (:func:`gankit.metrics.features.find_inception_weights`; else a one-line
    :class:`GankitError` says where to put them). The authors used torchvision's ImageNet weights, so
    values are comparable between gankit runs, not with the paper's tables.
    """
    from .features import load_inception

    if dims not in (64, 192):
        raise GankitError(f"SIFID dims must be 64 or 192, got {dims}")
    net = load_inception(weights_path, device).net
    layers = [net.Conv2d_1a_3x3, net.Conv2d_2a_3x3, net.Conv2d_2b_3x3]
    if dims == 192:
        layers += [net.maxpool1, net.Conv2d_3b_1x1, net.Conv2d_4a_3x3]
    return nn.Sequential(*layers).eval().requires_grad_(False)


@torch.no_grad()
def _spatial_features(extractor: nn.Module, images: torch.Tensor) -> list[torch.Tensor]:
    """Per image, the (h*w, C) feature vectors, one per position of the (C, h, w) map."""
    param = next(extractor.parameters(), None)
    x = images.float().to(param.device if param is not None else images.device)
    if x.shape[1] == 1:
        x = x.expand(-1, 3, -1, -1)
    try:
        fmap = extractor(x)
    except RuntimeError as exc:  # a convolution bigger than what is left of the image
        if "size" not in str(exc):
            raise
        raise GankitError(f"images of {x.shape[2]}x{x.shape[3]} are too small for the SIFID extractor: "
                          f"{str(exc).splitlines()[0]}") from None
    if not isinstance(fmap, torch.Tensor) or fmap.dim() != 4:
        raise GankitError(f"the SIFID extractor must return (N, C, h, w) feature maps, got "
                          f"{tuple(fmap.shape) if isinstance(fmap, torch.Tensor) else type(fmap).__name__}")
    if fmap.shape[2] * fmap.shape[3] < 2:
        raise GankitError(f"images of {images.shape[2]}x{images.shape[3]} are too small for SIFID: "
                          f"the feature map has {fmap.shape[2]}x{fmap.shape[3]} positions (at least 2 are needed)")
    return list(fmap.flatten(2).transpose(1, 2).cpu())


def sifid(real: torch.Tensor, fakes: Images, extractor: nn.Module, *, batch: int = 8) -> torch.Tensor:
    """Single-Image FID (SinGAN §4) of each fake against the real image: (N,) float64, lower is better.

    Each image's (C, h, w) feature map from ``extractor`` (:func:`sifid_extractor`, or any module mapping
    (N, 3, H, W) in [-1, 1] to (N, C, h, w)) gives h*w samples of C-D; their mean and (unbiased)
    covariance are compared with the Fréchet distance (:func:`gankit.metrics.scores.fid_from_stats`),
    as the authors' ``sifid_score.py`` does with ``np.cov`` and ``scipy.linalg.sqrtm``. No resizing
    (their ``InceptionV3`` has ``resize_input=False``) and no rescaling: they map [0, 1] to [-1, 1],
    the range these images already have. Grey images are repeated to RGB.
    """
    real, fakes = _real_and_fakes(real, fakes)
    mu_r, cov_r = feature_stats(_spatial_features(extractor, real)[0])
    out = []
    for i in range(0, fakes.shape[0], batch):
        for f in _spatial_features(extractor, fakes[i:i + batch]):
            out.append(fid_from_stats(mu_r, cov_r, *feature_stats(f)))
    return torch.tensor(out, dtype=torch.float64)


# ---- multi-scale patch SWD ----------------------------------------------------------------------
def _patches(level: torch.Tensor, nhood: int, count: int, seed: int) -> torch.Tensor:
    """(N * P, C, nhood, nhood) neighbourhoods wholly inside each image: all positions when there are at most
    ``count``, else ``count`` distinct ones drawn with ``seed`` (so same-size images share them)."""
    c, h, w = level.shape[1:]
    if h < nhood or w < nhood:  # a tiny level: pad so that one neighbourhood fits, as swd.py does
        level = F.pad(level, (0, max(0, nhood - w), 0, max(0, nhood - h)), mode="replicate")
        h, w = level.shape[-2:]
    ph, pw = h - nhood + 1, w - nhood + 1
    pos = torch.arange(ph * pw)
    if count < pos.numel():
        pos = torch.randperm(pos.numel(), generator=torch.Generator().manual_seed(seed))[:count]
    off = torch.arange(nhood)
    yy = (pos // pw)[:, None, None] + off[None, :, None]
    xx = (pos % pw)[:, None, None] + off[None, None, :]
    patches = level[:, :, yy.to(level.device), xx.to(level.device)]  # (N, C, P, k, k)
    return patches.transpose(1, 2).reshape(-1, c, nhood, nhood)


def patch_swd(real: torch.Tensor, fakes: Images, *, seed: int = 0, patches: int = 4096, nhood: int = 7,
              levels: int | None = None) -> torch.Tensor:
    """Multi-scale sliced Wasserstein distance (x1e3) of 7x7 patches, real vs each fake: (N,) float64.

    Why: SinGAN is trained to match the internal distribution of patches of one image at every scale
    of a pyramid; this compares exactly that, with no downloaded network. Both images are split into a
    Laplacian pyramid (:func:`gankit.metrics.swd.laplacian_pyramid`, finest band first, the last level the
    low-pass residual; down to ~16 px on the smaller side, or ``levels`` levels). From each level, all
    ``nhood`` x ``nhood`` neighbourhoods are taken, or ``patches`` distinct random ones where there are more
    (the same positions in the real image and in every fake of its size), and the two sets are compared
    with ProGAN's sliced Wasserstein distance (Karras et al. 2018, §5 and appendix D;
    :func:`gankit.metrics.swd.sliced_wasserstein`: 512 random directions seeded by ``seed`` and the level,
    the same for every fake). The score is the mean over levels; deterministic for a seed.

    Two departures from the image-set SWD of :mod:`gankit.metrics.swd`, both because there is ONE real
    image: positions are drawn without replacement (its ``patch_descriptors`` draws 128 per image with
    replacement, which for one image leaves a sampling-noise floor as large as the differences measured),
    and both sets are standardised per channel with the REAL image's statistics (ProGAN standardises each
    set by its own, which would ignore a fake's lost contrast or shifted colour). So the score rises for
    blurry samples (the fine bands lose energy) and for wrong structure (coarse levels). An exact copy of
    the real scores 0 and a near-copy ~0: report it beside :func:`diversity`.
    """
    real, fakes = _real_and_fakes(real, fakes)
    side = min(real.shape[2], real.shape[3], fakes.shape[2], fakes.shape[3])
    if levels is None:
        levels = len(pyramid_resolutions(side))
    if levels < 1 or patches < 1 or nhood < 1 or nhood % 2 == 0:
        raise GankitError(f"patch_swd needs levels >= 1, patches >= 1 and an odd nhood, "
                          f"got {levels}, {patches}, {nhood}")
    if side >> (levels - 1) < 1:
        raise GankitError(f"{levels} pyramid levels do not fit images whose smaller side is {side} px")
    pyr_real = laplacian_pyramid(real.float(), levels)
    pyr_fakes = laplacian_pyramid(fakes.float(), levels)
    scores = torch.zeros(fakes.shape[0], levels, dtype=torch.float64)
    for lvl, (lr, lf) in enumerate(zip(pyr_real, pyr_fakes)):
        desc_real = _patches(lr, nhood, patches, seed * 1000 + lvl)
        mean = desc_real.mean(dim=(0, 2, 3), keepdim=True)
        std = desc_real.std(dim=(0, 2, 3), keepdim=True).clamp_min(1e-8)
        a = ((desc_real - mean) / std).flatten(1)
        for i in range(fakes.shape[0]):
            b = ((_patches(lf[i:i + 1], nhood, patches, seed * 1000 + lvl) - mean) / std).flatten(1)
            scores[i, lvl] = 1e3 * sliced_wasserstein(a, b, seed=seed + lvl)
    return scores.mean(dim=1)


# ---- diversity ----------------------------------------------------------------------------------
def _grey(x: torch.Tensor) -> torch.Tensor:
    if x.shape[1] == 1:
        return x[:, 0].double()
    return sum(w * x[:, c].double() for c, w in enumerate(LUMA))


def diversity(real: torch.Tensor, fakes: Images) -> float:
    """SinGAN's diversity (§4): the std of each pixel's intensity over the fakes, averaged over pixels,
    divided by the std of the real image's intensity. Intensity is the grey level (luma 0.299 R +
    0.587 G + 0.114 B for RGB); both stds are the sample (n - 1) std. The fakes must share one size
    (the real may differ) and at least 2 are needed. 0 for identical fakes; ~s / std(real) for fakes
    that differ by independent noise of std s. Higher means more varied samples, not better ones.
    """
    real, fakes = _real_and_fakes(real, fakes, min_fakes=2)
    std_real = float(_grey(real).std())
    if std_real == 0:
        raise GankitError("the real image is flat (its intensity std is 0), so diversity is undefined")
    return float(_grey(fakes).std(dim=0).mean()) / std_real
