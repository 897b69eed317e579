"""The image-to-image translation networks (gankit.nn.translation): shapes at small sizes, the
reference parameter counts at full size (built on the meta device: no memory, no init), the
PatchGAN receptive field, the U-Net's skips and dropout, StarGAN's conditioning and the image pool."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from gankit.errors import GankitError
from gankit.nn.translation import (
    DiscoDiscriminator,
    DiscoGenerator,
    ImagePool,
    PatchDiscriminator,
    ResnetGenerator,
    StarDiscriminator,
    StarGenerator,
    UNetGenerator,
    init_weights,
    receptive_field,
)


def n_params(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def images(n: int, c: int, r: int, seed: int = 0) -> torch.Tensor:
    return torch.rand(n, c, r, r, generator=torch.Generator().manual_seed(seed)) * 2 - 1


# ---- reference parameter counts ------------------------------------------------------------------
# Counted on throwaway re-creations of the authors' modules (and by hand, layer by layer):
# junyanz/pytorch-CycleGAN-and-pix2pix UnetGenerator(3, 3, 8, 64, BatchNorm2d, use_dropout=True),
# NLayerDiscriminator(6, 64, 3, BatchNorm2d), ResnetGenerator(3, 3, 64, instance norm, n_blocks=9);
# yunjey/stargan Generator(64, 5, 6) and Discriminator(128, 64, 5, 6); SKTBrain/DiscoGAN's 64x64
# Generator() and Discriminator().
@pytest.mark.parametrize("build, expected", [
    (lambda: UNetGenerator(3, 3, 256, ngf=64, norm="batch"), 54_413_955),
    (lambda: PatchDiscriminator(6, ndf=64, n_layers=3, norm="batch"), 2_768_705),
    (lambda: ResnetGenerator(3, 3, ngf=64, n_blocks=9, norm="instance"), 11_378_179),
    (lambda: StarGenerator(3, 5, 128, conv_dim=64, repeat_num=6), 8_430_528),
    (lambda: StarDiscriminator(3, 5, 128, conv_dim=64, repeat_num=6), 44_762_048),
    (lambda: DiscoGenerator(3, 3, 64, ngf=64), 5_513_856),
    (lambda: DiscoDiscriminator(3, 64, ndf=64), 2_765_568),
], ids=["unet256", "patchgan", "resnet9", "star_g", "star_d", "disco_g", "disco_d"])
def test_reference_parameter_counts(build, expected):
    with torch.device("meta"):
        assert n_params(build()) == expected


def test_unet_depth_follows_resolution():
    with torch.device("meta"):
        for r in (16, 32, 128, 256):
            net = UNetGenerator(3, 3, r, ngf=8)
            assert len(net.down) == len(net.up) == r.bit_length() - 1
    net = UNetGenerator(3, 3, 32, ngf=8)
    x = images(1, 3, 32)
    for down in net.down:
        x = down(x)
    assert x.shape == (1, 64, 1, 1)  # 8 * min(2^4, 8) channels at 1x1


# ---- resolution and option checks ----------------------------------------------------------------
@pytest.mark.parametrize("resolution", [8, 24, 0, -16, 100, 16.0, True])
@pytest.mark.parametrize("build", [
    lambda r: UNetGenerator(3, 3, r, ngf=8), lambda r: DiscoGenerator(3, 3, r, ngf=8),
    lambda r: DiscoDiscriminator(3, r, ndf=8), lambda r: StarGenerator(3, 2, r, conv_dim=8),
    lambda r: StarDiscriminator(3, 2, r, conv_dim=8)], ids=["unet", "disco_g", "disco_d", "star_g", "star_d"])
def test_bad_resolution_is_a_one_line_user_error(build, resolution):
    with pytest.raises(GankitError, match="power-of-two resolution >= 16") as err:
        build(resolution)
    assert "\n" not in str(err.value)


def test_bad_options_and_inputs_are_user_errors():
    with pytest.raises(GankitError, match="norm"):
        UNetGenerator(3, 3, 16, ngf=8, norm="layer")
    with pytest.raises(GankitError, match="divisible by 16"):
        UNetGenerator(3, 3, 16, ngf=8)(images(1, 3, 24))
    with pytest.raises(GankitError, match="divisible by 4"):
        ResnetGenerator(3, 3, ngf=8, n_blocks=1)(images(1, 3, 18))
    with pytest.raises(GankitError, match="at least 24x24"):
        PatchDiscriminator(3, ndf=8, n_layers=3)(images(1, 3, 16))
    with pytest.raises(GankitError, match=r"shape \(2, 5\)"):
        StarGenerator(3, 5, 16, conv_dim=8, repeat_num=1)(images(2, 3, 16), torch.zeros(2, 4))
    with pytest.raises(GankitError, match="built for 32x32"):
        StarDiscriminator(3, 5, 32, conv_dim=8)(images(1, 3, 16))


# ---- pix2pix U-Net -------------------------------------------------------------------------------
@pytest.mark.parametrize("c_in, c_out, r, norm", [(1, 3, 16, "batch"), (3, 3, 32, "batch"), (3, 1, 16, "instance"),
                                                  (3, 3, 64, "instance")])
def test_unet_shapes_and_range(c_in, c_out, r, norm):
    net = UNetGenerator(c_in, c_out, r, ngf=8, norm=norm)
    y = net(images(2, c_in, r))
    assert y.shape == (2, c_out, r, r)
    assert y.abs().max() <= 1 and y.std() > 0


def test_unet_skip_connections_carry_local_detail():
    """Cut the path below the outermost level (its encoder output -> zeros): the output still
    follows the input, through the outermost skip alone, and a one-pixel change only moves the
    output near that pixel (4x4 stride-2 conv, then 4x4 stride-2 transposed conv: rows 5..10 for
    pixel 8), which no path through the 1x1 bottleneck could do."""
    torch.manual_seed(0)
    net = UNetGenerator(3, 3, 16, ngf=8, dropout=0.0).eval()
    x = images(1, 3, 16)
    x2 = x.clone()
    x2[:, :, 8, 8] += 1.0
    with torch.no_grad():
        full = net(x)
        handle = net.down[1].register_forward_hook(lambda m, i, out: torch.zeros_like(out))
        y, y2 = net(x), net(x2)
        handle.remove()
    assert not torch.allclose(full, y)  # the deeper levels did contribute
    changed = (y2 - y).abs().amax(dim=(0, 1)) > 1e-7
    rows, cols = changed.nonzero(as_tuple=True)
    assert changed.any()
    assert rows.min() >= 5 and rows.max() <= 10 and cols.min() >= 5 and cols.max() <= 10
    assert changed[7:9, 7:9].all()


def test_unet_dropout_follows_train_eval_unless_kept_on():
    net = UNetGenerator(3, 3, 16, ngf=8)
    assert sum(isinstance(m, nn.Dropout) for m in net.modules()) == 3
    x = images(2, 3, 16)
    with torch.no_grad():
        net.train()
        assert not torch.allclose(net(x), net(x))  # different dropout masks
        net.eval()
        assert torch.equal(net(x), net(x))
        net.dropout_at_eval = True
        assert not torch.allclose(net(x), net(x))  # pix2pix's test-time noise
        assert UNetGenerator(3, 3, 16, ngf=8, dropout_at_eval=True).dropout_at_eval
        quiet = UNetGenerator(3, 3, 16, ngf=8, dropout=0.0).train()
        assert torch.equal(quiet(x), quiet(x))


# ---- PatchGAN ------------------------------------------------------------------------------------
@pytest.mark.parametrize("n_layers, rf", [(1, 16), (2, 34), (3, 70)])
def test_patchgan_receptive_field(n_layers, rf):
    """The formula, and the support of one central logit's gradient over the input."""
    net = PatchDiscriminator(3, ndf=4, n_layers=n_layers).eval()  # eval: BN is per-pixel affine
    assert net.receptive_field == receptive_field(net.model) == rf
    x = images(1, 3, 96).requires_grad_()
    out = net(x)
    h, w = out.shape[-2:]
    out[0, 0, h // 2, w // 2].backward()
    touched = x.grad.abs().sum(dim=(0, 1)) > 0
    rows, cols = touched.any(1).nonzero(), touched.any(0).nonzero()
    assert rows.max() - rows.min() + 1 == rf and cols.max() - cols.min() + 1 == rf


@pytest.mark.parametrize("c_in, r, n_layers, hw", [(6, 32, 3, 2), (4, 64, 3, 6), (2, 16, 1, 6), (6, 16, 2, 2)])
def test_patchgan_output_is_a_logit_map(c_in, r, n_layers, hw):
    out = PatchDiscriminator(c_in, ndf=8, n_layers=n_layers)(images(2, c_in, r))
    assert out.shape == (2, 1, hw, hw)


def test_receptive_field_of_plain_layers():
    assert receptive_field([nn.Conv2d(1, 1, 3), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(1, 1, 3)]) == 8
    assert receptive_field(nn.Conv2d(1, 1, 3, dilation=2)) == 5


# ---- CycleGAN ResNet generator -------------------------------------------------------------------
@pytest.mark.parametrize("c_in, c_out, r, n_down", [(1, 3, 16, 2), (3, 3, 32, 2), (3, 3, 32, 3)])
def test_resnet_generator_shapes(c_in, c_out, r, n_down):
    net = ResnetGenerator(c_in, c_out, ngf=8, n_blocks=2, n_down=n_down)
    y = net(images(2, c_in, r))
    assert y.shape == (2, c_out, r, r) and y.abs().max() <= 1
    assert any(isinstance(m, nn.ReflectionPad2d) for m in net.modules())
    assert sum(isinstance(m, nn.InstanceNorm2d) for m in net.modules()) == 1 + 2 * n_down + 2 * 2


# ---- DiscoGAN ------------------------------------------------------------------------------------
@pytest.mark.parametrize("c_in, c_out, r", [(1, 3, 16), (3, 3, 32), (3, 1, 64)])
def test_disco_shapes_and_features(c_in, c_out, r):
    g = DiscoGenerator(c_in, c_out, r, ngf=8)
    fake = g(images(2, c_in, r))
    assert fake.shape == (2, c_out, r, r) and fake.abs().max() <= 1
    d = DiscoDiscriminator(c_out, r, ndf=8)
    logits, features = d(fake, return_features=True)
    assert logits.shape == (2,)
    assert torch.equal(d(fake), logits)
    n = r.bit_length() - 3  # stride-2 layers down to 4x4; features from the batch-normed ones
    assert [f.shape for f in features] == [(2, 8 * 2 ** i, r >> (i + 1), r >> (i + 1)) for i in range(1, n)]
    assert features[-1].shape[-1] == 4


def test_disco_generator_has_no_skips():
    """Everything passes the 4x4 bottleneck: the generator is encoder then decoder, nothing else."""
    g = DiscoGenerator(3, 3, 32, ngf=8).eval()
    x = images(1, 3, 32)
    with torch.no_grad():
        assert torch.equal(g(x), g.decoder(g.encoder(x)))
        assert g.encoder(x).shape[-2:] == (4, 4)


# ---- StarGAN -------------------------------------------------------------------------------------
@pytest.mark.parametrize("c, r, downs", [(3, 16, 3), (1, 32, 4), (3, 128, 6)])
def test_star_shapes(c, r, downs):
    k = 4
    g = StarGenerator(c, k, r, conv_dim=4, repeat_num=1)
    x = images(2, c, r)
    y = g(x, torch.eye(k)[:2])
    assert y.shape == (2, c, r, r) and y.abs().max() <= 1
    d = StarDiscriminator(c, k, r, conv_dim=4, repeat_num=6)
    assert d.num_downsamplings == downs
    src, cls = d(y)
    assert src.shape == (2, 1, r >> downs, r >> downs) and src.shape[-1] >= 2
    assert cls.shape == (2, k)
    assert d.cls.kernel_size == (r >> downs, r >> downs)


def test_star_generator_output_depends_on_target_attributes():
    g = StarGenerator(3, 3, 16, conv_dim=8, repeat_num=1).eval()
    x = images(1, 3, 16)
    with torch.no_grad():
        a, b = g(x, torch.tensor([[1.0, 0.0, 0.0]])), g(x, torch.tensor([[0.0, 1.0, 1.0]]))
        assert (a - b).abs().mean() > 1e-4
        assert torch.equal(a, g(x, torch.tensor([[1, 0, 0]])))  # integer labels are cast


def test_star_norms_follow_the_reference():
    g = StarGenerator(3, 2, 16, conv_dim=4, repeat_num=1)
    norms = [m for m in g.modules() if isinstance(m, nn.InstanceNorm2d)]
    assert norms and all(m.affine and m.track_running_stats for m in norms)
    g2 = StarGenerator(3, 2, 16, conv_dim=4, repeat_num=1, track_running_stats=False)
    assert not any(m.track_running_stats for m in g2.modules() if isinstance(m, nn.InstanceNorm2d))


# ---- image pool ----------------------------------------------------------------------------------
def tagged(start: int, n: int) -> torch.Tensor:
    """n images, image i filled with the value start + i, so each can be recognised."""
    return torch.arange(start, start + n, dtype=torch.float32)[:, None, None, None].expand(n, 2, 3, 3).clone()


def tags(batch: torch.Tensor) -> list[int]:
    return batch[:, 0, 0, 0].long().tolist()


def test_pool_returns_inputs_until_full_then_swaps():
    pool, gen = ImagePool(4), torch.Generator().manual_seed(0)
    assert len(pool) == 0 and pool.images.numel() == 0
    for start in (0, 2):
        batch = tagged(start, 2)
        assert torch.equal(pool.query(batch, gen), batch)
    assert len(pool) == 4 and sorted(tags(pool.images)) == [0, 1, 2, 3]
    swapped, seen = 0, 0
    for step in range(50):
        before = tags(pool.images)
        batch = tagged(100 + 2 * step, 2)
        out = pool.query(batch, gen)
        after = tags(pool.images)
        # an image only changes hands: pool + batch before == pool + output after
        assert sorted(before + tags(batch)) == sorted(after + tags(out))
        for j, (new, got) in enumerate(zip(tags(batch), tags(out))):
            seen += 1
            if got != new:  # a stored image (or one this batch stored a moment ago) came out
                swapped += 1
                assert got in before + tags(batch)[:j]
    assert 0.3 < swapped / seen < 0.7


def test_pool_of_size_zero_passes_through():
    batch = tagged(0, 3)
    assert torch.equal(ImagePool(0).query(batch, torch.Generator()), batch)


def test_pool_is_deterministic_for_a_seed():
    def run(seed: int) -> list[list[int]]:
        pool, gen = ImagePool(3), torch.Generator().manual_seed(seed)
        return [tags(pool.query(tagged(10 * i, 2), gen)) for i in range(20)]
    assert run(1) == run(1)
    assert run(1) != run(2)


def test_pool_state_dict_round_trip_into_a_fresh_pool():
    pool, gen = ImagePool(5), torch.Generator().manual_seed(3)
    for i in range(6):
        pool.query(tagged(10 * i, 2), gen)
    state, gen_state = pool.state_dict(), gen.get_state()
    assert state["images"].shape == (5, 2, 3, 3) and int(state["count"]) == 5
    fresh = ImagePool(5)
    fresh.load_state_dict(state)
    assert torch.equal(fresh.images, pool.images) and len(fresh) == 5
    gen2 = torch.Generator()
    gen2.set_state(gen_state)
    for i in range(6, 16):
        assert torch.equal(pool.query(tagged(10 * i, 2), gen), fresh.query(tagged(10 * i, 2), gen2))
    # a half-filled pool and an empty one round-trip too
    half = ImagePool(5)
    half.query(tagged(0, 2), gen)
    again = ImagePool(5)
    again.load_state_dict(half.state_dict())
    assert len(again) == 2 and torch.equal(again.images, half.images)
    empty = ImagePool(5)
    empty.load_state_dict(ImagePool(5).state_dict())
    assert len(empty) == 0
    with pytest.raises(RuntimeError, match="size mismatch"):
        ImagePool(4).load_state_dict(state)


# ---- init ----------------------------------------------------------------------------------------
def test_init_weights_is_pix2pix_normal():
    torch.manual_seed(0)
    net = init_weights(PatchDiscriminator(3, ndf=16, n_layers=3))
    convs = [m for m in net.modules() if isinstance(m, nn.Conv2d)]
    bns = [m for m in net.modules() if isinstance(m, nn.BatchNorm2d)]
    weights = torch.cat([m.weight.flatten() for m in convs])
    assert abs(weights.mean()) < 2e-3 and abs(weights.std() - 0.02) < 1e-3
    scales = torch.cat([m.weight for m in bns])
    assert abs(scales.mean() - 1) < 0.01 and 0.01 < scales.std() < 0.03
    assert all(not m.bias.any() for m in convs + bns if m.bias is not None)
