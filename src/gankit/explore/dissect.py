"""Making a generator forget to draw (Radford, Metz & Chintala 2015, "Unsupervised Representation
Learning with Deep Convolutional GANs", arXiv:1511.06434, §6.2 and Fig. 6).

The paper took a layer of the generator, marked where windows were in 150 samples and fit a
logistic regression predicting, from the activations at a spatial position, whether that position
was inside a window box; the feature maps with positive weights were dropped (zeroed everywhere),
and the regenerated bedrooms had the windows removed or replaced by other objects.

Here the "object" is an image region (``x0,y0,x1,y1``), the same for every sample, which suits
aligned data such as faces (eyes, mouth, a background corner). :func:`dissect` records the
activations of one layer over ``n`` samples, fits the same logistic regression (one weight per
feature map; features standardised, classes balanced, a small L2 penalty), zeroes the ``top``
maps with the largest weights through a forward hook, and measures how much the region changed
compared with the rest of the image, beside the same number of random maps as a control.

Layers are the generator's submodules that output feature maps (N, C, H, W) other than images;
a normalisation or activation applied right after a convolution in the same container is merged
into it, so a DCGAN "conv - BatchNorm - ReLU" block is one layer, recorded and zeroed after the ReLU.
"""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from gankit.errors import GankitError


@dataclass(frozen=True)
class Layer:
    index: int
    name: str  # module name inside the generator, e.g. main.8 or synthesis.b16.conv1
    channels: int
    size: tuple[int, int]

    def __str__(self) -> str:
        return f"{self.index}: {self.name} ({self.channels} maps, {self.size[0]}x{self.size[1]})"


def check_model(model) -> None:
    if model.family_cls.translates:
        raise GankitError(f"{model.family} translates images to images; dissect needs a noise-to-image family "
                          f"(dcgan, wgan, stylegan2, ...)")
    if model.config.channels == 0:
        raise GankitError(f"{model.family} here makes 2-D points: dissect needs an image model")
    if model.family_cls.single_image:
        raise GankitError(f"{model.family} draws from a pyramid of per-scale noise maps, not from one z: dissect "
                          f"needs a z-to-image family (dcgan, wgan, stylegan2, ...)")


def _has_conv(module: nn.Module) -> bool:
    return any(p.dim() >= 4 for p in module.parameters())


@torch.no_grad()
def feature_layers(model) -> list[Layer]:
    """The generator's feature-map layers in the order they run (see the module doc)."""
    check_model(model)
    found: list[list] = []  # [name, output]
    image_channels = model.config.channels

    def watch(name: str, module: nn.Module):
        def hook(_mod, inputs, output):
            if not isinstance(output, Tensor) or output.dim() != 4:
                return
            if output.shape[1] == image_channels or min(output.shape[-2:]) < 2:
                return  # an image (the output, a ToRGB), or no spatial extent
            last = found[-1] if found else None
            same = last is not None and output.data_ptr() == last[1].data_ptr() and output.shape == last[1].shape
            x = inputs[0] if inputs and isinstance(inputs[0], Tensor) else None
            follows = (last is not None and x is not None and x.data_ptr() == last[1].data_ptr()
                       and x.shape == output.shape == last[1].shape and not _has_conv(module)
                       and name.rpartition(".")[0] == last[0].rpartition(".")[0])
            if same or follows:  # in-place activation / a norm or activation right after it
                last[0], last[1] = name, output
            else:
                found.append([name, output])
        return hook

    skip = (nn.Identity, nn.Dropout)
    # not the modules of a weight's parametrization (spectral norm: `conv.parametrizations.weight`),
    # whose output is the weight itself
    handles = [m.register_forward_hook(watch(name, m)) for name, m in model.generator.named_modules()
               if name and not isinstance(m, skip) and ".parametrizations." not in f".{name}."]
    try:
        images = model.generate(model.latents(2, seed=0))
    finally:
        for h in handles:
            h.remove()
    side = model.config.resolution
    if tuple(images.shape[-2:]) != (side, side):
        raise GankitError(f"{model.family} draws {images.shape[-2]}x{images.shape[-1]} pictures (two domains side "
                          f"by side) where dissect needs one {side}x{side} picture per sample")
    if not found:
        raise GankitError(f"the {model.family} generator has no convolutional feature maps to dissect")
    return [Layer(i, name, int(out.shape[1]), (int(out.shape[2]), int(out.shape[3])))
            for i, (name, out) in enumerate(found)]


def find_layer(model, spec: str | int) -> Layer:
    """A layer by index (negative counts from the end: -1 is the last before the image) or name."""
    layers = feature_layers(model)
    text = str(spec).strip()
    try:
        index = int(text)
    except ValueError:
        match = [layer for layer in layers if layer.name == text]
        if match:
            return match[0]
    else:
        if -len(layers) <= index < len(layers):
            return layers[index]
    raise GankitError(f"no layer {text!r} in this {model.family} generator; give an index or a name: "
                      + "; ".join(map(str, layers)))


def parse_region(text: str, resolution: int) -> tuple[int, int, int, int]:
    """``x0,y0,x1,y1`` in pixels (x1, y1 exclusive), or as fractions of the image with decimals
    (``0.25,0.6,0.75,0.85``), -> pixel box within the ``resolution`` square."""
    parts = [p.strip() for p in str(text).split(",")]
    try:
        if len(parts) != 4:
            raise ValueError
        if all(p.lstrip("-").isdigit() for p in parts):
            box = [int(p) for p in parts]
        else:
            fractions = [float(p) for p in parts]
            if not all(0.0 <= f <= 1.0 for f in fractions):
                raise ValueError
            box = [round(f * resolution) for f in fractions]
    except ValueError:
        raise GankitError(f"--region takes x0,y0,x1,y1 in pixels (e.g. 16,40,48,56) or as fractions "
                          f"(0.25,0.6,0.75,0.85), got {text!r}") from None
    x0, y0, x1, y1 = box
    if not (0 <= x0 < x1 <= resolution and 0 <= y0 < y1 <= resolution):
        raise GankitError(f"--region {text!r} must lie within the {resolution}x{resolution} image "
                          f"with x0 < x1 and y0 < y1")
    if (x1 - x0) * (y1 - y0) == resolution * resolution:
        raise GankitError(f"--region {text!r} covers the whole image: nothing outside to compare with")
    return x0, y0, x1, y1


def region_cells(size: tuple[int, int], region: tuple[int, int, int, int], resolution: int) -> Tensor:
    """(H, W) bool: the positions of an H x W feature map whose cell centre lies in the region
    (at least the cell holding the region's centre)."""
    h, w = size
    x0, y0, x1, y1 = region
    cy = (torch.arange(h) + 0.5) * resolution / h
    cx = (torch.arange(w) + 0.5) * resolution / w
    inside = ((cy >= y0) & (cy < y1))[:, None] & ((cx >= x0) & (cx < x1))[None, :]
    if not inside.any():
        inside[min(int((y0 + y1) / 2 * h / resolution), h - 1), min(int((x0 + x1) / 2 * w / resolution), w - 1)] = True
    if inside.all():
        raise GankitError(f"at this layer's {h}x{w} size the region covers every position; pick a smaller "
                          f"region or a layer with larger maps")
    return inside


def region_pixels(region: tuple[int, int, int, int], resolution: int) -> Tensor:
    x0, y0, x1, y1 = region
    mask = torch.zeros(resolution, resolution, dtype=torch.bool)
    mask[y0:y1, x0:x1] = True
    return mask


# ---- which maps fire in the region -------------------------------------------------------------
def _positions(acts: Tensor, inside: Tensor, max_positions: int, seed: int) -> tuple[Tensor, Tensor]:
    n, c = acts.shape[:2]
    x = acts.permute(0, 2, 3, 1).reshape(-1, c).float()
    y = inside.expand(n, -1, -1).reshape(-1).float()
    if x.shape[0] > max_positions:
        keep = torch.randperm(x.shape[0], generator=torch.Generator().manual_seed(seed))[:max_positions]
        x, y = x[keep], y[keep]
    return (x - x.mean(0)) / x.std(0).clamp_min(1e-6), y


def logistic_scores(acts: Tensor, inside: Tensor, *, l2: float = 1e-3, max_positions: int = 200_000,
                    seed: int = 0) -> Tensor:
    """The paper's logistic regression: from the C activations at a position (standardised),
    predict whether the position is inside the region; returns the C weights. Positives are
    weighted by negatives / positives (balanced classes); L2 penalty ``l2``; full-batch L-BFGS.
    ``acts``: (N, C, H, W); ``inside``: (H, W) bool."""
    x, y = _positions(acts, inside, max_positions, seed)
    pos = y.sum().clamp_min(1)
    w = torch.zeros(x.shape[1], requires_grad=True)
    b = torch.zeros((), requires_grad=True)
    opt = torch.optim.LBFGS([w, b], lr=1, max_iter=200, line_search_fn="strong_wolfe")
    weight = (y.numel() - pos) / pos

    def closure():
        opt.zero_grad()
        loss = F.binary_cross_entropy_with_logits(x @ w + b, y, pos_weight=weight) + l2 * w.square().sum()
        loss.backward()
        return loss

    with torch.enable_grad():
        opt.step(closure)
    return w.detach()


def contrast_scores(acts: Tensor, inside: Tensor) -> Tensor:
    """A simpler per-map score: mean activation inside minus outside, in units of the map's spread."""
    x, y = _positions(acts, inside, max_positions=1 << 62, seed=0)
    return x[y > 0].mean(0) - x[y == 0].mean(0)


METHODS = {"logistic": logistic_scores, "contrast": contrast_scores}


# ---- zeroing maps ------------------------------------------------------------------------------
@contextmanager
def zeroed(model, layer: Layer, maps: list[int]):
    """Within the block, ``layer``'s feature maps ``maps`` are zero at every position."""
    module = dict(model.generator.named_modules())[layer.name]
    keep = torch.ones(layer.channels)
    keep[list(maps)] = 0

    def hook(_mod, _inputs, output):
        return output * keep.to(output.device, output.dtype).view(1, -1, 1, 1)

    handle = module.register_forward_hook(hook)
    try:
        yield
    finally:
        handle.remove()


@torch.no_grad()
def generate(model, z: Tensor, *, cond=None, seed: int = 0, layer: Layer | None = None,
             batch_size: int = 128) -> tuple[Tensor, Tensor | None]:
    """Images of ``z`` (CPU, [-1, 1]) and, with ``layer``, its activations (N, C, H, W) on the CPU."""
    module = dict(model.generator.named_modules())[layer.name] if layer is not None else None
    acts: list[Tensor] = []
    handle = module.register_forward_hook(lambda _m, _i, out: acts.append(out.detach().float().cpu().clone())) \
        if module is not None else None
    try:
        images = torch.cat([model.generate(z[i:i + batch_size], cond=cond, seed=seed + i)
                            for i in range(0, z.shape[0], batch_size)])
    finally:
        if handle is not None:
            handle.remove()
    return images, (torch.cat(acts) if acts else None)


def region_change(before: Tensor, after: Tensor, region: tuple[int, int, int, int]) -> dict[str, float]:
    """Mean absolute change in 8-bit levels (0-255) inside and outside the region, and their ratio."""
    diff = (after - before).abs().mean(dim=1) * 127.5  # (N, R, R)
    mask = region_pixels(region, diff.shape[-1])
    inside, outside = float(diff[:, mask].mean()), float(diff[:, ~mask].mean())
    return {"inside": round(inside, 4), "outside": round(outside, 4),
            "ratio": round(inside / outside, 4) if outside > 0 else float("inf")}


@dataclass
class Dissection:
    layer: Layer
    region: tuple[int, int, int, int]
    method: str
    scores: Tensor  # (C,) one per feature map: how much it predicts the region
    maps: list[int]  # the maps zeroed
    before: Tensor  # (N, C, R, R)
    after: Tensor
    change: dict[str, float]
    control: dict = field(default_factory=dict)  # the same with random maps

    def figure(self, show: int = 8) -> tuple[Tensor, int]:
        """``(images, nrow)``: samples before, after, and the change (dark = changed most, the
        region outlined)."""
        before, after = self.before[:show], self.after[:show]
        diff = (after - before).abs().mean(dim=1, keepdim=True)
        shade = (1 - 2 * diff / diff.max().clamp_min(1e-6)).expand_as(before).clone()
        x0, y0, x1, y1 = self.region
        for c, value in enumerate([1.0, -1.0, -1.0] if shade.shape[1] == 3 else [0.0]):  # a red (grey) box
            shade[:, c, y0:y1, [x0, x1 - 1]] = value
            shade[:, c, [y0, y1 - 1], x0:x1] = value
        return torch.cat([before, after, shade]), before.shape[0]

    def summary(self) -> dict:
        return {"layer": {"index": self.layer.index, "name": self.layer.name, "maps": self.layer.channels,
                          "size": list(self.layer.size)},
                "region": list(self.region), "method": self.method, "samples": int(self.before.shape[0]),
                "dropped": self.maps, "scores": [round(float(s), 4) for s in self.scores[self.maps]],
                "change": self.change, "control": self.control}


def random_maps(channels: int, k: int, seed: int) -> list[int]:
    return sorted(torch.randperm(channels, generator=torch.Generator().manual_seed(seed))[:k].tolist())


@torch.no_grad()
def dissect(model, layer: str | int | Layer, region: str | tuple[int, int, int, int], *, top: int = 3,
            n: int = 256, seed: int = 0, method: str = "logistic", maps: list[int] | None = None,
            controls: int = 3, cond=None) -> Dissection:
    """Zero the ``top`` feature maps of ``layer`` that best predict ``region`` (or the given
    ``maps``) over ``n`` samples of ``seed``; measure the change inside vs outside the region,
    and the same for ``controls`` draws of as many random maps (their mean)."""
    check_model(model)
    layer = layer if isinstance(layer, Layer) else find_layer(model, layer)
    resolution = model.config.resolution
    region = parse_region(",".join(map(str, region)), resolution) if not isinstance(region, str) \
        else parse_region(region, resolution)
    if method not in METHODS:
        raise GankitError(f"unknown --method {method!r}: use one of {', '.join(METHODS)}")
    if n < 2:
        raise GankitError(f"need at least 2 samples, got {n}")
    z = model.latents(n, seed=seed)
    before, acts = generate(model, z, cond=cond, seed=seed, layer=layer)
    scores = METHODS[method](acts, region_cells(layer.size, region, resolution))
    if maps is None:
        if not 1 <= top < layer.channels:
            raise GankitError(f"--top must be between 1 and {layer.channels - 1} (layer {layer.name} has "
                              f"{layer.channels} maps), got {top}")
        maps = sorted(scores.argsort(descending=True)[:top].tolist())
    elif not maps or not all(0 <= m < layer.channels for m in maps):
        raise GankitError(f"maps must be indices in 0-{layer.channels - 1}, got {maps}")
    with zeroed(model, layer, maps):
        after, _ = generate(model, z, cond=cond, seed=seed)
    out = Dissection(layer, region, method, scores, list(maps), before, after, region_change(before, after, region))
    if controls > 0:
        draws = [random_maps(layer.channels, len(maps), seed + 1 + i) for i in range(controls)]
        changes = []
        for drawn in draws:
            with zeroed(model, layer, drawn):
                changes.append(region_change(before, generate(model, z, cond=cond, seed=seed)[0], region))
        mean = {k: round(sum(c[k] for c in changes) / len(changes), 4) for k in ("inside", "outside", "ratio")}
        out.control = {"draws": controls, "maps": draws, **mean, "ratios": [c["ratio"] for c in changes]}
    return out
