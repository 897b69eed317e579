"""``gankit arithmetic``: vector arithmetic on averaged latents (DCGAN paper §6.3, Fig. 7), registered
in :mod:`gankit.cli`. Thin: parse the terms in the order given, call
:mod:`gankit.explore.arithmetic`, write the grid and a JSON of what was used beside it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import List, Optional

import typer
from typer.core import TyperCommand

from gankit.cli_styles import png_out
from gankit.errors import GankitError
from gankit.files import write_text_atomic

RAW_ARGS = "gankit.raw_args"


class ArithmeticCommand(TyperCommand):
    """Keeps the raw arguments: typer collects ``--plus`` and ``--minus`` into two lists, and the
    figure should show the terms in the order the user wrote them."""

    def parse_args(self, ctx, args):
        ctx.meta[RAW_ARGS] = list(args)
        return super().parse_args(ctx, args)


def term_signs(raw: list[str] | None, n_plus: int, n_minus: int) -> list[int]:
    """+1 / -1 for each ``--plus`` / ``--minus`` in the order they appear in ``raw``."""
    signs: list[int] = []
    tokens = iter(raw or [])
    for tok in tokens:
        if tok == "--":
            break
        name, eq, _ = tok.partition("=")
        if name in ("--plus", "--minus"):
            signs.append(1 if name == "--plus" else -1)
            if not eq:
                next(tokens, None)  # its value
    if signs.count(1) != n_plus or signs.count(-1) != n_minus:  # not what typer parsed: pluses first
        signs = [1] * n_plus + [-1] * n_minus
    return signs


def arithmetic_cmd(
    ctx: typer.Context,
    run: Path = typer.Argument(..., help="Run directory or exported model directory (a noise-to-image family)."),
    plus: Optional[List[str]] = typer.Option(None, "--plus", help='A term to add: exemplar seeds ("3,17,42", "5-7"), or face attributes the predictor picks seeds for ("gender=Male,age=50-59|60-69"). Repeatable.'),
    minus: Optional[List[str]] = typer.Option(None, "--minus", help="A term to subtract (seeds or attributes, as --plus). Repeatable."),
    out: Path = typer.Option(Path("arithmetic.png"), "--out", help="Output PNG grid; a .json of the seeds used goes beside it."),
    variations: int = typer.Option(4, "--variations", help="Results with small random perturbations shown beside the result."),
    noise: float = typer.Option(0.25, "--noise", help="Scale of the uniform perturbations (the paper's 0.25), in units of the latent's spread."),
    seed: int = typer.Option(0, "--seed", help="Seed of the perturbations."),
    exemplars: int = typer.Option(3, "--exemplars", help="Seeds the face predictor picks per attribute term."),
    pool: int = typer.Option(2000, "--pool", help="Attribute terms: seeds 0..N-1 sampled and classified."),
    cls: Optional[int] = typer.Option(None, "--class", help="Conditional families: the class, held fixed."),
    no_ema: bool = typer.Option(False, "--no-ema", help="Use the raw generator instead of its moving average."),
) -> None:
    """Latent vector arithmetic (DCGAN Fig. 7): average each term's exemplar latents (in W for
    StyleGAN2), add and subtract them in the order given, and show the result with perturbations.
    Example: --plus "gender=Male,age=50-59|60-69" --minus "gender=Male,age=20-29" --plus "gender=Female,age=20-29"."""
    from gankit.api import load
    from gankit.explore.arithmetic import choose_exemplars, is_condition, latent_arithmetic
    from gankit.explore.styles import parse_seeds
    from gankit.viz import render_samples, save_image

    png_out(out)
    plus, minus = list(plus or []), list(minus or [])
    if not plus and not minus:
        raise GankitError("give at least one term: --plus SEEDS (and --minus SEEDS ...), e.g. --plus 3,17,42")
    pluses, minuses = iter(plus), iter(minus)
    texts = [(s, next(pluses if s > 0 else minuses)) for s in term_signs(ctx.meta.get(RAW_ARGS), len(plus), len(minus))]
    seeds = {i: parse_seeds(t) for i, (_, t) in enumerate(texts) if not is_condition(t)}
    model = load(run, ema=not no_ema)
    asked = [i for i, (_, t) in enumerate(texts) if i not in seeds]  # attribute terms
    chosen = dict(zip(asked, choose_exemplars(model, [texts[i][1] for i in asked], k=exemplars, pool=pool,
                                              cond=cls) if asked else []))
    seeds.update({i: c["seeds"] for i, c in chosen.items()})
    terms = [(s, seeds[i]) for i, (s, _) in enumerate(texts)]
    result = latent_arithmetic(model, terms, variations=variations, noise=noise, seed=seed, cond=cls)
    images, nrow = result.figure()
    save_image(render_samples(images, nrow=nrow), out)

    doc = {"run": str(run), "family": model.family, "space": result.space, "noise": noise, "variations": variations,
           "seed": seed, "class": cls, "terms": []}
    for i, (sign, term_seeds) in enumerate(terms):
        entry = {"sign": "+" if sign > 0 else "-", "seeds": term_seeds}
        how = ""
        if i in chosen:
            entry.update({k: chosen[i][k] for k in ("where", "confidence", "matches", "pool")})
            how = f" (predicted {entry['where']}: {entry['matches']:,} of {pool:,} samples match)"
        doc["terms"].append(entry)
        typer.echo(f"{entry['sign']} seeds {', '.join(map(str, term_seeds))}{how}")
    if chosen:
        doc["result_predicted"] = _predicted(result.result_images)
    json_path = out.with_suffix(".json")
    write_text_atomic(json_path, json.dumps(doc, indent=2) + "\n")
    typer.echo(f"wrote {out} and {json_path.name} ({len(terms)} terms averaged in {result.space}, "
               f"{variations} perturbed results)")


def _predicted(images) -> list[dict[str, str]]:
    """The face predictor's most likely age, gender and race of each result image."""
    from gankit.metrics.face_classifier import HEADS, predict_attributes

    probs = predict_attributes(images)
    return [{head: values[int(probs[head][i].argmax())] for head, values in HEADS.items()} for i in range(len(images))]
