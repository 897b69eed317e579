"""cyclegan and discogan on the engine, plus the learning-rate decay and the image pool in checkpoints."""

from __future__ import annotations

import gankit
from gankit.engine import checkpoint as ckpt
from gankit.families.base import linear_decay

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


def test_discogan_feature_matching_matches_mean_features_by_hand(tmp_path):
    import torch
    from torch.nn import functional as F

    trainer = TestDiscoGAN().make_trainer(tmp_path, feature_matching=1.0)
    family, D = trainer.family, trainer.family.train_nets["D_B"]
    torch.manual_seed(0)
    fake, real = torch.rand(4, 1, 16, 16) * 2 - 1, torch.rand(4, 1, 16, 16) * 2 - 1
    by_hand = 0.0
    for f, r in zip(D(fake, return_features=True)[1], D(real, return_features=True)[1]):
        by_hand = by_hand + ((f.mean(0) - r.mean(0)) ** 2).mean()
    assert torch.allclose(family.generator_adversarial(D, fake, real), by_hand)
    family.config.feature_matching = 0.25  # a blend of the GAN loss and feature matching
    gan = F.softplus(-D(fake)).mean()
    assert torch.allclose(family.generator_adversarial(D, fake, real), 0.75 * gan + 0.25 * by_hand, atol=1e-6)


def test_discogan_curriculum_weighs_reconstruction_low_then_as_the_paper(tmp_path):
    trainer = TestDiscoGAN().make_trainer(tmp_path, gan_curriculum=5)
    family = trainer.family
    family.begin_step(4)
    assert abs(family.cycle_weight() - 0.01 / 0.99) < 1e-12
    family.begin_step(5)
    assert family.cycle_weight() == 1.0
    done = gankit.train("discogan", data="mnist-negative", out=tmp_path / "r", preset="tiny", steps=3, quiet=True,
                        overrides={"max_images": 32, "feature_matching": 0.9, "gan_curriculum": 2})
    assert done.step == 3
