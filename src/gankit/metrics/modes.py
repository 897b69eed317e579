"""Mode coverage: how many modes of a known multi-modal distribution a generator reaches.

The protocol of VEEGAN (Srivastava et al. 2017, Tables 1-2) as PacGAN (Lin et al. 2018,
Tables 1-3, and its reference code ``fjxmlzn/PacGAN``) implements it:

* ``ring8`` / ``grid25``: draw 2,500 samples; give each to its nearest mode centre; a sample is
  *high quality* when it lies within 3 standard deviations of that centre (Euclidean distance
  ``< 3 * std``: the mixtures are isotropic, so this is the reference code's Mahalanobis test);
  a mode is *captured* when at least one high-quality sample is assigned to it. ``reverse_kl`` is
  ``KL(q || p)`` (natural log) where ``q`` is the histogram of the high-quality samples over the
  modes and ``p`` the uniform mixture weights; it is ``None`` when no sample is high quality.
* ``stacked-mnist``: draw 26,000 samples; an MNIST classifier labels each colour channel; the
  digit triple ``100*d0 + 10*d1 + d2`` is the sample's mode (1,000 in all); a mode is captured
  when at least one sample lands in it; ``kl`` is ``KL(q || uniform over 1,000)`` (natural log),
  as in PacGAN's ``model.py`` (VEEGAN Table 2, PacGAN Tables 2-3).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
from torch import nn

from gankit.errors import GankitError
from gankit.files import write_text_atomic

MIXTURES = ("ring8", "grid25")
STACKED = "stacked-mnist"
DATASETS = (*MIXTURES, STACKED)
DEFAULT_N = {"ring8": 2500, "grid25": 2500, STACKED: 26_000}  # as VEEGAN and PacGAN
HQ_STDS = 3.0  # high quality: within 3 standard deviations of the nearest centre (VEEGAN)
STACKED_MODES = 1000
TRAIN_RECORD = "modes_train.json"  # written by run_mode_benchmark next to the run's checkpoints
# The papers' training budgets, from PacGAN's reference configs: the 2-D sets 400 epochs of
# 100,000 points at batch 100; Stacked MNIST 50 epochs of 128,000 images at batch 64.
PAPER_STEPS = {"ring8": 400_000, "grid25": 400_000, STACKED: 100_000}


@dataclass(frozen=True)
class Protocol:
    """What ``gankit bench modes --dataset D`` trains by default: the recipe measured best on D
    (docs/benchmarks.md), at a budget no larger than the papers'. Another family given on the
    command line trains with its own bench preset for the same number of steps."""

    family: str
    preset: str
    steps: int
    options: dict[str, Any] = field(default_factory=dict)


PROTOCOLS = {
    "ring8": Protocol("gan", "toy", 40_000),
    # grid25 at twice ring8's budget: 40,000 steps left 3-4% of the samples on bridges between
    # modes (96.3 +- 0.5% high quality over 3 seeds), 80,000 steps 97.1 +- 0.4%
    "grid25": Protocol("gan", "toy", 80_000),
    # PacDCGAN2 as in the paper, with the learning-rate decay that the 2-D recipe needed, the small
    # preset at the paper's width (ngf = ndf = 64), lazy R1 on D (Mescheder et al. 2018, gamma 1,
    # every 16 steps as StyleGAN2) and 30% of the paper's budget, on the 128,000-image set: KL
    # 0.0401 +- 0.0005 over 3 seeds (docs/benchmarks.md); 20,000 steps scored 0.045 +- 0.003, R1
    # in every step for 10,000 steps (as long as 20,000 lazy) 0.054 +- 0.012; without R1, D won from ~7,500
    # steps on (D(fake) 0.01 at 10,000) and the KL stalled at 0.13 +- 0.03
    STACKED: Protocol("dcgan", "small", 30_000,
                      {"pack": 2, "decay_from": 0.5, "ngf": 64, "ndf": 64, "reg": "r1", "reg_weight": 1.0,
                       "reg_interval": 16}),
}


def check_dataset(name: str) -> str:
    """The canonical benchmark dataset name, or a GankitError naming the choices."""
    key = str(name).strip().lower()
    if key not in DATASETS:
        raise GankitError(f"unknown mode-benchmark dataset {name!r} (choose {', '.join(DATASETS)})")
    return key


# ---------------------------------------------------------------------------- statistics
def kl_to_uniform(counts: np.ndarray) -> float | None:
    """``KL(q || uniform)`` in nats for the histogram ``counts`` over K modes; None if empty."""
    counts = np.asarray(counts, dtype=np.float64)
    total = counts.sum()
    if total <= 0:
        return None
    q = counts[counts > 0] / total
    return float(np.sum(q * np.log(q * len(counts))))


def mixture_stats(points: torch.Tensor | np.ndarray, dataset: str, *, min_count: int = 1) -> dict[str, Any]:
    """Mode statistics of 2-D ``points`` (N, 2) against the centres of ``ring8``/``grid25``.

    Returns ``modes`` (captured, out of ``max_modes``), ``high_quality`` (fraction of all N
    samples), ``reverse_kl`` and ``counts`` (high-quality samples per mode). Non-finite rows (a
    diverged generator) count as samples that are not high quality.
    """
    from gankit.data.builtin import MIXTURE_STD, mixture_centers

    if dataset not in MIXTURES:
        raise GankitError(f"not a Gaussian-mixture benchmark: {dataset!r} (choose {', '.join(MIXTURES)})")
    if isinstance(points, torch.Tensor):
        points = points.detach().cpu().double().numpy()
    pts = np.asarray(points, dtype=np.float64)
    if pts.ndim != 2 or pts.shape[1] != 2:
        raise GankitError(f"{dataset} samples must be (N, 2) points, got shape {tuple(pts.shape)}")
    centers = mixture_centers(dataset)
    k, n = len(centers), len(pts)
    finite = np.isfinite(pts).all(axis=1)
    dist = np.linalg.norm(np.nan_to_num(pts, nan=1e9, posinf=1e9, neginf=-1e9)[:, None, :] - centers[None], axis=2)
    nearest = dist.argmin(axis=1)
    good = finite & (dist[np.arange(n), nearest] < HQ_STDS * MIXTURE_STD[dataset])
    counts = np.bincount(nearest[good], minlength=k)
    return {
        "dataset": dataset,
        "n": n,
        "max_modes": k,
        "modes": int((counts >= min_count).sum()),
        "high_quality": float(good.sum() / n) if n else 0.0,
        "reverse_kl": kl_to_uniform(counts),
        "counts": counts.tolist(),
    }


def stacked_modes(labels: torch.Tensor | np.ndarray, *, min_count: int = 1) -> dict[str, Any]:
    """Mode statistics of Stacked-MNIST triple labels (0..999) of N generated samples."""
    labels = np.asarray(labels.cpu() if isinstance(labels, torch.Tensor) else labels, dtype=np.int64).ravel()
    counts = np.bincount(labels, minlength=STACKED_MODES)
    return {
        "dataset": STACKED,
        "n": int(labels.size),
        "max_modes": STACKED_MODES,
        "modes": int((counts >= min_count).sum()),
        "kl": kl_to_uniform(counts),
    }


@torch.no_grad()
def stacked_digit_probs(images: torch.Tensor, classifier: nn.Module, *, batch_size: int = 1000) -> torch.Tensor:
    """Digit probabilities (N, 3, 10) of (N, 3, H, W) images in [-1, 1], one digit per channel as
    ``classifier`` ((N, 1, H, W) in [-1, 1] -> logits (N, 10)) reads it."""
    if images.ndim != 4 or images.shape[1] != 3:
        raise GankitError(f"stacked-mnist samples must be (N, 3, H, W) images, got shape {tuple(images.shape)}")
    device = next(classifier.parameters()).device
    probs = []
    for start in range(0, images.shape[0], batch_size):
        x = images[start:start + batch_size].float()
        chans = x.reshape(-1, 1, *x.shape[2:]).to(device)  # (B*3, 1, H, W), channel-major per image
        probs.append(classifier(chans).float().softmax(dim=1).view(-1, 3, 10).cpu())
    return torch.cat(probs)


def classify_stacked(images: torch.Tensor, classifier: nn.Module, *, batch_size: int = 1000) -> torch.Tensor:
    """Triple labels ``100*d0 + 10*d1 + d2`` of (N, 3, H, W) images in [-1, 1]: each channel's most
    probable digit (:func:`stacked_digit_probs`)."""
    d = stacked_digit_probs(images, classifier, batch_size=batch_size).argmax(dim=2)
    return d[:, 0] * 100 + d[:, 1] * 10 + d[:, 2]


def _default_classifier() -> nn.Module:
    from gankit.metrics.mnist_classifier import load_mnist_classifier

    return load_mnist_classifier(device="cpu")


# ---------------------------------------------------------------------------- models
def mode_coverage(model: Any, dataset_name: str, n: int | None = None, seed: int = 0, *,
                  classifier: nn.Module | None = None, plot: str | Path | None = None) -> dict[str, Any]:
    """Mode statistics of ``n`` samples (seed ``seed``) from ``model`` on a benchmark dataset.

    ``model`` is a :class:`gankit.api.Model` (anything with ``.sample(n, seed=)``), a run or
    export directory (loaded with :func:`gankit.load`), or a tensor of samples already drawn
    (then ``n`` and ``seed`` are ignored). ``n`` defaults to 2,500 for ring8/grid25 and 26,000 for
    stacked-mnist. ``plot`` writes a scatter PNG of the samples over the true modes (mixtures).
    """
    dataset = check_dataset(dataset_name)
    n = DEFAULT_N[dataset] if n is None else int(n)
    if n < 1:
        raise GankitError(f"need at least one sample, got n={n}")
    samples = _samples(model, n, seed)
    if dataset in MIXTURES:
        stats = mixture_stats(samples, dataset)
        if plot is not None:
            stats["plot"] = str(scatter_plot(samples, dataset, plot, stats))
        return stats
    clf = classifier if classifier is not None else _default_classifier()
    return stacked_modes(classify_stacked(samples, clf))


def _samples(model: Any, n: int, seed: int) -> torch.Tensor:
    if isinstance(model, torch.Tensor):
        return model
    if isinstance(model, np.ndarray):
        return torch.from_numpy(model)
    from gankit.model import as_model

    return as_model(model, needs_config=False).sample(n, seed=seed)


def scatter_plot(points: torch.Tensor, dataset: str, path: str | Path, stats: dict[str, Any] | None = None) -> Path:
    """Scatter PNG of generated ``points`` (blue) over the true mode centres (red crosses)."""
    from gankit.data.builtin import mixture_centers
    from gankit.viz import save_image, scatter_image

    title = dataset
    if stats is not None:
        title += f": {stats['modes']}/{stats['max_modes']} modes, {100 * stats['high_quality']:.1f}% HQ"
    save_image(scatter_image(points, centers=mixture_centers(dataset), title=title), path)
    return Path(path)


def bench_preset(family: str, dataset: str) -> str:
    """The preset a benchmark run trains with: the family's ``toy`` preset (networks made for
    2-D points) on the mixtures when it has one, else ``small``."""
    from gankit.registry import get_family

    return "toy" if dataset in MIXTURES and "toy" in get_family(family).Config.PRESETS else "small"


def bench_setup(family: str | None, dataset: str, overrides: dict[str, Any] | None = None,
                preset: str | None = None) -> tuple[str, str, dict[str, Any]]:
    """``(family, preset, options)`` of a benchmark run: the dataset's :data:`PROTOCOLS` recipe
    for its family (``overrides`` on top of its options); another family's :func:`bench_preset`."""
    protocol = PROTOCOLS[dataset]
    family = family or protocol.family
    if family == protocol.family and preset in (None, protocol.preset):
        return family, protocol.preset, {**protocol.options, **(overrides or {})}
    return family, preset or bench_preset(family, dataset), dict(overrides or {})


def run_label(family: str, overrides: dict[str, Any] | None = None) -> str:
    """``gan`` or, with options, ``gan-pack2``: names runs and result files."""
    return "-".join([family, *(f"{k}{v}" for k, v in sorted((overrides or {}).items()))])


# options that do not change what a run learns: its bookkeeping, what its data fill in, and what
# the benchmark checks apart (the family and data: :func:`run_mode_benchmark`)
NOT_RECIPE = frozenset({"seed", "steps", "family", "data", "channels", "num_classes", "device", "where",
                        "compile", "log_every", "snapshot_every", "n_snapshot", "checkpoint_every",
                        "keep_checkpoints", "eval_every", "eval_n", "eval_metrics", "eval_features"})


def recipe_differences(run_dir: str | Path, family: str, preset: str, options: dict[str, Any]) -> list[str]:
    """How the run in ``run_dir`` was trained differently from ``family``'s ``preset`` +
    ``options``, as ``"key=trained (not wanted)"`` items; empty when it matches. Every option of
    the resolved config counts (so a preset whose defaults changed since the run is caught), but
    :data:`NOT_RECIPE` and options the run's ``config.json`` predates. A benchmark that rescores an
    existing run checks this first: a run trained with another recipe would otherwise be reported
    under this one's options."""
    from gankit.config import build_config
    from gankit.registry import get_family

    try:
        trained = json.loads((Path(run_dir) / "config.json").read_text())["config"]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise GankitError(f"cannot read the training options of {run_dir}: {exc}") from exc
    wanted = build_config(get_family(family).Config, preset=preset, overrides=options).to_dict()
    return [f"{key}={trained[key]} (not {value})" for key, value in sorted(wanted.items())
            if key not in NOT_RECIPE and key in trained and not _same_value(trained[key], value)]


def _same_value(a: Any, b: Any) -> bool:
    numbers = all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in (a, b))
    return math.isclose(a, b, rel_tol=1e-9) if numbers else a == b


def run_mode_benchmark(family: str | None, dataset: str, steps: int | None = None, seed: int = 0,
                       out_dir: str | Path = "runs/bench-modes", run: str | Path | None = None, *,
                       n: int | None = None, classifier: nn.Module | None = None,
                       overrides: dict[str, Any] | None = None, preset: str | None = None,
                       short: bool = False, on_log: Callable[[str], None] | None = None,
                       on_step: Callable[[Any, int], None] | None = None, quiet: bool = True) -> dict[str, Any]:
    """Train ``family`` on ``dataset`` (or take the existing ``run``) and score its mode coverage.

    Training follows :func:`bench_setup` (the dataset's protocol by default) for ``steps``
    (default the protocol's) into ``out_dir/<run_label>-<dataset>-s<seed>``. Fewer steps than the
    protocol's is refused unless ``short``: such numbers do not compare with the papers' rows. The
    result (also written there as ``modes.json``, with ``modes.png`` for the 2-D mixtures) holds
    the statistics plus ``family``, ``steps``, ``seed``, ``run``, ``train_seconds``,
    ``protocol_steps`` and ``short`` (trained for fewer steps than the protocol). ``on_step`` is
    the trainer's per-step callback (``bench/modes.py --every`` scores the run as it trains);
    ``quiet=False`` shows the training's progress bar (on stderr) and data summary (on stdout).
    """
    import gankit
    from gankit.engine import checkpoint as ckpt

    dataset = check_dataset(dataset)
    protocol_steps = PROTOCOLS[dataset].steps
    train_seconds = None
    if run is None:
        label = run_label(family or PROTOCOLS[dataset].family, overrides)
        family, preset, options = bench_setup(family, dataset, overrides, preset)
        steps = protocol_steps if steps is None else int(steps)
        if steps < protocol_steps and not short:
            raise GankitError(f"{steps:,} steps is short of the {dataset} protocol's {protocol_steps:,}, so the "
                              f"numbers would not compare with the papers' rows; add --short to run it anyway")
        run_dir = Path(out_dir) / f"{label}-{dataset}-s{seed}"
        if ckpt.list_checkpoints(run_dir):
            raise GankitError(f"{run_dir} already holds a run: score it with --run {run_dir}, "
                              f"or pick another --out or --seed")
        if on_log:
            extra = "".join(f" {k}={v}" for k, v in sorted(options.items()))
            on_log(f"training {family} ({preset} preset{extra}) on {dataset} for {steps:,} steps (seed {seed}) "
                   f"into {run_dir}")
        result = gankit.train(family, data=dataset, out=run_dir, preset=preset, steps=steps, seed=seed, quiet=quiet,
                              overrides=options or None, on_step=on_step)
        if result.status != "finished":
            raise GankitError(f"training was interrupted at step {result.step}; continue it with "
                              f"gankit train --resume {run_dir}")
        train_seconds = round(result.seconds, 1)
        # kept apart from modes.json so that a rescore (run=...) still knows the training time
        write_text_atomic(run_dir / TRAIN_RECORD, json.dumps({"train_seconds": train_seconds, "steps": steps,
                                                                   "seed": seed}))
    else:
        run_dir = Path(run)
        try:
            train_seconds = json.loads((run_dir / TRAIN_RECORD).read_text()).get("train_seconds")
        except (OSError, ValueError, AttributeError):
            train_seconds = None
    model = gankit.load(run_dir)
    if family is not None and model.family != family:
        raise GankitError(f"{run_dir} holds a {model.family!r} run, not {family!r}")
    trained_on = str(getattr(model.config, "data", "") or "")
    if run is not None and trained_on and trained_on.strip().lower() in DATASETS and trained_on.strip().lower() != dataset:
        raise GankitError(f"{run_dir} was trained on {trained_on}, not {dataset}")
    plot = run_dir / "modes.png" if dataset in MIXTURES else None
    stats = mode_coverage(model, dataset, n=n, seed=seed, classifier=classifier, plot=plot)
    stats.update(family=model.family, steps=model.step, seed=seed, run=str(run_dir), train_seconds=train_seconds,
                 preset=model.config.preset, protocol_steps=protocol_steps, short=model.step < protocol_steps)
    write_text_atomic(run_dir / "modes.json", json.dumps(stats, indent=2, sort_keys=True))
    return stats


def summarize(results: list[dict[str, Any]]) -> dict[str, Any]:
    """Mean and sample standard deviation (and standard error) over seeds of each statistic."""
    out: dict[str, Any] = {"runs": len(results)}
    for key in ("modes", "high_quality", "reverse_kl", "kl", "train_seconds"):
        vals = [r[key] for r in results if r.get(key) is not None]
        if not vals:
            continue
        mean = float(np.mean(vals))
        std = float(np.std(vals, ddof=1)) if len(vals) > 1 else 0.0
        out[key] = {"mean": mean, "std": std, "sem": std / math.sqrt(len(vals)), "n": len(vals)}
    return out
