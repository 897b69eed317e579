"""Captioned images for text-to-image GANs (StackGAN, Zhang et al. 2017, arXiv:1612.03242).

StackGAN conditions a generator on a sentence embedding. Its datasets (CUB birds, Oxford
flowers, COCO) carry several free-text captions per image, and how well a picture matches its
caption is judged by people or by a learnt image-text model (R-precision, Xu et al. 2018,
AttnGAN, arXiv:1711.10485). Two sources here:

* ``mnist-captions`` (:func:`render_mnist_captions`): the shipped MNIST digits drawn in colour
  with four attributes whose ground truth is known (digit, stroke colour, background colour,
  size) and one templated caption each, so caption fidelity can be read back from the pixels
  (:mod:`gankit.metrics.captions`). A fixed set of (digit, stroke, background) combinations
  (:data:`HELD_OUT`) never appears in the training split and makes up the test split: a model
  that draws them has composed attributes it only saw apart. The splits also draw different
  MNIST images (the test split the 2,000 the shipped digit classifier was not trained on).
* a user's folder of images with ``captions.csv`` (:func:`read_caption_folder`).

:class:`Vocabulary` turns captions into token ids for a small text encoder.
"""

from __future__ import annotations

import csv
import io
import json
import os
import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from ..errors import GankitError

# ----------------------------------------------------------------------------- mnist-captions

CAPTION_ATTRIBUTES: tuple[str, ...] = ("digit", "stroke", "background", "size")
# Stroke colours: saturated or light, at least 0.65 apart from each other in RGB ([0, 1] units,
# Euclidean), so a blurred or slightly off-colour stroke still has one clear nearest colour.
STROKE_COLOURS: dict[str, tuple[int, int, int]] = {
    "red": (255, 64, 64),
    "green": (40, 210, 60),
    "blue": (70, 130, 255),
    "yellow": (255, 230, 40),
    "white": (255, 255, 255),
    "magenta": (240, 70, 240),
}
# Backgrounds: dark, so every stroke is brighter. Each drawn pair is at least 0.55 apart in RGB
# and the stroke's luma at least 0.19 above the background's (red on grey is the closest), so
# every digit stays readable in colour and in grey. "blue" is a dark navy; a blue stroke on it is
# the one pair not drawn (the same colour name would make the caption ambiguous).
BACKGROUND_COLOURS: dict[str, tuple[int, int, int]] = {
    "black": (0, 0, 0),
    "grey": (72, 72, 72),
    "blue": (20, 30, 120),
    "brown": (110, 60, 20),
}
SIZES: tuple[str, ...] = ("small", "large")
SMALL_SCALE = 0.55  # a small digit is the MNIST frame scaled to 55 % of the image, centred
DIGIT_WORDS: tuple[str, ...] = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
SIZE_WORDS: dict[str, tuple[str, ...]] = {"small": ("small", "little"), "large": ("large", "big")}
# Several phrasings, so a text encoder has to find the attribute words rather than positions.
CAPTION_TEMPLATES: tuple[str, ...] = (
    "a {size} {stroke} {digit} on a {background} background",
    "a {size} {stroke} {digit} on {background}",
    "the digit {digit}, {size} and {stroke}, on a {background} background",
    "{stroke} number {digit}, {size}, on {background}",
    "a {background} background with a {size} {stroke} {digit}",
    "a {size} {digit} in {stroke} on a {background} background",
)
# (digit, stroke, background) combinations of the test split, absent from the training split:
# 20 of the 230 drawable combinations (8.7 %), two per digit, each (stroke, background) pair held
# out for one digit only, every stroke colour and background held out 2-6 times. Made by taking
# the 23 drawable (stroke, background) pairs in the order of the palettes and holding out pair
# (5 k) mod 23 for k = 2d and 2d + 1 (a stride through all pairs); written out so it never changes.
# In training each digit still appears with every stroke colour and every background, and each
# held-out pair with the nine other digits.
HELD_OUT: tuple[tuple[int, str, str], ...] = (
    (0, "red", "black"), (0, "green", "grey"),
    (1, "blue", "brown"), (1, "white", "black"),
    (2, "magenta", "grey"), (2, "red", "blue"),
    (3, "green", "brown"), (3, "yellow", "grey"),
    (4, "white", "blue"), (4, "magenta", "brown"),
    (5, "green", "black"), (5, "blue", "grey"),
    (6, "yellow", "brown"), (6, "magenta", "black"),
    (7, "red", "grey"), (7, "green", "blue"),
    (8, "yellow", "black"), (8, "white", "grey"),
    (9, "magenta", "blue"), (9, "red", "brown"),
)
MNIST_CAPTIONS_SOURCE = "mnist-captions"
SPLITS: tuple[str, ...] = ("train", "test")


def allowed_pair(stroke: str, background: str) -> bool:
    """Whether a stroke colour is drawn on a background: every pair except the same colour name."""
    return stroke in STROKE_COLOURS and background in BACKGROUND_COLOURS and stroke != background


def colour_pairs() -> list[tuple[int, int]]:
    """The drawable (stroke index, background index) pairs in palette order (23 of 6 x 4)."""
    strokes, backgrounds = list(STROKE_COLOURS), list(BACKGROUND_COLOURS)
    return [(i, j) for i, s in enumerate(strokes) for j, b in enumerate(backgrounds) if allowed_pair(s, b)]


@dataclass
class CaptionedDigits:
    """Rendered ``mnist-captions`` items.

    ``images``: uint8 ``(N, 3, R, R)`` RGB; ``attributes``: int64 ``(N, 4)``, the columns of
    :data:`CAPTION_ATTRIBUTES` (digit 0-9, index into :data:`STROKE_COLOURS`, index into
    :data:`BACKGROUND_COLOURS`, index into :data:`SIZES`); ``captions``: one sentence each;
    ``mnist_index``: which of the 10,000 shipped MNIST digits each item draws.
    """

    images: torch.Tensor
    attributes: torch.Tensor
    captions: list[str]
    mnist_index: torch.Tensor
    split: str = "train"
    source: str = MNIST_CAPTIONS_SOURCE

    def __len__(self) -> int:
        return int(self.images.shape[0])

    @property
    def labels(self) -> torch.Tensor:
        """The digit classes ``(N,)``."""
        return self.attributes[:, 0]


def _check_held_out(held_out: Iterable[Sequence]) -> set[tuple[int, int, int]]:
    strokes, backgrounds = list(STROKE_COLOURS), list(BACKGROUND_COLOURS)
    out = set()
    for item in held_out:
        try:
            digit, stroke, background = item
        except (TypeError, ValueError):
            raise GankitError(f"held_out: {item!r} is not a (digit, stroke, background) triple") from None
        if not isinstance(digit, (int, np.integer)) or not 0 <= digit <= 9:
            raise GankitError(f"held_out: digit {digit!r} is not 0-9")
        if not allowed_pair(stroke, background):
            raise GankitError(f"held_out: {stroke!r} on {background!r} is not drawn (strokes: {', '.join(strokes)}; "
                              f"backgrounds: {', '.join(backgrounds)}; not the same colour name)")
        out.add((int(digit), strokes.index(stroke), backgrounds.index(background)))
    return out


def _split_pairs(split: str, held: set[tuple[int, int, int]]) -> list[list[tuple[int, int]]]:
    """For each digit, the (stroke, background) pairs the split draws it with."""
    pairs = colour_pairs()
    if split == "test":
        return [[p for p in pairs if (d, *p) in held] for d in range(10)]
    return [[p for p in pairs if (d, *p) not in held] for d in range(10)]


def _digit_pool(split: str) -> np.ndarray:
    """MNIST indices a split draws its digits from: the test split uses the 2,000 digits the
    shipped classifier never trained on (:func:`~gankit.metrics.mnist_classifier.held_out_split`),
    the training split the other 8,000, so the fidelity of real test images is an honest reading."""
    from ..metrics.mnist_classifier import held_out_split

    train, test = held_out_split()
    return np.sort((test if split == "test" else train).numpy())


def render_digits(digit_images: np.ndarray | torch.Tensor, strokes: torch.Tensor, backgrounds: torch.Tensor,
                  sizes: torch.Tensor, resolution: int) -> torch.Tensor:
    """Draw MNIST digits ``(N, 28, 28)`` uint8 (white on black) as uint8 RGB ``(N, 3, R, R)`` with
    the stroke, background and size indices ``(N,)`` of :data:`STROKE_COLOURS`,
    :data:`BACKGROUND_COLOURS` and :data:`SIZES`.

    A large digit is the 28x28 MNIST frame resized to R (bilinear, antialiased when shrinking);
    a small one is the frame resized to ``round(0.55 R)`` and centred. The ink is scaled so each
    digit's strongest pixel is full ink (downscaled thin strokes would otherwise never show the
    pure stroke colour) and blends the background into the stroke colour:
    ``pixel = bg + ink (stroke - bg)``.
    """
    strokes, backgrounds, sizes = (torch.as_tensor(v).long().reshape(-1) for v in (strokes, backgrounds, sizes))
    d = torch.as_tensor(np.asarray(digit_images)).float()[:, None] / 255.0
    small_side = max(4, round(SMALL_SCALE * resolution))
    alpha = torch.zeros((len(d), 1, resolution, resolution))
    small = sizes == SIZES.index("small")
    if (~small).any():
        alpha[~small] = _resize(d[~small], resolution)
    if small.any():
        lo = (resolution - small_side) // 2
        alpha[small, :, lo:lo + small_side, lo:lo + small_side] = _resize(d[small], small_side)
    peak = alpha.amax((1, 2, 3), keepdim=True)
    alpha = torch.where(peak > 0, alpha / peak.clamp_min(1e-6), alpha).clamp_(0, 1)
    s = torch.tensor(list(STROKE_COLOURS.values()), dtype=torch.float32)[strokes][:, :, None, None] / 255
    b = torch.tensor(list(BACKGROUND_COLOURS.values()), dtype=torch.float32)[backgrounds][:, :, None, None] / 255
    return (b + alpha * (s - b)).mul_(255).round_().clamp_(0, 255).to(torch.uint8)


def _resize(x: torch.Tensor, side: int) -> torch.Tensor:
    if x.shape[-1] == side:
        return x
    return F.interpolate(x, size=(side, side), mode="bilinear", align_corners=False,
                         antialias=side < x.shape[-1]).clamp_(0, 1)


def caption_for(digit: int, stroke: int, background: int, size: int, rng: np.random.RandomState) -> str:
    """One caption of an item: a random template of :data:`CAPTION_TEMPLATES`, the digit as a
    word or a numeral and the size as either of its words (:data:`SIZE_WORDS`), drawn from ``rng``."""
    template = CAPTION_TEMPLATES[rng.randint(len(CAPTION_TEMPLATES))]
    digit_text = DIGIT_WORDS[digit] if rng.randint(2) else str(digit)
    size_words = SIZE_WORDS[SIZES[size]]
    return template.format(digit=digit_text, size=size_words[rng.randint(len(size_words))],
                           stroke=list(STROKE_COLOURS)[stroke], background=list(BACKGROUND_COLOURS)[background])


def render_mnist_captions(n: int, resolution: int = 32, seed: int = 0,
                          held_out: Iterable[Sequence] = HELD_OUT, split: str = "train") -> CaptionedDigits:
    """``n`` captioned colour digits of ``split`` ("train" or "test"), the same for a seed.

    Each item takes an MNIST digit of the split's pool (:func:`_digit_pool`; in a seeded
    shuffled order, cycling when ``n`` exceeds the pool), a (stroke, background) pair drawn
    uniformly from those the split allows for that digit (training: all drawable pairs except the
    ``held_out`` combinations; test: only those), a size (small or large, a fair coin) and one
    caption (:func:`caption_for`). ``held_out``: (digit, stroke name, background name) triples,
    default :data:`HELD_OUT`; a digit with no held-out combination does not occur in the test split.
    """
    if split not in SPLITS:
        raise GankitError(f"split must be 'train' or 'test', got {split!r}")
    if not isinstance(n, (int, np.integer)) or n < 1:
        raise GankitError(f"n must be a positive number of images, got {n!r}")
    if not isinstance(resolution, (int, np.integer)) or resolution < 16:
        raise GankitError(f"mnist-captions needs a resolution of at least 16 pixels, got {resolution!r}")
    pairs = _split_pairs(split, _check_held_out(held_out))
    pool = _digit_pool(split)
    from .builtin import _mnist

    labels = _mnist(28)[1]
    pool = pool[np.asarray([len(pairs[labels[i]]) > 0 for i in pool], dtype=bool)]
    if len(pool) == 0:
        raise GankitError(f"held_out leaves no combination for the {split} split")
    rng = np.random.RandomState(seed)
    order = np.concatenate([rng.permutation(pool) for _ in range(-(-n // len(pool)))])[:n]
    attrs = np.zeros((n, len(CAPTION_ATTRIBUTES)), dtype=np.int64)
    captions = []
    for k, index in enumerate(order):
        digit = int(labels[index])
        stroke, background = pairs[digit][rng.randint(len(pairs[digit]))]
        size = rng.randint(len(SIZES))
        attrs[k] = (digit, stroke, background, size)
        captions.append(caption_for(digit, stroke, background, size, rng))
    a = torch.from_numpy(attrs)
    images = _render(order, a, resolution)
    return CaptionedDigits(images=images, attributes=a, captions=captions,
                           mnist_index=torch.from_numpy(order.astype(np.int64)), split=split)


def _render(order: np.ndarray, a: torch.Tensor, resolution: int) -> torch.Tensor:
    from .builtin import _mnist

    out = torch.empty((len(order), 3, resolution, resolution), dtype=torch.uint8)
    digits = _mnist(28)[0]
    for start in range(0, len(order), 1000):  # bounded float memory at large resolutions
        part = slice(start, start + 1000)
        out[part] = render_digits(digits[order[part]], a[part, 1], a[part, 2], a[part, 3], resolution)
    return out


def attribute_words(attributes: Sequence[int]) -> dict[str, str]:
    """Names of one item's attributes: ``{"digit": "7", "stroke": "red", "background": "blue",
    "size": "large"}``."""
    digit, stroke, background, size = (int(v) for v in attributes)
    return {"digit": str(digit), "stroke": list(STROKE_COLOURS)[stroke],
            "background": list(BACKGROUND_COLOURS)[background], "size": SIZES[size]}


# ----------------------------------------------------------------------------- caption folders

CAPTIONS_FILE = "captions.csv"
CAPTIONS_HEADER = ("file", "caption")


def _caption_fail(path: Path, line: int | None, message: str) -> GankitError:
    return GankitError(f"{path}:{line}: {message}" if line else f"{path}: {message}")


def read_caption_folder(folder: str | os.PathLike) -> tuple[list[Path], list[list[str]]]:
    """A user's captioned images: ``folder`` holds the images and ``captions.csv``.

    ``captions.csv`` (UTF-8) starts with the header ``file,caption``; then one row per caption,
    the file name relative to the folder (sub-folders with ``/``), several rows for one file
    giving it several captions (StackGAN's datasets have ten per image). A caption may be quoted
    as CSV quotes (``"a bird, flying"``, also after a space, and over several lines); an unquoted
    one keeps everything after the first comma, commas included. Blank lines are skipped, spaces
    around the file name and the caption removed.

    Returns the image paths, in the order each first appears in the file, and for each its list
    of captions in file order. Images in the folder that ``captions.csv`` does not name are
    ignored. Files are not opened here: unreadable images are left to the image decoder.

    Raises GankitError (one line with the file and line number) for a missing folder or
    ``captions.csv``, a first line other than the header, a row without a caption, an empty
    caption or file name, or a row naming an image that is not in the folder.
    """
    root = Path(folder).expanduser()
    if not root.is_dir():
        raise GankitError(f"caption folder not found: {root.absolute()}")
    path = root / CAPTIONS_FILE
    if not path.is_file():
        raise GankitError(f"{root}: no {CAPTIONS_FILE} (a header line 'file,caption', then one row per caption)")
    from gankit.files import read_user_text

    text = read_user_text(path, "save it as a UTF-8 CSV")
    captions: dict[str, list[str]] = {}
    reader = csv.reader(io.StringIO(text, newline=""))
    header_seen = False
    end = 0
    for cells in reader:
        start, end = end + 1, reader.line_num  # a quoted caption may span lines: report its first
        if not any(c.strip() for c in cells):
            continue
        if not header_seen:
            if tuple(c.strip().lower() for c in cells) != CAPTIONS_HEADER:
                raise _caption_fail(path, start, f"the first line must be the header 'file,caption', "
                                                 f"got {','.join(cells).strip()[:60]!r}")
            header_seen = True
            continue
        _add_caption(root, path, start, cells, captions)
    if not header_seen:
        raise _caption_fail(path, None, "empty file; expected the header 'file,caption' and one row per caption")
    if not captions:
        raise _caption_fail(path, None, "no captions after the header")
    return [root / name for name in captions], list(captions.values())


def _add_caption(root: Path, path: Path, line: int, cells: list[str], captions: dict[str, list[str]]) -> None:
    name = cells[0].strip().replace("\\", "/")
    if len(cells) < 2:
        raise _caption_fail(path, line, f"no caption for {name[:60]!r} (expected 'file,caption')")
    while name.startswith("./"):
        name = name[2:]
    caption = ",".join(cells[1:]).strip()
    if len(caption) >= 2 and caption[0] == caption[-1] == '"':  # quoted after a space: `a.png, "x, y"`
        caption = caption[1:-1].replace('""', '"').strip()
    if not name:
        raise _caption_fail(path, line, "empty file name")
    if not caption:
        raise _caption_fail(path, line, f"empty caption for {name}")
    if name not in captions:
        image = root / name
        if not image.is_file():
            what = "is a folder, not an image" if image.is_dir() else f"not found in {root}"
            raise _caption_fail(path, line, f"image {name} {what}")
        captions[name] = []
    captions[name].append(caption)


# ----------------------------------------------------------------------------- vocabulary

PAD, UNK = "<pad>", "<unk>"
_TOKEN = re.compile(r"[^\W_]+")  # runs of letters and digits (any script); everything else splits


def tokenize(caption: str) -> list[str]:
    """Lower-case words and numbers of a caption: ``"A big red 7, on grey!"`` -> ``["a", "big",
    "red", "7", "on", "grey"]``."""
    return _TOKEN.findall(caption.lower())


def _flat(captions: Iterable[str | Sequence[str]]) -> Iterable[str]:
    for c in captions:
        if isinstance(c, str):
            yield c
        else:
            yield from c


class Vocabulary:
    """Token ids for a small text encoder: ``<pad>`` is 0, ``<unk>`` 1, then the words by
    descending count (ties alphabetically), so a vocabulary built from the same captions is the
    same on every machine."""

    def __init__(self, tokens: Sequence[str]) -> None:
        tokens = list(tokens)
        if tokens[:2] != [PAD, UNK]:
            raise GankitError(f"a vocabulary starts with {PAD!r} and {UNK!r}, got {tokens[:2]}")
        if len(set(tokens)) != len(tokens):
            raise GankitError("a vocabulary lists a token twice")
        self.tokens = tokens
        self.index = {t: i for i, t in enumerate(tokens)}

    @classmethod
    def build(cls, captions: Iterable[str | Sequence[str]], min_count: int = 1) -> Vocabulary:
        """The words of ``captions`` (strings, or lists of strings as :func:`read_caption_folder`
        returns) that occur at least ``min_count`` times; rarer ones encode as ``<unk>``."""
        if not isinstance(min_count, int) or min_count < 1:
            raise GankitError(f"min_count must be a positive integer, got {min_count!r}")
        counts = Counter(t for c in _flat(captions) for t in tokenize(c))
        words = sorted((t for t, k in counts.items() if k >= min_count and t not in (PAD, UNK)),
                       key=lambda t: (-counts[t], t))
        return cls([PAD, UNK, *words])

    def __len__(self) -> int:
        return len(self.tokens)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Vocabulary) and self.tokens == other.tokens

    def ids(self, caption: str) -> list[int]:
        """Token ids of a caption, unknown words as 1, no padding."""
        return [self.index.get(t, 1) for t in tokenize(caption)]

    def encode(self, caption: str, max_len: int) -> torch.Tensor:
        """int64 ``(max_len,)``: the ids of the first ``max_len`` tokens, padded with 0."""
        if not isinstance(max_len, int) or max_len < 1:
            raise GankitError(f"max_len must be a positive integer, got {max_len!r}")
        ids = self.ids(caption)[:max_len]
        return torch.tensor(ids + [0] * (max_len - len(ids)), dtype=torch.long)

    def encode_batch(self, captions: Sequence[str], max_len: int) -> tuple[torch.Tensor, torch.Tensor]:
        """int64 ids ``(N, max_len)`` and lengths ``(N,)`` (tokens kept, at most ``max_len``; 0 for
        a caption without words) for a GRU over padded sequences."""
        if not captions:
            return torch.zeros((0, max_len), dtype=torch.long), torch.zeros(0, dtype=torch.long)
        ids = torch.stack([self.encode(c, max_len) for c in captions])
        return ids, (ids != 0).sum(1)

    def decode(self, ids: Iterable[int]) -> str:
        """Words of the ids, padding left out (for reading encoded captions)."""
        return " ".join(self.tokens[int(i)] for i in ids if int(i) != 0)

    def save(self) -> dict:
        """A JSON-friendly dict; :meth:`load` reads it back."""
        return {"format": "gankit-vocabulary", "version": 1, "tokens": list(self.tokens)}

    @classmethod
    def load(cls, data: dict | str) -> Vocabulary:
        """The vocabulary of :meth:`save`'s dict (or of its JSON text)."""
        if isinstance(data, str):
            try:
                data = json.loads(data)
            except json.JSONDecodeError as exc:
                raise GankitError(f"vocabulary: not JSON ({exc.msg})") from None
        tokens = data.get("tokens") if isinstance(data, dict) else None
        if not isinstance(tokens, list) or not all(isinstance(t, str) for t in tokens):
            raise GankitError("vocabulary: expected a dict with a 'tokens' list of strings (from Vocabulary.save)")
        return cls(tokens)


__all__ = [
    "BACKGROUND_COLOURS", "CAPTION_ATTRIBUTES", "CAPTION_TEMPLATES", "HELD_OUT", "SIZES", "STROKE_COLOURS",
    "CaptionedDigits", "Vocabulary", "allowed_pair", "attribute_words", "caption_for", "colour_pairs",
    "read_caption_folder", "render_digits", "render_mnist_captions", "tokenize",
]
