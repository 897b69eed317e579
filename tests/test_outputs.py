"""The commands that apply a model to the user's pictures never write over them, give every input
its own output, and read a mask's transparency as outside the region."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from PIL import Image

import gankit
from gankit.cli_outputs import folder_names, refuse_writing_over_inputs, unique_stems
from gankit.errors import GankitError


def test_unique_stems_and_folder_names():
    assert unique_stems(["dup.png", "dup.jpg", "sub/x.png", "sub_x.png", "grid.png"], reserved={"grid"}) == \
        ["dup", "dup-2", "sub_x", "sub_x-2", "grid-2"]
    assert folder_names(["flip Red", "Über-cat", "über cat", "猫", "犬", "!!"]) == \
        ["flip-red", "über-cat", "über-cat-2", "猫", "犬", "column-6"]


def test_out_may_not_be_the_input_or_inside_it(tmp_path):
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "a.png").write_bytes(b"")
    for out in (tmp_path / "in", tmp_path / "in" / "x4", tmp_path / "in" / "a.png"):
        source = tmp_path / "in" / "a.png" if out.suffix else tmp_path / "in"
        with pytest.raises(GankitError, match="never overwritten"):
            refuse_writing_over_inputs(source, out)
    refuse_writing_over_inputs(tmp_path / "in", tmp_path / "out")  # beside it: fine


@pytest.fixture(scope="module")
def pix2pix_run(tmp_path_factory):
    run = tmp_path_factory.mktemp("p2p") / "run"
    gankit.train("pix2pix", data="mnist-edges", out=run, preset="tiny", steps=1, quiet=True,
                 overrides={"max_images": 16})
    return run


def test_translate_keeps_the_inputs_and_writes_one_file_each(pix2pix_run, tmp_path, gankit_main):
    inputs = tmp_path / "in"
    (inputs / "sub").mkdir(parents=True)
    for name in ("dup.png", "dup.jpg", "sub/x.png", "sub_x.png", "grid.png"):
        Image.new("L", (20, 20), 200).save(inputs / name)
    before = {p: p.read_bytes() for p in inputs.rglob("*") if p.is_file()}
    code, _, err = gankit_main("translate", pix2pix_run, "--input", inputs, "--out", inputs)
    assert code == 2 and "never overwritten" in err
    assert {p: p.read_bytes() for p in inputs.rglob("*") if p.is_file()} == before
    code, out, err = gankit_main("translate", pix2pix_run, "--input", inputs, "--out", tmp_path / "out")
    assert code == 0, err
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == \
        ["dup-2.png", "dup.png", "grid-2.png", "grid.png", "sub_x-2.png", "sub_x.png"]
    assert "wrote 5 translated images" in out


def test_a_white_shape_on_transparency_is_a_mask_of_the_shape(tmp_path):
    from gankit.data.single_image import mask_tensor

    rgba = Image.new("RGBA", (20, 10), (255, 255, 255, 0))
    rgba.paste((255, 255, 255, 255), (0, 0, 5, 10))  # an opaque white quarter
    rgba.save(tmp_path / "mask.png")
    mask = mask_tensor(tmp_path / "mask.png")
    assert mask.shape == (1, 1, 10, 20)
    assert (mask > 0).float().mean() == pytest.approx(0.25)  # was 1: transparency composited on white
    Image.new("L", (20, 10), 255).save(tmp_path / "white.png")  # an opaque grey-scale mask as before
    assert (mask_tensor(tmp_path / "white.png") > 0).all()


def test_translating_in_chunks_writes_what_one_pass_writes(pix2pix_run, tmp_path, gankit_main, monkeypatch):
    import gankit.cli_translate as ct

    inputs = tmp_path / "in"
    inputs.mkdir()
    for i in range(5):
        Image.new("L", (16, 16), 40 * i).save(inputs / f"{i}.png")
    assert gankit_main("translate", pix2pix_run, "--input", inputs, "--out", tmp_path / "one")[0] == 0
    monkeypatch.setattr(ct, "CHUNK", 2)
    assert gankit_main("translate", pix2pix_run, "--input", inputs, "--out", tmp_path / "two")[0] == 0
    for name in [f"{i}.png" for i in range(5)] + ["grid.png"]:
        assert (tmp_path / "one" / name).read_bytes() == (tmp_path / "two" / name).read_bytes(), name
