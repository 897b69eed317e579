import torch

import gankit

from .common import FamilyTests


class TestCGAN(FamilyTests):
    family = "cgan"


def test_the_label_changes_the_sample_and_bad_labels_are_user_errors(tmp_path):
    gankit.train("cgan", data="mnist", out=tmp_path / "r", preset="tiny", steps=2, quiet=True)
    model = gankit.load(tmp_path / "r")
    assert model.num_classes == 10
    three = model.sample(4, seed=1, cond=3)
    seven = model.sample(4, seed=1, cond=7)
    assert not torch.equal(three, seven)  # same noise, other class
    assert torch.equal(three, model.sample(4, seed=1, cond=[3, 3, 3, 3]))
    try:
        model.sample(2, seed=0, cond=10)
    except gankit.GankitError as exc:
        assert "0..9" in str(exc)
    else:
        raise AssertionError("class 10 of 10 was accepted")


def test_unconditional_data_is_refused(tmp_path):
    try:
        gankit.train("cgan", data="ring8", out=tmp_path / "r", preset="tiny", quiet=True)
    except gankit.GankitError as exc:
        assert "cgan" in str(exc)
    else:
        raise AssertionError("cgan trained on unlabelled 2-D points")
