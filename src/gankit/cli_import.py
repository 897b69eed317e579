"""``gankit import``: a pretrained StyleGAN2 checkpoint (rosinality ``.pt``, NVlabs ``.pkl``) as a
gankit export directory. Thin: parse, call :func:`gankit.interop.stylegan2_io.import_stylegan2`, print."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Optional

import typer


def import_cmd(
    src: Path = typer.Argument(..., help="rosinality stylegan2-pytorch .pt, NVlabs stylegan2-ada-pytorch / stylegan3 .pkl (StyleGAN2 networks), or NVlabs-named .safetensors."),
    out: Path = typer.Option(..., "--out", help="New directory for config.json + model.safetensors."),
    map_lr_mul: Optional[float] = typer.Option(None, "--map-lr-mul", help="The mapping network's learning-rate multiplier when the file does not record it (default: the file's, else 0.01)."),
) -> None:
    """Import a pretrained StyleGAN2 model without running any code stored in the file."""
    from gankit.api import import_model
    from gankit.errors import GankitError

    if map_lr_mul is not None and not (map_lr_mul > 0 and math.isfinite(map_lr_mul)):
        raise GankitError(f"--map-lr-mul must be a finite number > 0, got {map_lr_mul}")
    s = import_model(src, out, map_lr_mul=map_lr_mul)
    d = "with its discriminator" if s["discriminator"] else "generator only"
    typer.echo(f"imported {s['format']} StyleGAN2 {s['resolution']}x{s['resolution']} (z {s['z_dim']}, w {s['w_dim']}, "
               f"{s['map_layers']} mapping layers), {d}, into {out}/")
    for note in s["notes"]:
        typer.echo(f"note: {note}")
    typer.echo(f"next:\n  gankit sample {out} --truncation 0.7 --out {out}/samples.png\n"
               f"  gankit train stylegan2 --init {out} --data MY_IMAGES --out RUN   # fine-tune")
