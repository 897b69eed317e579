"""Projecting images into the latent space of a style-based generator (W or W+).

Optimisation-based inversion as in StyleGAN2 §5 (Karras et al. 2020, arXiv:1912.04958) and its
``projector.py`` in stylegan2-ada-pytorch (arXiv:2006.06676): start at the mean w (``w_avg``), take
``steps`` Adam steps (betas 0.9, 0.999) on a distance between the generated image and the target,
with

* the learning rate ramped up over the first 5% of the steps and cosine-down over the last 25%
  (:func:`lr_at`, initial 0.1);
* latent noise: Gaussian noise of scale ``w_std * 0.05 * max(0, 1 - t / 0.75)^2`` added to w, where
  w_std is the spread of 10,000 mapped z's around the mean (:func:`noise_scale_at`);
* the per-layer noise maps optimised too: drawn from N(0, 1), renormalised to zero mean and unit
  variance after each step, and kept free of structure by the multi-scale autocorrelation penalty
  :func:`noise_regularizer` (weight 1e5).

W is one w shared by every layer; W+ (Abdal et al. 2019, Image2StyleGAN, arXiv:1904.03189) is one w
per layer, starting from the same mean. W+ reconstructs more closely, W stays nearer the images
the generator makes. The distance is chosen by ``loss`` (:mod:`gankit.explore.project_losses`):
LPIPS (Zhang et al. 2018, as the reference) when its weights are on disk, else multi-scale SSIM
(Wang et al. 2003), the best offline candidate measured on held-out faces in ``docs/toolbox.md``.

Faces should be aligned as the training faces were (``gankit prepare faces``) before projecting.
"""

from __future__ import annotations

import math
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator

import torch
import torch.nn.functional as F

from gankit.errors import GankitError
from gankit.explore.project_losses import Distance, load_discriminator, load_lpips, parse_loss

SPACES = ("w", "w+")
DEFAULT_LOSS = "msssim"  # the best of 11 offline candidates on held-out faces: docs/toolbox.md


@dataclass
class ProjectionResult:
    """What :func:`project` found for N target images.

    ``w``: (N, w_dim) in W, (N, num_ws, w_dim) in W+; ``noise``: layer name -> (N, R, R) noise maps;
    ``image``: the final reconstructions (N, C, R, R) in [-1, 1]; ``frames``: (step, images) every
    ``frame_every`` steps; ``losses``: final distance terms, noise penalty and total, averaged over
    the images; ``metrics``: PSNR / SSIM / L1 of the reconstructions (means over images)."""

    w: torch.Tensor
    noise: dict[str, torch.Tensor]
    image: torch.Tensor
    target: torch.Tensor
    space: str
    steps: int
    loss: str
    frames: list[tuple[int, torch.Tensor]] = field(default_factory=list)
    losses: dict[str, float] = field(default_factory=dict)
    metrics: dict[str, float] = field(default_factory=dict)
    per_image: dict[str, list[float]] = field(default_factory=dict)
    seconds: float = 0.0
    num_ws: int = 0

    @property
    def ws(self) -> torch.Tensor:
        """(N, num_ws, w_dim) for either space: what ``model.synthesis`` takes."""
        return self.w if self.w.dim() == 3 else self.w[:, None, :].expand(-1, self.num_ws, -1)


# ---- the schedule and the noise regulariser --------------------------------------------------------
def lr_at(t: float, lr: float = 0.1, rampup: float = 0.05, rampdown: float = 0.25) -> float:
    """The learning rate at progress ``t`` in [0, 1]: linear ramp-up over ``rampup``, cosine
    ramp-down over the last ``rampdown`` (stylegan2-ada-pytorch's projector)."""
    ramp = min(1.0, (1.0 - t) / rampdown)
    ramp = 0.5 - 0.5 * math.cos(ramp * math.pi)
    return lr * ramp * min(1.0, t / rampup)


def noise_scale_at(t: float, w_std: float, factor: float = 0.05, ramp: float = 0.75) -> float:
    """Scale of the Gaussian noise added to w at progress ``t``: w_std * factor * max(0, 1 - t/ramp)^2."""
    return w_std * factor * max(0.0, 1.0 - t / ramp) ** 2


def noise_regularizer(maps: list[torch.Tensor]) -> torch.Tensor:
    """StyleGAN2 §5's penalty on structure in the noise maps, per image: for each map (N, R, R) and
    its 2x2 average-pooled copies down to 8x8, the squared mean of the map times itself shifted by
    one pixel (wrapping) along x, and the same along y, summed. (N,)"""
    total = 0
    for m in maps:
        x = m[:, None]
        while True:
            total = total + (x * torch.roll(x, shifts=1, dims=3)).flatten(1).mean(1).square()
            total = total + (x * torch.roll(x, shifts=1, dims=2)).flatten(1).mean(1).square()
            if x.shape[-1] <= 8:
                break
            x = F.avg_pool2d(x, kernel_size=2)
    return total


def noise_layers(model) -> dict[str, torch.nn.Module]:
    """The synthesis layers that add per-pixel noise, by name (``synthesis.b8.conv0``, ...)."""
    return {name: m for name, m in model.generator.named_modules() if hasattr(m, "noise_const")}


@contextmanager
def noise_maps(model, maps: dict[str, torch.Tensor]) -> Iterator[None]:
    """Render with the given noise maps ((R, R) or (N, R, R) per layer) as ``noise="const"``:
    ``with noise_maps(model, result.noise): model.synthesis(result.ws)``. Restores the model's own."""
    layers = noise_layers(model)
    unknown = set(maps) - set(layers)
    if unknown:
        raise GankitError(f"noise maps for layers the generator lacks: {', '.join(sorted(unknown))}")
    saved = {name: layer.noise_const for name, layer in layers.items()}
    try:
        for name, m in maps.items():
            layers[name].noise_const = m.to(saved[name])[:, None] if m.dim() == 3 else m.to(saved[name])
        yield
    finally:
        for name, buf in saved.items():
            layers[name].noise_const = buf


@torch.no_grad()
def w_stats(model, samples: int = 10_000, seed: int = 0) -> tuple[torch.Tensor, float]:
    """The mean w the model tracked and the spread of ``samples`` mapped z's around it:
    sqrt(sum ||w - w_avg||^2 / samples) (the projector's w_std)."""
    from gankit.explore.directions import sample_ws

    w_avg = model.w_avg.detach().float()
    ws = sample_ws(model, samples, seed=seed)
    return w_avg, math.sqrt(float((ws - w_avg.cpu()).square().sum()) / samples)


# ---- projection ------------------------------------------------------------------------------------
def as_targets(image: torch.Tensor, model) -> torch.Tensor:
    """(C, H, W) or (N, C, H, W), uint8 or float in [-1, 1], at the model's resolution and channels
    -> float (N, C, R, R) on the model's device."""
    if not isinstance(image, torch.Tensor) or image.dim() not in (3, 4):
        raise GankitError("project takes an image tensor (C, H, W) or (N, C, H, W)")
    x = image[None] if image.dim() == 3 else image
    x = x.float().div(127.5).sub(1) if x.dtype == torch.uint8 else x.float()
    r, c = model.config.resolution, model.config.channels
    if tuple(x.shape[1:]) != (c, r, r):
        raise GankitError(f"the model makes {c}x{r}x{r} images; got a target of shape {tuple(x.shape[1:])} "
                          f"(resize and centre-crop it first, as gankit project does)")
    return x.clamp(-1, 1).to(model.device)


def pick_loss(loss: str, *, lpips) -> str:
    """``auto`` -> lpips when its weights were given, else :data:`DEFAULT_LOSS`; anything else is
    parsed as a spec."""
    if loss != "auto":
        parse_loss(loss)
        return loss
    return "lpips" if lpips is not None else DEFAULT_LOSS


def project(model, image: torch.Tensor, *, space: str = "w", steps: int = 1000, loss: str = "auto",
            lr: float = 0.1, w_avg_samples: int = 10_000, initial_noise_factor: float = 0.05,
            noise_ramp_length: float = 0.75, lr_rampup: float = 0.05, lr_rampdown: float = 0.25,
            regularize_noise_weight: float = 1e5, optimize_noise: bool = True, frame_every: int = 10,
            seed: int = 0, lpips_weights: str | Path | None = None, discriminator=None,
            on_step: Callable[[int, dict[str, float]], None] | None = None) -> ProjectionResult:
    """Find w (W) or ws (W+) and noise maps whose image is closest to ``image`` (module docstring).

    ``model``: a :class:`gankit.api.Model` or a run/export directory (a run directory gives its EMA
    generator; the ``dfeat`` loss reads the discriminator from the model's directory unless
    ``discriminator`` is passed). ``loss``: ``auto`` (LPIPS with ``lpips_weights``, else
    :data:`DEFAULT_LOSS`) or a spec such as ``"mse+0.5*dfeat"`` (:mod:`~gankit.explore.project_losses`).
    ``image``: (C, R, R) or a batch (N, C, R, R), uint8 or float in [-1, 1]; a batch is N
    independent projections run together. ``on_step(step, losses)`` reports progress."""
    from gankit.model import as_model
    from gankit.metrics.translation import paired_scores

    started = time.perf_counter()
    model = as_model(model)
    if not model.family_cls.style_based:
        raise GankitError(f"projection needs a style-based family (stylegan2); {model.family} has no W space")
    space = space.lower()
    if space not in SPACES:
        raise GankitError(f"space must be w or w+, got {space!r}")
    if steps < 1:
        raise GankitError(f"steps must be >= 1, got {steps}")
    if not 0 < lr < math.inf:  # torch's Adam refused NaN and negative rates with a traceback
        raise GankitError(f"--lr must be a finite number > 0, got {lr}")
    target = as_targets(image, model)
    lpips = load_lpips(lpips_weights) if lpips_weights is not None else None
    loss = pick_loss(loss, lpips=lpips)
    if discriminator is None and "dfeat" in loss:
        discriminator = load_discriminator(model.source) if getattr(model, "source", None) else None
    distance = Distance(loss, target, discriminator=discriminator, lpips=lpips)

    n, device = target.shape[0], model.device
    gen = torch.Generator().manual_seed(seed)
    w_avg, w_std = w_stats(model, w_avg_samples, seed)
    shape = (n, model.num_ws, w_avg.numel()) if space == "w+" else (n, w_avg.numel())
    w_opt = w_avg.expand(shape).clone().to(device).requires_grad_(True)
    layers = noise_layers(model)
    if optimize_noise:  # fresh N(0, 1) maps, optimised; else the model's own stored maps, kept
        maps = {name: torch.randn(n, *layer.noise_const.shape[-2:], generator=gen).to(device)
                for name, layer in layers.items()}
        _normalise(maps)
    else:
        maps = {name: layer.noise_const.detach().expand(n, -1, -1).clone() for name, layer in layers.items()}
    for m in maps.values():
        m.requires_grad_(optimize_noise)
    params = [w_opt] + (list(maps.values()) if optimize_noise else [])
    opt = torch.optim.Adam(params, betas=(0.9, 0.999), lr=lr)
    frames: list[tuple[int, torch.Tensor]] = []
    losses: dict[str, torch.Tensor] = {}
    for step in range(steps):
        t = step / steps
        for group in opt.param_groups:
            group["lr"] = lr_at(t, lr, lr_rampup, lr_rampdown)
        sigma = noise_scale_at(t, w_std, initial_noise_factor, noise_ramp_length)
        w_noisy = w_opt + torch.randn(w_opt.shape, generator=gen).to(device) * sigma
        with noise_maps(model, maps):
            synth = model.synthesis(w_noisy, noise="const")
        dist, parts = distance(synth)
        reg = noise_regularizer(list(maps.values())) if optimize_noise else torch.zeros_like(dist)
        total = dist + reg * regularize_noise_weight
        opt.zero_grad(set_to_none=True)
        total.sum().backward()
        opt.step()
        if optimize_noise:
            with torch.no_grad():
                _normalise(maps)
        losses = {**{k: v.detach() for k, v in parts.items()}, "noise_reg": reg.detach(), "total": total.detach()}
        if frame_every and step % frame_every == 0:
            frames.append((step, synth.detach().clamp(-1, 1).cpu()))
        if on_step is not None:
            on_step(step + 1, {k: float(v.mean()) for k, v in losses.items()})

    with torch.no_grad(), noise_maps(model, maps):
        final = model.synthesis(w_opt, noise="const").clamp(-1, 1).float().cpu()
    frames.append((steps, final))
    per_image = {k: [float(x) for x in v.detach().cpu()] for k, v in losses.items()}
    per_image.update(_per_image_scores(final, target.cpu()))
    metrics = paired_scores(final, target.cpu())
    metrics["mse"] = float((final - target.cpu()).square().mean())
    return ProjectionResult(
        w=w_opt.detach().cpu(), noise={k: v.detach().cpu() for k, v in maps.items()}, image=final,
        target=target.cpu(), space=space, steps=steps, loss=loss, frames=frames,
        losses={k: float(v.detach().mean()) for k, v in losses.items()}, metrics=metrics, per_image=per_image,
        seconds=time.perf_counter() - started, num_ws=model.num_ws)


def _normalise(maps: dict[str, torch.Tensor]) -> None:
    """Each noise map to zero mean and unit variance (in place, per image)."""
    for m in maps.values():
        m -= m.mean(dim=(1, 2), keepdim=True)
        m *= m.square().mean(dim=(1, 2), keepdim=True).rsqrt()


def _per_image_scores(pred: torch.Tensor, target: torch.Tensor) -> dict[str, list[float]]:
    from gankit.metrics.translation import paired_scores

    scores = [paired_scores(pred[i:i + 1], target[i:i + 1]) for i in range(pred.shape[0])]
    return {f"{k}": [s[k] for s in scores] for k in ("psnr", "ssim")}
