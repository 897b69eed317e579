"""Image batches -> uint8 pixels and a single grid picture.

Images in gankit are float NCHW tensors in [-1, 1] with C = 1 or 3.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import Tensor


def to_uint8(images: Tensor) -> Tensor:
    """Map float images in [-1, 1] to uint8 in [0, 255] (same shape, on the CPU).

    ``-1 -> 0``, ``1 -> 255`` and ``0 -> 128`` (127.5 rounds half-to-even up to 128).
    Values outside [-1, 1] are clamped first, so a generator overshooting its ``tanh``
    range (or an un-squashed output) can never wrap around.
    """
    x = images.detach().to("cpu", torch.float32)
    return ((x.clamp(-1.0, 1.0) + 1.0) * 127.5).round().to(torch.uint8)


def make_grid(
    images: Tensor, nrow: int | None = None, padding: int = 2, pad_value: float = 1.0
) -> np.ndarray:
    """Tile a batch of images into one ``H x W x 3`` uint8 array.

    Args:
        images: float ``(N, C, H, W)`` in [-1, 1] with C = 1 or 3 (a single ``(C, H, W)``
            image is accepted too). Greyscale is repeated to 3 channels.
        nrow: images per row; default ``ceil(sqrt(N))`` (a square-ish grid).
        padding: pixels between images and around the border.
        pad_value: padding colour in image units; the default 1.0 is white (a light frame
            separates both dark MNIST-style digits and photos), -1.0 gives black.

    The layout follows ``torchvision.utils.make_grid``: ``min(nrow, N)`` columns,
    ``ceil(N / nrow)`` rows, output size ``rows * (H + padding) + padding`` by
    ``cols * (W + padding) + padding``; unused cells of the last row are padding.
    """
    if images.ndim == 3:
        images = images.unsqueeze(0)
    if images.ndim != 4 or images.shape[1] not in (1, 3):
        raise ValueError(f"expected images of shape (N, 1|3, H, W), got {tuple(images.shape)}")
    n, c, h, w = images.shape
    if n == 0:
        raise ValueError("make_grid needs at least one image")
    nrow = max(1, int(nrow)) if nrow else math.ceil(math.sqrt(n))
    cols, rows = min(nrow, n), math.ceil(n / nrow)

    pixels = to_uint8(images).permute(0, 2, 3, 1).numpy()  # N H W C
    if c == 1:
        pixels = np.repeat(pixels, 3, axis=3)
    fill = int(to_uint8(torch.tensor(float(pad_value))))
    grid = np.full((rows * (h + padding) + padding, cols * (w + padding) + padding, 3), fill, np.uint8)
    for i in range(n):
        r, col = divmod(i, cols)
        y, x = padding + r * (h + padding), padding + col * (w + padding)
        grid[y : y + h, x : x + w] = pixels[i]
    return grid


def save_image(array: np.ndarray, path) -> None:
    """Write an ``H x W`` / ``H x W x 3`` (or x4) uint8 array as a PNG, atomically.

    Parent directories are created; the file appears under its final name only once it is
    completely written (temp name in the same directory, then ``os.replace``).
    """
    from PIL import Image

    from gankit.files import atomic_target

    arr = np.asarray(array)
    if arr.dtype != np.uint8:
        raise ValueError(f"save_image expects uint8 pixels, got {arr.dtype}")
    if arr.ndim == 3 and arr.shape[2] == 1:
        arr = arr[:, :, 0]
    with atomic_target(path) as tmp:
        Image.fromarray(arr).save(tmp, format="PNG")
