"""``gankit bench``: benchmarks that train (or take) a run and score it.

``gankit bench modes [FAMILY] --dataset ring8|grid25|stacked-mnist`` measures mode collapse with the
VEEGAN / PacGAN protocol, training the dataset's recipe for its budget by default (see
:mod:`gankit.metrics.modes` and docs/benchmarks.md). Mounted on the main app as
``app.add_typer(bench_app, name="bench")``; ``python -m gankit.cli_bench`` runs it alone.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer

from gankit.config import parse_overrides
from gankit.errors import GankitError
from gankit.registry import get_family

bench_app = typer.Typer(
    help="Benchmarks: train (or take) a run and score it against published protocols.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


@bench_app.callback()
def _bench() -> None:
    """Benchmarks: train (or take) a run and score it against published protocols."""


@bench_app.command("modes")
def modes_cmd(
    family: Optional[str] = typer.Argument(None, help="Family to train (default the dataset's protocol: gan on "
                                                      "ring8/grid25, dcgan on stacked-mnist)."),
    dataset: Optional[str] = typer.Option(None, "--dataset", help="ring8 | grid25 | stacked-mnist (with --run: "
                                                                  "default the run's own data)."),
    steps: Optional[int] = typer.Option(None, "--steps", help="Training steps (default the dataset's protocol, "
                                                              "see docs/benchmarks.md; fewer need --short)."),
    short: bool = typer.Option(False, "--short", help="Allow fewer steps than the protocol's (a quick look; the "
                                                      "numbers do not compare with the papers')."),
    seed: int = typer.Option(0, "--seed", help="Training seed; also seeds the scored samples."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object."),
    run: Optional[Path] = typer.Option(None, "--run", help="Score this existing run instead of training."),
    out: Path = typer.Option(Path("runs/bench-modes"), "--out", help="Where new runs go "
                                                                         "(<out>/<family>-<dataset>-s<seed>)."),
    n: Optional[int] = typer.Option(None, "--n", help="Samples scored (default 2,500 for ring8/grid25, "
                                                      "26,000 for stacked-mnist, as in VEEGAN)."),
    sets: list[str] = typer.Option([], "--set", help="Training option key=value (repeatable), e.g. pack=2."),
) -> None:
    """Mode coverage of FAMILY on a multi-modal dataset: modes captured, high-quality samples, KL."""
    from gankit.metrics.modes import DATASETS, PROTOCOLS, check_dataset, run_mode_benchmark

    if dataset is None:
        if run is None:
            raise GankitError(f"bench modes needs --dataset ({', '.join(DATASETS)}) or --run RUN")
        dataset = _run_dataset(run)
    dataset = check_dataset(dataset)
    if steps is not None and steps < 1:
        raise GankitError("--steps must be >= 1")
    if n is not None and n < 1:  # checked after training, it cost the whole run
        raise GankitError(f"--n must be >= 1 (samples scored), got {n}")
    if steps is not None and run is not None:
        raise GankitError("--steps trains a new run; drop it with --run")
    log = None if as_json else (lambda line: typer.echo(line, err=True))
    overrides = None
    if sets:
        if run is not None:
            raise GankitError("--set configures a new training run; drop it with --run")
        overrides = parse_overrides(get_family(family or PROTOCOLS[dataset].family).Config, sets)
    stats = run_mode_benchmark(family, dataset, steps=steps, seed=seed, out_dir=out, run=run, n=n,
                               overrides=overrides, short=short, on_log=log, quiet=as_json)
    if as_json:
        typer.echo(json.dumps(stats, sort_keys=True))
        return
    typer.echo(f"{stats['family']} on {dataset}, step {stats['steps']} ({stats['run']})")
    typer.echo(f"  modes         {stats['modes']} / {stats['max_modes']}  ({stats['n']:,} samples)")
    if "high_quality" in stats:
        typer.echo(f"  high quality  {100 * stats['high_quality']:.1f}%")
        typer.echo(f"  reverse KL    {_fmt(stats['reverse_kl'])}")
        typer.echo(f"  plot          {stats['plot']}")
    else:
        typer.echo(f"  KL            {_fmt(stats['kl'])}")
    typer.echo(f"  json          {Path(stats['run']) / 'modes.json'}")
    if stats["short"]:
        typer.echo(f"  note: {stats['steps']:,} steps, short of the protocol's {stats['protocol_steps']:,}: "
                   f"not comparable with the papers' rows")


def _fmt(x: float | None) -> str:
    return "n/a (no high-quality samples)" if x is None else f"{x:.3f}"


def _run_dataset(run: Path) -> str:
    from gankit.api import info

    data = str(info(run)["config"].get("data", ""))
    return data
