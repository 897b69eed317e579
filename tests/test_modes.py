"""Mode-coverage benchmark: statistics with known answers, the stacked-mnist data, the CLI."""

from __future__ import annotations

import json
import math
import subprocess
import sys

import numpy as np
import pytest

from gankit.data import to_signed
import torch
from torch import nn

from gankit.data import load_dataset, mixture_centers
from gankit.data.builtin import MIXTURE_STD, _mnist, stacked_mnist_indices
from gankit.errors import GankitError
from gankit.metrics.modes import (classify_stacked, kl_to_uniform, mixture_stats, mode_coverage, stacked_digit_probs,
                                  stacked_modes, summarize)


# --------------------------------------------------------------------------- 2-D mixtures
@pytest.mark.parametrize("name,k", [("ring8", 8), ("grid25", 25)])
def test_samples_at_every_centre_capture_all_modes(name, k):
    centres = torch.tensor(mixture_centers(name)).repeat(7, 1)
    s = mixture_stats(centres, name)
    assert (s["modes"], s["max_modes"], s["n"]) == (k, k, 7 * k)
    assert s["high_quality"] == 1.0 and s["reverse_kl"] == pytest.approx(0.0, abs=1e-12)
    assert s["counts"] == [7] * k


@pytest.mark.parametrize("name,k", [("ring8", 8), ("grid25", 25)])
def test_one_centre_is_one_mode_and_log_k_reverse_kl(name, k):
    pts = np.repeat(mixture_centers(name)[[3]], 100, axis=0)
    s = mixture_stats(pts, name)
    assert s["modes"] == 1 and s["high_quality"] == 1.0
    assert s["reverse_kl"] == pytest.approx(math.log(k))  # KL(one-hot || uniform over k)


@pytest.mark.parametrize("name", ["ring8", "grid25"])
def test_far_and_non_finite_samples_are_not_high_quality(name):
    far = np.full((50, 2), 100.0)
    far[:5] = np.nan
    far[5:10] = np.inf
    s = mixture_stats(far, name)
    assert s["modes"] == 0 and s["high_quality"] == 0.0 and s["reverse_kl"] is None


@pytest.mark.parametrize("name", ["ring8", "grid25"])
def test_three_std_boundary_and_mixed_quality(name):
    c, std = mixture_centers(name), MIXTURE_STD[name]
    inside = c[0] + [2.9 * std, 0.0]
    outside = c[1] + [0.0, 3.1 * std]
    s = mixture_stats(np.stack([inside, outside, c[2], c[2]]), name)
    assert s["modes"] == 2 and s["high_quality"] == 0.75
    assert s["counts"][0] == 1 and s["counts"][1] == 0 and s["counts"][2] == 2
    # q = (1/3, 2/3) over K modes: KL = sum q log(q K)
    assert s["reverse_kl"] == pytest.approx((1 / 3) * math.log(len(c) / 3) + (2 / 3) * math.log(2 * len(c) / 3))


def test_real_mixture_data_scores_near_perfect():
    # A 2-D isotropic Gaussian puts 1 - exp(-9/2) = 98.9% of its mass within 3 std: the ceiling.
    for name, k in (("ring8", 8), ("grid25", 25)):
        s = mixture_stats(load_dataset(name).data[:2500], name)
        assert s["modes"] == k and abs(s["high_quality"] - (1 - math.exp(-4.5))) < 0.01
        assert s["reverse_kl"] < 0.02


def test_kl_and_summary_helpers():
    assert kl_to_uniform(np.array([0, 0, 0])) is None
    assert kl_to_uniform(np.array([5, 0])) == pytest.approx(math.log(2))
    out = summarize([{"modes": 1, "reverse_kl": None}, {"modes": 3, "reverse_kl": 0.5}])
    assert out["modes"]["mean"] == 2 and out["modes"]["std"] == pytest.approx(math.sqrt(2))
    assert out["reverse_kl"]["n"] == 1


def test_mode_coverage_takes_a_model_and_plots(tmp_path):
    class Fake:
        def sample(self, n, *, seed=0):
            return torch.tensor(mixture_centers("ring8"))[torch.arange(n) % 4]

    s = mode_coverage(Fake(), "ring8", plot=tmp_path / "m.png")
    assert s["n"] == 2500 and s["modes"] == 4 and s["reverse_kl"] == pytest.approx(math.log(2))
    assert (tmp_path / "m.png").stat().st_size > 1000
    with pytest.raises(GankitError, match="unknown mode-benchmark dataset"):
        mode_coverage(Fake(), "ring9")


# --------------------------------------------------------------------------- stacked mnist
def test_stacked_mnist_data():
    ds = load_dataset("stacked-mnist")
    assert ds.data.shape == (128_000, 3, 32, 32) and ds.data.dtype == torch.uint8 and ds.kind == "image"
    assert ds.num_classes == 1000 and int(ds.labels.min()) >= 0 and int(ds.labels.max()) <= 999
    _, digit_labels = _mnist(32)
    d = digit_labels[stacked_mnist_indices()]
    assert np.array_equal(ds.labels.numpy(), d[:, 0] * 100 + d[:, 1] * 10 + d[:, 2])
    assert len(np.unique(ds.labels.numpy())) == 1000  # every triple occurs
    # each channel is the digit it claims to be (the resized shipped image)
    digits, _ = _mnist(32)
    idx = stacked_mnist_indices()[:5]
    assert np.array_equal(ds.data[:5].numpy(), digits[idx])
    assert torch.equal(load_dataset("stacked-mnist").data[:3], ds.data[:3])  # fixed seed
    small = load_dataset("stacked-mnist", resolution=16, max_images=10)
    assert small.data.shape == (10, 3, 16, 16) and torch.equal(small.labels, ds.labels[:10])
    with pytest.raises(GankitError):
        load_dataset("stacked-mnist", channels=1)


class OracleClassifier(nn.Module):
    """Stand-in for the MNIST classifier: reads the digit from a lookup of the images it knows."""

    def __init__(self, images: torch.Tensor, labels: torch.Tensor):
        super().__init__()
        self.w = nn.Parameter(torch.zeros(1))
        self.table = {bytes(im.numpy().tobytes()): int(y) for im, y in zip(images, labels)}

    def forward(self, x):
        assert x.dim() == 4 and x.shape[1] == 1
        keys = [bytes(((im + 1) * 127.5).round().to(torch.uint8).numpy().tobytes()) for im in x]
        return nn.functional.one_hot(torch.tensor([self.table[k] for k in keys]), 10).float()


def test_stacked_coverage_with_a_stand_in_classifier():
    digits, labels = _mnist(32)
    clf = OracleClassifier(torch.from_numpy(digits.copy()).unsqueeze(1), torch.from_numpy(labels.copy()))
    ds = load_dataset("stacked-mnist", max_images=3000)
    triples = classify_stacked(to_signed(ds.data), clf, batch_size=512)
    assert torch.equal(triples, ds.labels)
    probs = stacked_digit_probs(to_signed(ds.data[:100]), clf, batch_size=32)
    assert probs.shape == (100, 3, 10) and torch.allclose(probs.sum(2), torch.ones(100, 3))
    d = ds.labels[:100]
    assert torch.equal(probs.argmax(2), torch.stack([d // 100, d // 10 % 10, d % 10], 1))
    s = stacked_modes(triples)
    assert s["max_modes"] == 1000 and s["modes"] == len(torch.unique(ds.labels)) and s["kl"] > 0
    one = stacked_modes(torch.full((100,), 7))
    assert one["modes"] == 1 and one["kl"] == pytest.approx(math.log(1000))
    assert stacked_modes(torch.arange(1000))["kl"] == pytest.approx(0.0, abs=1e-12)


def _classifier_or_skip():
    try:
        from gankit.metrics.mnist_classifier import load_mnist_classifier
        return load_mnist_classifier(device="cpu")
    except (ImportError, GankitError) as exc:
        pytest.skip(f"MNIST classifier not available: {exc}")


def test_stacked_coverage_of_real_images_with_the_shipped_classifier():
    clf = _classifier_or_skip()
    ds = load_dataset("stacked-mnist", max_images=800)
    images = to_signed(ds.data)
    triples = classify_stacked(images, clf)
    assert (triples == ds.labels).float().mean() > 0.95  # all three digits right
    assert stacked_digit_probs(images[:200], clf).amax(2).mean() > 0.9  # real digits read with confidence
    s = mode_coverage(images, "stacked-mnist", classifier=clf)
    true_modes = len(torch.unique(ds.labels))  # ~550 distinct triples in 800 uniform draws
    assert s["n"] == 800 and abs(s["modes"] - true_modes) <= 0.05 * true_modes


def test_run_mode_benchmark_trains_scores_and_rescores(tmp_path):
    from gankit.metrics.modes import PROTOCOLS, run_mode_benchmark

    stats = run_mode_benchmark("gan", "ring8", steps=3, seed=2, out_dir=tmp_path, n=200, short=True)
    run = tmp_path / "gan-ring8-s2"
    assert stats["run"] == str(run) and stats["steps"] == 3 and stats["seed"] == 2 and stats["n"] == 200
    assert stats["short"] is True and stats["protocol_steps"] == PROTOCOLS["ring8"].steps
    assert stats["family"] == "gan" and stats["train_seconds"] > 0 and (run / "modes.png").is_file()
    with pytest.raises(GankitError, match="already holds a run"):
        run_mode_benchmark("gan", "ring8", steps=3, seed=2, out_dir=tmp_path, short=True)
    again = run_mode_benchmark(None, "ring8", run=run, seed=2, n=200)
    assert again == stats  # same samples, same numbers, training time remembered
    with pytest.raises(GankitError, match="trained on ring8"):
        run_mode_benchmark(None, "grid25", run=run)
    with pytest.raises(GankitError, match="not 'dcgan'"):
        run_mode_benchmark("dcgan", "ring8", run=run)


def test_recipe_differences_name_what_a_run_was_trained_with(tmp_path):
    from gankit.metrics.modes import PROTOCOLS, bench_setup, recipe_differences, run_mode_benchmark

    run_mode_benchmark("gan", "ring8", steps=2, seed=0, out_dir=tmp_path, n=50, short=True,
                       overrides={"pack": 1})
    run = tmp_path / "gan-pack1-ring8-s0"
    _, preset, options = bench_setup("gan", "ring8", {"pack": 1})
    assert recipe_differences(run, "gan", preset, options) == []
    assert recipe_differences(run, "gan", preset, {**options, "lr_g": 0.0005, "nz": 2.0}) == []  # toy's, as numbers
    _, preset, protocol = bench_setup("gan", "ring8")
    # ring8's protocol is the toy preset with no options of its own; its pack=2 is a preset default,
    # which the resolved recipe still compares
    assert PROTOCOLS["ring8"].preset == preset and recipe_differences(run, "gan", preset, protocol) == [
        "pack=1 (not 2)"]
    assert recipe_differences(run, "gan", preset, {"pack": 2, "reg": "r1"}) == ["pack=1 (not 2)", "reg=none (not r1)"]
    # the whole resolved recipe counts: another preset differs in its own defaults, not only its name
    small = recipe_differences(run, "gan", "small", {})
    assert "preset=toy (not small)" in small and "g_hidden=128 (not 512)" in small
    # a preset default that changed since the run was trained; an option the run predates; bookkeeping
    config_file = run / "config.json"
    record = json.loads(config_file.read_text())
    record["config"].update(d_layers=2, seed=7, steps=99, snapshot_every=1)
    del record["config"]["topk"]
    config_file.write_text(json.dumps(record))
    assert recipe_differences(run, "gan", preset, options) == ["d_layers=2 (not 3)"]
    with pytest.raises(GankitError, match="cannot read the training options"):
        recipe_differences(tmp_path / "missing", "gan", preset, {})


# --------------------------------------------------------------------------- CLI
def _bench(capsys, *args) -> tuple[int, str, str]:
    """``gankit bench ...`` in-process (a subprocess per call costs seconds of imports)."""
    from gankit.cli import main

    with pytest.raises(SystemExit) as done:
        main(["bench", *[str(a) for a in args]])
    out, err = capsys.readouterr()
    return done.value.code or 0, out, err


def test_cli_json_on_an_existing_run(tmp_path, capsys):
    import gankit

    run = tmp_path / "run"
    gankit.train("gan", data="ring8", out=run, preset="tiny", steps=4, seed=1, quiet=True)
    capsys.readouterr()
    code, out, err = _bench(capsys, "modes", "--run", run, "--dataset", "ring8", "--json", "--n", "300")
    assert code == 0, err
    lines = out.strip().splitlines()
    assert len(lines) == 1
    doc = json.loads(lines[0])
    assert {"modes", "high_quality", "reverse_kl", "max_modes", "run", "family"} <= set(doc)
    assert doc["family"] == "gan" and doc["n"] == 300 and 0.0 <= doc["high_quality"] <= 1.0
    assert (run / "modes.png").is_file() and json.loads((run / "modes.json").read_text())["modes"] == doc["modes"]
    # the dataset defaults to the run's own data; the text report names the numbers
    code, again, _ = _bench(capsys, "modes", "--run", run, "--n", "300")
    assert code == 0 and "modes" in again and "high quality" in again and "reverse KL" in again


def test_cli_errors_are_one_line_exit_2(tmp_path, capsys):
    code, out, err = _bench(capsys, "modes", "dcgan", "--dataset", "ring8", "--steps", "2", "--short", "--out", tmp_path)
    assert code == 2
    assert [line for line in err.splitlines() if line.startswith("error:")] == [
        "error: family 'dcgan' trains on image data, not points data"]
    code, _, err = _bench(capsys, "modes", "--out", tmp_path)
    assert code == 2 and "--dataset" in err and len(err.strip().splitlines()) == 1


def test_cli_unknown_dataset_is_one_line_exit_2(tmp_path):
    """As a user meets it: a real process, one line on stderr, exit code 2, nothing written."""
    done = subprocess.run([sys.executable, "-m", "gankit", "bench", "modes", "gan", "--dataset", "ring9",
                           "--out", str(tmp_path)], capture_output=True, text=True, timeout=300)
    assert done.returncode == 2
    assert len(done.stderr.strip().splitlines()) == 1 and "ring9" in done.stderr and "ring8" in done.stderr
    assert not any(tmp_path.iterdir())


def test_a_run_shorter_than_the_protocol_is_refused_unless_asked_for(tmp_path, capsys):
    from gankit.metrics.modes import PROTOCOLS

    code, out, err = _bench(capsys, "modes", "--dataset", "grid25", "--steps", "100", "--out", tmp_path)
    assert code == 2 and not any(tmp_path.iterdir())
    assert [line for line in err.splitlines() if line.startswith("error:")] == [
        f"error: 100 steps is short of the grid25 protocol's {PROTOCOLS['grid25'].steps:,}, so the numbers would "
        f"not compare with the papers' rows; add --short to run it anyway"]
    # with --short it trains the protocol's recipe (family, preset, options), and says it was short
    code, out, err = _bench(capsys, "modes", "--dataset", "grid25", "--steps", "3", "--short", "--n", "100",
                            "--out", tmp_path)
    assert code == 0, err
    assert "note: 3 steps, short of the protocol's" in out
    import gankit

    model = gankit.load(tmp_path / "gan-grid25-s0")
    protocol = PROTOCOLS["grid25"]
    assert model.family == protocol.family and model.config.preset == protocol.preset
    assert all(getattr(model.config, k) == v for k, v in protocol.options.items())


def test_bench_setup_applies_the_protocol_to_its_family_only():
    from gankit.metrics.modes import PAPER_STEPS, PROTOCOLS, bench_setup

    assert bench_setup(None, "stacked-mnist") == ("dcgan", "small", PROTOCOLS["stacked-mnist"].options)
    family, preset, options = bench_setup("dcgan", "stacked-mnist", {"pack": 3})
    assert (family, preset, options["pack"]) == ("dcgan", "small", 3)
    assert bench_setup("wgan-gp", "ring8", {"lr_g": 1e-4}) == ("wgan-gp", "toy", {"lr_g": 1e-4})
    assert bench_setup("sagan", "stacked-mnist") == ("sagan", "small", {})
    assert all(PROTOCOLS[d].steps <= PAPER_STEPS[d] for d in PROTOCOLS)  # never a longer budget than the papers'
