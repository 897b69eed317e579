"""Style mixing and the truncation strip for style-based generators (StyleGAN, Karras et al.
2019, arXiv:1812.04948, §3.1 and Fig. 3; StyleGAN2 App. C).

The synthesis network takes one w per layer (W+). Copying a second image's w into a range of
layers mixes the two at a scale: the coarse layers (4x4 to 8x8) carry pose, face shape and
glasses; the middle ones (16x16 to 32x32) finer features such as hair style and eyes; the fine
ones (64x64 and up) colour scheme and micro-structure (StyleGAN §3.1).

Layer i of a generator of resolution R works at min(4 * 2^ceil(i / 2), R): layer 0 is the 4x4
convolution, layers 2k - 1 and 2k the two convolutions at 4 * 2^k (the first also feeds the
previous block's ToRGB), and the last layer the final ToRGB.
"""

from __future__ import annotations

import math

import torch

from gankit.errors import GankitError

GROUPS: dict[str, tuple[int, int]] = {"coarse": (4, 8), "middle": (16, 32), "fine": (64, 1 << 30)}


def layer_resolution(index: int, resolution: int) -> int:
    """The resolution at which style layer ``index`` acts."""
    return min(4 * 2 ** math.ceil(index / 2), resolution)


def style_layers(spec: str, num_ws: int, resolution: int) -> list[int]:
    """Layer indices for ``coarse`` | ``middle`` | ``fine`` | ``A-B`` (inclusive) | ``N``."""
    text = spec.strip().lower()
    if text in GROUPS:
        lo, hi = GROUPS[text]
        layers = [i for i in range(num_ws) if lo <= layer_resolution(i, resolution) <= hi]
        if not layers:
            raise GankitError(f"a {resolution}x{resolution} generator has no {text} layers "
                              f"(resolutions {lo}-{min(hi, 1024)}); give a range within 0-{num_ws - 1}")
        return layers
    try:
        a, sep, b = text.partition("-")
        lo, hi = int(a), int(b) if sep else int(a)  # "3-" is no range (int("") refuses it)
    except ValueError:
        raise GankitError(f"--layers takes coarse, middle, fine or a range A-B, got {spec!r}") from None
    if not 0 <= lo <= hi < num_ws:
        raise GankitError(f"layer range {spec!r} is outside the network: it has style layers 0-{num_ws - 1}")
    return list(range(lo, hi + 1))


def seed_latents(model, seeds: list[int]) -> torch.Tensor:
    """One z per seed, the same z ``gankit sample --seed S --n 1`` draws."""
    return torch.cat([model.latents(1, seed=s) for s in seeds])


@torch.no_grad()
def style_mix(model, row_seeds: list[int], col_seeds: list[int], layers: list[int], *, truncation: float = 1.0,
              noise: str = "const") -> tuple[torch.Tensor, int]:
    """The style-mixing figure (StyleGAN Fig. 3): ``(images, nrow)`` for a grid of (1 + rows) x
    (1 + cols) cells. The top row shows the column sources, the left column the row sources (the
    corner is blank); cell (r, c) is row r's w with column c's w on ``layers``."""
    rows = model.mapping(seed_latents(model, row_seeds), truncation=truncation)
    cols = model.mapping(seed_latents(model, col_seeds), truncation=truncation)
    mixed = rows[:, None].repeat(1, len(col_seeds), 1, 1)  # (R, C, L, D)
    mixed[:, :, layers] = cols[None, :, layers]
    render = lambda ws: model.synthesis(ws, noise=noise).clamp(-1, 1).float().cpu()  # noqa: E731
    row_images, col_images = render(rows), render(cols)
    cells = render(mixed.flatten(0, 1)).view(len(row_seeds), len(col_seeds), *row_images.shape[1:])
    blank = torch.ones_like(row_images[:1])
    grid = [torch.cat([blank, col_images])]
    for r in range(len(row_seeds)):
        grid.append(torch.cat([row_images[r:r + 1], cells[r]]))
    return torch.cat(grid), len(col_seeds) + 1


@torch.no_grad()
def truncation_strip(model, seeds: list[int], psis: list[float], *, cutoff: int | None = None,
                     noise: str = "const") -> tuple[torch.Tensor, int]:
    """One row per seed, one column per psi (e.g. 1.0 -> 0.0): w pulled towards the mean w."""
    z = seed_latents(model, seeds)
    columns = [model.synthesis(model.mapping(z, truncation=psi, truncation_cutoff=cutoff), noise=noise)
               for psi in psis]
    images = torch.stack(columns, dim=1).flatten(0, 1)  # row-major: seed, then psi
    return images.clamp(-1, 1).float().cpu(), len(psis)


def parse_seeds(text: str) -> list[int]:
    """``"1,2,5-8"`` -> [1, 2, 5, 6, 7, 8]."""
    seeds: list[int] = []
    try:
        for part in filter(None, (p.strip() for p in text.split(","))):
            a, sep, b = part.partition("-")
            if sep and a and int(b) < int(a):  # "5-1" gave no seeds, silently
                raise ValueError(part)
            seeds.extend(range(int(a), int(b) + 1) if sep and a else [int(part)])
    except ValueError:
        raise GankitError(f"seeds are given as a list such as 1,2,5-8 (ranges low-high); got {text!r}") from None
    if not seeds:
        raise GankitError(f"no seeds in {text!r}")
    return seeds
