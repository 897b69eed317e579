"""StackGAN: Zhang et al. 2017, "StackGAN: Text to Photo-realistic Image Synthesis with Stacked
Generative Adversarial Networks" (arXiv:1612.03242).

Text to image in two stages, on one step count (each phase active in its own span):

0. ``text_steps``: a sentence encoder is learnt on the dataset's own captions (a GRU,
   :class:`gankit.nn.text_encoder.TextEncoder`, trained with an image encoder by the CLIP loss);
   the paper uses the char-CNN-RNN embeddings of Reed et al. 2016, pretrained on the same data.
   Frozen afterwards.
1. ``stage1_steps``: Stage-I draws a low-resolution image from noise and a conditioning vector
   c ~ N(mu(e), Sigma(e)) of the sentence embedding e (conditioning augmentation, §3.1; the KL of
   that Gaussian to N(0, I) weighted by ``kl_weight`` = 2, the authors' configs); its matching-
   aware discriminator (§3.3, Reed et al. 2016's GAN-CLS) learns real image + right text as real,
   and both a generated image and a real image with a wrong caption as fake.
2. the rest: Stage-II reads Stage-I's image (Stage-I frozen, as the authors train it) and a fresh
   c of the same text and draws the image at ``up_factor`` times its size, with its own
   matching-aware discriminator (plus an unconditional logit, the authors' ``STAGE2_D``).

The generator ``G`` holds everything a sampler needs (text encoder, both CAs, both stages) and
draws from text token ids; a model trained before Stage II shows Stage-I's images, upsampled.
Captions come as ``Batch.text`` (the engine draws one of each image's captions per step).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

import torch
from torch import nn
from torch.nn import functional as F

from gankit.config import TrainConfig
from gankit.data import Dataset
from gankit.errors import GankitError
from gankit.families.base import Batch, Family, Phase
from gankit.nn.optim import adam
from gankit.nn.stackgan import (ConditioningAugmentation, StageIDiscriminator, StageIGenerator,
                                StageIIDiscriminator, StageIIGenerator, kl_loss)
from gankit.nn.sentence_embeddings import MINILM_DIM, EmbeddingTable
from gankit.nn.text_encoder import ImageEncoder, TextEncoder, contrastive_loss
from gankit.registry import register


@dataclass
class StackGANConfig(TrainConfig):
    data: str = "mnist-captions"  # or a folder of images with captions.csv (file,caption)
    resolution: int = 256  # Stage-II's output; Stage-I draws resolution / up_factor
    up_factor: int = 4
    z_dim: int = 100
    c_dim: int = 128  # CONDITION_DIM
    text_dim: int = 1024  # the sentence embedding
    ngf: int = 128  # GF_DIM
    ndf: int = 64  # DF_DIM
    n_res: int = 4  # Stage-II residual blocks (R_NUM)
    # NHWC convolutions, same arithmetic: small preset 1.30-1.31x in fp32, 1.23-1.24x in bf16 on an AMX CPU
    # (bench/results/family_speed_channels_last.json)
    channels_last: bool = True
    kl_weight: float = 2.0  # TRAIN.COEFF.KL in the authors' birds/flowers configs
    text_steps: int = 2000  # training the sentence encoder
    stage1_steps: int = 120_000
    text_lr: float = 2e-3
    lr: float = 2e-4  # Adam(2e-4, 0.5, 0.999) for both stages (the authors' GENERATOR_LR, DISCRIMINATOR_LR)
    beta1: float = 0.5
    ema: bool = False  # the authors sample from the raw generators
    # gru: a sentence encoder trained on the data's captions (text_steps); minilm: the pretrained
    # all-MiniLM-L6-v2 (384-d, frozen; the [text] extra), text_steps then train only the image
    # encoder that R-precision reads
    text_encoder: str = "gru"
    word_dim: int = 32  # the GRU's word embeddings and width
    text_hidden: int = 64
    # filled from the data when training starts: the caption vocabulary, the token length, and
    # captions for snapshots and for sampling without --text
    vocabulary: list[str] = field(default_factory=list)
    text_length: int = 0
    num_captions: int = 0  # minilm: the distinct captions whose embeddings the generator stores
    sample_captions: list[str] = field(default_factory=list)

    PRESETS: ClassVar = {
        "tiny": dict(resolution=32, up_factor=2, z_dim=8, c_dim=8, text_dim=16, ngf=8, ndf=8, n_res=1,
                     word_dim=8, text_hidden=8, batch_size=8, steps=12, text_steps=4, stage1_steps=4,
                     max_images=64, log_every=2, snapshot_every=6, checkpoint_every=6, n_snapshot=8),
        # 32 -> 64 px colour digits on a CPU
        "small": dict(resolution=64, up_factor=2, z_dim=64, c_dim=32, text_dim=64, ngf=16, ndf=16, n_res=2,
                      batch_size=64, steps=9000, text_steps=1500, stage1_steps=4500, log_every=50,
                      snapshot_every=500, checkpoint_every=500, n_snapshot=32),
        "paper": dict(batch_size=64, steps=240_000, snapshot_every=2000, checkpoint_every=5000),
    }

    def validate(self) -> None:
        super().validate()
        low = self.resolution // max(1, self.up_factor)
        if self.up_factor < 2 or self.up_factor & (self.up_factor - 1) or low < 16 or low & (low - 1) \
                or low * self.up_factor != self.resolution:
            raise GankitError(f"resolution / up_factor must be a power of two >= 16 (Stage-I's size), got "
                              f"{self.resolution} / {self.up_factor}")
        if self.text_steps < 0 or self.stage1_steps < 0 or self.kl_weight < 0:
            raise GankitError("text_steps, stage1_steps and kl_weight must be >= 0")
        if self.decay_from != 1:
            raise GankitError("stackgan keeps constant rates per stage: drop decay_from")
        if self.text_encoder not in ("gru", "minilm"):
            raise GankitError(f"text_encoder must be gru or minilm, got {self.text_encoder!r}")

    @property
    def stage2_start(self) -> int:
        return self.text_steps + self.stage1_steps


class StackGANGenerator(nn.Module):
    """Token ids ``(N, L)`` and z ``(N, z_dim)`` -> images: text encoder, CA and Stage-I, then
    (once ``stages`` is 2) CA and Stage-II. ``stages`` is a buffer the family sets while
    training, so a checkpoint knows which stage it reached."""

    def __init__(self, c: StackGANConfig, vocab_size: int):
        super().__init__()
        low = c.resolution // c.up_factor
        self.text = (TextEncoder(vocab_size, c.word_dim, c.text_hidden, c.text_dim) if c.text_encoder == "gru"
                     else EmbeddingTable(c.num_captions, c.text_dim))
        self.ca1 = ConditioningAugmentation(c.text_dim, c.c_dim)
        self.stage1 = StageIGenerator(c.z_dim, c.c_dim, c.ngf, low, c.channels)
        self.ca2 = ConditioningAugmentation(c.text_dim, c.c_dim)
        self.stage2 = StageIIGenerator(c.c_dim, c.ngf, low, c.channels, c.up_factor, c.n_res)
        self.resolution = c.resolution
        self.register_buffer("stages", torch.ones((), dtype=torch.long))

    def forward(self, z: torch.Tensor, ids: torch.Tensor) -> torch.Tensor:
        """``ids``: token ids (gru), caption indices (minilm), or sentence embeddings. ``z`` holds the noise of Stage-I and the two CA samples' unit Gaussians, (N, z_dim + 2 c_dim),
        so everything random comes from the caller's (seeded) draw."""
        noise, eps1, eps2 = z.split([self.stage1.z_dim, self.ca1.c_dim, self.ca2.c_dim], dim=1)
        e = self.text(ids)
        low = self.stage1(noise, _conditioning(self.ca1, e, eps1))
        if int(self.stages) < 2:
            return F.interpolate(low, size=self.resolution, mode="nearest")
        return self.stage2(low, _conditioning(self.ca2, e, eps2))


def _conditioning(ca: ConditioningAugmentation, e: torch.Tensor, eps: torch.Tensor) -> torch.Tensor:
    """c = mu + sigma * eps (the reparameterisation of §3.1) with the given unit Gaussian draw."""
    mu, logvar = ca.encode(e)
    return mu + (0.5 * logvar).exp() * eps


@register
class StackGAN(Family):
    name = "stackgan"
    description = "text to image in two stages: conditioning augmentation, matching-aware D (Zhang 2017)"
    paper = "arXiv:1612.03242"
    Config = StackGANConfig
    one_process_why = ("its losses call parts of G and D one by one (the text encoder, one stage, D's features), "
                       "which DDP cannot all-reduce")
    takes_text = True
    _text: tuple[Batch, torch.Tensor] | None = None  # see _embeddings
    architecture_keys = ("resolution", "up_factor", "z_dim", "c_dim", "text_dim", "ngf", "ndf", "n_res", "channels",
                         "word_dim", "text_hidden", "vocabulary", "text_length", "text_encoder", "num_captions")

    # ---- data ---------------------------------------------------------------------------------
    @classmethod
    def load_data(cls, config: StackGANConfig) -> Dataset:
        from gankit.data.captioned import load_captioned

        ds = load_captioned(config.data, resolution=config.resolution, max_images=config.max_images,
                            vocabulary=config.vocabulary or None)
        config.channels, config.num_classes = ds.shape[0], 0
        config.vocabulary = ds.vocabulary
        if config.text_encoder == "minilm":
            _index_captions(config, ds)
        config.text_length = config.text_length or ds.text.shape[-1]
        if ds.text.shape[-1] != config.text_length:  # a resumed or --init run keeps its length
            ds.text = _fit_length(ds.text, config.text_length)
        if not config.sample_captions:
            seen: list[str] = []
            for cs in ds.captions:
                if cs[0] not in seen:
                    seen.append(cs[0])
                if len(seen) == 8:
                    break
            config.sample_captions = seen
        return ds

    def bind_data(self, dataset) -> None:
        """minilm: the embeddings of the training captions into the generator (a resumed run's
        come from its checkpoint instead)."""
        if dataset.text_table is not None:
            self.nets["G"].text.table[1:] = dataset.text_table

    @classmethod
    def next_commands(cls, run) -> list[str]:
        return [f'gankit sample {run} --text "a large red seven on a blue background" --n 8 --out {run}/seven.png']

    @classmethod
    def training_plan(cls, config: StackGANConfig) -> list[str]:
        c = config
        low = c.resolution // c.up_factor
        return [f"{c.text_steps:,} steps of the sentence encoder ({len(c.vocabulary)} words), "
                f"{c.stage1_steps:,} of Stage-I ({low} px), {max(0, c.steps - c.stage2_start):,} of Stage-II "
                f"({c.resolution} px)"]

    # ---- networks -----------------------------------------------------------------------------
    @classmethod
    def build_generator(cls, config, data_shape):
        if not config.vocabulary:
            raise GankitError("stackgan needs its caption vocabulary (the run's config has none)")
        return StackGANGenerator(config, len(config.vocabulary))

    @classmethod
    def build_discriminators(cls, config, data_shape):
        c = config
        low = c.resolution // c.up_factor
        return {"D1": StageIDiscriminator(c.c_dim, c.ndf, low, c.channels, None, unconditional=True),
                "D2": StageIIDiscriminator(c.c_dim, c.ndf, c.resolution, c.channels, None, unconditional=True),
                "I": ImageEncoder(c.channels, low, c.text_dim, width=max(8, c.ndf))}

    @classmethod
    def latent_dim(cls, config) -> int:
        return config.z_dim + 2 * config.c_dim  # Stage-I's z and both CA draws (StackGANGenerator.forward)

    @classmethod
    def is_conditional(cls, config) -> bool:
        return True

    @classmethod
    def check_config(cls, config, data_kind):  # captions, not class labels
        if data_kind != "image":
            raise GankitError(f"stackgan trains on captioned images, not {data_kind} data")

    def build_optimizers(self):
        c, G = self.config, self.nets["G"]
        betas = (c.beta1, 0.999)
        return {"T": adam([*G.text.parameters(), *self.nets["I"].parameters()], c.text_lr),
                "G1": adam([*G.ca1.parameters(), *G.stage1.parameters()], c.lr, betas),
                "G2": adam([*G.ca2.parameters(), *G.stage2.parameters()], c.lr, betas),
                "D1": adam(self.nets["D1"].parameters(), c.lr, betas),
                "D2": adam(self.nets["D2"].parameters(), c.lr, betas)}

    # ---- the schedule -------------------------------------------------------------------------
    def stage_at(self, step: int) -> int:
        """0 (sentence encoder), 1 or 2."""
        c = self.config
        return 0 if step < c.text_steps else 1 if step < c.stage2_start else 2

    def begin_step(self, step: int) -> None:
        self._text = None  # (batch, its sentence embeddings): the D and G phases of a step share them
        self.nets["G"].stages.fill_(2 if self.stage_at(step) == 2 else 1)
        for opt in self.optimizers.values():
            for group in opt.param_groups:
                group["lr"] = (self.config.text_lr if opt is self.optimizers["T"] else self.config.lr) * self.lr_scale

    def phases(self):
        at = self.stage_at
        return [Phase("T", ("G", "I"), "T", self.text_step, active=lambda s: at(s) == 0),
                Phase("D1", ("D1",), "D1", lambda b: self.discriminator_step(b, 1), active=lambda s: at(s) == 1),
                Phase("G1", ("G",), "G1", lambda b: self.generator_step(b, 1), same_batch=True,
                      active=lambda s: at(s) == 1),
                Phase("D2", ("D2",), "D2", lambda b: self.discriminator_step(b, 2), active=lambda s: at(s) == 2),
                Phase("G2", ("G",), "G2", lambda b: self.generator_step(b, 2), same_batch=True,
                      active=lambda s: at(s) == 2)]

    # ---- the losses ---------------------------------------------------------------------------
    def text_step(self, batch: Batch):
        """The sentence encoder and an image encoder, by the CLIP loss on (image, its caption)."""
        G = self.nets["G"]
        low = F.interpolate(batch.x, size=self.config.resolution // self.config.up_factor, mode="area")
        loss = contrastive_loss(G.text(batch.text), self.train_nets["I"](low))
        return loss, {"loss/text": loss.detach()}

    def _draw(self, batch: Batch, stage: int):
        """(real image at the stage's size, fake, mu, logvar), fake with its graph to G."""
        G = self.nets["G"]
        e = self._embeddings(batch)
        z = torch.randn(batch.x.shape[0], self.config.z_dim, device=batch.x.device)
        if stage == 1:
            c, mu, logvar = G.ca1(e)
            real = F.interpolate(batch.x, size=self.config.resolution // self.config.up_factor, mode="area")
            return real, G.stage1(z, c), mu, logvar
        with torch.no_grad():
            low = G.stage1(z, G.ca1(e)[0])
        c, mu, logvar = G.ca2(e)
        return batch.x, G.stage2(low, c), mu, logvar

    def _embeddings(self, batch: Batch) -> torch.Tensor:
        """The frozen sentence embeddings of the batch's captions, computed once per step."""
        if self._text is None or self._text[0] is not batch:
            with torch.no_grad():
                self._text = (batch, self.nets["G"].text(batch.text))
        return self._text[1]

    def discriminator_step(self, batch: Batch, stage: int):
        """The authors' ``compute_discriminator_loss``: real + right text -> 1; real + wrong text
        (the batch's captions shifted by one) and fake + right text -> 0; unconditional real -> 1,
        fake -> 0; (real terms) / 2 + (fake and wrong terms) / 3."""
        with torch.no_grad():
            real, fake, mu, _ = self._draw(batch, stage)
        base = self.nets[f"D{stage}"]  # its parts are called one by one (hence no DDP: one_process_why)
        h_real, h_fake = base.features(real), base.features(fake)
        real_l, fake_l = base.cond_logits(h_real, mu), base.cond_logits(h_fake, mu)
        wrong_l = base.cond_logits(h_real[:-1], mu[1:])
        bce = F.binary_cross_entropy_with_logits
        ones, zeros = torch.ones_like(real_l), torch.zeros_like(real_l)
        u_real, u_fake = bce(base.uncond_logits(h_real), ones), bce(base.uncond_logits(h_fake), zeros)
        loss = (bce(real_l, ones) + u_real) / 2 + (bce(fake_l, zeros) + bce(wrong_l, zeros[:-1]) + u_fake) / 3
        return loss, {f"loss/D{stage}": loss.detach()}

    def generator_step(self, batch: Batch, stage: int):
        """Conditional + unconditional non-saturating losses of the fake, + kl_weight x KL (Eq. 4/6)."""
        _, fake, mu, logvar = self._draw(batch, stage)
        D = self.nets[f"D{stage}"]
        h = D.features(fake)
        ones = torch.ones(fake.shape[0], device=fake.device)
        bce = F.binary_cross_entropy_with_logits
        adv = bce(D.cond_logits(h, mu.detach()), ones) + bce(D.uncond_logits(h), ones)
        kl = kl_loss(mu, logvar)
        return adv + self.config.kl_weight * kl, {f"loss/G{stage}": adv.detach(), "loss/kl": kl.detach()}

    # ---- sampling -----------------------------------------------------------------------------
    @classmethod
    def condition_for(cls, config: StackGANConfig, n: int, cond: Any, generator: torch.Generator) -> torch.Tensor:
        """Token ids ``(n, L)``: ``cond`` a caption, a list of n captions, or token ids; None draws
        among the run's sample captions."""
        if isinstance(cond, torch.Tensor) and cond.dim() == 2 and (cond.dtype == torch.long or cond.is_floating_point()):
            return cond  # token ids, caption indices or sentence embeddings
        if cond is None:
            pick = torch.randint(len(config.sample_captions), (n,), generator=generator).tolist()
            cond = [config.sample_captions[i] for i in pick]
        captions = [cond] * n if isinstance(cond, str) else list(cond)
        if len(captions) != n:
            raise GankitError(f"got {len(captions)} captions for {n} samples")
        return encode_text(config, captions)

    @classmethod
    def sample_labels(cls, config: StackGANConfig, n: int, *, generator: torch.Generator | None = None,
                      device: torch.device | str = "cpu") -> torch.Tensor:
        """Token ids of ``n`` of the run's sample captions (what latent walks hold fixed)."""
        return cls.condition_for(config, n, None, generator or torch.Generator()).to(device)

    @classmethod
    def snapshot_inputs(cls, config: StackGANConfig, n: int, seed: int):
        """One row per sample caption, the same z per column."""
        gen = torch.Generator().manual_seed(seed)
        captions = config.sample_captions or [""]
        per_row = max(1, n // len(captions))
        z = torch.randn(per_row, cls.latent_dim(config), generator=gen).repeat(len(captions), 1)
        ids = encode_text(config, [c for c in captions for _ in range(per_row)], check=False)
        return z, ids, per_row


def encode_text(config: StackGANConfig, captions: list[str], check: bool = True) -> torch.Tensor:
    """Captions -> token ids ``(N, text_length)`` with the run's vocabulary; an empty caption, or
    one whose words the model never saw, is a user error."""
    from gankit.data.captions import Vocabulary, tokenize

    if config.text_encoder == "minilm":
        from gankit.nn import sentence_embeddings

        if check and not all(tokenize(c) for c in captions):
            raise GankitError("an empty caption: give a sentence")
        return sentence_embeddings.sentence_embeddings(captions)
    vocab = Vocabulary(config.vocabulary)
    if check:
        for caption in captions:
            words = tokenize(caption)
            if not words:
                raise GankitError(f"an empty caption ({caption!r}): give words the model knows, e.g. "
                                  f"{config.sample_captions[0]!r}")
            unknown = sorted({w for w in words if w not in vocab.index})
            if unknown:
                known = ", ".join(config.vocabulary[2:14])
                raise GankitError(f"the model never saw the word(s) {', '.join(map(repr, unknown))}; it knows "
                                  f"{len(config.vocabulary) - 2} words, e.g. {known}")
    return vocab.encode_batch(captions, config.text_length)[0]


def _fit_length(text: torch.Tensor, length: int) -> torch.Tensor:
    if text.shape[-1] >= length:
        return text[..., :length].contiguous()
    return F.pad(text, (0, length - text.shape[-1]))


def _index_captions(config: StackGANConfig, ds) -> None:
    """minilm: each item's captions as 1-based indices into the distinct captions (``ds.text``
    ``(N, K, 1)``), and their embeddings in ``ds.text_table`` unless the run already has them."""
    from gankit.nn import sentence_embeddings

    distinct = list(dict.fromkeys(c for cs in ds.captions for c in cs))
    index = {c: i + 1 for i, c in enumerate(distinct)}
    text = torch.zeros(len(ds.captions), ds.text.shape[1], 1, dtype=torch.long)
    for i, cs in enumerate(ds.captions):
        text[i, :len(cs), 0] = torch.tensor([index[c] for c in cs])
    ds.text = text
    if config.num_captions not in (0, len(distinct)):
        raise GankitError(f"the run stored {config.num_captions} caption embeddings but its data now has "
                          f"{len(distinct)} distinct captions")
    if not config.num_captions:
        ds.text_table = sentence_embeddings.sentence_embeddings(distinct)
    config.num_captions, config.text_dim, config.text_length = len(distinct), MINILM_DIM, 1

