"""Captioned training data as a :class:`Dataset` (text-to-image: StackGAN, Zhang et al. 2017).

``mnist-captions`` (built in: :func:`gankit.data.captions.render_mnist_captions`, its training
split) or a folder of images with ``captions.csv`` (:func:`gankit.data.captions.read_caption_folder`).
The vocabulary is built from all the captions; every item's captions become token ids
(``Dataset.text``, ``(N, K, L)``), of which the engine draws one per item and step.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch

from gankit.data.captions import Vocabulary, read_caption_folder, render_mnist_captions, tokenize
from gankit.data.dataset import Dataset
from gankit.errors import GankitError

MNIST_CAPTIONS = "mnist-captions"
MAX_TOKENS = 64  # longer captions are cut (StackGAN's char-CNN-RNN reads a sentence)


def caption_length(captions: list[list[str]]) -> int:
    """Tokens of the longest caption, at most :data:`MAX_TOKENS`."""
    return max(1, min(MAX_TOKENS, max(len(tokenize(c)) for cs in captions for c in cs)))


def encode_captions(vocab: Vocabulary, captions: list[list[str]], length: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``(N, K, length)`` token ids and ``(N,)`` caption counts, 0-padded."""
    k = max(len(cs) for cs in captions)
    text = torch.zeros((len(captions), k, length), dtype=torch.long)
    for i, cs in enumerate(captions):
        text[i, :len(cs)] = vocab.encode_batch(cs, length)[0]
    return text, torch.tensor([len(cs) for cs in captions], dtype=torch.long)


def load_captioned(spec: str | os.PathLike, *, resolution: int, max_images: int = 0,
                   vocabulary: list[str] | None = None) -> Dataset:
    """Images ``(N, 3, R, R)`` uint8 with their captions as token ids. ``vocabulary``: use these
    tokens (a resumed run's) instead of building them from the captions."""
    if str(spec).strip().lower() == MNIST_CAPTIONS:
        digits = render_mnist_captions(max_images or 8000, resolution=resolution, split="train")
        images, captions, source, skipped = digits.images, [[c] for c in digits.captions], MNIST_CAPTIONS, []
    else:
        images, captions, source, skipped = _folder(Path(spec).expanduser(), resolution, max_images)
    vocab = Vocabulary(vocabulary) if vocabulary else Vocabulary.build(captions)
    text, count = encode_captions(vocab, captions, caption_length(captions))
    return Dataset(data=images, source=source, skipped=skipped, text=text, text_count=count, captions=captions,
                   vocabulary=list(vocab.tokens))


def _folder(folder: Path, resolution: int, max_images: int):
    from gankit.data import images as image_io

    if not folder.is_dir():
        raise GankitError(f"captioned data: {folder} is not a folder (give one with captions.csv, or {MNIST_CAPTIONS})")
    paths, captions = read_caption_folder(folder)
    good, kept, skipped = [], [], []
    with image_io._pil_limits():
        for path, cs in zip(paths, captions):
            try:
                good.append(image_io.decode_image(path.read_bytes(), 3, resolution))
                kept.append(cs)
            except image_io.BadImage as exc:
                skipped.append((path.name, str(exc)))
            if max_images and len(good) >= max_images:
                break
    if not good:
        raise GankitError(f"{folder}: none of the {len(paths)} captioned images could be read "
                          f"({skipped[0][0]}: {skipped[0][1]})")
    data = torch.from_numpy(np.stack(good).transpose(0, 3, 1, 2).copy())
    return data, kept, str(folder), skipped
