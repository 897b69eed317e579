"""Built-in datasets that work offline: the shipped MNIST test set, two 2-D Gaussian mixtures and
Stacked MNIST (three MNIST digits as the colour channels of one image), two-domain MNIST
(a digit and a transformed digit side by side, for CoGAN) and the shipped FairFace faces (2,000
128x128 faces labelled with age group, gender and race; filter them with ``--where``).

``ring8`` and ``grid25`` are the toy mixtures used across the GAN literature (Metz et al. 2017,
Srivastava et al. 2017) to show mode collapse: a generator that covers only some of the modes is
easy to see and to measure. Their centres and std are public here so the mode-coverage benchmark
scores samples against exactly the distribution the data came from. ``stacked-mnist`` is the
image-space counterpart (1,000 modes, one per digit triple), scored with an MNIST classifier.

``mnist-edges`` and ``mnist-negative`` are the digit tasks A and B of Liu & Tuzel 2016 (CoGAN,
arXiv:1606.07536, §5.1): each item is one image with two domains side by side, shape (C, R, 2R),
left an MNIST digit, right the edge map / negative of a *different* digit (a fixed seeded
derangement, :func:`mnist_pair_partners`). Nothing in the data pairs the halves, so a model that
produces matching pairs has learnt the correspondence itself.
"""

from __future__ import annotations

import gzip
import itertools
from functools import cache, lru_cache
from pathlib import Path

import numpy as np
import torch

from ..errors import GankitError
from .dataset import Dataset
from .images import resize_center_crop_array

MNIST_DIR = Path(__file__).with_name("builtin") / "mnist"
FAIRFACE_DIR = Path(__file__).with_name("builtin") / "fairface"  # made by scripts/make_fairface_builtin.py
FAIRFACE_RESOLUTION = 128
MIXTURE_STD: dict[str, float] = {"ring8": 0.02, "grid25": 0.05}
MIXTURE_SIZE = 100_000
_MIXTURE_SEED = {"ring8": 8, "grid25": 25}
# Stacked MNIST (Metz et al. 2017; VEEGAN, Srivastava et al. 2017; PacGAN, Lin et al. 2018):
# three independently drawn digits as the R, G, B channels, so 10^3 = 1,000 modes. 128,000 images,
# as in PacGAN's Table 2 runs (``num_training_sample`` of fjxmlzn/PacGAN's VEEGAN_experiment/config.py;
# 25,600 is only model.py's default), there drawn from all 70,000 MNIST digits, here from the
# shipped 10,000. The protocol's KL with 25,600 images was 0.27, with 128,000 0.21 (docs/benchmarks.md).
STACKED_MNIST_SIZE = 128_000
STACKED_MNIST_RESOLUTION = 32
_STACKED_MNIST_SEED = 1000
# Two-domain MNIST (CoGAN): the domain-B transform of each pair dataset.
TWO_DOMAIN_BUILTINS: tuple[str, ...] = ("mnist-edges", "mnist-negative")
_PAIRS_SEED = 1606  # arXiv:1606.07536

_DESCRIPTIONS = {
    "mnist": "MNIST test set: 10,000 grey 28x28 handwritten digits, 10 classes (shipped)",
    "ring8": "100,000 2-D points from 8 Gaussians on a circle of radius 2 (std 0.02)",
    "grid25": "100,000 2-D points from 25 Gaussians on the 5x5 grid {-4..4}^2 (std 0.05)",
    "stacked-mnist": "128,000 colour 32x32 images, each channel an MNIST digit: 1,000 classes (digit triples)",
    "mnist-edges": "10,000 two-domain Rx2R images (28x56 native): an MNIST digit | the edge map of another, "
                   "unpaired (CoGAN); labelled by the left digit",
    "mnist-negative": "10,000 two-domain Rx2R images (28x56 native): an MNIST digit | the negative of another, "
                      "unpaired (CoGAN); labelled by the left digit",
    "fairface": "FairFace: 2,000 aligned colour faces, 128x128 native, labelled age, gender, race "
                "(filter with --where \"race=East Asian\"); CC BY 4.0, Kärkkäinen & Joo 2021 (shipped)",
}
BUILTIN_NAMES: tuple[str, ...] = tuple(_DESCRIPTIONS)


def describe_builtins() -> dict[str, str]:
    """Built-in dataset name -> one-line description (for ``gankit data list`` and errors)."""
    return dict(_DESCRIPTIONS)


def mixture_centers(name: str) -> np.ndarray:
    """Mode centres ``(K, 2)`` float64 of ``ring8`` or ``grid25``; index = label."""
    if name == "ring8":
        angles = 2 * np.pi * np.arange(8) / 8
        return 2.0 * np.stack([np.cos(angles), np.sin(angles)], axis=1)
    if name == "grid25":
        return np.array(list(itertools.product(range(-4, 5, 2), repeat=2)), dtype=np.float64)
    raise ValueError(f"not a Gaussian mixture: {name!r} (known: {', '.join(MIXTURE_STD)})")


@cache
def _mixture(name: str) -> tuple[np.ndarray, np.ndarray]:
    # RandomState (not default_rng) because NumPy guarantees its stream never changes, so the
    # points are identical on every machine and NumPy version.
    rng = np.random.RandomState(_MIXTURE_SEED[name])
    centers = mixture_centers(name)
    labels = rng.randint(0, len(centers), size=MIXTURE_SIZE).astype(np.int64)
    points = centers[labels] + rng.normal(0.0, MIXTURE_STD[name], size=(MIXTURE_SIZE, 2))
    return _readonly(points.astype(np.float32)), _readonly(labels)


def stacked_mnist_indices(n: int = STACKED_MNIST_SIZE) -> np.ndarray:
    """Which MNIST test digits make up each ``stacked-mnist`` image: ``(n, 3)`` int64 indices
    into the 10,000 digits, channel order R, G, B. Fixed seed: the same on every machine."""
    rng = np.random.RandomState(_STACKED_MNIST_SEED)
    return rng.randint(0, 10_000, size=(n, 3)).astype(np.int64)


@lru_cache(maxsize=2)
def _stacked_mnist(resolution: int) -> tuple[np.ndarray, np.ndarray]:
    """Images ``(N, 3, R, R)`` uint8 and labels ``100*d0 + 10*d1 + d2`` (0..999)."""
    digits, digit_labels = _mnist(resolution)
    idx = stacked_mnist_indices()
    images = digits[idx]  # (N, 3, R, R): fancy indexing copies
    triple = digit_labels[idx]
    labels = triple[:, 0] * 100 + triple[:, 1] * 10 + triple[:, 2]
    return _readonly(images), _readonly(labels.astype(np.int64))


def mnist_pair_partners(n: int = 10_000) -> np.ndarray:
    """``partner[i]``: the MNIST digit whose transform fills the right half of two-domain item
    ``i`` (its left half is digit ``i``). A fixed seeded derangement, one cycle through a shuffled
    order, so ``partner[i] != i`` for every item and every digit appears once on each side."""
    order = np.random.RandomState(_PAIRS_SEED).permutation(n)
    partner = np.empty(n, dtype=np.int64)
    partner[order] = np.roll(order, -1)
    return partner


def edge_map(digits: np.ndarray) -> np.ndarray:
    """Edges of ``(..., H, W)`` uint8 digits: a 3x3 grey dilation minus the digit, the digit's
    outer contour (a hollow digit, bright on black), same shape and dtype."""
    x = digits.astype(np.int16)
    pad = [(0, 0)] * (x.ndim - 2) + [(1, 1), (1, 1)]
    p = np.pad(x, pad)
    h, w = x.shape[-2:]
    dilated = np.max([p[..., i:i + h, j:j + w] for i in range(3) for j in range(3)], axis=0)
    return (dilated - x).clip(0, 255).astype(np.uint8)


def negative(digits: np.ndarray) -> np.ndarray:
    """The negative 255 - x of uint8 digits (dark strokes on white)."""
    return 255 - digits


_PAIR_TRANSFORMS = {"mnist-edges": edge_map, "mnist-negative": negative}


@lru_cache(maxsize=4)
def _mnist_pairs(name: str, resolution: int) -> tuple[np.ndarray, np.ndarray]:
    """Two-domain images ``(N, R, 2R)`` uint8: digit i | transform(digit partner[i]); labels are
    the left digits' classes. The transform runs on the digits at ``resolution``, so edges stay
    one dilation thick at any size."""
    digits, labels = _mnist(resolution)
    right = _PAIR_TRANSFORMS[name](digits[mnist_pair_partners(len(digits))])
    return _readonly(np.concatenate([digits, right], axis=2)), labels


def _read_idx(path: Path, magic: int) -> np.ndarray:
    """Parse a gzip IDX file (big-endian int32 header: magic, then one int per dimension)."""
    raw = gzip.decompress(path.read_bytes())
    ndim = magic & 0xFF
    header = np.frombuffer(raw, dtype=">i4", count=1 + ndim)
    if int(header[0]) != magic:
        raise ValueError(f"{path.name}: bad IDX magic {int(header[0])}, expected {magic}")
    dims = tuple(int(d) for d in header[1:])
    return np.frombuffer(raw, dtype=np.uint8, offset=4 * (1 + ndim)).reshape(dims)


@cache
def _mnist(resolution: int) -> tuple[np.ndarray, np.ndarray]:
    """Digits ``(N, R, R)`` uint8 at ``resolution`` and labels; memoised, decoding is ~0.1 s."""
    images = _read_idx(MNIST_DIR / "t10k-images-idx3-ubyte.gz", 2051)
    labels = _read_idx(MNIST_DIR / "t10k-labels-idx1-ubyte.gz", 2049).astype(np.int64)
    if resolution != images.shape[1]:
        images = np.stack([resize_center_crop_array(im, resolution) for im in images])
    return _readonly(images), _readonly(labels)


def _readonly(a: np.ndarray) -> np.ndarray:
    a.flags.writeable = False
    return a


def load_fairface(*, channels: int | None, resolution: int | None, max_images: int | None,
                  where=None, cache_dir=None) -> Dataset:
    """The shipped FairFace faces (RGB, 128x128 native) with their labels as ``attributes``
    (``age=20-29``, ``gender=Female``, ``race=East Asian``, ...), filtered by ``where``. Decoded
    like a user's labelled folder, so the disk cache applies."""
    from .attributes import load_attribute_dataset

    return load_attribute_dataset(FAIRFACE_DIR, FAIRFACE_DIR / "labels.csv", channels=channels,
                                  resolution=resolution or FAIRFACE_RESOLUTION, max_images=max_images,
                                  cache_dir=cache_dir, where=where, name="fairface")


def load_builtin(name: str, *, channels: int | None, resolution: int | None,
                 max_images: int | None) -> Dataset:
    """Load a built-in dataset. Tensors are fresh copies, so callers may modify them in place.

    ``channels`` and ``resolution`` do not apply to the point sets and are ignored there.
    """
    n = max_images
    if name == "fairface":
        return load_fairface(channels=channels, resolution=resolution, max_images=max_images)
    if name == "mnist":
        images, labels = _mnist(resolution or 28)
        data = torch.from_numpy(images[:n].copy()).unsqueeze(1)
        if channels == 3:
            data = data.repeat(1, 3, 1, 1)
        return Dataset(data=data, labels=torch.from_numpy(labels[:n].copy()),
                       classes=[str(d) for d in range(10)], kind="image", source=name)
    if name == "stacked-mnist":
        if channels == 1:
            raise GankitError("stacked-mnist has 3 channels (one digit each); drop channels=1")
        images, labels = _stacked_mnist(resolution or STACKED_MNIST_RESOLUTION)
        return Dataset(data=torch.from_numpy(images[:n].copy()), labels=torch.from_numpy(labels[:n].copy()),
                       classes=[f"{i:03d}" for i in range(1000)], kind="image", source=name)
    if name in TWO_DOMAIN_BUILTINS:
        images, labels = _mnist_pairs(name, resolution or 28)
        data = torch.from_numpy(images[:n].copy()).unsqueeze(1)
        if channels == 3:
            data = data.repeat(1, 3, 1, 1)
        return Dataset(data=data, labels=torch.from_numpy(labels[:n].copy()),
                       classes=[str(d) for d in range(10)], kind="image", source=name)
    points, labels = _mixture(name)
    k = len(mixture_centers(name))
    return Dataset(data=torch.from_numpy(points[:n].copy()),
                   labels=torch.from_numpy(labels[:n].copy()),
                   classes=[f"mode{i}" for i in range(k)], kind="points", source=name)
