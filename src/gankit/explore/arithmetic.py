"""Vector arithmetic on latents (Radford, Metz & Chintala 2015, "Unsupervised Representation
Learning with Deep Convolutional GANs", arXiv:1511.06434, §6.3 and Fig. 7).

Single latents are too noisy for arithmetic, so each term is the *average* latent of a few
exemplars (the paper used three): ``mean(smiling woman) - mean(neutral woman) + mean(neutral man)``
gave a smiling man, and adding uniform noise of scale 0.25 to the result showed the effect is
stable. A term is ``(sign, seeds)``: its exemplars are the samples of those seeds (the z of
``gankit sample --seed S --n 1``). Families with a mapping network (StyleGAN2) are averaged in W,
the space their styles are made from; the others in z.

The exemplars can also be chosen by the shipped face predictor
(:func:`gankit.metrics.face_classifier.predict_attributes`): :func:`choose_exemplars` samples a
pool of seeds and keeps, per ``--where``-style condition (``gender=Male,age=50-59|60-69``), the
most confident matches.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch
from torch import Tensor

from gankit.errors import GankitError

from .styles import seed_latents

Term = tuple[int, list[int]]  # (+1 | -1, exemplar seeds)
SIGN_TEXT = {1: "+", -1: "-"}


@dataclass
class Arithmetic:
    """What :func:`latent_arithmetic` found. Latents are ``(N, D)`` z, or ``(N, num_ws, w_dim)`` ws."""

    space: str  # "z" | "w"
    terms: list[Term]
    means: Tensor  # (T, ...): the average latent of each term
    result: Tensor  # (1, ...): sum of sign * mean, in the order given
    variations: Tensor  # (V, ...): the result plus uniform noise
    term_images: list[Tensor] = field(default_factory=list)  # per term (k + 1, C, H, W): exemplars, average
    result_images: Tensor | None = None  # (1 + V, C, H, W): the result, then its variations

    def figure(self) -> tuple[Tensor, int]:
        """``(images, nrow)`` of Fig. 7's layout: one row per term (a sign cell, its exemplars, its
        average in the last column), then ``=``, the variations and the result (last column)."""
        if self.result_images is None:
            raise GankitError("no images to lay out: latent_arithmetic ran with images=False")
        sample = self.result_images[0]
        width = max(max(len(s) for _, s in self.terms), self.variations.shape[0])
        blank = torch.ones_like(sample)
        rows = []
        for (sign, seeds), images in zip(self.terms, self.term_images):
            pad = [blank] * (width - len(seeds))
            rows += [sign_tile(SIGN_TEXT[sign], sample), *images[:-1], *pad, images[-1]]
        pad = [blank] * (width - self.variations.shape[0])
        rows += [sign_tile("=", sample), *self.result_images[1:], *pad, self.result_images[0]]
        return torch.stack(rows), width + 2


def sign_tile(text: str, like: Tensor) -> Tensor:
    """A white cell of ``like``'s shape with a dark ``+``, ``-`` or ``=`` drawn in it."""
    tile = torch.ones_like(like)
    size = like.shape[-1]
    half, bar = max(1, size // 4), max(1, size // 12)
    mid = size // 2
    span = slice(mid - half, mid + half)
    if text in ("+", "-"):
        tile[:, mid - bar:mid + bar, span] = -1
    if text == "+":
        tile[:, span, mid - bar:mid + bar] = -1
    if text == "=":
        gap = max(2, size // 8)
        tile[:, mid - gap - bar:mid - gap + bar, span] = -1
        tile[:, mid + gap - bar:mid + gap + bar, span] = -1
    return tile


def check_model(model, cond: int | None) -> str:
    """The space arithmetic works in for ``model`` ("z" or "w"); GankitError where it makes no sense."""
    if model.family_cls.translates:
        raise GankitError(f"{model.family} translates images to images and has no latent space; latent "
                          f"arithmetic needs a noise-to-image family (dcgan, wgan, stylegan2, ...)")
    if model.config.channels == 0:
        raise GankitError(f"{model.family} here makes 2-D points, not images: latent arithmetic needs an image model")
    if model.family_cls.single_image:
        raise GankitError(f"{model.family} draws from per-scale noise maps, not from one z: latent arithmetic needs a "
                          f"z-to-image family (dcgan, wgan, stylegan2, ...)")
    if model.family_cls.takes_text:
        raise GankitError(f"{model.family} draws each picture from a caption as well as z, and arithmetic cannot hold "
                          f"a caption fixed across its terms: use a z-to-image family (dcgan, wgan, stylegan2, ...)")
    if model.num_classes and cond is None:
        raise GankitError(f"{model.family} is class-conditional: hold the class fixed with --class "
                          f"(0-{model.num_classes - 1}); averaging latents across classes mixes two inputs")
    if not model.num_classes and cond is not None:
        raise GankitError(f"{model.family} is not conditional; drop --class")
    if cond is not None and not 0 <= cond < model.num_classes:
        raise GankitError(f"--class must be in 0-{model.num_classes - 1}, got {cond}")
    return "w" if model.family_cls.style_based else "z"


def check_terms(terms: list[Term]) -> list[Term]:
    if not terms:
        raise GankitError("give at least one term: --plus SEEDS (and --minus SEEDS ...), e.g. --plus 3,17,42")
    out = []
    for sign, seeds in terms:
        if sign not in (1, -1):
            raise GankitError(f"a term's sign is +1 or -1, got {sign}")
        if not seeds:
            raise GankitError("every term needs at least one exemplar seed")
        out.append((int(sign), [int(s) for s in seeds]))
    return out


@torch.no_grad()
def encode(model, seeds: list[int], space: str) -> Tensor:
    """The latents of ``seeds`` in ``space``: z (N, D), or ws (N, num_ws, w_dim) from the mapping."""
    z = seed_latents(model, seeds)
    return model.mapping(z).float().cpu() if space == "w" else z


@torch.no_grad()
def render(model, latents: Tensor, space: str, cond: int | None = None) -> Tensor:
    """Images in [-1, 1] (CPU) of z or ws latents (StyleGAN2 with its stored noise maps)."""
    if space == "w":
        return model.synthesis(latents).clamp(-1, 1).float().cpu()
    return model.generate(latents, cond=cond)


@torch.no_grad()
def noise_scale(model, space: str, *, n: int = 1024) -> Tensor:
    """Per-dimension spread of the latents, the unit of the perturbations: 1 for z ~ N(0, I); in W
    the standard deviation of each coordinate of w over ``n`` mapped samples (seeded)."""
    if space == "z":
        return torch.ones(model.latent_dim)
    return model.mapping(model.latents(n, seed=0))[:, 0].float().std(dim=0).cpu()


@torch.no_grad()
def latent_arithmetic(model, terms: list[Term], *, variations: int = 4, noise: float = 0.25, seed: int = 0,
                      cond: int | None = None, images: bool = True) -> Arithmetic:
    """Average each term's exemplar latents, combine them with their signs, and render.

    ``terms``: ``[(+1, [3, 17, 42]), (-1, [5, 8, 9]), (+1, [...])]``, combined in that order.
    ``variations``: extra results with uniform noise U(-noise, noise) per coordinate added (the
    paper's 0.25), in units of the latent's spread (:func:`noise_scale`); in W one noise vector
    per variation is added to every layer's w. ``cond``: the class, held fixed (conditional
    families). ``images=False`` skips rendering (latents only).
    """
    space = check_model(model, cond)
    terms = check_terms(terms)
    if variations < 0 or not noise >= 0:
        raise GankitError(f"need variations >= 0 and noise >= 0, got {variations} and {noise}")
    exemplars = [encode(model, seeds, space) for _, seeds in terms]
    means = torch.stack([e.mean(dim=0) for e in exemplars])
    signs = torch.tensor([float(s) for s, _ in terms]).view(-1, *[1] * (means.dim() - 1))
    result = (signs * means).sum(dim=0, keepdim=True)
    gen = torch.Generator().manual_seed(seed)
    scale = noise_scale(model, space) if variations and noise else torch.zeros(means.shape[-1])
    u = (torch.rand(variations, means.shape[-1], generator=gen) * 2 - 1) * noise * scale
    if space == "w":
        u = u[:, None, :]
    out = Arithmetic(space, terms, means, result, result + u)
    if images:
        out.term_images = [render(model, torch.cat([e, m[None]]), space, cond) for e, m in zip(exemplars, means)]
        out.result_images = render(model, torch.cat([out.result, out.variations]), space, cond)
    return out


# ---- exemplars chosen by the face predictor --------------------------------------------------------
@torch.no_grad()
def face_predictions(model, seeds: list[int], *, cond: int | None = None, batch_size: int = 250) -> dict[str, Tensor]:
    """The face predictor's probabilities ``{"age": (N, 9), "gender": (N, 2), "race": (N, 7)}`` for
    the samples of ``seeds`` (generated and classified in batches)."""
    from gankit.metrics.face_classifier import predict_attributes

    space = check_model(model, cond)
    parts: dict[str, list[Tensor]] = {}
    for i in range(0, len(seeds), batch_size):
        chunk = seeds[i:i + batch_size]
        probs = predict_attributes(render(model, encode(model, chunk, space), space, cond))
        for k, v in probs.items():
            parts.setdefault(k, []).append(v)
    return {k: torch.cat(v) for k, v in parts.items()}


def resolve_condition(where: str):
    """The conditions of a ``--where``-style expression over the predictor's heads, spelt as its
    labels are; GankitError naming the known heads or values for an unknown one."""
    from gankit.data.where import resolve_where
    from gankit.metrics.face_classifier import ATTRIBUTE_NAMES

    try:
        return resolve_where(ATTRIBUTE_NAMES, where, source="the face predictor")
    except GankitError as exc:
        raise GankitError(str(exc).replace("--where: ", "", 1)) from None


def condition_scores(probs: dict[str, Tensor], where: str) -> tuple[np.ndarray, np.ndarray]:
    """For a ``--where`` expression over the predictor's heads (``gender=Male,age=50-59|60-69``):
    ``(matches, confidence)`` per sample. A sample matches when each head's most likely value
    satisfies the condition; its confidence is the product over conditions of the probability the
    predictor puts on the allowed values (one minus it for ``!=``)."""
    from gankit.data.where import where_mask
    from gankit.metrics.face_classifier import ATTRIBUTE_NAMES, HEADS

    conditions = resolve_condition(where)
    table = torch.cat([probs[h] for h in HEADS], dim=1).numpy()
    onehot = np.concatenate([np.eye(len(v), dtype=np.float32)[probs[h].argmax(1).numpy()] for h, v in HEADS.items()],
                            axis=1)
    matches = where_mask(ATTRIBUTE_NAMES, onehot, conditions)
    confidence = np.ones(len(table))
    for c in conditions:
        mass = sum(table[:, ATTRIBUTE_NAMES.index(f"{c.column}={v}")] for v in c.values)
        confidence *= 1 - mass if c.negate else mass
    return matches, confidence


def is_condition(text: str) -> bool:
    """Whether a term is an attribute condition (``gender=Male``) rather than seeds (``3,17,42``)."""
    return "=" in text


def choose_exemplars(model, wheres: list[str], *, k: int = 3, pool: int = 2000, cond: int | None = None,
                     probs: dict[str, Tensor] | None = None) -> list[dict]:
    """For each condition, the ``k`` seeds of ``range(pool)`` whose samples the face predictor
    finds most confidently matching, no seed used twice. Returns per condition ``{"where",
    "seeds", "confidence", "matches" (count in the pool), "pool"}``; GankitError if none matches.
    ``probs``: predictions of ``range(pool)`` already made (:func:`face_predictions`; then
    ``model`` may be None)."""
    if k < 1 or pool < 1:
        raise GankitError(f"need k >= 1 exemplars from a pool >= 1, got {k} and {pool}")
    if model is not None:
        check_model(model, cond)
    for where in wheres:  # fail on a typo before sampling the pool
        resolve_condition(where)
    if probs is None:
        probs = face_predictions(model, list(range(pool)), cond=cond)
    used: set[int] = set()
    chosen = []
    for where in wheres:
        matches, confidence = condition_scores(probs, where)
        order = [int(i) for i in np.argsort(-confidence, kind="stable") if matches[i] and int(i) not in used]
        if not order:
            raise GankitError(f"no sample of seeds 0-{pool - 1} is predicted {where}; try a larger --pool "
                              f"or a looser condition")
        seeds = order[:k]
        used.update(seeds)
        chosen.append({"where": where, "seeds": seeds, "confidence": [round(float(confidence[s]), 4) for s in seeds],
                       "matches": int(matches.sum()), "pool": pool})
    return chosen
