"""Captioned training data as a :class:`Dataset` (text-to-image: StackGAN, Zhang et al. 2017).

``mnist-captions`` (built in: :func:`gankit.data.captions.render_mnist_captions`, its training
split), a folder of images with ``captions.csv`` (:func:`gankit.data.captions.read_caption_folder`),
or the layout of the CUB-200-2011 birds and Oxford-102 flowers captions that StackGAN's users
download (Reed et al. 2016's ``text_c10``): a folder holding ``text_c10/`` (one ``NAME.txt`` per
image, a caption per line, in class subfolders) and the images anywhere under it, matched by file
name (``CUB_200_2011/images/001.Black_footed_Albatross/NAME.jpg``, ``jpg/image_00001.jpg``).
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
TEXT_C10 = "text_c10"


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
        raise GankitError(f"captioned data: {folder} is not a folder (give one with captions.csv or {TEXT_C10}/, "
                          f"or {MNIST_CAPTIONS})")
    skipped: list[tuple[str, str]] = []
    if (folder / TEXT_C10).is_dir() and not (folder / "captions.csv").is_file():
        paths, captions = text_c10_captions(folder, skipped)
    else:
        paths, captions = read_caption_folder(folder)
    good, kept = [], []
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


def text_c10_captions(root: Path, skipped: list[tuple[str, str]]) -> tuple[list[Path], list[list[str]]]:
    """(image paths, their captions) of the ``text_c10`` layout under ``root``; a caption file
    without its image, or without a caption, is skipped and counted."""
    from gankit.data.images import IMAGE_EXTENSIONS

    text_dir = root / TEXT_C10
    images = {p.stem: p for p in sorted(root.rglob("*"))
              if p.suffix.lower() in IMAGE_EXTENSIONS and text_dir not in p.parents and p.is_file()}
    paths, captions = [], []
    for txt in sorted(text_dir.rglob("*.txt")):
        lines = [line.strip() for line in txt.read_text(encoding="utf-8", errors="replace").splitlines()]
        lines = [line for line in lines if line]
        if txt.stem not in images:
            skipped.append((txt.name, f"no image named {txt.stem}.* under {root}"))
        elif not lines:
            skipped.append((txt.name, "no caption in it"))
        else:
            paths.append(images[txt.stem])
            captions.append(lines)
    if not paths:
        raise GankitError(f"{root}: no {TEXT_C10}/*.txt caption file matches an image under it"
                          + (f" (first: {skipped[0][0]}: {skipped[0][1]})" if skipped else ""))
    return paths, captions

