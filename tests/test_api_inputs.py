"""The Python API and ``gankit train`` take wrong inputs as one-line user errors, never as torch
tracebacks or silent misreadings (found by walking the API with awkward arguments)."""

from __future__ import annotations

import json

import pytest
import torch

import gankit
from gankit.errors import GankitError
from gankit.families.base import truncate_latent

TINY = dict(preset="tiny", quiet=True)


@pytest.mark.parametrize("option, message", [
    ("lr_g=-1", "lr_g is a learning rate"), ("lr_d=nan", "lr_d is a learning rate"),
    ("beta1=1.5", "beta1 is an Adam decay rate"), ("n_snapshot=0", "n_snapshot must be >= 1"),
    ("preset=paper", "preset is not an option to --set"), ("family=cgan", "family is not an option"),
])
def test_bad_training_values_are_refused_before_anything_is_written(gankit_main, tmp_path, option, message):
    code, _, err = gankit_main("train", "dcgan", "--data", "mnist", "--out", tmp_path / "r", "--preset", "tiny",
                               "--steps", "1", "--set", option)
    assert code == 2 and message in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "r").exists()


def test_overrides_as_a_dict_are_typed_like_set(tmp_path):
    """{"ema": "false"} trained with EMA on (a non-empty string is true); "1e-3" for a rate failed
    inside the optimizer; one "key=value" string was read character by character."""
    gankit.train("dcgan", data="mnist", out=tmp_path / "a", steps=1, overrides={"ema": "false", "lr_g": "1e-3"},
                 **TINY)
    config = gankit.load(tmp_path / "a").config
    assert config.ema is False and config.lr_g == 1e-3
    gankit.train("dcgan", data="mnist", out=tmp_path / "b", steps=1, overrides="lr_d=2e-3", **TINY)
    assert gankit.load(tmp_path / "b").config.lr_d == 2e-3
    with pytest.raises(GankitError, match="cannot read 'maybe' as bool"):
        gankit.train("dcgan", data="mnist", out=tmp_path / "c", steps=1, overrides={"ema": "maybe"}, **TINY)
    with pytest.raises(GankitError, match="expected float"):
        gankit.train("dcgan", data="mnist", out=tmp_path / "c", steps=1, overrides={"lr_g": [1]}, **TINY)


def test_a_relative_data_folder_is_recorded_as_an_absolute_path(tmp_path, monkeypatch):
    from PIL import Image

    for i in range(4):
        Image.new("L", (16, 16), 40 * i).save((tmp_path / f"{i}.png"))
    monkeypatch.chdir(tmp_path)
    gankit.train("dcgan", data=".", out=tmp_path / "run", steps=1, **TINY)
    assert gankit.load(tmp_path / "run").config.data == str(tmp_path)
    gankit.train("dcgan", data="mnist", out=tmp_path / "builtin", steps=1, **TINY)
    assert gankit.load(tmp_path / "builtin").config.data == "mnist"  # a built-in name stays a name


def test_resume_refuses_options_it_would_ignore(gankit_main, dcgan_run):
    for flag in (("--seed", "5"), ("--batch-size", "4"), ("--resolution", "32"), ("--preset", "paper")):
        code, _, err = gankit_main("train", "--resume", dcgan_run, "--steps", "3", *flag)
        assert code == 2 and "with --resume" in err, (flag, err)
    code, _, err = gankit_main("train", "--resume", dcgan_run, "--set", "steps=0")  # was a silent config change
    assert code == 2 and "already at step 1" in err and "at least 1" in err


def test_sampling_refuses_bad_counts_seeds_and_latents(dcgan_run):
    model = gankit.load(dcgan_run)
    nz = model.family_cls.latent_dim(model.config)
    for bad in (lambda: model.sample(0), lambda: model.sample(-1), lambda: model.sample(2.5),
                lambda: model.sample(2, seed=None), lambda: model.generate(torch.randn(3, nz + 1)),
                lambda: model.generate(torch.zeros(0, nz))):
        with pytest.raises(GankitError):
            bad()
    assert model.generate(torch.randn(3, nz, dtype=torch.float64)).shape[0] == 3  # float64 z is fine


def test_tiny_truncation_is_fast_and_inside_the_interval():
    """Rejection sampling redrew for minutes at t = 1e-6; below 5% acceptance the inverse CDF draws."""
    z = torch.randn(256, 128, generator=torch.Generator().manual_seed(0))
    for t in (1e-6, 0.01, 0.5):
        out = truncate_latent(z, t, generator=torch.Generator().manual_seed(1))
        assert out.abs().max() <= t and out.std() > 0.5 * t  # spread over [-t, t], about uniform when small
    ordinary = truncate_latent(z, 0.5, generator=torch.Generator().manual_seed(1))
    assert torch.equal(ordinary, truncate_latent(z, 0.5, generator=torch.Generator().manual_seed(1)))


def test_export_refuses_a_run_directory_or_a_folder_with_other_files(dcgan_run, tmp_path):
    import shutil

    copy = tmp_path / "copy"
    shutil.copytree(dcgan_run, copy)
    before = (copy / "config.json").read_bytes()
    with pytest.raises(GankitError, match="is a training run"):
        gankit.export(dcgan_run, copy)
    assert (copy / "config.json").read_bytes() == before
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "config.json").write_text("{}")
    with pytest.raises(GankitError, match="folder with other files"):
        gankit.export(dcgan_run, mine)
    gankit.export(dcgan_run, tmp_path / "exp")
    gankit.export(dcgan_run, tmp_path / "exp")  # an earlier export is replaced
    assert gankit.load(tmp_path / "exp").step == 1


def test_a_folder_with_another_tools_config_is_refused_in_one_line(dcgan_run, tmp_path):
    out = tmp_path / "hf"
    gankit.export(dcgan_run, out)
    (out / "config.json").write_text(json.dumps({"architectures": ["SomethingElse"], "hidden_size": 8}))
    for call in (lambda: gankit.load(out), lambda: gankit.info(out)):
        with pytest.raises(GankitError, match="not a gankit export's config"):
            call()


def test_translate_refuses_an_unknown_direction(tmp_path):
    gankit.train("cyclegan", data="mnist-negative", out=tmp_path / "cyc", steps=1, **TINY)
    model = gankit.load(tmp_path / "cyc")
    x = torch.zeros(1, model.config.channels, model.config.resolution, model.config.resolution)
    with pytest.raises(GankitError, match="direction must be AtoB or BtoA"):
        model.translate(x, direction="atob")  # ran BtoA silently
    with pytest.raises(GankitError, match="at least one image"):
        model.translate(x[:0])
    with pytest.raises(GankitError, match="batch_size"):
        model.translate(x, batch_size=0)
    assert model.translate(x, direction="AtoB").shape == x.shape


def test_a_hand_edited_export_config_is_refused_in_one_line(dcgan_run, tmp_path):
    out = tmp_path / "exp"
    gankit.export(dcgan_run, out)
    doc = json.loads((out / "config.json").read_text())
    for value, message in ((-16, "power-of-two"), (None, "does not describe a dcgan generator"),
                           ("sixteen", "cannot read 'sixteen' as int")):
        doc["config"]["resolution"] = value
        (out / "config.json").write_text(json.dumps(doc))
        with pytest.raises(GankitError, match=message):
            gankit.load(out)
    doc["config"]["resolution"] = "16"  # a number written as text is read as --set reads it
    (out / "config.json").write_text(json.dumps(doc))
    assert gankit.load(out).sample(1).shape[-1] == 16


@pytest.mark.parametrize("option", [("--set", "nz=0"), ("--set", "ngf=-2"), ("--set", "device=mps"),
                                    ("--set", "num_classes=-3"), ("--set", "ada_target=5"),
                                    ("--set", "init=elsewhere")])
def test_more_bad_values_are_one_line(gankit_main, tmp_path, option):
    code, _, err = gankit_main("train", "dcgan", "--data", "mnist", "--out", tmp_path / "r", "--preset", "tiny",
                               "--steps", "1", *option)
    assert code == 2 and len(err.strip().splitlines()) == 1, err


def test_seed_lists_and_layer_ranges_refuse_what_they_used_to_drop():
    from gankit.explore.styles import parse_seeds, style_layers

    with pytest.raises(GankitError, match="low-high"):
        parse_seeds("5-1,2")  # gave seed 2 only
    with pytest.raises(GankitError, match="--layers"):
        style_layers("3-", 10, 64)  # was layer 3
    assert parse_seeds("1,2,5-8") == [1, 2, 5, 6, 7, 8] and style_layers("2-4", 10, 64) == [2, 3, 4]


def test_evaluate_refuses_bad_option_values(dcgan_run):
    from gankit.metrics import evaluate

    for options in ({"batch_size": 0}, {"kid_subset_size": 1}, {"swd_max_images": 0}):
        with pytest.raises(GankitError, match="must be a whole number"):
            evaluate(dcgan_run, metrics="swd", n=8, **options)


def test_bench_modes_checks_n_before_training(gankit_main, tmp_path):
    code, _, err = gankit_main("bench", "modes", "gan", "--dataset", "ring8", "--steps", "10", "--short", "--n", "0",
                               "--out", tmp_path / "bm")
    assert code == 2 and "--n must be >= 1" in err and not (tmp_path / "bm").exists()


def test_stargan_attribute_values_are_1_0_or_minus_1_once():
    from gankit.cli_translate import parse_attrs

    assert parse_attrs("gender=Female=1,Red=-1") == {"gender=Female": 1.0, "Red": 0.0}
    for bad in ("Red=2", "Red=nan", "Red=1,Red=0"):
        with pytest.raises(GankitError):
            parse_attrs(bad)


def test_running_out_of_memory_is_one_line(monkeypatch, capsys):
    import gankit.cli as cli

    def oom(*args, **kwargs):
        raise RuntimeError("[enforce fail at alloc_cpu.cpp:117] DefaultCPUAllocator: can't allocate memory: "
                           "you tried to allocate 123456789012 bytes")

    monkeypatch.setattr(cli, "app", oom)
    with pytest.raises(SystemExit) as done:
        cli.main(["upscale"])
    err = capsys.readouterr().err
    assert done.value.code == 2 and err.startswith("error: out of memory") and len(err.strip().splitlines()) == 1


def test_a_failed_write_names_the_file_asked_for_not_the_temporary_one(tmp_path):
    from gankit.files import atomic_target

    (tmp_path / "taken").mkdir()
    with pytest.raises(IsADirectoryError) as failed:
        with atomic_target(tmp_path / "taken") as tmp:
            tmp.write_text("x")
    assert failed.value.filename == str(tmp_path / "taken") and list(tmp_path.iterdir()) == [tmp_path / "taken"]


def test_walks_and_animations_refuse_what_they_could_not_show(gankit_main, dcgan_run, tmp_path):
    code, _, err = gankit_main("interpolate", dcgan_run, "--frames", "3", "--keyframes", "4",
                               "--out", tmp_path / "w.gif")
    assert code == 2 and "at least --keyframes" in err  # passed through keyframe 0 only
    from gankit.viz.animation import GIF_MAX_FPS

    assert GIF_MAX_FPS == 50
