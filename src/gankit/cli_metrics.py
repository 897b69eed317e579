"""``gankit evaluate``: the typer command (registered in :mod:`gankit.cli`)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import List, Optional

import typer

from gankit.errors import GankitError
from gankit.files import write_text_atomic

EVAL_FILE = "eval.json"


def evaluate_cmd(
    run: Path = typer.Argument(..., help="Run directory or exported model directory."),
    data: Optional[str] = typer.Option(None, "--data", help="Real data to compare with (default: the run's data and its --where filter)."),
    where: Optional[List[str]] = typer.Option(None, "--where", help='Compare with the images whose labels match, e.g. "race=East Asian" (default: the run\'s filter when --data is not given; --where "" for all).'),
    metrics: str = typer.Option("fid,kid,pr,swd", "--metrics", help="Comma list of fid, kid, is, pr, swd."),
    features: str = typer.Option("auto", "--features", help="auto | inception | mnist | faces (features for fid/kid/is/pr; auto: inception if its weights are here, else faces for fairface / prepared faces, mnist for small grey images)."),
    n: int = typer.Option(10_000, "--n", help="Generated samples (and at most this many real images)."),
    seed: int = typer.Option(0, "--seed", help="Seed of the samples and the real subset."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object."),
    inception_weights: Optional[Path] = typer.Option(None, "--inception-weights",
                                                     help="Local pt_inception-2015-12-05-6726825d.pth (never downloaded)."),
    batch_size: int = typer.Option(256, "--batch-size", help="Feature-extraction batch size."),
) -> None:
    """FID, KID, IS, precision/recall and multi-scale SWD of RUN's generator; writes RUN/eval.json."""
    from gankit.metrics import evaluate

    if batch_size < 1:
        raise GankitError("--batch-size must be >= 1")
    where_ = None if where is None else ",".join(where)
    result = evaluate(run, data, where=where_, metrics=metrics, features=features, n=n, seed=seed,
                      inception_weights=inception_weights, batch_size=batch_size)
    out = run / EVAL_FILE if run.is_dir() else None
    if out is not None:
        write_text_atomic(out, json.dumps(result, indent=2, sort_keys=True) + "\n")
    if as_json:
        typer.echo(json.dumps(result, sort_keys=True))
        return
    _print_table(result, out)


def _fmt(value: float, digits: int = 4) -> str:
    return f"{value:.{digits}g}" if abs(value) >= 1e-3 or value == 0 else f"{value:.3e}"


def rows(result: dict) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    if "fid" in result:
        out.append(("FID", _fmt(result["fid"])))
    if "kid" in result:
        out.append(("KID", f"{_fmt(result['kid'])} ± {_fmt(result['kid_std'])}"))
    if "is" in result:
        out.append(("IS", f"{_fmt(result['is'])} ± {_fmt(result['is_std'])}"))
    if "precision" in result:
        out.append(("precision", f"{result['precision']:.4f}"))
        out.append(("recall", f"{result['recall']:.4f}"))
    if "swd" in result:
        levels = ", ".join(f"{r}px {v:.2f}" for r, v in zip(result["swd_resolutions"], result["swd_levels"]))
        out.append(("SWD x1e3", f"{result['swd']:.2f}  ({levels})"))
    return out


def _print_table(result: dict, out: Path | None) -> None:
    from rich.console import Console
    from rich.table import Table

    title = (f"step {result.get('step')}  features {result.get('features') or '-'}  "
             f"n {result['n']} (real {result['n_real']})  seed {result['seed']}")
    table = Table(show_header=True)
    table.add_column("metric")
    table.add_column("value")
    for name, value in rows(result):
        table.add_row(name, value)
    console = Console(highlight=False)
    console.print(title)
    console.print(table)
    for w in result.get("warnings", []):
        console.print(f"warning: {w}")
    if out is not None:
        console.print(f"wrote {out}")
