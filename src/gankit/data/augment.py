"""Differentiable augmentation of everything D sees, for GAN training on small datasets.

* :class:`DiffAugment` - Zhao et al. 2020, "Differentiable Augmentation for Data-Efficient GAN
  Training" (arXiv:2006.10738): colour, translation and cutout, as in the paper's reference code.
* :class:`AdaptiveAugment` - Karras et al. 2020, "Training Generative Adversarial Networks with
  Limited Data" (arXiv:2006.06676): a compact 'bgc' pipeline (blit, geometric, colour; §2.3,
  App. B) whose probability p follows the overfitting heuristic r_t = E[sign(D(real))] (§3).

Both take NCHW float images in [-1, 1], draw fresh randomness from torch's global RNG on every
call and are differentiable w.r.t. the images, so gradients reach the generator.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import distributed as dist
from torch import nn

from gankit.errors import GankitError

AUGMENTS = ("none", "diffaugment", "ada")
P_MAX = math.nextafter(1.0, 0.0)  # p < 1 keeps the augmentation non-leaking (Karras 2020, §2.2)


def _check_images(x: torch.Tensor) -> None:
    if x.dim() != 4:
        raise GankitError(f"augmentation needs image batches (N, C, H, W), got shape {tuple(x.shape)}")


def _rand(x: torch.Tensor, *shape: int) -> torch.Tensor:
    return torch.rand(x.shape[0], *shape, dtype=x.dtype, device=x.device)


# ---- DiffAugment (Zhao et al. 2020) ------------------------------------------------------------
def color(x: torch.Tensor) -> torch.Tensor:
    """Random brightness (+U(-0.5, 0.5)), saturation (x U(0, 2)) and contrast (x U(0.5, 1.5))."""
    x = x + (_rand(x, 1, 1, 1) - 0.5)
    mean = x.mean(dim=1, keepdim=True)
    x = (x - mean) * (_rand(x, 1, 1, 1) * 2) + mean
    mean = x.mean(dim=(1, 2, 3), keepdim=True)
    return (x - mean) * (_rand(x, 1, 1, 1) + 0.5) + mean


def translate(x: torch.Tensor, dy: torch.Tensor, dx: torch.Tensor) -> torch.Tensor:
    """Shift image i down by ``dy[i]`` and right by ``dx[i]`` whole pixels, filling with zeros."""
    n, _, h, w = x.shape
    rows = (torch.arange(h, device=x.device) - dy.view(n, 1) + 1).clamp(0, h + 1)
    cols = (torch.arange(w, device=x.device) - dx.view(n, 1) + 1).clamp(0, w + 1)
    padded = F.pad(x, (1, 1, 1, 1)).permute(0, 2, 3, 1)  # one zero pixel all round, channels last
    batch = torch.arange(n, device=x.device).view(n, 1, 1)
    return padded[batch, rows[:, :, None], cols[:, None, :]].permute(0, 3, 1, 2).contiguous()


def cutout(x: torch.Tensor, cy: torch.Tensor, cx: torch.Tensor, ratio: float = 0.5) -> torch.Tensor:
    """Zero a square of side ``ratio`` x size centred on (``cy[i]``, ``cx[i]``), clipped at the border."""
    n, _, h, w = x.shape
    sh, sw = int(h * ratio + 0.5), int(w * ratio + 0.5)
    top, left = (cy.view(n, 1) - sh // 2), (cx.view(n, 1) - sw // 2)
    rows, cols = torch.arange(h, device=x.device), torch.arange(w, device=x.device)
    in_rows = (rows >= top) & (rows < top + sh)
    in_cols = (cols >= left) & (cols < left + sw)
    keep = ~(in_rows[:, :, None] & in_cols[:, None, :])
    return x * keep.unsqueeze(1).to(x.dtype)


def rand_translation(x: torch.Tensor, ratio: float = 0.125) -> torch.Tensor:
    """:func:`translate` by an integer shift of up to ``ratio`` of the size, per sample."""
    n, _, h, w = x.shape
    sy, sx = int(h * ratio + 0.5), int(w * ratio + 0.5)
    dy = torch.randint(-sy, sy + 1, (n,), device=x.device)
    dx = torch.randint(-sx, sx + 1, (n,), device=x.device)
    return translate(x, dy, dx)


def rand_cutout(x: torch.Tensor, ratio: float = 0.5) -> torch.Tensor:
    """:func:`cutout` of a half-size square at a random centre, per sample (reference ranges)."""
    n, _, h, w = x.shape
    sh, sw = int(h * ratio + 0.5), int(w * ratio + 0.5)
    cy = torch.randint(0, h + (1 - sh % 2), (n,), device=x.device)
    cx = torch.randint(0, w + (1 - sw % 2), (n,), device=x.device)
    return cutout(x, cy, cx, ratio)


DIFFAUGMENT_OPS = {"color": color, "translation": rand_translation, "cutout": rand_cutout}


class DiffAugment(nn.Module):
    """DiffAugment: the comma-separated ``policy`` ops, in order, with fresh random draws per call."""

    def __init__(self, policy: str = "color,translation,cutout"):
        super().__init__()
        self.names = [name.strip() for name in policy.split(",") if name.strip()]
        for name in self.names:
            if name not in DIFFAUGMENT_OPS:
                raise GankitError(f"unknown DiffAugment op {name!r} in policy {policy!r}; "
                                  f"choose from {', '.join(DIFFAUGMENT_OPS)}")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        _check_images(x)
        for name in self.names:
            x = DIFFAUGMENT_OPS[name](x)
        return x


# ---- ADA (Karras et al. 2020) ------------------------------------------------------------------
def _matrix(*entries) -> torch.Tensor:
    """Per-sample 3x3 matrices [[a, b, tx], [c, d, ty], [0, 0, 1]] from six 1-D tensors or numbers."""
    ref = next(e for e in entries if isinstance(e, torch.Tensor))
    full = [e if isinstance(e, torch.Tensor) else torch.full_like(ref, e) for e in (*entries, 0, 0, 1)]
    return torch.stack(full, dim=-1).view(*ref.shape, 3, 3)


def _rotation(theta: torch.Tensor) -> torch.Tensor:
    return _matrix(theta.cos(), -theta.sin(), 0, theta.sin(), theta.cos(), 0)


def warp(x: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
    """Resample x through per-sample 3x3 matrices ``g`` that map output to input coordinates, in
    pixels from the image centre (x right, y down); bilinear, reflection padding."""
    n, _, h, w = x.shape
    to_pixels = torch.diag(torch.tensor([w / 2, h / 2, 1.0], dtype=g.dtype, device=g.device))
    theta = torch.linalg.inv(to_pixels) @ g @ to_pixels  # in affine_grid's [-1, 1] coordinates
    grid = F.affine_grid(theta[:, :2].to(x.dtype), [n, 1, h, w], align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="reflection", align_corners=False)


class AdaptiveAugment(nn.Module):
    """ADA: each op applied per sample with probability ``p``; with ``adaptive=True``, p is steered
    by :meth:`observe` so that r_t = E[sign(D(real))] stays near ``target``."""

    def __init__(self, p: float = 0.0, *, adaptive: bool = True, target: float = 0.6, interval: int = 4,
                 speed_images: int = 100_000):
        super().__init__()
        if not 0 <= p <= 1 or interval < 1 or speed_images <= 0:
            raise GankitError(f"ADA needs 0 <= p <= 1, interval >= 1 and speed_images > 0 "
                              f"(got p={p}, interval={interval}, speed_images={speed_images})")
        self.adaptive, self.target, self.interval, self.speed_images = adaptive, target, interval, speed_images
        for name, value in (("p", p), ("rt", 0.0), ("signs_sum", 0.0), ("count", 0.0), ("calls", 0.0)):
            self.register_buffer(name, torch.tensor(value, dtype=torch.float64))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        _check_images(x)
        p = float(self.p)
        if p == 0:
            return x
        n, c, h, w = x.shape
        kw = {"device": x.device, "dtype": torch.float32}

        def chosen(value: torch.Tensor, identity: float, prob: float = p) -> torch.Tensor:
            return torch.where(torch.rand(n, **kw) < prob, value, torch.full_like(value, identity))

        # Blit and general geometric ops, composed into one sampling matrix per sample.
        g = _matrix(1 - 2 * chosen(torch.randint(0, 2, (n,), **kw), 0), 0, 0, 0, 1, 0)  # x-flip
        g = g @ _rotation(chosen(torch.randint(0, 4, (n,), **kw), 0) * (math.pi / 2))
        t = ((torch.rand(2, n, **kw) * 2 - 1) * 0.125 * torch.tensor([[w], [h]], **kw)).round()
        g = g @ _matrix(1, 0, chosen(t[0], 0), 0, 1, chosen(t[1], 0))  # integer translation
        s = chosen(torch.exp2(torch.randn(n, **kw) * 0.2), 1)  # isotropic scaling
        g = g @ _matrix(s, 0, 0, 0, s, 0)
        p_rot = 1 - math.sqrt(1 - p)  # two chances to rotate, p in total
        g = g @ _rotation(chosen((torch.rand(n, **kw) * 2 - 1) * math.pi, 0, p_rot))
        s = chosen(torch.exp2(torch.randn(n, **kw) * 0.2), 1)  # anisotropic scaling
        g = g @ _matrix(s, 0, 0, 0, 1 / s, 0)
        g = g @ _rotation(chosen((torch.rand(n, **kw) * 2 - 1) * math.pi, 0, p_rot))
        t = torch.randn(2, n, **kw) * 0.125 * torch.tensor([[w], [h]], **kw)
        g = g @ _matrix(1, 0, chosen(t[0], 0), 0, 1, chosen(t[1], 0))  # fractional translation
        x = warp(x, g)

        # Colour: a per-sample affine map of the channel values, y = m x + b.
        brightness = chosen(torch.randn(n, **kw) * 0.2, 0)
        contrast = chosen(torch.exp2(torch.randn(n, **kw) * 0.5), 1)
        if c != 3:  # no hue to rotate or saturate, no luma axis to flip: brightness and contrast only
            return (x + brightness.view(n, 1, 1, 1).to(x.dtype)) * contrast.view(n, 1, 1, 1).to(x.dtype)
        eye, v = torch.eye(3, **kw), torch.full((3,), 1 / math.sqrt(3), **kw)  # v: the luma axis
        vv = torch.outer(v, v)
        flip = eye - 2 * vv * chosen(torch.randint(0, 2, (n,), **kw), 0).view(n, 1, 1)  # luma flip
        theta = chosen((torch.rand(n, **kw) * 2 - 1) * math.pi, 0).view(n, 1, 1)  # hue rotation about v
        cross = torch.linalg.cross(v.expand(3, 3), eye, dim=-1).T  # [v]_x, so [v]_x u = v x u
        hue = theta.cos() * eye + theta.sin() * cross + (1 - theta.cos()) * vv
        sat = vv + (eye - vv) * chosen(torch.exp2(torch.randn(n, **kw)), 1).view(n, 1, 1)
        a = sat @ hue @ flip  # after contrast * (x + brightness)
        m, b = a * contrast.view(n, 1, 1), a.sum(-1) * (contrast * brightness).view(n, 1)
        return torch.einsum("nij,njhw->nihw", m.to(x.dtype), x) + b.view(n, 3, 1, 1).to(x.dtype)

    @torch.no_grad()
    def observe(self, real_logits: torch.Tensor) -> None:
        """Accumulate sign(D(real)); every ``interval`` calls set r_t and move p towards ``target``
        by (images seen) / ``speed_images`` (Karras 2020, §3). Ranks agree under torch.distributed."""
        self.signs_sum += real_logits.detach().sign().sum().to(self.signs_sum)
        self.count += real_logits.numel()
        self.calls += 1
        if int(self.calls) % self.interval:
            return
        totals = torch.stack([self.signs_sum, self.count]).to(real_logits.device)
        if dist.is_available() and dist.is_initialized():
            dist.all_reduce(totals)
        signs_sum, count = totals.to(self.p)
        self.rt.copy_(signs_sum / count.clamp_min(1))
        if self.adaptive:
            self.p.copy_((self.p + torch.sign(self.rt - self.target) * count / self.speed_images).clamp(0, P_MAX))
        self.signs_sum.zero_()
        self.count.zero_()

    def stats(self) -> dict[str, float]:
        """The current p and the last r_t, for logging."""
        return {"aug/p": float(self.p), "aug/rt": float(self.rt)}


def make_augment(name: str, *, policy: str = "color,translation,cutout", target: float = 0.6, interval: int = 4,
                 speed_images: int = 100_000) -> nn.Module | None:
    """The augmentation called ``name``: None for "none", else a :class:`DiffAugment` or an
    adaptive :class:`AdaptiveAugment` starting at p = 0."""
    if name == "none":
        return None
    if name == "diffaugment":
        return DiffAugment(policy)
    if name == "ada":
        return AdaptiveAugment(target=target, interval=interval, speed_images=speed_images)
    raise GankitError(f"unknown augment {name!r}; choose from {', '.join(AUGMENTS)}")
