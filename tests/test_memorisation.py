"""The nearest-neighbour memorisation check: distances, verdicts, pictures and the command."""

from __future__ import annotations

import json
from types import SimpleNamespace

import numpy as np
import pytest
import torch
import typer
from PIL import Image
from typer.testing import CliRunner

from gankit.errors import GankitError
from gankit.metrics.memorisation import (LABEL_HEIGHT, SEPARATOR_RGB, knn, nearest_neighbours, neighbour_grid,
                                         split_indices, write_outputs)

RES = 8


def _images(n: int = 300, seed: int = 0) -> torch.Tensor:
    """Random uint8 'photos' (N, 1, 8, 8): smooth blobs so they are not all equally far apart."""
    g = torch.Generator().manual_seed(seed)
    low = torch.rand(n, 1, 4, 4, generator=g)
    img = torch.nn.functional.interpolate(low, size=(RES, RES), mode="bilinear", align_corners=False)
    return (img * 255).round().to(torch.uint8)


class StandIn:
    """Anything with .sample(n, seed=...) and .config (channels, resolution) is a model here."""

    def __init__(self, make):
        self.make = make
        self.config = SimpleNamespace(channels=1, resolution=RES, data=None)

    def sample(self, n, *, seed=0, cond=None):
        return self.make(n, torch.Generator().manual_seed(seed))


@pytest.fixture(scope="module")
def data():
    return _images()


def _copier(data, seed=0):
    """Memorises: returns exact images of the reference (training) part of the split."""
    ref, _ = split_indices(len(data), seed=seed)
    return StandIn(lambda n, g: data[ref[torch.randint(0, len(ref), (n,), generator=g)]].float() / 127.5 - 1)


def test_knn_matches_brute_force_across_chunks():
    g = torch.Generator().manual_seed(1)
    q, r = torch.randn(37, 12, generator=g), torch.randn(101, 12, generator=g)
    d, i = knn(q, r, 4, query_chunk=8, ref_chunk=16)
    full = torch.cdist(q.double(), r.double())
    ref_d, ref_i = full.topk(4, dim=1, largest=False)
    assert torch.equal(i, ref_i) and torch.allclose(d.double(), ref_d, atol=1e-5)
    # a reference given as a function of (start, stop) gives the same answer
    d2, i2 = knn(q, lambda a, b: r[a:b], 4, n_reference=len(r), ref_chunk=7)
    assert torch.equal(i2, i) and torch.allclose(d2, d)


def test_split_holds_out_a_tenth_disjointly():
    ref, hold = split_indices(200, seed=3)
    assert len(hold) == 20 and len(ref) == 180 and not set(ref.tolist()) & set(hold.tolist())
    assert torch.equal(split_indices(200, seed=3)[1], hold)
    with pytest.raises(GankitError):
        split_indices(1)


def test_a_memorising_model_is_flagged_and_its_neighbours_are_itself(data):
    result = nearest_neighbours(_copier(data), data, n=6, k=3, features="pixel", seed=0, n_compare=200)
    assert result["memorisation"] and result["verdict"].startswith("possible memorisation")
    px = result["pixel"]
    assert px["share_below_heldout_p5"] > 0.9 and px["near_copies"] == 200
    assert torch.all(px["distances"][:, 0] < 1e-4)
    # the nearest neighbour of each shown sample is the very training image it copied
    assert torch.allclose(result["neighbour_images"]["pixel"][:, 0], result["samples"], atol=1e-6)
    assert px["distances"].shape == (6, 3) and torch.all(px["distances"][:, 1:] >= px["distances"][:, :1])
    # neighbours come from the reference part only, never from the held-out images
    held = set(result["heldout_indices"].tolist())
    assert not held & set(px["indices"].flatten().tolist())


def test_fresh_images_are_not_flagged(data):
    # fresh images of the same distribution (the generator as it should be) ...
    fresh = StandIn(lambda n, g: _images(n, seed=int(torch.randint(0, 10**6, (1,), generator=g))).float() / 127.5 - 1)
    result = nearest_neighbours(fresh, data, n=4, k=2, features="pixel", n_compare=300)
    assert not result["memorisation"] and result["verdict"].startswith("no sign of memorisation")
    assert result["pixel"]["share_below_heldout_p5"] < min(0.15, result["pixel"]["flag_above"])
    # ... and pure noise (far from everything)
    noise = StandIn(lambda n, g: torch.rand(n, 1, RES, RES, generator=g) * 2 - 1)
    result = nearest_neighbours(noise, data, n=4, k=2, features="pixel", n_compare=100)
    assert not result["memorisation"] and "no sign of memorisation" in result["verdict"]
    assert result["pixel"]["generated"]["median"] > result["pixel"]["heldout"]["median"]


def test_blurry_average_samples_are_not_taken_for_copies(data):
    # an unfinished generator: the data's mean image plus a little noise is closer in L2 to the
    # training images than held-out images are (the raw share is high) but copies nothing
    mean = data.float().mean(0) / 127.5 - 1
    blur = StandIn(lambda n, g: (mean + 0.02 * torch.randn(n, *mean.shape, generator=g)).clamp(-1, 1))
    result = nearest_neighbours(blur, data, n=4, k=2, features="pixel", n_compare=300)
    px = result["pixel"]
    assert px["share_below_heldout_p5"] > 0.5  # the raw distances alone would call it memorisation
    assert not result["memorisation"] and result["verdict"].startswith("no sign of memorisation")
    assert px["ratio"]["share"] < px["ratio"]["flag_above"]
    # while a copier's ratio is ~0 for every sample
    copier = nearest_neighbours(_copier(data), data, n=2, k=1, features="pixel", n_compare=100)["pixel"]
    assert copier["ratio"]["share"] > 0.9 and copier["ratio"]["generated"]["median"] < 1e-3


def test_grid_has_k_plus_one_tiles_per_row_and_a_separator():
    samples = -torch.ones(3, 1, RES, RES)
    neigh = torch.ones(3, 4, 1, RES, RES)
    grid = neighbour_grid(samples, neigh, padding=2, separator=3)
    assert grid.shape == (3 * (RES + 2) + 2, 5 * (RES + 2) + 2 + 3 + 2, 3)
    sep_x = 2 + RES + 2
    assert (grid[:, sep_x:sep_x + 3] == SEPARATOR_RGB).all()
    assert (grid[2:2 + RES, 2:2 + RES] == 0).all()  # the sample (black) comes first
    assert (grid[2:2 + RES, sep_x + 5:sep_x + 5 + RES] == 255).all()  # then its neighbours


def test_outputs_grid_histogram_and_json(data, tmp_path):
    result = nearest_neighbours(_copier(data), data, n=5, k=4, features="pixel", n_compare=50)
    paths = write_outputs(result, tmp_path / "nn.png")
    assert paths["hist"] == tmp_path / "nn_hist.png" and paths["json"] == tmp_path / "nn.json"
    scale = 48 // RES
    tile = RES * scale
    sep = max(2, tile // 8)
    with Image.open(paths["grid"]) as im:
        assert im.size == (5 * (tile + 2) + 2 + sep + 2, LABEL_HEIGHT + 5 * (tile + 2) + 2)
    with Image.open(paths["hist"]) as im:
        assert im.format == "PNG" and im.size[0] > 100
    doc = json.loads(paths["json"].read_text())
    assert doc["memorisation"] is True and doc["verdict"] == result["verdict"] and doc["feature"] is None
    assert doc["pixel"]["heldout"]["count"] == 30 and doc["generated"] == 50 and len(doc["pixel"]["gen_nn"]) == 50
    assert np.array(doc["pixel"]["indices"]).shape == (5, 4) and "5th percentile" in doc["rule"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["nn.json", "nn.png", "nn_hist.png"]  # no temp files


def _fake_features(monkeypatch, make):
    import gankit.metrics.features

    monkeypatch.setattr(gankit.metrics.features, "resolve_features", make)


class MeanPool(torch.nn.Module):
    name = "fake"

    def forward(self, x):
        return torch.nn.functional.avg_pool2d(x, 2).flatten(1)


def test_feature_neighbours_give_a_second_grid(data, tmp_path, monkeypatch):
    seen = {}

    def get_extractor(name, *, channels, resolution, inception_weights=None):
        seen.update(name=name, channels=channels, resolution=resolution)
        return MeanPool()

    _fake_features(monkeypatch, get_extractor)
    result = nearest_neighbours(_copier(data), data, n=3, k=2, features="auto", n_compare=40)
    assert seen == {"name": "auto", "channels": 1, "resolution": RES} and result["features"] == "fake"
    feat = result["feature"]
    assert feat["indices"].shape == (3, 2) and torch.all(feat["distances"][:, 0] < 1e-4)
    paths = write_outputs(result, tmp_path / "nn.png")
    with Image.open(paths["grid"]) as im:
        one = (3 * (RES * 6 + 2) + 2) + LABEL_HEIGHT
        assert im.size[1] == 2 * one  # pixel grid and feature grid, each with its label
    assert json.loads(paths["json"].read_text())["feature"]["generated"]["count"] == 40


def test_unavailable_features_fall_back_to_pixels_for_auto_only(data, monkeypatch):
    def get_extractor(name, **kw):
        raise GankitError("no weights here")

    _fake_features(monkeypatch, get_extractor)
    result = nearest_neighbours(_copier(data), data, n=2, k=2, features="auto", n_compare=20)
    assert result["feature"] is None and "feature neighbours unavailable" in result["notes"][0]
    assert list(result["neighbour_images"]) == ["pixel"]
    with pytest.raises(GankitError, match="no weights"):
        nearest_neighbours(_copier(data), data, n=2, k=2, features="mnist", n_compare=20)


def test_bad_inputs_are_user_errors(data, tmp_path):
    model = _copier(data)
    with pytest.raises(GankitError, match="not found"):
        nearest_neighbours(model, str(tmp_path / "nowhere"), n=2, k=2)
    with pytest.raises(GankitError, match="--data"):
        nearest_neighbours(model, None, n=2, k=2)
    with pytest.raises(GankitError, match="shape"):
        nearest_neighbours(model, _images(50)[:, :, :4, :4], n=2, k=2)
    with pytest.raises(GankitError, match="--features"):
        nearest_neighbours(model, data, n=2, k=2, features="vgg")
    with pytest.raises(GankitError):
        nearest_neighbours(model, data, n=0, k=2)
    points = StandIn(lambda n, g: torch.randn(n, 2))
    points.config = SimpleNamespace(channels=0, resolution=0)
    with pytest.raises(GankitError, match="2-D points"):
        nearest_neighbours(points, data, n=2, k=2)


# ---- end to end: a real tiny run and the command ---------------------------------------------
@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    import gankit

    run = tmp_path_factory.mktemp("nn") / "r"
    gankit.train("dcgan", data="mnist", out=run, preset="tiny", steps=2, quiet=True)
    return run


def _app():
    from gankit.cli_explore import neighbors_cmd

    app = typer.Typer()
    app.command("neighbors")(neighbors_cmd)
    app.command("other")(lambda: None)  # two commands, so the first argument names the command
    return app


def test_real_run_end_to_end(tiny_run):
    import gankit

    model = gankit.load(tiny_run)
    result = nearest_neighbours(model, "mnist", n=4, k=3, features="pixel", n_compare=64, max_train=2000)
    res = model.config.resolution
    assert result["samples"].shape == (4, 1, res, res)
    assert result["neighbour_images"]["pixel"].shape == (4, 3, 1, res, res)
    assert result["train_images"] == 2000 and result["heldout_images"] == 1000
    assert result["verdict"].split(":")[0] in ("no sign of memorisation", "possible memorisation")


def test_neighbors_command(tiny_run, tmp_path):
    out = tmp_path / "check" / "nn.png"
    done = CliRunner().invoke(_app(), ["neighbors", str(tiny_run), "--data", "mnist", "--n", "3", "--k", "2",
                                       "--features", "pixel", "--n-compare", "32", "--max-train", "500",
                                       "--out", str(out)])
    assert done.exit_code == 0, done.output
    assert out.is_file() and (out.parent / "nn.json").is_file() and (out.parent / "nn_hist.png").is_file()
    assert "memorisation" in done.output.splitlines()[-1]
    # default data is the run's own; default --out is RUN/nn.png
    done = CliRunner().invoke(_app(), ["neighbors", str(tiny_run), "--n", "2", "--k", "1", "--features", "pixel",
                                       "--n-compare", "16", "--max-train", "300"])
    assert done.exit_code == 0, done.output
    assert (tiny_run / "nn.png").is_file() and (tiny_run / "nn.json").is_file()


def test_neighbors_command_bad_data_is_a_user_error(tiny_run, tmp_path):
    done = CliRunner().invoke(_app(), ["neighbors", str(tiny_run), "--data", str(tmp_path / "missing"),
                                       "--out", str(tmp_path / "nn.png")])
    assert isinstance(done.exception, GankitError) and "not found" in str(done.exception)
    done = CliRunner().invoke(_app(), ["neighbors", str(tiny_run), "--out", str(tmp_path / "nn.jpg")])
    assert isinstance(done.exception, GankitError)


@pytest.fixture(scope="module")
def digits():
    from gankit.data import load_dataset

    return load_dataset("mnist", resolution=16).data[:2400]


def test_constant_images_are_not_taken_for_copies_and_a_quarter_of_copies_is_caught(digits):
    """Lowe's ratio over all of DATA: a constant image (a collapsed generator) was flagged by the
    old ratio d_train / d_heldout, whose 9x larger training set made any far-away sample look
    closer to it; a generator copying a quarter of the time is still caught."""
    from gankit.data import load_dataset

    faces = load_dataset("fairface", resolution=32).data
    flat = StandIn(lambda n, g: torch.full((n, 3, 32, 32), 0.2))  # the old rule's verdict: "possible memorisation"
    flat.config.channels, flat.config.resolution = 3, 32
    result = nearest_neighbours(flat, faces, n=2, k=2, features="pixel", n_compare=300)
    assert not result["memorisation"], result["verdict"]
    data, new = digits[:1600], digits[1600:]
    for grey in (-1.0, 0.0, 0.6):
        flat = StandIn(lambda n, g, v=grey: torch.full((n, 1, 16, 16), v))
        flat.config.resolution = 16
        result = nearest_neighbours(flat, data, n=2, k=2, features="pixel", n_compare=300)
        assert not result["memorisation"], (grey, result["verdict"])

    def mixed(n, g):
        pick = torch.randint(0, len(data), (n,), generator=g)
        out = new[torch.randint(0, len(new), (n,), generator=g)].clone()
        copy = torch.rand(n, generator=g) < 0.25
        out[copy] = data[pick[copy]]
        return out.float() / 127.5 - 1

    quarter = StandIn(mixed)
    quarter.config.resolution = 16
    result = nearest_neighbours(quarter, data, n=2, k=2, features="pixel", n_compare=600)
    ratio = result["pixel"]["ratio"]
    assert result["memorisation"] and 0.18 < ratio["share"] < 0.32, ratio
