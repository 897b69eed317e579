"""Two-domain data for image-to-image translation: the formats, the built-in tasks, bad files."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from gankit.data.builtin import _mnist
from gankit.data.two_domain import DIGIT_COLOURS, grey, load_two_domain, sketch
from gankit.errors import GankitError


def _save(path, array):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(path)


def _solid(h, w, rgb):
    return np.broadcast_to(np.array(rgb, np.uint8), (h, w, 3)).copy()


def test_side_by_side_pairs_are_cut_in_halves_and_bad_files_skipped(tmp_path):
    for i in range(3):
        _save(tmp_path / f"{i}.png", np.concatenate([_solid(20, 20, (200, 0, 0)), _solid(20, 20, (0, 0, 10 * i))], 1))
    _save(tmp_path / "square.png", _solid(20, 20, (1, 2, 3)))  # not a pair
    (tmp_path / "broken.jpg").write_bytes(b"not a jpeg")
    ds = load_two_domain(tmp_path, paired=True, resolution=16)
    assert ds.kind == "paired" and ds.data.shape == (3, 3, 16, 16) and ds.data_b.shape == (3, 3, 16, 16)
    assert (ds.data[:, 0] == 200).all() and (ds.data[:, 2] == 0).all()
    assert ds.data_b[:, 2, 0, 0].tolist() == [0, 10, 20]  # B stays with its A
    assert sorted(name for name, _ in ds.skipped) == ["broken.jpg", "square.png"]
    assert "paired A 3 x 3x16x16 -> B 3 x 3x16x16" in ds.summary()


def test_unpaired_split_takes_even_items_for_a_and_odd_for_b(tmp_path):
    for i in range(6):
        _save(tmp_path / f"{i}.png", np.concatenate([_solid(16, 16, (i, 0, 0)), _solid(16, 16, (0, i, 0))], 1))
    ds = load_two_domain(tmp_path, paired=False, resolution=16)
    assert ds.kind == "unpaired"
    assert ds.data[:, 0, 0, 0].tolist() == [0, 2, 4] and ds.data_b[:, 1, 0, 0].tolist() == [1, 3, 5]


def test_cyclegan_folders_are_two_unpaired_domains_of_any_size(tmp_path):
    for i in range(3):
        _save(tmp_path / "trainA" / f"a{i}.png", _solid(24, 24, (255, 0, 0)))
    for i in range(5):
        _save(tmp_path / "trainB" / f"b{i}.png", _solid(24, 32, (0, 0, 255)))
    ds = load_two_domain(tmp_path, paired=False, resolution=16)
    assert len(ds) == 3 and ds.data_b.shape == (5, 3, 16, 16)
    with pytest.raises(GankitError, match="same file names"):
        load_two_domain(tmp_path, paired=True, resolution=16)


@pytest.mark.parametrize("family", ["cyclegan", "discogan"])
def test_a_domain_smaller_than_the_snapshot_trains(tmp_path, family):
    """5 pictures in A, 3 in B, a snapshot of 4: crashed in torch.stack at the first snapshot."""
    import gankit

    for i in range(5):
        _save(tmp_path / "d" / "trainA" / f"a{i}.png", _solid(24, 24, (255, 0, 10 * i)))
    for i in range(3):
        _save(tmp_path / "d" / "trainB" / f"b{i}.png", _solid(24, 24, (0, 10 * i, 255)))
    result = gankit.train(family, data=tmp_path / "d", out=tmp_path / "run", preset="tiny", steps=2, quiet=True,
                          overrides={"n_snapshot": 4})
    assert result.status == "finished" and (tmp_path / "run" / "samples").is_dir()


def test_a_b_folders_pair_by_file_name(tmp_path):
    for name in ("x.png", "y.png"):
        _save(tmp_path / "A" / name, np.full((16, 16), 9, np.uint8))
        _save(tmp_path / "B" / name, _solid(16, 16, (200, 100, 0)))
    ds = load_two_domain(tmp_path, paired=True, resolution=16)
    assert ds.kind == "paired" and ds.data.shape[1] == 1 and ds.data_b.shape[1] == 3  # grey A, colour B
    _save(tmp_path / "B" / "z.png", _solid(16, 16, (0, 0, 0)))
    with pytest.raises(GankitError, match="z.png is in only one"):
        load_two_domain(tmp_path, paired=True, resolution=16)


def test_data_b_gives_the_second_domain(tmp_path):
    for i in range(2):
        _save(tmp_path / "a" / f"{i}.png", _solid(16, 16, (0, 0, 0)))
        _save(tmp_path / "b" / f"{i}.png", _solid(16, 16, (255, 255, 255)))
    ds = load_two_domain(tmp_path / "a", data_b=tmp_path / "b", paired=False, resolution=16)
    assert ds.kind == "unpaired" and int(ds.data.max()) == 0 and int(ds.data_b.min()) == 255


def test_colorize_pairs_grey_luma_with_colour(tmp_path):
    rng = np.random.RandomState(0)
    for i in range(4):
        _save(tmp_path / f"{i}.png", rng.randint(0, 256, (16, 16, 3), dtype=np.uint8))
    ds = load_two_domain(f"colorize:{tmp_path}", paired=True, resolution=16)
    assert ds.data.shape == (4, 1, 16, 16) and ds.data_b.shape == (4, 3, 16, 16)
    pil = np.asarray(Image.fromarray(ds.data_b[0].permute(1, 2, 0).numpy()).convert("L"))
    assert np.abs(ds.data[0, 0].numpy().astype(int) - pil.astype(int)).max() <= 1


def test_sketch_marks_the_strongest_edges_black_on_white():
    img = torch.zeros(1, 3, 16, 16, dtype=torch.uint8)
    img[:, :, :, 8:] = 255  # one vertical edge
    lines = sketch(img)
    assert lines.shape == (1, 1, 16, 16)
    dark = (lines[0, 0] == 0).nonzero()[:, 1].unique().tolist()
    assert dark and set(dark) <= {7, 8}  # lines only along the edge
    assert (lines[0, 0, :, :6] == 255).all()


def test_grey_of_grey_is_itself():
    x = torch.randint(0, 256, (2, 1, 4, 4), dtype=torch.uint8)
    assert torch.equal(grey(x), x)


@pytest.mark.parametrize("task", ["mnist-negative", "mnist-edges", "mnist-colour"])
def test_mnist_tasks_have_known_ground_truth(task):
    paired = load_two_domain(task, paired=True, resolution=16, max_images=40)
    digits, labels = _mnist(16)
    assert torch.equal(paired.data[:, 0], torch.from_numpy(digits[:40].copy()))
    assert paired.labels.tolist() == labels[:40].tolist()
    if task == "mnist-negative":
        assert torch.equal(paired.data_b, 255 - paired.data)
    if task == "mnist-colour":  # the digit in its class's colour: brightest pixel has that colour
        i = int(paired.data[0, 0].argmax())
        rgb = paired.data_b[0].flatten(1)[:, i].float()
        expected = torch.from_numpy(DIGIT_COLOURS[labels[0]]) * paired.data[0, 0].flatten()[i] / 255
        assert torch.allclose(rgb, expected, atol=1)
    unpaired = load_two_domain(task, paired=False, resolution=16, max_images=40)
    assert len(unpaired) == 20 and len(unpaired.data_b) == 20
    assert torch.equal(unpaired.data[:, 0], torch.from_numpy(digits[0:40:2].copy()))


def test_unknown_source_is_one_clear_error(tmp_path):
    with pytest.raises(GankitError, match="does not exist"):
        load_two_domain(tmp_path / "nope", paired=True, resolution=16)
