"""The whole SinGAN generator: every scale's G_n, the image pyramid and what sampling needs.

Shaham, Dekel & Michaeli 2019, "SinGAN" (arXiv:1905.01164), §2.1 and Eq. 1-2: a sample is made
coarse to fine, x_0 = G_0(z_0), x_n = G_n(z_n, up(x_{n-1})). One module holds the G_n of every
scale with, as buffers (so checkpoints and exports carry them):

- ``reals_<n>``: the training image at each scale, in [-1, 1] (harmonisation, paint-to-image and
  super-resolution need them; they are small);
- ``noise_amp``: sigma_n, the noise amplitude of each scale (1 at the coarsest, then 0.1 x the RMSE
  of the reconstruction, §2.2);
- ``z_rec``: the fixed noise map z* of the coarsest scale (one channel, as the authors draw it):
  G with z* at scale 0 and no noise above reconstructs the image (the reconstruction loss, §2.2);
- ``active``: how many scales have been trained or are in training; sampling stops there and
  upsamples to the finest size, so a run's progress pictures show what it can already do.

The training latent of a sample is every scale's standard-normal noise, flattened into one
vector (:meth:`SinGANPyramid.flat_noise_dim`): scale 0 has one channel (broadcast to the image's
channels, as the authors' ``generate_noise`` + ``expand``), the others C. So ``Model.sample``,
progress snapshots and the latent tools work unchanged, and a seed gives the same picture on any
device. Other sizes (:func:`scaled_sizes`) take the noise of their own sizes.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from contextlib import nullcontext

import torch
from torch import nn

from gankit.errors import GankitError
from gankit.nn.singan import SinGANGenerator, channels_at, resize_picture, upsample

Sizes = Sequence[tuple[int, int]]


class SinGANPyramid(nn.Module):
    """G_0 ... G_N with the pyramid's buffers. ``forward(z)`` maps flat noise (N, D) to images
    (N, C, H, W) at the finest training size; :meth:`synthesize` is the general form."""

    def __init__(self, sizes: Sizes, channels: int, *, base: int = 32, cap: int = 128, num_layers: int = 5):
        super().__init__()
        if not sizes:
            raise GankitError("a SinGAN pyramid needs at least one scale")
        self.sizes = [tuple(int(v) for v in s) for s in sizes]
        self.channels = channels
        self.gens = nn.ModuleList(SinGANGenerator(channels, channels_at(n, base, cap), num_layers)
                                  for n in range(len(self.sizes)))
        for n, (h, w) in enumerate(self.sizes):
            self.register_buffer(f"reals_{n}", torch.zeros(1, channels, h, w))
        self.register_buffer("noise_amp", torch.ones(len(self.sizes)))
        self.register_buffer("z_rec", torch.zeros(1, 1, *self.sizes[0]))
        self.register_buffer("active", torch.tensor(len(self.sizes)))

    def __len__(self) -> int:
        return len(self.sizes)

    def real(self, n: int) -> torch.Tensor:
        """The training image at scale ``n``: (1, C, h_n, w_n) in [-1, 1]."""
        return getattr(self, f"reals_{n}")

    def set_reals(self, image: torch.Tensor) -> None:
        """Fill every ``reals_<n>`` from the finest image (1, C, H, W) in [-1, 1]: bicubic with
        antialiasing, as the authors' ``imresize`` of the fitted image by r^(N - n)."""
        for n, size in enumerate(self.sizes):
            self.real(n).copy_(resize_picture(image, size).clamp(-1, 1))

    # ---- noise ------------------------------------------------------------------------------
    def noise_shapes(self, sizes: Sizes | None = None) -> list[tuple[int, int, int]]:
        """(channels, h, w) of each scale's noise: one channel at the coarsest."""
        sizes = self.sizes if sizes is None else sizes
        return [(1 if n == 0 else self.channels, int(h), int(w)) for n, (h, w) in enumerate(sizes)]

    def flat_noise_dim(self, sizes: Sizes | None = None) -> int:
        return sum(math.prod(s) for s in self.noise_shapes(sizes))

    def split_noise(self, z: torch.Tensor, sizes: Sizes | None = None) -> list[torch.Tensor]:
        """Flat (N, D) noise -> one (N, c, h, w) map per scale."""
        shapes = self.noise_shapes(sizes)
        if z.dim() != 2 or z.shape[1] != sum(math.prod(s) for s in shapes):
            raise GankitError(f"SinGAN noise for these sizes is (N, {sum(math.prod(s) for s in shapes)}), "
                              f"got {tuple(z.shape)}")
        parts = torch.split(z, [math.prod(s) for s in shapes], dim=1)
        return [p.reshape(len(z), *s) for p, s in zip(parts, shapes)]

    def rec_noise(self, n: int, batch: int = 1) -> torch.Tensor:
        """z* of scale ``n``, unscaled: the fixed map at the coarsest scale, zeros above (§2.2)."""
        if n == 0:
            return self.z_rec.expand(batch, -1, -1, -1)
        h, w = self.sizes[n]
        return self.z_rec.new_zeros(batch, 1, h, w)

    # ---- generation -------------------------------------------------------------------------
    def step(self, n: int, noise: torch.Tensor, prev: torch.Tensor) -> torch.Tensor:
        """One scale: G_n(sigma_n z, prev), z standard normal of 1 or C channels (broadcast)."""
        scaled = self.noise_amp[n] * noise
        if scaled.shape[1] != prev.shape[1]:
            scaled = scaled.expand(-1, prev.shape[1], -1, -1)
        return self.gens[n](scaled, prev)

    def synthesize(self, noises: Sequence[torch.Tensor | None], sizes: Sizes | None = None, *, start: int = 0,
                   prev: torch.Tensor | None = None, rec_below: int = 0, stop: int | None = None,
                   frozen_below: int = 0) -> torch.Tensor:
        """Run scales ``start`` .. ``stop - 1`` (default: the active ones) and return the last
        image, upsampled to the finest of ``sizes`` when the run stops short of it.

        ``noises[n]``: standard-normal noise of scale n (None where ``rec_below`` or the
        reconstruction applies); scales below ``rec_below`` use z* instead (the authors'
        ``gen_start_scale``: a higher one keeps more of the original layout). ``prev``: the image
        fed into scale ``start`` at its size (harmonisation, paint-to-image inject it); zeros when
        ``start`` is 0 and it is not given. Scales below ``frozen_below`` run without a graph
        (training: the scales that are not being trained)."""
        sizes = self.sizes if sizes is None else [tuple(s) for s in sizes]
        stop = min(int(self.active), len(sizes)) if stop is None else stop
        if not 0 <= start < stop <= len(self.gens):
            raise GankitError(f"SinGAN scales run from 0 to {len(self.gens) - 1}; cannot run {start}..{stop - 1}")
        batch = next((t.shape[0] for t in noises if t is not None), 1) if prev is None else prev.shape[0]
        x = prev
        if x is None:
            x = self.z_rec.new_zeros(batch, self.channels, *sizes[start])
        for n in range(start, stop):
            if x.shape[-2:] != sizes[n]:
                x = upsample(x, sizes[n])
            if n < rec_below:
                noise = self.rec_noise(n, x.shape[0]) if tuple(sizes[n]) == self.sizes[n] else None
                if noise is None:
                    raise GankitError("reconstruction noise exists at the training size only: a start scale above 0 "
                                      "needs the training image's size")
            else:
                noise = noises[n]
            with torch.no_grad() if n < frozen_below else nullcontext():
                x = self.step(n, noise, x)
        return x if x.shape[-2:] == sizes[-1] else upsample(x, sizes[-1])

    def reconstruct(self, stop: int | None = None) -> torch.Tensor:
        """G's reconstruction of the image, (1, C, h, w) at scale ``stop - 1`` (default: the finest)."""
        stop = len(self.gens) if stop is None else stop
        return self.synthesize([None] * stop, self.sizes[:stop], rec_below=stop, stop=stop)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.synthesize(self.split_noise(z))


def scaled_sizes(sizes: Sizes, scale_h: float = 1.0, scale_w: float = 1.0) -> list[tuple[int, int]]:
    """Every scale's size stretched by (``scale_h``, ``scale_w``): the authors'
    ``random_samples_arbitrary_sizes`` (a wider sample is a wider canvas at every scale, so the
    coarse scales invent a new layout of the right aspect). Each side keeps at least 11 px, the
    receptive field of one scale."""
    if not (scale_h > 0 and scale_w > 0) or not math.isfinite(scale_h * scale_w):
        raise GankitError(f"scales must be positive numbers, got {scale_h} x {scale_w}")
    out = [(max(11, round(h * scale_h)), max(11, round(w * scale_w))) for h, w in sizes]
    return out
