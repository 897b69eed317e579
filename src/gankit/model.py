"""A trained generator and the run or export it came from: :class:`Model` (``sample``,
``generate``, ``save_pretrained``), :func:`load`, :func:`read_networks`, :func:`info`.

It sits below the engine, the metrics and the explore tools (which all take a model) and above
the families, so the layers read top-down: cli -> api -> engine/metrics/explore -> model ->
families. ``gankit.api`` re-exports everything here.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from torch import nn

from gankit.config import TrainConfig
from gankit.engine import checkpoint as ckpt
from gankit.engine.ema import EMA_KEY
from gankit.engine.runtime import resolve_device
from gankit.errors import GankitError
from gankit.files import write_text_atomic
from gankit.families.base import Family, sample_images
from gankit.registry import get_family

EXPORT_CONFIG = "config.json"
EXPORT_WEIGHTS = "model.safetensors"


# ---- loading a trained generator -----------------------------------------------------------
EXTRA_PREFIX = "extra."  # exported weights of a family's inference_nets


class Model:
    """A trained generator with its config: ``sample``, ``generate``, ``save_pretrained``."""

    def __init__(self, family_cls: type[Family], config: TrainConfig, generator: nn.Module, *,
                 source: Path, step: int | None = None, ema: bool = True):
        self.family_cls, self.config, self.generator = family_cls, config, generator.eval()
        self.source, self.step, self.ema = source, step, ema
        self.extra: dict[str, nn.Module] = {}  # the family's inference_nets, when the source has them

    @property
    def family(self) -> str:
        return self.family_cls.name

    @property
    def device(self) -> torch.device:
        return next(self.generator.parameters()).device

    @property
    def latent_dim(self) -> int:
        return self.family_cls.latent_dim(self.config)

    @property
    def num_classes(self) -> int:
        return self.config.num_classes if self.family_cls.is_conditional(self.config) else 0

    def to(self, device: str | torch.device) -> "Model":
        self.generator.to(device)
        for net in self.extra.values():
            net.to(device)
        return self

    def sample(self, n: int, *, seed: int = 0, cond: int | list[int] | torch.Tensor | None = None,
               truncation: float | None = None, truncation_cutoff: int | None = None,
               noise: str | None = None) -> torch.Tensor:
        """``n`` samples in [-1, 1] as a CPU float tensor (NCHW images, or (N, 2) points).

        ``truncation``: for style-based families (stylegan2) psi in W, w = w_avg + psi (w - w_avg),
        on the first ``truncation_cutoff`` layers when given; for the others t > 0 draws z from the
        normal truncated to [-t, t] (BigGAN's truncation trick). ``noise`` (style-based only):
        random | const (default) | none."""
        return sample_images(self.family_cls, self.generator, self.config, n, seed=seed, cond=cond,
                             truncation=truncation, truncation_cutoff=truncation_cutoff, noise=noise)

    def translate(self, images: torch.Tensor, *, direction: str | None = None,
                  attrs: torch.Tensor | dict[str, float] | None = None, batch_size: int = 64) -> torch.Tensor:
        """Image-to-image families: translate ``images`` (NCHW uint8, or float in [-1, 1], at the
        model's resolution) and return CPU float images in [-1, 1]. ``direction`` (AtoB|BtoA)
        picks the way for two-way families; ``attrs`` are StarGAN's target attributes, a tensor
        (N, K) or a dict of changes such as ``{"Red": 1}`` applied to each image's own attributes."""
        from gankit.families.translation import translate_images

        if not self.family_cls.translates:
            raise GankitError(f"{self.family} makes images from noise; translate needs an image-to-image family "
                              f"(pix2pix, cyclegan, discogan, stargan)")
        if isinstance(attrs, dict):  # changes to each image's own attributes (StarGAN)
            return self.family_cls.translation_columns(self, images, direction=direction, attrs=attrs)[0][1]
        return translate_images(self.family_cls, self.generator, self.config, images, direction=direction,
                                attrs=attrs, batch_size=batch_size)

    def latents(self, n: int, *, seed: int = 0, truncation: float | None = None) -> torch.Tensor:
        """``n`` latents for ``seed``; with ``truncation`` t, z from the normal truncated to [-t, t]
        (BigGAN's trick: for the z-space families, whose :meth:`generate` cannot truncate a given z)."""
        return self.family_cls.sample_latent(self.config, n, generator=torch.Generator().manual_seed(seed),
                                             truncation=truncation)

    def labels(self, n: int, *, seed: int = 0) -> torch.Tensor | None:
        """Random class labels for conditional families (None otherwise)."""
        return self.family_cls.sample_labels(self.config, n, generator=torch.Generator().manual_seed(seed))

    def generate(self, z: torch.Tensor, cond: int | list[int] | torch.Tensor | None = None, *,
                 seed: int = 0, truncation: float | None = None, truncation_cutoff: int | None = None,
                 noise: str | None = None) -> torch.Tensor:
        """Images in [-1, 1] for given latents ``z`` (N, latent_dim); ``truncation``,
        ``truncation_cutoff`` and ``noise`` as in :meth:`sample` (style-based families)."""
        n = z.shape[0] if isinstance(z, torch.Tensor) and z.dim() == 2 else 1  # a misshapen z: refused there
        return sample_images(self.family_cls, self.generator, self.config, n, seed=seed, cond=cond, z=z,
                             truncation=truncation, truncation_cutoff=truncation_cutoff, noise=noise)

    # ---- W and W+ (style-based families) -----------------------------------------------------
    def _styles(self) -> nn.Module:
        if not self.family_cls.style_based:
            raise GankitError(f"{self.family} has no mapping network; the style tools need a style-based "
                              f"family (stylegan2)")
        return self.generator

    @property
    def num_ws(self) -> int:
        """Style layers of the synthesis network (each takes one w of W+)."""
        return self._styles().num_ws

    @property
    def w_avg(self) -> torch.Tensor:
        """The mean w tracked during training (the centre of the truncation trick)."""
        return self._styles().mapping.w_avg

    def mapping(self, z: torch.Tensor, *, truncation: float = 1.0, truncation_cutoff: int | None = None) -> torch.Tensor:
        """z (N, nz) -> ws (N, num_ws, w_dim), truncated towards :attr:`w_avg` by psi = ``truncation``.
        Differentiable (no ``no_grad``), so projection and editing tools can optimise through it."""
        from gankit.nn.stylegan2 import truncate

        self.family_cls.generation_options(self.config, truncation=truncation, truncation_cutoff=truncation_cutoff)
        G = self._styles()
        return truncate(G.mapping(z.to(self.device)), G.mapping.w_avg, truncation, truncation_cutoff)

    def synthesis(self, ws: torch.Tensor, *, noise: str = "const") -> torch.Tensor:
        """ws (N, num_ws, w_dim) -> images (N, C, R, R), not clamped; or w (N, w_dim), used on
        every layer. ``noise``: const (the stored noise maps) | random | none. Differentiable."""
        self.family_cls.generation_options(self.config, noise=noise)
        G = self._styles()
        ws = ws.to(self.device)
        if ws.dim() == 2:
            ws = ws[:, None, :].expand(-1, G.num_ws, -1)
        if ws.dim() != 3 or ws.shape[1] != G.num_ws:
            raise GankitError(f"synthesis takes ws of shape (N, {G.num_ws}, {G.w_dim}) or (N, {G.w_dim}), "
                              f"got {tuple(ws.shape)}")
        return G.synthesis(ws, noise)

    def save_pretrained(self, out_dir: str | Path) -> Path:
        """``config.json`` + ``model.safetensors`` (the Hugging Face convention). ``out_dir`` is
        new, empty or an earlier export (which is replaced); a run directory or a folder with
        other files is refused, so nothing there is overwritten."""
        out = Path(out_dir)
        check_export_target(out)
        out.mkdir(parents=True, exist_ok=True)
        tensors = dict(self.generator.state_dict())
        for name, net in self.extra.items():  # e.g. StarGAN's D, which reads an input's attributes
            tensors.update({f"{EXTRA_PREFIX}{name}.{k}": v for k, v in net.state_dict().items()})
        ckpt.save_tensors_atomic(tensors, out / EXPORT_WEIGHTS,
                                 metadata={"format": "gankit", "family": self.family})
        doc = {"gankit_format": ckpt.FORMAT_VERSION, "family": self.family, "step": self.step, "ema": self.ema,
               "config": self.config.to_dict()}
        write_text_atomic(out / EXPORT_CONFIG, json.dumps(doc, indent=2, sort_keys=True))
        return out

    def __repr__(self) -> str:
        return f"Model(family={self.family!r}, step={self.step}, source={str(self.source)!r})"


def misfit(exc: RuntimeError) -> str:
    """``load_state_dict``'s error in one line: the first missing, unexpected or misshapen names
    (its first line alone says only "Error(s) in loading state_dict for Generator:")."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    detail = "; ".join(lines[1:4]) if len(lines) > 1 else (lines[0] if lines else "")
    return detail[:400] + ("..." if len(detail) > 400 else "")


def check_export_target(out: Path) -> None:
    """Refuse to write an export into anything but a new or empty folder or an earlier export."""
    if out.exists() and not out.is_dir():
        raise GankitError(f"{out} is a file; --out names the folder the export is written to")
    names = {p.name for p in out.iterdir()} if out.is_dir() else set()
    if not names:
        return
    earlier = names <= {EXPORT_CONFIG, EXPORT_WEIGHTS} and (out / EXPORT_CONFIG).is_file()
    if earlier:
        try:
            read_export_doc(out / EXPORT_CONFIG)
        except GankitError:  # another tool's config.json
            earlier = False
    if not earlier:
        what = "a training run" if "checkpoints" in names else "a folder with other files"
        raise GankitError(f"{out} is {what}; export into a new folder (nothing there is overwritten)")


def load(path: str | Path, *, ema: bool = True, device: str = "cpu") -> Model:
    """Load the generator of a run directory (its newest checkpoint) or an exported directory."""
    path = Path(path)
    if not path.exists():
        raise GankitError(f"no such run or model directory: {path}")
    if (path / EXPORT_WEIGHTS).is_file() and (path / EXPORT_CONFIG).is_file():
        doc = read_export_doc(path / EXPORT_CONFIG)
        family_cls = get_family(doc["family"])
        config = export_config(family_cls, doc["config"], path)
        weights, step, used_ema = ckpt.read_tensors(path / EXPORT_WEIGHTS), doc.get("step"), doc.get("ema", True)
    else:
        _, tensors, meta = ckpt.load_latest(path)
        family_cls = get_family(meta["family"])
        config = family_cls.Config.from_dict(meta["config"], strict=False)
        used_ema = ema and any(k.startswith(f"net.{EMA_KEY}.") for k in tensors)
        weights = ckpt.prefixed(tensors, f"net.{EMA_KEY if used_ema else family_cls.generator_key}")
        step = meta["step"]
    shape = family_cls.sample_shape(config)
    if (path / EXPORT_WEIGHTS).is_file():  # an export keeps extra networks beside G's weights
        tensors = {f"net.{k[len(EXTRA_PREFIX):]}": v for k, v in weights.items() if k.startswith(EXTRA_PREFIX)}
        weights = {k: v for k, v in weights.items() if not k.startswith(EXTRA_PREFIX)}
    try:
        generator = family_cls.build_generator(config, shape)
    except (TypeError, ValueError, ZeroDivisionError) as exc:  # a hand-edited config.json ("resolution": null)
        raise GankitError(f"the config of {path} does not describe a {family_cls.name} generator "
                          f"({type(exc).__name__}: {exc})") from None
    try:
        generator.load_state_dict(weights)
    except RuntimeError as exc:
        raise GankitError(f"weights in {path} do not fit a {family_cls.name} generator: {misfit(exc)}") from None
    generator.requires_grad_(False)
    if getattr(config, "channels_last", False):  # the layout it trained in: 1.2-1.4x faster sampling
        generator.to(memory_format=torch.channels_last)  # where NHWC was chosen (bench/sample_layout.py)
    model = Model(family_cls, config, generator.to(resolve_device(device)), source=path, step=step, ema=used_ema)
    if family_cls.inference_nets:
        nets = family_cls.build_discriminators(config, family_cls.discriminator_input_shape(config, shape))
        for key in family_cls.inference_nets:
            if not any(k.startswith(f"net.{key}.") for k in tensors):
                continue  # an export from before the network was kept: translate without it
            nets[key].load_state_dict(ckpt.prefixed(tensors, f"net.{key}"))
            model.extra[key] = nets[key].eval().requires_grad_(False).to(model.device)
    return model


def read_networks(path: str | Path) -> tuple[type[Family], TrainConfig, dict[str, dict[str, torch.Tensor]]]:
    """Every network's weights in a run directory (its newest checkpoint: the raw nets and the EMA
    generator) or an export directory (the generator, as both ``G`` and the EMA, and the extra
    networks kept beside it, e.g. an imported discriminator): family, config, {net: state dict}."""
    path = Path(path)
    if (path / EXPORT_WEIGHTS).is_file() and (path / EXPORT_CONFIG).is_file():
        doc = read_export_doc(path / EXPORT_CONFIG)
        family_cls = get_family(doc["family"])
        config = export_config(family_cls, doc["config"], path)
        weights = ckpt.read_tensors(path / EXPORT_WEIGHTS)
        nets: dict[str, dict[str, torch.Tensor]] = {}
        for k, v in weights.items():
            if k.startswith(EXTRA_PREFIX):
                net, _, name = k[len(EXTRA_PREFIX):].partition(".")
                nets.setdefault(net, {})[name] = v
        generator = {k: v for k, v in weights.items() if not k.startswith(EXTRA_PREFIX)}
        nets[family_cls.generator_key] = generator
        nets.setdefault(EMA_KEY, generator)
        return family_cls, config, nets
    if not path.is_dir():
        raise GankitError(f"no such run or model directory: {path}")
    _, tensors, meta = ckpt.load_latest(path)
    family_cls = get_family(meta["family"])
    config = family_cls.Config.from_dict(meta["config"], strict=False)
    nets = {}
    for k, v in tensors.items():
        if k.startswith("net."):
            net, _, name = k[4:].partition(".")
            nets.setdefault(net, {})[name] = v
    return family_cls, config, nets


def as_model(run_or_model: "str | Path | Model", *, needs_config: bool = True) -> "Model":
    """A :class:`Model` from a run/export directory, or any model-like object (``.sample``, and
    ``.config`` unless ``needs_config=False``) passed through unchanged; the tools that score
    generators take either."""
    if isinstance(run_or_model, (str, Path)):
        return load(run_or_model)
    if not hasattr(run_or_model, "sample") or (needs_config and not hasattr(run_or_model, "config")):
        raise GankitError("expected a run directory or a gankit Model (with .sample and .config)")
    return run_or_model


def export_config(family_cls, values: dict, path: Path):
    """An export's config, typed and range-checked as ``--set`` values are (its file is the user's:
    a hand-edited "resolution": "16" or -16 is refused here in one line)."""
    from gankit.config import typed_value

    cls = family_cls.Config
    try:
        config = cls.from_dict({k: typed_value(cls, k, v) for k, v in values.items() if k in cls.field_names()},
                               strict=False)
        config.validate()
    except GankitError as exc:
        raise GankitError(f"{path}/{EXPORT_CONFIG}: {exc}") from None
    except (TypeError, ValueError) as exc:
        raise GankitError(f"{path}/{EXPORT_CONFIG}: a value does not fit ({exc})") from None
    return config


def read_export_doc(path: Path) -> dict:
    """An export's ``config.json``, checked: a ``family`` name and a ``config`` table (a folder of
    another tool, e.g. a Hugging Face model with its own config.json, is refused in one line)."""
    try:
        doc = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise GankitError(f"cannot read {path}: {exc}") from None
    if not (isinstance(doc, dict) and isinstance(doc.get("family"), str) and isinstance(doc.get("config"), dict)):
        raise GankitError(f"{path} is not a gankit export's config (no family and config): "
                          f"is {path.parent} a model of another tool? (gankit import reads StyleGAN2 files)")
    return doc


def info(run: str | Path) -> dict[str, Any]:
    """What a run is: family, config, steps trained, data used, latest metrics, files."""
    from gankit.viz import read_jsonl

    run = Path(run)
    if (run / EXPORT_WEIGHTS).is_file() and (run / EXPORT_CONFIG).is_file():  # `gankit export` / `import`
        doc = read_export_doc(run / EXPORT_CONFIG)
        kind, family, step, config = "export", doc["family"], doc.get("step"), doc["config"]
        files = {"data": {"source": config.get("data")}, "checkpoints": [], "latest_metrics": {},
                 "format_version": doc.get("gankit_format"), "ema": doc.get("ema"),
                 "imported_from": doc.get("imported_from")}
    else:
        _, _, meta = ckpt.load_latest(run)  # a damaged newest checkpoint is set aside, as for every tool
        kind, family, step, config = "run", meta["family"], meta["step"], meta["config"]
        latest: dict[str, Any] = {}
        for rec in read_jsonl(run / "metrics.jsonl") if (run / "metrics.jsonl").exists() else []:
            latest.update(rec)
        files = {"data": meta["data"], "checkpoints": [p.name for p in ckpt.list_checkpoints(run)],
                 "latest_metrics": latest, "format_version": meta.get("format_version")}
    family_cls = get_family(family)
    return {"run": str(run), "kind": kind, "family": family, "step": step, "steps_planned": config.get("steps"),
            "config": config, **files,
            "details": family_cls.describe(family_cls.Config.from_dict(config, strict=False), step)}
