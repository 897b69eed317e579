"""Forgetting to draw (gankit.explore.dissect, gankit dissect): DCGAN paper §6.2."""

from __future__ import annotations

import json

import pytest
import torch
from PIL import Image

import gankit
from gankit.errors import GankitError
from gankit.explore.dissect import (contrast_scores, dissect, feature_layers, find_layer, logistic_scores,
                                    parse_region, region_cells)

TINY = dict(data="mnist", preset="tiny", steps=2, quiet=True, overrides={"max_images": 64})
REGION = "0,0,8,8"  # the top-left quarter of a 16x16 tiny sample


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("dissect")
    for family in ("dcgan", "stylegan2"):
        gankit.train(family, out=root / family, **TINY)
    return root


@pytest.fixture
def region_map(runs):
    """The tiny DCGAN with a planted feature map: map 3 of layer main.5 (8 maps, 8x8) fires strongly
    inside REGION and nowhere else."""
    model = gankit.load(runs / "dcgan")
    module = dict(model.generator.named_modules())["main.5"]

    def plant(_mod, _inputs, output):
        output = output.clone()
        output[:, 3, :4, :4] += 4.0
        return output

    handle = module.register_forward_hook(plant)
    yield model
    handle.remove()



def test_layers_are_the_feature_maps_of_any_convolutional_generator(runs):
    dcgan = feature_layers(gankit.load(runs / "dcgan"))  # conv-BN-ReLU blocks, recorded after the ReLU
    assert [(x.name, x.channels, x.size) for x in dcgan] == [("main.2", 16, (4, 4)), ("main.5", 8, (8, 8))]
    model = gankit.load(runs / "stylegan2")
    names = [x.name for x in feature_layers(model)]
    assert names[0] == "synthesis.b4.conv1" and names[-1] == "synthesis.b16.conv1" and len(names) == 5
    assert find_layer(model, -1).name == "synthesis.b16.conv1" and find_layer(model, "synthesis.b8.conv0").index == 1
    with pytest.raises(GankitError, match="0: synthesis.b4.conv1"):
        find_layer(model, "9")


def test_spectral_norm_weights_are_not_layers_and_pairs_or_pyramids_are_refused(tmp_path):
    """SAGAN/BigGAN's spectral norm runs its weights through `parametrizations` modules, whose
    4-D output is a weight, not a feature map; CoGAN draws pairs side by side and SinGAN from
    per-scale noise: both refused in one line (were an IndexError and "within the 0x0 image")."""
    gankit.train("sagan", out=tmp_path / "sagan", **TINY)
    names = [x.name for x in feature_layers(gankit.load(tmp_path / "sagan"))]
    assert names and not any("parametrizations" in n for n in names)
    gankit.train("cogan", data="mnist-edges", out=tmp_path / "cogan", preset="tiny", steps=1, quiet=True,
                 overrides={"max_images": 32})
    with pytest.raises(GankitError, match="two domains side by side"):
        feature_layers(gankit.load(tmp_path / "cogan"))
    gankit.train("singan", data="china", out=tmp_path / "singan", preset="tiny", quiet=True,
                 overrides={"iters_per_scale": 1})
    with pytest.raises(GankitError, match="not from one z"):
        feature_layers(gankit.load(tmp_path / "singan"))


def test_regions_in_pixels_or_fractions_and_on_the_feature_grid():
    assert parse_region("2,4,10,12", 16) == (2, 4, 10, 12)
    assert parse_region("0.25, 0.5, 0.75, 1.0", 16) == (4, 8, 12, 16)
    for bad in ("1,2,3", "4,4,2,8", "0,0,17,8", "0,0,16,16", "a,b,c,d", "0.5,0,1.5,1"):
        with pytest.raises(GankitError, match="region"):
            parse_region(bad, 16)
    cells = region_cells((4, 4), (0, 0, 8, 8), 16)
    assert cells.sum() == 4 and cells[:2, :2].all()
    assert region_cells((4, 4), (5, 5, 7, 7), 16).nonzero().tolist() == [[1, 1]]  # smaller than a cell
    with pytest.raises(GankitError, match="covers every position"):
        region_cells((2, 2), (0, 0, 16, 13), 16)


def test_the_regression_picks_the_map_that_fires_in_the_region():
    gen = torch.Generator().manual_seed(0)
    acts = torch.randn(32, 6, 8, 8, generator=gen).relu()
    inside = torch.zeros(8, 8, dtype=torch.bool)
    inside[2:5, 1:6] = True
    acts[:, 4][:, inside] += 2.0  # map 4: the region
    acts[:, 1] += 3.0  # map 1: strong everywhere
    assert int(logistic_scores(acts, inside).argmax()) == 4
    assert int(contrast_scores(acts, inside).argmax()) == 4


def test_zeroing_the_region_maps_changes_the_region_most(region_map):
    out = dissect(region_map, "main.5", REGION, top=1, n=64, controls=2)
    assert out.maps == [3] and out.layer.name == "main.5"
    assert out.change["ratio"] > 2 and out.change["inside"] > out.control["inside"]
    assert out.control["ratio"] < out.change["ratio"] and len(out.control["maps"]) == 2
    images, nrow = out.figure(5)
    assert nrow == 5 and images.shape == (15, 1, 16, 16)
    assert torch.equal(images[:5], out.before[:5]) and torch.equal(images[5:10], out.after[:5])


def test_dissect_command_writes_the_grid_and_numbers(runs, tmp_path, gankit_main):
    out = tmp_path / "d.png"
    code, stdout, stderr = gankit_main("dissect", runs / "dcgan", "--layer", "-1", "--region", REGION,
                                      "--n", "16", "--show", "4", "--top", "2", "--out", out)
    assert code == 0, stderr
    assert Image.open(out).size == (4 * 18 + 2, 3 * 18 + 2)  # before, after, change
    doc = json.loads(out.with_suffix(".json").read_text())
    assert doc["layer"]["name"] == "main.5" and len(doc["dropped"]) == 2 and doc["region"] == [0, 0, 8, 8]
    assert {"inside", "outside", "ratio"} <= set(doc["change"]) and doc["control"]["draws"] == 3
    assert "ratio" in stdout
    code, stdout, _ = gankit_main("dissect", runs / "stylegan2", "--list-layers")
    assert code == 0 and "synthesis.b8.conv0 (" in stdout


@pytest.mark.parametrize("args, message", [
    (("--layer", "7", "--region", REGION), "no layer '7'"),
    (("--layer", "main.1", "--region", REGION), "0: main.2 (16 maps, 4x4)"),
    (("--region", REGION), "choose a --layer"),
    (("--layer", "1", "--region", "0,0,20,8"), "within the 16x16 image"),
    (("--layer", "1", "--region", "top-left"), "x0,y0,x1,y1"),
    (("--layer", "1", "--region", REGION, "--top", "8"), "--top must be between 1 and 7"),
])
def test_dissect_mistakes_are_one_line_and_exit_code_2(runs, tmp_path, gankit_main, args, message):
    code, _, stderr = gankit_main("dissect", runs / "dcgan", *args, "--out", tmp_path / "x.png")
    assert code == 2 and message in stderr, stderr
    assert len(stderr.strip().splitlines()) == 1
