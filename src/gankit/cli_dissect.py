"""``gankit dissect``: make a generator forget to draw a region (DCGAN paper §6.2, Fig. 6), registered
in :mod:`gankit.cli`. Thin: parse, call :func:`gankit.explore.dissect.dissect`, write the grid and
a JSON of the numbers beside it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer

from gankit.cli_styles import png_out
from gankit.errors import GankitError
from gankit.files import write_text_atomic


def dissect_cmd(
    run: Path = typer.Argument(..., help="Run directory or exported model directory (a noise-to-image family)."),
    layer: Optional[str] = typer.Option(None, "--layer", help="Generator layer: an index (-1 = the last before the image) or a module name; --list-layers shows them."),
    region: Optional[str] = typer.Option(None, "--region", help="x0,y0,x1,y1 in pixels of the image (x1, y1 exclusive), or as fractions with decimals (0.3,0.6,0.7,0.8)."),
    top: int = typer.Option(3, "--top", help="Feature maps to zero: those that best predict the region."),
    n: int = typer.Option(256, "--n", help="Samples whose activations are fitted and whose change is measured."),
    show: int = typer.Option(8, "--show", help="Samples shown in the grid (before, after, change)."),
    method: str = typer.Option("logistic", "--method", help="logistic (the paper's regression) | contrast (mean inside minus outside)."),
    controls: int = typer.Option(3, "--controls", help="Draws of as many random maps, the control (0 = none)."),
    seed: int = typer.Option(0, "--seed", help="Seed of the samples (and of the random maps)."),
    cls: Optional[int] = typer.Option(None, "--class", help="Conditional families: the class of every sample."),
    out: Path = typer.Option(Path("dissect.png"), "--out", help="Output PNG grid; a .json of the numbers goes beside it."),
    list_layers: bool = typer.Option(False, "--list-layers", help="Print the generator's layers and exit."),
    no_ema: bool = typer.Option(False, "--no-ema", help="Use the raw generator instead of its moving average."),
) -> None:
    """Zero the feature maps of --layer that fire in --region and show the samples before and after,
    with how much the region changed against the rest of the image (and against random maps)."""
    from gankit.api import load
    from gankit.explore.dissect import dissect, feature_layers, find_layer
    from gankit.viz import render_samples, save_image

    png_out(out)
    if show < 1 or controls < 0:
        raise GankitError("need --show >= 1 and --controls >= 0")
    model = load(run, ema=not no_ema)
    if list_layers:
        for item in feature_layers(model):
            typer.echo(str(item))
        return
    if layer is None:
        raise GankitError("choose a --layer: " + "; ".join(map(str, feature_layers(model))))
    if region is None:
        raise GankitError(f"give a --region x0,y0,x1,y1 within the {model.config.resolution}x"
                          f"{model.config.resolution} image")
    chosen = find_layer(model, layer)
    result = dissect(model, chosen, region, top=top, n=n, seed=seed, method=method, controls=controls, cond=cls)
    images, nrow = result.figure(show)
    save_image(render_samples(images, nrow=nrow), out)
    doc = {"run": str(run), "family": model.family, "seed": seed, "class": cls, **result.summary()}
    json_path = out.with_suffix(".json")
    write_text_atomic(json_path, json.dumps(doc, indent=2) + "\n")
    c = result.change
    typer.echo(f"layer {chosen}: zeroed maps {', '.join(map(str, result.maps))} ({method})")
    typer.echo(f"mean |change| over {n} samples, 8-bit levels: region {c['inside']:.2f}, rest {c['outside']:.2f}, "
               f"ratio {c['ratio']:.2f}")
    if result.control:
        r = result.control
        typer.echo(f"control, {len(result.maps)} random maps ({controls} draws): region {r['inside']:.2f}, "
                   f"rest {r['outside']:.2f}, ratio {r['ratio']:.2f}")
    typer.echo(f"wrote {out} and {json_path.name}")
