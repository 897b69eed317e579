"""Directions in W and edits along them (gankit.explore.directions / edit / predictors, gankit
directions, gankit edit) and the identity distance (gankit.metrics.identity)."""

from __future__ import annotations

import csv
import math
import sys
import types

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.torch import save_file

import gankit
from gankit.errors import GankitError
from gankit.explore.directions import (Directions, condition, confident, direction_scale, fit_boundary, ganspace,
                                       interfacegan, load_directions, sample_ws, save_directions, score_ws, sefa,
                                       style_affines)
from gankit.explore.edit import apply_direction, edit_strip, parse_strengths, read_latent
from gankit.explore.predictors import attribute_targets, face_predictor, resolve_attribute


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    path = tmp_path_factory.mktemp("directions") / "run"
    gankit.train("stylegan2", data="mnist", out=path, preset="tiny", steps=3, quiet=True, overrides={"max_images": 64})
    return path


@pytest.fixture
def cli(gankit_main):
    """The commands in-process (a subprocess costs seconds of imports per call), answering like
    ``subprocess.run``: ``.returncode``, ``.stdout``, ``.stderr``."""
    def run(*args):
        code, out, err = gankit_main(*args)
        return types.SimpleNamespace(returncode=code, stdout=out, stderr=err)

    return run


@pytest.fixture(scope="module")
def model(run):
    return gankit.load(run)


def unit(v: torch.Tensor) -> torch.Tensor:
    return v / v.norm()


# ---- (a) InterFaceGAN's boundary -----------------------------------------------------------------
def test_fit_boundary_recovers_a_known_hyperplane_in_w(model):
    ws = sample_ws(model, 3000, seed=1)
    true = unit(torch.randn(ws.shape[1], generator=torch.Generator().manual_seed(5)))
    proj = ws @ true
    labels = (proj > proj.quantile(0.4)).float()  # an off-centre hyperplane, 60% positives
    b = fit_boundary(ws, labels)
    assert torch.dot(b.normal, true) > 0.97  # the normal points to the positives
    assert b.val_accuracy > 0.95 and b.n_val == 900 and b.n_train == 2100
    assert abs(b.normal.norm() - 1) < 1e-5
    side = (ws @ b.normal > b.offset).float()
    assert (side == labels).float().mean() > 0.95  # n . w = offset is the boundary itself


def test_interfacegan_keeps_the_confident_ends(model):
    ws = sample_ws(model, 1000, seed=2)
    true = unit(torch.randn(ws.shape[1], generator=torch.Generator().manual_seed(6)))
    scores = torch.sigmoid(3 * (ws @ true - (ws @ true).mean()))
    pos, neg = confident(scores, 0.25)
    assert len(pos) == len(neg) == 250 and scores[pos].min() > scores[neg].max()
    b = interfacegan(ws, scores, fraction=0.25)
    assert b.info["positives"] == 250 and b.n_train + b.n_val == 500
    assert torch.dot(b.normal, true) > 0.95 and b.info["all_samples_accuracy"] > 0.9
    with pytest.raises(GankitError):
        confident(scores, 0.7)


# ---- (b) an edit moves a synthetic attribute -------------------------------------------------------
def brightness(images: torch.Tensor) -> torch.Tensor:
    return (images.mean(dim=(1, 2, 3)) + 1) / 2  # a predictor defined by the test: mean brightness in [0, 1]


def test_an_edit_moves_the_attribute_with_the_strength_and_its_sign(model):
    ws = sample_ws(model, 2000, seed=3)
    scores = score_ws(model, ws, [brightness], progress=False)[:, 0]
    b = interfacegan(ws, scores)
    scale = float(direction_scale(ws, b.normal[None])[0])
    seeds_ws = model.mapping(model.latents(16, seed=9))
    strengths = [-2.0, -1.0, 0.0, 1.0, 2.0]
    images, cols = edit_strip(model, seeds_ws, b.normal, strengths, scale=scale)
    assert cols == 5 and images.shape == (16 * 5, 1, 16, 16)
    level = brightness(images).view(16, 5).mean(0)
    assert torch.all(level[1:] > level[:-1])  # brighter as the strength grows, darker below 0
    assert (level[4] - level[2]) > (level[3] - level[2]) > 0 and (level[2] - level[0]) > (level[2] - level[1]) > 0
    assert torch.allclose(images.view(16, 5, 1, 16, 16)[:, 2], model.synthesis(seeds_ws).clamp(-1, 1), atol=1e-6)


def test_apply_direction_moves_by_strength_times_scale_on_the_chosen_layers():
    ws = torch.zeros(2, 4, 3)
    d = torch.tensor([0.0, 1.0, 0.0])
    out = apply_direction(ws, d, torch.tensor([1.0, -2.0]), scale=0.5, layers=[1, 2])
    assert out[0, 1, 1] == 0.5 and out[1, 2, 1] == -1.0 and out[:, [0, 3]].abs().sum() == 0
    assert torch.equal(apply_direction(ws[:, 0], d, 3.0), torch.tensor([[0.0, 3.0, 0.0]] * 2))
    with pytest.raises(GankitError):
        apply_direction(ws[:, 0], d, 1.0, layers=[0])  # layers need W+
    with pytest.raises(GankitError):
        apply_direction(ws, torch.ones(5), 1.0)  # another model's w_dim


# ---- (c) SeFa and GANSpace against eigenvectors computed here -------------------------------------
def test_style_affines_are_the_layers_that_read_each_w(model):
    G = model.generator
    ws = torch.arange(model.num_ws, dtype=torch.float32)[None, :, None].expand(1, -1, G.w_dim).clone()
    seen = {}
    hooks = [aff.register_forward_hook(lambda m, inp, out: seen.__setitem__(id(m), float(inp[0][0, 0])))
             for _, aff in style_affines(G)]
    G.synthesis(ws, "const")
    for h in hooks:
        h.remove()
    assert [seen[id(a)] for _, a in style_affines(G)] == [float(i) for i, _ in style_affines(G)]
    assert len(style_affines(G)) == len([m for n, m in G.synthesis.named_modules() if n.endswith("affine")])


@pytest.mark.parametrize("layers", [None, [0, 1, 2]])
def test_sefa_gives_the_eigenvectors_of_the_normalised_affine_weights(model, layers):
    affines = [m for i, m in style_affines(model.generator) if layers is None or i in layers]
    a = torch.cat([m.weight.detach().double() for m in affines])  # the gain is per layer: row norms drop it
    a = a / a.norm(dim=1, keepdim=True)
    values, vectors = torch.linalg.eigh(a.T @ a)
    vectors = vectors.flip(1).T[:5]
    got, got_values = sefa(model.generator, layers, k=5)
    assert got.shape == (5, model.generator.w_dim)
    assert torch.allclose(got @ got.T, torch.eye(5), atol=1e-5)  # orthonormal
    assert torch.allclose((got.double() * vectors).sum(1).abs(), torch.ones(5, dtype=torch.float64), atol=1e-4)
    assert torch.allclose(got_values.double(), values.flip(0)[:5], rtol=1e-4)


def test_ganspace_gives_the_principal_components(model):
    ws = sample_ws(model, 3000, seed=4)
    x = (ws - ws.mean(0)).double()
    _, s, vh = torch.linalg.svd(x, full_matrices=False)
    comps, stds, mean = ganspace(ws, k=4)
    assert torch.allclose(comps @ comps.T, torch.eye(4), atol=1e-5)
    assert torch.allclose((comps.double() * vh[:4]).sum(1).abs(), torch.ones(4, dtype=torch.float64), atol=1e-4)
    assert torch.allclose(stds.double(), s[:4] / math.sqrt(len(ws) - 1), rtol=1e-4)
    assert torch.allclose(direction_scale(ws, comps), stds, rtol=1e-3)  # the strength unit is that std


# ---- (d) conditional directions -------------------------------------------------------------------
def test_condition_is_orthogonal_to_the_held_attributes():
    g = torch.Generator().manual_seed(0)
    n1, n2, n3 = (unit(torch.randn(32, generator=g)) for _ in range(3))
    c = condition(n1, n2)
    assert abs(float(c @ n2)) < 1e-6 and abs(float(c.norm()) - 1) < 1e-6
    assert torch.allclose(c, unit(n1 - (n1 @ n2) * n2), atol=1e-6)  # InterFaceGAN §2.2
    c2 = condition(n1, n2, n3)
    assert abs(float(c2 @ n2)) < 1e-6 and abs(float(c2 @ n3)) < 1e-6
    with pytest.raises(GankitError):
        condition(n1, -n1)


# ---- files and parsing -----------------------------------------------------------------------------
def test_directions_round_trip_through_safetensors_and_json(tmp_path):
    d = Directions(["a", "b"], torch.eye(3)[:2], torch.tensor([0.5, 2.0]), [0, 1], {"method": "sefa"})
    path, side = save_directions(tmp_path / "d.safetensors", d)
    back = load_directions(path)
    assert back.names == ["a", "b"] and back.layers == [0, 1] and torch.equal(back.vectors, d.vectors)
    assert back.info["method"] == "sefa" and back.index("b") == 1 and back.index("0") == 0
    for bad in (None, "5", "c"):
        with pytest.raises(GankitError):
            back.index(bad)


def test_parse_strengths():
    assert parse_strengths("-3..3") == [-3, -2, -1, 0, 1, 2, 3]
    assert parse_strengths("0,1,2.5") == [0, 1, 2.5] and parse_strengths("2") == [0, 2]
    for bad in ("x", "1..1", "0..50", "nan", "-3..inf"):
        with pytest.raises(GankitError):
            parse_strengths(bad)


def test_read_latent_takes_w_and_w_plus(tmp_path):
    for shape in ((1, 6, 16), (1, 16)):
        save_file({"w": torch.zeros(shape)}, str(tmp_path / "l.safetensors"))
        assert read_latent(tmp_path / "l.safetensors", 6, 16).shape == shape
    save_file({"w": torch.zeros(1, 5, 16)}, str(tmp_path / "l.safetensors"))
    with pytest.raises(GankitError, match="takes"):
        read_latent(tmp_path / "l.safetensors", 6, 16)


def test_attribute_names_resolve_like_where():
    names = ["age=0-2", "age=20-29", "age=30-39", "age=40-49", "gender=Female", "gender=Male", "Eyeglasses"]
    age = resolve_attribute("age", names, source="t")
    assert age.positive == ("40-49",) and age.negative == ("0-2", "20-29")
    table = np.array([[0, 1, 0, 0, 1, 0, 1], [0, 0, 1, 0, 0, 1, 0], [0, 0, 0, 1, 0, 1, 0]], dtype=np.float32)
    assert attribute_targets(age, names, table).tolist() == [0, -1, 1]  # 30-39 is in neither group
    assert attribute_targets(resolve_attribute("gender", names, source="t"), names, table).tolist() == [0, 1, 1]
    assert attribute_targets(resolve_attribute("eyeglasses", names, source="t"), names, table).tolist() == [1, 0, 0]
    assert attribute_targets(resolve_attribute("Eyeglasses=0", names, source="t"), names, table).tolist() == [0, 1, 1]
    assert resolve_attribute("age!=0-2", names, source="t").negative == ("0-2",)
    for bad, message in (("smile", "unknown attribute"), ("age=99", "unknown value"), ("gender=Male,age=0-2", "one")):
        with pytest.raises(GankitError, match=message):
            resolve_attribute(bad, names, source="t")


def test_face_predictor_scores_are_probabilities():
    images = torch.rand(4, 3, 32, 32) * 2 - 1
    for attr in ("age", "gender", "race=East Asian"):
        p = face_predictor(attr)(images)
        assert p.shape == (4,) and bool(((p >= 0) & (p <= 1)).all())
    male, female = face_predictor("gender=Male")(images), face_predictor("gender=Female")(images)
    assert torch.allclose(male + female, torch.ones(4), atol=1e-5)
    with pytest.raises(GankitError, match="pick one"):
        face_predictor("race")


# ---- identity -------------------------------------------------------------------------------------
def test_identity_distance_is_zero_for_the_same_face_and_needs_dlib(monkeypatch):
    pytest.importorskip("dlib")
    from gankit.metrics import identity

    from gankit.data import load_dataset, to_signed

    faces = to_signed(load_dataset("fairface", resolution=64, max_images=3).data)
    d = identity.identity_distance(faces, faces[[0, 2, 1]])
    assert d[0] < 1e-6 and d[1] > 0.3 and d[2] > 0.3  # different FairFace people are far apart
    monkeypatch.setitem(sys.modules, "dlib", None)
    identity._models.cache_clear()
    try:
        with pytest.raises(GankitError, match=r"gankit\[faces\]"):
            identity.identity_distance(faces, faces)
    finally:
        monkeypatch.undo()
        identity._models.cache_clear()


# ---- (e) the commands -------------------------------------------------------------------------------
def test_unsupervised_directions_and_edit_commands(run, model, tmp_path, cli):
    out = run / "directions"  # the default --out, where gankit edit finds a direction by name
    done = cli("directions", run, "--method", "sefa", "--n", "3", "--samples", "500", "--seeds", "0,1")
    assert done.returncode == 0, done.stderr
    assert "sefa:0" in done.stdout and "sefa:2" in done.stdout
    d = load_directions(out / "sefa.safetensors")
    assert d.vectors.shape == (3, 16) and (out / "sefa.json").is_file()
    assert Image.open(out / "sefa.png").size == ((2 * 7 + 1) * 18 + 2, 3 * 18 + 2)  # 2 seeds x 7 strengths + gap
    done = cli("edit", run, "--direction", "sefa:1", "--seed", "0-1", "--strength=-2..2", "--steps", "5",
               "--layers", "coarse", "--out", tmp_path / "e.png")
    assert done.returncode == 0, done.stderr
    assert "layers 0-2" in done.stdout and Image.open(tmp_path / "e.png").size == (5 * 18 + 2, 2 * 18 + 2)
    w = model.mapping(model.latents(1, seed=0))  # W+, as gankit project writes it
    save_file({"w": w.contiguous()}, str(tmp_path / "l.safetensors"))
    done = cli("edit", run, "--direction", f"{out / 'sefa.safetensors'}:0", "--latent", tmp_path / "l.safetensors",
               "--strength", "2", "--out", tmp_path / "l.png")
    assert done.returncode == 0, done.stderr
    expected, _ = edit_strip(model, w[:, 0], d.vectors[0], [0, 2], scale=float(d.scales[0]))  # one w (N, w_dim)
    from gankit.viz import make_grid

    assert np.array_equal(np.asarray(Image.open(tmp_path / "l.png")), make_grid(expected, nrow=2))


def test_supervised_direction_from_a_labelled_folder(run, tmp_path, cli):
    folder = tmp_path / "faces"
    folder.mkdir()
    g = torch.Generator().manual_seed(0)
    with open(folder / "labels.csv", "w", newline="") as f:
        rows = csv.writer(f)
        rows.writerow(["file", "Bright"])
        for i in range(48):
            bright = i % 2
            level = (0.65 if bright else 0.3) + 0.1 * torch.rand(1, generator=g).item()
            pixels = (np.clip(level + 0.1 * torch.randn(16, 16, generator=g).numpy(), 0, 1) * 255).astype(np.uint8)
            Image.fromarray(pixels).save(folder / f"{i}.png")
            rows.writerow([f"{i}.png", 1 if bright else -1])
    out = tmp_path / "dirs"
    done = cli("directions", run, "--attr", "Bright", "--images", folder, "--epochs", "1", "--samples", "300",
               "--seeds", "0", "--out", out)
    assert done.returncode == 0, done.stderr
    assert "classifier Bright" in done.stdout and "boundary accuracy" in done.stdout
    d = load_directions(out / "bright.safetensors")
    assert d.info["predictor"]["predictor"] == "trained" and d.info["boundary"]["positives"] == 60
    assert d.info["predictor"]["val_balanced_accuracy"] > 0.9  # bright vs dark is easy
    assert Image.open(out / "bright.png").size == (7 * 18 + 2, 18 + 2)


def test_conditional_direction_command(run, tmp_path, cli):
    done = cli("directions", run, "--attr", "gender", "--condition", "age", "--samples", "300", "--seeds", "0",
               "--out", tmp_path)
    assert done.returncode == 0, done.stderr
    d = load_directions(tmp_path / "gender-cond-age.safetensors")
    assert "age" in d.info["held"] and d.info["condition"] == ["age"] and "conditioned on age" in done.stdout


@pytest.mark.parametrize("args, message", [
    (("directions", "--attr", "smile"), "unknown attribute 'smile'"),
    (("edit", "--direction", "nothing"), "no such file"),
    (("edit", "--direction", "x", "--strength", "0..50"), "within -10..10"),
])
def test_bad_options_are_one_line_and_exit_code_2(run, tmp_path, cli, args, message):
    done = cli(args[0], run, *args[1:], "--out", tmp_path / ("x.png" if args[0] == "edit" else "d"))
    assert done.returncode == 2 and message in done.stderr, done.stderr
    assert len(done.stderr.strip().splitlines()) == 1


def test_families_without_a_mapping_network_are_refused(dcgan_run, cli, tmp_path):
    done = cli("directions", dcgan_run, "--method", "sefa", "--out", tmp_path)
    assert done.returncode == 2 and "style-based" in done.stderr, done.stderr
    assert len(done.stderr.strip().splitlines()) == 1
