"""The per-iteration work of the reference PyTorch DCGAN example, for timing beside gankit.

What this reproduces (read from pytorch/examples, ``dcgan/main.py``; written here from scratch,
nothing copied): the 64x64 DCGAN of that example, i.e.

* G: a transposed-convolution stack nz -> 8*ngf x 4x4 -> 4*ngf x 8x8 -> 2*ngf x 16x16 ->
  ngf x 32x32 -> nc x 64x64, BatchNorm + ReLU after every layer but the last, Tanh at the end;
* D: the mirror image with strided convolutions, LeakyReLU(0.2), BatchNorm on every layer
  but the first, a final 4x4 convolution to one value and a **Sigmoid**, trained with
  ``nn.BCELoss`` (the example scores probabilities; gankit scores logits with softplus);
* no biases in any convolution; weights ~ N(0, 0.02), BatchNorm scale ~ N(1, 0.02), shift 0;
* two ``Adam(lr=2e-4, betas=(0.5, 0.999))`` optimizers;
* one iteration = D backward on a real batch (target 1); **one** G forward on fresh noise;
  D backward on that fake batch detached (target 0); D step; then D forward on the **same**
  fake batch (not detached, target 1), backward through D and G, G step. The example also
  reads five scalars with ``.item()`` for its progress line; we do the same (a device sync on
  a GPU) but print nothing. Its image snapshots (every 100 iterations) and per-epoch
  checkpoints are left out.

How it differs from a gankit step (``Trainer.train_step`` of the ``dcgan`` family): gankit draws
the fake batch for the D phase under ``no_grad`` and then runs a **second**, fresh G forward
for the G phase (about one more G forward per step), updates an EMA copy of G, and reseeds
the random generators each step; it also does D's real and fake forwards before one backward.
Its networks return logits (no Sigmoid) and its loss is the softplus form of the same BCE.

Data: the caller hands in the same in-memory uint8 images gankit trains on; each iteration
takes a shuffled batch of them and scales it to [-1, 1] like gankit's engine does, so neither
side pays for decoding (``bench/throughput.py`` can time the example script itself, with its
own FakeData loader, as ``reference-example-script``).
"""

from __future__ import annotations

import torch
from torch import nn


def _init_like_example(module: nn.Module) -> None:
    """Conv weights ~ N(0, 0.02); BatchNorm weight ~ N(1, 0.02) and bias 0."""
    with torch.no_grad():
        for m in module.modules():
            if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
                m.weight.normal_(0.0, 0.02)
            elif isinstance(m, nn.BatchNorm2d):
                m.weight.normal_(1.0, 0.02)
                m.bias.zero_()


def build_generator(nz: int = 100, ngf: int = 64, nc: int = 3) -> nn.Module:
    """(N, nz, 1, 1) noise -> (N, nc, 64, 64) images."""
    widths = [nz, ngf * 8, ngf * 4, ngf * 2, ngf]
    layers: list[nn.Module] = []
    for i, (cin, cout) in enumerate(zip(widths[:-1], widths[1:])):
        stride, pad = (1, 0) if i == 0 else (2, 1)  # 1x1 -> 4x4, then doubling
        layers += [nn.ConvTranspose2d(cin, cout, 4, stride, pad, bias=False), nn.BatchNorm2d(cout), nn.ReLU(True)]
    layers += [nn.ConvTranspose2d(ngf, nc, 4, 2, 1, bias=False), nn.Tanh()]
    net = nn.Sequential(*layers)
    _init_like_example(net)
    return net


class _Discriminator(nn.Module):
    """(N, nc, 64, 64) images -> (N,) probabilities (the example ends D in a Sigmoid)."""

    def __init__(self, nc: int, ndf: int):
        super().__init__()
        widths = [nc, ndf, ndf * 2, ndf * 4, ndf * 8]
        layers: list[nn.Module] = []
        for i, (cin, cout) in enumerate(zip(widths[:-1], widths[1:])):
            layers.append(nn.Conv2d(cin, cout, 4, 2, 1, bias=False))
            if i > 0:  # no BatchNorm right after the input
                layers.append(nn.BatchNorm2d(cout))
            layers.append(nn.LeakyReLU(0.2, inplace=True))
        layers += [nn.Conv2d(ndf * 8, 1, 4, 1, 0, bias=False), nn.Sigmoid()]
        self.body = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x).reshape(-1)


def build_discriminator(ndf: int = 64, nc: int = 3) -> nn.Module:
    net = _Discriminator(nc, ndf)
    _init_like_example(net)
    return net


class ReferenceLoop:
    """The example's training iteration on in-memory uint8 images ``(N, nc, 64, 64)``.

    ``step()`` runs one iteration and returns the number of real images it consumed.
    """

    def __init__(self, images: torch.Tensor, device: torch.device | str = "cpu", *, batch_size: int = 64,
                 nz: int = 100, ngf: int = 64, ndf: int = 64, lr: float = 2e-4, beta1: float = 0.5,
                 seed: int = 0, read_stats: bool = True):
        self.device = torch.device(device)
        self.batch_size, self.nz, self.read_stats = batch_size, nz, read_stats
        nc = images.shape[1]
        torch.manual_seed(seed)
        self.G = build_generator(nz, ngf, nc).to(self.device)
        self.D = build_discriminator(ndf, nc).to(self.device)
        self.bce = nn.BCELoss()
        self.opt_g = torch.optim.Adam(self.G.parameters(), lr=lr, betas=(beta1, 0.999))
        self.opt_d = torch.optim.Adam(self.D.parameters(), lr=lr, betas=(beta1, 0.999))
        self.images = images.to(self.device)
        self.gen = torch.Generator(device="cpu").manual_seed(seed)
        self._order = torch.empty(0, dtype=torch.long)
        self._pos = 0
        self.stats: dict[str, float] = {}

    def _real_batch(self) -> torch.Tensor:
        # Shuffled epochs with drop-last, the DataLoader(shuffle=True) order in miniature.
        if self._pos + self.batch_size > len(self._order):
            self._order = torch.randperm(len(self.images), generator=self.gen)
            self._pos = 0
        idx = self._order[self._pos:self._pos + self.batch_size].to(self.images.device)
        self._pos += self.batch_size
        return self.images[idx].float().div_(127.5).sub_(1.0)

    def step(self) -> int:
        real = self._real_batch()
        n = real.shape[0]
        ones = torch.ones(n, device=self.device)
        zeros = torch.zeros(n, device=self.device)

        # D update: real batch towards 1, one fake batch (detached) towards 0, then one step.
        self.D.zero_grad()
        p_real = self.D(real)
        loss_real = self.bce(p_real, ones)
        loss_real.backward()
        fake = self.G(torch.randn(n, self.nz, 1, 1, device=self.device))
        p_fake = self.D(fake.detach())
        loss_fake = self.bce(p_fake, zeros)
        loss_fake.backward()
        self.opt_d.step()

        # G update: the same fake batch, now scored as real, gradients flow back into G.
        self.G.zero_grad()
        p_fake_g = self.D(fake)
        loss_g = self.bce(p_fake_g, ones)
        loss_g.backward()
        self.opt_g.step()

        if self.read_stats:  # the example's progress line reads these every iteration
            self.stats = {"loss_d": (loss_real + loss_fake).item(), "loss_g": loss_g.item(),
                          "d_x": p_real.mean().item(), "d_g_z1": p_fake.mean().item(),
                          "d_g_z2": p_fake_g.mean().item()}
        return n
