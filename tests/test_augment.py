import pytest
import torch
from safetensors.torch import load_file, save_file

from gankit.data.augment import (
    P_MAX,
    AdaptiveAugment,
    DiffAugment,
    cutout,
    make_augment,
    rand_cutout,
    rand_translation,
    translate,
    warp,
)
from gankit.errors import GankitError


def _images(n=8, c=3, h=32, w=32, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(n, c, h, w, generator=g) * 2 - 1


def _grad(aug, x):
    """d/dx of a random projection of aug(x), so no op's gradient can cancel out."""
    x = x.clone().requires_grad_(True)
    out = aug(x)
    (grad,) = torch.autograd.grad((out * torch.randn_like(out)).sum(), x)
    return out, grad


# ---- DiffAugment ---------------------------------------------------------------------------
@pytest.mark.parametrize("policy", ["color", "translation", "cutout", "color,translation,cutout"])
def test_each_diffaugment_op_changes_images_keeps_shape_and_passes_gradients(policy):
    torch.manual_seed(0)
    x = _images()
    out, grad = _grad(DiffAugment(policy), x)
    assert out.shape == x.shape and out.dtype == x.dtype
    assert not torch.allclose(out, x)
    assert torch.isfinite(grad).all() and grad.abs().sum() > 0


def test_diffaugment_handles_one_channel_and_non_square_images():
    torch.manual_seed(0)
    x = _images(4, 1, 12, 20)
    out, grad = _grad(DiffAugment(), x)
    assert out.shape == x.shape and not torch.allclose(out, x) and torch.isfinite(grad).all()


def test_diffaugment_is_deterministic_under_the_callers_seed_and_fresh_per_call():
    x, aug = _images(), DiffAugment()
    torch.manual_seed(7)
    a, b = aug(x), aug(x)
    torch.manual_seed(7)
    assert torch.equal(aug(x), a)
    assert not torch.equal(a, b)


def test_translate_matches_a_hand_rolled_zero_padded_shift():
    x = _images(2, 3, 8, 10)
    out = translate(x, torch.tensor([2, -3]), torch.tensor([-1, 4]))
    expected = torch.zeros_like(x)
    expected[0, :, 2:, :-1] = x[0, :, :-2, 1:]  # down 2, left 1
    expected[1, :, :-3, 4:] = x[1, :, 3:, :-4]  # up 3, right 4
    assert torch.equal(out, expected)


def test_random_translation_is_an_integer_shift_of_at_most_an_eighth():
    torch.manual_seed(1)
    x = _images(8, 1, 32, 24)
    out = rand_translation(x)
    shifts = [(dy, dx) for dy in range(-4, 5) for dx in range(-3, 4)]  # 32/8 and 24/8
    for i in range(len(x)):
        assert any(torch.equal(out[i:i + 1], translate(x[i:i + 1], torch.tensor([dy]), torch.tensor([dx])))
                   for dy, dx in shifts)


def test_cutout_zeroes_exactly_the_expected_square():
    x = torch.ones(3, 2, 16, 12)
    out = cutout(x, torch.tensor([8, 4, 0]), torch.tensor([6, 3, 12]))  # square is 8 x 6
    expected = torch.ones_like(x)
    expected[0, :, 4:12, 3:9] = 0  # interior: the full 8 x 6 square
    expected[1, :, 0:8, 0:6] = 0
    expected[2, :, 0:4, 9:12] = 0  # centred on a corner: clipped to 4 x 3
    assert torch.equal(out, expected)


def test_random_cutout_zeroes_one_clipped_half_size_square_per_sample_and_blocks_its_gradient():
    torch.manual_seed(2)
    x = torch.ones(16, 3, 32, 32, requires_grad=True)
    out = rand_cutout(x)
    (grad,) = torch.autograd.grad(out.sum(), x)
    assert torch.equal(grad, out.detach())  # d out / d x is the 0/1 mask
    for mask in (out[:, 0] == 0):
        rows, cols = mask.any(1).nonzero().flatten(), mask.any(0).nonzero().flatten()
        height, width = len(rows), len(cols)
        assert mask.sum() == height * width and bool(mask[rows[0]:rows[-1] + 1, cols[0]:cols[-1] + 1].all())
        assert 8 <= height <= 16 and 8 <= width <= 16


def test_unknown_diffaugment_op_is_a_user_error():
    with pytest.raises(GankitError, match="unknown DiffAugment op 'blur'.*color, translation, cutout"):
        DiffAugment("color,blur")


def test_augmentation_rejects_non_image_batches():
    with pytest.raises(GankitError, match=r"\(N, C, H, W\)"):
        DiffAugment()(torch.zeros(4, 2))


# ---- ADA: the pipeline ---------------------------------------------------------------------
def test_ada_with_p_zero_returns_the_input_unchanged():
    x = _images()
    assert AdaptiveAugment()(x) is x


def test_ada_with_p_one_changes_every_image_and_passes_gradients():
    torch.manual_seed(0)
    x = _images(16)
    out, grad = _grad(AdaptiveAugment(p=1.0, adaptive=False), x)
    assert out.shape == x.shape and out.dtype == x.dtype
    assert ((out - x).flatten(1).abs().amax(1) > 1e-2).all()
    assert torch.isfinite(grad).all() and grad.abs().sum() > 0


def test_ada_handles_one_channel_and_non_square_images():
    torch.manual_seed(0)
    x = _images(8, 1, 12, 20)
    out, grad = _grad(AdaptiveAugment(p=1.0, adaptive=False), x)
    assert out.shape == x.shape and not torch.allclose(out, x) and torch.isfinite(grad).all()


def test_ada_keeps_grey_images_grey():
    # Hue rotation and saturation act about the luma axis and the luma flip reflects along it,
    # so a grey pixel (R = G = B) must stay grey whatever the colour draws.
    torch.manual_seed(3)
    x = _images(16, 1).expand(16, 3, 32, 32)
    out = AdaptiveAugment(p=1.0, adaptive=False)(x)
    assert torch.allclose(out[:, 0], out[:, 1], atol=1e-5) and torch.allclose(out[:, 0], out[:, 2], atol=1e-5)


def test_ada_is_deterministic_under_the_callers_seed():
    x, aug = _images(), AdaptiveAugment(p=0.5, adaptive=False)
    torch.manual_seed(5)
    a = aug(x)
    torch.manual_seed(5)
    assert torch.equal(aug(x), a)


def test_warp_reproduces_known_transforms():
    x = _images(4, 3, 8, 8)
    eye = torch.eye(3).expand(4, 3, 3)
    assert torch.allclose(warp(x, eye), x, atol=1e-5)
    flip = torch.diag(torch.tensor([-1.0, 1.0, 1.0])).expand(4, 3, 3)
    assert torch.allclose(warp(x, flip), x.flip(-1), atol=1e-5)
    quarter = torch.tensor([[0.0, -1.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 1.0]]).expand(4, 3, 3)
    assert torch.allclose(warp(x, quarter), torch.rot90(x, 1, (2, 3)), atol=1e-5)
    # A whole-pixel shift lands on pixel centres; the border is reflected, not zeroed.
    shift = torch.tensor([[1.0, 0.0, 2.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]]).expand(4, 3, 3)
    assert torch.allclose(warp(x, shift)[..., :6], x[..., 2:], atol=1e-5)
    assert torch.allclose(warp(x, shift)[..., 6:], x[..., [7, 6]], atol=1e-5)


# ---- ADA: the controller of p --------------------------------------------------------------
def _observe(aug, sign, times, batch=8):
    for _ in range(times):
        aug.observe(torch.full((batch, 1), 3.0 * sign))


def test_overfitting_discriminator_raises_p_by_interval_batch_over_speed_per_update():
    aug = AdaptiveAugment(interval=4, speed_images=1000)
    step, expected = 4 * 8 / 1000, 0.0
    _observe(aug, +1, 3)  # no update before `interval` calls
    assert float(aug.p) == 0.0 and float(aug.count) == 24 and float(aug.signs_sum) == 24
    _observe(aug, +1, 1)
    for _ in range(3):
        expected += step
        assert float(aug.p) == expected and float(aug.count) == 0 and float(aug.signs_sum) == 0
        assert aug.stats() == {"aug/p": expected, "aug/rt": 1.0}
        _observe(aug, +1, 4)
    assert float(aug.calls) == 16


def test_underfitting_discriminator_keeps_p_clamped_at_zero_and_p_stays_below_one():
    aug = AdaptiveAugment(interval=2, speed_images=1000)
    _observe(aug, -1, 10)
    assert aug.stats() == {"aug/p": 0.0, "aug/rt": -1.0}
    fast = AdaptiveAugment(interval=1, speed_images=1)
    _observe(fast, +1, 3)
    assert float(fast.p) == P_MAX < 1


def test_fixed_p_reports_rt_but_does_not_move():
    aug = AdaptiveAugment(p=0.3, adaptive=False, interval=1)
    aug.observe(torch.tensor([1.0, 1.0, -1.0, 1.0]))
    assert aug.stats() == {"aug/p": 0.3, "aug/rt": 0.5}


def test_controller_uses_all_reduced_totals_under_torch_distributed(monkeypatch):
    dist = torch.distributed
    monkeypatch.setattr(dist, "is_available", lambda: True)
    monkeypatch.setattr(dist, "is_initialized", lambda: True)
    monkeypatch.setattr(dist, "all_reduce", lambda t: t.mul_(2))  # two ranks that saw the same
    aug = AdaptiveAugment(interval=4, speed_images=1000)
    _observe(aug, +1, 4)
    assert float(aug.p) == 2 * 4 * 8 / 1000 and float(aug.rt) == 1.0


def test_state_dict_round_trips_exactly_through_safetensors_and_the_next_update_matches(tmp_path):
    a = AdaptiveAugment(interval=4, speed_images=1000)
    _observe(a, +1, 9)  # two updates, one call pending
    save_file(a.state_dict(), tmp_path / "aug.safetensors")
    b = AdaptiveAugment(interval=4, speed_images=1000)
    b.load_state_dict(load_file(tmp_path / "aug.safetensors"))
    for name, buf in a.state_dict().items():
        assert torch.equal(b.state_dict()[name], buf), name
    logits = torch.tensor([2.0, -1.0, 0.5, 0.1])
    for _ in range(3):
        a.observe(logits)
        b.observe(logits)
    # The pending call's 8 images count in the next step: 20 images since the last update, not 12.
    assert a.stats() == b.stats() == {"aug/p": 32 / 1000 + 32 / 1000 + 20 / 1000, "aug/rt": 14 / 20}


# ---- make_augment --------------------------------------------------------------------------
def test_make_augment_builds_each_kind_with_its_settings():
    assert make_augment("none") is None
    diff = make_augment("diffaugment", policy="cutout, color")
    assert isinstance(diff, DiffAugment) and diff.names == ["cutout", "color"]
    ada = make_augment("ada", target=0.7, interval=2, speed_images=500)
    assert isinstance(ada, AdaptiveAugment) and float(ada.p) == 0.0 and ada.adaptive
    assert (ada.target, ada.interval, ada.speed_images) == (0.7, 2, 500)


def test_make_augment_rejects_bad_names_and_settings():
    with pytest.raises(GankitError, match="unknown augment 'mixup'; choose from none, diffaugment, ada"):
        make_augment("mixup")
    with pytest.raises(GankitError, match="DiffAugment"):
        make_augment("diffaugment", policy="color,zoom")
    with pytest.raises(GankitError, match="interval >= 1"):
        make_augment("ada", interval=0)
