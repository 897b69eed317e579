"""pix2pix on the engine, plus what is special to it: the L1-only ablation and the direction."""

from __future__ import annotations

import torch

import gankit
from gankit.engine import checkpoint as ckpt

from .translation_common import TranslationFamilyTests


class TestPix2Pix(TranslationFamilyTests):
    family = "pix2pix"
    data = "mnist-edges"


def test_l1_only_ablation_trains_g_alone(tmp_path):
    gankit.train("pix2pix", data="mnist-edges", out=tmp_path / "r", preset="tiny", steps=2, quiet=True,
                 overrides={"lambda_gan": 0, "max_images": 32})
    tensors, meta = ckpt.load_checkpoint(ckpt.latest_checkpoint(tmp_path / "r"))
    assert "opt.D.state" not in str(meta["optimizers"]["D"]) or not meta["optimizers"]["D"]["state"]


def test_direction_swaps_input_and_target(tmp_path):
    # mnist-colour: A grey digits, B coloured ones; BtoA means colour in, grey out
    gankit.train("pix2pix", data="mnist-colour", out=tmp_path / "r", preset="tiny", steps=1, quiet=True,
                 overrides={"direction": "BtoA", "max_images": 16})
    model = gankit.load(tmp_path / "r")
    out = model.translate(torch.zeros(2, 3, 16, 16))
    assert out.shape == (2, 1, 16, 16)
