"""The Python API: ``gankit.train(...)`` mirrors ``gankit train``; ``gankit.load(path)`` returns
a :class:`Model` for sampling from a run directory or an exported model directory."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gankit.config import TrainConfig, build_config, parse_overrides, read_config_file, typed_value
from gankit.data import Dataset
from gankit.engine import checkpoint as ckpt
from gankit.engine.monitor import MetricsLog
from gankit.engine.runtime import setup_runtime, teardown_runtime
from gankit.engine.trainer import StepCallback, Trainer
from gankit.errors import GankitError
from gankit.files import write_text_atomic
from gankit.families.base import Family
from gankit.model import (  # noqa: F401 (re-exported: gankit.api.Model, gankit.api.load, ...)
    EXPORT_CONFIG,
    EXPORT_WEIGHTS,
    EXTRA_PREFIX,
    Model,
    as_model,
    info,
    load,
    read_networks,
)
from gankit.registry import get_family


@dataclass
class TrainResult:
    run_dir: Path
    step: int
    status: str  # "finished" | "interrupted"
    seconds: float
    outputs: dict[str, Path] = field(default_factory=dict)
    stop_signal: int | None = None
    is_main: bool = True  # False on the other ranks of a torchrun job: they stay silent


def recorded_data(spec: str) -> str:
    """What a run records as its data: a built-in's name as given, a folder or zip as an absolute
    path (``evaluate``, ``neighbors`` and ``--resume`` may run from another directory)."""
    from gankit.data import BUILTIN_NAMES
    from gankit.data.loader import family_builtins

    if not spec or spec.strip().lower() in BUILTIN_NAMES or spec in family_builtins():
        return spec
    path = Path(spec).expanduser()
    return str(path.resolve()) if path.exists() else spec


def train(
    family: str | None = None,
    *,
    data: str | Path | None = None,
    out: str | Path | None = None,
    preset: str = "small",
    steps: int | None = None,
    batch_size: int | None = None,
    resolution: int | None = None,
    seed: int | None = None,
    config_file: str | Path | None = None,
    overrides: dict[str, Any] | list[str] | None = None,
    resume: str | Path | None = None,
    init: str | Path | None = None,
    quiet: bool = False,
    on_step: StepCallback | None = None,
) -> TrainResult:
    """Train ``family`` on ``data`` into the run directory ``out``; or continue ``resume``.

    ``overrides`` are extra options, as a dict or as ``["key=value", ...]`` like ``--set``.
    With ``resume``, ``steps`` sets the new total; the run's own config is reused. ``init`` starts
    from the weights of another run or export directory (fine-tuning, e.g. an imported StyleGAN2):
    its architecture options are taken over, the training options are this call's, and the step
    count and optimizers start afresh.
    """
    started = time.perf_counter()
    if init is not None and resume is not None:
        raise GankitError("--init starts a new run from other weights; --resume continues a run: give one of them")
    init_nets, changed = None, {}
    flags = {"data": None if data is None else str(data), "steps": steps, "batch_size": batch_size,
             "resolution": resolution, "seed": seed}
    if resume is not None:
        ignored = [f"--{name.replace('_', '-')}" for name, value in (("batch_size", batch_size), ("resolution", resolution),
                   ("seed", seed), ("config", config_file)) if value is not None]
        if ignored:  # were silently dropped: the run keeps its config
            raise GankitError(f"with --resume, the run keeps its options: drop {', '.join(ignored)} "
                              f"(a training option can change with --set KEY=VALUE)")
        run_dir = Path(resume)
        _, tensors, meta = ckpt.load_latest(run_dir)
        family_cls = get_family(meta["family"])
        values = dict(meta["config"])
        asked = _overrides(family_cls, overrides)
        if steps is None:  # --set steps=N is --steps N
            steps = asked.pop("steps", None)
        asked.pop("steps", None)
        changed = {k: v for k, v in asked.items() if values.get(k) != v}  # named if the checkpoint then misfits
        values.update(asked)
        if steps is not None:
            steps = typed_value(family_cls.Config, "steps", steps)
            if steps < meta["step"]:  # was a silent "done" at the run's own step
                raise GankitError(f"{run_dir} is already at step {meta['step']}: --steps is the new total, "
                                  f"so give at least {meta['step']} (got {steps})")
            values["steps"] = steps
        config = family_cls.Config.from_dict(values, strict=False)
        config.validate()
    else:
        if family is None or out is None:
            raise GankitError("train needs a family and --out RUN (or --resume RUN)")
        family_cls = get_family(family)
        run_dir = Path(out)
        if ckpt.list_checkpoints(run_dir):
            raise GankitError(f"{run_dir} already holds a run; continue it with --resume {run_dir} or pick a new --out")
        file_values = read_config_file(config_file) if config_file else {}
        overrides_ = {**{k: v for k, v in flags.items() if v is not None}, **_overrides(family_cls, overrides)}
        for key in ("data", "data_b"):  # a relative folder would be looked for where later tools run
            if isinstance(overrides_.get(key), str):
                overrides_[key] = recorded_data(overrides_[key])
        if init is not None:
            init_nets, architecture = _init_source(family_cls, init, overrides_)
            overrides_.update(architecture)
        config = build_config(family_cls.Config, preset=preset, file_values=file_values, overrides=overrides_)
        config.family = family_cls.name
        tensors = meta = None

    rt = setup_runtime(config.device)
    try:
        dataset = _load_training_data(config, family_cls)
        if meta is not None and list(dataset.shape) != list(meta["data"]["shape"]):
            raise GankitError(f"the data now gives samples of shape {tuple(dataset.shape)}, "
                              f"the run was trained on {tuple(meta['data']['shape'])}")
        created = not run_dir.exists()
        run_dir.mkdir(parents=True, exist_ok=True)
        try:
            trainer = Trainer(family_cls, config, dataset, run_dir, rt, on_step=on_step, quiet=quiet)
        except BaseException:
            if created and rt.is_main and not any(run_dir.iterdir()):  # refused before a file was written
                run_dir.rmdir()
            raise
        if rt.is_main:
            if not quiet:
                where = f" on {rt.world_size} processes" if rt.distributed else ""
                how = f", {trainer.precision}" + (" (auto)" if config.precision == "auto" else "")
                print(f"{family_cls.name}: {dataset.summary()}{where}{how}", flush=True)
                for line in family_cls.training_plan(config):
                    print(f"  {line}", flush=True)
        if init_nets is not None:
            try:
                trainer.load_init(init_nets)
            except (RuntimeError, KeyError) as exc:
                raise GankitError(f"the weights in {init} do not fit this run's networks "
                                  f"({str(exc).splitlines()[0]})") from None
        if meta is not None:
            try:
                trainer.load_state(tensors, meta)
            except (RuntimeError, KeyError, ValueError) as exc:
                if changed:  # most likely an architecture option given with --set: say which, and the run's
                    was = ", ".join(f"{k}={meta['config'].get(k)}" for k in changed)
                    raise GankitError(f"cannot resume {run_dir}: its networks do not fit after --set "
                                      f"{', '.join(changed)} (the run has {was}); the architecture stays on "
                                      f"--resume, so drop those") from None
                lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
                raise GankitError(f"cannot resume {run_dir}: the checkpoint does not fit this config "
                                  f"({'; '.join(lines[:2])})") from None
        if rt.is_main:  # after the checkpoint was taken: a resume refused above leaves the run's config as it was
            write_text_atomic(run_dir / "config.json", json.dumps(
                {"family": family_cls.name, "config": config.to_dict(), "precision_used": trainer.precision},
                indent=2, sort_keys=True))
        log = MetricsLog(run_dir) if rt.is_main else None
        if log is not None:
            log.truncate_after(trainer.step)
        try:
            status = trainer.fit(log)
        finally:
            if log is not None:
                log.close()
        outputs = finish_outputs(run_dir) if rt.is_main else {}
        result = TrainResult(run_dir, trainer.step, status, time.perf_counter() - started, outputs,
                             trainer.stop_signal, rt.is_main)
        return result
    finally:
        teardown_runtime(rt)


def _init_source(family_cls: type[Family], init: str | Path, overrides: dict[str, Any]):
    """The networks of ``init`` and its architecture options (``Family.architecture_keys``), which
    a fine-tuning run must share; an explicit override that contradicts them is a user error."""
    if not family_cls.architecture_keys:
        from gankit.registry import families as _families

        able = [name for name, cls in _families().items() if cls.architecture_keys]
        raise GankitError(f"--init is not supported for {family_cls.name} yet (supported: {', '.join(able)})")
    source_cls, source_config, nets = read_networks(init)
    if source_cls.name != family_cls.name:
        raise GankitError(f"{init} holds a {source_cls.name} model; --init needs a {family_cls.name} one")
    architecture = {k: getattr(source_config, k) for k in family_cls.architecture_keys}
    for key, value in architecture.items():
        if key in overrides and overrides[key] != value and not (key == "channels" and not value):
            raise GankitError(f"{key}={overrides[key]} contradicts the --init model's {key}={value}; "
                              f"a fine-tuning run keeps the architecture of its starting weights")
    if not architecture.get("channels", 1):
        architecture.pop("channels")  # the run followed its data's channels: so does this one
    architecture["init"] = str(init)
    return nets, architecture


def _overrides(family_cls: type[Family], overrides: dict[str, Any] | list[str] | None) -> dict[str, Any]:
    if not overrides:
        return {}
    if isinstance(overrides, dict):
        values = {k: typed_value(family_cls.Config, k, v) for k, v in overrides.items()}
    else:
        if isinstance(overrides, str):  # one "key=value", not its characters
            overrides = [overrides]
        values = parse_overrides(family_cls.Config, list(overrides))
    for key, how in NOT_SETTABLE.items():
        if key in values:  # --set preset=paper was recorded while the tiny values trained
            raise GankitError(f"{key} is not an option to --set: {how}")
    return values


NOT_SETTABLE = {"family": "it is the first argument of gankit train", "preset": "give --preset NAME",
                "init": "give --init RUN"}


def _load_training_data(config: TrainConfig, family_cls: type[Family]) -> Dataset:
    dataset = family_cls.load_data(config)
    if config.where:
        if not dataset.where:  # a family that loads its data its own way (StarGAN's attributes)
            from gankit.data.where import filter_dataset

            dataset = filter_dataset(dataset, config.where)
        config.where = dataset.where  # spelt as the labels are: what config.json records
    family_cls.check_config(config, dataset.kind)
    return dataset


def finish_outputs(run_dir: Path) -> dict[str, Path]:
    """The timelapse GIF of fixed-noise snapshots and the loss plot, rebuilt from the run's files."""
    from gankit.viz import plot_metrics, read_jsonl, timelapse

    outputs: dict[str, Path] = {}
    snaps = sorted((run_dir / "samples").glob("step_*.png"))
    if snaps:
        outputs["last_grid"] = snaps[-1]
        outputs["timelapse"] = run_dir / "timelapse.gif"
        timelapse(snaps, outputs["timelapse"])
    records = read_jsonl(run_dir / "metrics.jsonl") if (run_dir / "metrics.jsonl").exists() else []
    plot = plot_metrics(records, run_dir / "losses.png", title=run_dir.name)
    if plot is not None:
        outputs["losses"] = Path(plot)
    outputs["metrics"] = run_dir / "metrics.jsonl"
    outputs["tensorboard"] = run_dir / "tensorboard"
    found = ckpt.list_checkpoints(run_dir)
    if found:
        outputs["checkpoint"] = found[-1]
    return outputs


def export(run: str | Path, out: str | Path, *, format: str = "gankit", ema: bool = True) -> Path:
    """Export a run's (or an export's) generator: ``gankit`` writes the directory ``out``
    (config.json + model.safetensors); ``rosinality`` writes a stylegan2-pytorch ``.pt`` file
    (``g_ema``, ``latent_avg`` and the discriminator as ``d`` when there is one)."""
    if format not in ("gankit", "rosinality"):
        raise GankitError(f"unknown export format {format!r}: use gankit or rosinality")
    model = load(run, ema=ema)
    out = Path(out)
    if format == "gankit":
        model.save_pretrained(out)
        return out / EXPORT_WEIGHTS
    from gankit.interop.stylegan2_io import export_rosinality

    if out.suffix != ".pt":
        raise GankitError(f"--format rosinality writes one .pt file: give --out NAME.pt, got {out}")
    _, _, nets = read_networks(run)
    return export_rosinality(model, out, discriminator=nets.get("D"))


def import_model(src: str | Path, out: str | Path, *, map_lr_mul: float | None = None) -> dict:
    """``gankit import``: a pretrained StyleGAN2 checkpoint (rosinality ``.pt``, NVlabs ``.pkl``) as
    an export directory ``out`` that :func:`load` reads; no code stored in the file runs. Returns
    what was read (format, architecture, notes)."""
    from gankit.interop.stylegan2_io import import_stylegan2

    return import_stylegan2(src, out, map_lr_mul=map_lr_mul)


def families() -> dict[str, str]:
    """Registered family names with a one-line description."""
    from gankit.registry import families as _families

    return {name: cls.description for name, cls in _families().items()}
