import torch

import gankit

from .common import FamilyTests


class TestWGAN(FamilyTests):
    family = "wgan"

    def test_critic_steps_clip_weights_and_log_the_distance(self, tmp_path):
        trainer = self.make_trainer(tmp_path)
        assert isinstance(trainer.family.optimizers["D"], torch.optim.RMSprop)
        logs = trainer.train_step()
        assert trainer.batches_seen == 5  # n_critic = 5 real batches per generator step
        assert all(p.abs().max() <= 0.01 for p in trainer.family.nets["D"].parameters())
        assert "loss/wdist" in logs and "d/real" in logs


class TestWGANOnPoints(FamilyTests):
    family = "wgan"
    data = "ring8"


class TestWGANGP(FamilyTests):
    family = "wgan-gp"

    def test_penalty_without_batchnorm(self, tmp_path):
        trainer = self.make_trainer(tmp_path)
        D = trainer.family.nets["D"]
        assert not any(isinstance(m, (torch.nn.BatchNorm2d, torch.nn.GroupNorm)) for m in D.modules())
        opt = trainer.family.optimizers["D"]
        assert isinstance(opt, torch.optim.Adam) and opt.defaults["betas"] == (0.0, 0.9)
        logs = trainer.train_step()
        assert logs["loss/reg"] > 0 and trainer.batches_seen == 5


def test_wgan_gp_toy_preset_trains_on_the_mixture(tmp_path):
    result = gankit.train("wgan-gp", data="grid25", out=tmp_path / "r", preset="toy", steps=3, quiet=True)
    assert result.status == "finished"
    assert gankit.load(tmp_path / "r").sample(5).shape == (5, 2)
