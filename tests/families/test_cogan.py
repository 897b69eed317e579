import numpy as np
import pytest
import torch

from gankit.config import build_config
from gankit.data import load_dataset
from gankit.data.builtin import (
    TWO_DOMAIN_BUILTINS,
    _mnist,
    edge_map,
    mnist_pair_partners,
    negative,
)
from gankit.errors import GankitError
from gankit.families.cogan import CoGAN, split_pair

from .common import FamilyTests


class TestCoGAN(FamilyTests):
    family = "cogan"
    data = "mnist-edges"

    def test_augmentation_keeps_the_domains_apart(self, tmp_path):
        trainer = self.make_trainer(tmp_path, augment="diffaugment", augment_policy="translation,cutout")
        x = torch.cat([torch.full((8, 1, 16, 16), -1.0), torch.full((8, 1, 16, 16), 1.0)], dim=3)
        a, b = split_pair(trainer.family.d_input(x))
        assert a.max() <= 0 and b.min() >= 0  # zero padding / cutout only, no pixel crossed the seam
        assert trainer.train_step()["loss/d"].isfinite()


def _config(preset="tiny", **overrides):
    config = build_config(CoGAN.Config, preset=preset, overrides=overrides)
    config.channels = 1
    return config


def _nets(config):
    R = config.resolution
    return CoGAN.build_generator(config, (1, R, R)), CoGAN.build_discriminators(config, (1, R, 2 * R))["D"]


def test_generator_shares_its_trunk_and_keeps_private_heads():
    config = _config("small")
    G, _ = _nets(config)
    z = torch.randn(4, config.nz)
    out = G(z)
    assert out.shape == (4, 1, 32, 64)
    # one trunk module feeds both heads: 4x4 and 8x8 blocks shared, 16x16 block + output private
    assert len(G.shared) == 2 and all(len(head) == 2 for head in G.private)
    shared_ids = {id(p) for p in G.shared.parameters()}
    head_a, head_b = ({id(p) for p in head.parameters()} for head in G.private)
    assert shared_ids and not (shared_ids & head_a) and not (shared_ids & head_b) and not (head_a & head_b)
    n_params = sum(p.numel() for p in G.parameters())
    assert n_params == sum(p.numel() for p in G.shared.parameters()) + 2 * sum(
        p.numel() for p in G.private[0].parameters())
    # the heads are initialised independently and so draw different images from the same features
    assert any(not torch.equal(p, q) for p, q in zip(G.private[0].parameters(), G.private[1].parameters()))
    G.eval()
    a, b = split_pair(G(z))
    assert not torch.allclose(a, b)
    # a change in the shared trunk moves both domains; in one head, only its own domain
    with torch.no_grad():
        G.private[1][0][0].weight.add_(0.05)
    a2, b2 = split_pair(G(z))
    assert torch.equal(a, a2) and not torch.allclose(b, b2)
    with torch.no_grad():
        G.shared[0][0].weight.add_(0.05)
    a3, b3 = split_pair(G(z))
    assert not torch.allclose(a2, a3) and not torch.allclose(b2, b3)


def test_discriminator_shares_its_later_layers():
    config = _config("small")
    _, D = _nets(config)
    assert len(D.private[0]) == 1 and len(D.shared) == 3  # first conv private; two blocks + logit shared
    assert not ({id(p) for p in D.private[0].parameters()} & {id(p) for p in D.private[1].parameters()})
    D.eval()
    x = torch.rand(5, 1, 32, 64) * 2 - 1
    logits = D(x)
    assert logits.shape == (10,)
    # logits[:N] judge the left halves only, logits[N:] the right halves only
    y = x.clone()
    y[..., 32:] = torch.rand(5, 1, 32, 32) * 2 - 1
    moved = D(y)
    assert torch.allclose(moved[:5], logits[:5], atol=1e-6) and not torch.allclose(moved[5:], logits[5:])
    # the same shared layers judge both domains: equal private layers give equal logits to equal halves
    D.private[1].load_state_dict(D.private[0].state_dict())
    twin = torch.cat([x[..., :32], x[..., :32]], dim=3)
    out = D(twin)
    assert torch.allclose(out[:5], out[5:])


@pytest.mark.parametrize("private_g,private_d", [(0, 0), (3, 3), (2, 1)])
def test_sharing_is_configurable(private_g, private_d):
    config = _config("small", private_g_blocks=private_g, private_d_blocks=private_d)
    G, D = _nets(config)
    assert len(G.shared) == 3 - private_g and len(G.private[0]) == private_g + 1
    assert len(D.private[0]) == private_d and len(D.shared) == 4 - private_d
    x = G(torch.randn(2, config.nz))
    assert x.shape == (2, 1, 32, 64) and D(x).shape == (4,)


def test_config_errors():
    with pytest.raises(GankitError, match="private_g_blocks"):
        _config("tiny", private_g_blocks=3)  # 16x16 nets have 2 hidden blocks
    with pytest.raises(GankitError, match="mnist-edges, mnist-negative"):
        CoGAN.check_config(_config("tiny", data="mnist"), "image")
    with pytest.raises(GankitError, match="two-domain"):
        CoGAN.check_config(_config("tiny", data="/some/folder"), "image")
    with pytest.raises(GankitError, match="hflip"):
        CoGAN.check_config(_config("tiny", hflip=True), "image")
    CoGAN.check_config(_config("tiny", data="mnist-negative"), "image")
    with pytest.raises(GankitError, match="two-domain"):
        CoGAN.build_discriminators(_config("tiny"), (1, 16, 16))


def test_training_on_plain_mnist_is_a_user_error(tmp_path):
    import gankit

    with pytest.raises(GankitError, match="two-domain"):
        gankit.train("cogan", data="mnist", out=tmp_path / "run", preset="tiny", steps=1, quiet=True)


def test_default_data_is_mnist_edges():
    assert CoGAN.Config().data == "mnist-edges"
    assert set(TWO_DOMAIN_BUILTINS) == {"mnist-edges", "mnist-negative"}


@pytest.mark.parametrize("name,transform", [("mnist-edges", edge_map), ("mnist-negative", negative)])
@pytest.mark.parametrize("resolution", [16, 28, 32])
def test_two_domain_builtins_are_unpaired_digit_pairs(name, transform, resolution):
    ds = load_dataset(name, resolution=resolution)
    R = resolution
    assert len(ds) == 10_000 and ds.shape == (1, R, 2 * R) and ds.data.dtype == torch.uint8
    digits, labels = _mnist(R)
    digits, labels = torch.from_numpy(digits.copy()), torch.from_numpy(labels.copy())
    partner = torch.from_numpy(mnist_pair_partners())
    left, right = ds.data[:, 0, :, :R], ds.data[:, 0, :, R:]
    assert torch.equal(left, digits)  # the left half is the real digit i
    assert torch.equal(right, torch.from_numpy(transform(digits.numpy()[partner.numpy()])))  # ...the right one is not
    assert (partner != torch.arange(10_000)).all()
    assert sorted(partner.tolist()) == list(range(10_000))  # every digit once on each side
    assert (labels[partner] != labels).float().mean() > 0.8  # classes of the halves unrelated
    assert torch.equal(ds.labels, labels) and ds.num_classes == 10  # labelled by the left digit
    again = load_dataset(name, resolution=R)
    assert torch.equal(again.data, ds.data)
    assert mnist_pair_partners()[:3].tolist() == partner[:3].tolist()


def test_two_domain_transforms():
    digits, _ = _mnist(28)
    d = digits[:50]
    assert (negative(d).astype(int) + d == 255).all()
    edges = edge_map(d)
    assert edges.shape == d.shape and edges.dtype == d.dtype
    ink = d > 200
    assert edges[ink].mean() < 20  # hollow: little edge inside the strokes
    grown = torch.nn.functional.max_pool2d(torch.from_numpy(ink).float()[:, None], 3, 1, 1)[:, 0].bool().numpy()
    ring = grown & (d == 0)
    assert edges[ring].mean() > 200  # bright just outside them
    assert (edges[~torch.nn.functional.max_pool2d(torch.from_numpy(d > 0).float()[:, None], 3, 1, 1)[:, 0]
                  .bool().numpy()] == 0).all()  # and nothing away from the digit


def test_two_domain_options():
    ds = load_dataset("mnist-negative", channels=3, max_images=10)
    assert ds.shape == (3, 28, 56) and len(ds) == 10
    ds.data.zero_()
    assert load_dataset("mnist-negative", max_images=10).data.float().mean() > 20


def test_presets():
    tiny = _config("tiny")
    assert (tiny.resolution, tiny.ngf, tiny.ndf, tiny.batch_size, tiny.steps, tiny.n_snapshot) == (16, 8, 8, 8, 20, 16)
    assert _config("small").resolution == 32
    paper = _config("paper")
    G, D = _nets(paper)
    # the paper's digit G (App. table): every hidden layer shared, only the output layer per domain
    assert [m.out_channels for m in G.shared.modules() if isinstance(m, torch.nn.ConvTranspose2d)] == [512, 256, 128]
    assert len(G.private[0]) == 1 and len(D.private[0]) == 1
    assert G(torch.randn(2, 100)).shape == (2, 1, 32, 64)


def _folder(path, colours, size=20):
    from PIL import Image

    path.mkdir(parents=True)
    for i, colour in enumerate(colours):
        Image.fromarray(np.full((size, size, 3), colour, np.uint8)).save(path / f"{i}.png")
    return path


def test_side_by_side_unpaired_lays_every_image_of_both_domains_out():
    from gankit.data.dataset import Dataset
    from gankit.data.two_domain import side_by_side_unpaired

    a = torch.arange(3, dtype=torch.uint8).reshape(3, 1, 1, 1).expand(3, 1, 2, 2).clone()
    b = (100 + torch.arange(5, dtype=torch.uint8)).reshape(5, 1, 1, 1).expand(5, 3, 2, 2).clone()
    pairs = side_by_side_unpaired(Dataset(data=a, data_b=b, kind="unpaired", source="a", source_b="b"))
    assert pairs.shape == (3, 2, 4) and len(pairs) == 5  # grey A drawn in 3 channels beside colour B
    left, right = pairs.data[..., 0, 0, 0].tolist(), pairs.data[..., 0, 0, 2].tolist()
    assert sorted(right) == [100, 101, 102, 103, 104] and set(left) == {0, 1, 2}
    assert torch.equal(pairs.data, side_by_side_unpaired(
        Dataset(data=a, data_b=b, kind="unpaired", source="a", source_b="b")).data)  # seeded


def test_trains_on_two_unpaired_folders(tmp_path, cli):
    import gankit

    a = _folder(tmp_path / "data" / "trainA", [(250, 10, 10)] * 6)
    _folder(tmp_path / "data" / "trainB", [(10, 10, 250)] * 4)
    done = gankit.train("cogan", data=tmp_path / "data", out=tmp_path / "r1", preset="tiny", steps=2, quiet=True)
    assert done.step == 2
    pair = gankit.load(tmp_path / "r1").sample(2)
    assert pair.shape == (2, 3, 16, 32)
    other = _folder(tmp_path / "grey", [(128, 128, 128)] * 3)
    ran = cli("train", "cogan", "--data-a", a, "--data-b", other, "--out", tmp_path / "r2", "--preset", "tiny",
              "--steps", "1", "-q")
    assert ran.returncode == 0, ran.stderr
