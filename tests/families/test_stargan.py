"""stargan on the engine, with each way of giving it attributes."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

import gankit
from gankit.errors import GankitError

from .translation_common import TranslationFamilyTests


class TestStarGAN(TranslationFamilyTests):
    family = "stargan"
    data = "mnist-attributes"

    def translate_kwargs(self, model) -> dict:
        return {"attrs": {"Red": 1}}


def test_target_attributes_steer_the_output_and_bad_ones_are_refused(tmp_path):
    gankit.train("stargan", data="mnist-attributes", out=tmp_path / "r", preset="tiny", steps=2, quiet=True,
                 overrides={"max_images": 16})
    model = gankit.load(tmp_path / "r")
    assert model.config.names == ["Red", "Light_Background", "Thick"] and "D" in model.extra
    x = torch.zeros(2, 3, 16, 16)
    a = model.translate(x, attrs=torch.tensor([[1.0, 0, 0], [1.0, 0, 0]]))
    b = model.translate(x, attrs=torch.tensor([[0.0, 1, 1], [0.0, 1, 1]]))
    assert not torch.equal(a, b)
    with pytest.raises(GankitError, match="unknown attribute"):
        model.translate(x, attrs={"Blond_Hair": 1})
    with pytest.raises(GankitError, match=r"\(N, 3\)"):
        model.translate(x, attrs=torch.ones(2, 5))


def test_class_folders_are_one_hot_domains(tmp_path):
    for k, colour in enumerate(((255, 0, 0), (0, 255, 0), (0, 0, 255))):
        folder = tmp_path / "data" / f"domain{k}"
        folder.mkdir(parents=True)
        for i in range(3):
            Image.fromarray(np.full((16, 16, 3), colour, np.uint8)).save(folder / f"{i}.png")
    gankit.train("stargan", data=str(tmp_path / "data"), out=tmp_path / "r", preset="tiny", steps=2, quiet=True)
    model = gankit.load(tmp_path / "r")
    assert model.config.domains and model.config.names == ["domain0", "domain1", "domain2"]
    columns = model.family_cls.translation_columns(model, torch.zeros(2, 3, 16, 16, dtype=torch.uint8))
    assert [label for label, _ in columns] == ["domain0", "domain1", "domain2"]


def test_attribute_file_selects_columns(tmp_path):
    folder = tmp_path / "faces"
    folder.mkdir()
    lines = ["file,smile,glasses,hair"]
    for i in range(6):
        Image.fromarray(np.full((16, 16, 3), 30 * i, np.uint8)).save(folder / f"{i}.png")
        lines.append(f"{i}.png,{1 if i % 2 else -1},{i % 3 == 0},{'dark' if i < 3 else 'blond'}")
    (tmp_path / "attrs.csv").write_text("\n".join(lines) + "\n")
    gankit.train("stargan", data=str(folder), out=tmp_path / "r", preset="tiny", steps=2, quiet=True,
                 overrides={"attr_file": str(tmp_path / "attrs.csv"), "attrs": "smile,hair=blond"})
    assert gankit.load(tmp_path / "r").config.names == ["smile", "hair=blond"]


def test_generator_normalises_each_image_by_itself_in_eval_mode_too():
    """The reference's instance norm tracks running statistics; eval() then normalises with the
    training average and wrecks translations (1% good edits measured). Ours keeps per-image stats."""
    from gankit.families.stargan import StarGAN, StarGANConfig

    config = StarGANConfig(resolution=16, conv_dim=8, repeat_num=1, channels=3, attribute_names="a,b")
    G = StarGAN.build_generator(config, (3, 16, 16))
    x, c = torch.rand(4, 3, 16, 16) * 2 - 1, torch.tensor([[1.0, 0.0]]).expand(4, 2)
    G.train()
    G(x * 3 + 1, c)  # a batch with other statistics, which running stats would remember
    trained_mode = G(x, c)
    G.eval()
    assert torch.allclose(G(x, c), trained_mode, atol=1e-5)
    assert torch.allclose(G(x[:1], c[:1]), G(x, c)[:1], atol=1e-5)  # independent of the batch


def _identity_term(family, batch):
    return (family.train_nets["G"](batch.x, batch.attrs) - batch.x).abs().mean()  # L1 of G(x, c_org) to x


def _structure_term(family, batch):
    from gankit.losses import structure_loss

    fake = family.train_nets["G"](batch.x, family._c_trg)
    return structure_loss(batch.x, fake, family.config.struct_blur)  # to x


@pytest.mark.parametrize("option, key, default, weight, term", [
    ("lambda_id", "loss/id", 10.0, 10.0, _identity_term),
    ("lambda_struct", "loss/struct", 5.0, 5.0, _structure_term),
])
def test_content_terms_are_added_with_their_weights_and_off_in_the_paper_preset(tmp_path, option, key, default,
                                                                                weight, term):
    from gankit.config import build_config
    from gankit.families.stargan import StarGANConfig

    assert getattr(build_config(StarGANConfig, preset="small"), option) == default
    assert getattr(build_config(StarGANConfig, preset="paper"), option) == 0.0  # the paper's losses
    trainer = TestStarGAN().make_trainer(tmp_path, **{option: weight, "struct_start": 0})
    family, batch = trainer.family, trainer.fixed_batch(4)
    torch.manual_seed(0)
    family.discriminator_step(batch)  # draws the targets the G step reuses
    loss, logs = family.generator_step(batch)
    assert torch.allclose(logs[key], term(family, batch))
    setattr(family.config, option, 0.0)
    without, logs = family.generator_step(batch)  # the same targets again
    assert key not in logs
    assert torch.allclose(loss - without, weight * term(family, batch), atol=1e-5)


@pytest.mark.parametrize("weight, start, key", [("lambda_id", "id_start", "loss/id"),
                                                 ("lambda_struct", "struct_start", "loss/struct")])
def test_content_terms_count_from_their_start_step(tmp_path, weight, start, key):
    trainer = TestStarGAN().make_trainer(tmp_path, **{weight: 5.0, start: 3})
    family, batch = trainer.family, trainer.fixed_batch(4)
    family.discriminator_step(batch)
    for step, counted in ((0, False), (2, False), (3, True), (7, True)):
        family.begin_step(step)
        assert (key in family.generator_step(batch)[1]) == counted, step


@pytest.mark.parametrize("option", ["struct_blur", "struct_start"])
def test_structure_options_must_not_be_negative(option):
    from gankit.config import build_config
    from gankit.families.stargan import StarGANConfig

    with pytest.raises(GankitError, match=option):
        build_config(StarGANConfig, preset="tiny", overrides={option: -1})


def test_builtin_fairface_gives_its_own_labels_as_attributes(tmp_path):
    # no attr_file: the shipped table's columns (age, gender, race) are the attributes, attrs picks
    # among them and --where filters rows as for any labelled set
    gankit.train("stargan", data="fairface", out=tmp_path / "r", preset="tiny", steps=1, quiet=True,
                 overrides=["attrs=gender", "where=race=East Asian"])
    config = gankit.load(tmp_path / "r").config
    assert config.attribute_names == "gender=Female,gender=Male" and config.where == "race=East Asian"
