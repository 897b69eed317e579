"""Quality metrics: FID/KID/IS/PR/SWD numerics, feature selection offline, and `gankit evaluate`."""

from __future__ import annotations

import json
import time

import numpy as np
import pytest
import torch

from gankit.errors import GankitError
from gankit.metrics import (
    evaluate, fid_from_features, inception_score, kid_from_features, precision_recall, resolve_features, swd,
)
from gankit.metrics import features as feats
from gankit.metrics.swd import _blur, laplacian_pyramid, pyr_down, pyr_up


@pytest.fixture(autouse=True)
def _no_inception_on_disk(tmp_path, monkeypatch):
    """Point the torch hub cache and HOME at empty folders: no Inception weights are found."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch-home"))
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    from gankit.metrics import clear_cache

    clear_cache()


def _scipy_fid(a: np.ndarray, b: np.ndarray) -> float:
    from scipy import linalg

    mu1, mu2 = a.mean(0), b.mean(0)
    s1, s2 = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    covmean = linalg.sqrtm(s1 @ s2)
    covmean = covmean.real
    return float(((mu1 - mu2) ** 2).sum() + np.trace(s1) + np.trace(s2) - 2 * np.trace(covmean))


# ---- FID / KID / IS -------------------------------------------------------------------------
def test_fid_of_a_set_with_itself_is_zero():
    x = torch.randn(400, 16, generator=torch.Generator().manual_seed(0))
    assert abs(fid_from_features(x, x)) < 1e-6


def test_fid_matches_scipy_sqrtm():
    g = torch.Generator().manual_seed(1)
    a = torch.randn(500, 32, generator=g)
    b = torch.randn(500, 32, generator=g) * 1.3 + 0.4
    ours = fid_from_features(a, b)
    ref = _scipy_fid(a.double().numpy(), b.double().numpy())
    assert ours == pytest.approx(ref, rel=1e-3)


def test_fid_and_kid_agree_with_torchmetrics():
    tm_fid = pytest.importorskip("torchmetrics.image.fid")
    g = torch.Generator().manual_seed(2)
    a = torch.randn(300, 8, generator=g)
    b = torch.randn(300, 8, generator=g) + 0.5

    class Identity(torch.nn.Module):
        num_features = 8

        def forward(self, x):
            return x

    metric = tm_fid.FrechetInceptionDistance(feature=Identity(), normalize=True)
    metric.set_dtype(torch.float64)
    metric.update(a.double(), real=True)
    metric.update(b.double(), real=False)
    assert fid_from_features(a, b) == pytest.approx(float(metric.compute()), rel=1e-4)


def test_kid_of_identical_sets_is_about_zero_and_of_shifted_sets_positive():
    g = torch.Generator().manual_seed(3)
    a = torch.randn(300, 16, generator=g)
    same, same_std = kid_from_features(a, a, subsets=20, subset_size=100)
    assert abs(same) < 3 * same_std  # the unbiased estimate is ~0 (it can dip below) within its noise
    shifted, shifted_std = kid_from_features(a, a + 1.0, subsets=20, subset_size=100)
    assert shifted > 10 * shifted_std and shifted > 100 * abs(same)
    assert kid_from_features(a, a + 0.3, subsets=20, subset_size=100)[0] < shifted


def test_inception_score_bounds():
    one_hot = torch.eye(10).repeat(20, 1) * 50  # confident and uniform over classes -> IS ~ 10
    is_mean, is_std = inception_score(one_hot, splits=4)
    assert is_mean == pytest.approx(10, rel=1e-3) and is_std < 1e-6
    collapsed = torch.zeros(200, 10)
    collapsed[:, 3] = 50  # every sample the same class -> IS ~ 1
    assert inception_score(collapsed)[0] == pytest.approx(1, rel=1e-3)


# ---- precision / recall ---------------------------------------------------------------------
def test_precision_recall_identical_sets_is_one_one():
    x = torch.randn(200, 8, generator=torch.Generator().manual_seed(4))
    assert precision_recall(x, x, k=3, chunk=64) == (1.0, 1.0)


def test_precision_recall_far_apart_sets_is_zero_zero():
    g = torch.Generator().manual_seed(5)
    a = torch.randn(200, 8, generator=g)
    b = torch.randn(200, 8, generator=g) + 100
    assert precision_recall(a, b, k=3) == (0.0, 0.0)


def test_precision_high_recall_low_for_a_collapsed_generator():
    g = torch.Generator().manual_seed(6)
    real = torch.randn(400, 2, generator=g)
    fake = real[real[:, 0] > 1.0]  # covers only a tail of the real data
    p, r = precision_recall(real, fake, k=3)
    assert p == 1.0 and r < 0.4


# ---- SWD ------------------------------------------------------------------------------------
def _digits(n: int = 64) -> torch.Tensor:
    from gankit.data import load_dataset

    return load_dataset("mnist", resolution=32).data[:n].float() / 127.5 - 1


def test_laplacian_pyramid_reconstructs_the_image():
    x = _digits(4)
    levels = laplacian_pyramid(x, 2)
    assert [lv.shape[-1] for lv in levels] == [32, 16]
    assert torch.allclose(levels[0] + pyr_up(levels[1], (32, 32)), x, atol=1e-5)
    assert pyr_down(x).shape[-1] == 16


def test_swd_of_a_set_with_itself_is_zero_and_grows_with_blur():
    x = _digits(48)
    kw = dict(per_image=32, dir_repeats=2, dirs_per_repeat=32)
    same = swd(x, x, **kw)
    assert same["swd"] == pytest.approx(0, abs=1e-6) and same["swd_resolutions"] == [32, 16]
    blur1 = _blur(x)
    blur2 = _blur(_blur(blur1))
    d1, d2 = swd(x, blur1, **kw), swd(x, blur2, **kw)
    assert 0 < d1["swd"] < d2["swd"]
    assert d1["swd_levels"][0] < d2["swd_levels"][0]


# ---- feature extractors: offline only -------------------------------------------------------
def test_auto_picks_mnist_for_grey_32px():
    ext = resolve_features("auto", channels=1, resolution=32)
    assert ext.name == "mnist" and isinstance(ext.num_features, int)
    out = ext(torch.rand(3, 1, 32, 32) * 2 - 1)
    assert out.shape == (3, ext.num_features)
    assert ext.class_logits(torch.zeros(2, 1, 64, 64)).shape == (2, 10)


def test_auto_without_inception_weights_raises_fast_for_rgb():
    start = time.perf_counter()
    with pytest.raises(GankitError, match="swd") as err:
        resolve_features("auto", channels=3, resolution=64)
    assert time.perf_counter() - start < 2
    assert "--inception-weights" in str(err.value) and "\n" not in str(err.value)


def test_inception_without_weights_names_the_option(monkeypatch):
    def no_network(*args, **kwargs):
        raise AssertionError("network access attempted")

    monkeypatch.setattr(torch.hub, "download_url_to_file", no_network)
    monkeypatch.setattr(torch.hub, "load_state_dict_from_url", no_network)
    with pytest.raises(GankitError, match="--inception-weights"):
        resolve_features("inception", channels=3, resolution=64)
    with pytest.raises(GankitError, match="no such file"):
        resolve_features("inception", channels=3, resolution=64, inception_weights="/nonexistent/w.pth")


def test_mnist_features_refuse_rgb():
    with pytest.raises(GankitError, match="1-channel"):
        resolve_features("mnist", channels=3, resolution=32)


def test_inception_loads_a_local_state_dict_safely(tmp_path):
    """The FID Inception architecture loads a plain state_dict (weights_only) found in the hub cache."""
    net = feats.InceptionFeatures()  # random weights; only the plumbing is under test
    hub = tmp_path / "torch-home" / "hub" / "checkpoints"
    hub.mkdir(parents=True)
    torch.save(net.net.state_dict(), hub / feats.INCEPTION_FILES[0])
    ext = resolve_features("auto", channels=3, resolution=64)
    assert ext.name == "inception" and ext.num_features == 2048
    with torch.no_grad():
        assert ext(torch.zeros(1, 1, 32, 32)).shape == (1, 2048)

    class Evil:
        def __reduce__(self):
            return (print, ("pwned",))

    bad = tmp_path / "evil.pth"
    torch.save({"x": Evil()}, bad)
    with pytest.raises(GankitError, match="weights_only"):
        resolve_features("inception", channels=3, resolution=64, inception_weights=bad)


# ---- evaluate and the CLI -------------------------------------------------------------------
@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    import gankit

    out = tmp_path_factory.mktemp("metrics") / "r"
    gankit.train("dcgan", data="mnist", out=out, preset="tiny", steps=2, quiet=True)
    return out


def test_evaluate_api_returns_the_metrics_and_caches_the_real_side(tiny_run):
    import sys

    from gankit.api import load

    ev = sys.modules["gankit.metrics.evaluate"]  # the module (the package's `evaluate` is the function)

    model = load(tiny_run)
    kw = dict(metrics="fid,kid,is,pr,swd", features="mnist", n=64, seed=1, kid_subsets=5, swd_max_images=16)
    res = evaluate(model, "mnist", **kw)
    for key in ("fid", "kid", "kid_std", "is", "is_std", "precision", "recall", "swd", "swd_levels"):
        assert key in res, key
    assert res["features"] == "mnist" and res["n"] == 64 and res["n_real"] == 64 and res["step"] == model.step
    assert res["fid"] > 0 and 0 <= res["precision"] <= 1 and 1 <= res["is"] <= 10
    assert len(ev._REAL_CACHE) == 1
    again = evaluate(model, "mnist", **kw)
    assert len(ev._REAL_CACHE) == 1 and again["fid"] == pytest.approx(res["fid"])


def test_evaluate_swd_only_needs_no_features(tiny_run):
    res = evaluate(tiny_run, metrics="swd", n=16, swd_max_images=16)
    assert res["features"] is None and res["swd"] > 0


def test_evaluate_cli_writes_eval_json(tiny_run):
    import typer
    from typer.testing import CliRunner

    from gankit.cli_metrics import evaluate_cmd

    app = typer.Typer()
    app.command("evaluate")(evaluate_cmd)
    app.command("noop")(lambda: None)  # a second command keeps `evaluate` as a subcommand
    runner = CliRunner()
    done = runner.invoke(app, ["evaluate", str(tiny_run), "--data", "mnist", "--features", "mnist",
                               "--n", "40", "--json", "--metrics", "fid,kid,pr,is"])
    assert done.exit_code == 0, done.output
    doc = json.loads(done.stdout.strip().splitlines()[-1])
    saved = json.loads((tiny_run / "eval.json").read_text())
    for key in ("fid", "kid", "kid_std", "is", "is_std", "precision", "recall", "features", "n", "seed", "step"):
        assert key in doc and key in saved, key
    done = runner.invoke(app, ["evaluate", str(tiny_run), "--features", "mnist", "--n", "40", "--metrics", "fid"])
    assert done.exit_code == 0 and "FID" in done.stdout


def test_evaluate_errors_are_gankit_errors(tiny_run):
    with pytest.raises(GankitError, match="unknown metric"):
        evaluate(tiny_run, "mnist", metrics="fid,bogus")
    with pytest.raises(GankitError, match="--inception-weights"):
        evaluate(tiny_run, "mnist", features="inception", n=8)


def test_kid_spread_is_not_zero_when_the_sets_are_smaller_than_a_subset():
    """Subsets are at most half a set: with the whole set in every subset the spread was 0."""
    g = torch.Generator().manual_seed(7)
    a, b = torch.randn(300, 16, generator=g), torch.randn(300, 16, generator=g) + 0.2
    mean, std = kid_from_features(a, b, subsets=20, subset_size=1000)
    assert std > 0 and mean > 0
    with pytest.raises(ValueError, match="at least 4"):
        kid_from_features(a[:3], b, subsets=2)


def test_evaluation_seeds_draw_disjoint_sample_chunks():
    """Chunk i of seed s had seed s + i, so seeds 0 and 1 shared all chunks but one."""
    import sys

    ev = sys.modules["gankit.metrics.evaluate"]
    seen = {}
    for seed in range(3):
        seeds = [ev.chunk_seed(seed, i) for i in range(20)]
        assert not set(seeds) & set(seen), (seed, set(seeds) & set(seen))
        seen.update(dict.fromkeys(seeds))
    assert ev.chunk_seed(0, 3) == 3  # seed 0 keeps its old samples


def test_evaluate_refuses_too_few_samples_and_imported_models_in_one_line(tiny_run, tmp_path):
    with pytest.raises(GankitError, match="--n must be at least 5"):  # pr with k = 3 needs k + 2
        evaluate(tiny_run, metrics="fid,pr", n=3)
    with pytest.raises(GankitError, match="at least 1"):
        evaluate(tiny_run, metrics="pr", n=16, pr_k=0)
    one = tmp_path / "one"
    one.mkdir()
    from PIL import Image

    Image.new("L", (16, 16), 3).save(one / "a.png")
    with pytest.raises(GankitError, match="only 1 real image"):
        evaluate(tiny_run, str(one), metrics="swd", n=16)
    with pytest.raises(GankitError, match="records no training data: pass --data"):
        from gankit.data import load_dataset

        load_dataset("imported:ffhq.pt")
