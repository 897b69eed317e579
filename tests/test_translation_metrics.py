"""Translation metrics: paired L1/PSNR/SSIM against hand computations, class keeping with the
shipped MNIST classifier, and the deterministic reader of the mnist-attributes ground truth."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from gankit.data.attributes import mnist_attributes, render_mnist_attributes
from gankit.data.builtin import _mnist
from gankit.errors import GankitError
from gankit.metrics.translation import (
    PSNR_CAP,
    attribute_edit_success,
    class_keep_rate,
    cycle_error,
    digits_from_attribute_images,
    paired_scores,
    read_mnist_attributes,
)

N_READ = 2000  # rendered digits the reader is scored on (resolution 32)


def _ssim_direct(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """SSIM (Wang et al. 2004) written out: 11x11 Gaussian window (sigma 1.5) with reflection
    padding, K1 0.01, K2 0.03, data range 1; mean of the map per image, float64."""
    x, y = x.double(), y.double()
    g = torch.exp(-((torch.arange(11, dtype=torch.float64) - 5) ** 2) / (2 * 1.5**2))
    g = g / g.sum()
    c = x.shape[1]
    window = (g[:, None] * g[None, :]).expand(c, 1, 11, 11)

    def blur(t):
        return F.conv2d(F.pad(t, (5, 5, 5, 5), mode="reflect"), window, groups=c)

    mx, my = blur(x), blur(y)
    vx, vy, cxy = blur(x * x) - mx**2, blur(y * y) - my**2, blur(x * y) - mx * my
    c1, c2 = 0.01**2, 0.03**2
    ssim = (2 * mx * my + c1) * (2 * cxy + c2) / ((mx**2 + my**2 + c1) * (vx + vy + c2))
    return ssim.mean((1, 2, 3))


def test_identical_images_score_perfectly():
    x = torch.rand(5, 3, 16, 16, generator=torch.Generator().manual_seed(0)) * 2 - 1
    s = paired_scores(x, x.clone())
    assert s["l1"] == 0 and s["psnr"] == PSNR_CAP == 100.0 and s["ssim"] == pytest.approx(1.0, abs=1e-6)
    assert cycle_error(x, x) == 0


def test_psnr_and_l1_match_the_formula_for_a_known_noise_level():
    gen = torch.Generator().manual_seed(1)
    target = torch.rand(7, 3, 16, 16, generator=gen) * 1.6 - 0.8  # room for the noise, nothing clipped
    sign = torch.randint(0, 2, target.shape, generator=gen) * 2 - 1
    pred = target + 0.1 * sign  # |error| 0.1 in [-1, 1] = 0.05 in [0, 1] everywhere
    s = paired_scores(pred, target)
    assert s["l1"] == pytest.approx(0.1, rel=1e-5)
    assert s["psnr"] == pytest.approx(10 * math.log10(1 / 0.05**2), abs=1e-3)  # 26.0206 dB
    assert cycle_error(target, pred) == pytest.approx(0.1, rel=1e-5)


def test_ssim_agrees_with_a_direct_implementation_and_a_known_value():
    gen = torch.Generator().manual_seed(2)
    a = torch.rand(3, 3, 16, 16, generator=gen) * 2 - 1
    b = (a + 0.3 * torch.randn(a.shape, generator=gen)).clamp(-1, 1)
    expected = _ssim_direct((a + 1) / 2, (b + 1) / 2).mean()
    assert paired_scores(b, a)["ssim"] == pytest.approx(float(expected), abs=1e-5)
    # two flat images 0.5 and 0.25: no contrast, SSIM is the luminance term (2ab + C1) / (a^2 + b^2 + C1)
    flat_a, flat_b = torch.zeros(1, 1, 12, 12), torch.full((1, 1, 12, 12), -0.5)
    known = (2 * 0.5 * 0.25 + 1e-4) / (0.5**2 + 0.25**2 + 1e-4)
    assert paired_scores(flat_b, flat_a)["ssim"] == pytest.approx(known, rel=1e-5)  # 0.8001


def test_paired_scores_batch_and_accept_uint8():
    gen = torch.Generator().manual_seed(3)
    a = torch.randint(0, 256, (9, 3, 16, 16), generator=gen, dtype=torch.uint8)
    b = torch.randint(0, 256, (9, 3, 16, 16), generator=gen, dtype=torch.uint8)
    whole = paired_scores(a, b)
    parts = paired_scores(a, b, batch=4)
    assert whole == pytest.approx(parts, rel=1e-6)
    signed = paired_scores(a.float() / 127.5 - 1, b.float() / 127.5 - 1)
    assert whole == pytest.approx(signed, rel=1e-6)
    with pytest.raises(GankitError, match="shapes differ"):
        paired_scores(a, b[:3])
    with pytest.raises(GankitError, match=r"\(N, C, H, W\)"):
        cycle_error(a[0], b[0])


# ----------------------------------------------------------------------------- class kept

@pytest.fixture(scope="module")
def digits32():
    images, labels = _mnist(32)
    n = 800
    return torch.from_numpy(images[:n].copy())[:, None], torch.from_numpy(labels[:n].copy())


def test_real_digits_keep_their_class_and_shuffled_labels_do_not(digits32):
    x, labels = digits32
    assert class_keep_rate(x, labels) > 0.95
    shuffled = labels[torch.randperm(len(labels), generator=torch.Generator().manual_seed(0))]
    assert 0.05 < class_keep_rate(x, shuffled) < 0.18


def test_inverted_and_colour_digits_are_read(digits32):
    x, labels = digits32
    inverted = 255 - x  # dark digits on white
    assert class_keep_rate(inverted, labels, invert="auto") > 0.9
    assert class_keep_rate(inverted, labels, invert=False) < 0.5
    tinted = torch.cat([x, x // 2, x // 4], 1)  # orange digits on black, 3 channels
    assert class_keep_rate(tinted[:300], labels[:300]) > 0.9
    with pytest.raises(GankitError, match="invert must be"):
        class_keep_rate(x[:2], labels[:2], invert="yes")
    with pytest.raises(GankitError, match="2 images but 3 labels"):
        class_keep_rate(x[:2], labels[:3])


# ----------------------------------------------------------------------------- mnist-attributes

@pytest.fixture(scope="module")
def rendered():
    ds = mnist_attributes(32, N_READ)
    return ds.data, ds.attributes, ds.labels


def test_reader_gets_every_attribute_right(rendered):
    images, attrs, _ = rendered
    read = read_mnist_attributes(images)
    assert read.shape == (N_READ, 3) and read.dtype == torch.float32
    accuracy = (read == attrs).float().mean(0)
    assert (accuracy >= 0.98).all(), accuracy  # measured 1.000, 1.000, 1.000
    signed = images[:200].float() / 127.5 - 1
    assert torch.equal(read_mnist_attributes(signed), read[:200])
    noisy = signed + 0.1 * torch.randn(signed.shape, generator=torch.Generator().manual_seed(0))
    assert ((read_mnist_attributes(noisy.clamp(-1, 1)) == attrs[:200]).float().mean(0) >= 0.98).all()
    blank = torch.full((2, 3, 32, 32), -1.0)
    blank[1] = 1.0
    assert read_mnist_attributes(blank).tolist() == [[0, 0, 0], [0, 1, 0]]


def test_digits_from_attribute_images_keep_the_class(rendered):
    images, _, labels = rendered
    digits = digits_from_attribute_images(images)
    assert digits.shape == (N_READ, 1, 32, 32) and digits.min() >= -1 and digits.max() <= 1
    assert digits[:, :, :2].median() == -1  # black background whatever the image's background
    assert class_keep_rate(digits, labels, invert=False) >= 0.95  # measured 0.966


def test_attribute_edit_success_scores_edits_against_targets(rendered):
    images, attrs, labels = rendered
    n = 400
    source = _mnist(32)[0][:n]
    target = attrs[:n].clone()
    target[:, 0] = 1 - target[:, 0]  # the edit: flip Red
    edited = render_mnist_attributes(source, target)  # a perfect edit
    s = attribute_edit_success(edited, target, labels[:n])
    assert set(s) == {"Red", "Light_Background", "Thick", "all_attributes", "class_kept", "success"}
    assert s["Red"] == s["Light_Background"] == 1 and s["all_attributes"] >= 0.99
    assert s["class_kept"] >= 0.95 and s["success"] == pytest.approx(min(s["all_attributes"], s["class_kept"]), abs=0.01)
    unchanged = attribute_edit_success(images[:n], target, labels[:n])  # an edit that did nothing
    assert unchanged["Red"] == 0 and unchanged["all_attributes"] == 0 and unchanged["success"] == 0
    assert unchanged["Thick"] >= 0.98 and unchanged["class_kept"] >= 0.95
    wrong_digit = attribute_edit_success(edited, target, (labels[:n] + 1) % 10)
    assert wrong_digit["all_attributes"] == s["all_attributes"] and wrong_digit["class_kept"] < 0.05
    with pytest.raises(GankitError, match="need"):
        attribute_edit_success(edited, target[:, :2], labels[:n])


def test_known_noise_with_numpy_reference():
    """PSNR of uint8 images against NumPy's own computation (per image, then the mean)."""
    rng = np.random.RandomState(4)
    a = rng.randint(0, 256, (4, 1, 8, 8)).astype(np.uint8)
    b = np.clip(a.astype(int) + rng.randint(-20, 21, a.shape), 0, 255).astype(np.uint8)
    mse = ((a / 255.0 - b / 255.0) ** 2).mean((1, 2, 3))
    expected = np.mean(10 * np.log10(1 / mse))
    assert paired_scores(torch.from_numpy(b), torch.from_numpy(a))["psnr"] == pytest.approx(expected, abs=1e-3)


def test_sharpness_falls_when_images_are_blurred():
    from gankit.metrics.translation import sharpness

    torch.manual_seed(0)
    x = torch.rand(4, 3, 16, 16) * 2 - 1
    blurred = F.avg_pool2d(F.pad(x, (1, 1, 1, 1), mode="replicate"), 3, stride=1)
    assert sharpness(torch.zeros(2, 1, 8, 8)) == 0.0
    assert sharpness(blurred) < 0.5 * sharpness(x)
    # a single bright pixel on black: |Laplacian| sums to 4 + 4 * 1 = 8 over the 6x6 valid window
    dot = -torch.ones(1, 1, 8, 8)
    dot[0, 0, 4, 4] = 1
    assert abs(sharpness(dot) - 8 / 36) < 1e-6


def test_colour_class_rate_reads_the_ink_colour_of_mnist_colour_digits():
    from gankit.data.two_domain import DIGIT_COLOURS, load_two_domain
    from gankit.metrics.translation import colour_class_rate, stroke_colours

    truth = load_two_domain("mnist-colour", paired=True, resolution=16, max_images=200)
    labels = truth.labels
    assert colour_class_rate(truth.data_b, labels, DIGIT_COLOURS) == 1.0
    assert colour_class_rate(truth.data_b, (labels + 1) % 10, DIGIT_COLOURS) == 0.0
    grey = truth.data.expand(-1, 3, -1, -1)  # white ink: the colour of class 9 only
    assert abs(colour_class_rate(grey, labels, DIGIT_COLOURS) - float((labels == 9).float().mean())) < 1e-6
    one = torch.zeros(1, 3, 4, 4)
    one[0, :, 0, 0] = torch.tensor([1.0, 0.5, 0.0])  # one ink pixel, the rest black
    assert torch.allclose(stroke_colours(one * 2 - 1, share=1 / 16), torch.tensor([[1.0, 0.5, 0.0]]))
