"""Semantic directions in W for style-based generators: supervised and unsupervised.

* InterFaceGAN (Shen, Gu, Tang & Zhou 2020, "Interpreting the Latent Space of GANs for Semantic
  Face Editing", arXiv:1907.10786): sample many w, score their images with an attribute
  predictor, keep the most confident positives and negatives (§3.1: the top and bottom of the
  ranking), fit a linear SVM in W; the unit normal of the boundary is the editing direction
  (:func:`fit_boundary`). Conditional editing (§2.2) removes a second attribute's normal from it:
  n1 - (n1 . n2) n2, renormalised (:func:`condition`).
* SeFa (Shen & Zhou 2021, "Closed-Form Factorization of Latent Semantics in GANs",
  arXiv:2007.06600, Eq. 5-6): the directions n that the style affines A of the chosen layers
  change most, argmax ||A n||^2 over unit n, are the top eigenvectors of A^T A. As in the
  authors' release, each row of A (one style channel) is scaled to unit norm (:func:`sefa`).
* GANSpace (Härkönen, Hertzmann, Lehtinen & Paris 2020, "GANSpace: Discovering Interpretable GAN
  Controls", arXiv:2004.02546, §2): principal components of w over many samples (:func:`ganspace`).

Strengths are in units of the std of w along the direction (:func:`direction_scale`), so
strength 1 moves a sample by one typical spread of the data along it, for every method.
Directions are saved as ``.safetensors`` (``directions`` (K, w_dim) unit rows, ``scales`` (K,))
with a JSON sidecar (:func:`save_directions`, :func:`load_directions`).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import torch

from gankit.errors import GankitError

FORMAT = "gankit-directions"


# ---- sampling ---------------------------------------------------------------------------------
@torch.no_grad()
def sample_ws(model, n: int, *, seed: int = 0, truncation: float = 1.0, batch_size: int = 1000) -> torch.Tensor:
    """``n`` w's (N, w_dim) from the mapping network (no images), from one seeded generator."""
    gen = torch.Generator().manual_seed(seed)
    parts = []
    for i in range(0, n, batch_size):
        z = model.family_cls.sample_latent(model.config, min(batch_size, n - i), generator=gen)
        parts.append(model.mapping(z, truncation=truncation)[:, 0].float().cpu())
    return torch.cat(parts)


@torch.no_grad()
def score_ws(model, ws: torch.Tensor, predictors: list[Callable[[torch.Tensor], torch.Tensor]], *,
             batch_size: int = 100, noise: str = "const", progress: bool = True) -> torch.Tensor:
    """Render ``ws`` (N, w_dim) and score each image with every predictor: (N, len(predictors)),
    with a progress bar (rich on a terminal, periodic lines otherwise)."""
    from gankit.engine.monitor import ProgressBar

    bar = ProgressBar(len(ws), 0, enabled=progress, description="labelling samples")
    parts = []
    try:
        for i in range(0, len(ws), batch_size):
            images = model.synthesis(ws[i:i + batch_size], noise=noise).clamp(-1, 1)
            parts.append(torch.stack([p(images).float().cpu() for p in predictors], dim=1))
            bar.update(min(i + batch_size, len(ws)), {})
    finally:
        bar.close()
    return torch.cat(parts)


# ---- InterFaceGAN -------------------------------------------------------------------------------
@dataclass
class Boundary:
    """A hyperplane n . w = offset in W (n a unit vector pointing to the positives) and its fit."""

    normal: torch.Tensor
    offset: float
    train_accuracy: float
    val_accuracy: float | None
    n_train: int
    n_val: int
    info: dict = field(default_factory=dict)


def confident(scores: torch.Tensor, fraction: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Indices of the highest- and lowest-scoring ``fraction`` of the samples (InterFaceGAN §3.1
    keeps the top and bottom 10k of 500k; with a few thousand samples a larger share is needed
    for enough points in W's dimensions)."""
    if not 0 < fraction <= 0.5:
        raise GankitError(f"the confident fraction must be in (0, 0.5], got {fraction}")
    k = max(1, int(len(scores) * fraction))
    order = torch.argsort(scores)
    return order[-k:], order[:k]


C_GRID = (0.001, 0.01, 0.1, 1.0, 10.0)


def _svm(x: torch.Tensor, sign: torch.Tensor, c: float, iterations: int) -> tuple[torch.Tensor, float]:
    """Primal linear SVM: mean squared hinge + ||v||^2 / (2 C n) (LinearSVC's objective / (C n))."""
    v = torch.zeros(x.shape[1], dtype=torch.float64, requires_grad=True)
    b = torch.zeros((), dtype=torch.float64, requires_grad=True)
    opt = torch.optim.LBFGS([v, b], lr=1, max_iter=iterations, line_search_fn="strong_wolfe",
                            tolerance_grad=1e-9, tolerance_change=1e-12)

    def closure():
        opt.zero_grad()
        loss = (1 - sign * (x @ v + b)).clamp_min(0).square().mean() + v.square().sum() / (2 * c * len(x))
        loss.backward()
        return loss

    opt.step(closure)
    return v.detach(), float(b.detach())


def fit_boundary(ws: torch.Tensor, labels: torch.Tensor, *, val_fraction: float = 0.3, c: float | None = None,
                 seed: int = 0, iterations: int = 200) -> Boundary:
    """A linear SVM (squared hinge loss, L2 penalty) separating ``labels`` (1 / 0) of ``ws``
    (N, w_dim), fitted in torch with L-BFGS on a seeded (1 - ``val_fraction``) part; the rest
    gives the held-out accuracy (InterFaceGAN trains on 70% and validates on 30%). ``c`` None
    picks the penalty from :data:`C_GRID` by 3-fold cross-validation on the training part (with
    a few thousand samples in 256-512 dimensions an unpenalised fit separates the training set
    and generalises worse). Features are centred and scaled by one overall std, which leaves
    the normal's direction in W as it is."""
    ws, y = ws.detach().double().cpu(), labels.detach().cpu()
    if ws.dim() != 2 or y.shape != (ws.shape[0],):
        raise GankitError(f"fit_boundary takes ws (N, w_dim) and labels (N,), got {tuple(ws.shape)}, {tuple(y.shape)}")
    sign = torch.where(y > 0.5, 1.0, -1.0).double()
    if (sign > 0).sum() < 3 or (sign < 0).sum() < 3:
        raise GankitError("fit_boundary needs at least three positive and three negative samples")
    perm = torch.randperm(len(y), generator=torch.Generator().manual_seed(seed))
    n_val = int(len(y) * val_fraction)
    val, train = perm[:n_val], perm[n_val:]
    mean, std = ws[train].mean(0), ws[train].std().clamp_min(1e-12)
    x = (ws - mean) / std
    hits = lambda v, b, idx: ((x[idx] @ v + b) * sign[idx] > 0).double().mean().item()  # noqa: E731
    cv = {}
    if c is None:
        folds = train.chunk(3)
        for cc in C_GRID:
            scores = []
            for k in range(len(folds)):
                rest = torch.cat([f for j, f in enumerate(folds) if j != k])
                scores.append(hits(*_svm(x[rest], sign[rest], cc, iterations), folds[k]))
            cv[cc] = sum(scores) / len(scores)
        c = max(C_GRID, key=lambda cc: (round(cv[cc], 4), -cc))  # ties: the stronger penalty
    v, b = _svm(x[train], sign[train], c, iterations)
    norm = float(v.norm())
    if norm == 0:
        raise GankitError("the boundary fit found no direction (are the labels all the same?)")
    normal = (v / norm).float()
    offset = float(normal.double() @ mean) - b * float(std) / norm  # n . w = offset on the boundary
    info = {"c": c, **({"cv_accuracy": {str(k): round(a, 4) for k, a in cv.items()}} if cv else {})}
    return Boundary(normal, offset, hits(v, b, train), hits(v, b, val) if len(val) else None, len(train), len(val),
                    info)


def interfacegan(ws: torch.Tensor, scores: torch.Tensor, *, fraction: float = 0.2, val_fraction: float = 0.3,
                 seed: int = 0) -> Boundary:
    """The InterFaceGAN boundary of scored samples: the top ``fraction`` are positives, the bottom
    ``fraction`` negatives. ``info`` adds the score thresholds and the accuracy on every sample
    (label: score > 0.5)."""
    pos, neg = confident(scores, fraction)
    idx = torch.cat([pos, neg])
    labels = torch.cat([torch.ones(len(pos)), torch.zeros(len(neg))])
    boundary = fit_boundary(ws[idx], labels, val_fraction=val_fraction, seed=seed)
    side = (ws.double() @ boundary.normal.double() > boundary.offset)
    boundary.info = {**boundary.info, "positives": len(pos), "negatives": len(neg),
                     "positive_min_score": round(float(scores[pos].min()), 4),
                     "negative_max_score": round(float(scores[neg].max()), 4),
                     "all_samples_accuracy": round(float((side == (scores > 0.5)).float().mean()), 4),
                     "positive_rate": round(float((scores > 0.5).float().mean()), 4)}
    return boundary


def condition(primary: torch.Tensor, *held: torch.Tensor, min_norm: float = 0.05) -> torch.Tensor:
    """InterFaceGAN §2.2: ``primary`` with the directions ``held`` projected out (for one,
    n1 - (n1 . n2) n2), renormalised, so moving along it leaves the held attributes' boundary
    distances unchanged. Several held directions are orthonormalised first."""
    basis: list[torch.Tensor] = []
    for h in held:
        h = h.double().flatten()
        for q in basis:
            h = h - (h @ q) * q
        if h.norm() > 1e-8:
            basis.append(h / h.norm())
    n = primary.double().flatten()
    n = n / n.norm()
    for q in basis:
        n = n - (n @ q) * q
    if n.norm() < min_norm:
        raise GankitError(f"the direction is almost parallel to the held ones (what remains has norm "
                          f"{float(n.norm()):.3f}); "
                          "conditioning would leave nothing")
    return (n / n.norm()).to(primary.dtype)


# ---- SeFa ---------------------------------------------------------------------------------------
def style_affines(generator) -> list[tuple[int, torch.nn.Module]]:
    """``(w index, affine)`` of every layer of a StyleGAN2 synthesis network that reads a w:
    block b4's conv1 reads w 0; block R's conv0 and conv1 read ws 2k - 1 and 2k, and the
    previous block's ToRGB shares the first; the last ToRGB reads the last w."""
    synthesis = getattr(generator, "synthesis", None)
    if synthesis is None or not hasattr(synthesis, "resolutions"):
        raise GankitError("SeFa needs a StyleGAN2 generator (a synthesis network with style affines)")
    out, i = [], 0
    for res in synthesis.resolutions:
        block = getattr(synthesis, f"b{res}")
        convs = [block.conv1] if block.in_channels == 0 else [block.conv0, block.conv1]
        out += [(i + k, layer.affine) for k, layer in enumerate(convs)]
        i += block.num_conv
        out.append((i, block.torgb.affine))
    return out


def sefa_weights(generator, layers: list[int] | None = None) -> torch.Tensor:
    """A: the style affines' weights (as applied, with the equalised-lr gain) of the layers reading the
    ws in ``layers`` (all by default), stacked to (channels, w_dim), each row scaled to unit norm."""
    affines = [a for i, a in style_affines(generator) if layers is None or i in layers]
    if not affines:
        raise GankitError(f"no style layer reads the ws {layers}")
    a = torch.cat([aff.weight.detach().double().cpu() * aff.weight_gain for aff in affines])
    return a / a.norm(dim=1, keepdim=True).clamp_min(1e-12)


def sefa(generator, layers: list[int] | None = None, k: int = 10) -> tuple[torch.Tensor, torch.Tensor]:
    """SeFa: the ``k`` top eigenvectors of A^T A (:func:`sefa_weights`) as unit rows (k, w_dim), and
    their eigenvalues, largest first. Each vector's sign is fixed so that its largest component
    is positive (an eigenvector's sign is arbitrary)."""
    a = sefa_weights(generator, layers)
    values, vectors = torch.linalg.eigh(a.T @ a)
    order = torch.argsort(values, descending=True)[:k]
    return _fix_signs(vectors[:, order].T).float(), values[order].float()


# ---- GANSpace -----------------------------------------------------------------------------------
def ganspace(ws: torch.Tensor, k: int = 10) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """GANSpace: principal components of sampled w's (N, w_dim): ``(components (k, w_dim) unit rows,
    stds (k,) the spread of w along each, mean (w_dim,))``, largest variance first; signs as in
    :func:`sefa`."""
    x = ws.detach().double().cpu()
    if x.dim() != 2 or x.shape[0] < 2:
        raise GankitError(f"ganspace takes sampled ws (N >= 2, w_dim), got {tuple(x.shape)}")
    mean = x.mean(0)
    cov = (x - mean).T @ (x - mean) / (x.shape[0] - 1)
    values, vectors = torch.linalg.eigh(cov)
    order = torch.argsort(values, descending=True)[:k]
    return _fix_signs(vectors[:, order].T).float(), values[order].clamp_min(0).sqrt().float(), mean.float()


def _fix_signs(rows: torch.Tensor) -> torch.Tensor:
    idx = rows.abs().argmax(dim=1)
    return rows * torch.sign(rows.gather(1, idx[:, None]))


def direction_scale(ws: torch.Tensor, directions: torch.Tensor) -> torch.Tensor:
    """The std of w along each unit direction (K, w_dim) over sampled ws (N, w_dim): the unit of strength."""
    return (ws.double() @ directions.double().T).std(dim=0).float()


# ---- files --------------------------------------------------------------------------------------
@dataclass
class Directions:
    """K named unit directions in W with their strength unit (``scales``) and default ``layers``."""

    names: list[str]
    vectors: torch.Tensor  # (K, w_dim)
    scales: torch.Tensor  # (K,)
    layers: list[int] | None = None
    info: dict = field(default_factory=dict)

    def index(self, key: str | int | None) -> int:
        """A direction by position or name; None when there is only one."""
        if key is None or key == "":
            if len(self.names) == 1:
                return 0
            raise GankitError(f"the file holds {len(self.names)} directions; pick one with :INDEX "
                              f"(0-{len(self.names) - 1})")
        if isinstance(key, int) or str(key).lstrip("-").isdigit():
            i = int(key)
            if not 0 <= i < len(self.names):
                raise GankitError(f"direction index {i} is out of range: the file holds 0-{len(self.names) - 1}")
            return i
        if key in self.names:
            return self.names.index(key)
        raise GankitError(f"no direction {key!r}; the file holds {', '.join(self.names[:12])}")


def save_directions(path: str | Path, d: Directions) -> tuple[Path, Path]:
    """``path`` (.safetensors: ``directions``, ``scales``) and its JSON sidecar (same stem)."""
    from gankit.engine.checkpoint import save_tensors_atomic
    from gankit.files import write_text_atomic

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    meta = {"format": FORMAT, "names": json.dumps(d.names), "layers": json.dumps(d.layers)}
    save_tensors_atomic({"directions": d.vectors.float().contiguous(), "scales": d.scales.float().contiguous()},
                        path, metadata=meta)
    doc = {"format": FORMAT, **d.info, "layers": d.layers,
           "directions": [{"index": i, "name": n, "scale": round(float(s), 5)}
                          for i, (n, s) in enumerate(zip(d.names, d.scales))]}
    side = path.with_suffix(".json")
    write_text_atomic(side, json.dumps(doc, indent=2))
    return path, side


def load_directions(path: str | Path) -> Directions:
    """Read a file written by :func:`save_directions` (a bare ``direction`` / ``directions`` tensor
    of another tool reads too, with scale 1)."""
    from safetensors import safe_open

    path = Path(path)
    try:
        with safe_open(str(path), framework="pt") as f:
            meta = dict(f.metadata() or {})
            keys = set(f.keys())
            key = next((k for k in ("directions", "direction", "boundary") if k in keys), None)
            if key is None:
                raise GankitError(f"{path} holds no directions (tensors: {', '.join(sorted(keys)) or 'none'})")
            vectors = f.get_tensor(key).float()
            scales = f.get_tensor("scales").float() if "scales" in keys else None
    except GankitError:
        raise
    except Exception as exc:  # noqa: BLE001 - safetensors raises several types for a bad file
        raise GankitError(f"cannot read directions from {path}: {str(exc).splitlines()[0]}") from None
    vectors = vectors.reshape(-1, vectors.shape[-1])
    vectors = vectors / vectors.norm(dim=1, keepdim=True).clamp_min(1e-12)
    names = json.loads(meta["names"]) if "names" in meta else [str(i) for i in range(len(vectors))]
    layers = json.loads(meta["layers"]) if meta.get("layers") else None
    info = {}
    side = path.with_suffix(".json")
    if side.is_file():
        try:
            info = json.loads(side.read_text())
        except (OSError, json.JSONDecodeError):
            info = {}
    return Directions(names, vectors, scales if scales is not None else torch.ones(len(vectors)), layers, info)


def slug(text: str) -> str:
    """A file name for an attribute: ``race=East Asian`` -> ``race-east-asian``."""
    out = "".join(ch.lower() if ch.isalnum() else "-" for ch in text)
    while "--" in out:
        out = out.replace("--", "-")
    return out.strip("-") or "direction"


def random_direction(w_dim: int, seed: int = 0) -> torch.Tensor:
    """A uniformly random unit vector in W (the control for an attribute's direction)."""
    v = torch.randn(w_dim, generator=torch.Generator().manual_seed(seed))
    return v / v.norm()


def cosine(a: torch.Tensor, b: torch.Tensor) -> float:
    return float(torch.nn.functional.cosine_similarity(a.double().flatten(), b.double().flatten(), dim=0))


def angle_degrees(a: torch.Tensor, b: torch.Tensor) -> float:
    return math.degrees(math.acos(max(-1.0, min(1.0, cosine(a, b)))))
