"""The built-in ``fairface`` faces, ``--where`` label filters and the ``--hflip``/``--augment`` flags.

Data: the faces shipped in the package and small PNG folders made in tmp_path.
"""

from __future__ import annotations

import csv
import json
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import gankit.data
from gankit.config import TrainConfig, parse_overrides
from gankit.data import BUILTIN_NAMES, Dataset, describe_builtins, load_dataset
from gankit.data.builtin import FAIRFACE_DIR
from gankit.data.where import Condition, filter_dataset, format_where, parse_where, where_mask
from gankit.errors import GankitError

RACES = ("White", "Black", "East Asian", "Southeast Asian", "Indian", "Latino_Hispanic", "Middle Eastern")


def fairface_rows() -> list[dict[str, str]]:
    with open(FAIRFACE_DIR / "labels.csv", newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


@pytest.fixture(scope="module")
def faces():
    """All 2,000 faces at 16 px (decoded once per test session: the disk cache is shared)."""
    return load_dataset("fairface", resolution=16)


# --------------------------------------------------------------------------- the built-in set

def test_fairface_is_shipped_small_with_its_attribution():
    files = [p for p in FAIRFACE_DIR.rglob("*") if p.is_file()]
    jpegs = [p for p in files if p.suffix == ".jpg"]
    assert len(jpegs) == 2000
    assert sum(p.stat().st_size for p in files) < 8 * 10**6
    assert max(p.stat().st_size for p in files) < 2_500_000
    with Image.open(jpegs[0]) as im:
        assert im.size == (128, 128) and im.mode == "RGB"
    source = (FAIRFACE_DIR / "SOURCE.md").read_text(encoding="utf-8")
    assert "CC BY 4.0" in source and "Kärkkäinen" in source and "resized" in source
    assert "CC BY 4.0" in (FAIRFACE_DIR / "LICENSE").read_text(encoding="utf-8")
    rows = fairface_rows()
    assert list(rows[0]) == ["file", "age", "gender", "race"] and len(rows) == 2000
    assert Counter(r["gender"] for r in rows) == {"Male": 1065, "Female": 935}


def test_fairface_loads_2000_faces_with_labels(faces):
    assert "fairface" in BUILTIN_NAMES and "FairFace" in describe_builtins()["fairface"]
    assert len(faces) == 2000 and faces.shape == (3, 16, 16) and faces.data.dtype == torch.uint8
    assert faces.source == "fairface" and faces.where == "" and faces.labels is None
    names = faces.attribute_names
    assert {"race=East Asian", "gender=Female", "age=20-29", "age=more than 70"} <= set(names)
    assert len(names) == 9 + 2 + 7 and faces.attributes.shape == (2000, 18)
    assert faces.attributes[:, names.index("gender=Male")].sum() == 1065
    assert "labels age (9 values), gender (2 values), race (7 values)" in faces.summary()
    native = load_dataset("fairface", max_images=3)
    assert native.shape == (3, 128, 128) and len(native) == 3
    assert faces.data.float().std() > 20  # real faces, not blank


def test_where_race_east_asian_gives_304_faces():
    ds = load_dataset("fairface", where="race=East Asian", resolution=16)
    assert len(ds) == 304 and ds.where == "race=East Asian"
    assert (ds.attributes[:, ds.attribute_names.index("race=East Asian")] == 1).all()
    assert "fairface: 304 images 3x16x16 where race=East Asian" in ds.summary()
    assert not ds.skipped  # filtered-out faces are not "skipped files"


def test_where_counts_match_the_label_table(faces):
    counts = Counter(r["race"] for r in fairface_rows())
    assert counts["East Asian"] == 304
    for race in RACES:
        assert len(filter_dataset(faces, f"race={race}")) == counts[race]
    assert sum(counts[r] for r in RACES) == 2000


def test_combined_conditions_in_not_equal_and_spelling(faces):
    rows = fairface_rows()
    want = sum(r["race"] == "East Asian" and r["gender"] == "Female" for r in rows)
    a = load_dataset("fairface", where="race=East Asian,gender=Female", resolution=16)
    b = load_dataset("fairface", where=["race = east asian", "GENDER=female"], resolution=16)
    assert len(a) == len(b) == want and torch.equal(a.data, b.data)
    assert b.where == "race=East Asian,gender=Female"  # spelt as the table does
    young = filter_dataset(faces, "age=20-29|30-39")
    assert len(young) == sum(r["age"] in ("20-29", "30-39") for r in rows) == 606 + 420
    assert len(filter_dataset(faces, "gender!=Male")) == 935
    assert len(filter_dataset(faces, "race!=White|Black,gender=Male")) == sum(
        r["race"] not in ("White", "Black") and r["gender"] == "Male" for r in rows)
    first = load_dataset("fairface", where="race=East Asian", resolution=16, max_images=10)
    assert len(first) == 10 and torch.equal(first.data, filter_dataset(faces, "race=East Asian").data[:10])


def test_parse_and_format_where():
    conds = parse_where(["race=East Asian", " age=20-29| 30-39 , gender!=Male"])
    assert conds == [Condition("race", ("East Asian",)), Condition("age", ("20-29", "30-39")),
                     Condition("gender", ("Male",), negate=True)]
    assert format_where(conds) == "race=East Asian,age=20-29|30-39,gender!=Male"
    assert parse_where(None) == parse_where("") == parse_where([" ", ""]) == []
    assert parse_where("a==b") == [Condition("a", ("b",))]
    for bad in ("race", "=x", "race=", "age=20-29|"):
        with pytest.raises(GankitError, match="--where"):
            parse_where(bad)


@pytest.mark.parametrize("where, message", [
    ("rac=East Asian", r"unknown column 'rac' in fairface; did you mean 'race'\? its columns: age, gender, race"),
    ("ethnicity=East Asian", r"unknown column 'ethnicity'.*its columns: age, gender, race"),
    ("race=East-Asian", r"unknown value 'East-Asian' for race in fairface; did you mean 'East Asian'.*its values: "
                        r"Black, East Asian, Indian, Latino_Hispanic, Middle Eastern, Southeast Asian, White"),
    ("age=20-30", r"unknown value '20-30' for age.*its values: 0-2, 3-9, 10-19, 20-29"),
    ("race=Southeast Asian,age=more than 70",  # no such face among the 2,000
     r"--where race=Southeast Asian,age=more than 70: no row of fairface matches"),
    ("gender", r"expected column=value"),
])
def test_where_errors_are_helpful(where, message):
    with pytest.raises(GankitError, match=message) as info:
        load_dataset("fairface", where=where, resolution=8)
    assert "\n" not in str(info.value)


def test_where_on_class_labels_and_unlabelled_data(tmp_path):
    assert len(load_dataset("mnist", where="class=3", max_images=None)) == 1010
    assert len(load_dataset("mnist", where="class=3|5", max_images=7)) == 7
    plain = tmp_path / "plain"
    for i in range(2):
        save_png(plain / f"{i}.png", (i, 0, 0))
    with pytest.raises(GankitError, match="needs labels.*labels.csv"):
        load_dataset(plain, where="kind=cat", cache_dir=False)
    with pytest.raises(GankitError, match="unknown value 'x' for class"):
        load_dataset("mnist", where="class=x")


def test_where_on_a_dataset_with_yes_no_attributes():
    # as StarGAN's attribute data (CelebA list_attr, mnist-attributes) holds them: +1/-1 -> 1/0
    attrs = torch.tensor([[1, 0, 1], [0, 0, 1], [1, 1, 0], [0, 1, 1]], dtype=torch.float32)
    ds = Dataset(data=torch.arange(4, dtype=torch.uint8).view(4, 1, 1, 1), attributes=attrs,
                 attribute_names=["Red", "Light_Background", "Thick"], source="attrs")
    red = filter_dataset(ds, "Red=1")
    assert red.data.flatten().tolist() == [0, 2] and (red.attributes[:, 0] == 1).all() and red.where == "Red=1"
    assert filter_dataset(ds, "Red=false,thick=yes").data.flatten().tolist() == [1, 3]
    assert filter_dataset(ds, "red=-1").where == "Red=0"
    with pytest.raises(GankitError, match="Red is a yes/no column"):
        filter_dataset(ds, "Red=maybe")
    two = Dataset(data=ds.data, data_b=ds.data, attributes=attrs, attribute_names=ds.attribute_names, kind="unpaired")
    with pytest.raises(GankitError, match="single-domain"):
        filter_dataset(two, "Red=1")


def test_where_mask_on_a_table():
    names = ["kind=cat", "kind=dog", "Smiling"]
    table = np.array([[1, 0, 1], [0, 1, 1], [1, 0, 0]], dtype=np.float32)
    assert where_mask(names, table, "kind=cat").tolist() == [True, False, True]
    assert where_mask(names, table, "kind=cat,smiling=-1").tolist() == [False, False, True]
    assert where_mask(names, table, "kind!=cat|dog").tolist() == [False, False, False]


# --------------------------------------------------------------------------- a user's labelled folder

def save_png(path: Path, colour) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (12, 10), colour).save(path)


@pytest.fixture
def labelled(tmp_path):
    """Six PNGs (red = 40 x index; 4 and 5 in a subfolder, which the table names fully or by base
    name), five with a row in labels.csv; one row has no image."""
    root = tmp_path / "pets"
    for i in range(6):
        save_png(root / ("more" if i >= 4 else "") / f"{i}.png", (40 * i, 0, 0))
    rows = ["file,kind,smiling", "0.png,cat,yes", "1.png,dog,no", "2.png,cat,no", "more/4.png,dog,yes",
            "5.png,cat,yes", "missing.png,cat,yes"]
    (root / "labels.csv").write_text("\n".join(rows) + "\n")
    return root


def reds(ds) -> list[int]:
    return [round(int(v) / 40) for v in ds.data[:, 0, 0, 0]]


def test_where_on_a_csv_labelled_folder(labelled):
    cats = load_dataset(labelled, where="kind=cat", cache_dir=False)
    assert reds(cats) == [0, 2, 5] and cats.where == "kind=cat" and cats.shape == (3, 10, 12)
    assert cats.source == str(labelled.resolve())
    assert reds(load_dataset(labelled, where="smiling=yes", cache_dir=False)) == [0, 4, 5]
    assert reds(load_dataset(labelled, where=["kind=cat", "smiling=no"], cache_dir=False)) == [2]
    assert reds(load_dataset(labelled, where="kind!=cat", resolution=8)) == [1, 4]
    # image 3 has no row: it is never picked by a filter, and reported as skipped
    both = load_dataset(labelled, where="kind=dog|cat", cache_dir=False)
    assert reds(both) == [0, 1, 2, 4, 5] and [name for name, _ in both.skipped] == ["3.png"]
    with pytest.raises(GankitError, match="unknown value 'bird' for kind.*its values: cat, dog"):
        load_dataset(labelled, where="kind=bird", cache_dir=False)
    with pytest.raises(GankitError, match="unknown column 'colour'.*its columns: kind, smiling"):
        load_dataset(labelled, where="colour=red", cache_dir=False)
    plain = load_dataset(labelled, cache_dir=False)  # no --where: the folder as before
    assert len(plain) == 6 and plain.attributes is None
    table = load_dataset(labelled, labels=labelled / "labels.csv", cache_dir=False)
    assert len(table) == 5 and table.attribute_names == ["kind=cat", "kind=dog", "smiling"]


def test_where_on_class_folders(tmp_path):
    for cls, colour in (("cats", (255, 0, 0)), ("dogs", (0, 0, 255))):
        for i in range(2 if cls == "cats" else 3):
            save_png(tmp_path / "pets" / cls / f"{i}.png", colour)
    dogs = load_dataset(tmp_path / "pets", where="class=dogs", cache_dir=False)
    assert len(dogs) == 3 and dogs.labels.tolist() == [1, 1, 1] and dogs.classes == ["cats", "dogs"]


# --------------------------------------------------------------------------- config and command line

def test_config_where_field_and_set():
    assert TrainConfig().where == ""
    assert parse_overrides(TrainConfig, ["where=race=East Asian", "hflip=true"]) == {
        "where": "race=East Asian", "hflip": True}
    with pytest.raises(GankitError, match="expected column=value"):
        TrainConfig(where="race").validate()


@pytest.fixture(scope="module")
def face_run(tmp_path_factory):
    from tests.conftest import run_cli

    out = tmp_path_factory.mktemp("faces") / "run"
    done = run_cli("train", "dcgan", "--data", "fairface", "--where", "race=east asian", "--hflip",
                   "--augment", "diffaugment", "--out", out, "--preset", "tiny", "--steps", "1", "--quiet")
    assert done.returncode == 0, done.stderr
    return out


def test_train_records_where_and_hflip(face_run):
    from gankit.api import info

    config = json.loads((face_run / "config.json").read_text())["config"]
    assert config["where"] == "race=East Asian" and config["data"] == "fairface"
    assert config["hflip"] is True and config["augment"] == "diffaugment"
    meta = info(face_run)
    assert meta["config"]["where"] == "race=East Asian" and meta["data"]["count"] == 304


def spy_load(monkeypatch) -> list:
    calls: list = []

    class Stop(Exception):
        pass

    def fake(spec, **kw):
        calls.append((spec, kw.get("where")))
        raise Stop

    monkeypatch.setattr(gankit.data, "load_dataset", fake)
    return calls, Stop


def test_evaluate_defaults_to_the_runs_data_and_filter(face_run, monkeypatch):
    from gankit.metrics.evaluate import clear_cache, evaluate

    clear_cache()
    calls, stop = spy_load(monkeypatch)
    for kwargs in ({}, {"where": ""}, {"data": "mnist"}, {"data": "fairface", "where": "gender=Female"}):
        with pytest.raises(stop):
            evaluate(face_run, metrics="swd", n=4, **kwargs)
    assert calls == [("fairface", "race=East Asian"), ("fairface", None), ("mnist", None),
                     ("fairface", "gender=Female")]


def test_neighbors_default_to_the_runs_subset(face_run):
    from gankit.api import load
    from gankit.metrics.memorisation import nearest_neighbours

    result = nearest_neighbours(load(face_run), n=2, k=2, features="pixel", n_compare=8)
    assert result["data"] == "fairface where race=East Asian"
    assert result["train_images"] + result["heldout_images"] == 304
    everything = nearest_neighbours(load(face_run), n=2, k=2, features="pixel", n_compare=8, where="")
    assert everything["data"] == "fairface" and everything["train_images"] + everything["heldout_images"] == 2000


def test_neighbors_command_and_report_show_the_subset(face_run, cli):
    from gankit.viz.report import render_report

    done = cli("neighbors", face_run, "--n", "2", "--k", "2", "--features", "pixel", "--n-compare", "8")
    assert done.returncode == 0, done.stderr
    assert json.loads((face_run / "nn.json").read_text())["data"] == "fairface where race=East Asian"
    assert "fairface where race=East Asian" in render_report(face_run)


def test_bad_where_is_one_line_and_exit_code_2(tmp_path, cli):
    done = cli("train", "dcgan", "--data", "fairface", "--out", tmp_path / "r", "--preset", "tiny", "--steps", "1",
               "--where", "gender=Female", "--where", "ethnicity=East Asian")
    assert done.returncode == 2, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in done.stderr, done.stderr
    assert "unknown column 'ethnicity' in fairface" in lines[0] and "age, gender, race" in lines[0]
    assert not (tmp_path / "r").exists()


def test_stargan_attribute_table_takes_where_on_any_column():
    from gankit.registry import get_family

    stargan = get_family("stargan")
    config = stargan.Config(data=str(FAIRFACE_DIR), attr_file=str(FAIRFACE_DIR / "labels.csv"), attrs="gender",
                            where="race=East Asian", resolution=8)
    ds = stargan.load_data(config)
    assert len(ds) == 304 and ds.attribute_names == ["gender=Female", "gender=Male"] and ds.where == "race=East Asian"
