import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import gankit
from gankit.config import build_config
from gankit.errors import GankitError
from gankit.families.stylegan2 import StyleGAN2, num_ws
from gankit.losses import path_lengths
from gankit.nn.fir import blur, downsample2d, make_filter, upsample2d
from gankit.nn.stylegan2 import clamp, modulated_conv2d, truncate

from .common import FamilyTests
from tests.test_engine import assert_same_state


class TestStyleGAN2(FamilyTests):
    family = "stylegan2"


def _count(module) -> int:
    return sum(p.numel() for p in module.parameters())


def _nets(preset: str, channels: int = 3):
    config = build_config(StyleGAN2.Config, preset=preset)
    shape = (channels, config.resolution, config.resolution)
    return config, StyleGAN2.build_generator(config, shape), StyleGAN2.build_discriminators(config, shape)["D"]


# Measured from the authors' code (NVlabs/stylegan2-ada-pytorch, training/networks.py, built with each
# cfg spec of its train.py) by bench/stylegan2_reference.py, which also loads those weights into ours
# and compares outputs (G within 4e-5, D exact): bench/results/stylegan2_reference.json.
REFERENCE = {"paper256": (24_767_458, 24_001_089, 14), "paper512": (30_276_583, 28_982_849, 16),
             "paper1024": (30_370_060, 29_012_513, 18)}


def test_small_preset_has_the_reference_parameter_counts():
    """The CPU preset (2 mapping layers, 64/32/16 maps) counted in the authors' code the same way."""
    config, G, D = _nets("small")
    assert (_count(G), _count(D), G.num_ws) == (533_576, 296_401, 10)
    assert config.pl_weight == 0 and config.augment == "ada" and config.batch_size == 8


@pytest.mark.parametrize("preset", sorted(REFERENCE))
def test_paper_presets_have_the_reference_parameter_counts_and_names(preset):
    config, G, D = _nets(preset)
    g, d, layers = REFERENCE[preset]
    assert (_count(G), _count(D), G.num_ws, num_ws(config)) == (g, d, layers, layers)
    names = G.state_dict().keys()
    assert {"mapping.fc7.weight", "mapping.w_avg", "synthesis.b4.const", "synthesis.b8.conv0.affine.bias",
            "synthesis.b8.conv0.noise_strength", "synthesis.b8.conv0.noise_const", "synthesis.b8.torgb.weight"} <= names
    assert {"b4.fc.weight", "b4.out.bias", f"b{config.resolution}.fromrgb.weight", "b8.skip.weight"} <= D.state_dict().keys()
    assert config.map_layers == 8 and config.map_lr_mul == 0.01 and (config.beta1, config.beta2) == (0.0, 0.99)


def test_paper_preset_is_config_f_at_1024_with_the_authors_schedule():
    config = build_config(StyleGAN2.Config, preset="paper")
    assert (config.resolution, config.batch_size, config.r1_gamma, config.lr_g) == (1024, 32, 2.0, 0.002)
    assert config.steps * config.batch_size == 25_000_000  # 25,000 kimg
    assert config.ema_decay == pytest.approx(0.5 ** (32 / 10_000))  # EMA half-life 10k images
    assert (config.d_reg_interval, config.g_reg_interval, config.style_mixing, config.pl_weight) == (16, 4, 0.9, 2.0)


# ---- plain-torch resampling and the modulated convolution ---------------------------------------
def _upfirdn2d(x: np.ndarray, f: np.ndarray, up: int, down: int, pad: tuple[int, int]) -> np.ndarray:
    """The reference op written directly: zero insertion, zero padding, true convolution, decimation."""
    from scipy.signal import convolve2d

    n, c, h, w = x.shape
    u = np.zeros((n, c, h * up, w * up))
    u[:, :, ::up, ::up] = x
    u = np.pad(u, ((0, 0), (0, 0), pad, pad))
    out = np.stack([[convolve2d(u[i, j], f, mode="valid") for j in range(c)] for i in range(n)])
    return out[:, :, ::down, ::down]


def test_fir_resampling_equals_upfirdn2d():
    x = torch.randn(2, 3, 8, 8, dtype=torch.float64)
    f = make_filter().double()
    up = _upfirdn2d(x.numpy(), f.numpy() * 4, up=2, down=1, pad=(2, 1))
    down = _upfirdn2d(x.numpy(), f.numpy(), up=1, down=2, pad=(1, 1))
    assert upsample2d(x, f).shape == (2, 3, 16, 16) and np.allclose(upsample2d(x, f).numpy(), up)
    assert downsample2d(x, f).shape == (2, 3, 4, 4) and np.allclose(downsample2d(x, f).numpy(), down)
    const = torch.ones(1, 1, 8, 8)  # the gain keeps a constant image constant away from the border
    assert torch.allclose(upsample2d(const, make_filter())[..., 2:-2, 2:-2], torch.ones(1))
    for pad in ((1, 1), (2, 1), (0, 0)):  # equal padding goes to the convolution, unequal to F.pad
        assert np.allclose(blur(x, f, pad, gain=2).numpy(), _upfirdn2d(x.numpy(), f.numpy() * 2, up=1, down=1, pad=pad))


def test_conv_clamp_clamps_values_and_gradients():
    x = torch.tensor([-300.0, -256.5, -1.0, 0.0, 2.5, 255.0, 999.0], requires_grad=True)
    y = clamp(x, 256.0)
    y.backward(torch.arange(1.0, 8.0))
    assert torch.equal(y, x.detach().clamp(-256, 256))
    assert torch.equal(x.grad, torch.tensor([0.0, 0.0, 3.0, 4.0, 5.0, 6.0, 0.0]))
    assert clamp(x, None) is x


def test_modulated_conv_equals_per_sample_modulated_and_demodulated_weights():
    torch.manual_seed(0)
    x, weight, styles = torch.randn(3, 4, 6, 6), torch.randn(5, 4, 3, 3), torch.randn(3, 4)
    out = modulated_conv2d(x, weight, styles)
    for i in range(3):  # StyleGAN2 Eq. 1 and 3 on sample i's own weights
        w = weight * styles[i][None, :, None, None]
        w = w / (w.square().sum(dim=(1, 2, 3), keepdim=True) + 1e-8).sqrt()
        assert torch.allclose(out[i], F.conv2d(x[i:i + 1], w, padding=1)[0], atol=1e-5)
    up = modulated_conv2d(x, weight, styles, up=True, resample_filter=make_filter())
    assert up.shape == (3, 5, 12, 12)


def test_path_lengths_are_the_norm_of_the_jacobian_transpose_times_image_noise():
    torch.manual_seed(0)
    ws = torch.randn(2, 5, 6, requires_grad=True)
    images = torch.tanh(ws.flatten(1) @ torch.randn(30, 48)).view(2, 3, 4, 4)  # a small nonlinear "synthesis"
    torch.manual_seed(1)
    lengths = path_lengths(images, ws)
    torch.manual_seed(1)
    y = torch.randn_like(images) / 4.0  # 1 / sqrt(H W)
    (grad,) = torch.autograd.grad((images * y).sum(), ws, retain_graph=True)
    assert torch.allclose(lengths, grad.square().sum(2).mean(1).sqrt())
    assert lengths.requires_grad  # kept for the penalty's backward


# ---- the latent API: truncation, noise, mapping / synthesis ---------------------------------------
@pytest.fixture(scope="module")
def model(tmp_path_factory):
    run = tmp_path_factory.mktemp("sg2") / "run"
    gankit.train("stylegan2", data="mnist", out=run, preset="tiny", steps=4, quiet=True,
                 overrides={"max_images": 64})
    m = gankit.load(run)
    with torch.no_grad():  # visible noise, so the noise modes differ
        for name, p in m.generator.named_parameters():
            if name.endswith("noise_strength"):
                p.fill_(0.5)
    return m


def test_truncation_pulls_w_towards_the_tracked_mean(model):
    z = model.latents(3, seed=0)
    ws = model.mapping(z)
    assert ws.shape == (3, model.num_ws, model.config.w_dim) and model.w_avg.abs().sum() > 0
    assert torch.allclose(model.mapping(z, truncation=0.0), model.w_avg.expand_as(ws))
    half = model.mapping(z, truncation=0.5, truncation_cutoff=2)
    assert torch.allclose(half[:, :2], model.w_avg + 0.5 * (ws[:, :2] - model.w_avg), atol=1e-6)
    assert torch.equal(half[:, 2:], ws[:, 2:])
    a, b = model.sample(4, seed=1, truncation=0.0), model.sample(4, seed=2, truncation=0.0)
    assert torch.allclose(a, b) and torch.allclose(a[0], a[3])  # psi = 0: every seed is the mean image
    assert not torch.equal(model.sample(4, seed=1, truncation=1.0), a)
    assert torch.equal(model.sample(4, seed=1, truncation=1.0), model.sample(4, seed=1))


def test_synthesis_of_mapping_is_generate_and_noise_modes_behave(model):
    z = model.latents(2, seed=3)
    direct = model.synthesis(model.mapping(z)).clamp(-1, 1)
    assert torch.allclose(direct, model.generate(z), atol=1e-6)
    assert torch.allclose(model.synthesis(model.mapping(z)[:, 0]).clamp(-1, 1), direct, atol=1e-6)  # one w
    none_a, none_b = model.generate(z, noise="none"), model.generate(z, noise="none")
    rand_a, rand_b = model.generate(z, noise="random"), model.generate(z, noise="random")
    assert torch.equal(none_a, none_b) and not torch.equal(none_a, direct) and not torch.equal(rand_a, rand_b)


def test_style_api_rejects_bad_input(model, tmp_path):
    for bad in (dict(truncation=float("nan")), dict(truncation=float("inf")),
                dict(truncation_cutoff=0), dict(truncation_cutoff=model.num_ws + 1), dict(noise="loud")):
        with pytest.raises(GankitError):
            model.sample(2, **bad)
    with pytest.raises(GankitError, match="shape"):
        model.synthesis(torch.zeros(1, model.num_ws + 1, model.config.w_dim))
    gankit.train("dcgan", data="mnist", out=tmp_path / "dc", preset="tiny", steps=1, quiet=True,
                 overrides={"max_images": 16})
    dc = gankit.load(tmp_path / "dc")
    with pytest.raises(GankitError, match="mapping network"):
        dc.mapping(dc.latents(1))
    with pytest.raises(GankitError, match="style"):
        dc.sample(2, noise="const")


# ---- training: phases, lazy regularisation, style mixing, exact resume --------------------------
def test_lazy_regularisation_scales_adam_and_runs_on_its_interval(tmp_path):
    trainer = TestStyleGAN2().make_trainer(tmp_path)
    c = trainer.config
    d = trainer.family.optimizers["D"].param_groups[0]
    assert d["lr"] == pytest.approx(c.lr_d * 16 / 17) and d["betas"][1] == pytest.approx(0.99 ** (16 / 17))
    g = trainer.family.optimizers["G"].param_groups[0]
    assert g["lr"] == pytest.approx(c.lr_g * 4 / 5)
    assert [(p.name, p.interval) for p in trainer.phases] == [("D", 1), ("D_r1", 16), ("G", 1), ("G_pl", 4)]
    seen = [set(trainer.train_step()) for _ in range(5)]
    assert "loss/r1" in seen[0] and all("loss/r1" not in s for s in seen[1:])
    assert ["loss/pl" in s for s in seen] == [True, False, False, False, True]
    assert trainer.family.aux["pl_mean"].value > 0


def test_style_mixing_feeds_a_second_w_after_a_crossover(tmp_path):
    trainer = TestStyleGAN2().make_trainer(tmp_path, style_mixing=1.0)
    torch.manual_seed(0)
    _, ws = trainer.family.run_generator(4, torch.device("cpu"), return_ws=True)
    changes = [not torch.equal(ws[:, i], ws[:, i + 1]) for i in range(ws.shape[1] - 1)]
    assert sum(changes) == 1  # one crossover layer
    trainer = TestStyleGAN2().make_trainer(tmp_path / "b", style_mixing=0.0)
    _, ws = trainer.family.run_generator(4, torch.device("cpu"), return_ws=True)
    assert torch.equal(ws, ws[:, :1].expand_as(ws))


def test_resumed_run_equals_an_uninterrupted_one(tmp_path):
    common = dict(data="mnist", preset="tiny", quiet=True, overrides={"max_images": 64})
    gankit.train("stylegan2", out=tmp_path / "straight", steps=9, **common)
    gankit.train("stylegan2", out=tmp_path / "resumed", steps=5, **common)
    gankit.train(resume=tmp_path / "resumed", steps=9, quiet=True)
    assert_same_state(tmp_path / "straight", tmp_path / "resumed")


def test_bad_options_are_user_errors():
    for bad in (dict(resolution=12), dict(resolution=4), dict(loss="hinge"), dict(reg="r1"), dict(pl_weight=-1),
                dict(style_mixing=1.5)):
        with pytest.raises(GankitError):
            build_config(StyleGAN2.Config, preset="tiny", overrides=bad)
    assert math.isclose(build_config(StyleGAN2.Config, preset="small").r1_gamma, 0.0002 * 64 ** 2 / 8)
