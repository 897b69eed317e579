from torch import nn

from gankit.config import build_config
from gankit.families.dcgan import DCGAN

from .common import FamilyTests


class TestDCGAN(FamilyTests):
    family = "dcgan"


def _count(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def _reference_dcgan(nz=100, ngf=64, ndf=64, nc=3):
    """The layers of the reference PyTorch DCGAN example (pytorch/examples, dcgan/main.py) at 64x64."""
    G = nn.Sequential(
        nn.ConvTranspose2d(nz, ngf * 8, 4, 1, 0, bias=False), nn.BatchNorm2d(ngf * 8), nn.ReLU(True),
        nn.ConvTranspose2d(ngf * 8, ngf * 4, 4, 2, 1, bias=False), nn.BatchNorm2d(ngf * 4), nn.ReLU(True),
        nn.ConvTranspose2d(ngf * 4, ngf * 2, 4, 2, 1, bias=False), nn.BatchNorm2d(ngf * 2), nn.ReLU(True),
        nn.ConvTranspose2d(ngf * 2, ngf, 4, 2, 1, bias=False), nn.BatchNorm2d(ngf), nn.ReLU(True),
        nn.ConvTranspose2d(ngf, nc, 4, 2, 1, bias=False), nn.Tanh())
    D = nn.Sequential(
        nn.Conv2d(nc, ndf, 4, 2, 1, bias=False), nn.LeakyReLU(0.2, inplace=True),
        nn.Conv2d(ndf, ndf * 2, 4, 2, 1, bias=False), nn.BatchNorm2d(ndf * 2), nn.LeakyReLU(0.2, inplace=True),
        nn.Conv2d(ndf * 2, ndf * 4, 4, 2, 1, bias=False), nn.BatchNorm2d(ndf * 4), nn.LeakyReLU(0.2, inplace=True),
        nn.Conv2d(ndf * 4, ndf * 8, 4, 2, 1, bias=False), nn.BatchNorm2d(ndf * 8), nn.LeakyReLU(0.2, inplace=True),
        nn.Conv2d(ndf * 8, 1, 4, 1, 0, bias=False))
    return G, D


def _torch_type(module):
    return next(t for t in type(module).__mro__ if t.__module__.startswith("torch.nn"))


def test_paper_preset_is_the_reference_architecture():
    config = build_config(DCGAN.Config, preset="paper")
    assert (config.nz, config.ngf, config.ndf, config.resolution) == (100, 64, 64, 64)
    assert (config.lr_g, config.lr_d, config.beta1) == (2e-4, 2e-4, 0.5)
    G = DCGAN.build_generator(config, (3, 64, 64))
    D = DCGAN.build_discriminators(config, (3, 64, 64))["D"]
    ref_G, ref_D = _reference_dcgan()
    # the strided layers are torch's (gankit.nn.strided_conv subclasses them for a faster bf16 backward)
    assert [_torch_type(m) for m in G.main] == [type(m) for m in ref_G]
    assert [_torch_type(m) for m in D.main] == [type(m) for m in ref_D]  # ours ends at the logit; the loss applies sigmoid
    assert [p.shape for p in G.parameters()] == [p.shape for p in ref_G.parameters()]
    assert [p.shape for p in D.parameters()] == [p.shape for p in ref_D.parameters()]
    assert _count(G) == 3_576_704 and _count(D) == 2_765_568  # the published parameter counts


def test_weights_follow_the_paper_init():
    config = build_config(DCGAN.Config, preset="paper")
    G = DCGAN.build_generator(config, (3, 64, 64))
    w = G.main[0].weight
    assert abs(w.mean().item()) < 2e-3 and abs(w.std().item() - 0.02) < 2e-3
    bn = G.main[1]
    assert abs(bn.weight.mean().item() - 1.0) < 0.01 and bn.bias.abs().max() == 0
