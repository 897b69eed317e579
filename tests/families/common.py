"""The family test mixin: every family gets these tests by subclassing :class:`FamilyTests`
(shapes, a real CPU training step, save/load round trip, seeded sampling), as diffusers'
``ModelTesterMixin`` does for its models. A family's own file adds only what is special."""

from __future__ import annotations

from typing import ClassVar

import torch

import gankit
from gankit.config import build_config
from gankit.engine.runtime import Runtime
from gankit.engine.trainer import Trainer
from gankit.registry import get_family


class FamilyTests:
    family: ClassVar[str] = ""
    data: ClassVar[str] = "mnist"

    def make_trainer(self, tmp_path, **overrides):
        family_cls = get_family(self.family)
        config = build_config(family_cls.Config, preset="tiny", overrides={"data": self.data, "ema": True, **overrides})
        config.family = family_cls.name
        config.max_images = config.max_images or 256
        dataset = family_cls.load_data(config)
        family_cls.check_config(config, dataset.kind)
        return Trainer(family_cls, config, dataset, tmp_path, Runtime(torch.device("cpu")), quiet=True)

    def test_generator_output_shape_and_range(self, tmp_path):
        trainer = self.make_trainer(tmp_path)
        fam, config = trainer.family_cls, trainer.config
        z = fam.sample_latent(config, 5)
        y = fam.sample_labels(config, 5)
        out = fam.generate(trainer.family.nets[fam.generator_key], z, y)
        assert tuple(out.shape) == (5, *trainer.dataset.shape)
        if trainer.dataset.kind == "image":
            assert out.min() >= -1 and out.max() <= 1

    def test_train_step_updates_every_network_and_logs_losses(self, tmp_path):
        trainer = self.make_trainer(tmp_path)
        before = {name: [p.detach().clone() for p in net.parameters()] for name, net in trainer.family.nets.items()}
        ema_before = [p.clone() for p in trainer.ema.parameters()]
        logs = trainer.train_step()
        assert trainer.step == 1
        assert any(k.startswith("loss/") for k in logs)
        assert all(torch.isfinite(v) for v in logs.values())
        for name, net in trainer.family.nets.items():
            changed = any(not torch.equal(a, b) for a, b in zip(before[name], net.parameters()))
            assert changed, f"{name} did not change after a training step"
        assert any(not torch.equal(a, b) for a, b in zip(ema_before, trainer.ema.parameters()))

    def test_train_step_under_bf16_autocast(self, tmp_path):
        """precision=auto is bf16 on CPUs with AMX / AVX512-BF16 and on recent GPUs: every family
        trains there (the mixed dtypes of buffers, losses and penalties meet under autocast)."""
        trainer = self.make_trainer(tmp_path, precision="bf16")
        assert trainer.precision == "bf16"
        for _ in range(2):
            logs = trainer.train_step()
        assert all(torch.isfinite(v) for v in logs.values())

    def test_save_load_round_trip_and_seeded_sampling(self, tmp_path):
        result = gankit.train(self.family, data=self.data, out=tmp_path / "run", preset="tiny", steps=3,
                              quiet=True, overrides={"max_images": 256, "ema": True})
        assert result.status == "finished" and result.step == 3
        model = gankit.load(tmp_path / "run")
        a = model.sample(6, seed=7)
        b = model.sample(6, seed=7)
        c = model.sample(6, seed=8)
        assert torch.equal(a, b) and not torch.equal(a, c)
        exported = model.save_pretrained(tmp_path / "export")
        again = gankit.load(exported)
        assert again.family == self.family
        assert torch.equal(again.sample(6, seed=7), a)
        raw = gankit.load(tmp_path / "run", ema=False)
        assert not raw.ema and not torch.equal(raw.sample(6, seed=7), a)


def sigterm_then_resume(family: str, straight, run_dir, stop_at: int, **options) -> None:
    """Train ``family`` into ``run_dir``, SIGTERM it so it stops at ``stop_at``, resume, and check
    every tensor of the final checkpoint equals the uninterrupted run ``straight``'s."""
    import os
    import signal

    from gankit.engine import checkpoint as ckpt

    def kill_at(trainer, step):
        if step == stop_at - 1:
            os.kill(os.getpid(), signal.SIGTERM)

    result = gankit.train(family, out=run_dir, on_step=kill_at, **options)
    assert result.status == "interrupted" and result.step == stop_at
    gankit.train(resume=run_dir, quiet=True)
    (ta, ma), (tb, mb) = (ckpt.load_checkpoint(ckpt.latest_checkpoint(r)) for r in (straight, run_dir))
    assert ma["step"] == mb["step"] == ma["config"]["steps"] and ta.keys() == tb.keys()
    different = [k for k in ta if not torch.equal(ta[k], tb[k])]
    assert not different, different[:3]
