"""The shipped MNIST digit classifier: contract and held-out accuracy."""

from __future__ import annotations

import pytest
import torch

from gankit.errors import GankitError
from gankit.metrics.mnist_classifier import FEATURE_DIM, WEIGHTS_FILE, held_out_split, load_mnist_classifier, read_info


def test_weights_are_small_and_documented():
    assert WEIGHTS_FILE.stat().st_size < 1_000_000
    info = read_info()
    assert info["split"]["train"] == 8000 and info["split"]["held_out"] == 2000
    assert info["held_out_accuracy"] >= 0.985


def test_accuracy_on_held_out_images():
    from gankit.data import load_dataset

    ds = load_dataset("mnist", resolution=28)
    _, held = held_out_split(len(ds), 8000, seed=read_info()["seed"])
    idx = held[:500]
    model = load_mnist_classifier()
    assert not model.training
    with torch.no_grad():
        pred = model(ds.data[idx].float() / 127.5 - 1).argmax(1)
    assert (pred == ds.labels[idx]).float().mean() >= 0.98


def test_contract_any_size_one_channel_and_features():
    model = load_mnist_classifier()
    with torch.no_grad():
        assert model(torch.zeros(2, 1, 32, 32)).shape == (2, 10)
        assert model(torch.zeros(2, 1, 64, 48)).shape == (2, 10)
        assert model.features(torch.zeros(3, 1, 28, 28)).shape == (3, FEATURE_DIM)
    with pytest.raises(GankitError, match="one channel"):
        model(torch.zeros(1, 3, 28, 28))
