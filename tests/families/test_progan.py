"""ProGAN (Karras et al. 2018): the growth schedule, fades, exact resume mid-fade, the drift term
and the paper's Table 2 networks."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

import gankit
from gankit.config import build_config
from gankit.errors import GankitError
from gankit.families.progan import ProGAN, progress
from gankit.nn.progan import fade_reals, final_network_parameters

from tests.test_engine import assert_same_state
from .common import FamilyTests

TINY = dict(preset="tiny", quiet=True, overrides={"max_images": 256})

# tiny: 16 px (stages 4, 8, 16), batch 8, 40 images (5 steps) per fade and per stabilise phase
TINY_SCHEDULE = {0: (0, 1.0), 4: (0, 1.0), 5: (1, 0.0), 6: (1, 0.2), 7: (1, 0.4), 9: (1, 0.8), 10: (1, 1.0),
                 14: (1, 1.0), 15: (2, 0.0), 17: (2, 0.4), 19: (2, 0.8), 20: (2, 1.0), 23: (2, 1.0), 10**6: (2, 1.0)}


class TestProGAN(FamilyTests):
    family = "progan"

    def test_stage_and_alpha_are_a_function_of_the_step(self, tmp_path):
        family = self.make_trainer(tmp_path).family
        for step, (stage, alpha) in TINY_SCHEDULE.items():
            family.begin_step(step)
            assert family.schedule(step) == (family.stage, family.alpha) == (stage, pytest.approx(alpha))
            for net in family.nets.values():
                assert (int(net.stage), float(net.alpha)) == (stage, pytest.approx(alpha))

    def test_training_step_sets_the_stage_in_g_d_and_the_ema(self, tmp_path):
        trainer = self.make_trainer(tmp_path)
        trainer.step = 7
        logs = trainer.train_step()
        for net in (*trainer.family.nets.values(), trainer.ema):
            assert int(net.stage) == 1 and float(net.alpha) == pytest.approx(0.4)
        assert logs["grow/stage"] == 1 and logs["grow/alpha"] == pytest.approx(0.4)

    def test_optimizer_moments_reset_when_a_phase_begins(self, tmp_path):
        trainer = self.make_trainer(tmp_path)
        p = next(trainer.family.nets["G"].parameters())
        adam = trainer.family.optimizers["G"]
        steps_counted = []
        for _ in range(7):  # phases: stabilise 4x4 at steps 0-4, fade in 8x8 from step 5
            trainer.train_step()
            steps_counted.append(int(adam.state[p]["step"]))
        assert steps_counted == [1, 2, 3, 4, 5, 1, 2]

    def test_ema_warmup_restarts_when_a_stage_fades_in(self, tmp_path):
        """The EMA generator follows a new block from its fade's first step (beta = 3/12 two
        steps into it, where the run's warm-up would be at 8/17) instead of keeping its initial
        weights for a half-life."""
        trainer = self.make_trainer(tmp_path)
        family = trainer.family
        # steps done -> where the warm-up counts from: 4x4 (steps 0-4) from 0, 8x8 from step 5, 16x16 from 15
        assert [family.ema_restart(n) for n in (0, 1, 5, 6, 10, 15, 16, 30)] == [0, 0, 0, 5, 5, 5, 15, 15]
        trainer.step = 6
        trainer.ema.load_state_dict(trainer.family.nets["G"].state_dict())
        before = trainer.ema.to_rgb[1].weight.clone()
        trainer.train_step()  # step 6 (alpha 0.2): 7 steps done, 2 of them in the fade
        live = family.nets["G"].to_rgb[1].weight
        assert not torch.allclose(live, before)
        assert torch.allclose(trainer.ema.to_rgb[1].weight, torch.lerp(before, live, 1 - 3 / 12), atol=1e-6)

    def test_drift_term_is_eps_times_mean_squared_critic_output_on_reals(self, tmp_path):
        trainer = self.make_trainer(tmp_path)
        family = trainer.family
        family.begin_step(7)  # mid-fade: reals are shown faded too
        family.train_nets = dict(family.nets)
        batch = trainer.next_batch()

        def d_loss(drift):
            family.config.drift = drift
            torch.manual_seed(0)
            return family.discriminator_loss(batch)

        with_drift, logs = d_loss(0.001)
        without, _ = d_loss(0.0)
        real_out = family.nets["D"](fade_reals(batch.x, 1, 0.4))
        assert torch.allclose(logs["loss/drift"], real_out.square().mean())
        assert torch.allclose(with_drift - without, 0.001 * real_out.square().mean(), atol=1e-7)


def test_alpha_ramps_linearly_over_each_fade():
    # images per step (24) that do not divide the phases (100 and 250 images)
    images = np.arange(0, 2000, 24)
    stages, alphas = zip(*(progress(int(n), 4, 100, 250) for n in images))
    stages, alphas = np.array(stages), np.array(alphas)
    for stage in (1, 2, 3):
        start = 100 + (stage - 1) * 350
        fading = (stages == stage) & (alphas < 1)
        assert np.allclose(alphas[fading], (images[fading] - start) / 250)
        assert np.allclose(np.diff(alphas[fading]), 24 / 250)
        assert np.all(alphas[(stages == stage) & (images >= start + 250)] == 1)
    assert stages.max() == 3 and np.all(np.diff(stages) >= 0)


def test_fade_is_continuous_between_stages():
    """At alpha = 0 a new stage gives what the previous one gave; at alpha = 1 the new block alone."""
    config = build_config(ProGAN.Config, preset="tiny")
    torch.manual_seed(0)
    G = ProGAN.build_generator(config, (1, 16, 16))
    D = ProGAN.build_discriminators(config, (1, 16, 16))["D"]
    z, x = torch.randn(8, config.nz), torch.randn(8, 1, 16, 16)

    def run(stage, alpha):
        G.set_progress(stage, alpha)
        D.set_progress(stage, alpha)
        return G(z), D(x), fade_reals(x, stage, alpha)

    for stage in (1, 2):
        for before, after in zip(run(stage - 1, 1.0), run(stage, 0.0)):
            assert torch.allclose(before, after, atol=1e-5)
        images, _, reals = run(stage, 0.5)
        assert images.shape == reals.shape == (8, 1, 16, 16)
    images, _, reals = run(0, 1.0)  # 4x4 content shown at 16x16: constant 4x4 tiles
    assert torch.equal(images, images[:, :, ::4, ::4].repeat_interleave(4, 2).repeat_interleave(4, 3))
    assert torch.allclose(reals[:, :, :4, :4].mean((2, 3)), x[:, :, :4, :4].mean((2, 3)), atol=1e-6)


@pytest.fixture(scope="module")
def straight_run(tmp_path_factory):
    """progan tiny, 24 steps without interruption: every stage and both fades."""
    run = tmp_path_factory.mktemp("progan") / "run"
    gankit.train("progan", data="mnist", out=run, steps=24, **TINY)
    return run


def test_resume_mid_fade_equals_an_uninterrupted_run_and_samples_at_every_stage(straight_run, tmp_path):
    run = tmp_path / "r"
    seen = []
    # stop in stage 0, in each fade, and where a phase begins (step 10 starts stabilising 8x8, so
    # the optimizers reset on resume); a checkpoint after n steps holds the stage of step n - 1
    for steps, stage, alpha in [(3, 0, 1.0), (7, 1, 0.2), (10, 1, 0.8), (17, 2, 0.2)]:
        if steps == 3:
            gankit.train("progan", data="mnist", out=run, steps=steps, **TINY)
        else:
            gankit.train(resume=run, steps=steps, quiet=True)
        model = gankit.load(run)
        G = model.generator
        assert model.step == steps and int(G.stage) == stage and float(G.alpha) == pytest.approx(alpha)
        seen.append(model.sample(4, seed=1))
    gankit.train(resume=run, steps=24, quiet=True)
    assert_same_state(straight_run, run)
    final = gankit.load(straight_run)
    assert int(final.generator.stage) == 2 and float(final.generator.alpha) == 1
    seen.append(final.sample(4, seed=1))
    assert all(s.shape == (4, 1, 16, 16) for s in seen)
    # stage 0 draws 4x4 images (constant 4x4 tiles), the last stage does not
    assert torch.equal(seen[0], seen[0][:, :, ::4, ::4].repeat_interleave(4, 2).repeat_interleave(4, 3))
    assert not torch.equal(seen[-1], seen[-1][:, :, ::4, ::4].repeat_interleave(4, 2).repeat_interleave(4, 3))


def test_snapshots_have_one_size_at_every_stage(straight_run):
    snaps = sorted((straight_run / "samples").glob("*.png"))
    assert [p.name for p in snaps] == [f"step_{s:08d}.png" for s in (0, 10, 20, 24)]
    assert len({Image.open(p).size for p in snaps}) == 1


def test_paper_preset_is_table_2():
    config = build_config(ProGAN.Config, preset="paper")
    assert (config.resolution, config.nz, config.batch_size, config.d_steps) == (1024, 512, 16, 1)
    assert (config.lr_g, config.lr_d, config.beta1, config.beta2) == (0.001, 0.001, 0.0, 0.99)
    assert (config.loss, config.reg, config.reg_weight, config.drift) == ("wasserstein", "gp", 10.0, 0.001)
    assert (config.stage_images, config.fade_images, config.ema_decay) == (800_000, 800_000, 0.999)
    G = ProGAN.build_generator(config, (3, 1024, 1024))
    D = ProGAN.build_discriminators(config, (3, 1024, 1024))["D"]
    # Table 2's layers, 4x4 to 1024x1024: (out, in, k, k) of every conv; G's 4x4 "Conv 4x4" is a dense layer
    widths = [512, 512, 512, 512, 256, 128, 64, 32, 16]
    g_convs = [(512, 512, 3, 3)] + [s for a, b in zip(widths, widths[1:]) for s in ((b, a, 3, 3), (b, b, 3, 3))]
    assert [tuple(m.weight.shape) for m in G.modules() if hasattr(m, "scaled_weight")][:-9] == g_convs
    assert tuple(G.blocks[0].dense.weight.shape) == (512 * 16, 512)
    assert tuple(G.to_rgb[-1].weight.shape) == (3, 16, 1, 1) and tuple(D.from_rgb[-1].weight.shape) == (16, 3, 1, 1)
    d_convs = [(512, 513, 3, 3)] + [s for a, b in zip(widths, widths[1:]) for s in ((b, b, 3, 3), (a, b, 3, 3))]
    assert [tuple(b.weight.shape) for b in D.blocks.modules() if hasattr(b, "scaled_weight")] == d_convs
    assert tuple(D.blocks[0].dense.weight.shape) == (512, 512 * 16) and tuple(D.blocks[0].out.weight.shape) == (1, 512)
    # Table 2: "Total trainable parameters 23.1M" for each; the exact sums of its rows:
    assert final_network_parameters(G) == 23_071_507 and final_network_parameters(D) == 23_077_137
    assert round(final_network_parameters(G) / 1e6, 1) == round(final_network_parameters(D) / 1e6, 1) == 23.1


@pytest.mark.parametrize("overrides, message", [
    ({"resolution": 24}, "power of two >= 4"),
    ({"resolution": 2}, "power of two >= 4"),
    ({"stage_images": 0}, "stage_images and fade_images must be >= 1"),
    ({"fade_images": -5}, "stage_images and fade_images must be >= 1"),
    ({"mbstd_group": 0}, "mbstd_group must be >= 1"),
    ({"spectral_norm": True}, "spectral_norm does not apply"),
])
def test_bad_options_are_user_errors(overrides, message):
    with pytest.raises(GankitError, match=message):
        build_config(ProGAN.Config, preset="tiny", overrides=overrides)


@pytest.mark.parametrize("preset", ["tiny", "small", "paper"])
def test_every_preset_validates(preset):
    config = build_config(ProGAN.Config, preset=preset)
    assert config.resolution in (16, 32, 1024)
