"""Toonify by blending (gankit.explore.blend, gankit blend)."""

from __future__ import annotations

import pytest
import torch
from PIL import Image
from safetensors.torch import save_file

import gankit
from gankit.errors import GankitError
from gankit.explore.blend import blend_models, blend_state_dicts, block_resolution, high_weight


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("blend")
    gankit.train("stylegan2", data="mnist", out=root / "base", preset="tiny", steps=2, quiet=True,
                 overrides={"max_images": 64})
    # the toonify recipe: a fine-tuned copy of the base (here: more steps, another seed)
    gankit.train("stylegan2", data="mnist", out=root / "tuned", preset="tiny", steps=3, seed=5, quiet=True,
                 init=root / "base", overrides={"max_images": 64, "lr_g": 0.05})
    return root


def test_high_weight_is_a_step_or_a_sigmoid_in_log_resolution():
    assert [high_weight(r, 16) for r in (4, 8, 16, 32, 64)] == [0, 0, 0, 1, 1]
    smooth = [high_weight(r, 16, width=1.0) for r in (4, 8, 16, 32, 64)]
    assert all(0 < a < 1 for a in smooth) and smooth == sorted(smooth)
    assert high_weight(16, 16, 1.0) + high_weight(32, 16, 1.0) == pytest.approx(1.0)  # symmetric about the swap
    assert high_weight(16, 16, 0.01) < 1e-6 and high_weight(32, 16, 0.01) > 1 - 1e-6
    assert block_resolution("synthesis.b16.conv0.weight") == 16 and block_resolution("mapping.fc0.weight") is None


def test_blending_a_model_with_itself_gives_that_model(runs):
    model = gankit.load(runs / "base")
    for width in (0.0, 0.7):
        same = blend_models(model, model, 8, width=width)
        for k, v in model.generator.state_dict().items():
            assert torch.equal(same.generator.state_dict()[k], v), k
    z = model.latents(4, seed=1)
    assert torch.equal(same.generate(z), model.generate(z))


def test_hard_swap_takes_each_block_from_one_model(runs):
    base, tuned = gankit.load(runs / "base"), gankit.load(runs / "tuned")
    b, t = base.generator.state_dict(), tuned.generator.state_dict()
    assert not torch.equal(b["synthesis.b16.conv1.weight"], t["synthesis.b16.conv1.weight"])
    toon = blend_models(base, tuned, 8).generator.state_dict()  # up to 8x8 from tuned, 16x16 from base
    assert torch.equal(toon["synthesis.b4.conv1.weight"], t["synthesis.b4.conv1.weight"])
    assert torch.equal(toon["synthesis.b8.torgb.weight"], t["synthesis.b8.torgb.weight"])
    assert torch.equal(toon["synthesis.b16.conv0.weight"], b["synthesis.b16.conv0.weight"])
    assert torch.equal(toon["mapping.fc0.weight"], b["mapping.fc0.weight"])
    assert torch.equal(toon["mapping.w_avg"], b["mapping.w_avg"])
    reverse = blend_models(base, tuned, 8, low="base").generator.state_dict()
    assert torch.equal(reverse["synthesis.b4.conv1.weight"], b["synthesis.b4.conv1.weight"])
    assert torch.equal(reverse["synthesis.b16.conv0.weight"], t["synthesis.b16.conv0.weight"])
    smooth = blend_state_dicts(b, t, 8, width=0.5)
    a = high_weight(16, 8, 0.5)
    expected = (1 - a) * t["synthesis.b16.conv0.weight"] + a * b["synthesis.b16.conv0.weight"]
    assert torch.allclose(smooth["synthesis.b16.conv0.weight"], expected, atol=1e-6)


def test_blend_rejects_mismatched_models(runs, tmp_path):
    base = gankit.load(runs / "base")
    other_sd = dict(base.generator.state_dict())
    other_sd["synthesis.b4.const"] = torch.zeros(3, 4, 4)
    with pytest.raises(GankitError, match="different architectures"):
        blend_state_dicts(base.generator.state_dict(), other_sd, 8)
    with pytest.raises(GankitError, match="--swap must be one of"):
        blend_models(base, base, 12)
    for width in (-1, float("nan"), float("inf")):  # NaN wrote a model full of NaN weights
        with pytest.raises(GankitError, match="--width"):
            blend_models(base, base, 8, width=width)


def test_blend_command_writes_the_model_and_the_preview(runs, tmp_path, gankit_main):
    w = gankit.load(runs / "base").w_avg[None].clone()
    save_file({"w": w}, str(tmp_path / "photo.safetensors"))
    code, out, err = gankit_main("blend", runs / "base", runs / "tuned", "--swap", "8", "--out", tmp_path / "toon",
                                 "--seeds", "0-3", "--latent", tmp_path / "photo.safetensors")
    assert code == 0, err
    assert "blocks up to 8x8 from the tuned model" in out
    blended = gankit.load(tmp_path / "toon")
    expected = blend_models(gankit.load(runs / "base"), gankit.load(runs / "tuned"), 8)
    z = blended.latents(2, seed=3)
    assert torch.equal(blended.generate(z), expected.generate(z))
    preview = Image.open(tmp_path / "toon" / "preview.png")
    assert preview.width > preview.height  # 3 rows (base, tuned, blend) of 1 photo + 4 seeds
    code, _, err = gankit_main("blend", runs / "base", runs / "tuned", "--swap", "8", "--out", tmp_path / "toon")
    assert code == 2 and "not empty" in err
    code, _, err = gankit_main("blend", runs / "base", runs / "tuned", "--swap", "5", "--out", tmp_path / "t2")
    assert code == 2 and "--swap must be one of" in err and len(err.strip().splitlines()) == 1
