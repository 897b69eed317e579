"""``gankit mix`` and ``gankit truncation``: the style tools of style-based generators (registered
in :mod:`gankit.cli`). Thin: parse, call :mod:`gankit.explore.styles`, write the picture."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from gankit.errors import GankitError


def png_out(out: Path) -> Path:
    """``--out`` must name a PNG (the one check every picture-writing command shares)."""
    if out.suffix.lower() != ".png":
        raise GankitError(f"--out must end in .png, got {out.name}")
    return out


def _psi(value: float, option: str = "--truncation") -> float:
    import math

    if not math.isfinite(value):
        raise GankitError(f"{option} must be a finite number, got {value}")
    return value


def mix_cmd(
    run: Path = typer.Argument(..., help="Run directory or exported model directory (stylegan2)."),
    rows: str = typer.Option("0-4", "--rows", help="Seeds of the row sources, e.g. 1,2,5-8."),
    cols: str = typer.Option("5-9", "--cols", help="Seeds of the column sources."),
    layers: str = typer.Option("coarse", "--layers", help="Layers that take the column's w: coarse (4-8 px) | middle (16-32) | fine (64+) | A-B."),
    out: Path = typer.Option(Path("mix.png"), "--out", help="Output PNG grid."),
    truncation: float = typer.Option(1.0, "--truncation", help="psi in W for every source (1 = off)."),
    noise: str = typer.Option("const", "--noise", help="const | random | none."),
    no_ema: bool = typer.Option(False, "--no-ema", help="Use the raw generator instead of its moving average."),
) -> None:
    """The style-mixing grid (StyleGAN Fig. 3): each cell is its row's w with its column's w on --layers."""
    from gankit.api import load
    from gankit.explore.styles import parse_seeds, style_layers, style_mix
    from gankit.viz import render_samples, save_image

    png_out(out)
    row_seeds, col_seeds = parse_seeds(rows), parse_seeds(cols)
    model = load(run, ema=not no_ema)
    chosen = style_layers(layers, model.num_ws, model.config.resolution)
    images, nrow = style_mix(model, row_seeds, col_seeds, chosen, truncation=_psi(truncation), noise=noise)
    save_image(render_samples(images, nrow=nrow), out)
    typer.echo(f"wrote {out} ({len(row_seeds)} x {len(col_seeds)} mixes on layers "
               f"{chosen[0]}-{chosen[-1]} of 0-{model.num_ws - 1})")


def truncation_cmd(
    run: Path = typer.Argument(..., help="Run directory or exported model directory (stylegan2)."),
    seeds: str = typer.Option("0-5", "--seeds", help="One row per seed, e.g. 0-5."),
    psi_from: float = typer.Option(1.0, "--from", help="First psi."),
    psi_to: float = typer.Option(0.0, "--to", help="Last psi (0 = the mean w)."),
    columns: int = typer.Option(6, "--columns", help="Number of psi values."),
    cutoff: Optional[int] = typer.Option(None, "--truncation-cutoff", help="Truncate only the first N style layers."),
    out: Path = typer.Option(Path("truncation.png"), "--out", help="Output PNG grid."),
    no_ema: bool = typer.Option(False, "--no-ema"),
) -> None:
    """A truncation strip: each row one seed, psi from --from to --to across the columns."""
    from gankit.api import load
    from gankit.explore.styles import parse_seeds, truncation_strip
    from gankit.viz import render_samples, save_image

    png_out(out)
    if columns < 2:
        raise GankitError("--columns must be >= 2")
    a, b = _psi(psi_from, "--from"), _psi(psi_to, "--to")
    psis = [a + (b - a) * i / (columns - 1) for i in range(columns)]
    model = load(run, ema=not no_ema)
    images, nrow = truncation_strip(model, parse_seeds(seeds), psis, cutoff=cutoff)
    save_image(render_samples(images, nrow=nrow), out)
    typer.echo(f"wrote {out} (psi {a:g} -> {b:g} in {columns} steps)")
