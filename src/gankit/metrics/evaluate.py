"""``evaluate``: FID, KID, IS, precision/recall and SWD of a trained generator against its data.

Real-data features (and SWD descriptors) are cached in memory per (data, shape, features, n, seed),
so the training loop can call :func:`evaluate` every N steps and pay only for the generated side.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from typing import Any, Iterable

import torch

from gankit.data.dataset import to_signed
from gankit.errors import GankitError

from . import scores
from .features import FeatureExtractor, is_face_data, resolve_features
from .precision_recall import knn_radii, precision_recall
from .scope import require_sample_sets
from .swd import pyramid_resolutions, swd_descriptors, swd_from_descriptors

METRICS = ("fid", "kid", "is", "pr", "swd")
DEFAULT_METRICS = ("fid", "kid", "pr", "swd")
CHUNK_SEED_STRIDE = 1_000_003  # more chunks than any evaluation draws (500 samples each)
SAMPLE_CHUNK = 500
SWD_MAX_IMAGES = 2048  # 262k descriptors per level and set: seconds, not minutes, on a CPU

_REAL_CACHE: "OrderedDict[tuple, dict[str, Any]]" = OrderedDict()
_EXTRACTORS: "OrderedDict[tuple, FeatureExtractor]" = OrderedDict()
_CACHE_SIZE = 4


def clear_cache() -> None:
    """Forget the cached real-data features and extractors."""
    _REAL_CACHE.clear()
    _EXTRACTORS.clear()


def parse_metrics(metrics: str | Iterable[str]) -> tuple[str, ...]:
    if metrics is None:
        metrics = DEFAULT_METRICS
    items = metrics.split(",") if isinstance(metrics, str) else list(metrics)
    out: list[str] = []
    for m in items:
        m = m.strip().lower()
        if not m:
            continue
        m = {"precision": "pr", "recall": "pr", "inception_score": "is"}.get(m, m)
        if m not in METRICS:
            raise GankitError(f"unknown metric {m!r}; choose from {', '.join(METRICS)}")
        if m not in out:
            out.append(m)
    if not out:
        raise GankitError(f"no metrics asked for; choose from {', '.join(METRICS)}")
    return tuple(out)


def _get_extractor(features: str, channels: int, resolution: int, inception_weights, device,
                   data=None) -> FeatureExtractor:
    face = (features or "auto").lower() == "auto" and is_face_data(data)  # auto picks faces for face data
    key = (features, channels, resolution <= 32, str(inception_weights), str(device), face)
    if key not in _EXTRACTORS:
        _EXTRACTORS[key] = resolve_features(features, channels=channels, resolution=resolution,
                                            inception_weights=inception_weights, device=device,
                                            data=data if face else None)
        while len(_EXTRACTORS) > 2:
            _EXTRACTORS.popitem(last=False)
    return _EXTRACTORS[key]


@torch.inference_mode()
def extract(extractor: FeatureExtractor, images: torch.Tensor, *, batch_size: int = 256,
            logits: bool = False) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Features (N, D) (and logits) of images (float in [-1, 1], or uint8), in batches, on the
    extractor's device."""
    first = next(iter(extractor.parameters()), None)
    device = first.device if first is not None else torch.device("cpu")
    feats, outs = [], []
    for i in range(0, images.shape[0], batch_size):
        x = to_signed(images[i:i + batch_size]).to(device)
        feats.append(extractor(x).double().cpu())
        if logits:
            outs.append(extractor.class_logits(x).double().cpu())
    return torch.cat(feats), (torch.cat(outs) if logits else None)


def min_samples(wanted: Iterable[str], pr_k: int) -> int:
    """The fewest images per side the metrics can be computed from: two for a covariance (FID),
    four for KID's half-size subsets, k + 2 for precision/recall's k-th neighbour radii."""
    if pr_k < 1:
        raise GankitError(f"the precision/recall neighbourhood k must be at least 1, got {pr_k}")
    wanted = set(wanted)
    return max(2, 4 if "kid" in wanted else 2, pr_k + 2 if "pr" in wanted else 2)


def chunk_seed(seed: int, i: int) -> int:
    """The seed of chunk ``i`` of an evaluation's samples: no chunk of one seed is a chunk of
    another (``seed + i`` made seeds 0 and 1 share all but one chunk, hiding the seed-to-seed
    spread); seed 0 keeps its old stream."""
    return seed * CHUNK_SEED_STRIDE + i


def _generated(model, n: int, seed: int) -> torch.Tensor:
    parts = []
    for i, start in enumerate(range(0, n, SAMPLE_CHUNK)):
        parts.append(model.sample(min(SAMPLE_CHUNK, n - start), seed=chunk_seed(seed, i)).detach().float().cpu())
    return torch.cat(parts)


def _model_device(model) -> torch.device:
    try:
        return next(model.generator.parameters()).device
    except (AttributeError, StopIteration):
        return torch.device("cpu")


def training_data(model, data: str, channels: int, resolution: int, where: str | None):
    """The real images: the run's own data loaded as its family loads it (captioned data for
    StackGAN), or any dataset spec through :func:`gankit.data.load_dataset`."""
    from gankit.data import load_dataset
    from gankit.families.base import Family

    family_cls = getattr(model, "family_cls", None)
    own_loader = family_cls is not None and family_cls.load_data.__func__ is not Family.load_data.__func__
    if own_loader and data == model.config.data and not where:
        import copy

        return family_cls.load_data(copy.deepcopy(model.config))
    return load_dataset(data, channels=channels, resolution=resolution, where=where or None)


def evaluate(run_or_model, data: str | None = None, *, where: str | None = None,
             metrics: str | Iterable[str] = DEFAULT_METRICS,
             features: str = "auto", n: int = 10_000, seed: int = 0, inception_weights=None,
             batch_size: int = 256, device: str | torch.device | None = None,
             swd_max_images: int = SWD_MAX_IMAGES, kid_subsets: int = 100, kid_subset_size: int = 1000,
             is_splits: int = 10, pr_k: int = 3) -> dict[str, Any]:
    """Quality metrics of ``run_or_model`` (run dir, export dir or :class:`gankit.api.Model`) on ``data``.

    ``data`` defaults to the data the run was trained on, filtered by the run's ``--where`` unless
    ``where`` is given (``""``: all of it); with ``data`` given, ``where`` filters it (None: no
    filter). Returns a flat dict: ``fid``, ``kid``,
    ``kid_std``, ``is``, ``is_std``, ``precision``, ``recall``, ``swd``, ``swd_levels`` (x1e3,
    finest level first), plus ``features``, ``n``, ``n_real``, ``seed``, ``step``, ``data``, ``where``,
    ``seconds`` and ``warnings`` (a list of strings).
    """
    started = time.perf_counter()
    wanted = parse_metrics(metrics)
    for name, value, lowest in (("batch_size", batch_size, 1), ("kid_subsets", kid_subsets, 1),
                                ("kid_subset_size", kid_subset_size, 2), ("swd_max_images", swd_max_images, 2),
                                ("is_splits", is_splits, 1)):
        if not isinstance(value, int) or value < lowest:
            raise GankitError(f"{name} must be a whole number >= {lowest}, got {value!r}")
    least = min_samples(wanted, pr_k)
    if not isinstance(n, int) or isinstance(n, bool) or n < least:
        raise GankitError(f"--n must be at least {least} for {', '.join(wanted)}, got {n!r}")
    from gankit.model import as_model

    model = as_model(run_or_model)
    config = model.config
    require_sample_sets(model)
    if data is None:  # the run's own data, filtered as in training
        data = getattr(config, "data", None)
        where = getattr(config, "where", "") if where is None else where
    if not data:
        raise GankitError("evaluate needs --data (the run does not record its data)")
    channels, resolution = int(config.channels), int(config.resolution)
    device = torch.device(device) if device is not None else _model_device(model)
    needs_features = any(m in wanted for m in ("fid", "kid", "is", "pr"))
    extractor = (_get_extractor(features, channels, resolution, inception_weights, device, data)
                 if needs_features else None)
    feat_name = extractor.name if extractor is not None else None
    if "is" in wanted and not extractor.has_logits:
        raise GankitError(f"the Inception Score needs a classifier; the {feat_name!r} features have none")

    # ---- real side (cached) ----
    key = (str(data), where or "", channels, resolution, feat_name, str(inception_weights) if feat_name == "inception" else None,
           n, seed, str(device))
    real = _REAL_CACHE.get(key)
    if real is None:
        ds = training_data(model, data, channels, resolution, where)
        if ds.kind != "image":
            raise GankitError(f"{data} is not image data")
        perm = torch.randperm(len(ds), generator=torch.Generator().manual_seed(seed))[:n]
        images = to_signed(ds.data[perm])
        real: dict[str, Any] = {"n_real": int(images.shape[0]), "where": ds.where}
        if extractor is not None:
            real["features"], _ = extract(extractor, images, batch_size=batch_size)
        real["images_swd"] = images[:swd_max_images].clone()
        del images
        _REAL_CACHE[key] = real
        while len(_REAL_CACHE) > _CACHE_SIZE:
            _REAL_CACHE.popitem(last=False)
    else:
        _REAL_CACHE.move_to_end(key)
    n_real = real["n_real"]
    if n_real < least:
        subset = f" where {real['where']}" if real.get("where") else ""
        raise GankitError(f"only {n_real} real image(s) in {data}{subset}: {', '.join(wanted)} need at least {least}")

    # ---- generated side ----
    fake_images = _generated(model, n, seed)
    if tuple(fake_images.shape[1:]) != (channels, resolution, resolution):
        raise GankitError(f"the generator gives {tuple(fake_images.shape[1:])} samples, "
                          f"expected {(channels, resolution, resolution)}")
    result: dict[str, Any] = {}
    warnings: list[str] = []
    if n_real < n:
        subset = f" where {real['where']}" if real.get("where") else ""
        warnings.append(f"only {n_real} real images in {data}{subset} (asked for {n}); the real side uses all of them")
    if extractor is not None:
        fake_feats, fake_logits = extract(extractor, fake_images, batch_size=batch_size, logits="is" in wanted)
        real_feats = real["features"]
        if "fid" in wanted:
            if "stats" not in real:
                real["stats"] = scores.feature_stats(real_feats)
            result["fid"] = scores.fid_from_stats(*real["stats"], *scores.feature_stats(fake_feats))
        if "kid" in wanted:
            result["kid"], result["kid_std"] = scores.kid_from_features(
                real_feats, fake_feats, subsets=kid_subsets, subset_size=kid_subset_size, seed=seed)
        if "is" in wanted:
            result["is"], result["is_std"] = scores.inception_score(fake_logits, splits=is_splits)
        if "pr" in wanted:
            rkey = f"radii_k{pr_k}"
            if rkey not in real:
                real[rkey] = knn_radii(real_feats, pr_k)
            result["precision"], result["recall"] = precision_recall(real_feats, fake_feats, k=pr_k,
                                                                     real_radii=real[rkey])
    if "swd" in wanted:
        m = min(n_real, n, swd_max_images)
        dkey = f"swd_desc_{m}"
        if dkey not in real:
            real[dkey] = swd_descriptors(real["images_swd"][:m], seed=seed)
        fake_desc = swd_descriptors(fake_images[:m], seed=seed)
        levels = swd_from_descriptors(real[dkey], fake_desc, seed=seed)
        result["swd"] = sum(levels) / len(levels)
        result["swd_levels"] = levels
        result["swd_resolutions"] = pyramid_resolutions(resolution)
        result["swd_images"] = m
    result.update({
        "metrics": list(wanted),
        "features": feat_name,
        "data": str(data),
        "where": real.get("where", ""),
        "n": n,
        "n_real": n_real,
        "seed": seed,
        "step": getattr(model, "step", None),
        "seconds": round(time.perf_counter() - started, 2),
        "warnings": warnings,
    })
    return result
