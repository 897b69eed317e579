"""Parameter names of StyleGAN2 checkpoints, and the architecture their tensors imply.

gankit's StyleGAN2 networks (:mod:`gankit.nn.stylegan2`) carry the names of NVlabs'
stylegan2-ada-pytorch ``training/networks.py``, so an NVlabs state dict loads as it is. rosinality's
``stylegan2-pytorch`` ``model.py`` names the same layers differently and shapes a few tensors
differently (a leading 1 on modulated weights, the constant input and the noise maps; biases of
ToRGB as (1, 3, 1, 1); noise strengths of shape (1,)); it also stores FIR kernels (the [1, 3, 3, 1]
filter, times 4 where it upsamples) as buffers, which are checked and dropped on import and
written back on export. :func:`rosinality_pairs` lists (gankit name, rosinality name) for one
architecture; the conversions reshape tensors to the target's shapes.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

import torch

from gankit.errors import GankitError
from gankit.nn.stylegan2 import channels_at


@dataclass(frozen=True)
class Architecture:
    """What the tensors of a StyleGAN2 generator fix (everything but the mapping's lr multiplier
    and the activation clamp, which the caller supplies)."""

    resolution: int
    img_channels: int
    z_dim: int
    w_dim: int
    map_layers: int
    channel_base: int
    channel_max: int

    @property
    def resolutions(self) -> list[int]:
        return [2 ** i for i in range(2, int(math.log2(self.resolution)) + 1)]


# ---- reading the architecture from gankit-named tensors -----------------------------------------
def generator_architecture(sd: dict[str, torch.Tensor]) -> Architecture:
    """The architecture of a gankit/NVlabs-named generator state dict; GankitError if it is not a
    StyleGAN2 generator gankit can hold (e.g. StyleGAN3's alias-free networks, or a conditional one)."""
    if any(k.startswith("mapping.embed.") for k in sd):
        raise GankitError("this generator is conditional (a class-label embedding in its mapping network); "
                          "gankit imports unconditional StyleGAN2 generators only")
    if any(k.startswith("synthesis.input.") for k in sd):
        raise GankitError("this is a StyleGAN3 (alias-free) generator; gankit imports StyleGAN2 networks only")
    res = sorted(int(m.group(1)) for k in sd if (m := re.match(r"synthesis\.b(\d+)\.conv1\.weight$", k)))
    fcs = sorted(int(m.group(1)) for k in sd if (m := re.match(r"mapping\.fc(\d+)\.weight$", k)))
    if not res or not fcs or res[0] != 4 or fcs != list(range(len(fcs))):
        raise GankitError("no StyleGAN2 generator found (expected mapping.fc*, synthesis.b4 ... tensors)")
    resolution = res[-1]
    if res != [2 ** i for i in range(2, int(math.log2(resolution)) + 1)]:
        raise GankitError(f"the synthesis blocks {res} are not the powers of two from 4 to {resolution}")
    widths = {r: sd[f"synthesis.b{r}.conv1.weight"].shape[0] for r in res}
    base, cmax = _channel_rule(widths, resolution)
    fc0 = sd["mapping.fc0.weight"]
    return Architecture(resolution=resolution, img_channels=sd[f"synthesis.b{resolution}.torgb.weight"].shape[0],
                        z_dim=fc0.shape[1], w_dim=sd[f"mapping.fc{fcs[-1]}.weight"].shape[0],
                        map_layers=len(fcs), channel_base=base, channel_max=cmax)


def _channel_rule(widths: dict[int, int], resolution: int) -> tuple[int, int]:
    """channel_base and channel_max with min(base / R, max) = the widths found (the authors' rule)."""
    cmax = max(widths.values())
    below = [w * r for r, w in widths.items() if w < cmax]
    candidates = sorted({32768, 16384, *below, cmax * resolution})
    for base in ([32768, 16384] + candidates):
        if all(channels_at(r, base, cmax) == w for r, w in widths.items()):
            return base, cmax
    raise GankitError(f"the feature maps per resolution {widths} do not follow min(channel_base / R, channel_max); "
                      f"gankit's StyleGAN2 cannot hold these weights")


def discriminator_matches(sd: dict[str, torch.Tensor], arch: Architecture) -> str | None:
    """None if a gankit/NVlabs-named discriminator state dict fits ``arch``'s resolution and widths
    (the residual D of StyleGAN2 config F); else why not, in words."""
    r = arch.resolution
    if f"b{r}.fromrgb.weight" not in sd or "b4.out.weight" not in sd:
        return "not a residual StyleGAN2 discriminator (no b{R}.fromrgb / b4.out)"
    if any(k.startswith("mapping.") or k.startswith("b4.cmap") for k in sd):
        return "a conditional discriminator"
    if any(k.startswith(f"b{res}.fromrgb.") for res in arch.resolutions[:-1] for k in sd):
        return "a 'skip' discriminator (fromRGB at every resolution); gankit's is residual"
    widths = {res: sd[f"b{res}.conv0.weight"].shape[0] for res in arch.resolutions[1:]}
    widths[4] = sd["b4.conv.weight"].shape[0]
    for res, width in widths.items():
        if width != channels_at(res, arch.channel_base, arch.channel_max):
            return f"its widths {widths} differ from the generator's rule"
    if sd["b4.conv.weight"].shape[1] != widths[4] + 1:
        return "its minibatch-stddev layer has more than one channel"
    return None


# ---- rosinality's names -------------------------------------------------------------------------
def rosinality_generator_pairs(arch: Architecture) -> list[tuple[str, str]]:
    """(gankit name, rosinality name) for every generator tensor (without FIR kernels, w_avg)."""
    pairs = []
    for i in range(arch.map_layers):
        pairs += [(f"mapping.fc{i}.weight", f"style.{i + 1}.weight"), (f"mapping.fc{i}.bias", f"style.{i + 1}.bias")]

    def styled(ours: str, theirs: str, noise_index: int):
        return [(f"{ours}.weight", f"{theirs}.conv.weight"), (f"{ours}.affine.weight", f"{theirs}.conv.modulation.weight"),
                (f"{ours}.affine.bias", f"{theirs}.conv.modulation.bias"), (f"{ours}.noise_strength", f"{theirs}.noise.weight"),
                (f"{ours}.bias", f"{theirs}.activate.bias"), (f"{ours}.noise_const", f"noises.noise_{noise_index}")]

    def torgb(ours: str, theirs: str):
        return [(f"{ours}.weight", f"{theirs}.conv.weight"), (f"{ours}.affine.weight", f"{theirs}.conv.modulation.weight"),
                (f"{ours}.affine.bias", f"{theirs}.conv.modulation.bias"), (f"{ours}.bias", f"{theirs}.bias")]

    pairs += [("synthesis.b4.const", "input.input")] + styled("synthesis.b4.conv1", "conv1", 0)
    pairs += torgb("synthesis.b4.torgb", "to_rgb1")
    for j, res in enumerate(arch.resolutions[1:]):
        pairs += styled(f"synthesis.b{res}.conv0", f"convs.{2 * j}", 2 * j + 1)
        pairs += styled(f"synthesis.b{res}.conv1", f"convs.{2 * j + 1}", 2 * j + 2)
        pairs += torgb(f"synthesis.b{res}.torgb", f"to_rgbs.{j}")
    return pairs


def rosinality_discriminator_pairs(arch: Architecture) -> list[tuple[str, str]]:
    """(gankit name, rosinality name) for every discriminator tensor (without FIR kernels)."""
    top = arch.resolution
    pairs = [(f"b{top}.fromrgb.weight", "convs.0.0.weight"), (f"b{top}.fromrgb.bias", "convs.0.1.bias")]
    for k, res in enumerate(reversed(arch.resolutions[1:]), start=1):
        pairs += [(f"b{res}.conv0.weight", f"convs.{k}.conv1.0.weight"), (f"b{res}.conv0.bias", f"convs.{k}.conv1.1.bias"),
                  (f"b{res}.conv1.weight", f"convs.{k}.conv2.1.weight"), (f"b{res}.conv1.bias", f"convs.{k}.conv2.2.bias"),
                  (f"b{res}.skip.weight", f"convs.{k}.skip.1.weight")]
    pairs += [("b4.conv.weight", "final_conv.0.weight"), ("b4.conv.bias", "final_conv.1.bias"),
              ("b4.fc.weight", "final_linear.0.weight"), ("b4.fc.bias", "final_linear.0.bias"),
              ("b4.out.weight", "final_linear.1.weight"), ("b4.out.bias", "final_linear.1.bias")]
    return pairs


def rosinality_kernels(arch: Architecture) -> dict[str, tuple[str, torch.Tensor]]:
    """rosinality's FIR kernel buffers: name -> (network, expected value)."""
    k = torch.tensor([1.0, 3.0, 3.0, 1.0])
    k = torch.outer(k, k)
    k = k / k.sum()
    out = {}
    for j in range(len(arch.resolutions) - 1):
        out[f"convs.{2 * j}.conv.blur.kernel"] = ("g", k * 4)
        out[f"to_rgbs.{j}.upsample.kernel"] = ("g", k * 4)
    for i in range(1, len(arch.resolutions)):
        out[f"convs.{i}.conv2.0.kernel"] = ("d", k)
        out[f"convs.{i}.skip.0.kernel"] = ("d", k)
    return out


def rosinality_generator_architecture(sd: dict[str, torch.Tensor]) -> Architecture:
    """The architecture of a rosinality generator state dict (``g_ema``)."""
    styles = sorted(int(m.group(1)) for k in sd if (m := re.match(r"style\.(\d+)\.weight$", k)))
    if "input.input" not in sd or not styles or styles != list(range(1, len(styles) + 1)):
        raise GankitError("no rosinality StyleGAN2 generator found (expected style.N.weight, input.input, convs.*)")
    if any(k.startswith("convs.") and ".conv.weight" not in k and k.endswith("dwt") for k in sd):
        raise GankitError("this is a SWAGAN generator; gankit imports StyleGAN2 only")
    n_rgbs = len({k.split(".")[1] for k in sd if k.startswith("to_rgbs.")})
    resolution = 4 * 2 ** n_rgbs
    widths = {4: sd["input.input"].shape[1]}
    for j, res in enumerate([2 ** i for i in range(3, int(math.log2(resolution)) + 1)]):
        widths[res] = sd[f"convs.{2 * j + 1}.conv.weight"].shape[1]
    base, cmax = _channel_rule(widths, resolution)
    return Architecture(resolution=resolution, img_channels=sd["to_rgb1.conv.weight"].shape[1],
                        z_dim=sd["style.1.weight"].shape[1], w_dim=sd[f"style.{styles[-1]}.weight"].shape[0],
                        map_layers=len(styles), channel_base=base, channel_max=cmax)


def convert(sd: dict[str, torch.Tensor], pairs: list[tuple[str, str]], target: dict[str, torch.Size], *,
            to_gankit: bool, what: str) -> dict[str, torch.Tensor]:
    """Rename ``sd``'s tensors by ``pairs`` (gankit, rosinality) in the given direction and reshape
    each to the target's shape (same number of elements)."""
    out = {}
    for ours, theirs in pairs:
        src, dst = (theirs, ours) if to_gankit else (ours, theirs)
        if src not in sd:
            raise GankitError(f"the {what} has no tensor {src!r}: not the layout gankit expects")
        value, shape = sd[src], target[dst]
        if value.numel() != math.prod(shape):
            raise GankitError(f"{what} tensor {src!r} has shape {tuple(value.shape)}, expected {tuple(shape)} elements")
        out[dst] = value.detach().float().reshape(shape).clone()
    return out
