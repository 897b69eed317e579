"""SinGAN's applications on a trained ``singan`` model: Shaham, Dekel & Michaeli 2019, "SinGAN: Learning a
Generative Model from a Single Natural Image" (arXiv:1905.01164), §3-4 and the authors' scripts
(tamarott/SinGAN):

- :func:`sample`: random samples of any size and aspect, from any start scale (§3.1, Fig. 6-7;
  ``SinGAN_generate``, ``random_samples.py``);
- :func:`harmonize`: blend a pasted object into the picture, or turn a naive edit into a seamless
  one (§4, Fig. 12-13; ``harmonization.py``, ``editing.py``, ``dilate_mask``);
- :func:`paint`: a clipart painting rendered in the picture's textures (§4, Fig. 11;
  ``paint2image.py``, ``quant``, ``quant2centers``);
- :func:`upscale`: super-resolution of the very image a run was trained on (§4, Fig. 10;
  ``SR.py``, ``calc_init_scale``);
- :func:`animate`: a random walk in the noise of every scale (§4, Fig. 14; ``generate_gif``).

Every function takes a loaded :class:`gankit.Model` (any device), runs its pyramid in eval mode
without gradients, draws its noise on the CPU from a seeded ``torch.Generator`` (the same picture
on every device) and returns CPU float images in [-1, 1]. The injection applications (harmonise,
edit, paint) run scales K..N on an image injected at scale K; K = 1 is the coarsest allowed.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Sequence
from contextlib import contextmanager
from pathlib import Path

import torch
import torch.nn.functional as F

from gankit.errors import GankitError
from gankit.nn.resize import bicubic
from gankit.nn.singan import pyramid, resize_picture, upsample
from gankit.nn.singan_pyramid import SinGANPyramid, scaled_sizes

BATCH = 8  # images per pass through the pyramid (memory grows with the batch at 250 px)
MIN_SIDE = 11  # the receptive field of one scale: scaled_sizes keeps every side at least this
DILATION = {"harmonization": 7, "editing": 20}  # disk radius of the authors' dilate_mask
MASK_SIGMA = 5.0  # their Gaussian blur of the dilated mask (skimage filters.gaussian, truncate 4)
QUANT_COLOURS = 5  # KMeans(n_clusters=5) of their quant / quant2centers

ImageLike = torch.Tensor | str | Path


# ---- shared helpers -------------------------------------------------------------------------
def pyramid_of(model) -> SinGANPyramid:
    """The model's :class:`SinGANPyramid`, or a one-line error for a run of another family."""
    G = getattr(model, "generator", None)
    if not isinstance(G, SinGANPyramid):
        family = getattr(model, "family", type(model).__name__)
        where = f"{model.source} is" if getattr(model, "source", None) else "this is"
        raise GankitError(f"{where} a {family} model; SinGAN's tools need a singan run "
                          f"(gankit train singan --data IMAGE ...)")
    return G


def last_scale(G: SinGANPyramid) -> int:
    """N, the finest scale trained so far (``active`` - 1: a run stopped early samples up to there)."""
    return int(G.active) - 1


def check_scale(k: int, low: int, high: int, what: str = "start scale") -> int:
    if not isinstance(k, numbers.Integral) or isinstance(k, bool) or not low <= k <= high:
        raise GankitError(f"the {what} must be in {low}..{high} for this pyramid of {high + 1} scales, got {k}")
    return int(k)


def default_injection_scale(model) -> int:
    """The middle of the valid injection scales 1..N: the authors ask for one; this is a start."""
    return max(1, last_scale(pyramid_of(model)) // 2)


@contextmanager
def _evaluating(G: torch.nn.Module):
    was = G.training
    G.eval()
    try:
        with torch.no_grad():
            yield
    finally:
        G.train(was)


def _noise(shapes: Sequence[tuple[int, ...]], batch: int, gen: torch.Generator, device) -> list[torch.Tensor]:
    """Standard-normal noise of each shape, drawn on the CPU (device-independent), then moved."""
    return [torch.randn(batch, *s, generator=gen).to(device) for s in shapes]


def as_image(x: ImageLike, channels: int, what: str = "image") -> torch.Tensor:
    """A user's picture as (1, ``channels``, H, W) float in [-1, 1] on the CPU: a file path (any
    format PIL reads), or a tensor (C, H, W) / (1, C, H, W), float in [-1, 1] or uint8. Grey is
    repeated to colour; colour is averaged to grey for a grey model."""
    if isinstance(x, (str, Path)):
        from gankit.data.single_image import image_tensor

        return image_tensor(x, channels)
    if not isinstance(x, torch.Tensor) or x.dim() not in (3, 4) or (x.dim() == 4 and x.shape[0] != 1):
        shape = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
        raise GankitError(f"the {what} must be a file or a (1, C, H, W) tensor, got {shape}")
    x = x.detach().cpu()
    x = x[None] if x.dim() == 3 else x
    x = x.float().div(127.5).sub(1) if x.dtype == torch.uint8 else x.float().clamp(-1, 1)
    if x.shape[1] == channels:
        return x
    if x.shape[1] == 1:
        return x.expand(-1, channels, -1, -1).contiguous()
    if channels == 1:
        return x.mean(1, keepdim=True)
    raise GankitError(f"the {what} has {x.shape[1]} channels; this model makes {channels}-channel images")


_resize = resize_picture  # bicubic with antialiasing, as the pyramid's own reals


def inject(G: SinGANPyramid, image: torch.Tensor, k: int) -> torch.Tensor:
    """The input of scale ``k`` made from a full-size image: down to scale k - 1, then up to scale k,
    so it holds no detail finer than what scale k expects to add (the ``in_s`` of the authors'
    harmonization.py / editing.py / paint2image.py)."""
    return upsample(_resize(image, G.sizes[k - 1]), G.sizes[k])


def _run_from(G: SinGANPyramid, prev: torch.Tensor, k: int, seed: int) -> torch.Tensor:
    """Scales k..N on ``prev`` (at scale k's size) with fresh noise: ``SinGAN_generate(Gs[n:], ..., in_s, n=n)``."""
    gen = torch.Generator().manual_seed(seed)
    shapes = G.noise_shapes()[k:last_scale(G) + 1]
    noises = [None] * k + _noise(shapes, 1, gen, G.z_rec.device)
    return G.synthesize(noises, start=k, prev=prev.to(G.z_rec.device)).clamp(-1, 1).cpu()


# ---- random samples ---------------------------------------------------------------------------
def sample(model, n: int, *, seed: int = 0, scale_h: float = 1.0, scale_w: float = 1.0,
           size: tuple[int, int] | None = None, start_scale: int = 0) -> torch.Tensor:
    """``n`` random samples (n, C, H, W) in [-1, 1].

    ``scale_h`` / ``scale_w`` stretch every scale (the authors' ``random_samples_arbitrary_sizes``:
    the coarsest scale invents a layout of the new aspect); ``size=(H, W)`` asks for exactly that
    size instead. ``start_scale`` K > 0 runs the scales below K on the reconstruction noise z*
    (``gen_start_scale``, Fig. 7): the higher K, the more of the picture's layout is kept; it
    needs the training size. At the training size and K = 0 the samples are those of
    ``model.sample(n, seed=seed)``."""
    G = pyramid_of(model)
    if not isinstance(n, int) or n < 1:
        raise GankitError(f"the number of samples must be >= 1, got {n}")
    if size is not None:
        if (scale_h, scale_w) != (1.0, 1.0):
            raise GankitError("give a size or scale factors (scale_h / scale_w), not both")
        if len(size) != 2 or min(size) < MIN_SIDE:
            raise GankitError(f"a SinGAN sample must be at least {MIN_SIDE}x{MIN_SIDE} pixels (one scale's "
                              f"receptive field), got {'x'.join(map(str, size))}")
        (h, w), size = G.sizes[-1], (int(size[0]), int(size[1]))
        scale_h, scale_w = size[0] / h, size[1] / w
    sizes = scaled_sizes(G.sizes, scale_h, scale_w)
    if size is not None:
        sizes[-1] = size
    check_scale(start_scale, 0, last_scale(G))
    if start_scale and sizes != list(G.sizes):
        raise GankitError("a start scale above 0 keeps the training picture's layout, so it works at the training "
                          f"size ({G.sizes[-1][0]}x{G.sizes[-1][1]}) only: drop the size/scale options or use start "
                          "scale 0")
    z = torch.randn(n, G.flat_noise_dim(sizes), generator=torch.Generator().manual_seed(seed))
    with _evaluating(G):
        out = [G.synthesize(G.split_noise(z[i:i + BATCH].to(G.z_rec.device), sizes), sizes,
                            rec_below=start_scale).clamp(-1, 1).cpu() for i in range(0, n, BATCH)]
    return torch.cat(out)


# ---- harmonisation and editing ----------------------------------------------------------------
def disk(radius: int) -> torch.Tensor:
    """A (2r+1, 2r+1) bool disk, x^2 + y^2 <= r^2: skimage's ``morphology.disk``."""
    r = torch.arange(-radius, radius + 1)
    return r[:, None] ** 2 + r[None, :] ** 2 <= radius ** 2


def dilate(mask: torch.Tensor, radius: int) -> torch.Tensor:
    """Binary dilation of (N, 1, H, W) {0, 1} masks by a disk (a max filter with a disk footprint,
    as a convolution: a pixel is set when any set pixel lies within ``radius``); outside the image
    counts as unset (``binary_dilation``'s border)."""
    kernel = disk(radius).to(mask.device, torch.float32)[None, None]
    return (F.conv2d(mask.float(), kernel, padding=radius) > 0.5).float()


def gaussian_blur(x: torch.Tensor, sigma: float, truncate: float = 4.0) -> torch.Tensor:
    """Separable Gaussian blur of (N, 1, H, W), edges replicated: scipy's ``gaussian_filter`` with
    mode "nearest", as skimage's ``filters.gaussian`` calls it (radius = int(truncate sigma + 0.5))."""
    radius = int(truncate * sigma + 0.5)
    t = torch.arange(-radius, radius + 1, dtype=torch.float64)
    kernel = torch.exp(-0.5 * (t / sigma) ** 2)
    kernel = (kernel / kernel.sum()).to(x.device, torch.float32)
    x = F.pad(x.float(), (radius, radius, radius, radius), mode="replicate")
    x = F.conv2d(x, kernel.view(1, 1, 1, -1))
    return F.conv2d(x, kernel.view(1, 1, -1, 1))


def soft_mask(mask: torch.Tensor, radius: int, sigma: float = MASK_SIGMA) -> torch.Tensor:
    """The authors' ``dilate_mask``: binarise (1, 1, H, W) (white, > 0 in [-1, 1], is the region),
    dilate by a disk of ``radius``, blur with a Gaussian of ``sigma``, rescale to [0, 1] by its
    min and max. Values under 1e-6 are set to exactly 0, so pixels far from the region keep the
    input bit for bit whatever convolution algorithm the device picks."""
    binary = (mask > 0).float()
    if not binary.any():
        raise GankitError("the mask has no white pixels: paint the pasted or edited region white")
    soft = gaussian_blur(dilate(binary, radius), sigma)
    low, high = soft.min(), soft.max()
    soft = (soft - low) / (high - low) if high - low > 1e-6 else torch.ones_like(soft)
    return torch.where(soft < 1e-6, torch.zeros_like(soft), soft)


def harmonize(model, pasted: ImageLike, mask: ImageLike, *, start_scale: int, mode: str = "harmonization",
              seed: int = 0) -> dict[str, torch.Tensor]:
    """Harmonisation / editing (§4, Fig. 12-13; the authors' harmonization.py and editing.py).

    ``pasted``: the training picture with an object pasted in (harmonization) or a naive edit of
    it (editing), resized to the training size if needed. ``mask``: white where it was pasted or
    edited, any image of the pasted image's size (turned grey). The input is injected at scale
    K = ``start_scale`` (1..N; :func:`inject`) and scales K..N run on fresh noise; the mask is
    dilated (disk of 7 px, 20 for editing), blurred and normalised (:func:`soft_mask`), and

        output = (1 - mask) * pasted + mask * generated

    Returns ``{"output": that blend, "unmasked": the generated image, "mask": the soft mask
    (1, 1, H, W) in [0, 1]}``; the images are (1, C, H, W) in [-1, 1]. The authors blend with the
    training picture; blending with ``pasted`` keeps it exactly outside the mask, the same thing
    when the rest of the picture is untouched."""
    mode = {"edit": "editing"}.get(mode, mode)
    if mode not in DILATION:
        raise GankitError(f"the mode must be harmonization or editing, got {mode!r}")
    G = pyramid_of(model)
    check_scale(start_scale, 1, last_scale(G), "injection scale")
    image = as_image(pasted, G.channels, "pasted image")
    if isinstance(mask, (str, Path)):  # a file: its transparency is outside the region
        from gankit.data.single_image import mask_tensor

        region = mask_tensor(mask)
    else:
        region = as_image(mask, 1, "mask")
    if region.shape[-2:] != image.shape[-2:]:
        raise GankitError(f"the mask is {region.shape[-2]}x{region.shape[-1]} pixels but the image is "
                          f"{image.shape[-2]}x{image.shape[-1]}: they must be the same size")
    size = G.sizes[-1]
    if tuple(image.shape[-2:]) != size:
        image = _resize(image, size)  # and the mask: any trace of the region counts, as the authors' nonzero test
        cover = F.interpolate((region > 0).float(), size=size, mode="bilinear", antialias=True, align_corners=False)
        region = torch.where(cover > 1e-3, 1.0, -1.0)
    soft = soft_mask(region, DILATION[mode])
    with _evaluating(G):
        generated = _run_from(G, inject(G, image.to(G.z_rec.device), start_scale), start_scale, seed)
    return {"output": (1 - soft) * image + soft * generated, "unmasked": generated, "mask": soft}


# ---- paint to image ---------------------------------------------------------------------------
def _kmeans_pp(pixels: torch.Tensor, k: int, gen: torch.Generator) -> torch.Tensor:
    """k-means++ seeding: each new centre drawn with probability proportional to D(x)^2."""
    centres = pixels[torch.randint(len(pixels), (1,), generator=gen)]
    for _ in range(k - 1):
        d2 = torch.cdist(pixels, centres).min(1).values.square()
        centres = torch.cat([centres, pixels[torch.multinomial(d2, 1, generator=gen)]])
    return centres


def kmeans_colors(image: torch.Tensor, k: int = QUANT_COLOURS, *, seed: int = 0, restarts: int = 10,
                  iters: int = 100) -> tuple[torch.Tensor, torch.Tensor]:
    """The authors' ``quant``: k-means of the pixels of (1, C, H, W) into ``k`` colours (k-means++
    seeding, ``restarts`` runs, the lowest inertia kept, as scikit-learn's ``KMeans``). Returns
    (every pixel replaced by its centre, the centres (k', C)); k' < k when the image has fewer colours."""
    pixels = image[0].flatten(1).T.double().cpu()
    distinct = torch.unique(pixels, dim=0)
    if len(distinct) <= k:
        return nearest_colors(image, distinct), distinct.to(image.dtype)
    gen = torch.Generator().manual_seed(seed)
    best, best_inertia = None, math.inf
    for _ in range(restarts):
        centres = _kmeans_pp(pixels, k, gen)
        for _ in range(iters):
            labels = torch.cdist(pixels, centres).argmin(1)
            sums = torch.zeros_like(centres).index_add_(0, labels, pixels)
            counts = torch.bincount(labels, minlength=k).to(pixels.dtype)[:, None]
            moved = torch.where(counts > 0, sums / counts.clamp(min=1), centres)  # an empty cluster stays put
            if torch.allclose(moved, centres, atol=1e-9):
                break
            centres = moved
        inertia = float(torch.cdist(pixels, centres).min(1).values.square().sum())
        if inertia < best_inertia:
            best, best_inertia = centres, inertia
    best = best.to(image.dtype)
    return nearest_colors(image, best), best


def nearest_colors(image: torch.Tensor, centres: torch.Tensor) -> torch.Tensor:
    """Every pixel of (1, C, H, W) replaced by the nearest of ``centres`` (k, C): ``quant2centers``."""
    pixels = image[0].flatten(1).T
    centres = centres.to(pixels.device, pixels.dtype)
    out = centres[torch.cdist(pixels, centres).argmin(1)]
    return out.T.reshape(image.shape)


def paint(model, clipart: ImageLike, *, start_scale: int, quantize: bool = False, seed: int = 0,
          retrain: bool = True, retrain_iters: int | None = None) -> torch.Tensor:
    """Paint-to-image (§4, Fig. 11; the authors' paint2image.py): a painting (resized to the training
    size) injected at scale K = ``start_scale`` (1..N) like :func:`harmonize`, without a mask.
    Returns (1, C, H, W) in [-1, 1].

    ``quantize``: the training picture at scale K is k-means'd into 5 colours
    (:func:`kmeans_colors`), every pixel of the painting is mapped to the nearest of those
    colours (:func:`nearest_colors`) and the result is resized straight to scale K (their
    quantised branch skips the down-and-up of :func:`inject`). Then, unless ``retrain=False``, scale K
    is trained again (the authors' ``train_paint``, :func:`gankit.families.singan.retrain_scale`,
    ``retrain_iters`` iterations, default the run's per-scale count) with every input from the
    coarser scales mapped to those colours, so G_K learns to turn flat colours into the picture's
    textures; this updates ``model`` in place."""
    G = pyramid_of(model)
    check_scale(start_scale, 1, last_scale(G), "injection scale")
    image = _resize(as_image(clipart, G.channels, "painting"), G.sizes[-1])
    if quantize:
        _, centres = kmeans_colors(G.real(start_scale).cpu(), seed=seed)
        if retrain:
            from gankit.families.singan import retrain_scale

            retrain_scale(model, start_scale, lambda x: nearest_colors(x, centres), iters=retrain_iters,
                          device=str(G.z_rec.device))
        prev = _resize(nearest_colors(image, centres), G.sizes[start_scale])
    else:
        prev = inject(G, image, start_scale)
    with _evaluating(G):
        return _run_from(G, prev, start_scale, seed)


# ---- super-resolution -------------------------------------------------------------------------
def upscale_steps(scale: float, r: float) -> tuple[int, float]:
    """(k, step): k = round(log(scale) / log(1/r)) steps (at least 1) of step = scale^(1/k) each,
    so the steps end at exactly ``scale`` and each is about the ratio 1/r that G_N learned between
    scales: the authors' ``calc_init_scale``."""
    if not (isinstance(scale, (int, float)) and math.isfinite(scale)) or scale < 1:
        raise GankitError(f"the upscaling factor must be a number >= 1, got {scale}")
    k = max(1, round(math.log(scale) / math.log(1 / r)))
    return k, scale ** (1 / k)


def upscale(model, image: ImageLike | None = None, *, scale: float = 4.0, seed: int = 0) -> torch.Tensor:
    """SinGAN super-resolution (§4, Fig. 10; the authors' SR.py). The run was trained on the
    low-resolution picture itself (the authors: alpha = 100 and r = 2^(-1/3), e.g.
    ``--set alpha=100 --set scale_factor=0.7937``); its finest generator G_N has learned to add
    the details of one step of 1/r, and applying it again and again at ever larger sizes
    continues the picture's own cross-scale statistics. From ``image`` (default: the training
    picture at the finest scale; any other size is fine), :func:`upscale_steps` times: upsample,
    then G_N with fresh noise of amplitude sigma_N. Every step's size is a rounding of
    input x step^j, so the last one is exactly ``scale`` x the input (the authors crop a
    slightly larger one). Returns (1, C, round(scale H), round(scale W)) in [-1, 1].

    Differences: the upsampling between steps is the bilinear one G_N was trained with here
    (:func:`gankit.nn.singan.upsample`; the authors' is their bicubic ``imresize``), and every
    step's noise has C channels, the noise G_N was trained on (their first step draws one
    channel, a side effect of their ``n == 0`` test)."""
    G = pyramid_of(model)
    c = model.config
    r = pyramid(c.height, c.width, min_size=c.min_size, max_size=c.max_size, scale_factor=c.scale_factor).scale_factor
    k, step = upscale_steps(scale, r)
    n = last_scale(G)
    x = (G.real(n) if image is None else as_image(image, G.channels, "image to upscale")).to(G.z_rec.device)
    h, w = x.shape[-2:]
    gen = torch.Generator().manual_seed(seed)
    with _evaluating(G):
        for j in range(1, k + 1):
            size = (round(h * step ** j), round(w * step ** j)) if j < k else upscaled_size((h, w), scale)
            x = upsample(x, size)
            x = G.step(n, _noise([(G.channels, *size)], 1, gen, x.device)[0], x)
    return x.clamp(-1, 1).cpu()


def upscaled_size(size: Sequence[int], scale: float) -> tuple[int, int]:
    return round(size[0] * scale), round(size[1] * scale)


def reference_fits(reference: Sequence[int], upscaled: Sequence[int]) -> bool:
    """Whether a reference of size ``reference`` (h, w) is the original of an upscaled ``upscaled``:
    equal, or one pixel off per side from rounding the low-resolution size."""
    return all(abs(int(a) - int(b)) <= 1 for a, b in zip(reference, upscaled))


def upscale_scores(upscaled: torch.Tensor, reference: torch.Tensor, lowres: torch.Tensor) -> dict[str, float]:
    """PSNR (dB) and SSIM of the upscaled picture against the high-resolution ``reference``, and of
    bicubic interpolation of ``lowres`` for comparison (:func:`gankit.metrics.translation.paired_scores`:
    images in [0, 1], data range 1, torchmetrics' SSIM). A reference one pixel off per side (a
    640x427 photo whose quarter is 160x107 upscales to 640x428) is compared on the common area."""
    from gankit.metrics.translation import paired_scores

    if not reference_fits(reference.shape[-2:], upscaled.shape[-2:]):
        raise GankitError(f"the reference is {reference.shape[-2]}x{reference.shape[-1]} but the upscaled image is "
                          f"{upscaled.shape[-2]}x{upscaled.shape[-1]}: give the high-resolution original of the input")
    h, w = min(reference.shape[-2], upscaled.shape[-2]), min(reference.shape[-1], upscaled.shape[-1])
    reference = reference[..., :h, :w].cpu()
    ours = paired_scores(upscaled[..., :h, :w].cpu(), reference)
    base = paired_scores(bicubic(lowres.cpu(), upscaled.shape[-2:])[..., :h, :w], reference)
    return {"psnr": ours["psnr"], "ssim": ours["ssim"], "bicubic_psnr": base["psnr"], "bicubic_ssim": base["ssim"]}


# ---- animation --------------------------------------------------------------------------------
def noise_walk(z_star: torch.Tensor, shape: Sequence[int], frames: int, alpha: float, beta: float,
               gen: torch.Generator) -> torch.Tensor:
    """One scale's walk of the authors' ``generate_gif``, (frames, *shape): start at
    z_{-1} = 0.95 z* + 0.05 n, z_{-2} = z*, then

        z_t = alpha z* + (1 - alpha) (z_{t-1} + beta (z_{t-1} - z_{t-2}) + (1 - beta) n_t)

    with fresh standard-normal n_t: momentum beta keeps the motion smooth, alpha pulls it back
    towards the reconstruction noise z* so the picture never drifts far from the original."""
    prev2 = z_star
    prev1 = 0.95 * z_star + 0.05 * torch.randn(1, *shape, generator=gen)
    out = []
    for _ in range(frames):
        step = beta * (prev1 - prev2) + (1 - beta) * torch.randn(1, *shape, generator=gen)
        z = alpha * z_star + (1 - alpha) * (prev1 + step)
        prev2, prev1 = prev1, z
        out.append(z)
    return torch.cat(out)


def animate(model, *, frames: int = 60, alpha: float = 0.1, beta: float = 0.9, start_scale: int = 2,
            seed: int = 0) -> torch.Tensor:
    """A looping-ish video of the picture in motion (§4, Fig. 14; the authors' ``generate_gif``):
    every scale from ``start_scale`` up walks its own noise (:func:`noise_walk`), the scales below
    it use z* (the layout stays), and each frame runs through the whole pyramid. Returns
    (frames, C, H, W) in [-1, 1]. The authors train animation models with noise padding
    (``animation_train``); any singan run works here."""
    G = pyramid_of(model)
    check_scale(start_scale, 0, last_scale(G))
    if not isinstance(frames, int) or frames < 1:
        raise GankitError(f"frames must be >= 1, got {frames}")
    if not (0 <= alpha <= 1 and 0 <= beta <= 1):
        raise GankitError(f"alpha and beta must lie in [0, 1], got alpha={alpha}, beta={beta}")
    gen = torch.Generator().manual_seed(seed)
    shapes = G.noise_shapes()[:last_scale(G) + 1]
    walks = [noise_walk(G.rec_noise(n).cpu(), s, frames, alpha, beta, gen) for n, s in enumerate(shapes)]
    device = G.z_rec.device
    with _evaluating(G):
        out = [G.synthesize([w[i:i + BATCH].to(device) for w in walks], rec_below=start_scale).clamp(-1, 1).cpu()
               for i in range(0, frames, BATCH)]
    return torch.cat(out)


__all__ = ["animate", "as_image", "bicubic", "default_injection_scale", "dilate", "disk", "gaussian_blur",
           "harmonize", "inject", "kmeans_colors", "nearest_colors", "noise_walk", "paint", "pyramid_of", "sample",
           "soft_mask", "upscale", "upscale_scores", "upscale_steps", "upscaled_size"]
