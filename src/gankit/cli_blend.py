"""``gankit blend``: toonify by resolution-dependent blending of a model and a fine-tuned copy
(Pinkney & Adler 2020), registered in :mod:`gankit.cli`. Thin: parse, call
:mod:`gankit.explore.blend`, write the blended model and a preview."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from gankit.errors import GankitError


def blend_cmd(
    base: Path = typer.Argument(..., help="The base model (run or export directory), e.g. faces."),
    tuned: Path = typer.Argument(..., help="Its fine-tuned copy (gankit train stylegan2 --init BASE --data OTHER)."),
    swap: int = typer.Option(..., "--swap", help="Blocks up to this resolution come from the --low model, above it from the other (e.g. 16)."),
    width: float = typer.Option(0.0, "--width", help="0 = hard swap; > 0 = a smooth blend over this many octaves of resolution."),
    low: str = typer.Option("tuned", "--low", help="tuned (Toonify: the second domain's structure, the base's rendering) | base (the reverse)."),
    out: Path = typer.Option(..., "--out", help="New directory: the blended model (config.json + model.safetensors) and preview.png."),
    seeds: str = typer.Option("0-7", "--seeds", help="Seeds shown in the preview (rows: base, tuned, blend)."),
    latent: Optional[Path] = typer.Option(None, "--latent", help="A projected photo's latent (gankit project ... latent.safetensors): shown first in the preview, the toonified portrait."),
    truncation: float = typer.Option(0.7, "--truncation", help="psi of the preview's seeds."),
) -> None:
    """Toonify: blend a model with its fine-tuned copy by resolution and preview base / tuned / blend."""
    import torch

    from gankit.api import load
    from gankit.explore.blend import blend_models, blend_rows
    from gankit.explore.edit import read_latent
    from gankit.explore.styles import parse_seeds, seed_latents
    from gankit.viz import render_samples, save_image

    if out.exists() and any(out.iterdir()):
        raise GankitError(f"{out} exists and is not empty; pick a new --out")
    base_model, tuned_model = load(base), load(tuned)
    blended = blend_models(base_model, tuned_model, swap, width=width, low=low)
    ws = base_model.mapping(seed_latents(base_model, parse_seeds(seeds)), truncation=truncation)
    if latent is not None:
        w = read_latent(latent, base_model.num_ws, ws.shape[-1]).to(ws.device)
        ws = torch.cat([w[:, None].expand(-1, ws.shape[1], -1) if w.dim() == 2 else w, ws])
    blended.save_pretrained(out)
    images = blend_rows([base_model, tuned_model, blended], ws)
    save_image(render_samples(images, nrow=ws.shape[0]), out / "preview.png")
    how = "hard swap" if width == 0 else f"smooth blend over {width:g} octaves"
    typer.echo(f"wrote {out}/ (blocks up to {swap}x{swap} from the {low} model, {how}) and {out}/preview.png "
               f"(rows: base, tuned, blend)")
