"""Single-image measures (SinGAN §4): SIFID, the multi-scale patch SWD and the diversity score."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from gankit.errors import GankitError
from gankit.metrics import features
from gankit.metrics import single_image as si


def scene(h: int = 40, w: int = 56, c: int = 3, seed: int = 0) -> torch.Tensor:
    """A (1, c, h, w) image in [-1, 1] with structure at several scales (smooth fields + oriented stripes)."""
    g = torch.Generator().manual_seed(seed)
    img = torch.zeros(1, c, h, w)
    for s, a in ((8, 1.0), (4, 0.5), (2, 0.3), (1, 0.15)):
        field = torch.randn(1, c, h // s + 1, w // s + 1, generator=g)
        img += a * F.interpolate(field, size=(h, w), mode="bicubic", align_corners=False)
    yy, xx = torch.meshgrid(torch.arange(h), torch.arange(w), indexing="ij")
    img += 0.8 * torch.sign(torch.sin(xx / 3.0 + yy / 5.0))
    return torch.tanh(0.7 * img)


def blur(x: torch.Tensor, sigma: float) -> torch.Tensor:
    r = int(3 * sigma) + 1
    t = torch.arange(-r, r + 1, dtype=torch.float32)
    k = torch.exp(-t ** 2 / (2 * sigma ** 2))
    k = k / k.sum()
    c = x.shape[1]
    x = F.pad(x, (r, r, r, r), mode="reflect")
    x = F.conv2d(x, k.view(1, 1, 1, -1).expand(c, 1, 1, -1), groups=c)
    return F.conv2d(x, k.view(1, 1, -1, 1).expand(c, 1, -1, 1), groups=c)


def noisy(x: torch.Tensor, stds, seed: int = 1) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.cat([x + s * torch.randn(x.shape, generator=g) for s in stds])


def tiny_extractor(channels: int = 8) -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(3, 16, 3, stride=2), nn.ReLU(), nn.Conv2d(16, channels, 3), nn.ReLU()).eval()


def reference_sifid(real: torch.Tensor, fake: torch.Tensor, net: nn.Module) -> float:
    """The authors' recipe in NumPy/SciPy: h*w samples of C-D, np.cov, scipy sqrtm (sifid_score.py)."""
    from scipy import linalg

    def stats(x):
        with torch.no_grad():
            fmap = net(x).numpy().astype(np.float64)
        act = fmap.transpose(0, 2, 3, 1).reshape(-1, fmap.shape[1])  # one row per position, as their reshape
        return act.mean(0), np.cov(act, rowvar=False)

    (m1, s1), (m2, s2) = stats(real), stats(fake)
    covmean = linalg.sqrtm(s1 @ s2).real
    return float((m1 - m2) @ (m1 - m2) + np.trace(s1) + np.trace(s2) - 2 * np.trace(covmean))


# ---- SIFID --------------------------------------------------------------------------------------
def test_sifid_matches_numpy_scipy_reference():
    net, real = tiny_extractor(), scene()
    fakes = torch.cat([noisy(real, [0.1, 0.3]), scene(seed=4)])
    got = si.sifid(real, fakes, net)
    assert got.shape == (3,) and got.dtype == torch.float64
    want = [reference_sifid(real, fakes[i:i + 1], net) for i in range(3)]
    np.testing.assert_allclose(got.numpy(), want, rtol=1e-4, atol=1e-6)


def test_sifid_is_zero_for_the_image_itself_and_grows_with_noise():
    net, real = tiny_extractor(), scene()
    got = si.sifid(real[0], noisy(real, [0.0, 0.1, 0.4]), net)  # real given as (C, H, W)
    assert abs(got[0]) < 1e-6
    assert 0 < got[1] < got[2]
    # a list of same-size images is accepted, batching does not change the values
    assert torch.allclose(si.sifid(real, list(noisy(real, [0.0, 0.1, 0.4])), net, batch=1), got)


def test_sifid_grey_images_are_repeated_to_rgb():
    net, real = tiny_extractor(), scene(c=1)
    got = si.sifid(real, noisy(real, [0.0, 0.2]), net)
    want = si.sifid(real.expand(-1, 3, -1, -1), noisy(real, [0.0, 0.2]).expand(-1, 3, -1, -1), net)
    assert torch.allclose(got, want) and got[1] > got[0]


def test_sifid_extractor_layers(monkeypatch):
    # no weights (meta tensors) instead of the file on disk: only the layer choice and the shapes are checked
    with torch.device("meta"):
        net = features.InceptionFeatures()
    monkeypatch.setattr(features, "load_inception", lambda path=None, device="cpu": net)
    x = torch.zeros(1, 3, 60, 80, device="meta")
    out192 = si.sifid_extractor()(x)  # 1a (s2, valid) 2a (valid) 2b (same) pool (3, s2) 3b (1x1) 4a (valid)
    assert out192.shape == (1, 192, 11, 16)
    assert si.sifid_extractor(dims=64)(x).shape == (1, 64, 27, 37)  # Conv2d_2b output, before the first pool
    with pytest.raises(GankitError, match="dims"):
        si.sifid_extractor(dims=2048)


def test_sifid_extractor_without_weights_says_where_to_put_them(monkeypatch, tmp_path):
    monkeypatch.setattr(features, "inception_search_paths", lambda: [tmp_path / features.INCEPTION_FILES[0]])
    with pytest.raises(GankitError, match="never downloads") as exc:
        si.sifid_extractor()
    assert "\n" not in str(exc.value)
    with pytest.raises(GankitError, match="no such file"):
        si.sifid_extractor(tmp_path / "missing.pth")


def test_sifid_bad_inputs():
    net, real = tiny_extractor(), scene()
    with pytest.raises(GankitError, match="channels"):
        si.sifid(real, scene(c=1), net)
    with pytest.raises(GankitError, match="too small"):  # a 1x1 feature map: one sample
        si.sifid(real[:, :, :7, :7], real[:, :, :7, :7], net)
    with pytest.raises(GankitError, match="too small"):  # smaller than the extractor's receptive field
        si.sifid(real[:, :, :4, :4], real[:, :, :4, :4], net)
    with pytest.raises(GankitError, match=r"\(N, C, h, w\)"):
        si.sifid(real, real, nn.Flatten())


# ---- patch SWD ----------------------------------------------------------------------------------
def test_patch_swd_zero_for_a_copy_and_monotone_in_noise_and_blur():
    real = scene()
    by_noise = si.patch_swd(real, noisy(real, [0.0, 0.05, 0.1, 0.2, 0.4]))
    assert by_noise.shape == (5,) and by_noise[0] == 0
    assert (by_noise.diff() > 0).all()
    by_blur = si.patch_swd(real, torch.cat([real] + [blur(real, s) for s in (0.5, 1.0, 1.5, 2.5)]))
    assert by_blur[0] == 0 and (by_blur.diff() > 0).all()
    assert si.patch_swd(real, scene(seed=5))[0] > by_noise[1]  # another image of the same kind, not a near-copy


def test_patch_swd_counts_contrast_and_structure():
    real = scene(48, 64)
    got = si.patch_swd(real, torch.cat([0.7 * real + 0.1, real.flip(3)]))  # washed-out colours; mirrored stripes
    assert (got > 50).all()


def test_patch_swd_non_square_grey_and_deterministic():
    for real in (scene(40, 56), scene(56, 40, c=1)):
        fakes = noisy(real, [0.1, 0.2])
        a = si.patch_swd(real, fakes, seed=3)
        assert torch.equal(a, si.patch_swd(real, fakes, seed=3))
        assert (a > 0).all() and a[1] > a[0]
    real = scene(40, 56)
    # a fake of another size, explicit levels, a subsample of positions
    other = scene(48, 64, seed=2)
    assert si.patch_swd(real, other, levels=2, patches=300).shape == (1,)
    # each fake is scored alone: the score of a fake does not depend on the others
    fakes = noisy(real, [0.1, 0.2, 0.3])
    assert torch.equal(si.patch_swd(real, fakes)[1:2], si.patch_swd(real, fakes[1:2]))


def test_patch_swd_bad_inputs():
    real = scene()
    with pytest.raises(GankitError, match="channels"):
        si.patch_swd(real, scene(c=1))
    with pytest.raises(GankitError, match="odd nhood"):
        si.patch_swd(real, real, nhood=6)
    with pytest.raises(GankitError, match="levels"):
        si.patch_swd(real, real, levels=8)
    with pytest.raises(GankitError, match="ONE image"):
        si.patch_swd(torch.cat([real, real]), real)
    with pytest.raises(GankitError, match="images"):
        si.patch_swd(real[0, 0], real)


# ---- diversity ----------------------------------------------------------------------------------
def test_diversity_of_identical_fakes_is_zero():
    real = scene()
    assert si.diversity(real, real.expand(4, -1, -1, -1)) == 0


def test_diversity_of_noisy_copies_is_noise_over_image_std():
    real = scene(48, 64)
    s = 0.1
    fakes = real + s * torch.randn(30, 1, 48, 64, generator=torch.Generator().manual_seed(0))  # same noise in R, G, B
    grey = 0.299 * real[0, 0] + 0.587 * real[0, 1] + 0.114 * real[0, 2]
    assert si.diversity(real, fakes) == pytest.approx(s / float(grey.std()), rel=0.03)
    g = scene(48, 64, c=1)
    grey_fakes = g + s * torch.randn(30, 1, 48, 64, generator=torch.Generator().manual_seed(1))
    assert si.diversity(g, grey_fakes) == pytest.approx(s / float(g.std()), rel=0.03)


def test_diversity_bad_inputs():
    real = scene()
    with pytest.raises(GankitError, match="at least 2"):
        si.diversity(real, real)
    with pytest.raises(GankitError, match="share one size"):
        si.diversity(real, [real[0], scene(48, 64)[0]])
    with pytest.raises(GankitError, match="channels"):
        si.diversity(real, scene(c=1).expand(3, -1, -1, -1))
    with pytest.raises(GankitError, match="float"):
        si.diversity(real, torch.zeros(2, 3, 8, 8, dtype=torch.uint8))
    with pytest.raises(GankitError, match="flat"):
        si.diversity(torch.zeros(1, 3, 8, 8), torch.rand(2, 3, 8, 8))
