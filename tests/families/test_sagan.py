import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils import parametrize

import gankit
from gankit.config import build_config
from gankit.errors import GankitError
from gankit.families.sagan import SAGAN
from gankit.nn.attention import SelfAttention
from gankit.nn.resblocks import (
    ConditionalBatchNorm2d,
    ResNetDiscriminator,
    ResNetGenerator,
)

from .common import FamilyTests


class TestSAGAN(FamilyTests):
    family = "sagan"


def _tiny(**overrides):
    config = build_config(SAGAN.Config, preset="tiny", overrides=overrides)
    config.channels, config.num_classes = 1, 10
    return config


# ---- self-attention ------------------------------------------------------------------------------
def test_self_attention_starts_as_the_identity_and_keeps_the_shape():
    torch.manual_seed(0)
    attention = SelfAttention(16)
    x = torch.randn(2, 16, 8, 8)
    assert attention.gamma.item() == 0.0
    assert torch.equal(attention(x), x)  # gamma = 0: x + 0 * o
    with torch.no_grad():
        attention.gamma.fill_(0.5)
    out = attention(x)
    assert out.shape == x.shape and not torch.allclose(out, x)


@pytest.mark.parametrize("pool, keys", [(True, 16), (False, 64)])
def test_attention_weights_are_a_distribution_over_positions(pool, keys):
    torch.manual_seed(0)
    attention = SelfAttention(16, pool=pool)
    beta = attention.attention_map(torch.randn(3, 16, 8, 8))
    assert beta.shape == (3, 64, keys)  # every query position over the (pooled) key positions
    assert (beta >= 0).all()
    assert torch.allclose(beta.sum(-1), torch.ones(3, 64), atol=1e-6)


# ---- spectral norm -------------------------------------------------------------------------------
def _sn_layers(module: nn.Module):
    return [m for m in module.modules() if parametrize.is_parametrized(m, "weight")]


def test_every_conv_and_linear_of_G_and_D_is_spectrally_normalised():
    config = _tiny()
    G = SAGAN.build_generator(config, (1, 16, 16))
    D = SAGAN.build_discriminators(config, (1, 16, 16))["D"]
    for net in (G, D):
        for m in net.modules():
            if isinstance(m, (nn.Conv2d, nn.Linear)):
                assert parametrize.is_parametrized(m, "weight"), m
    assert isinstance(D.head.embed, nn.Embedding) and parametrize.is_parametrized(D.head.embed, "weight")
    # Raw weights far from norm 1: after some power iterations in train mode, sigma(W_SN) ~ 1.
    torch.manual_seed(0)
    for net, inputs in ((G, lambda: (torch.randn(4, 16), torch.randint(0, 10, (4,)))),
                        (D, lambda: (torch.randn(4, 1, 16, 16), torch.randint(0, 10, (4,))))):
        with torch.no_grad():
            for m in _sn_layers(net):
                m.parametrizations.weight.original.normal_(0, 3.0)
            net.train()
            for _ in range(40):
                net(*inputs())
        net.eval()
        for m in _sn_layers(net):
            sigma = torch.linalg.matrix_norm(m.weight.detach().flatten(1), ord=2)
            assert abs(sigma.item() - 1) < 0.05, (m, sigma.item())


# ---- projection discriminator and conditional BN -------------------------------------------------
def test_projection_adds_the_inner_product_of_the_label_embedding_with_phi():
    torch.manual_seed(0)
    D = ResNetDiscriminator(1, 4, 16, attn_res=8, num_classes=10).eval()  # eval: SN weights stay fixed
    x, y = torch.randn(5, 1, 16, 16), torch.tensor([0, 3, 3, 7, 9])
    with torch.no_grad():
        phi = D.features(x)  # (5, C)
        psi = D.head.psi(phi).squeeze(1)
        E = D.head.embed.weight  # the spectrally normalised embedding matrix (10, C)
        by_hand = torch.stack([psi[i] + sum(E[y[i], k] * phi[i, k] for k in range(phi.shape[1]))
                               for i in range(5)])
        assert torch.allclose(D(x, y), by_hand, atol=1e-5)
        other = torch.tensor([1, 1, 2, 2, 2])
        assert torch.allclose(D(x, y) - D(x, other), ((E[y] - E[other]) * phi).sum(1), atol=1e-5)
    plain = ResNetDiscriminator(1, 4, 16, attn_res=8).eval()
    assert plain.head.embed is None and plain(x).shape == (5,)


def test_conditional_batch_norm_gains_and_biases_follow_the_class():
    torch.manual_seed(0)
    bn = ConditionalBatchNorm2d(4, num_classes=2)
    x = torch.randn(6, 4, 5, 5)
    normed = F.batch_norm(x, None, None, training=True, eps=1e-5)
    assert torch.allclose(bn(x, torch.zeros(6, dtype=torch.long)), normed, atol=1e-5)  # starts as plain BN
    with torch.no_grad():
        bn.gain.weight.normal_()
        bn.bias.weight.normal_()
    zeros, ones = bn(x, torch.zeros(6, dtype=torch.long)), bn(x, torch.ones(6, dtype=torch.long))
    assert not torch.allclose(zeros, ones)
    g, b = bn.gain.weight[1].detach(), bn.bias.weight[1].detach()
    assert torch.allclose(ones, normed * (1 + g)[None, :, None, None] + b[None, :, None, None], atol=1e-5)


# ---- architecture --------------------------------------------------------------------------------
@pytest.mark.parametrize("resolution", [16, 32, 64, 128])
@pytest.mark.parametrize("channels", [1, 3])
def test_networks_work_at_every_resolution_and_channel_count(resolution, channels):
    torch.manual_seed(0)
    G = ResNetGenerator(8, 2, channels, resolution, attn_res=8, num_classes=3)
    D = ResNetDiscriminator(channels, 2, resolution, attn_res=resolution // 2, num_classes=3)
    y = torch.tensor([0, 2])
    x = G(torch.randn(2, 8), y)
    assert x.shape == (2, channels, resolution, resolution) and x.abs().max() <= 1
    assert D(x, y).shape == (2,)
    assert sum(isinstance(m, SelfAttention) for m in G.modules()) == 1
    assert sum(isinstance(m, SelfAttention) for m in D.modules()) == 1


def test_attention_placement_is_checked_and_can_be_switched_off():
    for bad in (12, 16, 4):  # not a power of two / not inside D at 16x16 / below G's first block
        with pytest.raises(GankitError, match="attn_res"):
            _tiny(attn_res=bad)
    config = _tiny(attn_res=0)
    G = SAGAN.build_generator(config, (1, 16, 16))
    assert not any(isinstance(m, SelfAttention) for m in G.modules())
    with pytest.raises(GankitError, match="power-of-two"):
        build_config(SAGAN.Config, preset="tiny", overrides={"resolution": 24})


def test_paper_preset_is_the_papers_setup():
    config = build_config(SAGAN.Config, preset="paper")
    assert (config.loss, config.lr_g, config.lr_d, config.beta1, config.beta2) == ("hinge", 1e-4, 4e-4, 0.0, 0.9)
    assert (config.resolution, config.attn_res, config.d_steps, config.batch_size) == (128, 32, 1, 256)
    assert config.spectral_norm and config.g_spectral_norm


# ---- conditional and unconditional training ------------------------------------------------------
def test_conditional_sagan_samples_the_asked_class(tmp_path):
    gankit.train("sagan", data="mnist", out=tmp_path / "r", preset="tiny", steps=2, quiet=True,
                 overrides={"max_images": 256})
    model = gankit.load(tmp_path / "r")
    assert model.num_classes == 10
    seen = []
    model.generator.register_forward_pre_hook(lambda module, args: seen.append(args[1].clone()))
    three = model.sample(4, seed=1, cond=3)
    assert torch.equal(torch.cat(seen), torch.full((4,), 3))
    assert not torch.equal(three, model.sample(4, seed=1, cond=7))  # same noise, other class
    assert isinstance(model.generator.blocks[0].bn1, ConditionalBatchNorm2d)


def test_unconditional_sagan_ignores_the_labels(tmp_path):
    result = gankit.train("sagan", data="mnist", out=tmp_path / "r", preset="tiny", steps=2, quiet=True,
                          overrides={"max_images": 256, "class_conditional": False})
    assert result.status == "finished"
    model = gankit.load(tmp_path / "r")
    assert model.num_classes == 0
    assert isinstance(model.generator.blocks[0].bn1, nn.BatchNorm2d)
    assert model.sample(3, seed=0).shape == (3, 1, 16, 16)
    with pytest.raises(GankitError, match="not conditional"):
        model.sample(3, cond=1)


def test_conditional_sagan_class_grid_from_the_command_line(tmp_path, cli):
    gankit.train("sagan", data="mnist", out=tmp_path / "r", preset="tiny", steps=2, quiet=True,
                 overrides={"max_images": 256})
    done = cli("sample", tmp_path / "r", "--class", "3", "--n", "4", "--out", tmp_path / "three.png")
    assert done.returncode == 0, done.stderr
    done = cli("sample", tmp_path / "r", "--class-grid", "--n", "20", "--out", tmp_path / "rows.png")
    assert done.returncode == 0, done.stderr
    from PIL import Image

    assert Image.open(tmp_path / "rows.png").size == (2 * 16 + 3 * 2, 10 * 16 + 11 * 2)
