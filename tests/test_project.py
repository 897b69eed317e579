"""Projection into W / W+ (gankit.explore.project) and ``gankit project``."""

from __future__ import annotations

import json
import math

import pytest
import torch
from PIL import Image
from safetensors import safe_open

import gankit
from gankit.errors import GankitError
from gankit.explore.project import lr_at, noise_maps, noise_regularizer, noise_scale_at, project
from gankit.explore.project_losses import Distance, msssim_setup, parse_loss


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    path = tmp_path_factory.mktemp("project") / "run"
    gankit.train("stylegan2", data="mnist", out=path, preset="tiny", steps=3, quiet=True, overrides={"max_images": 64})
    return path


@pytest.fixture(scope="module")
def model(run):
    return gankit.load(run)


@pytest.fixture(scope="module")
def photo(model, tmp_path_factory):
    """A PNG of a generated digit, 3x the model's resolution (the command scales it down)."""
    img = model.synthesis(model.mapping(model.latents(1, seed=3))).clamp(-1, 1)
    path = tmp_path_factory.mktemp("photo") / "digit.png"
    big = torch.nn.functional.interpolate(img, scale_factor=3, mode="bilinear")
    Image.fromarray(((big[0, 0] + 1) * 127.5).round().byte().numpy()).save(path)
    return path


def _mse(a, b):
    return float((a - b).square().mean())


def test_projection_recovers_a_generated_latent(model):
    w = model.mapping(model.latents(1, seed=3))[:, 0]
    target = model.synthesis(w, noise="const").detach().clamp(-1, 1)
    mean_mse = _mse(model.synthesis(model.w_avg[None]).clamp(-1, 1), target)
    for space in ("w", "w+"):
        result = project(model, target, space=space, steps=100, lr=0.1, loss="mse", w_avg_samples=2000)
        assert result.w.shape == ((1, 16) if space == "w" else (1, model.num_ws, 16))
        assert result.metrics["mse"] < 0.1 * mean_mse, (space, result.metrics["mse"], mean_mse)
        with torch.no_grad(), noise_maps(model, result.noise):  # the saved noise maps give the image back
            assert torch.allclose(model.synthesis(result.ws).clamp(-1, 1), result.image, atol=1e-5)


def test_w_plus_fits_a_mixed_target_at_least_as_well_as_w(model):
    # A point of W+ that W cannot reach: layers 0-2 from one w, 3-5 from another. (For a target made
    # from a single w, W has 6x fewer unknowns and converges as fast or faster in few steps.)
    ws = model.mapping(model.latents(1, seed=3)).clone()
    ws[:, 3:] = model.mapping(model.latents(1, seed=103))[:, 3:]
    target = model.synthesis(ws, noise="const").detach().clamp(-1, 1)
    mse = {space: project(model, target, space=space, steps=100, lr=0.1, loss="mse", w_avg_samples=2000).metrics["mse"]
           for space in ("w", "w+")}
    assert mse["w+"] <= mse["w"], mse


def _reference_regularizer(m):
    """StyleGAN2's noise penalty written out with loops, one map (R, R)."""
    total, x = 0.0, m.double()
    while True:
        r = x.shape[0]
        sx = sum(x[i, j] * x[i, (j - 1) % r] for i in range(r) for j in range(r)) / r ** 2
        sy = sum(x[i, j] * x[(i - 1) % r, j] for i in range(r) for j in range(r)) / r ** 2
        total += float(sx) ** 2 + float(sy) ** 2
        if r <= 8:
            return total
        x = x.view(r // 2, 2, r // 2, 2).mean(dim=(1, 3))


def test_noise_regularizer_matches_a_reference_and_is_zero_for_uncorrelated_maps():
    maps = [torch.randn(2, 16, 16, generator=torch.Generator().manual_seed(0)), torch.randn(2, 4, 4)]
    got = noise_regularizer(maps)
    want = [sum(_reference_regularizer(m[i]) for m in maps) for i in range(2)]
    assert got.shape == (2,) and torch.allclose(got.double(), torch.tensor(want, dtype=torch.double), rtol=1e-5)
    a = torch.tensor([1.0, 1.0, -1.0, -1.0]).repeat(2)  # zero correlation with its one-pixel shift
    assert float(noise_regularizer([torch.outer(a, a)[None]])) == 0.0
    assert float(noise_regularizer([torch.ones(1, 16, 16)])) == pytest.approx(4.0)  # 2 scales x 2 directions
    checker = (torch.arange(8)[:, None] + torch.arange(8)).remainder(2).float() * 2 - 1
    assert float(noise_regularizer([checker[None]])) == pytest.approx(2.0)


def test_learning_rate_and_latent_noise_schedules():
    assert lr_at(0.0) == 0.0
    assert lr_at(0.025) == pytest.approx(0.05)  # linear ramp-up over the first 5%
    assert all(lr_at(t) == pytest.approx(0.1) for t in (0.05, 0.3, 0.75))  # flat
    assert lr_at(0.875) == pytest.approx(0.05)  # cosine ramp-down over the last 25%: half way
    assert lr_at(1.0) == pytest.approx(0.0, abs=1e-12)
    down = [lr_at(0.75 + 0.25 * i / 10) for i in range(11)]
    assert all(a >= b for a, b in zip(down, down[1:]))
    assert noise_scale_at(0.0, 2.0) == pytest.approx(0.1)
    assert noise_scale_at(0.375, 2.0) == pytest.approx(0.1 * 0.25)
    assert noise_scale_at(0.75, 2.0) == 0.0 and noise_scale_at(0.9, 2.0) == 0.0


def test_loss_specs_and_distances():
    assert parse_loss("mse+0.5*dfeat") == [(1.0, "mse"), (0.5, "dfeat")]
    for bad in ("", "vgg", "-1*mse", "x*l1"):
        with pytest.raises(GankitError):
            parse_loss(bad)
    assert msssim_setup(64) == (11, msssim_setup(64)[1]) and len(msssim_setup(64)[1]) == 3
    assert len(msssim_setup(256)[1]) == 5 and len(msssim_setup(16)[1]) == 2
    x = torch.rand(2, 3, 16, 16) * 2 - 1
    total, parts = Distance("mse+l1+msssim", x)(x)
    assert torch.allclose(total, torch.zeros(2), atol=1e-5) and set(parts) == {"mse", "l1", "msssim"}
    with pytest.raises(GankitError, match="discriminator"):
        Distance("dfeat", x)


def test_run_directory_and_export_both_project(model, run, tmp_path):
    target = model.sample(1, seed=1)
    from_run = project(run, target, steps=3, w_avg_samples=500, frame_every=1, loss="mse+dfeat")
    assert from_run.loss == "mse+dfeat" and "dfeat" in from_run.losses  # the run's discriminator
    assert len(from_run.frames) == 4 and from_run.frames[-1][0] == 3
    assert set(from_run.noise) == {"synthesis.b4.conv1", "synthesis.b8.conv0", "synthesis.b8.conv1",
                                   "synthesis.b16.conv0", "synthesis.b16.conv1"}
    for m in from_run.noise.values():  # renormalised after every step
        assert abs(float(m.mean())) < 1e-5 and float(m.square().mean()) == pytest.approx(1.0, abs=1e-4)
    fixed = project(model, target, steps=2, w_avg_samples=500, loss="l1", optimize_noise=False)
    layer = model.generator.synthesis.b8.conv0
    assert torch.equal(fixed.noise["synthesis.b8.conv0"][0], layer.noise_const) and fixed.losses["noise_reg"] == 0
    model.save_pretrained(tmp_path / "export")
    exported = gankit.load(tmp_path / "export")
    from_export = project(exported, target, space="w+", steps=3, w_avg_samples=500)
    assert from_export.loss == "msssim" and from_export.w.shape == (1, model.num_ws, 16)
    with pytest.raises(GankitError, match="discriminator"):  # an export keeps no D
        project(exported, target, steps=1, loss="dfeat")


@pytest.mark.filterwarnings("ignore:`torch.jit.script` is deprecated")
def test_lpips_weights_never_run_a_torchscript_file(model, tmp_path):
    """stylegan2-ada's vgg16.pt is a TorchScript program: loading it would run code stored in the
    file, so it is refused before anything in it is read."""

    class Evil(torch.nn.Module):  # the call signature of stylegan2-ada's vgg16.pt
        def forward(self, x: torch.Tensor, resize_images: bool = True, return_lpips: bool = False) -> torch.Tensor:
            return x.flatten(1)

    path = tmp_path / "vgg16.pt"
    torch.jit.script(Evil()).save(str(path))
    with pytest.raises(GankitError, match="TorchScript program"):
        project(model, model.sample(1, seed=2), steps=2, w_avg_samples=500, lpips_weights=path)
    (tmp_path / "junk.pt").write_bytes(b"not weights")
    with pytest.raises(GankitError, match="cannot read"):
        project(model, model.sample(1), steps=1, lpips_weights=tmp_path / "junk.pt")


def test_lpips_from_a_torchvision_vgg16_state_dict(model, tmp_path):
    import torchvision

    path = tmp_path / "vgg16-397923af.pth"
    torch.save(torchvision.models.vgg16().state_dict(), path)
    result = project(model, model.sample(1, seed=2), steps=2, w_avg_samples=500, lpips_weights=path)
    assert result.loss == "lpips" and math.isfinite(result.losses["lpips"])


def test_project_command_writes_its_files(run, photo, tmp_path, cli):
    out = tmp_path / "proj"
    done = cli("project", run, "--image", photo, "--out", out, "--space", "w+", "--steps", "12",
               "--frame-every", "4", "--video", "gif", "--loss", "mse")
    assert done.returncode == 0, done.stderr
    assert "PSNR" in done.stdout
    with safe_open(str(out / "latent.safetensors"), "pt") as f:
        meta, keys = f.metadata(), set(f.keys())
        assert tuple(f.get_tensor("w").shape) == (1, 6, 16)
        assert tuple(f.get_tensor("noise.synthesis.b16.conv1").shape) == (16, 16)
    assert meta["space"] == "w+" and meta["steps"] == "12" and meta["loss"] == "mse"
    assert len([k for k in keys if k.startswith("noise.")]) == 5
    assert Image.open(out / "reconstruction.png").size == (2 * 258 + 2, 258 + 2)  # target | reconstruction, x16
    assert Image.open(out / "projected.png").size == (16, 16)
    gif = Image.open(out / "optimisation.gif")
    assert gif.n_frames == 4 and gif.size[1] >= 256  # steps 0, 4, 8 and the final image
    doc = json.loads((out / "projection.json").read_text())
    assert {"psnr", "ssim", "seconds", "losses", "loss"} <= set(doc) and doc["losses"]["mse"] >= 0


@pytest.mark.parametrize("case, message", [
    ("missing image", "no such file"),
    ("bad space", "--space must be w or w+"),
    ("bad lpips path", "--lpips-weights: no such file"),
    ("not style-based", "style-based family"),
    ("bad loss", "--loss takes terms"),
    ("out under a file", "cannot create it"),  # was found only after the optimisation
])
def test_bad_project_options_are_one_line_and_exit_code_2(run, dcgan_run, photo, tmp_path, cli, case, message):
    args = {"missing image": (run, "--image", tmp_path / "none.png"),
            "bad space": (run, "--image", photo, "--space", "z"),
            "bad lpips path": (run, "--image", photo, "--lpips-weights", tmp_path / "vgg16.pt"),
            "not style-based": (dcgan_run, "--image", photo),
            "bad loss": (run, "--image", photo, "--loss", "vgg"),
            "out under a file": (run, "--image", photo, "--out", photo / "sub")}[case]
    if "--out" not in args:
        args = (*args, "--out", tmp_path / "out")
    done = cli("project", *args, "--steps", "2")
    assert done.returncode == 2 and message in done.stderr, done.stderr
    assert len(done.stderr.strip().splitlines()) == 1
