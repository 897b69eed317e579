"""Options every noise-to-image family takes: losses, regularisers, G steps per D step, spectral
norm, PacGAN packing, top-k training, DiffAugment / ADA; and exact resume with their state."""

from __future__ import annotations

import pytest
import torch

import gankit
from gankit.config import build_config
from gankit.data import load_dataset
from gankit.engine import checkpoint as ckpt
from gankit.engine.runtime import Runtime
from gankit.engine.trainer import Trainer
from gankit.errors import GankitError
from gankit.families.gan import pack
from gankit.families.base import Batch
from gankit.losses import g_nonsaturating, most_realistic, r1_penalty
from gankit.registry import get_family


def make_trainer(tmp_path, family="dcgan", data="mnist", **overrides):
    family_cls = get_family(family)
    config = build_config(family_cls.Config, preset="tiny", overrides={"data": data, **overrides})
    config.family = family
    dataset = load_dataset(data, resolution=config.resolution, max_images=128)
    if dataset.kind == "image":
        config.channels = dataset.shape[0]
    config.num_classes = dataset.num_classes
    family_cls.check_config(config, dataset.kind)
    return Trainer(family_cls, config, dataset, tmp_path, Runtime(torch.device("cpu")), quiet=True)


def straight_and_resumed(tmp_path, opts: list[str], steps: int):
    """The last checkpoints of a tiny DCGAN trained ``steps`` straight and one stopped halfway and
    resumed."""
    straight = gankit.train("dcgan", data="mnist", out=tmp_path / "a", preset="tiny", steps=steps, quiet=True,
                            overrides=opts)
    gankit.train("dcgan", data="mnist", out=tmp_path / "b", preset="tiny", steps=steps // 2, quiet=True,
                 overrides=opts)
    gankit.train(resume=tmp_path / "b", steps=steps, quiet=True)
    ta, _ = ckpt.load_checkpoint(ckpt.latest_checkpoint(straight.run_dir))
    tb, _ = ckpt.load_checkpoint(ckpt.latest_checkpoint(tmp_path / "b"))
    return ta, tb


@pytest.mark.parametrize("loss", ["nonsaturating", "minimax", "lsgan", "wasserstein", "hinge"])
@pytest.mark.parametrize("reg", ["none", "gp", "r1", "r2"])
def test_every_loss_and_regulariser_trains(tmp_path, loss, reg):
    trainer = make_trainer(tmp_path, loss=loss, reg=reg, d_norm="none")
    logs = trainer.train_step()
    assert all(torch.isfinite(v) for v in logs.values())
    assert ("loss/reg" in logs) == (reg != "none")


def test_bad_loss_or_reg_is_a_user_error():
    cfg = get_family("dcgan").Config
    with pytest.raises(GankitError, match="hinge"):
        build_config(cfg, preset="tiny", overrides={"loss": "hing"})
    with pytest.raises(GankitError, match="r1"):
        build_config(cfg, preset="tiny", overrides={"reg": "r3"})
    with pytest.raises(GankitError, match="multiple of pack"):
        build_config(cfg, preset="tiny", overrides={"pack": 3})


def test_spectral_norm_makes_every_d_layer_1_lipschitz(tmp_path):
    trainer = make_trainer(tmp_path, spectral_norm=True)
    D = trainer.family.nets["D"]
    convs = [m for m in D.modules() if isinstance(m, torch.nn.Conv2d)]
    assert convs and all(torch.nn.utils.parametrize.is_parametrized(m, "weight") for m in convs)
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in D.modules())  # d_norm auto -> none
    for _ in range(3):
        trainer.train_step()
    for m in convs:  # the power iteration converges to the top singular value
        sigma = torch.linalg.matrix_norm(m.weight.detach().flatten(1), 2)
        assert abs(sigma.item() - 1) < 0.05


def test_pack_groups_samples_along_channels(tmp_path):
    x = torch.arange(4 * 1 * 2 * 2, dtype=torch.float32).reshape(4, 1, 2, 2)
    packed = pack(x, 2)
    assert packed.shape == (2, 2, 2, 2)
    assert torch.equal(packed[1, 0], x[2, 0]) and torch.equal(packed[1, 1], x[3, 0])
    trainer = make_trainer(tmp_path, pack=2)
    D = trainer.family.nets["D"]
    assert D.main[0].in_channels == 2  # two grey images per D input
    fam = trainer.family
    logits = fam.discriminate(D, fam.d_input(torch.zeros(8, 1, 16, 16)), None)
    assert logits.shape == (4,)
    trainer.train_step()
    points = make_trainer(tmp_path / "p", family="gan", data="ring8", pack=4)
    assert points.family.nets["D"].main[0].linear.in_features == 8
    points.train_step()


def test_pack_needs_an_unconditional_family(tmp_path):
    with pytest.raises(GankitError, match="unconditional"):
        make_trainer(tmp_path, family="cgan", pack=2)


def test_augment_rejects_points(tmp_path):
    with pytest.raises(GankitError, match="images"):
        make_trainer(tmp_path, family="gan", data="ring8", augment="diffaugment")


@pytest.mark.parametrize("augment", ["diffaugment", "ada"])
def test_augmentation_is_applied_to_what_d_sees(tmp_path, augment):
    trainer = make_trainer(tmp_path, augment=augment)
    fam = trainer.family
    if augment == "ada":
        fam.aux["augment"].p.fill_(0.9)
    x = torch.rand(8, 1, 16, 16) * 2 - 1
    assert not torch.equal(fam.d_input(x), x)
    logs = trainer.train_step()
    assert ("aug/p" in logs) == (augment == "ada")


def test_ada_p_rises_when_d_overfits(tmp_path):
    trainer = make_trainer(tmp_path, augment="ada", ada_interval=1, ada_speed=80)
    aug = trainer.family.aux["augment"]
    aug.observe(torch.ones(8))  # D sure that every real is real: r_t = 1 > 0.6
    assert aug.p.item() == pytest.approx(8 / 80)


def test_resume_with_ada_spectral_norm_and_gp_is_exact(tmp_path):
    opts = ["augment=ada", "ada_interval=1", "ada_speed=200", "spectral_norm=true", "reg=gp", "d_steps=2"]
    ta, tb = straight_and_resumed(tmp_path, opts, steps=12)
    assert "net.augment.p" in ta and ta["net.augment.p"].item() > 0
    assert any(".parametrizations.weight.0._u" in k for k in ta)
    assert ta.keys() == tb.keys()
    assert [k for k in ta if not torch.equal(ta[k], tb[k])] == []


def test_lazy_r1_is_the_eager_penalty_in_a_d_step_of_its_own(tmp_path):
    """reg_interval=4 (StyleGAN2's lazy regularisation): R1 leaves D's step for a step of its own
    on the same reals every 4th step, weighted by 4, its penalty equal to the eager R1 (per packed
    input of D), and D's Adam corrected by r = 4/5."""
    trainer = make_trainer(tmp_path, reg="r1", reg_weight=2.0, reg_interval=4, pack=2, d_norm="none")
    c, fam = trainer.config, trainer.family
    d = fam.optimizers["D"].param_groups[0]
    assert d["lr"] == pytest.approx(c.lr_d * 4 / 5) and d["betas"] == pytest.approx((0.5 ** 0.8, 0.999 ** 0.8))
    assert fam.optimizers["G"].param_groups[0]["lr"] == pytest.approx(c.lr_g)
    assert [(p.name, p.interval, p.same_batch, p.fp32) for p in trainer.phases] == [
        ("D", 1, False, False), ("D_reg", 4, True, True), ("G", 1, False, False)]
    x = torch.randn(8, 1, 16, 16)
    D = fam.train_nets["D"] = fam.nets["D"]
    batch = Batch(x=x, y=None)
    eager = r1_penalty(lambda v: fam.discriminate(D, v, None), fam.d_input(x))
    lazy, zero = fam.lazy_r1(batch)
    assert lazy.item() == pytest.approx(eager.item(), rel=1e-5) and zero.item() == 0
    loss, logs = fam.lazy_reg_loss(batch)
    assert loss.item() == pytest.approx(eager.item() * 2.0 / 2 * 4, rel=1e-5)
    seen = [trainer.train_step() for _ in range(5)]
    assert ["loss/reg" in s for s in seen] == [True, False, False, False, True]
    assert all(torch.isfinite(v) for s in seen for v in s.values())


def test_lazy_r1_resumes_exactly(tmp_path):
    ta, tb = straight_and_resumed(tmp_path, ["reg=r1", "reg_weight=1", "reg_interval=3", "pack=2"], steps=8)
    assert ta.keys() == tb.keys() and [k for k in ta if not torch.equal(ta[k], tb[k])] == []


@pytest.mark.parametrize("options", [{"reg": "gp", "reg_interval": 2}, {"reg": "r2", "reg_interval": 2},
                                     {"reg": "r1", "reg_interval": 0}])
def test_lazy_regularisation_is_for_r1_only(tmp_path, options):
    with pytest.raises(GankitError, match="reg_interval"):
        build_config(get_family("dcgan").Config, preset="tiny", overrides=options)
    # with no regulariser the interval is moot (a recipe with lazy R1 turned off by reg=none still runs)
    trainer = make_trainer(tmp_path, reg="none", reg_interval=16)
    assert [p.name for p in trainer.phases] == ["D", "G"]
    assert trainer.family.optimizers["D"].param_groups[0]["lr"] == trainer.config.lr_d
    with pytest.raises(GankitError, match="reg_interval=1"):
        build_config(get_family("progan").Config, preset="tiny", overrides={"reg": "r1", "reg_interval": 2})


@pytest.mark.parametrize("reuse", [False, True])
def test_reuse_fakes_shows_g_step_the_fakes_d_was_shown(tmp_path, reuse):
    """reuse_fakes: one G forward per step, and G's step is judged on D's fakes (the DCGAN
    reference code's order); without it G's step draws fresh ones (Goodfellow's Algorithm 1)."""
    trainer = make_trainer(tmp_path, reuse_fakes=reuse)
    G, D = trainer.family.nets["G"], trainer.family.nets["D"]
    g_calls, d_inputs = [], []
    G.register_forward_hook(lambda m, i, o: g_calls.append(1))
    D.register_forward_pre_hook(lambda m, i: d_inputs.append(i[0].detach().clone()))
    before = [p.detach().clone() for p in G.parameters()]
    logs = trainer.train_step()
    assert all(torch.isfinite(v) for v in logs.values())
    assert len(g_calls) == (1 if reuse else 2) and len(d_inputs) == 3  # real, fake (D step), fake (G step)
    assert torch.equal(d_inputs[1], d_inputs[2]) == reuse
    assert all(not torch.equal(a, b) for a, b in zip(before, G.parameters()))  # G was updated either way


def test_reuse_fakes_needs_one_d_step(tmp_path):
    with pytest.raises(GankitError, match="reuse_fakes needs d_steps=1"):
        make_trainer(tmp_path, family="wgan", reuse_fakes=True)


def test_g_steps_updates_g_that_many_times_on_fresh_noise_per_d_step(tmp_path):
    """g_steps=2 (PacGAN's Stacked-MNIST code): one D step, then two G steps, each judging its own
    fresh fakes; D's weights move once, G's twice (Adam moment counts)."""
    trainer = make_trainer(tmp_path, g_steps=2)
    G, D = trainer.family.nets["G"], trainer.family.nets["D"]
    g_calls, d_inputs = [], []
    G.register_forward_hook(lambda m, i, o: g_calls.append(1))
    D.register_forward_pre_hook(lambda m, i: d_inputs.append(i[0].detach().clone()))
    logs = trainer.train_step()
    assert torch.isfinite(logs["loss/g"])
    assert len(g_calls) == 3 and len(d_inputs) == 4  # D step: real, fake; then one fake per G step
    assert not torch.equal(d_inputs[2], d_inputs[3])
    steps = {name: {int(s["step"]) for s in opt.state.values()} for name, opt in trainer.family.optimizers.items()}
    assert steps == {"G": {2}, "D": {1}}


def test_g_steps_below_1_is_a_user_error(tmp_path):
    with pytest.raises(GankitError, match="g_steps"):
        make_trainer(tmp_path, g_steps=0)
    with pytest.raises(GankitError, match="g_steps"):
        make_trainer(tmp_path, family="stylegan2", g_steps=2)


@pytest.mark.parametrize("family", ["gan", "stylegan2"])
def test_decay_from_falls_linearly_to_zero_and_keeps_group_ratios(tmp_path, family):
    """decay_from: both rates follow linear_decay(step) (CycleGAN's schedule) on top of whatever
    else set them: StyleGAN2's lazy-regularisation ratio, its mapping network's multiplier."""
    from gankit.families.base import linear_decay

    data = "ring8" if family == "gan" else "mnist"
    trainer = make_trainer(tmp_path, family=family, data=data, decay_from=0.5, steps=10)
    start = {name: [g["lr"] for g in opt.param_groups] for name, opt in trainer.family.optimizers.items()}
    seen = []
    for step in range(10):
        trainer.family.decay_learning_rates(step)
        seen.append({name: [g["lr"] for g in opt.param_groups] for name, opt in trainer.family.optimizers.items()})
    for step, lrs in enumerate(seen):
        factor = linear_decay(step, 10, 0.5)
        for name, groups in lrs.items():
            assert groups == pytest.approx([lr * factor for lr in start[name]], rel=1e-9, abs=0)
    assert seen[9]["G"][0] == pytest.approx(start["G"][0] * 0.2)


def test_resume_inside_the_learning_rate_decay_is_exact(tmp_path):
    """Stopped mid-decay (the schedule is over the configured steps), resumed: the same weights
    and rates as the uninterrupted run."""
    import os
    import signal

    def stop_at_7(trainer, step):
        if step == 6:
            os.kill(os.getpid(), signal.SIGTERM)

    opts = ["decay_from=0.3", "pack=2", "topk=0.5", "topk_gamma=0.5", "max_images=24"]  # top-k: 3-step epochs
    straight = gankit.train("gan", data="ring8", out=tmp_path / "a", preset="tiny", steps=12, quiet=True,
                            overrides=opts)
    stopped = gankit.train("gan", data="ring8", out=tmp_path / "b", preset="tiny", steps=12, quiet=True,
                           overrides=opts, on_step=stop_at_7)
    assert stopped.status == "interrupted" and stopped.step == 7
    gankit.train(resume=tmp_path / "b", quiet=True)
    (ta, ma), (tb, mb) = (ckpt.load_checkpoint(ckpt.latest_checkpoint(d)) for d in (straight.run_dir, tmp_path / "b"))
    assert ma["step"] == mb["step"] == 12
    assert [k for k in ta if not torch.equal(ta[k], tb[k])] == []
    assert ma["optimizers"]["G"]["param_groups"][0]["lr"] == mb["optimizers"]["G"]["param_groups"][0]["lr"]


def test_decay_from_outside_0_1_is_a_user_error(tmp_path):
    with pytest.raises(GankitError, match="decay_from"):
        make_trainer(tmp_path, family="gan", data="ring8", decay_from=1.5)


def test_most_realistic_keeps_the_top_fraction_and_only_their_gradients():
    """Top-k (Sinha et al. 2020): G's loss on the k fakes D scores highest; the rest get no gradient."""
    x = torch.tensor([[0.3], [-1.2], [2.0], [0.1], [-0.4], [1.1], [-2.5], [0.7]], requires_grad=True)
    logits = 2.0 * x
    kept = most_realistic(logits, 0.5)
    top = torch.tensor([2.0, 1.1, 0.7, 0.3]) * 2.0
    assert torch.equal(kept.flatten().sort(descending=True).values, top)
    loss = g_nonsaturating(kept)
    assert loss.item() == pytest.approx(torch.nn.functional.softplus(-top).mean().item(), rel=1e-6)
    loss.backward()
    assert (x.grad.flatten() != 0).tolist() == [True, False, True, False, False, True, False, True]
    assert most_realistic(logits, 1.0) is logits
    assert most_realistic(logits, 0.01).shape == (1, 1)  # at least one fake
    patches = torch.arange(24.0).reshape(4, 1, 2, 3).flip(0)  # ranked by their mean logit
    assert torch.equal(most_realistic(patches, 0.5), patches[:2])


def test_topk_fraction_decays_per_epoch_to_its_floor_and_is_logged(tmp_path):
    trainer = make_trainer(tmp_path, family="gan", data="ring8", topk=0.3, topk_gamma=0.5)
    family = trainer.family
    assert family.epoch_size == 128  # make_trainer's 128 points at batch 8: an epoch is 16 steps
    fractions = []
    for step in (0, 15, 16, 31, 32, 48, 100):
        family.begin_step(step)
        fractions.append(family.topk_fraction)
    assert fractions == [1.0, 1.0, 0.5, 0.5, 0.3, 0.3, 0.3]  # 0.25 is below the floor
    trainer.step = 40
    logs = trainer.train_step()
    assert logs["g/topk"].item() == pytest.approx(0.3) and torch.isfinite(logs["loss/g"])
    assert "g/topk" not in make_trainer(tmp_path / "off", family="gan", data="ring8").train_step()


@pytest.mark.parametrize("option", ["topk=0", "topk=1.5", "topk_gamma=0"])
def test_topk_outside_0_1_is_a_user_error(option):
    key, value = option.split("=")
    with pytest.raises(GankitError, match="topk"):
        build_config(get_family("dcgan").Config, preset="tiny", overrides={key: float(value)})
