"""SRGAN on the engine: the two stages on one step count, exact resume across the switch, the
patch data, the content losses, tiled upscaling and the `gankit upscale` command."""

from __future__ import annotations


import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

import gankit
from gankit.config import build_config
from gankit.data.patches import load_patches, patch_corners
from gankit.engine import checkpoint as ckpt
from gankit.engine.runtime import Runtime
from gankit.engine.trainer import Trainer
from gankit.errors import GankitError
from gankit.explore.upscale import receptive_radius, upscale_tiled
from gankit.families.srgan import SRGAN, downsample, random_dihedral
from gankit.nn.srgan import SRResNet

from .common import sigterm_then_resume

TINY = dict(data="pictures", preset="tiny", quiet=True)


def state(run):
    return ckpt.load_checkpoint(ckpt.latest_checkpoint(run))


def make_trainer(tmp_path, **overrides):
    config = build_config(SRGAN.Config, preset="tiny", overrides={"data": "pictures", **overrides})
    config.family = "srgan"
    return Trainer(SRGAN, config, SRGAN.load_data(config), tmp_path, Runtime(torch.device("cpu")), quiet=True)


@pytest.fixture(scope="module")
def straight(tmp_path_factory):
    run = tmp_path_factory.mktemp("srgan") / "run"
    gankit.train("srgan", out=run, **TINY)
    return run


def write(path, array):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.asarray(array, dtype=np.uint8)).save(path)
    return path


# ---- the schedule ------------------------------------------------------------------------------
def test_discriminator_waits_for_the_pretraining_and_rates_drop_in_the_adversarial_stage(tmp_path):
    trainer = make_trainer(tmp_path, steps=10, pretrain_steps=4, lr_drop=0.5)
    fam = trainer.family
    d_before = {k: v.clone() for k, v in fam.nets["D"].state_dict().items()}
    g_before = {k: v.clone() for k, v in fam.nets["G"].state_dict().items()}
    logs = [trainer.train_step() for _ in range(4)]
    assert all(set(entry) == {"loss/mse"} for entry in logs)  # SRResNet: MSE only, no D step
    assert all(torch.equal(v, d_before[k]) for k, v in fam.nets["D"].state_dict().items())
    assert any(not torch.equal(v, g_before[k]) for k, v in fam.nets["G"].state_dict().items())
    assert {"loss/D", "loss/G", "loss/content"} <= set(trainer.train_step())  # step 4: adversarial
    assert not all(torch.equal(v, d_before[k]) for k, v in fam.nets["D"].state_dict().items())
    fam.begin_step(6)
    assert fam.optimizers["G"].param_groups[0]["lr"] == pytest.approx(fam.config.lr)
    fam.begin_step(7)  # 4 + 0.5 x 6 = 7: the rate falls x0.1 for both nets
    assert fam.optimizers["G"].param_groups[0]["lr"] == pytest.approx(0.1 * fam.config.lr)
    assert fam.optimizers["D"].param_groups[0]["lr"] == pytest.approx(0.1 * fam.config.lr)


@pytest.mark.parametrize("stop_at", [6, 9])  # tiny: the adversarial stage starts at step 6
def test_sigterm_then_resume_equals_the_straight_run(straight, tmp_path, stop_at):
    sigterm_then_resume("srgan", straight, tmp_path / "r", stop_at, **TINY)


def test_stage_options_and_bad_settings(tmp_path):
    trainer = make_trainer(tmp_path, stage="gan")
    assert "loss/D" in trainer.train_step()  # the adversarial stage from step 0 (after --init)
    trainer = make_trainer(tmp_path, stage="pretrain", steps=4)
    assert all(set(trainer.train_step()) == {"loss/mse"} for _ in range(4))
    for bad, match in [({"content": "vgg54"}, "vgg_weights"), ({"resolution": 40}, "multiple of 16"),
                       ({"scale": 3}, "power of two"), ({"stage": "x"}, "stage"), ({"decay_from": 0.5}, "decay_from")]:
        with pytest.raises(GankitError, match=match):
            build_config(SRGAN.Config, preset="tiny", overrides=bad).validate()


def test_adversarial_stage_starts_from_a_pretrained_run(straight, tmp_path):
    trainer_src, _ = state(straight)
    result = gankit.train("srgan", out=tmp_path / "gan", steps=0, overrides={"stage": "gan"}, init=straight, **TINY)
    assert result.step == 0
    tensors, meta = state(tmp_path / "gan")
    assert meta["config"]["init"] == str(straight) and meta["config"]["nf"] == 8
    g = [k for k in tensors if k.startswith("net.G.")]
    assert g and all(torch.equal(tensors[k], trainer_src[k]) for k in g)


# ---- the content losses ------------------------------------------------------------------------
def test_vgg_content_reads_torchvision_weights_from_disk_and_refuses_other_files(tmp_path):
    from torchvision.models import vgg19

    weights = tmp_path / "vgg19.pth"
    torch.save(vgg19(weights=None).state_dict(), weights)
    result = gankit.train("srgan", out=tmp_path / "run", steps=8, overrides={"content": "vgg22",
                                                                              "vgg_weights": str(weights)}, **TINY)
    assert result.status == "finished"
    logged = [line for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines() if "loss/content" in line]
    assert logged
    tensors, _ = state(tmp_path / "run")
    assert not any("vgg" in k for k in tensors)  # the fixed VGG is not saved in checkpoints
    (tmp_path / "bad.pth").write_bytes(b"not a pickle")
    with pytest.raises(GankitError, match="cannot read the VGG19 weights"):
        gankit.train("srgan", out=tmp_path / "bad", overrides={"content": "vgg22", "vgg_weights": str(tmp_path / "bad.pth")},
                     **TINY)


def test_vgg_loss_is_the_scaled_feature_mse(tmp_path):
    trainer = make_trainer(tmp_path)
    from gankit.nn.vgg import VGGFeatures

    fam = trainer.family
    fam.vgg = VGGFeatures("vgg22")
    a, b = torch.rand(2, 3, 32, 32) * 2 - 1, torch.rand(2, 3, 32, 32) * 2 - 1
    fa, fb = fam.vgg(a), fam.vgg(b)
    assert fa.shape == (2, 128, 16, 16)
    assert float(fam.vgg_loss(a, b)) == pytest.approx(float(((fa - fb) / 12.75).square().mean()), rel=1e-5)


# ---- data --------------------------------------------------------------------------------------
def test_patches_cover_every_photo_and_skip_the_small_ones(tmp_path):
    assert patch_corners(40, 70, 32, 16) == [(0, 0), (0, 16), (0, 32), (0, 38), (8, 0), (8, 16), (8, 32), (8, 38)]
    photo = np.random.default_rng(0).integers(0, 256, (40, 70, 3))
    write(tmp_path / "hr" / "a.png", photo)
    write(tmp_path / "hr" / "tiny.png", photo[:20, :20])
    (tmp_path / "hr" / "broken.png").write_bytes(b"\x89PNG broken")
    ds = load_patches(tmp_path / "hr", crop=32, scale=4, stride=16)
    assert ds.data.shape == (8, 3, 32, 32) and ds.data.dtype == torch.uint8
    assert torch.equal(ds.data[3], torch.from_numpy(photo[0:32, 38:70].astype(np.uint8)).permute(2, 0, 1))
    assert sorted(name for name, _ in ds.skipped) == ["broken.png", "tiny.png"]
    assert "8 patches" in ds.summary() and "skipped 2" in ds.summary()
    with pytest.raises(GankitError, match="no 64 px patch"):
        load_patches(tmp_path / "hr", crop=64, scale=4)


def test_real_pairs_are_cut_at_the_same_places_and_mismatched_sizes_skipped(tmp_path):
    rng = np.random.default_rng(1)
    hr, lr = rng.integers(0, 256, (64, 96, 3)), rng.integers(0, 256, (16, 24, 3))
    write(tmp_path / "hr" / "a.png", hr)
    write(tmp_path / "lr" / "a.png", lr)
    write(tmp_path / "hr" / "b.png", hr)
    write(tmp_path / "lr" / "b.png", lr[:10])  # not 1/4 of its partner
    write(tmp_path / "hr" / "c.png", hr)  # no partner
    ds = load_patches(tmp_path / "hr", crop=32, scale=4, stride=32, data_b=tmp_path / "lr")
    assert ds.kind == "paired" and ds.data.shape == (6, 3, 32, 32) and ds.data_b.shape == (6, 3, 8, 8)
    corners = patch_corners(64, 96, 32, 32)
    for i, (y, x) in enumerate(corners):
        assert torch.equal(ds.data_b[i], torch.from_numpy(lr[y // 4:y // 4 + 8, x // 4:x // 4 + 8].astype(np.uint8))
                           .permute(2, 0, 1))
    assert sorted(name for name, _ in ds.skipped) == ["b.png", "c.png"]


def test_low_resolution_inputs_are_pil_bicubic_to_within_rounding():
    rng = np.random.default_rng(2)
    smooth = np.asarray(Image.fromarray(rng.integers(0, 256, (16, 16, 3), dtype=np.uint8)).resize((64, 64), Image.BICUBIC))
    ours = downsample(torch.from_numpy(smooth.copy()).permute(2, 0, 1)[None].float() / 127.5 - 1, 4)
    ours = ((ours + 1) * 127.5).round()[0].permute(1, 2, 0).numpy()
    theirs = np.asarray(Image.fromarray(smooth).resize((16, 16), Image.BICUBIC)).astype(float)
    assert np.abs(ours - theirs).mean() < 1.0 and np.abs(ours - theirs).max() <= 6


def test_flips_and_turns_treat_a_pair_alike():
    torch.manual_seed(0)
    hr = torch.randn(64, 3, 8, 8)
    lr = F.avg_pool2d(hr, 2)  # commutes with every flip and transpose
    a, b = random_dihedral(hr, lr)
    assert torch.allclose(F.avg_pool2d(a, 2), b, atol=1e-6)
    assert not torch.equal(a, hr) and sorted(a.flatten().tolist()) == sorted(hr.flatten().tolist())


def test_subpixel_convs_start_as_nearest_upscale_and_the_global_skip_adds_bicubic():
    torch.manual_seed(0)
    G = SRResNet(3, nf=8, n_blocks=1, scale=4, batch_norm=False, global_skip=True).eval()
    conv, shuffle = G.upsample[0], G.upsample[1]
    h = torch.randn(2, 8, 5, 6)
    up = shuffle(conv(h))  # ICNR: every 2x2 block of the shuffled output is one value
    assert torch.allclose(up, F.interpolate(up[..., ::2, ::2], scale_factor=2, mode="nearest"), atol=1e-6)
    torch.nn.init.zeros_(G.tail.weight), torch.nn.init.zeros_(G.tail.bias)
    x = torch.rand(1, 3, 7, 9) * 2 - 1
    with torch.no_grad():
        assert torch.allclose(G(x), F.interpolate(x, scale_factor=4, mode="bicubic"), atol=1e-6)


# ---- using a trained model ---------------------------------------------------------------------
@pytest.mark.parametrize("global_skip", [False, True])
def test_tiles_with_the_receptive_overlap_equal_one_pass(global_skip):
    torch.manual_seed(0)
    G = SRResNet(3, nf=8, n_blocks=2, scale=4, batch_norm=True, global_skip=global_skip).eval()
    assert receptive_radius(G, 4) == 4 + 5 + 1 + 2  # 9x9 head; 5 3x3 convs at 1x; 3x3 at 2x and 9x9 at 4x
    x = torch.rand(1, 3, 23, 37) * 2 - 1
    with torch.no_grad():
        whole = G(x).clamp(-1, 1)
    tiled = upscale_tiled(G, x, 4, tile=8)
    assert tiled.shape == (1, 3, 92, 148)
    assert torch.allclose(tiled, whole, atol=1e-5)
    assert not torch.allclose(upscale_tiled(G, x, 4, tile=8, overlap=0), whole, atol=1e-3)  # seams without it


def test_upscale_command_file_folder_reference_and_mistakes(straight, tmp_path, gankit_main):
    rng = np.random.default_rng(3)
    hr = np.asarray(Image.fromarray(rng.integers(0, 256, (12, 16, 3), dtype=np.uint8)).resize((64, 48), Image.BICUBIC))
    write(tmp_path / "hr.png", hr)
    low = write(tmp_path / "in" / "low.png", np.asarray(Image.fromarray(hr).resize((16, 12), Image.BICUBIC)))
    (tmp_path / "in" / "broken.png").write_bytes(b"junk")
    code, out, err = gankit_main("upscale", str(straight), "--input", str(low), "--out", str(tmp_path / "sr.png"),
                                 "--reference", str(tmp_path / "hr.png"), "--tile", "8")
    assert code == 0, err
    assert Image.open(tmp_path / "sr.png").size == (64, 48)
    assert "PSNR" in out and "bicubic" in out
    code, out, err = gankit_main("upscale", str(straight), "--input", str(tmp_path / "in"), "--out", str(tmp_path / "o"))
    assert code == 0 and (tmp_path / "o" / "low.png").is_file() and "skipped 1" in out
    for args, message in [(["--scale", "2"], "x4 only"), (["--reference", str(low)], "--reference is 16x12"),
                          ([], None)]:
        target = ["--input", str(low)] if message else []
        code, out, err = gankit_main("upscale", str(straight), *target, "--out", str(tmp_path / "x.png"), *args)
        assert code == 2 and len(err.strip().splitlines()) == 1, err
        assert message is None or message in err
    assert not (tmp_path / "x.png").exists()  # a wrong --reference is found before anything is written
    for out_path in (tmp_path / "in", tmp_path / "in" / "x4", low):  # the inputs are never written over
        code, out, err = gankit_main("upscale", str(straight), "--input", str(low if out_path == low else tmp_path / "in"),
                                     "--out", str(out_path))
        assert code == 2 and "never overwritten" in err, err


def test_python_upscale_and_translate_agree(straight):
    from gankit.explore.upscale import upscale

    model = gankit.load(straight)
    x = torch.rand(1, 3, 10, 14) * 2 - 1
    out = upscale(model, x, tile=8)
    assert out.shape == (1, 3, 40, 56) and out.abs().max() <= 1
    with torch.no_grad():
        assert torch.allclose(out, model.generator.eval()(x).clamp(-1, 1), atol=1e-5)


def test_translate_points_to_upscale_and_model_translate_takes_any_size(straight, tmp_path, gankit_main):
    code, out, err = gankit_main("translate", str(straight), "--input", str(tmp_path), "--out", str(tmp_path / "t"))
    assert code == 2 and "gankit upscale" in err
    code, _, err = gankit_main("sample", str(straight), "--out", str(tmp_path / "s.png"))
    assert code == 2 and "gankit upscale" in err  # was "use gankit translate", which then pointed here
    model = gankit.load(straight)
    images = torch.randint(0, 256, (2, 3, 9, 13), dtype=torch.uint8)
    assert model.translate(images).shape == (2, 3, 36, 52)


def test_trains_on_real_pairs_given_as_data_b(tmp_path):
    rng = np.random.default_rng(4)
    for name in ("a.png", "b.png"):
        hr = rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)
        write(tmp_path / "hr" / name, hr)
        write(tmp_path / "lr" / name, np.asarray(Image.fromarray(hr).resize((16, 16), Image.BICUBIC)))
    trainer = make_trainer(tmp_path / "run", data=str(tmp_path / "hr"), data_b=str(tmp_path / "lr"))
    assert trainer.dataset.kind == "paired" and trainer.dataset.data_b.shape[1:] == (3, 8, 8)
    batch = trainer.next_batch()
    lr, hr = trainer.family.low_high(batch)
    assert lr.shape[-1] * 4 == hr.shape[-1] == 32
    assert set(trainer.train_step()) == {"loss/mse"}


def test_photos_too_small_for_the_crop_end_in_one_line(tmp_path, gankit_main):
    write(tmp_path / "small" / "a.png", np.zeros((20, 30, 3)))
    code, out, err = gankit_main("train", "srgan", "--data", str(tmp_path / "small"), "--preset", "tiny",
                                 "--out", str(tmp_path / "run"))
    assert code == 2 and len(err.strip().splitlines()) == 1 and "smaller than the 32 px crop" in err, err


def test_evaluate_points_to_paired_scores(straight):
    from gankit.metrics import evaluate

    with pytest.raises(GankitError, match="upscale"):
        evaluate(straight, metrics="swd", n=16)
