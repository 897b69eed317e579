"""Networks of the image-to-image translation families.

- pix2pix (Isola et al. 2017, "Image-to-Image Translation with Conditional Adversarial Networks",
  arXiv:1611.07004): the U-Net generator (§3.2.1, App. 6.1.1) and the PatchGAN discriminator
  (§3.2.2, App. 6.1.2).
- CycleGAN (Zhu et al. 2017, arXiv:1703.10593, App. 7.2): Johnson et al.'s (2016) residual
  generator with reflection padding and instance norm, and the image pool of past fakes (§4,
  after Shrivastava et al. 2017).
- DiscoGAN (Kim et al. 2017, arXiv:1703.05192, §4): an encoder-decoder without skips and a
  discriminator made of the same encoder.
- StarGAN (Choi et al. 2018, arXiv:1711.09020, App. 7.2 / Table 4): a residual generator
  conditioned on a target-attribute vector, and a PatchGAN discriminator with an auxiliary
  attribute classifier.

Every image is NCHW in [-1, 1] (generators end in tanh); discriminators return logits. Input and
output channels are independent (a 1-channel edge map can translate to a 3-channel photo).
Layer widths, biases and norms follow the authors' code (junyanz/pytorch-CycleGAN-and-pix2pix,
SKTBrain/DiscoGAN, yunjey/stargan), so at their reference sizes the parameter counts are theirs.
The networks start with PyTorch's default init; pix2pix and CycleGAN re-initialise with
:func:`init_weights`.
"""

from __future__ import annotations

import operator
from collections.abc import Iterable

import torch
import torch.nn.functional as F
from torch import nn

from gankit.errors import GankitError

MIN_RESOLUTION = 16
NORMS = ("batch", "instance")


# ---- helpers -------------------------------------------------------------------------------------
def check_resolution(resolution: int, what: str) -> int:
    """log2(resolution) for a power of two >= 16; a one-line GankitError naming ``what`` otherwise."""
    try:
        r = operator.index(resolution)
    except TypeError:
        r = 0
    if isinstance(resolution, bool) or r < MIN_RESOLUTION or r & (r - 1):
        raise GankitError(f"{what} needs a power-of-two resolution >= {MIN_RESOLUTION}, got {resolution!r}")
    return r.bit_length() - 1


def _check_norm(norm: str, what: str, allowed: tuple[str, ...] = NORMS) -> None:
    if norm not in allowed:
        raise GankitError(f"unknown {what} norm {norm!r}; choose from {', '.join(allowed)}")


def _check_sides(x: torch.Tensor, multiple: int, what: str) -> None:
    h, w = x.shape[-2:]
    if h % multiple or w % multiple:
        raise GankitError(f"{what} needs image sides divisible by {multiple}, got {h}x{w}")


def _norm(kind: str, width: int) -> list[nn.Module]:
    """BatchNorm, or InstanceNorm without affine map or running statistics (the pix2pix/CycleGAN
    code's ``get_norm_layer``), or nothing."""
    if kind == "batch":
        return [nn.BatchNorm2d(width)]
    if kind == "instance":
        return [nn.InstanceNorm2d(width)]
    return []


@torch.no_grad()
def init_weights(module: nn.Module, gain: float = 0.02) -> nn.Module:
    """pix2pix/CycleGAN's ``init_weights('normal')``: conv/linear weights ~ N(0, gain), norm scales
    ~ N(1, gain), every bias 0 (Isola et al. App. 6.2; Zhu et al. §4). In place; returns ``module``."""
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
            nn.init.normal_(m.weight, 0.0, gain)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, (nn.BatchNorm2d, nn.InstanceNorm2d, nn.GroupNorm)) and m.weight is not None:
            nn.init.normal_(m.weight, 1.0, gain)
            nn.init.zeros_(m.bias)
    return module


def _side(v: int | tuple[int, ...]) -> int:
    return v if isinstance(v, int) else v[0]


def receptive_field(layers: nn.Module | Iterable[nn.Module]) -> int:
    """Side of the input patch that one output unit sees through a chain of convolutions and poolings
    applied in registration order (pointwise layers don't widen it): r = 1 + sum (k_l - 1) d_l J_l,
    J_l the product of the earlier strides. The PatchGAN's 70x70 of pix2pix §3.2.2."""
    mods = layers.modules() if isinstance(layers, nn.Module) else (m for lay in layers for m in lay.modules())
    rf, jump = 1, 1
    for m in mods:
        if isinstance(m, nn.ConvTranspose2d):
            raise TypeError("receptive_field walks downsampling chains; transposed convolutions are not one")
        if isinstance(m, (nn.Conv2d, nn.MaxPool2d, nn.AvgPool2d)):
            kernel, stride = _side(m.kernel_size), _side(m.stride or m.kernel_size)
            dilation = _side(getattr(m, "dilation", 1))
            rf += (kernel - 1) * dilation * jump
            jump *= stride
    return rf


class NoiseDropout(nn.Dropout):
    """Dropout that can stay on in eval mode: pix2pix's generator gets its noise only from dropout,
    "applied at both training and test time" (§3.2.1). With ``at_eval=False`` it is plain dropout."""

    def __init__(self, p: float = 0.5, at_eval: bool = False):
        super().__init__(p)
        self.at_eval = at_eval

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.dropout(x, self.p, self.training or self.at_eval)


# ---- pix2pix -------------------------------------------------------------------------------------
class UNetGenerator(nn.Module):
    """pix2pix's U-Net (§3.2.1, App. 6.1.1), (N, in_channels, R, R) -> (N, out_channels, R, R).

    Encoder: log2(R) 4x4 stride-2 convs, C64-C128-C256-C512-C512-... (``ngf`` times
    min(2^i, 8)) down to 1x1, LeakyReLU(0.2), no norm on the first and the innermost layer.
    Decoder: the mirror in transposed convs with ReLU, each layer's output concatenated with the
    encoder features of the same size (the skips), tanh out. Dropout(``dropout``) follows the first
    three decoder layers (the innermost ones, CD512-CD1024-CD1024 in App. 6.1.1; the authors' code
    puts it one layer further out). Convs carry biases only with instance norm, except the output
    layer, as in the authors' code: at R = 256, ngf = 64, batch norm it is their ``unet_256``.

    Dropout follows train()/eval() unless ``dropout_at_eval`` (an attribute too) keeps it on, as
    pix2pix does at test time for its stochasticity.
    """

    def __init__(self, in_channels: int, out_channels: int, resolution: int, ngf: int = 64,
                 dropout: float = 0.5, norm: str = "batch", *, dropout_at_eval: bool = False):
        super().__init__()
        depth = check_resolution(resolution, "UNetGenerator")
        _check_norm(norm, "U-Net")
        if not 0.0 <= dropout < 1.0:
            raise GankitError(f"U-Net dropout must be in [0, 1), got {dropout}")
        self.resolution, self.depth = resolution, depth
        bias = norm != "batch"
        widths = [ngf * min(2 ** i, 8) for i in range(depth)]
        self.down = nn.ModuleList()
        for i, width in enumerate(widths):
            layers: list[nn.Module] = [] if i == 0 else [nn.LeakyReLU(0.2)]  # not in place: it reads a skip
            layers.append(nn.Conv2d(in_channels if i == 0 else widths[i - 1], width, 4, 2, 1, bias=bias))
            if 0 < i < depth - 1:
                layers += _norm(norm, width)
            self.down.append(nn.Sequential(*layers))
        self.up = nn.ModuleList()  # innermost first
        for j, i in enumerate(reversed(range(depth))):
            inner = widths[i] if i == depth - 1 else 2 * widths[i]
            if i == 0:
                layers = [nn.ReLU(True), nn.ConvTranspose2d(inner, out_channels, 4, 2, 1), nn.Tanh()]
            else:
                layers = [nn.ReLU(True), nn.ConvTranspose2d(inner, widths[i - 1], 4, 2, 1, bias=bias),
                          *_norm(norm, widths[i - 1])]
                if dropout > 0 and j < 3:
                    layers.append(NoiseDropout(dropout))
            self.up.append(nn.Sequential(*layers))
        self.dropout_at_eval = dropout_at_eval

    @property
    def dropout_at_eval(self) -> bool:
        return self._dropout_at_eval

    @dropout_at_eval.setter
    def dropout_at_eval(self, value: bool) -> None:
        self._dropout_at_eval = bool(value)
        for m in self.modules():
            if isinstance(m, NoiseDropout):
                m.at_eval = self._dropout_at_eval

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        _check_sides(x, 2 ** self.depth, "UNetGenerator")
        skips = []
        for down in self.down:
            x = down(x)
            skips.append(x)
        x = skips.pop()  # the 1x1 bottleneck feeds the decoder directly
        for up in self.up:
            x = up(x)
            if skips:
                x = torch.cat([skips.pop(), x], 1)
        return x


class PatchDiscriminator(nn.Module):
    """pix2pix's PatchGAN (§3.2.2, App. 6.1.2), (N, in_channels, H, W) -> logits (N, 1, h, w).

    C64-C128-C256-C512 (``ndf`` times min(2^i, 8)): 4x4 convs with LeakyReLU(0.2), stride 2 for
    the first ``n_layers``, stride 1 for the last feature layer and the 1-channel output conv; no
    norm on the first layer. Each logit judges one patch of ``receptive_field`` pixels a side: 70
    at n_layers = 3 (16 at 1, 34 at 2). For the conditional D the caller concatenates input and
    output images (in_channels = in_A + in_B). Biases as the authors' ``NLayerDiscriminator``.
    """

    def __init__(self, in_channels: int, ndf: int = 64, n_layers: int = 3, norm: str = "batch"):
        super().__init__()
        _check_norm(norm, "PatchGAN", NORMS + ("none",))
        if n_layers < 1:
            raise GankitError(f"a PatchGAN needs n_layers >= 1, got {n_layers}")
        self.n_layers = n_layers
        bias = norm != "batch"
        layers: list[nn.Module] = [nn.Conv2d(in_channels, ndf, 4, 2, 1), nn.LeakyReLU(0.2, True)]
        mult = 1
        for n in range(1, n_layers + 1):
            prev, mult = mult, min(2 ** n, 8)
            layers += [nn.Conv2d(ndf * prev, ndf * mult, 4, 2 if n < n_layers else 1, 1, bias=bias),
                       *_norm(norm, ndf * mult), nn.LeakyReLU(0.2, True)]
        layers.append(nn.Conv2d(ndf * mult, 1, 4, 1, 1))
        self.model = nn.Sequential(*layers)

    @property
    def receptive_field(self) -> int:
        return receptive_field(self.model)

    @property
    def min_size(self) -> int:
        """Smallest image side giving a 1x1 map: n_layers halvings, then two 4x4 stride-1 convs."""
        return 3 * 2 ** self.n_layers

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if min(x.shape[-2:]) < self.min_size:
            raise GankitError(f"a PatchGAN with n_layers={self.n_layers} needs images of at least "
                              f"{self.min_size}x{self.min_size}, got {x.shape[-2]}x{x.shape[-1]}")
        return self.model(x)


# ---- CycleGAN ------------------------------------------------------------------------------------
class ReflectResBlock(nn.Module):
    """Johnson et al.'s residual block as in CycleGAN: x + [pad-conv3x3-norm-ReLU-(dropout)-pad-conv3x3-norm](x)."""

    def __init__(self, width: int, norm: str, bias: bool, dropout: float = 0.0):
        super().__init__()
        self.block = nn.Sequential(
            nn.ReflectionPad2d(1), nn.Conv2d(width, width, 3, bias=bias), *_norm(norm, width), nn.ReLU(True),
            *([nn.Dropout(dropout)] if dropout > 0 else []),
            nn.ReflectionPad2d(1), nn.Conv2d(width, width, 3, bias=bias), *_norm(norm, width))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.block(x)


class ResnetGenerator(nn.Module):
    """CycleGAN's generator (Zhu et al. App. 7.2, after Johnson et al. 2016), fully convolutional,
    (N, in_channels, H, W) -> (N, out_channels, H, W) for sides divisible by 2^n_down:
    c7s1-64, d128, d256, R256 x n_blocks, u128, u64, c7s1-out, tanh, with reflection padding.
    d/u are 3x3 stride-2 (transposed) convs; ``n_down`` generalises the two of the paper. Biases
    only with instance norm (besides the output conv), as the authors' ``resnet_9blocks``."""

    def __init__(self, in_channels: int, out_channels: int, ngf: int = 64, n_blocks: int = 9,
                 norm: str = "instance", n_down: int = 2, dropout: float = 0.0):
        super().__init__()
        _check_norm(norm, "ResNet generator")
        if n_blocks < 0 or n_down < 0:
            raise GankitError(f"ResnetGenerator needs n_blocks, n_down >= 0, got {n_blocks}, {n_down}")
        self.n_down = n_down
        bias = norm != "batch"
        layers: list[nn.Module] = [nn.ReflectionPad2d(3), nn.Conv2d(in_channels, ngf, 7, bias=bias),
                                   *_norm(norm, ngf), nn.ReLU(True)]
        width = ngf
        for _ in range(n_down):
            layers += [nn.Conv2d(width, width * 2, 3, 2, 1, bias=bias), *_norm(norm, width * 2), nn.ReLU(True)]
            width *= 2
        layers += [ReflectResBlock(width, norm, bias, dropout) for _ in range(n_blocks)]
        for _ in range(n_down):
            layers += [nn.ConvTranspose2d(width, width // 2, 3, 2, 1, output_padding=1, bias=bias),
                       *_norm(norm, width // 2), nn.ReLU(True)]
            width //= 2
        layers += [nn.ReflectionPad2d(3), nn.Conv2d(width, out_channels, 7), nn.Tanh()]
        self.model = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        _check_sides(x, 2 ** self.n_down, "ResnetGenerator")
        return self.model(x)


class ImagePool(nn.Module):
    """A buffer of past generated images (Shrivastava et al. 2017; CycleGAN §4 keeps 50), so D also
    sees older fakes. :meth:`query` stores images until ``size`` are held; after that each one is,
    with probability 1/2, swapped for a random stored image (which the new one replaces).

    Randomness comes only from the torch.Generator given to :meth:`query` (one uniform and one
    index per image, whether the pool is full or not), and the pool's state lives in buffers
    (``images``, allocated on the first query, and ``count``), so a checkpoint's state_dict()
    restores it exactly, into a fresh pool too.
    """

    def __init__(self, size: int = 50):
        super().__init__()
        if size < 0:
            raise GankitError(f"the image pool size must be >= 0, got {size}")
        self.size = size
        self.register_buffer("images", torch.empty(0))
        self.register_buffer("count", torch.zeros((), dtype=torch.long))

    def __len__(self) -> int:
        return int(self.count)

    @torch.no_grad()
    def query(self, images: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """(N, C, H, W) fakes -> (N, C, H, W) detached batch, part new and part from the pool."""
        images = images.detach()
        if self.size == 0:
            return images
        if self.images.numel() == 0:
            self.images = images.new_zeros((self.size, *images.shape[1:]))
        elif self.images.shape[1:] != images.shape[1:]:
            raise GankitError(f"the image pool holds images of shape {tuple(self.images.shape[1:])}, "
                              f"got {tuple(images.shape[1:])}")
        n = images.shape[0]
        swap = (torch.rand(n, generator=generator, device=generator.device) < 0.5).tolist()
        slot = torch.randint(self.size, (n,), generator=generator, device=generator.device).tolist()
        out, count = images.clone(), int(self.count)
        for i in range(n):
            if count < self.size:
                self.images[count] = out[i]
                count += 1
            elif swap[i]:
                old = self.images[slot[i]].clone()
                self.images[slot[i]] = out[i]
                out[i] = old
        self.count.fill_(count)
        return out

    def _load_from_state_dict(self, state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys,
                              error_msgs):
        stored = state_dict.get(prefix + "images")
        if (stored is not None and stored.shape != self.images.shape
                and (stored.numel() == 0 or stored.shape[0] == self.size)):
            # the lazily allocated buffer takes the checkpoint's shape; a wrong pool size still fails
            self.images = torch.empty(stored.shape, dtype=stored.dtype, device=self.images.device)
        super()._load_from_state_dict(state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys,
                                      error_msgs)


# ---- DiscoGAN ------------------------------------------------------------------------------------
def _disco_widths(resolution: int, ndf: int, what: str) -> list[int]:
    """Widths of the log2(R) - 2 stride-2 layers from R to 4x4: ``ndf`` times min(2^i, 8) (the
    authors' 64x64 nets are 64-128-256-512; the cap keeps larger resolutions at 8 * ndf)."""
    depth = check_resolution(resolution, what)
    return [ndf * min(2 ** i, 8) for i in range(depth - 2)]


def _disco_encoder(in_channels: int, widths: list[int]) -> nn.ModuleList:
    """4x4 stride-2 convs without bias, LeakyReLU(0.2), BatchNorm on all but the first."""
    blocks = nn.ModuleList()
    for i, width in enumerate(widths):
        conv = nn.Conv2d(in_channels if i == 0 else widths[i - 1], width, 4, 2, 1, bias=False)
        blocks.append(nn.Sequential(conv, *([nn.BatchNorm2d(width)] if i else []), nn.LeakyReLU(0.2, True)))
    return blocks


class DiscoGenerator(nn.Module):
    """DiscoGAN's generator (Kim et al. §4 and the authors' code), (N, in_channels, R, R) ->
    (N, out_channels, R, R): an encoder of 4x4 stride-2 convs (LeakyReLU 0.2, BatchNorm but on
    the first) down to 4x4, then a decoder of 4x4 stride-2 transposed convs (BatchNorm, ReLU) back
    up, tanh out; no skip connections, so everything passes the 4x4 bottleneck. The authors end in
    a sigmoid for [0, 1] images; ours are in [-1, 1]."""

    def __init__(self, in_channels: int, out_channels: int, resolution: int, ngf: int = 64):
        super().__init__()
        widths = _disco_widths(resolution, ngf, "DiscoGenerator")
        self.resolution = resolution
        self.encoder = nn.Sequential(*_disco_encoder(in_channels, widths))
        layers: list[nn.Module] = []
        for i in reversed(range(1, len(widths))):
            layers += [nn.ConvTranspose2d(widths[i], widths[i - 1], 4, 2, 1, bias=False),
                       nn.BatchNorm2d(widths[i - 1]), nn.ReLU(True)]
        layers += [nn.ConvTranspose2d(widths[0], out_channels, 4, 2, 1, bias=False), nn.Tanh()]
        self.decoder = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        _check_sides(x, 2 ** (len(self.encoder)), "DiscoGenerator")
        return self.decoder(self.encoder(x))


class DiscoDiscriminator(nn.Module):
    """DiscoGAN's discriminator (Kim et al. §4): the generator's encoder down to 4x4, then a 4x4
    conv to one logit per image, (N, in_channels, R, R) -> (N,) (the authors' sigmoid is left to
    the loss). ``forward(x, return_features=True)`` also returns the activations of the
    batch-normed layers, which the authors' code matches between real and fake (feature loss)."""

    def __init__(self, in_channels: int, resolution: int, ndf: int = 64):
        super().__init__()
        widths = _disco_widths(resolution, ndf, "DiscoDiscriminator")
        self.resolution = resolution
        self.blocks = _disco_encoder(in_channels, widths)
        self.head = nn.Conv2d(widths[-1], 1, 4, 1, 0, bias=False)

    def forward(self, x: torch.Tensor, return_features: bool = False
                ) -> torch.Tensor | tuple[torch.Tensor, list[torch.Tensor]]:
        if x.shape[-2:] != (self.resolution, self.resolution):
            raise GankitError(f"DiscoDiscriminator was built for {self.resolution}x{self.resolution} "
                              f"images, got {x.shape[-2]}x{x.shape[-1]}")
        features = []
        for i, block in enumerate(self.blocks):
            x = block(x)
            if i:
                features.append(x)
        logits = self.head(x).reshape(x.shape[0])
        return (logits, features) if return_features else logits


# ---- StarGAN -------------------------------------------------------------------------------------
def _star_norm(width: int, track_running_stats: bool) -> nn.InstanceNorm2d:
    return nn.InstanceNorm2d(width, affine=True, track_running_stats=track_running_stats)


class StarResBlock(nn.Module):
    """StarGAN's bottleneck block: x + [conv3x3-IN-ReLU-conv3x3-IN](x), zero padding, no biases."""

    def __init__(self, width: int, track_running_stats: bool = True):
        super().__init__()
        self.block = nn.Sequential(
            nn.Conv2d(width, width, 3, 1, 1, bias=False), _star_norm(width, track_running_stats), nn.ReLU(True),
            nn.Conv2d(width, width, 3, 1, 1, bias=False), _star_norm(width, track_running_stats))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.block(x)


class StarGenerator(nn.Module):
    """StarGAN's generator (Choi et al. App. 7.2, Table 4), (x (N, channels, R, R), c (N, K)) ->
    (N, channels, R, R): c is tiled over the image and concatenated to it, then 7x7 conv-IN-ReLU,
    two 4x4 stride-2 downsamplings, ``repeat_num`` residual blocks, two 4x4 stride-2 transposed
    upsamplings, 7x7 conv, tanh. Instance norms are affine and, as in the authors' code, track
    running statistics, which eval() then uses instead of each image's own (set
    ``track_running_stats=False`` for per-image statistics at test time too)."""

    def __init__(self, channels: int, num_attributes: int, resolution: int, conv_dim: int = 64,
                 repeat_num: int = 6, *, track_running_stats: bool = True):
        super().__init__()
        check_resolution(resolution, "StarGenerator")
        self.num_attributes = num_attributes
        t = track_running_stats
        layers: list[nn.Module] = [nn.Conv2d(channels + num_attributes, conv_dim, 7, 1, 3, bias=False),
                                   _star_norm(conv_dim, t), nn.ReLU(True)]
        width = conv_dim
        for _ in range(2):
            layers += [nn.Conv2d(width, width * 2, 4, 2, 1, bias=False), _star_norm(width * 2, t), nn.ReLU(True)]
            width *= 2
        layers += [StarResBlock(width, t) for _ in range(repeat_num)]
        for _ in range(2):
            layers += [nn.ConvTranspose2d(width, width // 2, 4, 2, 1, bias=False), _star_norm(width // 2, t),
                       nn.ReLU(True)]
            width //= 2
        layers += [nn.Conv2d(width, channels, 7, 1, 3, bias=False), nn.Tanh()]
        self.main = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        if c.dim() != 2 or c.shape != (x.shape[0], self.num_attributes):
            raise GankitError(f"StarGenerator needs target attributes of shape ({x.shape[0]}, "
                              f"{self.num_attributes}), got {tuple(c.shape)}")
        _check_sides(x, 4, "StarGenerator")
        tiled = c.to(x.dtype)[:, :, None, None].expand(-1, -1, *x.shape[-2:])
        return self.main(torch.cat([x, tiled], 1))


class StarDiscriminator(nn.Module):
    """StarGAN's discriminator (Choi et al. App. 7.2, Table 4), (N, channels, R, R) ->
    (src (N, 1, h, h), cls (N, K)): 4x4 stride-2 convs with LeakyReLU(0.01), doubling from
    ``conv_dim``; src is a PatchGAN map of real/fake logits from a 3x3 conv, cls the attribute
    logits from a conv whose kernel covers the whole final map (h x h).

    There are min(repeat_num, log2(R) - 1) stride-2 layers, so the final map is at least 2x2:
    6 at R = 128 (the paper's 2x2), 3 at R = 16, 4 at R = 32.
    """

    def __init__(self, channels: int, num_attributes: int, resolution: int, conv_dim: int = 64,
                 repeat_num: int = 6):
        super().__init__()
        depth = check_resolution(resolution, "StarDiscriminator")
        if repeat_num < 1:
            raise GankitError(f"StarDiscriminator needs repeat_num >= 1, got {repeat_num}")
        self.resolution, self.num_downsamplings = resolution, min(repeat_num, depth - 1)
        layers: list[nn.Module] = []
        width = conv_dim
        for i in range(self.num_downsamplings):
            layers += [nn.Conv2d(channels if i == 0 else width // 2, width, 4, 2, 1), nn.LeakyReLU(0.01)]
            width *= 2
        width //= 2
        self.main = nn.Sequential(*layers)
        self.src = nn.Conv2d(width, 1, 3, 1, 1, bias=False)
        self.cls = nn.Conv2d(width, num_attributes, resolution >> self.num_downsamplings, bias=False)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if x.shape[-2:] != (self.resolution, self.resolution):
            raise GankitError(f"StarDiscriminator was built for {self.resolution}x{self.resolution} "
                              f"images, got {x.shape[-2]}x{x.shape[-1]}")
        h = self.main(x)
        return self.src(h), self.cls(h).reshape(x.shape[0], -1)
