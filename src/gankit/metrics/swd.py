"""Multi-scale sliced Wasserstein distance (Karras et al. 2018, ProGAN section 5 and appendix D).

Each image set is decomposed into a Laplacian pyramid (from the full resolution down to 16 px);
from every level 128 random 7x7 neighbourhoods are taken per image, normalised per channel (mean
and std over each set's own descriptors), and the two descriptor sets are compared with the sliced
Wasserstein distance: 4 repeats of 128 random unit directions (512 projections, as in the paper's
code), sorted projections, mean absolute difference. Reported x1e3 per level (highest resolution
first) and averaged. Needs no network and works on any image data. A port of the paper's
``metrics/sliced_wasserstein.py`` to torch.

Patch positions come from a generator seeded with ``seed`` and are the same for both sets (they
depend on the image index, not its content), so a set compared with itself scores exactly 0.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

_G1 = torch.tensor([1.0, 4.0, 6.0, 4.0, 1.0])
GAUSS = (_G1[:, None] * _G1[None, :]) / 256.0


def _blur(x: torch.Tensor, scale: float = 1.0) -> torch.Tensor:
    c = x.shape[1]
    k = (GAUSS * scale).to(x)[None, None].expand(c, 1, 5, 5)
    pad = min(2, x.shape[-1] - 1, x.shape[-2] - 1)
    mode = "reflect" if pad == 2 else "replicate"
    x = F.pad(x, (2, 2, 2, 2), mode=mode)
    return F.conv2d(x, k, groups=c)


def pyr_down(x: torch.Tensor) -> torch.Tensor:
    """Gaussian blur then keep every second pixel (like cv2.pyrDown, scipy 'mirror' edges)."""
    return _blur(x)[:, :, ::2, ::2]


def pyr_up(x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Zero-insertion upsampling then blur x4 (like cv2.pyrUp), cropped to ``size``."""
    n, c, h, w = x.shape
    up = x.new_zeros(n, c, h * 2, w * 2)
    up[:, :, ::2, ::2] = x
    return _blur(up, 4.0)[:, :, :size[0], :size[1]]


def pyramid_resolutions(resolution: int, min_resolution: int = 16) -> list[int]:
    res, out = resolution, []
    while res >= min_resolution or not out:
        out.append(res)
        res //= 2
    return out


def laplacian_pyramid(x: torch.Tensor, num_levels: int) -> list[torch.Tensor]:
    """Band-pass levels, finest first; the last level is the low-pass residual."""
    levels = [x.float()]
    for _ in range(1, num_levels):
        levels.append(pyr_down(levels[-1]))
        levels[-2] = levels[-2] - pyr_up(levels[-1], tuple(levels[-2].shape[-2:]))
    return levels


def patch_descriptors(level: torch.Tensor, *, nhood: int = 7, per_image: int = 128,
                      generator: torch.Generator) -> torch.Tensor:
    """(N * per_image, C, nhood, nhood) random neighbourhoods (wholly inside the image)."""
    n, c, h, w = level.shape
    half = nhood // 2
    if h < nhood or w < nhood:  # tiny levels: pad so a neighbourhood fits
        level = F.pad(level, (0, max(0, nhood - w), 0, max(0, nhood - h)), mode="replicate")
        n, c, h, w = level.shape
    ys = torch.randint(half, h - half, (n, per_image), generator=generator)
    xs = torch.randint(half, w - half, (n, per_image), generator=generator)
    off = torch.arange(-half, half + 1)
    yy = (ys[:, :, None, None] + off[None, None, :, None]).expand(n, per_image, nhood, nhood)
    xx = (xs[:, :, None, None] + off[None, None, None, :]).expand(n, per_image, nhood, nhood)
    idx = torch.arange(n)[:, None, None, None].expand_as(yy)
    patches = level[idx, :, yy.to(level.device), xx.to(level.device)]  # (N, P, k, k, C)
    return patches.permute(0, 1, 4, 2, 3).reshape(n * per_image, c, nhood, nhood)


def finalize_descriptors(desc: torch.Tensor) -> torch.Tensor:
    """Per-channel standardisation over the whole set, then flatten to (M, C*k*k)."""
    mean = desc.mean(dim=(0, 2, 3), keepdim=True)
    std = desc.std(dim=(0, 2, 3), keepdim=True).clamp_min(1e-8)
    return ((desc - mean) / std).reshape(desc.shape[0], -1)


def swd_descriptors(images: torch.Tensor, *, seed: int = 0, batch: int = 256, nhood: int = 7,
                    per_image: int = 128, min_resolution: int = 16) -> list[torch.Tensor]:
    """Finalised descriptors per pyramid level for images (N, C, H, W) in any float range."""
    res = min(images.shape[-2:])
    num_levels = len(pyramid_resolutions(res, min_resolution))
    gens = [torch.Generator().manual_seed(seed * 1000 + lvl) for lvl in range(num_levels)]
    per_level: list[list[torch.Tensor]] = [[] for _ in range(num_levels)]
    for i in range(0, images.shape[0], batch):
        pyr = laplacian_pyramid(images[i:i + batch].float(), num_levels)
        for lvl, level in enumerate(pyr):
            per_level[lvl].append(patch_descriptors(level, nhood=nhood, per_image=per_image, generator=gens[lvl]))
    return [finalize_descriptors(torch.cat(parts)) for parts in per_level]


def sliced_wasserstein(a: torch.Tensor, b: torch.Tensor, *, dir_repeats: int = 4, dirs_per_repeat: int = 128,
                       seed: int = 0, chunk: int = 32) -> float:
    """Mean over repeats of the mean |sorted(a @ d) - sorted(b @ d)| over random unit directions d."""
    m = min(a.shape[0], b.shape[0])
    if a.shape[0] != b.shape[0]:  # equal counts are needed to match sorted projections
        gen = torch.Generator().manual_seed(seed + 7)
        a = a[torch.randperm(a.shape[0], generator=gen)[:m]]
        b = b[torch.randperm(b.shape[0], generator=gen)[:m]]
    gen = torch.Generator().manual_seed(seed)
    results = []
    for _ in range(dir_repeats):
        dirs = torch.randn(a.shape[1], dirs_per_repeat, generator=gen).to(a)
        dirs = dirs / dirs.norm(dim=0, keepdim=True)
        total = 0.0
        for j in range(0, dirs_per_repeat, chunk):
            d = dirs[:, j:j + chunk]
            # (dirs, M) rows sorted with NumPy: several times faster than torch.sort on CPU
            pa = np.sort((d.T @ a.T).cpu().numpy(), axis=1)
            pb = np.sort((d.T @ b.T).cpu().numpy(), axis=1)
            total += float(np.abs(pa - pb).sum(dtype=np.float64))
        results.append(total / (m * dirs_per_repeat))
    return sum(results) / len(results)


def swd_from_descriptors(real: list[torch.Tensor], fake: list[torch.Tensor], *, seed: int = 0,
                         dir_repeats: int = 4, dirs_per_repeat: int = 128) -> list[float]:
    """SWD x1e3 per level (finest first)."""
    return [1e3 * sliced_wasserstein(r, f, seed=seed + lvl, dir_repeats=dir_repeats, dirs_per_repeat=dirs_per_repeat)
            for lvl, (r, f) in enumerate(zip(real, fake))]


def swd(real: torch.Tensor, fake: torch.Tensor, *, seed: int = 0, per_image: int = 128, dir_repeats: int = 4,
        dirs_per_repeat: int = 128) -> dict:
    """``{"swd": average, "swd_levels": [...], "swd_resolutions": [...]}`` of two image sets."""
    levels = swd_from_descriptors(swd_descriptors(real, seed=seed, per_image=per_image),
                                  swd_descriptors(fake, seed=seed, per_image=per_image), seed=seed,
                                  dir_repeats=dir_repeats, dirs_per_repeat=dirs_per_repeat)
    res = pyramid_resolutions(min(real.shape[-2:]))
    return {"swd": sum(levels) / len(levels), "swd_levels": levels, "swd_resolutions": res}
