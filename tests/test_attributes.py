"""Attribute data for StarGAN: the table formats, matching images to rows, class domains and the
built-in mnist-attributes with known ground truth."""

from __future__ import annotations

import zipfile

import numpy as np
import pytest
import torch
from PIL import Image

from gankit.data import attributes as A
from gankit.data.attributes import (
    MNIST_ATTRIBUTES,
    class_domains,
    load_attribute_dataset,
    match_files,
    mnist_attributes,
    read_attribute_table,
    render_mnist_attributes,
    select_attributes,
)
from gankit.data.builtin import _mnist
from gankit.data.dataset import Dataset
from gankit.errors import GankitError

CELEBA = """3
5_o_Clock_Shadow Arched_Eyebrows  Smiling
000001.jpg -1  1  1
000002.jpg  1 -1 -1

000003.jpg -1 -1  1
"""


def _write(path, text):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def _raises(match, fn, *args, **kwargs):
    with pytest.raises(GankitError, match=match) as info:
        fn(*args, **kwargs)
    assert "\n" not in str(info.value)  # one clear line
    return str(info.value)


# ----------------------------------------------------------------------------- tables

def test_celeba_list_attr_is_parsed_with_runs_of_spaces(tmp_path):
    names, rows = read_attribute_table(_write(tmp_path / "list_attr_celeba.txt", CELEBA))
    assert names == ["5_o_Clock_Shadow", "Arched_Eyebrows", "Smiling"]
    assert rows == {"000001.jpg": [0, 1, 1], "000002.jpg": [1, 0, 0], "000003.jpg": [0, 0, 1]}
    # the same without the count line, and with a header naming the file column too
    names2, rows2 = read_attribute_table(_write(tmp_path / "b.txt", CELEBA.split("\n", 1)[1]))
    names3, rows3 = read_attribute_table(_write(tmp_path / "c.txt", "image_id " + CELEBA.split("\n", 1)[1]))
    assert names2 == names3 == names and rows2 == rows3 == rows


def test_csv_binary_and_categorical_columns(tmp_path):
    text = ("smiling,image,young,glasses,gender,age\n"
            "1,a.png,0,true,Male,20-29\n"
            "-1,sub\\b.png,1,False,Female,5-9\n"
            "+1,./c.png,1,yes,Male,\n")
    names, rows = read_attribute_table(_write(tmp_path / "attrs.csv", text))
    # the column called "image" holds the file names; ages sort naturally (5 before 20)
    assert names == ["smiling", "young", "glasses", "gender=Female", "gender=Male", "age=5-9", "age=20-29"]
    assert rows == {"a.png": [1, 0, 1, 0, 1, 0, 1], "sub/b.png": [0, 1, 0, 1, 0, 1, 0],
                    "c.png": [1, 1, 1, 0, 1, 0, 0]}  # empty categorical cell: none of its values
    tsv = "file\tRed\tTall\nx.jpg\t1\t-1\ny.jpg\t-1\t1\n"
    assert read_attribute_table(_write(tmp_path / "t.tsv", tsv)) == (["Red", "Tall"], {"x.jpg": [1, 0], "y.jpg": [0, 1]})
    # no named file column: the first column
    names, rows = read_attribute_table(_write(tmp_path / "d.csv", "who;Male\nz.png;1\n"))
    assert names == ["Male"] and rows == {"z.png": [1]}


@pytest.mark.parametrize("name, text, match", [
    ("ragged.txt", CELEBA.replace("000002.jpg  1 -1 -1", "000002.jpg  1 -1"), r"ragged.txt:4: 2 values for 3 attributes"),
    ("bad.txt", CELEBA.replace("000003.jpg -1 -1  1", "000003.jpg -1 2 1"), r"bad.txt:6: value '2' is not \+1/-1"),
    ("ragged.csv", "file,a,b\nx.png,1,0\ny.png,1\n", r"ragged.csv:3: 2 fields, the header on line 1 has 3"),
    ("empty_rows.csv", "file,a,b\n\n", r"empty_rows.csv: no image rows"),
    ("empty_rows.txt", "10\nA B\n", r"empty_rows.txt: no image rows"),
    ("empty.txt", "\n\n", r"empty.txt: empty attribute table"),
    ("one.csv", "file\nx.png\n", r"one.csv:1: unknown attribute table format"),
    ("words.txt", "hello\n", r"words.txt:1: unknown attribute table format"),
    ("twice.csv", "file,a\nx.png,1\n./x.png,0\n", r"twice.csv:3: x.png is listed twice \(first on line 2\)"),
    ("gap.csv", "file,a\nx.png,1\ny.png,\n", r"gap.csv:3: empty value in column 'a'"),
    ("dup.csv", "file,a,a\nx.png,1,0\n", r"dup.csv: attribute 'a' appears twice"),
])
def test_table_errors_name_the_file_and_line(tmp_path, name, text, match):
    _raises(match, read_attribute_table, _write(tmp_path / name, text))


def test_missing_and_binary_tables_are_user_errors(tmp_path):
    _raises(r"attribute table not found: .*nope.txt", read_attribute_table, tmp_path / "nope.txt")
    (tmp_path / "img.png").write_bytes(b"\x89PNG\r\n\x1a\n\xff\xfe\x00\x81")
    _raises(r"img.png: not a text file", read_attribute_table, tmp_path / "img.png")
    _raises(r"must be a file", read_attribute_table, tmp_path)


def test_select_attributes_keeps_the_asked_order_and_suggests_names():
    names = ["Black_Hair", "Blond_Hair", "Male", "age=young", "age=old"]
    rows = {"a.jpg": [1, 0, 1, 0, 1]}
    assert select_attributes(names, rows, None) == (names, rows)
    assert select_attributes(names, rows, ["male", "Black_Hair"]) == (["Male", "Black_Hair"], {"a.jpg": [1, 1]})
    assert select_attributes(names, rows, ["age"]) == (["age=young", "age=old"], {"a.jpg": [0, 1]})
    msg = _raises(r"unknown attribute 'Blond_Hiar'; did you mean Blond_Hair", select_attributes, names, rows,
                  ["Blond_Hiar"])
    assert "Black_Hair" in msg
    _raises(r"unknown attribute 'Zzz' \(the table has 5: Black_Hair", select_attributes, names, rows, ["Zzz"])
    _raises(r"'Male' is asked for twice", select_attributes, names, rows, ["Male", "male"])


def test_match_files_by_path_base_name_or_stem():
    table = ["000001.jpg", "000002.jpg", "Male/7.png", "Female/7.png", "x/y/z.png"]
    files = ["img_align_celeba/000001.jpg", "000002.png", "Male/7.png", "other/7.png", "a/y/z.png", "none.png"]
    assert match_files(files, table) == {
        "img_align_celeba/000001.jpg": "000001.jpg",  # bare names in the table
        "000002.png": "000002.jpg",  # converted to png
        "Male/7.png": "Male/7.png",
        "a/y/z.png": "x/y/z.png",  # longest common tail
    }  # other/7.png is ambiguous (Male or Female), none.png has no row


# ----------------------------------------------------------------------------- folders

def _image(value: int) -> np.ndarray:
    return np.full((12, 12, 3), value, np.uint8)


def _folder(tmp_path):
    root = tmp_path / "img_align_celeba"
    root.mkdir()
    for i, name in enumerate(["000001.png", "000002.png", "000003.png", "000004.png"]):
        Image.fromarray(_image(10 * (i + 1))).save(root / name)
    (root / "000005.png").write_bytes(b"not a png")  # has a row, cannot be decoded
    table = _write(tmp_path / "list_attr.txt",
                   "6\nSmiling Male\n000001.png 1 -1\n000002.png -1 1\n000004.png 1 1\n000005.png 1 1\n"
                   "000009.png -1 -1\n000010.png 1 1\n")
    return root, table


def test_attribute_dataset_matches_rows_and_counts_what_is_missing(tmp_path):
    root, table = _folder(tmp_path)
    ds = load_attribute_dataset(root, table, resolution=8)
    assert ds.kind == "image" and ds.data.shape == (3, 3, 8, 8)
    assert ds.attribute_names == ["Smiling", "Male"]
    assert ds.attributes.dtype == torch.float32
    assert ds.data[:, 0, 4, 4].tolist() == [10, 20, 40]  # images 1, 2, 4: each with its own row
    assert ds.attributes.tolist() == [[1, 0], [0, 1], [1, 1]]
    assert sorted(ds.skipped) == [("000003.png", "no attribute row"), ("000005.png", "not a readable image")]
    assert ds.rows_without_image == 2  # 000009, 000010
    assert "attributes Smiling, Male" in ds.summary() and "skipped 2" in ds.summary()
    again = load_attribute_dataset(root, table, resolution=8)  # from the decode cache
    assert torch.equal(again.data, ds.data) and torch.equal(again.attributes, ds.attributes)
    assert sorted(again.skipped) == sorted(ds.skipped)


def test_attribute_dataset_options_wanted_max_images_and_zip(tmp_path):
    root, table = _folder(tmp_path)
    ds = load_attribute_dataset(root, table, wanted=["Male"], max_images=2, channels=1, cache_dir=False)
    assert ds.data.shape == (2, 1, 12, 12) and ds.attributes.tolist() == [[0], [1]]
    zpath = tmp_path / "faces.zip"
    with zipfile.ZipFile(zpath, "w") as zf:
        for p in sorted(root.iterdir()):
            zf.write(p, f"faces/{p.name}")
    ds = load_attribute_dataset(zpath, table, cache_dir=False)
    assert ds.attributes.tolist() == [[1, 0], [0, 1], [1, 1]] and ds.data[:, 1, 0, 0].tolist() == [10, 20, 40]


def test_attribute_dataset_user_errors(tmp_path):
    root, table = _folder(tmp_path)
    other = _write(tmp_path / "other.csv", "file,Smiling\nzzz.png,1\n")
    _raises(r"none of the 5 images has a row in .*other.csv \(e.g. 000001.png; the table lists zzz.png\)",
            load_attribute_dataset, root, other)
    _raises(r"image folder not found", load_attribute_dataset, tmp_path / "missing", table)
    _raises(r"unknown attribute 'Smile'; did you mean Smiling", load_attribute_dataset, root, table, wanted=["Smile"])
    _raises(r"resolution must be", load_attribute_dataset, root, table, resolution=0)


def test_class_domains_are_one_hot():
    ds = Dataset(data=torch.zeros(4, 3, 8, 8, dtype=torch.uint8), labels=torch.tensor([0, 2, 1, 2]),
                 classes=["angry", "happy", "sad"], source="rafd")
    out = class_domains(ds)
    assert out.attribute_names == ["angry", "happy", "sad"] and out.attributes.dtype == torch.float32
    assert out.attributes.tolist() == [[1, 0, 0], [0, 0, 1], [0, 1, 0], [0, 0, 1]]
    assert out.data is ds.data and out.labels is ds.labels
    _raises(r"rafd: class folders as domains need at least two classes", class_domains,
            Dataset(data=ds.data, source="rafd"))


# ----------------------------------------------------------------------------- mnist-attributes

def test_mnist_attributes_are_deterministic_and_balanced():
    ds = mnist_attributes(28)
    A._mnist_attributes.cache_clear()
    again = mnist_attributes(28)
    assert ds.data.dtype == torch.uint8 and ds.data.shape == (10_000, 3, 28, 28)
    assert again.data.numpy().tobytes() == ds.data.numpy().tobytes()
    assert torch.equal(again.attributes, ds.attributes)
    assert ds.attribute_names == list(MNIST_ATTRIBUTES) == ["Red", "Light_Background", "Thick"]
    assert ds.source == "mnist-attributes" and ds.classes == [str(d) for d in range(10)]
    assert ds.labels.tolist() == _mnist(28)[1].tolist()
    share = ds.attributes.mean(0)
    assert ((share > 0.48) & (share < 0.52)).all(), share
    combos = (ds.attributes @ torch.tensor([1.0, 2.0, 4.0])).long().bincount(minlength=8)
    assert combos.min() > 1100  # all 8 combinations well represented (1,250 expected)
    first = mnist_attributes(28, 5)
    assert len(first) == 5 and torch.equal(first.data, ds.data[:5])
    _raises(r"max_images must be at least 1", mnist_attributes, 28, 0)


def test_rendering_shows_each_attribute():
    digits = _mnist(32)[0][:100]
    for code in range(8):
        attrs = np.array([[code & 1, code >> 1 & 1, code >> 2 & 1]] * len(digits), np.float32)
        red, light, thick = attrs[0]
        img = render_mnist_attributes(digits, attrs).int()
        assert img.shape == (100, 3, 32, 32) and img.dtype == torch.int32
        border = torch.cat([img[..., :2, :].flatten(1), img[..., -2:, :].flatten(1)], 1)
        median = border.float().median(1).values  # a few digits touch the border
        assert (median == 255).all() if light else (median == 0).all()
        ink = (img - median[:, None, None, None]).abs().amax(1) > 128  # the strokes, (N, R, R)
        assert (ink.sum((1, 2)) > 5).all()
        r, g, _ = img.permute(1, 0, 2, 3)[:, ink].float().mean(1)
        if red:  # pure red: G = B everywhere, 0 over black; R = 255 everywhere over white
            assert torch.equal(img[:, 1], img[:, 2])
            if light:
                assert (img[:, 0] == 255).all() and g < 100
            else:
                assert (img[:, 1:] == 0).all() and r > 150
        else:  # grey: white on black or black on white
            assert torch.equal(img[:, 0], img[:, 1]) and torch.equal(img[:, 1], img[:, 2])
            assert r < 100 if light else r > 150
        if thick:
            thin = render_mnist_attributes(digits, attrs * np.array([1, 1, 0], np.float32)).int()
            ink_of = (lambda x: (x - 255).abs().sum((1, 2, 3))) if light else (lambda x: x.sum((1, 2, 3)))
            assert (ink_of(img) > ink_of(thin) * 1.3).all()  # every digit gains ink


def test_render_rejects_bad_shapes():
    with pytest.raises(ValueError, match=r"digits must be \(N, R, R\)"):
        render_mnist_attributes(np.zeros((2, 8, 9), np.uint8), np.zeros((2, 3)))
