"""Run configuration: one flat dataclass per family, presets, YAML files and ``--set`` overrides.

A family's ``Config`` subclasses :class:`TrainConfig`, so the engine's options (steps, batch
size, EMA, checkpoint cadence...) and the family's hyperparameters (``nz``, ``ngf``, learning
rates...) live in one typed object that is saved beside the weights as JSON; a checkpoint
reloads with no flags (the habit of nanoGPT's ``model_args`` and diffusers' ``config.json``).
Defaults are the paper's; ``PRESETS`` name the overrides for ``tiny`` (tests, seconds),
``small`` (a CPU in minutes) and ``paper``.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import types
import typing
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, ClassVar

import yaml

from gankit.errors import GankitError


LEARNING_RATES = frozenset({"lr", "lr_g", "lr_d", "text_lr"})  # the families' optimizer rates
WIDTHS = frozenset({"nz", "ngf", "ndf", "z_dim", "w_dim", "nf", "nfc", "nfc_max", "conv_dim", "embed_dim",
                    "word_dim", "text_dim", "shared_dim", "fmap_base", "fmap_max", "channel_base", "channel_max"})


@dataclass
class TrainConfig:
    """Options every family shares; the engine reads these."""

    family: str = ""
    data: str = "mnist"
    where: str = ""  # keep only the images whose labels match, e.g. "race=East Asian" (gankit.data.where)
    preset: str = "paper"
    steps: int = 10_000
    batch_size: int = 64
    resolution: int = 64
    channels: int = 0  # 0 = follow the data (1 for digits, 3 for photos)
    num_classes: int = 0  # filled from the data for conditional families
    max_images: int = 0  # 0 = all; >0 keeps the first N (small-data experiments)
    seed: int = 0
    hflip: bool = False  # random horizontal flips of real images
    init: str = ""  # the run or export whose weights this run started from (gankit train --init)
    # a non-finite loss or weight: "stop" (exit code 3) or "rollback" (reload the last good
    # checkpoint, multiply every learning rate by rollback_lr_factor, go on; at most max_rollbacks).
    # 0.1: recovered from rates 10x-1000x too high where 0.5 and 0.25 recovered from 10x only, at
    # the same FID cost after a one-off NaN (bench/rollback.py, docs/nothing-lost.md)
    on_divergence: str = "stop"
    rollback_lr_factor: float = 0.1
    max_rollbacks: int = 3
    # share of the steps after which every learning rate falls linearly to 0 at the last step
    # (CycleGAN §7.1, StarGAN §5.2); 1 = constant rates. A resume with another --steps goes on
    # from the rate reached, by the new schedule's step-to-step ratios
    decay_from: float = 1.0
    # exponential moving average of G's weights (Karras et al. 2018, "ProGAN" §A.1)
    ema: bool = True
    # warmed up as min(decay, (1 + t) / (10 + t)), t steps since the start (ProGAN: since its latest fade began)
    ema_decay: float = 0.999
    # engine cadence
    log_every: int = 10
    snapshot_every: int = 100
    checkpoint_every: int = 500
    keep_checkpoints: int = 3
    n_snapshot: int = 64
    # quality metrics during training (gankit.metrics.evaluate), logged as metric/<name>
    eval_every: int = 0  # 0 = never
    eval_metrics: str = "fid,kid,pr"  # swd needs no pretrained network: use it for colour data
    eval_features: str = "auto"  # auto | inception | mnist | faces (gankit.metrics.features)
    eval_n: int = 2000
    # hardware
    device: str = "auto"  # auto | cpu | cuda | cuda:N | mps
    # auto | fp32 | bf16 | fp16 autocast. auto: bf16 where the hardware multiplies bf16 matrices
    # (Ampere+ GPUs, CPUs with AVX512-BF16/AMX: 1.8x for the DCGAN paper preset,
    # bench/throughput.py), else fp32 (AVX2-only CPUs emulate bf16, many times slower); the run
    # records which it used. fp16 is for CUDA (with a gradient scaler). Double-backward
    # regularisers (GP, R1, path length) always run in fp32.
    precision: str = "auto"
    channels_last: bool = False
    compile: bool = False

    PRESETS: ClassVar[dict[str, dict[str, Any]]] = {"paper": {}}

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True)

    @classmethod
    def field_names(cls) -> set[str]:
        return {f.name for f in fields(cls)}

    @classmethod
    def from_dict(cls, values: dict[str, Any], *, strict: bool = True) -> "TrainConfig":
        """Build from a dict; unknown keys are an error when ``strict`` (a typo in ``--set``)."""
        known = cls.field_names()
        unknown = sorted(set(values) - known)
        if unknown and strict:
            raise GankitError(
                f"unknown option(s) for {cls.__qualname__}: {', '.join(unknown)} "
                f"(known: {', '.join(sorted(known))})"
            )
        return cls(**{k: v for k, v in values.items() if k in known})

    def validate(self) -> None:
        """Range checks a user can trip; families extend this."""
        if self.steps < 0:
            raise GankitError(f"steps must be >= 0, got {self.steps}")
        if self.batch_size < 1:
            raise GankitError(f"batch_size must be >= 1, got {self.batch_size}")
        if not 0 <= self.decay_from <= 1:
            raise GankitError(f"decay_from must be in [0, 1], got {self.decay_from}")
        if not 0.0 <= self.ema_decay < 1.0:
            raise GankitError(f"ema_decay must be in [0, 1), got {self.ema_decay}")
        if self.precision not in ("auto", "fp32", "bf16", "fp16"):
            raise GankitError(f"precision must be auto, fp32, bf16 or fp16, got {self.precision!r}")
        if self.where:
            from gankit.data.where import parse_where

            parse_where(self.where)  # the syntax now; columns and values when the data loads
        if self.eval_every < 0 or self.eval_n < 2:
            raise GankitError("eval_every must be >= 0 and eval_n >= 2")
        if self.on_divergence not in ("stop", "rollback"):
            raise GankitError(f"on_divergence must be stop or rollback, got {self.on_divergence!r}")
        if not 0 < self.rollback_lr_factor <= 1 or self.max_rollbacks < 0:
            raise GankitError("rollback_lr_factor must be in (0, 1] and max_rollbacks >= 0")
        for name in ("log_every", "snapshot_every", "checkpoint_every", "keep_checkpoints", "n_snapshot"):
            if getattr(self, name) < 1:
                raise GankitError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.max_images < 0:
            raise GankitError(f"max_images must be >= 0 (0: all), got {self.max_images}")
        names = self.field_names()
        for name in sorted(names & LEARNING_RATES):  # what torch's optimizers would refuse mid-setup
            value = getattr(self, name)
            if not math.isfinite(value) or value < 0:
                raise GankitError(f"{name} is a learning rate: a finite number >= 0, got {value}")
        for name in sorted(names & WIDTHS):  # a 0 or negative width failed deep inside torch
            if getattr(self, name) < 1:
                raise GankitError(f"{name} is a size of the networks: at least 1, got {getattr(self, name)}")
        if self.num_classes < 0:
            raise GankitError(f"num_classes must be >= 0 (0: from the data), got {self.num_classes}")
        for name in sorted(names & {"beta1", "beta2"}):
            if not 0.0 <= getattr(self, name) < 1.0:
                raise GankitError(f"{name} is an Adam decay rate: in [0, 1), got {getattr(self, name)}")


def _field_type(cls: type, name: str) -> Any:
    """The field's declared type, ``X`` for ``X | None``."""
    kind = typing.get_type_hints(cls)[name]
    if isinstance(kind, types.UnionType) or typing.get_origin(kind) is typing.Union:
        kind = next(a for a in typing.get_args(kind) if a is not type(None))
    return kind


def parse_value(cls: type, name: str, text: str) -> Any:
    """Convert ``--set name=text`` to the field's declared type."""
    if name not in cls.field_names():
        raise GankitError(
            f"unknown option {name!r} for this family (known: {', '.join(sorted(cls.field_names()))})"
        )
    kind = _field_type(cls, name)
    try:
        if kind is bool:
            low = text.strip().lower()
            if low in ("1", "true", "yes", "on"):
                return True
            if low in ("0", "false", "no", "off"):
                return False
            raise ValueError(text)
        if kind in (int, float, str):
            return kind(text)
        if typing.get_origin(kind) in (list, tuple):
            value = yaml.safe_load(text)
            return typing.get_origin(kind)(value if isinstance(value, list) else [value])
        return yaml.safe_load(text)
    except ValueError:
        raise GankitError(f"option {name}: cannot read {text!r} as {getattr(kind, '__name__', kind)}") from None


def typed_value(cls: type, name: str, value: Any) -> Any:
    """An option given as a Python value (the API's ``overrides`` dict, a YAML config file) checked
    against the field's declared type as ``--set`` text is: ``"false"`` for a bool is read as
    text, ``1`` for a float widens, a str for a number is parsed, anything else is refused."""
    if name not in cls.field_names() or value is None:
        return value  # unknown names are refused by from_dict, with the list of known ones
    if isinstance(value, (str, os.PathLike)):
        return parse_value(cls, name, os.fspath(value))
    kind = _field_type(cls, name)
    if kind is bool and isinstance(value, bool):
        return value
    if kind is int and isinstance(value, int) and not isinstance(value, bool):
        return value
    if kind is int and isinstance(value, float) and value.is_integer():
        return int(value)
    if kind is float and isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    if typing.get_origin(kind) in (list, tuple) and isinstance(value, (list, tuple)):
        return typing.get_origin(kind)(value)
    if kind not in (bool, int, float, str) and typing.get_origin(kind) not in (list, tuple):
        return value
    raise GankitError(f"option {name}: expected {getattr(kind, '__name__', kind)}, got {value!r}")


def parse_overrides(cls: type, items: list[str]) -> dict[str, Any]:
    """``["lr_g=1e-4", "ema=false"]`` -> typed dict."""
    out: dict[str, Any] = {}
    for item in items:
        if "=" not in item:
            raise GankitError(f"--set expects key=value, got {item!r}")
        key, text = item.split("=", 1)
        key = key.strip().replace("-", "_")
        out[key] = parse_value(cls, key, text)
    return out


def read_config_file(path: str | Path) -> dict[str, Any]:
    """A YAML (or JSON) file of options; ``yaml.safe_load`` never builds Python objects."""
    p = Path(path)
    if not p.is_file():
        raise GankitError(f"config file not found: {p}")
    try:
        values = yaml.safe_load(p.read_text()) or {}
    except yaml.YAMLError as exc:
        raise GankitError(f"config file {p} is not valid YAML: {str(exc).splitlines()[0]}") from None
    if not isinstance(values, dict):
        raise GankitError(f"config file {p} must hold a mapping of option: value")
    return {str(k).replace("-", "_"): v for k, v in values.items()}


def build_config(
    cls: type[TrainConfig],
    *,
    preset: str = "small",
    file_values: dict[str, Any] | None = None,
    overrides: dict[str, Any] | None = None,
) -> TrainConfig:
    """Layer defaults < preset < config file < explicit overrides (flags and ``--set``)."""
    if preset not in cls.PRESETS:
        raise GankitError(f"unknown preset {preset!r}; choose from {', '.join(cls.PRESETS)}")
    values: dict[str, Any] = {"preset": preset}
    values.update(cls.PRESETS[preset])
    values.update({k: typed_value(cls, k, v) for k, v in (file_values or {}).items()})
    values.update({k: typed_value(cls, k, v) for k, v in (overrides or {}).items() if v is not None})
    config = cls.from_dict(values)
    config.validate()
    return config


__all__ = [
    "TrainConfig",
    "build_config",
    "parse_overrides",
    "parse_value",
    "typed_value",
    "read_config_file",
]
