"""`gankit translate` and `gankit train --data-b`: what a user runs, its files and exit codes."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

import gankit
from gankit.data.builtin import _mnist
from gankit.errors import GankitError


def _digits(folder, n=3):
    folder.mkdir(parents=True, exist_ok=True)
    digits, _ = _mnist(32)
    for i in range(n):
        Image.fromarray(digits[i]).save(folder / f"d{i}.png")
    (folder / "broken.png").write_bytes(b"not a png")
    return folder


def test_train_then_translate_a_folder_both_ways(tmp_path, cli):
    run = tmp_path / "run"
    trained = cli("train", "cyclegan", "--data", "mnist-negative", "--out", run, "--preset", "tiny", "-q",
                  "--set", "max_images=32")
    assert trained.returncode == 0, trained.stderr
    assert "gankit translate" in trained.stdout
    inputs = _digits(tmp_path / "in")
    for direction in ("AtoB", "BtoA"):
        out = tmp_path / direction
        done = cli("translate", run, "--input", inputs, "--out", out, "--direction", direction)
        assert done.returncode == 0, done.stderr
        assert sorted(p.name for p in out.iterdir()) == ["d0.png", "d1.png", "d2.png", "grid.png"]
        assert "skipped 1 unreadable file" in done.stdout
        assert np.asarray(Image.open(out / "d0.png")).shape[:2] == (16, 16)  # the tiny preset's resolution
    bad = cli("translate", run, "--input", inputs, "--out", tmp_path / "x", "--direction", "sideways")
    assert bad.returncode == 2 and bad.stderr.strip().count("\n") == 0 and "AtoB or BtoA" in bad.stderr


def test_translate_refuses_a_noise_model_and_sample_refuses_a_translator(tmp_path, cli):
    run = tmp_path / "p2p"
    assert cli("train", "pix2pix", "--data", "mnist-edges", "--out", run, "--preset", "tiny", "-q",
               "--steps", "2", "--set", "max_images=16").returncode == 0
    sampled = cli("sample", run)
    assert sampled.returncode == 2 and "gankit translate" in sampled.stderr
    wrong_way = cli("translate", run, "--input", _digits(tmp_path / "in", 1), "--out", tmp_path / "o",
                    "--direction", "BtoA")
    assert wrong_way.returncode == 2 and "AtoB only" in wrong_way.stderr
    missing = cli("translate", run, "--input", tmp_path / "nothing", "--out", tmp_path / "o")
    assert missing.returncode == 2 and "not found" in missing.stderr


def test_data_a_and_data_b_train_on_two_folders(tmp_path, cli):
    a, b = _digits(tmp_path / "a", 4), tmp_path / "b"
    b.mkdir()
    for i in range(5):
        Image.fromarray(np.full((24, 24, 3), 40 * i, np.uint8)).save(b / f"{i}.png")
    done = cli("train", "discogan", "--data-a", a, "--data-b", b, "--out", tmp_path / "r", "--preset", "tiny",
               "--steps", "2")
    assert done.returncode == 0, done.stderr
    assert "unpaired A 4 x 1x16x16 -> B 5 x 3x16x16" in done.stdout
    assert "skipped 1 bad file" in done.stdout or "broken.png" in done.stdout


def test_attribute_changes_parse_like_celeba_values():
    import pytest

    from gankit.cli_translate import parse_attrs
    from gankit.errors import GankitError

    assert parse_attrs("Red=1,Thick=-1,gender=Female=1") == {"Red": 1.0, "Thick": 0.0, "gender=Female": 1.0}
    assert parse_attrs(None) is None
    for bad in ("Red", "Red=yes", "=1"):
        with pytest.raises(GankitError):
            parse_attrs(bad)


def test_attrs_for_a_model_without_attributes_is_one_line(tmp_path, cli):
    """Was a RecursionError: the dict of changes went from Model.translate to the family's columns
    and back."""
    import gankit

    run = tmp_path / "p2p"
    gankit.train("pix2pix", data="mnist-edges", out=run, preset="tiny", steps=1, quiet=True,
                 overrides={"max_images": 16})
    done = cli("translate", run, "--input", _digits(tmp_path / "in", 1), "--out", tmp_path / "o", "--attrs", "Red=1")
    assert done.returncode == 2 and done.stderr.strip().count("\n") == 0 and "takes no attributes" in done.stderr
    with pytest.raises(GankitError, match="takes no attributes"):
        gankit.load(run).translate(torch.zeros(1, 1, 16, 16), attrs={"Red": 1})


def test_stargan_without_attrs_writes_every_flip(studio_runs, tmp_path, cli):
    run = studio_runs["stargan"]
    out = tmp_path / "o"
    done = cli("translate", run, "--input", _digits(tmp_path / "in", 2), "--out", out)
    assert done.returncode == 0, done.stderr
    folders = sorted(p.name for p in out.iterdir() if p.is_dir())
    names = gankit.load(run).config.names
    assert folders == sorted("flip-" + n.lower().replace("_", "-") for n in names) and len(folders) > 1
    for folder in folders:
        assert sorted(p.name for p in (out / folder).iterdir()) == ["d0.png", "d1.png"]
    assert (out / "grid.png").exists() and f"wrote {2 * len(names)} translated images" in done.stdout
