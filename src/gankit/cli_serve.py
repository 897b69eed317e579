"""``gankit serve``: the browser studio on trained runs and imported models (registered in
:mod:`gankit.cli`). Thin: check the paths, then :func:`gankit.studio.app.serve`."""

from __future__ import annotations

from pathlib import Path

import typer

from gankit.errors import GankitError


def serve_cmd(
    runs: list[Path] = typer.Argument(..., help="Run directories or exported/imported model directories."),
    host: str = typer.Option("127.0.0.1", "--host", help="Address to listen on; anything but 127.0.0.1 exposes the studio to the network (a warning says so)."),
    port: int = typer.Option(7860, "--port", help="Port to listen on."),
    queue_size: int = typer.Option(32, "--queue-size", help="Requests that may wait per model; more are refused with a 'busy' message."),
    device: str = typer.Option("auto", "--device", help="auto (CUDA when present) | cpu | cuda."),
) -> None:
    """Open the studio in the browser: samples, latent walks, style mixing, edits, translation and
    upscaling with sliders and uploads, and each run's page (needs the web extra: pip install 'gankit\\[web]')."""
    import torch

    from gankit.studio.app import serve

    for run in runs:
        if not run.is_dir():
            raise GankitError(f"no such run or model directory: {run}")
    if not 1 <= port <= 65535:
        raise GankitError(f"--port must be 1..65535, got {port}")
    if queue_size < 1:
        raise GankitError(f"--queue-size must be >= 1, got {queue_size}")
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    typer.echo(f"gankit studio: loading {len(runs)} model(s); open http://{host}:{port}/ (Ctrl+C stops it)")
    serve(runs, host=host, port=port, queue_size=queue_size, device=device,
          warn=lambda line: typer.echo(line, err=True))
