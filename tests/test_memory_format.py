"""``channels_last`` changes the memory layout, not the arithmetic: the first training step of a
family scores the same losses either way (later steps drift apart only as float sums in another
order do, which Adam amplifies on parameters whose gradient is ~0, e.g. a bias before BatchNorm).
The families where NHWC measured faster on a CPU have it on by default
(``bench/results/family_speed_channels_last.json``)."""

from __future__ import annotations

import pytest
import torch

from gankit.config import build_config
from gankit.engine.runtime import Runtime
from gankit.engine.trainer import Trainer
from gankit.registry import families

NHWC_BY_DEFAULT = {"dcgan", "cgan", "cogan", "wgan", "wgan-gp", "sagan", "biggan", "progan", "stylegan2",
                   "discogan", "srgan", "stackgan"}


def test_the_measured_families_default_to_channels_last():
    assert {name for name, fam in families().items() if fam.Config().channels_last} == NHWC_BY_DEFAULT


def first_step_logs(name: str, channels_last: bool, run_dir) -> dict[str, float]:
    fam = families()[name]
    config = build_config(fam.Config, preset="tiny", overrides={"channels_last": channels_last, "seed": 5,
                                                                "device": "cpu", "precision": "fp32"})
    config.family = name
    dataset = fam.load_data(config)
    trainer = Trainer(fam, config, dataset, run_dir, Runtime(torch.device("cpu")), quiet=True)
    return {k: float(v) for k, v in trainer.train_step().items()}


@pytest.mark.parametrize("name", ["sagan", "biggan", "progan", "stylegan2", "discogan", "srgan", "stackgan"])
def test_channels_last_scores_the_same_first_step(name, tmp_path):
    nchw = first_step_logs(name, False, tmp_path / "nchw")
    nhwc = first_step_logs(name, True, tmp_path / "nhwc")
    assert nchw.keys() == nhwc.keys() and nchw
    for key in nchw:
        assert nhwc[key] == pytest.approx(nchw[key], rel=1e-4, abs=1e-5), key


def test_load_gives_the_trained_layout_and_the_same_samples(tmp_path):
    import gankit

    gankit.train("sagan", data="mnist", out=tmp_path / "run", steps=1, preset="tiny", quiet=True)
    model = gankit.load(tmp_path / "run")
    convs = [m.weight for m in model.generator.modules() if isinstance(m, torch.nn.Conv2d)]
    assert convs and all(w.is_contiguous(memory_format=torch.channels_last) for w in convs if w.shape[-1] > 1)
    nhwc = model.sample(8, seed=2)
    model.generator.to(memory_format=torch.contiguous_format)
    torch.testing.assert_close(nhwc, model.sample(8, seed=2), rtol=1e-4, atol=1e-5)
