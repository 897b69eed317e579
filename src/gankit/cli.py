"""The ``gankit`` command line: thin wrappers that parse, call the API and print.

User errors (:class:`GankitError`, bad options) end with one line on stderr and exit code 2.
"""

from __future__ import annotations

import json
import os
import signal
import sys
from pathlib import Path
from typing import List, Optional

import typer

from gankit.errors import GankitError

app = typer.Typer(
    name="gankit",
    help="Train, evaluate and explore the classic GAN families on your own images.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _echo(text: str = "") -> None:
    typer.echo(text)


@app.command("families")
def families_cmd() -> None:
    """List the registered GAN families with a one-line description each."""
    from gankit.api import families

    items = families()
    width = max(map(len, items))
    for name, description in items.items():
        _echo(f"{name:<{width}}  {description}")


@app.command("train")
def train_cmd(
    family: Optional[str] = typer.Argument(None, help="Family name (see `gankit families`)."),
    data: Optional[str] = typer.Option(None, "--data", "--data-a", help="Image folder, .zip, class folders, or a built-in: mnist, fairface, ring8, grid25 (image-to-image families: domain A)."),
    data_b: Optional[str] = typer.Option(None, "--data-b", help="Image-to-image families: domain B as its own source (--data is domain A)."),
    where: Optional[List[str]] = typer.Option(None, "--where", help='Train on the images whose labels match: "race=East Asian", "age=20-29|30-39", "gender!=Male"; repeat or join with "," (all must hold). Labels: fairface, a folder\'s labels.csv, class folders (class=NAME).'),
    out: Optional[Path] = typer.Option(None, "--out", help="Run directory to create."),
    preset: Optional[str] = typer.Option(None, "--preset", help="tiny (seconds, tests) | small (CPU minutes, the default) | paper."),
    steps: Optional[int] = typer.Option(None, "--steps", help="Total training steps (with --resume: the new total)."),
    batch_size: Optional[int] = typer.Option(None, "--batch-size", help="Batch size per process."),
    resolution: Optional[int] = typer.Option(None, "--resolution", help="Image size (square)."),
    seed: Optional[int] = typer.Option(None, "--seed", help="Random seed (default 0)."),
    config: Optional[Path] = typer.Option(None, "--config", help="YAML file of options."),
    set_: Optional[List[str]] = typer.Option(None, "--set", help="Any option as key=value; repeatable."),
    resume: Optional[Path] = typer.Option(None, "--resume", help="Continue the run in this directory."),
    init: Optional[Path] = typer.Option(None, "--init", help="Start from the weights of a run or export directory (fine-tuning; e.g. a `gankit import`ed StyleGAN2): its architecture, this run's data and training options."),
    eval_every: Optional[int] = typer.Option(None, "--eval-every", help="Log FID/KID/precision/recall every N steps (see --set eval_metrics=...)."),
    augment: Optional[str] = typer.Option(None, "--augment", help="Augment what D sees: none | diffaugment | ada (small datasets; GAN families)."),
    hflip: bool = typer.Option(False, "--hflip", help="Random horizontal flips of the real images (faces, most photos; not digits or text)."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar."),
) -> None:
    """Train FAMILY on --data into --out, or continue a run with --resume RUN [--steps N]."""
    from gankit.api import train
    from gankit.engine.monitor import format_duration

    if resume is None and (family is None or data is None or out is None):
        raise GankitError("train needs FAMILY, --data and --out (or --resume RUN)")
    if resume is not None and (family is not None or data is not None or preset is not None):
        raise GankitError("with --resume, give only --steps and --set (the run keeps its family, data and preset)")
    overrides = list(set_ or []) + ([f"eval_every={eval_every}"] if eval_every is not None else [])
    if data_b is not None:
        if resume is not None:
            raise GankitError("with --resume, the run keeps its data; drop --data-b")
        overrides.append(f"data_b={data_b}")
    if where is not None:
        if resume is not None:
            raise GankitError("with --resume, the run keeps its data and its --where filter; drop --where")
        overrides.append(f"where={','.join(where)}")
    if augment is not None:
        overrides.append(f"augment={augment}")
    if hflip:
        overrides.append("hflip=true")
    try:
        result = train(family, data=data, out=out, preset=preset or "small", steps=steps, batch_size=batch_size,
                       resolution=resolution, seed=seed, config_file=config, overrides=overrides or None,
                       resume=resume, init=init, quiet=quiet)
    except KeyboardInterrupt:  # before the loop's own Ctrl-C handling, or a second Ctrl-C inside it
        typer.echo(_interrupted_line(resume or out), err=True)
        raise typer.Exit(128 + int(signal.SIGINT)) from None
    if not result.is_main:
        raise typer.Exit(0 if result.status == "finished" else 128 + int(result.stop_signal or signal.SIGINT))
    if result.status == "interrupted":
        _echo(f"interrupted at step {result.step}; checkpoint saved. Continue with:")
        _echo(f"  gankit train --resume {result.run_dir}")
        sig = result.stop_signal or signal.SIGINT
        raise typer.Exit(128 + int(sig))
    _echo(f"done: step {result.step} in {format_duration(result.seconds)}. Files in {result.run_dir}/:")
    for label, path in result.outputs.items():
        _echo(f"  {label:<12} {path}")
    run = result.run_dir
    _echo("next:")
    from gankit.registry import get_family

    for line in get_family(json.loads((run / "config.json").read_text())["family"]).next_commands(run):
        _echo(f"  {line}")
    _echo(f"  gankit info {run}")
    _echo(f"  tensorboard --logdir {run}/tensorboard")


def _interrupted_line(run: Path) -> str:
    """What a Ctrl-C that stopped training at once left behind, and how to go on."""
    from gankit.engine.checkpoint import list_checkpoints

    found = list_checkpoints(Path(run))
    if found:
        return (f"interrupted: the last checkpoint is {found[-1].name}; continue with: "
                f"gankit train --resume {run}")
    return "interrupted before the first checkpoint: nothing to resume; run the same command again"


@app.command("sample")
def sample_cmd(
    run: Path = typer.Argument(..., help="Run directory or exported model directory."),
    n: int = typer.Option(64, "--n", help="Number of samples."),
    out: Path = typer.Option(Path("samples.png"), "--out", help="Output PNG grid."),
    seed: int = typer.Option(0, "--seed"),
    class_: Optional[int] = typer.Option(None, "--class", help="Class index (conditional families)."),
    class_grid: bool = typer.Option(False, "--class-grid", help="One row per class (conditional families)."),
    no_ema: bool = typer.Option(False, "--no-ema", help="Use the raw generator instead of its moving average."),
    nrow: Optional[int] = typer.Option(None, "--nrow", help="Images per row."),
    truncation: Optional[float] = typer.Option(None, "--truncation", help="The truncation trick, lower = higher fidelity, less variety. stylegan2: psi in W, w = w_avg + psi (w - w_avg), any finite number (1 = off, 0 = the mean image); other families: z from a normal truncated to [-t, t], t > 0 (BigGAN's)."),
    truncation_cutoff: Optional[int] = typer.Option(None, "--truncation-cutoff", help="stylegan2: truncate only the first N style layers."),
    noise: Optional[str] = typer.Option(None, "--noise", help="stylegan2: const (default: the stored noise maps) | random | none."),
    size: Optional[str] = typer.Option(None, "--size", help="singan: HEIGHTxWIDTH, any aspect (e.g. 64x160)."),
    scale_h: Optional[float] = typer.Option(None, "--scale-h", help="singan: the height times this factor."),
    scale_w: Optional[float] = typer.Option(None, "--scale-w", help="singan: the width times this factor."),
    start_scale: Optional[int] = typer.Option(None, "--start-scale", help="singan: scales below this one keep the picture's layout (reconstruction noise)."),
    text: Optional[list[str]] = typer.Option(None, "--text", help="stackgan: a caption; repeat for a grid of several captions, one row (of --n samples) each."),
) -> None:
    """Write a grid of samples from a trained generator."""
    import math

    import torch

    from gankit.api import load
    from gankit.viz import render_samples, save_image

    if n < 1:
        raise GankitError("--n must be >= 1")
    if truncation is not None and not math.isfinite(truncation):
        raise GankitError(f"--truncation must be a finite number, got {truncation}")
    model = load(run, ema=not no_ema)
    if truncation is not None and model.family_cls.truncation_space == "z" and not truncation > 0:
        raise GankitError(f"--truncation must be > 0 for {model.family} (z from a normal truncated to [-t, t]), "
                          f"got {truncation}")
    cond = class_
    if class_grid:
        if not model.num_classes:
            raise GankitError(f"family {model.family!r} is not conditional; drop --class-grid")
        per_row = max(1, n // model.num_classes)
        cond = torch.arange(model.num_classes).repeat_interleave(per_row)
        n, nrow = len(cond), per_row
    if text:
        if not model.family_cls.takes_text:
            raise GankitError(f"--text applies to text-to-image families (stackgan); {run} is a {model.family} model")
        cond = [caption for caption in text for _ in range(n)]
        n, nrow = len(cond), n
    from gankit.cli_singan import singan_samples

    images = singan_samples(model, n, seed=seed, size=size, scale_h=scale_h, scale_w=scale_w, start_scale=start_scale)
    if images is None:
        images = model.sample(n, seed=seed, cond=cond, truncation=truncation, truncation_cutoff=truncation_cutoff,
                              noise=noise)
    extra = {}
    if images.dim() == 2 and model.config.data in ("ring8", "grid25"):  # 2-D points: show the true modes
        from gankit.data import mixture_centers

        extra["centers"] = mixture_centers(model.config.data)
    save_image(render_samples(images, nrow=nrow, **extra), out)
    when = f"at step {model.step}" if model.step is not None else "imported"
    _echo(f"wrote {out} ({n} samples from {model.family}, {when})")


@app.command("interpolate")
def interpolate_cmd(
    run: Path = typer.Argument(..., help="Run directory or exported model directory."),
    out: Path = typer.Option(Path("walk.gif"), "--out", help="Output .gif or .mp4."),
    frames: int = typer.Option(60, "--frames", help="Frames in the whole loop."),
    method: str = typer.Option("slerp", "--method", help="slerp | lerp."),
    seed: int = typer.Option(0, "--seed"),
    n: int = typer.Option(16, "--n", help="Number of walks shown side by side."),
    keyframes: int = typer.Option(4, "--keyframes", help="Latent points each walk passes through."),
    fps: int = typer.Option(15, "--fps"),
    class_: Optional[int] = typer.Option(None, "--class", help="Class index (conditional families)."),
) -> None:
    """A latent walk as a looping GIF or MP4 (DCGAN paper §6.1, 'walking in the latent space')."""
    from gankit.api import load
    from gankit.explore.latent import latent_walk
    from gankit.viz import render_samples, save_animation

    if frames < 2 or n < 1 or keyframes < 2:
        raise GankitError("need --frames >= 2, --n >= 1 and --keyframes >= 2")
    if frames < keyframes:  # the walk passed through keyframe 0 only
        raise GankitError(f"--frames ({frames}) must be at least --keyframes ({keyframes}): a frame per keyframe")
    if out.suffix.lower() not in (".gif", ".mp4"):
        raise GankitError(f"--out must end in .gif or .mp4, got {out.name}")
    model = load(run)
    keys = model.latents(keyframes * n, seed=seed).view(keyframes, n, -1)
    path = latent_walk(keys, frames, method=method, loop=True)
    # Each walker keeps one class for the whole walk: the class given, or one drawn from the seed.
    cond = class_ if class_ is not None else model.labels(n, seed=seed)
    pictures = [render_samples(model.generate(z, cond=cond, seed=seed)) for z in path]
    save_animation(pictures, out, fps=fps, loop=True)
    _echo(f"wrote {out} ({frames} frames, {n} walks, {method})")


@app.command("info")
def info_cmd(
    run: Path = typer.Argument(..., help="Run directory, or an exported / imported model."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object."),
) -> None:
    """Family, config, steps trained, data used and latest metrics of a run."""
    from gankit.api import info

    doc = info(run)
    if as_json:
        _echo(json.dumps(doc, sort_keys=True))
        return
    data = doc["data"]
    _echo(f"run        {doc['run']}")
    _echo(f"family     {doc['family']}  (preset {doc['config'].get('preset')})")
    subset = f" where {doc['config']['where']}" if doc["config"].get("where") else ""
    if doc.get("kind") == "export":  # an exported or imported model: no checkpoints, no data record
        source = doc.get("imported_from") or {}
        _echo("steps      " + (f"{doc['step']} (exported)" if doc["step"] is not None else
                                f"imported from {source.get('source')} ({source.get('format')})"))
        _echo(f"data       {data['source']}{subset}")
    else:
        _echo(f"steps      {doc['step']} of {doc['steps_planned']}")
        _echo(f"data       {data['source']}{subset}: {data['count']} samples {'x'.join(map(str, data['shape']))}"
              + (f", {len(data['classes'])} classes" if data.get("classes") else "")
              + (f", {data['skipped']} files skipped" if data.get("skipped") else ""))
        _echo(f"checkpoint {', '.join(doc['checkpoints'])}")
    for key, text in doc.get("details", {}).items():
        _echo(f"{key:<10} {text}")
    metrics = {k: v for k, v in doc["latest_metrics"].items() if k != "step"}
    if metrics:
        _echo("latest     " + "  ".join(f"{k}={v:.4g}" for k, v in metrics.items()))
    keys = ("resolution", "batch_size", "seed", "ema", "nz", "lr_g", "lr_d", "loss")
    _echo("config     " + "  ".join(f"{k}={doc['config'][k]}" for k in keys if k in doc["config"]))


@app.command("export")
def export_cmd(
    run: Path = typer.Argument(..., help="Run directory."),
    out: Path = typer.Option(..., "--out", help="Directory for config.json + model.safetensors."),
    no_ema: bool = typer.Option(False, "--no-ema", help="Export the raw generator instead of its moving average."),
    format_: str = typer.Option("gankit", "--format", help="gankit (a directory: config.json + model.safetensors) | rosinality (a stylegan2-pytorch .pt file: g_ema, latent_avg, d; stylegan2 only)."),
) -> None:
    """Export the generator as config.json + model.safetensors, or as a rosinality .pt."""
    from gankit.api import export

    path = export(run, out, format=format_, ema=not no_ema)
    _echo(f"wrote {path} ({format_} format)")


def _register_commands() -> None:
    """Commands that live in their own modules (kept small; each imports its heavy parts lazily)."""
    from gankit.cli_arithmetic import ArithmeticCommand, arithmetic_cmd
    from gankit.cli_bench import bench_app
    from gankit.cli_blend import blend_cmd
    from gankit.cli_dissect import dissect_cmd
    from gankit.cli_edit import directions_cmd, edit_cmd
    from gankit.cli_explore import neighbors_cmd, report_cmd
    from gankit.cli_import import import_cmd
    from gankit.cli_metrics import evaluate_cmd
    from gankit.cli_prepare import prepare_app
    from gankit.cli_project import project_cmd
    from gankit.cli_serve import serve_cmd
    from gankit.cli_singan import animate_cmd, harmonize_cmd, paint_cmd
    from gankit.cli_upscale import upscale_cmd
    from gankit.cli_styles import mix_cmd, truncation_cmd
    from gankit.cli_translate import translate_cmd

    app.command("evaluate")(evaluate_cmd)
    app.command("import")(import_cmd)
    app.add_typer(bench_app, name="bench")
    app.command("neighbors")(neighbors_cmd)
    app.command("translate")(translate_cmd)
    app.command("report")(report_cmd)
    app.command("mix")(mix_cmd)
    app.command("truncation")(truncation_cmd)
    app.command("project")(project_cmd)
    app.command("directions")(directions_cmd)
    app.command("edit")(edit_cmd)
    app.command("arithmetic", cls=ArithmeticCommand)(arithmetic_cmd)
    app.command("dissect")(dissect_cmd)
    app.command("blend")(blend_cmd)
    app.add_typer(prepare_app, name="prepare")
    app.command("harmonize")(harmonize_cmd)
    app.command("paint")(paint_cmd)
    app.command("upscale")(upscale_cmd)
    app.command("animate")(animate_cmd)
    app.command("serve")(serve_cmd)


_register_commands()


def _peer_gone(exc: RuntimeError) -> bool:
    """A collective that failed because another rank left (gloo / NCCL wording)."""
    text = str(exc)
    return any(key in text for key in ("Connection closed by peer", "Connection reset by peer", "NCCL communicator",
                                       "ProcessGroup", "Broken pipe"))


def main(argv: list[str] | None = None) -> None:
    """Console entry point. Typer itself answers bad usage with exit code 2; a
    :class:`GankitError` from the API, or an ``OSError`` (disk full, permission denied), becomes one
    line on stderr and exit code 2 as well (3 for a run that diverged)."""
    try:
        app(args=argv)
    except GankitError as exc:
        rank = os.environ.get("RANK", "0") if int(os.environ.get("WORLD_SIZE", "1")) > 1 else "0"
        typer.echo(f"error: {exc}" if rank == "0" else f"error: [rank {rank}] {exc}", err=True)  # torchrun: whose
        sys.exit(getattr(exc, "exit_code", 2))  # 3: a diverged run (DivergedError)
    except (RuntimeError, MemoryError) as exc:
        if int(os.environ.get("WORLD_SIZE", "1")) > 1 and _peer_gone(exc):  # torchrun: another rank failed first
            typer.echo(f"error: [rank {os.environ.get('RANK', '?')}] another process of this torchrun job stopped; "
                       f"its error is above", err=True)
            sys.exit(2)
        if isinstance(exc, MemoryError) or "can't allocate memory" in str(exc) or "out of memory" in str(exc):
            first = (str(exc).strip().splitlines() or ["MemoryError"])[0][:200]
            typer.echo(f"error: out of memory ({first}): ask for less (a smaller --scale, --size, --n, batch or "
                       f"resolution)", err=True)
            sys.exit(2)
        raise
    except OSError as exc:  # a full disk, a read-only folder: every write is atomic, so the old file is intact
        where = f": {exc.filename}" if exc.filename else ""
        typer.echo(f"error: {exc.strerror or exc}{where} (nothing written there; earlier files are intact)", err=True)
        sys.exit(2)


if __name__ == "__main__":
    main()
