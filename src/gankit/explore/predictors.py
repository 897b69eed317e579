"""Attribute predictors for the supervised directions (:mod:`gankit.explore.directions`).

A predictor maps images (N, C, H, W) in [-1, 1] to p(positive) in [0, 1], one per image. Two kinds:

* :func:`face_predictor`: the heads of the shipped face CNN
  (:mod:`gankit.metrics.face_classifier`, trained on FairFace);
* :func:`train_classifier`: a small CNN (:class:`~gankit.metrics.face_classifier.FaceCNN`'s
  architecture, one two-way head) trained on the user's labelled images: a folder with a
  ``labels.csv``, an image folder with a CelebA ``list_attr_celeba.txt``, class folders, or
  the built-in ``fairface``.

An attribute is named as ``--where`` names labels (:mod:`gankit.data.where`), one column:

* a yes/no column (``Eyeglasses``): positive where it is 1, negative where it is 0;
* ``column=value`` or ``column=a|b``: those values against every other value of the column
  (one against the rest), e.g. ``race=East Asian``; ``column!=value`` flips it;
* the aliases ``age`` (positive: age 40 and up, ``40-49|50-59|60-69|more than 70``; negative:
  under 30, ``0-2|3-9|10-19|20-29``; the 30-39 group sits between) and ``gender``
  (positive ``Male``, negative ``Female``, the sign of CelebA's ``Male``).

Where some values are in neither group (age 30-39), p = p(positive) + p(neither) / 2.
"""

from __future__ import annotations

import dataclasses
import math
import time
from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from gankit.errors import GankitError

ALIASES: dict[str, tuple[str, str]] = {
    "age": ("age=40-49|50-59|60-69|more than 70", "age=0-2|3-9|10-19|20-29"),
    "gender": ("gender=Male", "gender=Female"),
}


@dataclass(frozen=True)
class Attribute:
    """One binary attribute of a label table: ``column`` and the values counted positive and negative
    (``("1",)`` / ``("0",)`` for a yes/no column)."""

    name: str  # as the user wrote it
    column: str
    positive: tuple[str, ...]
    negative: tuple[str, ...]
    binary: bool = False

    def describe(self) -> str:
        if self.binary:
            return f"{self.column} (+ where 1, - where 0)"
        return f"{self.column}: + {'|'.join(self.positive)}, - {'|'.join(self.negative)}"


def resolve_attribute(attr: str, names: list[str], *, source: str) -> Attribute:
    """The :class:`Attribute` that ``attr`` names among a table's columns ``names`` (``age=20-29``,
    ``Eyeglasses``, ...); GankitError naming the known ones otherwise."""
    from gankit.data.where import _columns, _known, _pick, _suggest, parse_where, resolve_where

    text = attr.strip()
    categorical, binary = _columns(names)
    columns = list(dict.fromkeys([*categorical, *binary]))
    alias = ALIASES.get(text.lower())
    column = _pick(text, list(categorical)) if alias else None
    if column is not None:
        groups = [tuple(v for v in a.partition("=")[2].split("|") if v in categorical[column]) for a in alias]
        if all(groups):  # the FairFace values of the alias that this table has
            return Attribute(text, column, *groups)
    if "=" not in text:
        column = _pick(text, columns)
        if column is None and "class" in categorical and _pick(text, list(categorical["class"])):
            return resolve_attribute(f"class={text}", names, source=source)  # class folders: --attr cat
        if column is None:
            raise GankitError(f"--attr: unknown attribute {text!r} in {source}; {_suggest(text, columns)}"
                              f"its attributes: {_known(columns)}")
        if column in categorical:
            values = list(categorical[column])
            raise GankitError(f"--attr: {column} has {len(values)} values in {source}; pick one against the rest, "
                              f"e.g. --attr \"{column}={values[0]}\" (values: {_known(values)})")
        return Attribute(text, column, ("1",), ("0",), binary=True)
    conditions = parse_where(text)
    if len(conditions) != 1:
        raise GankitError(f"--attr takes one column (column=value or column=a|b), got {text!r}")
    try:
        cond = resolve_where(names, conditions, source=source)[0]
    except GankitError as exc:
        raise GankitError(str(exc).replace("--where:", "--attr:", 1)) from None
    if cond.column in binary:
        want = cond.values == ("1",)
        if len(cond.values) != 1:
            raise GankitError(f"--attr {text!r}: {cond.column} is yes/no; give {cond.column} or {cond.column}=0")
        want = want != cond.negate
        return Attribute(text, cond.column, ("1",) if want else ("0",), ("0",) if want else ("1",), binary=True)
    values = list(categorical[cond.column])
    chosen = [v for v in values if (v in cond.values) != cond.negate]
    rest = tuple(v for v in values if v not in chosen)
    if not chosen or not rest:
        raise GankitError(f"--attr {text!r} leaves no {'positive' if not chosen else 'negative'} value "
                          f"of {cond.column}")
    return Attribute(text, cond.column, tuple(chosen), rest)


def _column_index(names: list[str], attr: Attribute) -> tuple[list[int], list[int]]:
    if attr.binary:
        j = names.index(attr.column)
        return [j], []
    index = {n: j for j, n in enumerate(names)}
    return ([index[f"{attr.column}={v}"] for v in attr.positive],
            [index[f"{attr.column}={v}"] for v in attr.negative])


def attribute_targets(attr: Attribute, names: list[str], table: torch.Tensor | np.ndarray) -> torch.Tensor:
    """Per row of a 0/1 ``table`` (N, K): 1 positive, 0 negative, -1 neither (unlabelled, or a value in
    neither group)."""
    t = torch.as_tensor(np.asarray(table), dtype=torch.float32)
    pos, neg = _column_index(names, attr)
    if attr.binary:
        return (t[:, pos[0]] > 0.5).long() if attr.positive == ("1",) else (t[:, pos[0]] <= 0.5).long()
    out = torch.full((t.shape[0],), -1, dtype=torch.long)
    out[(t[:, neg] > 0.5).any(1)] = 0
    out[(t[:, pos] > 0.5).any(1)] = 1
    return out


class Predictor:
    """``predictor(images) -> (N,)`` p(positive) in [0, 1]; ``name`` and ``info`` (a JSON-able dict)."""

    def __init__(self, fn: Callable[[torch.Tensor], torch.Tensor], name: str, info: dict):
        self.fn, self.name, self.info = fn, name, info

    @torch.no_grad()
    def __call__(self, images: torch.Tensor, batch_size: int = 256) -> torch.Tensor:
        parts = [self.fn(images[i:i + batch_size].float()).float().cpu() for i in range(0, len(images), batch_size)]
        return torch.cat(parts) if parts else torch.zeros(0)


def face_predictor(attr: str) -> Predictor:
    """p(attribute) from the shipped face CNN's age / gender / race heads (FairFace's values)."""
    from gankit.metrics.face_classifier import ATTRIBUTE_NAMES, attribute_probabilities, read_info

    names = list(ATTRIBUTE_NAMES)
    spec = resolve_attribute(attr, names, source="the face classifier (age, gender, race)")
    pos, neg = _column_index(names, spec)

    def fn(images: torch.Tensor) -> torch.Tensor:
        p = attribute_probabilities(images)
        p_pos, p_neg = p[:, pos].sum(1), p[:, neg].sum(1)
        return (p_pos + (1 - p_pos - p_neg).clamp_min(0) / 2).clamp(0, 1)

    acc = read_info().get("held_out_accuracy", {})
    return Predictor(fn, spec.name, {"predictor": "face-cnn", "attribute": spec.describe(),
                                      "predictor_held_out_accuracy": acc.get(spec.column)})


# ---- a classifier trained on the user's labelled images ------------------------------------------
class _Binary(nn.Module):
    def __init__(self, width: int, input_size: int):
        super().__init__()
        from gankit.metrics.face_classifier import FEATURE_DIM, FaceCNN

        self.net = FaceCNN(width=width, input_size=input_size)
        self.net.heads = nn.ModuleDict({"attr": nn.Linear(FEATURE_DIM, 2)})

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)["attr"]


def _augment(x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """Flips, shifts of up to 1/16 of the side, brightness and contrast jitter (x in [-1, 1])."""
    n, _, h, w = x.shape
    flip = torch.rand(n, generator=gen) < 0.5
    x = torch.where(flip[:, None, None, None], x.flip(3), x)
    pad = max(1, h // 16)
    padded = F.pad(x, (pad, pad, pad, pad), mode="replicate")
    dx, dy = (torch.randint(0, 2 * pad + 1, (2,), generator=gen)).tolist()
    x = padded[:, :, dy:dy + h, dx:dx + w]
    bright = (torch.rand(n, 1, 1, 1, generator=gen) * 2 - 1) * 0.2
    contrast = 1 + (torch.rand(n, 1, 1, 1, generator=gen) * 2 - 1) * 0.25
    mean = x.mean(dim=(1, 2, 3), keepdim=True)
    return ((x - mean) * contrast + mean + bright).clamp(-1, 1)


def labelled_images(images: str, labels: str | None, *, resolution: int, channels: int,
                    max_images: int | None = None):
    """The user's labelled images as a dataset with a label table: ``fairface``, a folder with
    ``labels.csv``, a folder + a table (``labels``, e.g. CelebA's list_attr_celeba.txt) or class
    folders."""
    from pathlib import Path

    from gankit.data import load_dataset
    from gankit.data.loader import LABELS_FILE

    path = Path(images).expanduser()
    table = labels
    if table is None and path.is_dir() and (path / LABELS_FILE).is_file():
        table = str(path / LABELS_FILE)
    return load_dataset(images, labels=table, resolution=resolution, channels=channels, max_images=max_images)


def train_classifier(dataset, attr: str, *, seed: int = 0, epochs: int = 20, min_steps: int = 100, width: int = 16,
                     input_size: int | None = None, val_fraction: float = 0.2, batch_size: int = 64,
                     lr: float = 3e-3, val_dataset=None, log: Callable[[str], None] | None = None
                     ) -> tuple[Predictor, dict]:
    """Train a two-way FaceCNN (one head) for ``attr`` on a labelled dataset; returns the predictor
    and its facts (balanced accuracy on a seeded held-out ``val_fraction`` of the labelled images,
    or on ``val_dataset`` when given). Classes are weighted by inverse frequency, images
    augmented by flips, small shifts and brightness/contrast jitter; AdamW with a one-cycle
    schedule, for ``epochs`` passes but at least ``min_steps`` batches (a small folder gets more
    passes). Rows in neither group (age 30-39) are left out."""
    from gankit.data.dataset import to_signed
    from gankit.data.where import dataset_table

    source = dataset.source or "the data"
    found = dataset_table(dataset)
    if found is None:
        raise GankitError(f"{source} has no labels: give --labels TABLE (a CSV, or CelebA's list_attr_celeba.txt), "
                          f"a folder with labels.csv, or class folders")
    names, table = found
    spec = resolve_attribute(attr, names, source=source)
    y = attribute_targets(spec, names, table)
    keep = torch.nonzero(y >= 0).flatten()
    if val_dataset is None:
        perm = keep[torch.randperm(len(keep), generator=torch.Generator().manual_seed(seed))]
        n_val = int(round(len(perm) * val_fraction))
        val_idx, train_idx = perm[:n_val], perm[n_val:]
        xv, yv = dataset.data[val_idx], y[val_idx]
    else:
        vnames, vtable = dataset_table(val_dataset)
        yv_all = attribute_targets(resolve_attribute(attr, vnames, source=source), vnames, vtable)
        ok = yv_all >= 0
        xv, yv, train_idx = val_dataset.data[ok], yv_all[ok], keep
    ytr = y[train_idx]
    counts = torch.bincount(ytr, minlength=2)
    if counts.min() < 2:
        raise GankitError(f"--attr {attr!r}: {source} has {int(counts[1])} positive and {int(counts[0])} negative "
                          f"labelled images; a classifier needs some of both")
    size = input_size or min(64, max(16, dataset.data.shape[-1]))
    prep = lambda u8: F.interpolate(to_signed(u8), size=(size, size), mode="bilinear",  # noqa: E731
                                    align_corners=False, antialias=True) if u8.shape[-1] != size else to_signed(u8)
    xtr = torch.cat([prep(dataset.data[train_idx[i:i + 512]]) for i in range(0, len(train_idx), 512)])
    if xtr.shape[1] == 1:
        xtr = xtr.expand(-1, 3, -1, -1).contiguous()
    torch.manual_seed(seed)
    model = _Binary(width, size)
    weight = (counts.sum() / (2 * counts.float()))
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.05)
    per_epoch = max(1, math.ceil(len(xtr) / batch_size))
    epochs = max(epochs, math.ceil(min_steps / per_epoch))
    steps = per_epoch * epochs
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=steps, pct_start=0.2)
    gen = torch.Generator().manual_seed(seed)
    started = time.perf_counter()
    for epoch in range(epochs):
        model.train()
        perm = torch.randperm(len(xtr), generator=gen)
        for i in range(0, len(xtr), batch_size):
            idx = perm[i:i + batch_size]
            if len(idx) < 2:
                sched.step()
                continue
            loss = F.cross_entropy(model(_augment(xtr[idx], gen)), ytr[idx], weight=weight)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
        if log is not None and ((epoch + 1) % 5 == 0 or epoch + 1 == epochs):
            log(f"classifier {spec.name}: epoch {epoch + 1}/{epochs} ({time.perf_counter() - started:.0f}s)")
    model.eval().requires_grad_(False)
    fn = lambda images: torch.softmax(model(images), dim=1)[:, 1]  # noqa: E731
    predictor = Predictor(fn, spec.name, {})
    facts = {"predictor": "trained", "attribute": spec.describe(), "source": source, "train_images": len(xtr),
             "train_positive": int(counts[1]), "train_negative": int(counts[0]), "width": width, "input_size": size,
             "epochs": epochs, "seed": seed, "train_seconds": round(time.perf_counter() - started, 1)}
    if len(yv) and yv.min() != yv.max():
        pred = (predictor(to_signed(xv)) > 0.5).long()
        recall = [float((pred[yv == c] == c).float().mean()) for c in (0, 1)]
        facts.update(val_images=len(yv), val_accuracy=round(float((pred == yv).float().mean()), 4),
                     val_balanced_accuracy=round(sum(recall) / 2, 4))
    predictor.info = dict(facts)
    return predictor, facts


def subset(dataset, index: torch.Tensor):
    """The items ``index`` of a dataset (images, labels and attributes)."""
    pick = lambda t: None if t is None else t[index]  # noqa: E731
    return dataclasses.replace(dataset, data=dataset.data[index], labels=pick(dataset.labels),
                               attributes=pick(dataset.attributes))
