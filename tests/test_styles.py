"""Style mixing, the truncation strip and their commands (gankit.explore.styles, gankit mix)."""

from __future__ import annotations

import pytest
import torch
from PIL import Image

import gankit
from gankit.errors import GankitError
from gankit.explore.styles import layer_resolution, parse_seeds, style_layers, style_mix, truncation_strip


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    path = tmp_path_factory.mktemp("styles") / "run"
    gankit.train("stylegan2", data="mnist", out=path, preset="tiny", steps=3, quiet=True, overrides={"max_images": 64})
    return path


def test_layer_groups_follow_the_resolutions_of_the_styles():
    # 64x64: 10 layers; layer i acts at min(4 * 2^ceil(i/2), 64)
    assert [layer_resolution(i, 64) for i in range(10)] == [4, 8, 8, 16, 16, 32, 32, 64, 64, 64]
    assert style_layers("coarse", 10, 64) == [0, 1, 2]
    assert style_layers("middle", 10, 64) == [3, 4, 5, 6]
    assert style_layers("fine", 10, 64) == [7, 8, 9]
    assert style_layers("2-4", 10, 64) == [2, 3, 4] and style_layers("5", 10, 64) == [5]
    for bad in ("fine", "0-6", "3-1", "x", "-1"):  # a 16x16 model has layers 0-5 and no fine ones
        with pytest.raises(GankitError):
            style_layers(bad, 6, 16)


def test_parse_seeds():
    assert parse_seeds("1,2,5-7") == [1, 2, 5, 6, 7]
    for bad in ("", "a", "1-b"):
        with pytest.raises(GankitError):
            parse_seeds(bad)


def test_style_mix_grid_holds_sources_and_mixes(run):
    model = gankit.load(run)
    images, nrow = style_mix(model, [1, 2], [3, 4, 5], [0, 1])
    assert nrow == 4 and images.shape == (3 * 4, 1, 16, 16)
    assert torch.equal(images[0], torch.ones_like(images[0]))  # blank corner
    z = lambda s: model.latents(1, seed=s)  # noqa: E731
    assert torch.allclose(images[1], model.generate(z(3))[0], atol=1e-6)  # column source on top
    assert torch.allclose(images[4], model.generate(z(1))[0], atol=1e-6)  # row source on the left
    ws = model.mapping(z(2)).clone()
    ws[:, [0, 1]] = model.mapping(z(4))[:, [0, 1]]
    assert torch.allclose(images[4 * 2 + 2], model.synthesis(ws).clamp(-1, 1)[0], atol=1e-6)  # row 2, column 4


def test_truncation_strip_ends_at_the_mean_image(run):
    model = gankit.load(run)
    images, nrow = truncation_strip(model, [0, 1], [1.0, 0.5, 0.0])
    assert nrow == 3 and images.shape[0] == 6
    assert torch.allclose(images[0], model.sample(1, seed=0)[0], atol=1e-6)
    assert torch.allclose(images[2], images[5], atol=1e-6)  # psi = 0: both seeds give the mean image


def test_mix_and_truncation_commands(run, tmp_path, cli):
    done = cli("mix", run, "--rows", "0-2", "--cols", "3,4", "--layers", "middle", "--out", tmp_path / "mix.png")
    assert done.returncode == 0, done.stderr
    assert "layers 3-5 of 0-5" in done.stdout
    assert Image.open(tmp_path / "mix.png").size == (3 * 18 + 2, 4 * 18 + 2)  # 3 columns + sources, 2 px padding
    done = cli("sample", run, "--n", "4", "--truncation", "0.5", "--truncation-cutoff", "2", "--noise", "none",
               "--out", tmp_path / "s.png")
    assert done.returncode == 0, done.stderr


@pytest.mark.parametrize("args, message", [
    (("mix", "--layers", "0-9"), "outside the network"),
    (("sample", "--truncation", "nan"), "finite"),
])
def test_bad_style_options_are_one_line_and_exit_code_2(run, tmp_path, cli, args, message):
    done = cli(args[0], run, *args[1:], "--out", tmp_path / "x.png")
    assert done.returncode == 2 and message in done.stderr, done.stderr
    assert len(done.stderr.strip().splitlines()) == 1
