"""The shipped face CNN (``--features faces``): held-out accuracy, contract, ``auto``, evaluate."""

from __future__ import annotations

import importlib.util
import json
import math
import zipfile
from pathlib import Path

import pytest
import torch

from gankit.errors import GankitError
from gankit.metrics import face_classifier as fc
from gankit.metrics import features as feats
from gankit.metrics.face_classifier import (ATTRIBUTE_NAMES, FEATURE_DIM, HEADS, JOINT_CLASSES, WEIGHTS_FILE,
                                            attribute_probabilities, held_out_split, labels_from_dataset,
                                            load_face_classifier, predict_attributes, read_info)
from gankit.metrics.features import FaceFeatures, is_face_data, resolve_features

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def _no_inception_on_disk(tmp_path, monkeypatch):
    """Empty torch hub cache and HOME: no Inception weights are found, so ``auto`` must choose."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch-home"))
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    from gankit.metrics import clear_cache

    clear_cache()


@pytest.fixture(scope="module")
def faces():
    """The built-in faces at the network's input size and their (N, 3) labels."""
    from gankit.data import load_dataset

    ds = load_dataset("fairface", resolution=read_info()["input_size"], channels=3)
    return ds, labels_from_dataset(ds)


def _script():
    path = ROOT / "scripts" / "train_face_classifier.py"
    spec = importlib.util.spec_from_file_location("train_face_classifier", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# ---- the shipped weights ------------------------------------------------------------------------
def test_weights_are_small_and_documented():
    assert WEIGHTS_FILE.stat().st_size < 1_500_000
    info = read_info()
    assert info["split"]["train"] == 1600 and info["split"]["held_out"] == 400
    acc, base = info["held_out_accuracy"], info["baselines"]
    for head, values in HEADS.items():
        assert base[head]["classes"] == len(values)
        assert acc[head] > base[head]["majority_rate"] + 0.05, head  # better than always guessing the mode
    assert acc["gender"] >= 0.75
    assert len(info["variants"]["results"]) >= 2
    assert info["variant"] in {v["variant"] for v in info["variants"]["results"]}


def test_held_out_accuracy_reproduces_the_recorded_numbers(faces):
    ds, labels = faces
    info = read_info()
    _, held = held_out_split(labels, held_out=info["split"]["held_out"], seed=info["split"]["seed"])
    model = load_face_classifier()
    assert not model.training
    with torch.no_grad():
        out = model(ds.data[held].float() / 127.5 - 1)
    for h, head in enumerate(HEADS):
        got = float((out[head].argmax(1) == labels[held, h]).float().mean())
        # two faces of 400 of slack for a different BLAS; another network or split misses by far more
        assert got == pytest.approx(info["held_out_accuracy"][head], abs=0.0051), head


def test_training_split_is_deterministic_and_stratified(faces):
    _, labels = faces
    script = _script()
    info = read_info()
    train, held = held_out_split(labels, held_out=400, seed=info["split"]["seed"])
    train2, held2 = held_out_split(labels.clone(), held_out=400, seed=info["split"]["seed"])
    assert torch.equal(train, train2) and torch.equal(held, held2)
    assert len(train) == 1600 and len(held) == 400
    assert torch.equal(torch.cat([train, held]).sort().values, torch.arange(2000))
    assert script.split_digest(held) == info["split"]["held_out_sha1"]  # the split the weights were held out on
    _, other = held_out_split(labels, held_out=400, seed=info["split"]["seed"] + 1)
    assert not torch.equal(held, other)
    for h, values in enumerate(HEADS.values()):  # each value keeps about its 20% share
        if h == 0:
            continue  # age: stratified only approximately (sorted last)
        for c in range(len(values)):
            total, kept = int((labels[:, h] == c).sum()), int((labels[held, h] == c).sum())
            assert abs(kept - total / 5) <= 1.5, (h, c)


def test_missing_weights_are_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.setattr(fc, "WEIGHTS_FILE", tmp_path / "face_cnn.safetensors")
    fc._stored.cache_clear()
    try:
        with pytest.raises(GankitError, match="train_face_classifier.py"):
            load_face_classifier()
    finally:
        fc._stored.cache_clear()


# ---- features and attributes ----------------------------------------------------------------------
def test_features_contract_any_size_and_grey():
    ext = FaceFeatures()
    assert ext.name == "faces" and ext.has_logits and ext.num_features == FEATURE_DIM
    x = torch.rand(3, 3, 64, 64) * 2 - 1
    with torch.no_grad():
        f = ext(x)
        assert f.shape == (3, FEATURE_DIM) and f.dtype == torch.float32 and torch.isfinite(f).all()
        for shape in ((2, 3, 16, 16), (2, 3, 32, 32), (2, 3, 128, 128), (2, 3, 80, 72)):
            assert ext(torch.rand(shape) * 2 - 1).shape == (2, FEATURE_DIM)
        logp = ext.class_logits(x)
        assert logp.shape == (3, JOINT_CLASSES) and torch.allclose(logp.logsumexp(1), torch.zeros(3), atol=1e-4)
        grey = x[:, :1]
        assert torch.allclose(ext(grey), ext(grey.expand(-1, 3, -1, -1)))  # grey is repeated to RGB
    with pytest.raises(GankitError, match="3, H, W"):
        ext(torch.zeros(1, 2, 64, 64))


def test_predict_attributes_on_held_out_faces(faces):
    ds, labels = faces
    info = read_info()
    _, held = held_out_split(labels, held_out=400, seed=info["split"]["seed"])
    idx = held[:100]
    probs = predict_attributes(ds.data[idx])  # uint8 is accepted as datasets hold it
    assert set(probs) == {"age", "gender", "race"}
    for h, (head, values) in enumerate(HEADS.items()):
        p = probs[head]
        assert p.shape == (100, len(values)) and p.dtype == torch.float32
        assert torch.allclose(p.sum(1), torch.ones(100), atol=1e-5)
    same = predict_attributes(ds.data[idx].float() / 127.5 - 1)
    assert torch.allclose(same["race"], probs["race"], atol=1e-5)
    gender_acc = float((probs["gender"].argmax(1) == labels[idx, 1]).float().mean())
    assert gender_acc >= 0.7
    flat = attribute_probabilities(ds.data[idx[:5]])
    assert flat.shape == (5, len(ATTRIBUTE_NAMES)) and set(ATTRIBUTE_NAMES) == set(ds.attribute_names)
    col = ATTRIBUTE_NAMES.index("gender=Female")
    assert torch.allclose(flat[:, col], probs["gender"][:5, HEADS["gender"].index("Female")])
    with pytest.raises(GankitError, match="N, C, H, W"):
        predict_attributes(torch.zeros(3, 64, 64))


# ---- choosing the features -------------------------------------------------------------------------
def test_auto_picks_faces_for_face_data_and_mnist_for_digits(tmp_path, faces):
    assert resolve_features("auto", channels=3, resolution=64, data="fairface").name == "faces"
    assert resolve_features("auto", channels=3, resolution=32, data="FairFace").name == "faces"
    assert resolve_features("auto", channels=3, resolution=64, data=faces[0]).name == "faces"  # a Dataset
    assert resolve_features("auto", channels=1, resolution=28, data="mnist").name == "mnist"
    assert resolve_features("faces", channels=3, resolution=64).name == "faces"
    prepared = tmp_path / "prepared"
    prepared.mkdir()
    (prepared / "report.json").write_text(json.dumps({"src": "x", "faces": 1, "crops": []}))
    assert is_face_data(prepared) and is_face_data(str(prepared))
    assert resolve_features("auto", channels=3, resolution=64, data=str(prepared)).name == "faces"
    for top in ("", "prepared/"):  # zipped, the report at the root or in the one top folder
        with zipfile.ZipFile(tmp_path / "prepared.zip", "w") as archive:
            archive.write(prepared / "report.json", top + "report.json")
        assert is_face_data(tmp_path / "prepared.zip")
    with zipfile.ZipFile(tmp_path / "plain.zip", "w") as archive:
        archive.writestr("a.png", b"")
    assert not is_face_data(tmp_path / "plain.zip")
    other = tmp_path / "photos"
    other.mkdir()
    (other / "report.json").write_text("{}")  # some other report.json
    assert not is_face_data(other) and not is_face_data(None) and not is_face_data("mnist")
    with pytest.raises(GankitError, match="--features faces") as err:
        resolve_features("auto", channels=3, resolution=64, data=str(other))
    assert "--inception-weights" in str(err.value) and "swd" in str(err.value)
    with pytest.raises(GankitError, match="--features must be one of"):
        resolve_features("vgg", channels=3, resolution=64)
    assert "faces" in feats.FEATURE_CHOICES


# ---- evaluate, neighbours and --eval-every on a tiny face run ---------------------------------------
@pytest.fixture(scope="module")
def face_run(tmp_path_factory):
    import gankit

    out = tmp_path_factory.mktemp("faces") / "r"
    gankit.train("dcgan", data="fairface", out=out, preset="tiny", steps=4, quiet=True,
                 overrides={"max_images": 64, "eval_every": 4, "eval_n": 32, "eval_metrics": "fid,kid"})
    return out


def test_eval_every_uses_the_face_features(face_run):
    lines = [json.loads(line) for line in (face_run / "metrics.jsonl").read_text().splitlines() if line.strip()]
    fids = [row["metric/fid"] for row in lines if "metric/fid" in row]
    assert fids and all(math.isfinite(v) and v > 0 for v in fids)


def test_evaluate_with_face_features(face_run):
    from gankit.metrics import evaluate

    kw = dict(metrics="fid,kid,pr,is", n=48, seed=1, kid_subsets=5, kid_subset_size=32)
    res = evaluate(face_run, "fairface", features="faces", **kw)
    assert res["features"] == "faces" and res["n"] == 48
    for key in ("fid", "kid", "precision", "recall", "is"):
        assert math.isfinite(res[key]), key
    assert res["fid"] > 0 and 1 <= res["is"] <= JOINT_CLASSES
    auto = evaluate(face_run, features="auto", **kw)  # the run's own data: fairface -> faces
    assert auto["features"] == "faces" and auto["fid"] == pytest.approx(res["fid"])


def test_neighbours_with_face_features(face_run):
    from gankit.api import load
    from gankit.metrics.memorisation import nearest_neighbours

    model = load(face_run)
    for features in ("faces", "auto"):
        result = nearest_neighbours(model, None, n=2, k=2, features=features, n_compare=20)
        assert result["features"] == "faces" and result["feature"]["indices"].shape == (2, 2)
