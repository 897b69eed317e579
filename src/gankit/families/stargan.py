"""StarGAN: Choi, Choi, Kim, Ha, Kim & Choo 2018, "StarGAN: Unified Generative Adversarial
Networks for Multi-Domain Image-to-Image Translation" (arXiv:1711.09020).

One generator translates an image to any target domain c, given as a vector of attributes (hair
colour, gender, age...) or a one-hot domain (class folders, RaFD-style). D judges real/fake
(a PatchGAN map) and also classifies the attributes of what it sees (an auxiliary classifier).
Losses (§3, Eq. 1-7): WGAN-GP adversarial (lambda_gp 10); D learns to classify real images'
attributes, G to make images D classifies as the target (lambda_cls 1; binary cross-entropy per
attribute, or cross-entropy over one-hot domains); and G(G(x, c), c_org) must give x back (the
reconstruction loss, L1, lambda_rec 10). Five D steps per G step, Adam(1e-4, 0.5, 0.999), the
learning rates decaying linearly to zero over the second half. Target domains are the batch's own
attribute vectors shuffled (the reference code), so targets follow the data's mix of attributes.

Not in the paper, two content terms:

- an identity loss, on by default outside the ``paper`` preset: lambda_id * ||G(x, c_org) - x||_1
  (the identity term of CycleGAN §5.2, for the one target whose right answer is known). Without
  it, on ``mnist-attributes`` even G(x, c_org) redrew the digit (7% of digits kept) and so did the
  Red and Thick edits, while the reconstruction loss stayed low: G hid the digit in its scrambled
  outputs and read it back.
- a structure loss, on by default outside the ``paper`` preset from step ``struct_start`` (1,000):
  lambda_struct * (1 - r^2) between the blurred luminance of x and G(x, c)
  (:func:`gankit.losses.structure_loss`), blind to brightness, contrast and polarity, so an edit
  that inverts the background keeps the shapes for free. On ``mnist-attributes``, with the
  identity loss alone, the background flip drew blobs and outlines of the stroke (9% of digits
  kept); with ``lambda_struct=5`` too, about 90% of flips keep the digit at the small preset's
  5,000 steps and Red and Thick stay at 95-98%. The weight has a window there: at 1-2 at most half
  the flips keep the digit, 3-6 gave 89-94% in 15 of 17 runs, 7-10 break Red and Thick.
  The late start is what makes it safe on photos: 1 - r^2 is as low at r = -1 as at +1 and
  highest at r = 0, so a term that counts from step 0 can pull an untrained G, whose outputs may
  start out anti-correlated with x, into negatives it cannot leave. That wrecked one of three
  runs of the gender swap on FairFace faces (every output a negative, r = -0.94). By step 1,000
  the identity loss has made the outputs positively correlated, and the term only holds them
  there. Measured in ``docs/families/stargan.md``.

``id_start`` switches the identity loss on only from a given step (an earlier, weaker fix for the
flip: 67-69% of flips at 5,000 steps without the structure loss).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch
from torch.nn import functional as F

from gankit.data import Dataset
from gankit.errors import GankitError
from gankit.families.base import Batch, Phase
from gankit.families.translation import TranslationConfig, TranslationFamily
from gankit.losses import gradient_penalty, structure_loss
from gankit.nn.translation import StarDiscriminator, StarGenerator
from gankit.registry import register


@dataclass
class StarGANConfig(TranslationConfig):
    data: str = "mnist-attributes"
    attr_file: str = ""  # CSV or CelebA list_attr file of the images in `data` (empty: built-in labels / class folders)
    attrs: str = ""  # comma-separated attributes to use from attr_file or fairface (empty: all)
    attribute_names: str = ""  # filled from the data: the attributes in the order G and D use them
    domains: bool = False  # filled from the data: one-hot domains (class folders) instead of attributes
    conv_dim: int = 64
    repeat_num: int = 6  # residual blocks in G; D's depth follows the resolution
    lambda_cls: float = 1.0
    lambda_rec: float = 10.0
    lambda_gp: float = 10.0
    lambda_id: float = 10.0  # L1(G(x, c_org), x): not in the paper (0 = the paper's losses); see the module doc
    id_start: int = 0  # the identity loss counts from this step on (before it: the paper's losses)
    lambda_struct: float = 5.0  # 1 - r^2 of the blurred luminance of x and G(x, c): not in the paper; module doc
    struct_blur: float = 1.0  # std in pixels of that blur (tolerance to moved edges)
    struct_start: int = 1000  # the structure loss counts from this step on (after the identity loss set polarity)
    d_steps: int = 5  # D steps per G step (n_critic)
    lr: float = 1e-4
    decay_from: float = 0.5
    resolution: int = 128

    PRESETS: ClassVar = {
        "tiny": dict(resolution=16, conv_dim=8, repeat_num=1, batch_size=4, steps=20, log_every=5,
                     snapshot_every=10, checkpoint_every=10, n_snapshot=4, d_steps=2, struct_start=10),
        "small": dict(resolution=32, conv_dim=32, repeat_num=3, batch_size=16, steps=5000, log_every=25,
                      snapshot_every=250, checkpoint_every=1000, n_snapshot=8),
        # CelebA at 128 px, batch 16, 200k iterations (100k decaying)
        "paper": dict(resolution=128, batch_size=16, steps=200_000, snapshot_every=2000, checkpoint_every=10_000,
                      lambda_id=0.0, lambda_struct=0.0),
    }

    @property
    def names(self) -> list[str]:
        return [n for n in self.attribute_names.split(",") if n]

    def validate(self) -> None:
        super().validate()
        lambdas = (self.lambda_cls, self.lambda_rec, self.lambda_gp, self.lambda_id, self.lambda_struct)
        if self.d_steps < 1 or min(self.id_start, self.struct_start) < 0 or min(lambdas) < 0 or self.struct_blur < 0:
            raise GankitError("d_steps must be >= 1, id_start, struct_start, struct_blur and the lambdas >= 0")


@register
class StarGAN(TranslationFamily):
    name = "stargan"
    description = "multi-domain translation: one generator, target attributes, an auxiliary classifier (Choi 2018)"
    paper = "arXiv:1711.09020"
    Config = StarGANConfig
    paired_data: ClassVar[bool] = False
    data_kinds: ClassVar[tuple[str, ...]] = ("image",)
    inference_nets: ClassVar[tuple[str, ...]] = ("D",)  # D reads an input's own attributes at translate time

    @classmethod
    def load_data(cls, config: StarGANConfig) -> Dataset:
        from gankit.data import attributes, load_dataset
        from gankit.data.builtin import FAIRFACE_DIR

        builtin_faces = not config.attr_file and config.data == "fairface"  # its own labels as attributes
        if config.attr_file or builtin_faces:
            folder = config.data if config.attr_file else FAIRFACE_DIR
            table = config.attr_file or FAIRFACE_DIR / "labels.csv"
            dataset = attributes.load_attribute_dataset(
                folder, table, wanted=[a for a in config.attrs.split(",") if a] or None,
                channels=config.channels or None, resolution=config.resolution, max_images=config.max_images or None,
                where=config.where or None,  # --where may test columns that attrs leaves out
                name="fairface" if builtin_faces else None)
        elif config.data == "mnist-attributes":
            dataset = attributes.mnist_attributes(config.resolution, config.max_images or None)
        else:
            dataset = load_dataset(config.data, channels=config.channels or None, resolution=config.resolution,
                                   max_images=config.max_images or None)
            if dataset.kind != "image" or dataset.num_classes < 2:
                raise GankitError("stargan needs images with attributes: --set attr_file=FILE (CSV or CelebA "
                                  "list_attr), class folders as domains, or the built-in mnist-attributes")
            dataset = attributes.class_domains(dataset)
            config.domains = True
        config.channels = dataset.shape[0]
        config.attribute_names = ",".join(dataset.attribute_names)
        config.num_classes = 0
        if config.attrs and not (config.attr_file or builtin_faces):
            raise GankitError("--set attrs=... picks columns of an attr_file; give attr_file too")
        return dataset

    @classmethod
    def check_config(cls, config, data_kind):
        super().check_config(config, data_kind)
        if len(config.names) < 1:
            raise GankitError("stargan needs at least one attribute")

    @classmethod
    def build_generator(cls, config, data_shape):
        # Instance norm WITHOUT running statistics: the reference tracks them, and then eval()
        # normalises every image with the training average instead of its own statistics, which
        # wrecks the outputs at translate time (measured: 1% successful edits vs the train-mode G).
        return StarGenerator(config.channels, len(config.names), config.resolution, conv_dim=config.conv_dim,
                             repeat_num=config.repeat_num, track_running_stats=False)

    @classmethod
    def build_discriminators(cls, config, data_shape):
        return {"D": StarDiscriminator(config.channels, len(config.names), config.resolution, conv_dim=config.conv_dim)}

    def __init__(self, config, data_shape):
        super().__init__(config, data_shape)
        self._c_trg: torch.Tensor | None = None  # the D step's targets, which G's step on the same batch reuses

    def phases(self):
        return [Phase("D", ("D",), "D", self.discriminator_step, double_backward=True),  # its gradient penalty
                Phase("G", ("G",), "G", self.generator_step, interval=self.config.d_steps, same_batch=True)]

    def classification_loss(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """Eq. 2-3: BCE per attribute (summed over attributes, as the reference), or CE over domains."""
        if self.config.domains:
            return F.cross_entropy(logits, target.argmax(1))
        return F.binary_cross_entropy_with_logits(logits, target, reduction="sum") / logits.shape[0]

    def discriminator_step(self, batch: Batch):
        if batch.attrs is None:
            raise GankitError("stargan needs attribute data")
        x, c_org = batch.x, batch.attrs
        c_trg = self._c_trg = c_org[torch.randperm(len(c_org), device=c_org.device)]
        G, D = self.train_nets["G"], self.train_nets["D"]
        with torch.no_grad():
            fake = G(x, c_trg)
        src_real, cls_real = D(x)
        src_fake, _ = D(fake)
        adv = src_fake.mean() - src_real.mean()
        cls = self.classification_loss(cls_real, c_org)
        gp = gradient_penalty(lambda v: D(v)[0], x, fake)
        loss = adv + self.config.lambda_cls * cls + self.config.lambda_gp * gp
        return loss, {"loss/D_adv": adv.detach(), "loss/D_cls": cls.detach(), "loss/gp": gp.detach()}

    def generator_step(self, batch: Batch):
        x, c_org, c_trg = batch.x, batch.attrs, self._c_trg
        G, D = self.train_nets["G"], self.train_nets["D"]
        fake = G(x, c_trg)
        src_fake, cls_fake = D(fake)
        adv = -src_fake.mean()
        cls = self.classification_loss(cls_fake, c_trg)
        rec = F.l1_loss(G(fake, c_org), x)
        loss = adv + self.config.lambda_cls * cls + self.config.lambda_rec * rec
        logs = {"loss/G_adv": adv.detach(), "loss/G_cls": cls.detach(), "loss/rec": rec.detach()}
        if self.config.lambda_id > 0 and self.step_under_way >= self.config.id_start:
            same = F.l1_loss(G(x, c_org), x)
            loss = loss + self.config.lambda_id * same
            logs["loss/id"] = same.detach()
        if self.config.lambda_struct > 0 and self.step_under_way >= self.config.struct_start:
            struct = structure_loss(x, fake, self.config.struct_blur)
            loss = loss + self.config.lambda_struct * struct
            logs["loss/struct"] = struct.detach()
        return loss, logs

    # ---- using it ----------------------------------------------------------------------------
    @classmethod
    def input_channels(cls, config, direction=None):
        return config.channels

    @classmethod
    def translate(cls, G, config, x, *, direction=None, attrs=None):
        if direction is not None:
            raise GankitError("stargan translates to target attributes; use --attrs instead of --direction")
        if attrs is None:
            raise GankitError("stargan needs target attributes (--attrs NAME=1,...)")
        attrs = torch.as_tensor(attrs, dtype=torch.float32, device=x.device)
        if attrs.dim() == 1:
            attrs = attrs.expand(len(x), -1)
        if attrs.shape != (len(x), len(config.names)):
            raise GankitError(f"target attributes must be (N, {len(config.names)}) for {', '.join(config.names)}")
        return G(x, attrs)

    @classmethod
    def read_attributes(cls, model, images: torch.Tensor) -> torch.Tensor:
        """Each input's own attributes, as D's classifier reads them (0/1, (N, K)); zeros when the
        model has no D (an exported generator)."""
        from gankit.families.translation import prepare_inputs

        D = model.extra.get("D")
        k = len(model.config.names)
        if D is None:
            return torch.zeros(len(images), k)
        with torch.no_grad():
            logits = D(prepare_inputs(cls, model.config, images).to(model.device))[1].float().cpu()
        if model.config.domains:
            return F.one_hot(logits.argmax(1), k).float()
        return (logits > 0).float()

    @classmethod
    def translation_columns(cls, model, images, *, direction=None, attrs=None):
        """With ``attrs``: one column, each input's own attributes changed as asked. Without:
        one column per attribute (flipped; for domains: one column per domain), as the paper's figures."""
        names = model.config.names
        if direction is not None:
            raise GankitError("stargan translates to target attributes; use --attrs instead of --direction")
        own = cls.read_attributes(model, images)
        if attrs:
            unknown = [a for a in attrs if a not in names]
            if unknown:
                raise GankitError(f"unknown attribute {unknown[0]!r}; this model knows {', '.join(names)}")
            target = own.clone()
            for name, value in attrs.items():
                if model.config.domains and value:
                    target.zero_()
                target[:, names.index(name)] = value
            label = ",".join(f"{k}={int(v)}" for k, v in attrs.items())
            return [(label, model.translate(images, attrs=target))]
        columns = []
        for i, name in enumerate(names):
            label = name if model.config.domains else f"flip {name}"
            columns.append((label, model.translate(images, attrs=one_change(own, i, model.config.domains))))
        return columns

    @classmethod
    def snapshot_columns(cls, G, config, batch):
        """Each fixed image, then one column per attribute flipped (per domain for one-hot domains)."""
        return [batch.x] + [G(batch.x, one_change(batch.attrs, i, config.domains)) for i in range(len(config.names))]


def one_change(attrs: torch.Tensor, i: int, domains: bool) -> torch.Tensor:
    """Targets that change one thing: attribute ``i`` flipped, or (one-hot domains) domain ``i``."""
    target = torch.zeros_like(attrs) if domains else attrs.clone()
    target[:, i] = 1 if domains else 1 - target[:, i]
    return target
