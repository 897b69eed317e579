"""cyclegan and discogan on the engine, plus the learning-rate decay and the image pool in checkpoints."""

from __future__ import annotations

import gankit
from gankit.engine import checkpoint as ckpt
from gankit.families.translation import linear_decay

from .translation_common import TranslationFamilyTests


class TestCycleGAN(TranslationFamilyTests):
    family = "cyclegan"


class TestDiscoGAN(TranslationFamilyTests):
    family = "discogan"


def test_linear_decay_holds_then_falls_to_zero():
    assert [linear_decay(s, 10, 0.5) for s in (0, 4, 5, 6, 9, 10)] == [1.0, 1.0, 1.0, 0.8, 0.2, 0.0]
    assert linear_decay(9, 10, 1.0) == 1.0


def test_cyclegan_checkpoint_holds_the_pools_and_the_decayed_lr(tmp_path):
    gankit.train("cyclegan", data="mnist-negative", out=tmp_path / "r", preset="tiny", steps=4, quiet=True,
                 overrides={"max_images": 32, "pool_size": 3, "decay_from": 0.5})
    tensors, meta = ckpt.load_checkpoint(ckpt.latest_checkpoint(tmp_path / "r"))
    assert any(k.startswith("net.pool_A.") for k in tensors) and any(k.startswith("net.pool_B.") for k in tensors)
    lrs = [g["lr"] for g in meta["optimizers"]["G"]["param_groups"]]
    assert lrs and abs(lrs[0] - 2e-4 * linear_decay(3, 4, 0.5)) < 1e-12
