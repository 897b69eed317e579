"""``gankit neighbors`` and ``gankit report``: the command functions (registered in :mod:`gankit.cli`).

Both are thin: parse, call :func:`gankit.metrics.memorisation.nearest_neighbours` /
:func:`gankit.viz.report.write_report`, print where the files are. User mistakes raise
:class:`GankitError` (one line, exit code 2 through ``gankit.cli.main``).
"""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer

from gankit.cli_styles import png_out
from gankit.errors import GankitError


MAX_GRID_ROWS, MAX_NEIGHBOURS = 256, 32


def neighbors_cmd(
    run: Path = typer.Argument(..., help="Run directory or exported model directory."),
    data: Optional[str] = typer.Option(None, "--data", help="The training images (folder, .zip or built-in); default: the run's own data, filtered by its --where."),
    where: Optional[List[str]] = typer.Option(None, "--where", help='Only the images whose labels match, e.g. "race=East Asian" (default: the run\'s filter when --data is not given; --where "" for all).'),
    n: int = typer.Option(16, "--n", help="Generated samples shown, one grid row each."),
    k: int = typer.Option(5, "--k", help="Nearest training images per sample."),
    features: str = typer.Option("auto", "--features", help="pixel | mnist | inception | faces | auto: feature space for the second grid."),
    seed: int = typer.Option(0, "--seed", help="Seeds the samples and the held-out split."),
    out: Optional[Path] = typer.Option(None, "--out", help="Output PNG (default RUN/nn.png); NAME_hist.png and NAME.json (its name, e.g. nn_hist.png, nn.json) go beside it."),
    n_compare: int = typer.Option(1000, "--n-compare", help="Generated samples in the distance comparison."),
    max_train: Optional[int] = typer.Option(None, "--max-train", help="Use at most this many training images as the reference set."),
    inception_weights: Optional[Path] = typer.Option(None, "--inception-weights", help="Local FID Inception weights file."),
    no_ema: bool = typer.Option(False, "--no-ema", help="Use the raw generator instead of its moving average."),
) -> None:
    """Nearest training images of generated samples, and a memorisation verdict (DCGAN paper §6.1)."""
    from gankit.api import load
    from gankit.metrics.memorisation import nearest_neighbours, write_outputs

    if n < 1 or k < 1 or n_compare < 1:
        raise GankitError("need --n >= 1, --k >= 1 and --n-compare >= 1")
    if n > MAX_GRID_ROWS or k > MAX_NEIGHBOURS:  # the grid is n rows of k + 1 pictures
        raise GankitError(f"the grid shows at most --n {MAX_GRID_ROWS} samples with --k {MAX_NEIGHBOURS} neighbours "
                          f"each (got --n {n}, --k {k}); --n-compare sets how many samples are measured")
    if max_train is not None and max_train < 1:
        raise GankitError("--max-train must be >= 1")
    out = out if out is not None else run / "nn.png"
    png_out(out)
    model = load(run, ema=not no_ema)
    result = nearest_neighbours(model, data, n=n, k=k, features=features, seed=seed, n_compare=n_compare,
                                max_train=max_train, inception_weights=inception_weights,
                                where=None if where is None else ",".join(where))
    paths = write_outputs(result, out)
    for note in result["notes"]:
        typer.echo(f"note: {note}")
    spaces = "pixel and feature" if result["feature"] is not None else "pixel"
    typer.echo(f"wrote {paths['grid']} ({result['n']} samples x {result['k']} neighbours, {spaces} distance), "
               f"{paths['hist']} and {paths['json']}")
    typer.echo(result["verdict"])


def report_cmd(
    run: Path = typer.Argument(..., help="Run directory."),
    out: Optional[Path] = typer.Option(None, "--out", help="Output HTML file (default RUN/report.html)."),
) -> None:
    """One self-contained HTML page about a run: config, curves, samples, evaluation, memorisation check."""
    from gankit.viz.report import write_report

    if out is not None and out.suffix.lower() not in (".html", ".htm"):
        raise GankitError(f"--out must end in .html, got {out.name}")
    path = write_report(run, out)
    size = path.stat().st_size
    typer.echo(f"wrote {path} ({size / 1024:.0f} KiB, self-contained: open it in any browser, offline)")
