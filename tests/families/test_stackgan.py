"""StackGAN on the engine: the sentence encoder, Stage-I and Stage-II on one step count, exact
resume across the switches, the matching-aware discriminator, captions from a folder, and
sampling from text."""

from __future__ import annotations


import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

import gankit
from gankit.config import build_config
from gankit.engine import checkpoint as ckpt
from gankit.engine.runtime import Runtime
from gankit.engine.trainer import Trainer
from gankit.errors import GankitError
from gankit.families.base import Batch
from gankit.families.stackgan import StackGAN

from .common import sigterm_then_resume

TINY = dict(data="mnist-captions", preset="tiny", quiet=True)  # 4 text, 4 Stage-I, 4 Stage-II steps


def state(run):
    return ckpt.load_checkpoint(ckpt.latest_checkpoint(run))


def make_trainer(tmp_path, data="mnist-captions", **overrides):
    config = build_config(StackGAN.Config, preset="tiny", overrides={"data": str(data), **overrides})
    config.family = "stackgan"
    return Trainer(StackGAN, config, StackGAN.load_data(config), tmp_path, Runtime(torch.device("cpu")), quiet=True)


@pytest.fixture(scope="module")
def straight(tmp_path_factory):
    run = tmp_path_factory.mktemp("stackgan") / "run"
    gankit.train("stackgan", out=run, **TINY)
    return run


def captioned_folder(root, rows: str, images=("a.png", "b.png")):
    root.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for name in images:
        Image.fromarray(rng.integers(0, 256, (20, 24, 3), dtype=np.uint8)).save(root / name)
    (root / "captions.csv").write_text("file,caption\n" + rows)
    return root


def params(module):
    return [p.detach().clone() for p in module.parameters()]


def same(a, b):
    return all(torch.equal(x, y) for x, y in zip(a, b))


def test_each_stage_trains_only_its_own_networks(tmp_path):
    trainer = make_trainer(tmp_path)
    fam, G = trainer.family, trainer.family.nets["G"]
    text0, s1_0, s2_0 = params(G.text), params(G.stage1), params(G.stage2)
    logs = [trainer.train_step() for _ in range(4)]
    assert all(set(entry) == {"loss/text"} for entry in logs)
    text1, s1_1 = params(G.text), params(G.stage1)
    assert not same(text0, text1) and same(s1_0, s1_1)
    logs = [trainer.train_step() for _ in range(4)]
    assert all(set(entry) == {"loss/D1", "loss/G1", "loss/kl"} for entry in logs)
    assert same(params(G.text), text1) and not same(params(G.stage1), s1_1) and same(params(G.stage2), s2_0)
    assert int(G.stages) == 1
    s1_2 = params(G.stage1)
    logs = [trainer.train_step() for _ in range(4)]
    assert all(set(entry) == {"loss/D2", "loss/G2", "loss/kl"} for entry in logs)
    assert same(params(G.stage1), s1_2) and not same(params(G.stage2), s2_0) and int(G.stages) == 2


@pytest.mark.parametrize("stop_at", [4, 10])  # the end of the text stage; inside Stage-II
def test_sigterm_then_resume_equals_the_straight_run(straight, tmp_path, stop_at):
    sigterm_then_resume("stackgan", straight, tmp_path / "r", stop_at, **TINY)


def test_matching_aware_discriminator_loss_by_hand(tmp_path):
    trainer = make_trainer(tmp_path)
    fam = trainer.family
    batch = trainer.next_batch()
    torch.manual_seed(3)
    loss, _ = fam.discriminator_step(batch, 1)
    torch.manual_seed(3)
    with torch.no_grad():
        real, fake, mu, _ = fam._draw(batch, 1)
    D = fam.nets["D1"]
    bce = F.binary_cross_entropy_with_logits
    hr, hf = D.features(real), D.features(fake)
    real_right, fake_right, real_wrong = D.cond_logits(hr, mu), D.cond_logits(hf, mu), D.cond_logits(hr[:-1], mu[1:])
    want = ((bce(real_right, torch.ones_like(real_right)) + bce(D.uncond_logits(hr), torch.ones_like(real_right))) / 2
            + (bce(fake_right, torch.zeros_like(real_right)) + bce(real_wrong, torch.zeros_like(real_wrong))
               + bce(D.uncond_logits(hf), torch.zeros_like(real_right))) / 3)
    assert float(loss.detach()) == pytest.approx(float(want.detach()), rel=1e-5)


def test_captions_are_drawn_per_item_among_its_own(tmp_path):
    folder = captioned_folder(tmp_path / "data", "a.png,one red square\na.png,a red box\nb.png,a blue circle\n")
    trainer = make_trainer(tmp_path, data=folder, batch_size=2, max_images=0)
    ds = trainer.dataset
    assert ds.text.shape[:2] == (2, 2) and ds.text_count.tolist() == [2, 1]
    from gankit.data.captions import Vocabulary

    vocab = Vocabulary(ds.vocabulary)
    seen = {vocab.decode(row) for _ in range(12) for row in trainer.next_batch().text}
    assert seen == {"one red square", "a red box", "a blue circle"}


def test_bad_caption_files_end_in_one_line(tmp_path, gankit_main):
    cases = {"missing": ("a.png,a cat\nc.png,a dog\n", "c.png"), "empty": ("a.png,a cat\nb.png,\n", "captions.csv:3: empty caption")}
    for name, (rows, message) in cases.items():
        folder = captioned_folder(tmp_path / name, rows)
        code, out, err = gankit_main("train", "stackgan", "--data", str(folder), "--preset", "tiny",
                                     "--out", str(tmp_path / f"run_{name}"))
        assert code == 2 and len(err.strip().splitlines()) == 1 and message in err, err


def test_sample_from_text_rows_per_caption_and_mistakes(straight, tmp_path, gankit_main, dcgan_run):
    model = gankit.load(straight)
    a = model.sample(3, seed=1, cond="a large red seven on a blue background")
    assert a.shape == (3, 3, 32, 32) and torch.equal(a, model.sample(3, seed=1, cond="a large red seven on a blue background"))
    assert not torch.equal(a, model.sample(3, seed=1, cond="a small green 3 on black"))
    code, out, err = gankit_main("sample", str(straight), "--text", "a large red seven on a blue background",
                                 "--text", "a small green 3 on black", "--n", "4", "--out", str(tmp_path / "g.png"))
    assert code == 0 and "8 samples" in out
    for args, message in [(["--text", "a purple unicorn"], "never saw"), (["--text", "  "], "empty caption")]:
        code, out, err = gankit_main("sample", str(straight), *args, "--out", str(tmp_path / "x.png"))
        assert code == 2 and message in err and len(err.strip().splitlines()) == 1
    code, out, err = gankit_main("sample", str(dcgan_run), "--text", "a cat", "--out", str(tmp_path / "x.png"))
    assert code == 2 and "text-to-image" in err


def test_a_model_before_stage_two_shows_stage_one_upsampled(tmp_path):
    gankit.train("stackgan", out=tmp_path / "r", steps=6, **TINY)
    model = gankit.load(tmp_path / "r")
    assert int(model.generator.stages) == 1
    x = model.sample(2, seed=0)
    assert x.shape == (2, 3, 32, 32)
    assert torch.equal(x[..., ::2, ::2], x[..., 1::2, 1::2])  # nearest-neighbour upsampling of 16 px


def test_bad_settings_are_refused():
    for bad, match in [({"up_factor": 3}, "power of two"), ({"resolution": 24}, "power of two"),
                       ({"decay_from": 0.5}, "decay_from")]:
        with pytest.raises(GankitError, match=match):
            build_config(StackGAN.Config, preset="tiny", overrides=bad).validate()


def test_latent_walk_holds_captions_fixed(straight, tmp_path, gankit_main):
    model = gankit.load(straight)
    ids = model.labels(3, seed=0)
    assert ids.dtype == torch.long and ids.shape == (3, model.config.text_length)
    code, out, err = gankit_main("interpolate", str(straight), "--out", str(tmp_path / "walk.gif"))
    assert code == 0 and (tmp_path / "walk.gif").is_file(), err


def test_evaluate_reads_the_captioned_data_as_the_family_does(straight):
    from gankit.metrics import evaluate

    result = evaluate(straight, metrics="swd", n=64)
    assert result["swd"] > 0 and result["n_real"] == 64


def test_cub_and_flowers_text_c10_layout(tmp_path):
    root = tmp_path / "birds"
    rng = np.random.default_rng(5)
    for rel in ("CUB_200_2011/images/001.Albatross/Black_Footed_0001.jpg", "CUB_200_2011/images/002.Auklet/Auklet_0002.jpg"):
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(rng.integers(0, 256, (30, 40, 3), dtype=np.uint8)).save(root / rel)
    text = root / "text_c10"
    for rel, lines in [("001.Albatross/Black_Footed_0001.txt", "a large black bird\nlong wings, dark bill\n"),
                       ("002.Auklet/Auklet_0002.txt", "a small grey bird\n"),
                       ("002.Auklet/Missing_0003.txt", "no picture for this one\n")]:
        (text / rel).parent.mkdir(parents=True, exist_ok=True)
        (text / rel).write_text(lines)
    from gankit.data.captioned import load_captioned

    ds = load_captioned(root, resolution=32)
    assert ds.data.shape == (2, 3, 32, 32) and ds.text_count.tolist() == [2, 1]
    assert ds.captions[0] == ["a large black bird", "long wings, dark bill"]
    assert [name for name, _ in ds.skipped] == ["Missing_0003.txt"]


def fake_sentence_embeddings(captions):
    """A stand-in for all-MiniLM-L6-v2 (not installed in CI): a fixed unit vector per word, summed."""
    out = torch.zeros(len(captions), 384)
    for i, caption in enumerate(captions):
        for word in caption.lower().split():
            out[i] += torch.randn(384, generator=torch.Generator().manual_seed(sum(map(ord, word)) * 31 + len(word)))
    return F.normalize(out, dim=1)


def test_pretrained_sentence_encoder_table_resume_and_new_captions(tmp_path, monkeypatch):
    from gankit.nn import sentence_embeddings

    calls = []
    monkeypatch.setattr(sentence_embeddings, "sentence_embeddings",
                        lambda captions: calls.append(len(captions)) or fake_sentence_embeddings(captions))
    options = dict(TINY, overrides={"text_encoder": "minilm"})
    gankit.train("stackgan", out=tmp_path / "straight", **options)
    model = gankit.load(tmp_path / "straight")
    c = model.config
    assert c.text_dim == 384 and c.text_length == 1 and c.num_captions > 1
    table = model.generator.text.table
    captions = list(dict.fromkeys(c for c in gankit.data.captions.render_mnist_captions(64, 32).captions))
    assert torch.allclose(table[1:], fake_sentence_embeddings(captions)) and not table[0].any()
    new = model.sample(2, seed=0, cond="a big magenta 8 on a grey background")  # embedded at sampling time
    assert new.shape == (2, 3, 32, 32)
    sigterm_then_resume("stackgan", tmp_path / "straight", tmp_path / "r", 6, **options)
    assert calls.count(len(captions)) == 2  # embedded once per new run; the resume kept the stored table
