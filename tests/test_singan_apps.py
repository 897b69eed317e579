"""SinGAN's applications (gankit.explore.singan, gankit harmonize | paint | upscale | animate, the singan options
of gankit sample): Shaham et al. 2019, arXiv:1905.01164, §4, and the authors' scripts (tamarott/SinGAN)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

import gankit
from gankit.cli_singan import parse_size, singan_samples
from gankit.errors import GankitError
from gankit.explore import singan as S
from gankit.viz import make_grid, save_image

H, W = 22, 32  # the tiny preset's finest scale of the built-in china picture (scales 16x22, 19x27, 22x32: N = 2)


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """A singan run trained just enough (12 iterations per scale, ~5 s) for noise to matter, and a gan run."""
    root = tmp_path_factory.mktemp("singan_apps")
    gankit.train("singan", data="china", out=root / "singan", preset="tiny", quiet=True,
                 overrides={"iters_per_scale": 12, "snapshot_every": 36, "checkpoint_every": 36, "log_every": 36})
    gankit.train("gan", data="ring8", out=root / "gan", preset="tiny", steps=2, quiet=True)
    return root


@pytest.fixture
def model(runs):
    return gankit.load(runs / "singan")


def _in_range(x):
    return x.dtype == torch.float32 and float(x.min()) >= -1 and float(x.max()) <= 1


def _png(path, image):
    save_image(make_grid(image, nrow=1, padding=0), path)
    return path


def _corner_mask(h=H, w=W):
    mask = torch.full((1, 1, h, w), -1.0)
    mask[..., 0, 0] = 1.0
    return mask


# ---- random samples ---------------------------------------------------------------------------
def test_samples_are_seeded_and_match_model_sample_at_the_training_size(model):
    a = S.sample(model, 3, seed=1)
    assert a.shape == (3, 3, H, W) and _in_range(a)
    assert torch.equal(a, S.sample(model, 3, seed=1)) and not torch.equal(a, S.sample(model, 3, seed=2))
    assert torch.equal(a, model.sample(3, seed=1))  # what `gankit sample` draws without singan options


def test_samples_of_any_size_and_aspect(model):
    assert S.sample(model, 2, size=(30, 50)).shape == (2, 3, 30, 50)
    assert S.sample(model, 1, scale_h=1.5, scale_w=0.5).shape == (1, 3, 33, 16)
    with pytest.raises(GankitError, match="at least 11x11"):
        S.sample(model, 1, size=(8, 40))
    with pytest.raises(GankitError, match="positive"):
        S.sample(model, 1, scale_w=0.0)
    with pytest.raises(GankitError, match="training size"):
        S.sample(model, 1, size=(30, 50), start_scale=1)
    with pytest.raises(GankitError, match=r"0\.\.2"):
        S.sample(model, 1, start_scale=3)


def test_a_higher_start_scale_keeps_the_reconstruction(model):
    rec = model.generator.reconstruct().cpu()
    far = (S.sample(model, 4, start_scale=0) - rec).abs().mean()
    near = (S.sample(model, 4, start_scale=2) - rec).abs().mean()
    assert near < far / 2


# ---- harmonisation and editing ----------------------------------------------------------------
def test_disk_dilation_of_one_pixel_is_the_disk():
    for radius, (y, x) in ((4, (15, 15)), (7, (0, 3))):  # the second one cut by the border
        mask = torch.zeros(1, 1, 31, 31)
        mask[..., y, x] = 1
        yy, xx = torch.meshgrid(torch.arange(31), torch.arange(31), indexing="ij")
        expected = ((yy - y) ** 2 + (xx - x) ** 2 <= radius ** 2).float()
        assert torch.equal(S.dilate(mask, radius)[0, 0], expected)
    assert S.disk(1).int().tolist() == [[0, 1, 0], [1, 1, 1], [0, 1, 0]]


def test_gaussian_blur_is_scipys_nearest_mode_filter():
    ndimage = pytest.importorskip("scipy.ndimage")
    x = (torch.rand(1, 1, 40, 50, generator=torch.Generator().manual_seed(0)) > 0.8).float()
    ours = S.gaussian_blur(x, 5.0)[0, 0].double().numpy()
    np.testing.assert_allclose(ours, ndimage.gaussian_filter(x[0, 0].double().numpy(), 5.0, mode="nearest"),
                               atol=1e-6)


def test_harmonize_changes_only_the_neighbourhood_of_the_mask(model):
    pasted = model.generator.real(2).cpu().clone()
    pasted[..., 0, 0] = torch.tensor([1.0, -1.0, -1.0])  # a red "object" in the corner
    result = S.harmonize(model, pasted, _corner_mask(), start_scale=1, seed=3)
    out = result["output"]
    assert out.shape == result["unmasked"].shape == (1, 3, H, W) and _in_range(out)
    # the disk of 7 px plus the blur's 20 px reach: columns 28.. are untouched, bit for bit
    assert torch.equal(out[..., 28:], pasted[..., 28:]) and not torch.equal(out[..., :8, :8], pasted[..., :8, :8])
    assert float(result["mask"].max()) == 1 and float(result["mask"].min()) == 0
    edited = S.harmonize(model, pasted, _corner_mask(), start_scale=2, mode="edit")
    assert (edited["mask"] > 0.5).sum() > (result["mask"] > 0.5).sum()  # editing dilates by 20 px, not 7


def test_harmonize_refuses_bad_masks_and_scales(model):
    pasted = model.generator.real(2).cpu()
    with pytest.raises(GankitError, match="same size"):
        S.harmonize(model, pasted, _corner_mask(10, 10), start_scale=1)
    with pytest.raises(GankitError, match="no white"):
        S.harmonize(model, pasted, torch.full((1, 1, H, W), -1.0), start_scale=1)
    for k in (0, 3):
        with pytest.raises(GankitError, match=r"1\.\.2"):
            S.harmonize(model, pasted, _corner_mask(), start_scale=k)
    resized = S.harmonize(model, torch.zeros(1, 3, 44, 64), _corner_mask(44, 64), start_scale=1)
    assert resized["output"].shape == (1, 3, H, W)  # the pasted image is brought to the training size


# ---- paint to image ---------------------------------------------------------------------------
def test_quantisation_maps_to_the_centres(model):
    real = model.generator.real(1).cpu()
    quantised, centres = S.kmeans_colors(real, seed=0)
    colours = torch.unique(quantised[0].flatten(1).T, dim=0)
    assert centres.shape == (5, 3) and len(colours) == 5
    assert all(any(torch.equal(c, k) for k in centres) for c in colours)
    painting = torch.rand(1, 3, 9, 9, generator=torch.Generator().manual_seed(1)) * 2 - 1
    mapped = torch.unique(S.nearest_colors(painting, centres)[0].flatten(1).T, dim=0)
    assert len(mapped) <= 5 and all(any(torch.equal(c, k) for k in centres) for c in mapped)
    three = torch.tensor([-1.0, 0.0, 1.0]).repeat(12)[None, None].reshape(1, 1, 6, 6).expand(1, 3, 6, 6)
    assert S.kmeans_colors(three)[1][:, 0].tolist() == [-1.0, 0.0, 1.0]  # fewer colours: fewer centres


def test_paint_injects_and_calls_the_retraining_hook(model):
    painting = torch.zeros(1, 3, H, W)
    painting[..., : H // 2, :] = 0.6
    plain = S.paint(model, painting, start_scale=1)
    assert plain.shape == (1, 3, H, W) and _in_range(plain)
    G = model.generator
    before = [p.clone() for p in G.gens[2].parameters()]
    quick = S.paint(model, painting, start_scale=2, quantize=True, retrain=False)
    assert all(torch.equal(a, b) for a, b in zip(before, G.gens[2].parameters()))
    out = S.paint(model, painting, start_scale=2, quantize=True, retrain_iters=2)  # G_2 trained again
    assert out.shape == quick.shape == (1, 3, H, W) and _in_range(out)
    assert any(not torch.equal(a, b) for a, b in zip(before, G.gens[2].parameters()))
    with pytest.raises(GankitError, match=r"1\.\.2"):
        S.paint(model, painting, start_scale=0)


# ---- super-resolution -------------------------------------------------------------------------
def test_upscale_gives_scale_times_the_input(model):
    assert S.upscale_steps(4, 2 ** (-1 / 3)) == (6, pytest.approx(4 ** (1 / 6)))  # the authors' calc_init_scale
    up = S.upscale(model, scale=2)
    assert up.shape == (1, 3, 2 * H, 2 * W) and _in_range(up)
    assert S.upscale(model, torch.zeros(1, 3, 12, 16), scale=2.5).shape == (1, 3, 30, 40)  # any LR size
    for bad in (0, -2, 0.5):
        with pytest.raises(GankitError, match=">= 1"):
            S.upscale(model, scale=bad)


def test_upscale_scores_compare_with_bicubic(model):
    low = model.generator.real(2).cpu()
    up = S.upscale(model, scale=2)
    scores = S.upscale_scores(up, S.bicubic(low, up.shape[-2:]), low)
    assert scores["bicubic_psnr"] == 100 and scores["bicubic_ssim"] == pytest.approx(1, abs=1e-4)
    assert 0 < scores["psnr"] < 100 and -1 <= scores["ssim"] < 1
    with pytest.raises(GankitError, match="reference"):
        S.upscale_scores(up, low, low)


# ---- animation --------------------------------------------------------------------------------
def test_animation_moves_smoothly(model):
    video = S.animate(model, frames=6, start_scale=0, seed=4)
    assert video.shape == (6, 3, H, W) and _in_range(video)
    assert torch.equal(video, S.animate(model, frames=6, start_scale=0, seed=4))
    step = (video[1:] - video[:-1]).abs().mean()
    independent = S.sample(model, 6, seed=5)
    assert step < (independent[1:] - independent[:-1]).abs().mean() / 2
    with pytest.raises(GankitError, match=r"0\.\.2"):
        S.animate(model, start_scale=3)


def test_walk_follows_the_authors_recursion():
    gen, z_star = torch.Generator().manual_seed(0), torch.zeros(1, 1, 2, 2)
    walk = S.noise_walk(z_star, (1, 2, 2), 3, 0.1, 0.9, gen)
    gen = torch.Generator().manual_seed(0)
    prev2, prev1 = z_star, 0.05 * torch.randn(1, 1, 2, 2, generator=gen)
    for t in range(3):
        z = 0.9 * (prev1 + 0.9 * (prev1 - prev2) + 0.1 * torch.randn(1, 1, 2, 2, generator=gen))
        assert torch.allclose(walk[t:t + 1], z)
        prev2, prev1 = prev1, z


# ---- the command line -------------------------------------------------------------------------
def test_commands_write_their_files_and_say_so(runs, model, tmp_path, gankit_main):
    run = runs / "singan"
    pasted = _png(tmp_path / "pasted.png", model.generator.real(2).cpu())
    mask = _png(tmp_path / "mask.png", _corner_mask())
    cases = [
        (["harmonize", run, "--input", pasted, "--mask", mask, "--out", tmp_path / "h.png"], ["h.png"]),
        (["harmonize", run, "--input", pasted, "--mask", mask, "--out", tmp_path / "e.png", "--mode", "edit",
          "--start-scale", "2"], ["e.png", "e_unmasked.png"]),
        (["paint", run, "--input", pasted, "--out", tmp_path / "p.png", "--quantize", "--retrain-iters", "2"], ["p.png"]),
        (["upscale", run, "--scale", "2", "--out", tmp_path / "u.png", "--reference",
          _png(tmp_path / "hr.png", S.bicubic(model.generator.real(2).cpu(), (2 * H, 2 * W)))], ["u.png"]),
        (["animate", run, "--out", tmp_path / "a.gif", "--frames", "3"], ["a.gif"]),
    ]
    lines = {}
    for args, files in cases:
        code, stdout, stderr = gankit_main(*args)
        assert code == 0, stderr
        assert stdout.count("\n") == 1 and stdout.startswith("wrote"), stdout
        assert all((tmp_path / f).is_file() for f in files), args[0]
        lines[args[0]] = stdout
    assert "PSNR" in lines["upscale"] and "bicubic" in lines["upscale"]
    for command in lines:
        code, stdout, _ = gankit_main(command, "--help")
        assert code == 0 and "Usage" in stdout, command
    assert Image.open(tmp_path / "u.png").size == (2 * W, 2 * H)
    assert Image.open(tmp_path / "a.gif").n_frames == 3


def test_command_mistakes_are_one_line_and_exit_code_2(runs, model, tmp_path, gankit_main):
    run, gan = runs / "singan", runs / "gan"
    pasted = _png(tmp_path / "pasted.png", model.generator.real(2).cpu())
    mask = _png(tmp_path / "mask.png", _corner_mask())
    small = _png(tmp_path / "small.png", _corner_mask(10, 12))
    (tmp_path / "broken.png").write_bytes(b"not a png")
    cases = [
        (["harmonize", run, "--input", pasted, "--mask", small], "same size"),
        (["harmonize", run, "--input", pasted, "--mask", mask, "--start-scale", "5"], "1..2"),
        (["harmonize", gan, "--input", pasted, "--mask", mask], "singan run"),
        (["harmonize", run, "--input", pasted, "--mask", mask, "--mode", "blend"], "harmonization or edit"),
        (["paint", run, "--input", tmp_path / "broken.png"], "cannot read"),
        (["paint", run, "--input", tmp_path / "missing.png"], "no such image"),
        (["upscale", run, "--scale", "0"], ">= 1"),
        (["upscale", run, "--scale", "2", "--reference", pasted], "--reference is 22x32, but 2 x the input is 44x64"),
        (["upscale", gan], "singan run"),
        (["animate", run, "--start-scale", "7"], "0..2"),
        (["animate", gan], "singan run"),
        (["animate", run, "--fps", "1000"], "at most 50 fps"),  # was written at 50 while saying 1000
        (["paint", run, "--input", pasted, "--retrain-iters", "2"], "--quantize"),  # was ignored
        (["upscale", run, "--tile", "64"], "--tile is for srgan"),  # was ignored
    ]
    for args, message in cases:
        code, stdout, stderr = gankit_main(*args, "--out", tmp_path / ("x.gif" if args[0] == "animate" else "x.png"))
        assert code == 2 and stderr.count("\n") == 1 and message in stderr, (args, stderr)
    assert not any(tmp_path.glob("x.*"))


def test_sample_options_for_the_sample_command(runs, model):
    assert singan_samples(model, 2) is None  # no singan option: gankit sample's ordinary path
    assert singan_samples(model, 2, size="30x40", seed=1).shape == (2, 3, 30, 40)
    assert torch.equal(singan_samples(model, 2, start_scale=0, seed=1), model.sample(2, seed=1))
    assert parse_size("64x96") == (64, 96)
    with pytest.raises(GankitError, match="HEIGHTxWIDTH"):
        parse_size("64")
    with pytest.raises(GankitError, match="singan runs only"):
        singan_samples(gankit.load(runs / "gan"), 2, scale_w=2.0)


def test_sample_command_takes_any_size_and_refuses_it_for_other_families(runs, tmp_path, gankit_main):
    code, stdout, stderr = gankit_main("sample", runs / "singan", "--n", "2", "--size", "30x50",
                                       "--out", tmp_path / "s.png")
    assert code == 0, stderr
    grid = Image.open(tmp_path / "s.png")
    assert grid.size[1] >= 30 and grid.size[0] >= 2 * 50  # two 30x50 samples side by side
    code, _, stderr = gankit_main("sample", runs / "gan", "--start-scale", "1", "--out", tmp_path / "g.png")
    assert code == 2 and "singan runs only" in stderr and stderr.count("\n") == 1


def test_a_reference_one_pixel_off_from_rounding_is_scored_on_the_common_area():
    """A 640x427 original shrunk to 160x107 upscales x4 to 640x428: the command refused it."""
    from gankit.explore.singan import reference_fits, upscale_scores

    assert reference_fits((427, 640), (428, 640)) and not reference_fits((425, 640), (428, 640))
    up = torch.rand(1, 3, 428, 640) * 2 - 1
    scores = upscale_scores(up, up[..., :427, :], torch.rand(1, 3, 107, 160) * 2 - 1)
    assert scores["psnr"] > 60  # identical on the common area
