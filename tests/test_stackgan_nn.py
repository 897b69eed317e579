"""StackGAN's networks (gankit.nn.stackgan) and the small image-text model (gankit.nn.text_encoder):
shapes at the CPU preset and at paper size, the authors' parameter counts, conditioning
augmentation (sampling, KL, gradients), padding invariance of the text encoder, the CLIP loss and
R-precision by hand, and the seeded contrastive training loop."""

from __future__ import annotations

import dataclasses
import math

import pytest
import torch

from gankit.data.captions import Vocabulary, render_mnist_captions
from gankit.errors import GankitError
from gankit.nn.stackgan import (
    CPU,
    PAPER,
    ConditioningAugmentation,
    StageIDiscriminator,
    StageIGenerator,
    StageIIDiscriminator,
    StageIIGenerator,
    build_networks,
    kl_loss,
    parameter_counts,
    reparameterize,
)
from gankit.nn.text_encoder import (
    ImageEncoder,
    TextEncoder,
    contrastive_loss,
    embed_captions,
    embed_images,
    r_precision,
    train_text_encoder,
)


def gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def randn(*shape: int, seed: int = 0) -> torch.Tensor:
    return torch.randn(*shape, generator=gen(seed))


def images(n: int, c: int, r: int, seed: int = 0) -> torch.Tensor:
    return torch.rand(n, c, r, r, generator=gen(seed)) * 2 - 1


# ---- shapes --------------------------------------------------------------------------------------
def test_cpu_preset_shapes():
    torch.manual_seed(0)
    nets = build_networks(CPU)
    n = 3
    c1, mu1, logvar1 = nets["ca1"](randn(n, CPU.text_dim), gen(1))
    assert c1.shape == mu1.shape == logvar1.shape == (n, CPU.c_dim)
    low = nets["g1"](randn(n, CPU.z_dim, seed=2), c1)
    assert low.shape == (n, 3, 32, 32) and low.abs().max() <= 1
    d1 = nets["d1"]
    assert d1(low, mu1).shape == (n,) and d1(low).shape == (n,)  # conditional, unconditional
    h = d1.features(low)
    assert h.shape == (n, 4 * CPU.ndf, 4, 4)
    assert torch.equal(d1.cond_logits(h, mu1), d1(low, mu1))
    c2, _, _ = nets["ca2"](randn(n, CPU.text_dim), gen(3))
    high = nets["g2"](low.detach(), c2)
    assert high.shape == (n, 3, 64, 64) and high.abs().max() <= 1
    assert nets["d2"](high, mu1).shape == (n,) and nets["d2"].width == 8 * CPU.ndf


@pytest.mark.parametrize("res", [16, 32, 64, 128])
def test_resolutions_are_general(res):
    with torch.device("meta"):
        g = StageIGenerator(z_dim=4, c_dim=4, ngf=4, out_res=res, channels=1)
        d = StageIDiscriminator(embed_dim=4, ndf=4, resolution=res, channels=1)
    assert len(g.up) == res.bit_length() - 3
    assert d.width == 4 * min(2 ** (res.bit_length() - 4), 8)  # ndf 2^(n - 1), n = log2(R / 4), at most 8 ndf
    x = StageIGenerator(4, 4, 4, res, 1)(randn(2, 4), randn(2, 4, seed=1))
    assert x.shape == (2, 1, res, res)
    assert StageIDiscriminator(4, 4, res, 1, compress_dim=8)(x, randn(2, 4)).shape == (2,)


@pytest.mark.parametrize("in_res, up_factor, n_down", [(32, 2, 2), (32, 2, 1), (16, 4, 2), (64, 2, 3)])
def test_stage2_generator_factor_and_bottleneck(in_res, up_factor, n_down):
    g = StageIIGenerator(c_dim=8, ngf=4, in_res=in_res, channels=3, up_factor=up_factor, n_res=1, n_down=n_down)
    assert g.encode(images(2, 3, in_res)).shape[-1] == in_res >> n_down
    assert len(g.up) == n_down + up_factor.bit_length() - 1
    out = g(images(2, 3, in_res), randn(2, 8))
    assert out.shape == (2, 3, in_res * up_factor, in_res * up_factor) == (2, 3, g.resolution, g.resolution)


# ---- paper size ----------------------------------------------------------------------------------
# The authors' modules at their default cfg (GF_DIM 128, DF_DIM 64, CONDITION_DIM 128, Z_DIM 100,
# R_NUM 4, TEXT.DIMENSION 1024), counted layer by layer from hanzhanggit/StackGAN-Pytorch code/model.py:
# CA_NET 262,400; STAGE1_G 10,301,248 (with its CA); STAGE1_D 5,715,713 (encode_img + conditional
# D_GET_LOGITS); STAGE2_G 26,290,080 with its CA (+ 10,301,248 of the frozen Stage-I G it holds);
# STAGE2_D 71,269,122 (with both the conditional and the unconditional logits).
AUTHORS = {"ca": 262_400, "stage1_g": 10_301_248, "stage1_d": 5_715_713, "stage2_g": 26_290_080,
           "stage2_d": 71_269_122}


def test_paper_parameter_counts_are_the_authors():
    counts = parameter_counts(PAPER)
    assert counts["ca1"] == counts["ca2"] == AUTHORS["ca"]
    assert counts["ca1"] + counts["g1"] == AUTHORS["stage1_g"]
    assert counts["d1"] == AUTHORS["stage1_d"]
    assert counts["ca2"] + counts["g2"] == AUTHORS["stage2_g"]
    assert counts["d2"] == AUTHORS["stage2_d"]
    # the paper's D compresses the 1024-d embedding to 128 with a linear layer: 1024 x 128 + 128 more each
    paper_d = parameter_counts(dataclasses.replace(PAPER, d_compress=128))
    assert paper_d["d1"] - counts["d1"] == paper_d["d2"] - counts["d2"] == 1024 * 128 + 128


def test_paper_size_generators_run():
    torch.manual_seed(0)
    g1, g2 = StageIGenerator().eval(), StageIIGenerator().eval()  # batch 1: BN in eval mode
    with torch.no_grad():
        low = g1(randn(1, 100), randn(1, 128, seed=1))
        high = g2(low, randn(1, 128, seed=2))
    assert low.shape == (1, 3, 64, 64) and high.shape == (1, 3, 256, 256)
    assert high.abs().max() <= 1


def test_paper_size_stage2_discriminator_runs():
    torch.manual_seed(0)
    d = StageIIDiscriminator(compress_dim=None).eval()
    assert d.width == 512
    with torch.no_grad():
        assert d(images(1, 3, 256), randn(1, 128)).shape == d(images(1, 3, 256)).shape == (1,)


# ---- conditioning augmentation -------------------------------------------------------------------
def test_ca_samples_have_mean_mu_and_std_sigma():
    mu = torch.tensor([[-1.0, 0.0, 2.5]])
    logvar = torch.tensor([[0.0, math.log(0.25), math.log(4.0)]])
    n = 40_000
    c = reparameterize(mu.expand(n, -1), logvar.expand(n, -1), gen(7))
    sigma = torch.exp(0.5 * logvar[0])
    assert torch.allclose(c.mean(0), mu[0], atol=4 * float(sigma.max()) / math.sqrt(n))
    assert torch.allclose(c.std(0), sigma, rtol=0.02)
    # the draw is the generator's: the same seed gives the same c, eps = the generator's normals
    assert torch.equal(reparameterize(mu, logvar, gen(3)), mu + sigma * torch.randn(1, 3, generator=gen(3)))


def test_ca_module_uses_its_generator_and_shapes():
    ca = ConditioningAugmentation(16, 8)
    e = randn(5, 16)
    c1, mu, logvar = ca(e, gen(1))
    c2, _, _ = ca(e, gen(1))
    assert torch.equal(c1, c2) and not torch.equal(c1, ca(e, gen(2))[0])
    assert torch.allclose(c1, mu + torch.exp(0.5 * logvar) * torch.randn(5, 8, generator=gen(1)))
    g = ConditioningAugmentation(16, 8, glu=True)
    assert g.fc.out_features == 32 and all(t.shape == (5, 8) for t in g(e, gen(0)))
    with pytest.raises(GankitError, match=r"shape \(N, 16\)"):
        ca(randn(5, 15))


def test_kl_by_hand():
    mu = torch.tensor([[0.5, -1.0], [2.0, 0.0]])
    logvar = torch.tensor([[0.0, math.log(2.0)], [math.log(0.5), -1.0]])
    terms = [0.5 * (m ** 2 + math.exp(lv) - 1 - lv) for m, lv in zip(mu.flatten().tolist(), logvar.flatten().tolist())]
    assert kl_loss(mu, logvar).item() == pytest.approx(sum(terms) / 4, rel=1e-6)
    normal = torch.distributions.Normal
    closed = torch.distributions.kl_divergence(normal(mu, torch.exp(0.5 * logvar)), normal(0.0, 1.0)).mean()
    assert kl_loss(mu, logvar).item() == pytest.approx(closed.item(), rel=1e-6)
    assert kl_loss(torch.zeros(4, 8), torch.zeros(4, 8)).item() == 0.0


def test_gradients_flow_through_the_reparameterisation():
    mu = torch.tensor([[0.3, -0.2, 1.0]], requires_grad=True)
    logvar = torch.tensor([[0.0, -1.0, 0.5]], requires_grad=True)
    c = reparameterize(mu, logvar, gen(4))
    c.sum().backward()
    eps = torch.randn(1, 3, generator=gen(4))
    assert torch.allclose(mu.grad, torch.ones(1, 3))
    assert torch.allclose(logvar.grad, 0.5 * torch.exp(0.5 * logvar.detach()) * eps)
    ca = ConditioningAugmentation(6, 3)
    c, mu, logvar = ca(randn(4, 6), gen(0))
    (c.pow(2).sum() + kl_loss(mu, logvar)).backward()
    assert ca.fc.weight.grad is not None and ca.fc.weight.grad.abs().sum() > 0


# ---- errors --------------------------------------------------------------------------------------
@pytest.mark.parametrize("build", [
    lambda: StageIGenerator(out_res=24), lambda: StageIGenerator(out_res=8), lambda: StageIDiscriminator(resolution=48),
    lambda: StageIIGenerator(in_res=12), lambda: StageIIGenerator(up_factor=3), lambda: StageIIGenerator(n_res=-1),
    lambda: StageIIGenerator(in_res=16, n_down=3), lambda: StageIDiscriminator(joint_kernel=2),
    lambda: ConditioningAugmentation(0, 4)])
def test_bad_sizes_are_one_line_user_errors(build):
    with pytest.raises(GankitError) as err:
        build()
    assert "\n" not in str(err.value)


def test_bad_inputs_are_user_errors():
    g = StageIGenerator(z_dim=4, c_dim=4, ngf=2, out_res=16)
    with pytest.raises(GankitError, match=r"c must have shape \(2, 4\)"):
        g(randn(2, 4), randn(3, 4))
    d = StageIDiscriminator(embed_dim=4, ndf=4, resolution=16, unconditional=False)
    with pytest.raises(GankitError, match="built for"):
        d(images(2, 3, 32), randn(2, 4))
    with pytest.raises(GankitError, match="no unconditional logit"):
        d(images(2, 3, 16))
    with pytest.raises(GankitError, match="built for"):
        StageIIGenerator(c_dim=4, ngf=4, in_res=32, up_factor=2, n_res=1)(images(2, 3, 64), randn(2, 4))


# ---- text encoder --------------------------------------------------------------------------------
CAPTIONS = ["a small red 7 on a black background", "big blue two on grey", "the digit 3, large and white, on brown",
            "a little magenta nine on a blue background", ""]


def test_text_encoder_padding_does_not_change_the_embedding():
    vocab = Vocabulary.build(CAPTIONS)
    torch.manual_seed(0)
    enc = TextEncoder(len(vocab), embed_dim=8, hidden=12, out_dim=6).eval()
    outs = []
    for max_len in (10, 16, 40):
        ids, lengths = vocab.encode_batch(CAPTIONS, max_len)
        outs.append(enc(ids, lengths))
        assert torch.allclose(enc(ids), outs[-1])  # lengths read from the padding when not given
    assert outs[0].shape == (len(CAPTIONS), 6)
    for other in outs[1:]:
        assert torch.allclose(outs[0], other, atol=1e-6, rtol=0)
    alone = enc(*vocab.encode_batch(CAPTIONS[1:2], 25))  # alone in its batch, padded further
    assert torch.allclose(alone[0], outs[0][1], atol=1e-6, rtol=0)
    assert not torch.allclose(outs[0][0], outs[0][1])
    ids, _ = vocab.encode_batch(CAPTIONS[:1], 10)
    swapped = ids.clone()
    swapped[0, 2] = vocab.index["blue"]  # one word changed: another embedding
    assert not torch.allclose(enc(ids), enc(swapped))


def test_image_encoder_shapes_and_uint8():
    enc = ImageEncoder(3, 32, out_dim=10, width=4)
    x = torch.randint(0, 256, (2, 3, 32, 32), dtype=torch.uint8, generator=gen(0))
    assert torch.allclose(enc(x), enc(x.float() / 127.5 - 1))
    assert enc(x).shape == (2, 10)
    with pytest.raises(GankitError, match="built for"):
        enc(x[:, :, :16, :16])
    with pytest.raises(GankitError, match="power-of-two resolution >= 8"):
        ImageEncoder(3, 24)


def test_contrastive_loss_by_hand():
    t = torch.tensor([[1.0, 0.0], [0.0, 2.0], [1.0, 1.0]])
    i = torch.tensor([[3.0, 0.0], [1.0, 1.0], [0.0, 1.0]])
    tau = 0.5

    def unit(v):
        n = math.hypot(*v)
        return [x / n for x in v]

    tn, im = [unit(v) for v in t.tolist()], [unit(v) for v in i.tolist()]
    s = [[sum(a * b for a, b in zip(tn[r], im[c])) / tau for c in range(3)] for r in range(3)]

    def ce(rows):
        return sum(math.log(sum(math.exp(x) for x in row)) - row[k] for k, row in enumerate(rows)) / 3

    expected = (ce(s) + ce([list(col) for col in zip(*s)])) / 2
    assert contrastive_loss(t, i, tau).item() == pytest.approx(expected, rel=1e-6)
    a, b = randn(32, 8), randn(32, 8, seed=1)
    matched = contrastive_loss(a, a + 0.1 * b)
    shuffled = contrastive_loss(a, (a + 0.1 * b)[torch.randperm(32, generator=gen(2))])
    assert matched < shuffled
    with pytest.raises(GankitError, match="one shape"):
        contrastive_loss(a, b[:, :4])


def test_r_precision_aligned_random_ties_and_seed():
    x = randn(300, 16)
    assert r_precision(x, x) == 1.0
    assert r_precision(x, 2 * x + 0.01 * randn(300, 16, seed=1)) == 1.0  # cosine: the scale does not matter
    t, i = randn(3000, 16, seed=2), randn(3000, 16, seed=3)
    chance = r_precision(t, i, generator=gen(5))
    assert 0.005 < chance < 0.016  # 1/100 +- 3 standard errors (0.0018)
    assert chance == r_precision(t, i, generator=gen(5)) and chance != r_precision(t, i, generator=gen(6))
    same = torch.ones(150, 4)  # every caption the same: every candidate ties, 1/100 each
    assert r_precision(same, randn(150, 4)) == pytest.approx(0.01)
    assert r_precision(x[:20], x[:20], candidates=20) == 1.0
    with pytest.raises(GankitError, match="at least 100 captions"):
        r_precision(x[:99], x[:99])


def test_training_lowers_the_loss_and_is_seeded():
    data = render_mnist_captions(256, 32, seed=0)
    vocab = Vocabulary.build(data.captions)
    state = torch.random.get_rng_state()
    kw = dict(steps=40, batch_size=32, lr=3e-3, seed=1, out_dim=32, embed_dim=16, hidden=32, width=8)
    text, image, history = train_text_encoder(data.images, data.captions, vocab, **kw)
    assert torch.equal(torch.random.get_rng_state(), state)  # the caller's RNG is left alone
    loss = history["loss"]
    assert len(loss) == 40 and loss[0] > math.log(32) - 0.2  # chance: log(batch)
    assert sum(loss[-5:]) / 5 < 0.6 * sum(loss[:5]) / 5
    text2, image2, history2 = train_text_encoder(data.images, data.captions, vocab, **kw)
    assert history2["loss"] == loss
    for a, b in zip([*text.state_dict().values(), *image.state_dict().values()],
                    [*text2.state_dict().values(), *image2.state_dict().values()]):
        assert torch.equal(a, b)
    te, ie = embed_captions(text, vocab, data.captions), embed_images(image, data.images)
    assert te.shape == ie.shape == (256, 32)
    assert r_precision(te, ie) > 0.1  # well above chance (0.01) after 40 steps
