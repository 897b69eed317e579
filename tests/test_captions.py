"""Captioned data for text-to-image GANs: the built-in mnist-captions with known truth and held-out
combinations, a user's caption folder, the vocabulary, and caption fidelity read from pixels."""

from __future__ import annotations

import itertools
import json

import numpy as np
import pytest
import torch

from gankit.data.builtin import _mnist
from gankit.data.captions import (
    BACKGROUND_COLOURS,
    CAPTION_TEMPLATES,
    DIGIT_WORDS,
    HELD_OUT,
    SIZE_WORDS,
    SIZES,
    STROKE_COLOURS,
    Vocabulary,
    allowed_pair,
    attribute_words,
    colour_pairs,
    read_caption_folder,
    render_digits,
    render_mnist_captions,
    tokenize,
)
from gankit.errors import GankitError
from gankit.metrics.captions import caption_fidelity, read_caption_attributes

STROKES, BACKGROUNDS = list(STROKE_COLOURS), list(BACKGROUND_COLOURS)
COLOUR_WORDS = set(STROKES) | set(BACKGROUNDS)


@pytest.fixture(scope="module")
def train():
    return render_mnist_captions(400, 32, seed=0, split="train")


@pytest.fixture(scope="module")
def test_split():
    return render_mnist_captions(500, 32, seed=0, split="test")


def _triples(items) -> set[tuple[int, str, str]]:
    return {(int(d), STROKES[s], BACKGROUNDS[b]) for d, s, b, _ in items.attributes.tolist()}


def _raises(match, fn, *args):
    with pytest.raises(GankitError, match=match) as info:
        fn(*args)
    assert "\n" not in str(info.value)  # one clear line
    return str(info.value)


# ----------------------------------------------------------------------------- mnist-captions

def test_same_seed_same_items_other_seed_other_items(train):
    again = render_mnist_captions(400, 32, seed=0, split="train")
    assert torch.equal(again.images, train.images) and torch.equal(again.attributes, train.attributes)
    assert again.captions == train.captions
    other = render_mnist_captions(400, 32, seed=1, split="train")
    assert not torch.equal(other.attributes, train.attributes) and other.captions != train.captions
    assert train.images.shape == (400, 3, 32, 32) and train.images.dtype == torch.uint8
    assert train.attributes.dtype == torch.int64 and len(train.captions) == len(train) == 400


def test_attributes_cover_every_value_and_pairs_are_readable(train):
    a = train.attributes
    assert set(a[:, 0].tolist()) == set(range(10))
    assert set(a[:, 1].tolist()) == set(range(len(STROKES)))
    assert set(a[:, 2].tolist()) == set(range(len(BACKGROUNDS)))
    assert set(a[:, 3].tolist()) == {0, 1}
    assert all(allowed_pair(STROKES[s], BACKGROUNDS[b]) for s, b in a[:, 1:3].tolist())
    assert not allowed_pair("blue", "blue") and len(colour_pairs()) == 23
    luma = np.array([0.299, 0.587, 0.114]) / 255
    for s, b in colour_pairs():  # every drawn pair: far apart in RGB and brighter stroke than ground
        stroke, ground = np.array(STROKE_COLOURS[STROKES[s]]), np.array(BACKGROUND_COLOURS[BACKGROUNDS[b]])
        assert np.linalg.norm(stroke - ground) / 255 > 0.5 and (stroke - ground) @ luma > 0.15


def test_held_out_combinations_only_in_the_test_split(train, test_split):
    held = set(HELD_OUT)
    assert len(held) == len(HELD_OUT) == 20 and all(allowed_pair(s, b) for _, s, b in held)
    assert 0.05 < len(held) / (10 * len(colour_pairs())) < 0.15  # about 10 % of the 230 combinations
    assert not _triples(train) & held
    assert _triples(test_split) == held  # 500 draws over 20 combinations: every one present
    # every part of a held-out combination is seen in training, only the combination is new
    for d, s, b in held:
        assert any(t[0] == d and t[1] == s for t in _triples(train))
        assert any(t[0] == d and t[2] == b for t in _triples(train))
        assert any(t[1] == s and t[2] == b for t in _triples(train))
    # different MNIST images too: the test split draws the classifier's held-out digits
    assert not set(train.mnist_index.tolist()) & set(test_split.mnist_index.tolist())


def test_custom_held_out_and_bad_arguments():
    items = render_mnist_captions(30, 32, seed=0, split="test", held_out=[(3, "red", "black")])
    assert _triples(items) == {(3, "red", "black")}
    _raises("split", render_mnist_captions, 10, 32, 0, HELD_OUT, "validation")
    _raises("not drawn", render_mnist_captions, 10, 32, 0, [(1, "blue", "blue")])
    _raises("0-9", render_mnist_captions, 10, 32, 0, [(12, "red", "black")])
    _raises("no combination", render_mnist_captions, 10, 32, 0, [], "test")
    _raises("resolution", render_mnist_captions, 10, 8)


def test_captions_name_their_attributes(train):
    size_words = {w for ws in SIZE_WORDS.values() for w in ws}
    templates_used = set()
    for caption, attrs in zip(train.captions, train.attributes.tolist()):
        words = attribute_words(attrs)
        tokens = set(tokenize(caption))
        digit = int(words["digit"])
        numbers = {str(d) for d in range(10)} | set(DIGIT_WORDS)
        assert tokens & numbers in ({str(digit)}, {DIGIT_WORDS[digit]}), caption  # one digit, the right one
        assert tokens & COLOUR_WORDS == {words["stroke"], words["background"]}, caption
        assert len(tokens & size_words) == 1 and tokens & set(SIZE_WORDS[words["size"]]), caption
        matching = [i for i, t in enumerate(CAPTION_TEMPLATES) if _matches(t, caption, words)]
        assert len(matching) == 1, caption  # the caption is exactly a template filled with its attributes
        templates_used.add(matching[0])
    assert templates_used == set(range(len(CAPTION_TEMPLATES)))  # every phrasing occurs
    assert any(t in DIGIT_WORDS for c in train.captions for t in tokenize(c))
    assert any(t.isdigit() for c in train.captions for t in tokenize(c))
    assert any(t in SIZE_WORDS["small"][1:] + SIZE_WORDS["large"][1:] for c in train.captions for t in tokenize(c))


def _matches(template: str, caption: str, words: dict[str, str]) -> bool:
    digit = int(words["digit"])
    return any(template.format(digit=d, size=s, stroke=words["stroke"], background=words["background"]) == caption
               for d, s in itertools.product((str(digit), DIGIT_WORDS[digit]), SIZE_WORDS[words["size"]]))


# ----------------------------------------------------------------------------- caption folders

def _folder(tmp_path, csv_text: str | None, images=("a.png", "b.png", "sub/c.png")):
    root = tmp_path / "data"
    for name in images:
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(b"not decoded here")
    root.mkdir(exist_ok=True)
    if csv_text is not None:
        (root / "captions.csv").write_text(csv_text, encoding="utf-8")
    return root


def test_caption_folder_happy_path(tmp_path):
    root = _folder(tmp_path, 'file,caption\nb.png,a red bird\n\na.png, "a small bird, flying" \n'
                             'b.png,the bird is red, with a long tail\nsub/c.png,a third image\n')
    files, captions = read_caption_folder(root)
    assert files == [root / "b.png", root / "a.png", root / "sub/c.png"]  # order of first mention
    assert captions == [["a red bird", "the bird is red, with a long tail"], ["a small bird, flying"],
                        ["a third image"]]


def test_caption_folder_ignores_unlisted_images(tmp_path):
    root = _folder(tmp_path, "FILE, Caption\na.png,only this one\n", images=("a.png", "b.png", "c.jpg"))
    files, captions = read_caption_folder(root)
    assert files == [root / "a.png"] and captions == [["only this one"]]


def test_caption_folder_errors_name_the_line_and_file(tmp_path):
    msg = _raises("not found", read_caption_folder,
                  _folder(tmp_path / "1", "file,caption\na.png,fine\nmissing.png,a cat\n"))
    assert "captions.csv:3" in msg and "missing.png" in msg
    msg = _raises("empty caption", read_caption_folder, _folder(tmp_path / "2", "file,caption\na.png,ok\nb.png,  \n"))
    assert "captions.csv:3" in msg and "b.png" in msg
    msg = _raises("no caption for 'a.png'", read_caption_folder, _folder(tmp_path / "3", "file,caption\na.png\n"))
    assert "captions.csv:2" in msg
    msg = _raises("captions.csv", read_caption_folder, _folder(tmp_path / "4", None))
    assert "file,caption" in msg
    msg = _raises("header", read_caption_folder, _folder(tmp_path / "5", "a.png,a red bird\n"))
    assert "captions.csv:1" in msg
    _raises("header", read_caption_folder, _folder(tmp_path / "6", "image,text\na.png,a red bird\n"))
    _raises("no captions", read_caption_folder, _folder(tmp_path / "7", "file,caption\n\n"))
    _raises("empty file", read_caption_folder, _folder(tmp_path / "8", ""))
    msg = _raises("is a folder", read_caption_folder, _folder(tmp_path / "9", "file,caption\nsub,x\n"))
    assert "captions.csv:2" in msg
    _raises("not found", read_caption_folder, tmp_path / "nowhere")
    msg = _raises("empty file name", read_caption_folder, _folder(tmp_path / "10", "file,caption\n,a bird\n"))
    assert "captions.csv:2" in msg


def test_caption_folder_line_numbers_count_quoted_line_breaks(tmp_path):
    text = 'file,caption\na.png,"a bird\nover two lines"\n\nnope.png,x\n'
    msg = _raises("nope.png", read_caption_folder, _folder(tmp_path, text))
    assert "captions.csv:5" in msg
    files, captions = read_caption_folder(_folder(tmp_path / "ok", 'file,caption\na.png,"two\nlines"\n'))
    assert captions == [["two\nlines"]]


# ----------------------------------------------------------------------------- vocabulary

def test_vocabulary_build_encode_and_round_trip(tmp_path):
    assert tokenize("A big RED 7, on grey-blue!") == ["a", "big", "red", "7", "on", "grey", "blue"]
    vocab = Vocabulary.build([["a red bird", "a red cat"], "a blue bird"], min_count=1)
    assert vocab.tokens[:2] == ["<pad>", "<unk>"]
    assert vocab.tokens[2:] == ["a", "bird", "red", "blue", "cat"]  # by count, then alphabetically
    ids = vocab.encode("A red dog, a bird", max_len=8)
    assert ids.dtype == torch.long and ids.shape == (8,)
    assert ids.tolist() == [2, 4, 1, 2, 3, 0, 0, 0]  # dog is unknown, padding is 0
    assert vocab.encode("a red bird a red bird", max_len=3).tolist() == [2, 4, 3]
    batch, lengths = vocab.encode_batch(["a red bird", "cat"], max_len=4)
    assert batch.tolist() == [[2, 4, 3, 0], [6, 0, 0, 0]] and lengths.tolist() == [3, 1]
    assert vocab.decode(ids) == "a red <unk> a bird"
    rare = Vocabulary.build(["a red bird", "a red cat", "a blue bird"], min_count=2)
    assert rare.tokens == ["<pad>", "<unk>", "a", "bird", "red"]
    path = tmp_path / "vocab.json"
    path.write_text(json.dumps(vocab.save()))
    again = Vocabulary.load(json.loads(path.read_text()))
    assert again == vocab and torch.equal(again.encode("a red dog", 5), vocab.encode("a red dog", 5))
    assert Vocabulary.load(path.read_text()) == vocab
    _raises("tokens", Vocabulary.load, {"words": []})
    _raises("<pad>", Vocabulary.load, {"tokens": ["a", "b"]})
    _raises("min_count", Vocabulary.build, ["a"], 0)
    _raises("max_len", vocab.encode, "a", 0)


def test_vocabulary_of_mnist_captions_knows_every_attribute_word(train):
    vocab = Vocabulary.build(train.captions)
    for word in [*STROKES, *BACKGROUNDS, *DIGIT_WORDS, *map(str, range(10)), *SIZE_WORDS["small"],
                 *SIZE_WORDS["large"]]:
        assert word in vocab.index, word
    assert all(1 not in vocab.ids(c) for c in train.captions)


# ----------------------------------------------------------------------------- fidelity

def test_fidelity_of_real_renders_is_near_perfect(test_split):
    scores = caption_fidelity(test_split.images, test_split.attributes)
    assert scores["digit"] >= 0.97  # 0.978 measured here, 0.988 on 2,000 renders (classifier: 0.992 on MNIST)
    assert scores["stroke"] >= 0.99 and scores["background"] >= 0.99 and scores["size"] >= 0.99
    assert scores["all"] >= 0.96
    as_float = test_split.images.float() / 127.5 - 1  # generators give [-1, 1]
    assert torch.equal(read_caption_attributes(as_float), read_caption_attributes(test_split.images))


def test_fidelity_reads_each_attribute_of_a_chosen_rendering():
    items = render_mnist_captions(40, 32, seed=3, split="train")
    digits = _mnist(28)[0][items.mnist_index.numpy()]
    for size in SIZES:
        for stroke, background in [("red", "grey"), ("yellow", "black"), ("magenta", "blue"), ("white", "brown"),
                                   ("green", "grey"), ("blue", "black")]:
            a = items.attributes.clone()
            a[:, 1], a[:, 2], a[:, 3] = STROKES.index(stroke), BACKGROUNDS.index(background), SIZES.index(size)
            read = read_caption_attributes(render_digits(digits, a[:, 1], a[:, 2], a[:, 3], 32))
            assert torch.equal(read[:, 1:], a[:, 1:]), (stroke, background, size)


def test_fidelity_of_noise_and_of_mismatched_captions_is_chance(test_split):
    target = test_split.attributes[:300]
    g = torch.Generator().manual_seed(0)
    majority = {name: torch.bincount(target[:, j]).max().item() / len(target)
                for j, name in enumerate(("digit", "stroke", "background", "size"))}
    for noise in (torch.rand((len(target), 3, 32, 32), generator=g) * 2 - 1,
                  torch.randint(0, 256, (len(target), 3, 32, 32), generator=g, dtype=torch.uint8)):
        scores = caption_fidelity(noise, target)
        for name, base in majority.items():  # no better than always guessing the commonest value
            assert scores[name] <= base + 0.08, (name, scores)
        assert scores["all"] <= 0.05
    shuffled = caption_fidelity(test_split.images[:300][torch.randperm(len(target), generator=g)], target)
    assert shuffled["digit"] <= 0.25 and shuffled["all"] <= 0.1


def test_fidelity_rejects_bad_input(test_split):
    _raises("target", caption_fidelity, test_split.images[:4], test_split.attributes[:3])
    bad = test_split.attributes[:4].clone()
    bad[0, 1] = 9
    _raises("stroke", caption_fidelity, test_split.images[:4], bad)
    _raises(r"\(N, 3, H, W\)", caption_fidelity, test_split.images[:4, :1], test_split.attributes[:4])
