import pytest
import torch
from torch import nn

import gankit
from gankit.config import build_config
from gankit.errors import GankitError
from gankit.families.base import truncate_latent
from gankit.families.biggan import BigGAN
from gankit.losses import orthogonal_regularization
from gankit.nn.resblocks import ConditionalBatchNorm2d, ResNetGenerator

from .common import FamilyTests


class TestBigGAN(FamilyTests):
    family = "biggan"


def _tiny(**overrides):
    config = build_config(BigGAN.Config, preset="tiny", overrides=overrides)
    config.channels, config.num_classes = 1, 10
    return config


def test_paper_preset_has_the_reference_parameter_counts(monkeypatch):
    """BigGAN at 128x128, ch 96, 1,000 classes: BigGAN-PyTorch reports 70,433,988 parameters in G
    and 87,982,370 in D. Built on the meta device (no memory, no init cost)."""
    monkeypatch.setattr(nn.init, "orthogonal_", lambda w, *a, **k: w)
    config = build_config(BigGAN.Config, preset="paper")
    config.num_classes = 1000
    with torch.device("meta"):
        G = BigGAN.build_generator(config, (3, 128, 128))
        D = BigGAN.build_discriminators(config, (3, 128, 128))["D"]
    assert sum(p.numel() for p in G.parameters()) == 70_433_988
    assert sum(p.numel() for p in D.parameters()) == 87_982_370
    assert G.z_chunks == [20] * 6  # nz = 120: the linear layer and 5 blocks
    assert (config.d_steps, config.beta1, config.beta2, config.loss, config.ortho_reg) == (2, 0.0, 0.999, "hinge", 1e-4)


def test_default_optimizer_and_update_rule():
    config = BigGAN.Config()
    assert (config.lr_g, config.lr_d, config.beta1, config.beta2, config.d_steps) == (1e-4, 4e-4, 0.0, 0.999, 2)
    assert config.ema and config.spectral_norm and config.g_spectral_norm


def test_hierarchical_latent_feeds_one_chunk_per_block():
    torch.manual_seed(0)
    G = ResNetGenerator(15, 4, 1, 16, attn_res=8, num_classes=10, shared_dim=8).eval()
    assert G.z_chunks == [5, 5, 5]  # linear layer, block 0, block 1
    assert G.linear.in_features == 5  # the first layer sees only the first chunk
    for block in G.blocks:  # each block's BNs see [shared embedding, its chunk]
        assert isinstance(block.bn1, ConditionalBatchNorm2d) and block.bn1.gain.in_features == 8 + 5
    seen = {}
    G.linear.register_forward_hook(lambda m, a, out: seen.__setitem__("linear", out.clone()))
    G.blocks[0].register_forward_hook(lambda m, a, out: seen.__setitem__("block0", out.clone()))
    z, y = torch.randn(3, 15), torch.tensor([1, 2, 3])
    with torch.no_grad():
        out = G(z, y)
        first = dict(seen)
        later = z.clone()
        later[:, 10:] += 1.0  # the last chunk: only block 1 sees it
        out_later = G(later, y)
        assert torch.equal(seen["linear"], first["linear"]) and torch.equal(seen["block0"], first["block0"])
        assert not torch.allclose(out_later, out)
        earlier = z.clone()
        earlier[:, :5] += 1.0  # the first chunk changes the linear layer's output
        G(earlier, y)
        assert not torch.allclose(seen["linear"], first["linear"])


def test_orthogonal_regularisation_by_hand():
    layer = nn.Linear(3, 2)
    with torch.no_grad():
        layer.weight.copy_(torch.tensor([[1.0, 2.0, 0.0], [0.0, 1.0, 1.0]]))
        layer.bias.fill_(5.0)  # biases are not regularised
    # W W^T = [[5, 2], [2, 2]]: the off-diagonal entries squared, 2^2 + 2^2
    assert orthogonal_regularization(layer).item() == pytest.approx(8.0)
    with torch.no_grad():
        layer.weight.copy_(torch.tensor([[0.6, 0.8, 0.0], [0.0, 0.0, 3.0]]))  # orthogonal rows
    assert orthogonal_regularization(layer).item() == pytest.approx(0.0, abs=1e-12)


def test_generator_loss_adds_beta_times_the_orthogonal_penalty(tmp_path):
    trainer = TestBigGAN().make_trainer(tmp_path)  # its phases() set the hinge losses
    family = trainer.family
    loss, logs = family.generator_loss(None)
    assert set(logs) == {"loss/g", "loss/ortho"} and logs["loss/ortho"] > 0
    assert torch.allclose(loss.detach(), logs["loss/g"] + 1e-4 * logs["loss/ortho"])
    assert torch.allclose(logs["loss/ortho"], orthogonal_regularization(family.nets["G"]).detach())
    logs = trainer.train_step()
    assert "loss/ortho" in logs and torch.isfinite(logs["loss/ortho"])


def test_biggan_needs_labels(tmp_path):
    with pytest.raises(GankitError, match="biggan"):
        gankit.train("biggan", data="ring8", out=tmp_path / "r", preset="tiny", quiet=True)


# ---- the truncation trick ------------------------------------------------------------------------
def test_truncated_latents_stay_inside_and_follow_the_seed():
    config = _tiny()
    z = BigGAN.sample_latent(config, 500, generator=torch.Generator().manual_seed(3), truncation=0.5)
    assert z.shape == (500, 15) and z.abs().max() <= 0.5
    again = BigGAN.sample_latent(config, 500, generator=torch.Generator().manual_seed(3), truncation=0.5)
    assert torch.equal(z, again)
    plain = BigGAN.sample_latent(config, 500, generator=torch.Generator().manual_seed(3))
    inside = plain.abs() <= 0.5
    assert torch.equal(z[inside], plain[inside])  # only the entries outside are redrawn
    assert z.std() < 0.35  # a N(0, 1) truncated to [-0.5, 0.5] has std ~0.28
    for bad in (0.0, -1.0):
        with pytest.raises(GankitError, match="truncation"):
            truncate_latent(plain, bad)


def test_model_samples_with_truncation_and_a_class_grid(tmp_path, cli):
    gankit.train("biggan", data="mnist", out=tmp_path / "r", preset="tiny", steps=2, quiet=True,
                 overrides={"max_images": 256})
    model = gankit.load(tmp_path / "r")
    a = model.sample(4, seed=2, cond=5, truncation=0.5)
    assert torch.equal(a, model.sample(4, seed=2, cond=5, truncation=0.5))
    assert not torch.equal(a, model.sample(4, seed=2, cond=5))
    done = cli("sample", tmp_path / "r", "--class-grid", "--n", "20", "--truncation", "0.5",
               "--out", tmp_path / "rows.png")
    assert done.returncode == 0, done.stderr
    from PIL import Image

    assert Image.open(tmp_path / "rows.png").size == (2 * 16 + 3 * 2, 10 * 16 + 11 * 2)
