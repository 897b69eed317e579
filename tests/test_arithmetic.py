"""Latent vector arithmetic (gankit.explore.arithmetic, gankit arithmetic): DCGAN paper §6.3."""

from __future__ import annotations

import json

import pytest
import torch
from PIL import Image

import gankit
from gankit.errors import GankitError
from gankit.explore.arithmetic import choose_exemplars, condition_scores, latent_arithmetic
from gankit.metrics.face_classifier import HEADS

TINY = dict(data="mnist", preset="tiny", steps=2, quiet=True, overrides={"max_images": 64})


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("arithmetic")
    for family in ("dcgan", "stylegan2", "cgan"):
        gankit.train(family, out=root / family, **TINY)
    gankit.train("pix2pix", data="mnist-edges", out=root / "pix2pix", preset="tiny", steps=2, quiet=True,
                 overrides={"max_images": 16})
    gankit.train("stackgan", data="mnist-captions", out=root / "stackgan", preset="tiny", steps=1, quiet=True,
                 overrides={"max_images": 16})
    gankit.train("singan", data="china", out=root / "singan", preset="tiny", quiet=True,
                 overrides={"iters_per_scale": 1})
    return root



def z_of(model, seeds):
    return torch.cat([model.latents(1, seed=s) for s in seeds])


def test_terms_are_averaged_and_combined_in_z(runs):
    model = gankit.load(runs / "dcgan")
    out = latent_arithmetic(model, [(1, [1, 2, 3]), (-1, [4, 5]), (1, [6])], variations=5, noise=0.25)
    means = [z_of(model, s).mean(0) for s in ([1, 2, 3], [4, 5], [6])]
    assert out.space == "z" and torch.allclose(out.means, torch.stack(means))
    assert torch.allclose(out.result[0], means[0] - means[1] + means[2], atol=1e-6)
    offsets = out.variations - out.result
    assert offsets.shape == (5, model.latent_dim) and 0 < offsets.abs().max() <= 0.25
    assert torch.allclose(out.term_images[0][-1], model.generate(means[0][None])[0], atol=1e-6)
    assert torch.allclose(out.term_images[1][0], model.generate(z_of(model, [4]))[0], atol=1e-6)
    assert torch.allclose(out.result_images[0], model.generate(out.result)[0], atol=1e-6)
    images, nrow = out.figure()  # 3 exemplars / 5 variations wide, a sign column and the averages
    assert nrow == 7 and images.shape == (4 * 7, 1, 16, 16)
    assert torch.equal(images[6], out.term_images[0][-1]) and torch.equal(images[27], out.result_images[0])


def test_style_based_models_average_in_w(runs):
    model = gankit.load(runs / "stylegan2")
    out = latent_arithmetic(model, [(1, [1, 2]), (-1, [3])], variations=2)
    ws = model.mapping(z_of(model, [1, 2]))
    assert out.space == "w" and out.means.shape == (2, model.num_ws, ws.shape[-1])
    assert torch.allclose(out.means[0], ws.mean(0), atol=1e-6)
    expected = ws.mean(0) - model.mapping(z_of(model, [3]))[0]
    assert torch.allclose(out.result[0], expected, atol=1e-5)
    assert torch.allclose(out.result_images[0], model.synthesis(out.result).clamp(-1, 1)[0], atol=1e-5)
    offsets = out.variations - out.result  # one w offset, the same on every layer
    assert torch.allclose(offsets, offsets[:, :1].expand_as(offsets))


def test_conditional_families_hold_the_class(runs):
    model = gankit.load(runs / "cgan")
    with pytest.raises(GankitError, match="--class"):
        latent_arithmetic(model, [(1, [1])])
    out = latent_arithmetic(model, [(1, [1]), (-1, [2])], cond=3, variations=0)
    assert torch.allclose(out.result_images[0], model.generate(out.result, cond=3)[0], atol=1e-6)


def test_exemplars_are_the_most_confident_matches_used_once():
    probs = {h: torch.full((6, len(v)), 0.0) for h, v in HEADS.items()}
    probs["age"][:, 3] = probs["race"][:, 0] = 1.0
    probs["gender"][:, 0] = torch.tensor([0.9, 0.2, 0.7, 0.95, 0.6, 0.1])  # Male
    probs["gender"][:, 1] = 1 - probs["gender"][:, 0]
    matches, confidence = condition_scores(probs, "gender=Male,age=20-29")
    assert matches.tolist() == [True, False, True, True, True, False]
    assert confidence[3] == pytest.approx(0.95)
    chosen = choose_exemplars(None, ["gender=male", "gender=Male", "gender=Female"], k=2, pool=6, probs=probs)
    assert [c["seeds"] for c in chosen] == [[3, 0], [2, 4], [5, 1]]
    with pytest.raises(GankitError, match="unknown column 'glasses'"):
        condition_scores(probs, "glasses=1")


def test_arithmetic_command_writes_the_grid_and_the_seeds(runs, tmp_path, gankit_main):
    out = tmp_path / "grid.png"
    code, stdout, stderr = gankit_main("arithmetic", runs / "dcgan", "--plus", "1,2,3", "--minus", "4-5",
                                      "--plus", "gender=Female|Male", "--variations", "2", "--pool", "20",
                                      "--out", out)
    assert code == 0, stderr
    assert Image.open(out).size == (5 * 18 + 2, 4 * 18 + 2)  # sign, 3 exemplars, average; 16 px + 2 padding
    doc = json.loads(out.with_suffix(".json").read_text())
    assert [t["sign"] for t in doc["terms"]] == ["+", "-", "+"]  # the order given
    assert doc["terms"][1]["seeds"] == [4, 5] and doc["terms"][2]["where"] == "gender=Female|Male"
    assert len(doc["terms"][2]["seeds"]) == 3 and "seeds " in stdout


@pytest.mark.parametrize("run, args, message", [
    ("dcgan", (), "at least one term"),
    ("dcgan", ("--plus", "1,x"), "seeds are given"),
    ("dcgan", ("--plus", "glasses=1"), "unknown column 'glasses'"),
    ("pix2pix", ("--plus", "1,2"), "no latent space"),
    ("stackgan", ("--plus", "1,2"), "cannot hold a caption fixed"),  # was exit 0, each term under other captions
    ("singan", ("--plus", "1,2"), "not from one z"),
])
def test_arithmetic_mistakes_are_one_line_and_exit_code_2(runs, tmp_path, gankit_main, run, args, message):
    code, _, stderr = gankit_main("arithmetic", runs / run, *args, "--out", tmp_path / "x.png")
    assert code == 2 and message in stderr, stderr
    assert len(stderr.strip().splitlines()) == 1
