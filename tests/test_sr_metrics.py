"""Super-resolution scores against reference computations of the field's protocol (BasicSR's
psnr_ssim.py: 8-bit rounding, BT.601 Y, border crop, SSIM with an 11x11 Gaussian of sigma 1.5 over
the valid region)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from gankit.errors import GankitError
from gankit.metrics.super_resolution import psnr_y, sharpness_ratio, sr_scores, ssim_y, to_y


def reference_y(img: np.ndarray) -> np.ndarray:
    """MATLAB rgb2ycbcr's Y of an HxWx3 uint8 image, float64 in [16, 235]."""
    return 16.0 + img.astype(np.float64) / 255.0 @ np.array([65.481, 128.553, 24.966])


def reference_ssim(a: np.ndarray, b: np.ndarray) -> float:
    """Wang et al. 2004 on one channel, Gaussian 11 / 1.5, 'valid' filtering (BasicSR's _ssim)."""
    g = np.exp(-((np.arange(11) - 5) ** 2) / (2 * 1.5 ** 2))
    g /= g.sum()
    window = np.outer(g, g)

    def filt(x):
        out = np.empty((x.shape[0] - 10, x.shape[1] - 10))
        for i in range(out.shape[0]):
            for j in range(out.shape[1]):
                out[i, j] = (x[i:i + 11, j:j + 11] * window).sum()
        return out

    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    mu_a, mu_b = filt(a), filt(b)
    va, vb, cov = filt(a * a) - mu_a ** 2, filt(b * b) - mu_b ** 2, filt(a * b) - mu_a * mu_b
    s = ((2 * mu_a * mu_b + c1) * (2 * cov + c2)) / ((mu_a ** 2 + mu_b ** 2 + c1) * (va + vb + c2))
    return float(s.mean())


def as_tensor(img: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(img).permute(2, 0, 1)[None].float() / 127.5 - 1


def test_psnr_and_ssim_follow_the_protocol():
    rng = np.random.default_rng(0)
    hr = rng.integers(0, 256, (40, 36, 3), dtype=np.uint8)
    sr = np.clip(hr.astype(int) + rng.integers(-20, 21, hr.shape), 0, 255).astype(np.uint8)
    ya, yb = reference_y(sr)[4:-4, 4:-4], reference_y(hr)[4:-4, 4:-4]
    want_psnr = 10 * np.log10(255.0 ** 2 / np.mean((ya - yb) ** 2))
    assert float(psnr_y(as_tensor(sr), as_tensor(hr), 4)) == pytest.approx(want_psnr, abs=1e-3)
    assert float(ssim_y(as_tensor(sr), as_tensor(hr), 4)) == pytest.approx(reference_ssim(ya, yb), abs=2e-3)
    assert torch.allclose(to_y(as_tensor(hr))[0, 0].double(), torch.from_numpy(reference_y(hr)), atol=1e-4)


def test_sharpness_is_one_for_the_truth_and_lower_when_blurred():
    rng = np.random.default_rng(1)
    hr = as_tensor(rng.integers(0, 256, (32, 32, 3), dtype=np.uint8))
    blurred = torch.nn.functional.avg_pool2d(hr, 3, 1, 1)
    assert float(sharpness_ratio(hr, hr)) == pytest.approx(1.0)
    assert float(sharpness_ratio(blurred, hr)) < 0.6
    scores = sr_scores(hr, hr, 4)
    assert scores["psnr"] >= 99 and scores["ssim"] == pytest.approx(1.0)


def test_mismatched_or_too_small_images_are_refused():
    with pytest.raises(GankitError, match="one shape"):
        psnr_y(torch.zeros(1, 3, 16, 16), torch.zeros(1, 3, 16, 20))
    with pytest.raises(GankitError, match="too small"):
        ssim_y(torch.zeros(1, 3, 16, 16), torch.zeros(1, 3, 16, 16), 4)
