import torch

import gankit
from gankit.families.gan import Maxout

from .common import FamilyTests


class TestGANOnImages(FamilyTests):
    family = "gan"


class TestGANOnPoints(FamilyTests):
    family = "gan"
    data = "ring8"


def test_maxout_is_the_max_over_pieces():
    layer = Maxout(3, 2, pieces=4)
    x = torch.randn(5, 3)
    pieces = layer.linear(x).view(5, 2, 4)
    assert torch.equal(layer(x), pieces.max(dim=2).values)


def test_gan_learns_the_ring_scale(tmp_path):
    """A few hundred steps on ring8 move samples from the origin out toward radius 2."""
    gankit.train("gan", data="ring8", out=tmp_path / "r", preset="small", steps=300, quiet=True,
                 overrides={"snapshot_every": 1000, "checkpoint_every": 1000})
    radius = gankit.load(tmp_path / "r").sample(2000, seed=0).norm(dim=1)
    assert 1.2 < radius.median() < 2.8


def test_maxout_sends_the_gradient_to_the_winning_piece_only():
    layer = Maxout(3, 2, pieces=4)
    x = torch.randn(5, 3)
    pieces = layer.linear(x).view(5, 2, 4).detach().requires_grad_()
    g = torch.randn(5, 2)
    (pieces.max(dim=2).values * g).sum().backward()
    winner = pieces == pieces.max(dim=2, keepdim=True).values
    torch.testing.assert_close(pieces.grad, winner * g[..., None])
