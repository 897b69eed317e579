"""A small CNN digit classifier for MNIST-like data: features for FID/KID/PR and logits for IS.

Trained offline by ``scripts/train_mnist_classifier.py`` on a seeded 8,000-image split of the
shipped MNIST test set; the weights (~100k parameters, safetensors) ship with the package, so the
digit metrics need no network. :func:`load_mnist_classifier` is also the per-channel classifier
of the Stacked-MNIST mode-coverage benchmark: keep its name and contract.
"""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from gankit.errors import GankitError

WEIGHTS_DIR = Path(__file__).with_name("weights")
WEIGHTS_FILE = WEIGHTS_DIR / "mnist_cnn.safetensors"
INFO_FILE = WEIGHTS_DIR / "mnist_cnn.json"
FEATURE_DIM = 128
NUM_CLASSES = 10


class MnistCNN(nn.Module):
    """(N, 1, H, W) images in [-1, 1] -> logits (N, 10); ``features`` -> (N, 128) penultimate.

    Any H, W is resized to 28x28 (bilinear, antialiased when shrinking). Three-channel input is
    an error: the caller picks the channel (Stacked-MNIST classifies each channel on its own).
    """

    def __init__(self) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(1, 32, 3, padding=1), nn.BatchNorm2d(32), nn.ReLU(inplace=True),
            nn.MaxPool2d(2),  # 14x14
            nn.Conv2d(32, 64, 3, padding=1), nn.BatchNorm2d(64), nn.ReLU(inplace=True),
            nn.MaxPool2d(2),  # 7x7
            nn.Conv2d(64, 64, 3, padding=1), nn.BatchNorm2d(64), nn.ReLU(inplace=True),
            nn.AdaptiveAvgPool2d(3), nn.Flatten(),  # 64 x 3 x 3
        )
        self.fc = nn.Sequential(nn.Linear(64 * 9, FEATURE_DIM), nn.ReLU(inplace=True))
        self.dropout = nn.Dropout(0.2)
        self.head = nn.Linear(FEATURE_DIM, NUM_CLASSES)

    @staticmethod
    def prepare(x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 4 or x.shape[1] != 1:
            raise GankitError(f"the MNIST classifier takes (N, 1, H, W) images, got shape {tuple(x.shape)}; "
                              "pick one channel first")
        x = x.float()
        if x.shape[-2:] != (28, 28):
            x = F.interpolate(x, size=(28, 28), mode="bilinear", align_corners=False,
                              antialias=x.shape[-1] > 28 or x.shape[-2] > 28)
        return x

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.body(self.prepare(x)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.dropout(self.features(x)))


def read_info() -> dict:
    """Training facts of the shipped weights (seed, split, held-out accuracy)."""
    try:
        return json.loads(INFO_FILE.read_text())
    except (OSError, json.JSONDecodeError):
        return {}


@lru_cache(maxsize=None)
def _state() -> dict[str, torch.Tensor]:
    if not WEIGHTS_FILE.is_file():
        raise GankitError(f"the MNIST classifier weights are missing ({WEIGHTS_FILE}); "
                          "rebuild them with: python scripts/train_mnist_classifier.py")
    from safetensors.torch import load_file

    return load_file(str(WEIGHTS_FILE))


def load_mnist_classifier(device: str | torch.device = "cpu") -> MnistCNN:
    """The shipped classifier in eval mode with frozen weights on ``device``."""
    model = MnistCNN()
    model.load_state_dict({k: v.clone() for k, v in _state().items()})
    model.requires_grad_(False)
    return model.eval().to(device)


def held_out_split(n: int = 10_000, n_train: int = 8_000, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Indices (train, held-out) of the seeded split of the shipped MNIST test set."""
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    return perm[:n_train], perm[n_train:]
