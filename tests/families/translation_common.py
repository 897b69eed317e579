"""The image-to-image family mixin: what every translating family must do on the engine
(a real training step of every network, exact resume, translate and export round trips)."""

from __future__ import annotations

import signal
from typing import ClassVar

import pytest
import torch

import gankit
from gankit.engine import checkpoint as ckpt
from gankit.errors import GankitError

from .common import FamilyTests


class TranslationFamilyTests(FamilyTests):
    data: ClassVar[str] = "mnist-negative"

    def translate_kwargs(self, model) -> dict:
        return {}

    def test_generator_output_shape_and_range(self, tmp_path):
        trainer = self.make_trainer(tmp_path)
        batch = trainer.fixed_batch(3)
        columns = trainer.family_cls.snapshot_columns(trainer.family.nets["G"], trainer.config, batch)
        for column in columns:
            assert column.shape[0] == 3 and column.shape[2:] == batch.x.shape[2:]
            assert column.min() >= -1 and column.max() <= 1

    def test_save_load_round_trip_and_seeded_sampling(self, tmp_path):
        gankit.train(self.family, data=self.data, out=tmp_path / "run", preset="tiny", steps=3, quiet=True,
                     overrides={"max_images": 64})
        model = gankit.load(tmp_path / "run")
        images = gankit.data.load_dataset("mnist", resolution=model.config.resolution, max_images=5).data
        if model.family_cls.input_channels(model.config) == 3:
            images = images.repeat(1, 3, 1, 1)
        out = model.translate(images, **self.translate_kwargs(model))
        assert out.shape[0] == 5 and out.shape[2:] == images.shape[2:] and out.abs().max() <= 1
        assert torch.equal(out, model.translate(images, **self.translate_kwargs(model)))  # eval mode: deterministic
        with pytest.raises(GankitError, match="translate"):
            model.sample(4)
        again = gankit.load(model.save_pretrained(tmp_path / "export"))
        assert torch.equal(again.translate(images, **self.translate_kwargs(model)), out)

    def test_resumed_run_equals_an_uninterrupted_one(self, tmp_path):
        options = dict(data=self.data, preset="tiny", quiet=True, overrides={"max_images": 64})
        # Stopped part-way (as Ctrl-C does) rather than trained to a shorter total: learning-rate
        # schedules depend on the planned number of steps.
        def stop_at_3(trainer, step):
            if step == 3:
                trainer.stop_signal = signal.SIGTERM

        gankit.train(self.family, out=tmp_path / "straight", steps=6, **options)
        stopped = gankit.train(self.family, out=tmp_path / "parts", steps=6, on_step=stop_at_3, **options)
        assert stopped.status == "interrupted" and stopped.step == 4  # stops after the next step
        gankit.train(resume=tmp_path / "parts", quiet=True)
        a, _ = ckpt.load_checkpoint(ckpt.latest_checkpoint(tmp_path / "straight"))
        b, _ = ckpt.load_checkpoint(ckpt.latest_checkpoint(tmp_path / "parts"))
        assert a.keys() == b.keys()
        different = [k for k in a if not torch.equal(a[k], b[k])]
        assert not different, different[:5]
