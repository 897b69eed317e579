"""SinGAN on the engine: the schedule per scale, exact resume across scales, memory refusal."""

from __future__ import annotations

import dataclasses
import re

import pytest
import torch
import torch.nn.functional as F
from PIL import Image

import gankit
from gankit.config import build_config
from gankit.engine import checkpoint as ckpt
from gankit.engine.runtime import Runtime
from gankit.engine.trainer import Trainer
from gankit.errors import GankitError
from gankit.families.singan import SinGAN, retrain_scale, scale_sizes, singan_gradient_penalty, training_bytes

from .common import sigterm_then_resume

TINY = dict(preset="tiny", quiet=True)


def make_trainer(tmp_path, **overrides):
    config = build_config(SinGAN.Config, preset="tiny", overrides={"data": "china", **overrides})
    config.family = "singan"
    dataset = SinGAN.load_data(config)
    return Trainer(SinGAN, config, dataset, tmp_path, Runtime(torch.device("cpu")), quiet=True)


def state(run):
    return ckpt.load_checkpoint(ckpt.latest_checkpoint(run))


@pytest.fixture(scope="module")
def straight(tmp_path_factory):
    run = tmp_path_factory.mktemp("singan") / "run"
    gankit.train("singan", data="china", out=run, **TINY)
    return run


def test_run_trains_every_scale_and_samples_at_the_finest_size(straight):
    tensors, meta = state(straight)
    config = meta["config"]
    sizes = scale_sizes(SinGAN.Config.from_dict(config, strict=False))
    assert (config["height"], config["width"]) == (167, 250)  # the built-in picture's own size
    assert max(sizes[-1]) == config["max_size"] and len(sizes) >= 3
    assert meta["step"] == config["steps"] == len(sizes) * config["iters_per_scale"]
    model = gankit.load(straight)
    assert int(model.generator.active) == len(sizes)
    a, b = model.sample(3, seed=1), model.sample(3, seed=1)
    assert a.shape == (3, 3, *sizes[-1]) and torch.equal(a, b)
    assert not torch.equal(a, model.sample(3, seed=2)) and a.abs().max() <= 1


def test_noise_amplitude_is_a_tenth_of_the_reconstruction_rmse(straight):
    """sigma_n = 0.1 x RMSE(x_n, up(rec_{n-1})), measured when scale n began; the scales below
    are frozen from then on, so the finished model reproduces it exactly."""
    G = gankit.load(straight).generator.eval()
    assert float(G.noise_amp[0]) == 1.0
    for n in range(1, len(G)):
        with torch.no_grad():
            prev = G.synthesize([None] * n, G.sizes[:n] + [G.sizes[n]], rec_below=n, stop=n)
        rmse = F.mse_loss(prev, G.real(n)).sqrt()
        assert float(G.noise_amp[n]) == pytest.approx(0.1 * float(rmse), rel=1e-5)


@pytest.mark.parametrize("stop_at", [4, 6])  # tiny: 4 iterations per scale; scale 1 starts at step 4
def test_sigterm_then_resume_equals_the_straight_run(straight, tmp_path, stop_at):
    sigterm_then_resume("singan", straight, tmp_path / "r", stop_at, data="china", **TINY)


def test_a_new_scale_starts_from_the_previous_weights_and_rates_follow_the_schedule(tmp_path):
    trainer = make_trainer(tmp_path, iters_per_scale=5, lr_drop_at=0.6)
    fam = trainer.family
    for _ in range(5):
        trainer.train_step()
    fam.begin_step(5)  # the first iteration of scale 1
    g0, g1 = fam.G.gens[0].state_dict(), fam.G.gens[1].state_dict()
    assert all(torch.equal(g0[k], g1[k]) for k in g0)
    assert all(torch.equal(a, b) for a, b in zip(fam.nets["D"][0].state_dict().values(),
                                                 fam.nets["D"][1].state_dict().values()))
    rates = [g["lr"] for g in fam.optimizers["G"].param_groups]
    assert rates[1] == pytest.approx(5e-4) and rates[0] == rates[2] == 0
    fam.begin_step(8)  # iteration 3 of 5: past 60 %, the rate is x0.1
    assert fam.optimizers["D"].param_groups[1]["lr"] == pytest.approx(5e-5)


def test_concurrent_training_updates_the_scales_below_at_lower_rates(tmp_path):
    trainer = make_trainer(tmp_path, iters_per_scale=2, train_depth=2)
    fam = trainer.family
    for _ in range(2):
        trainer.train_step()
    before = [p.detach().clone() for p in fam.G.gens[0].parameters()]
    trainer.train_step()  # scale 1, scale 0 trained beside it
    assert [g["lr"] for g in fam.optimizers["G"].param_groups][:2] == pytest.approx([5e-5, 5e-4])
    assert any(not torch.equal(a, b) for a, b in zip(before, fam.G.gens[0].parameters()))


def test_gradient_penalty_matches_a_hand_computed_critic():
    """A 1x1 conv critic has gradient w at every pixel: the penalty is (||w|| - 1)^2."""
    D = torch.nn.Conv2d(3, 1, 1, bias=False)
    with torch.no_grad():
        D.weight.copy_(torch.tensor([2.0, 1.0, 2.0]).view(1, 3, 1, 1))  # ||w|| = 3
    real, fake = torch.rand(1, 3, 9, 7), torch.rand(1, 3, 9, 7)
    assert float(singan_gradient_penalty(D, real, fake).detach()) == pytest.approx(4.0)


def test_an_image_too_large_for_memory_is_refused_with_the_size_that_fits():
    config = build_config(SinGAN.Config, preset="paper", overrides={"data": "china", "memory_gb": 0.05})
    with pytest.raises(GankitError, match=r"needs about .* GB .*--set max_size=\d+ fits") as err:
        SinGAN.load_data(config)
    fits = int(re.search(r"max_size=(\d+) fits", str(err.value)).group(1))
    allowed = 0.05 * 1024**3
    assert training_bytes(dataclasses.replace(config, max_size=fits)) <= allowed
    assert training_bytes(dataclasses.replace(config, max_size=fits + 10)) > allowed


def test_one_picture_only(tmp_path):
    for i in range(2):
        Image.new("RGB", (40, 30), (i * 100, 0, 0)).save(tmp_path / f"{i}.png")
    with pytest.raises(GankitError, match="one image"):
        SinGAN.load_data(build_config(SinGAN.Config, preset="tiny", overrides={"data": str(tmp_path)}))
    (tmp_path / "bad.png").write_bytes(b"not a picture")
    with pytest.raises(GankitError, match="cannot read the image"):
        SinGAN.load_data(build_config(SinGAN.Config, preset="tiny", overrides={"data": str(tmp_path / "bad.png")}))


def test_cli_prints_the_pyramid_and_refuses_memory_with_exit_2(cli, tmp_path):
    grey = tmp_path / "grey.png"
    Image.new("L", (50, 40), 128).save(grey)
    ok = cli("train", "singan", "--data", grey, "--preset", "tiny", "--out", tmp_path / "g")
    assert ok.returncode == 0, ok.stderr
    assert "pyramid: " in ok.stdout and "peak memory about" in ok.stdout
    assert gankit.load(tmp_path / "g").sample(2).shape[1] == 1  # a grey picture stays grey
    info = cli("info", tmp_path / "g")
    assert info.returncode == 0 and "pyramid    4 scales (0..3), 15x19" in info.stdout
    big = cli("train", "singan", "--data", "china", "--preset", "paper", "--out", tmp_path / "b",
              "--set", "memory_gb=0.05")
    assert big.returncode == 2 and "--set max_size=" in big.stderr
    assert len(big.stderr.strip().splitlines()) == 1


def test_retrain_scale_changes_only_that_scale_and_sees_transformed_inputs(straight):
    model = gankit.load(straight)
    G = model.generator
    before = {k: v.clone() for k, v in G.state_dict().items()}
    seen = []

    def flat(x):
        seen.append(x.shape)
        return x.sign()  # a stand-in for colour quantisation

    retrain_scale(model, 1, flat, iters=3)
    after = G.state_dict()
    changed = {k.split(".")[1] for k in after if k.startswith("gens.") and not torch.equal(after[k], before[k])}
    assert changed == {"1"}
    assert seen and all(s[-2:] == G.sizes[1] for s in seen)
    assert float(G.noise_amp[1]) > 0 and torch.equal(G.noise_amp[2:], before["noise_amp"][2:])
    with pytest.raises(GankitError, match="outside the pyramid"):
        retrain_scale(model, 0, flat)


def test_set_metrics_do_not_apply_to_one_picture(straight):
    with pytest.raises(GankitError, match="eval_every"):
        build_config(SinGAN.Config, preset="tiny", overrides={"eval_every": 10})
    with pytest.raises(GankitError, match="decay_from does not apply"):
        build_config(SinGAN.Config, preset="tiny", overrides={"decay_from": 0.5})
    from gankit.metrics.evaluate import evaluate

    with pytest.raises(GankitError, match="learns one picture"):
        evaluate(straight, metrics="swd")


def test_info_of_a_run_stopped_early_names_the_scale_it_samples_at(tmp_path):
    """A run stopped inside scale 1 samples scale 1's output upsampled to the finest size; ``info``
    says how far it got (it used to read like a finished pyramid)."""
    run = tmp_path / "early"
    gankit.train("singan", data="china", out=run, steps=6, **TINY)  # tiny: 4 iterations per scale
    sizes = scale_sizes(SinGAN.Config.from_dict(state(run)[1]["config"], strict=False))
    model = gankit.load(run)
    assert int(model.generator.active) == 2 and tuple(model.sample(1).shape[-2:]) == sizes[-1]
    line = gankit.info(run)["details"]["pyramid"]
    assert f"trained up to scale 1 ({sizes[1][0]}x{sizes[1][1]}) so far" in line
    assert f"samples are {sizes[-1][0]}x{sizes[-1][1]}," in line


def test_info_of_a_finished_run_gives_the_finest_scale(straight):
    sizes = scale_sizes(SinGAN.Config.from_dict(state(straight)[1]["config"], strict=False))
    line = gankit.info(straight)["details"]["pyramid"]
    assert "so far" not in line and f"samples are {sizes[-1][0]}x{sizes[-1][1]}," in line
