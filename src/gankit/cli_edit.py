"""``gankit directions`` and ``gankit edit``: semantic directions in W and edits along them
(registered in :mod:`gankit.cli`). Thin: parse, call :mod:`gankit.explore.directions` /
:mod:`gankit.explore.edit`, write the files."""

from __future__ import annotations

import math
from pathlib import Path
from typing import List, Optional

import typer

from gankit.cli_styles import png_out
from gankit.errors import GankitError

METHODS = ("interfacegan", "sefa", "ganspace")
PREVIEW_STRENGTHS = [-3.0, -2.0, -1.0, 0.0, 1.0, 2.0, 3.0]


def _style_model(run: Path, no_ema: bool):
    from gankit.api import load

    model = load(run, ema=not no_ema)
    model.num_ws  # noqa: B018 - GankitError (one line) for a family without a mapping network
    return model


def _layers(model, spec: Optional[str]) -> Optional[list[int]]:
    from gankit.explore.styles import style_layers

    if spec is None or spec.strip().lower() == "all":
        return None
    return style_layers(spec, model.num_ws, model.config.resolution)


def _preview(model, vectors, scales, seeds: list[int], layers, out: Path) -> None:
    """One row per direction; per seed a group of columns at strengths -3..3, groups set apart by a blank."""
    import torch

    from gankit.explore.edit import edit_strip
    from gankit.explore.styles import seed_latents
    from gankit.viz import render_samples, save_image

    ws = model.mapping(seed_latents(model, seeds))
    rows = []
    for v, s in zip(vectors, scales):
        images, cols = edit_strip(model, ws, v, PREVIEW_STRENGTHS, scale=float(s), layers=layers)
        groups = list(images.view(len(seeds), cols, *images.shape[1:]))
        blank = torch.ones_like(groups[0][:1])
        rows.append(torch.cat([torch.cat([g, blank]) for g in groups])[:-1])
    ncol = rows[0].shape[0]
    save_image(render_samples(torch.cat(rows), nrow=ncol), out)


def directions_cmd(
    run: Path = typer.Argument(..., help="Run directory or exported model directory (stylegan2)."),
    attr: Optional[str] = typer.Option(None, "--attr", help="Attribute for InterFaceGAN: age (40+ vs under 30), gender (+ Male), 'race=East Asian' (one vs the rest), or a column of --labels (Eyeglasses)."),
    method: Optional[str] = typer.Option(None, "--method", help="interfacegan (with --attr) | sefa | ganspace."),
    condition: Optional[List[str]] = typer.Option(None, "--condition", help="Hold this attribute fixed (InterFaceGAN conditional editing); repeatable."),
    labels: Optional[Path] = typer.Option(None, "--labels", help="Label table for --images (CSV with a file column, or CelebA's list_attr_celeba.txt): train a classifier on it."),
    images: Optional[str] = typer.Option(None, "--images", help="Labelled images to train the attribute classifier on (folder with labels.csv, class folders, fairface); default: the shipped face CNN."),
    out: Optional[Path] = typer.Option(None, "--out", help="Output folder (default RUN/directions)."),
    samples: int = typer.Option(5000, "--samples", help="Sampled ws: labelled for InterFaceGAN, PCA'd for GANSpace, the strength unit for SeFa."),
    fraction: float = typer.Option(0.2, "--fraction", help="InterFaceGAN: the top and bottom fraction of scores kept as positives / negatives."),
    n: int = typer.Option(10, "--n", help="SeFa / GANSpace: number of directions."),
    layers: Optional[str] = typer.Option(None, "--layers", help="coarse | middle | fine | A-B: SeFa factorises these layers' affines; the directions' default edit layers."),
    seeds: str = typer.Option("0-2", "--seeds", help="Seeds of the preview strips."),
    epochs: int = typer.Option(20, "--epochs", help="Epochs of the attribute classifier trained on --images."),
    max_images: Optional[int] = typer.Option(20000, "--max-images", help="Use at most this many labelled images."),
    seed: int = typer.Option(0, "--seed", help="Seeds the sampled ws, the classifier and the splits."),
    truncation: float = typer.Option(1.0, "--truncation", help="psi of the sampled ws."),
    no_ema: bool = typer.Option(False, "--no-ema"),
) -> None:
    """Find directions in W: supervised (InterFaceGAN, --attr) or unsupervised (--method sefa|ganspace)."""
    method = (method or ("interfacegan" if attr else "")).lower()
    if method not in METHODS:
        raise GankitError(f"give --attr ATTRIBUTE (InterFaceGAN) or --method {' | '.join(METHODS[1:])}"
                          + (f"; unknown method {method!r}" if method else ""))
    if (method == "interfacegan") != (attr is not None):
        raise GankitError("--attr goes with InterFaceGAN; sefa and ganspace take no attribute")
    if labels is not None and images is None:
        raise GankitError("--labels needs --images FOLDER (the images the table labels)")
    if samples < 100 or n < 1 or not math.isfinite(truncation) or not 0 < fraction <= 0.5:
        raise GankitError("need --samples >= 100, --n >= 1, a finite --truncation and --fraction in (0, 0.5]")
    from gankit.explore.styles import parse_seeds

    preview_seeds = parse_seeds(seeds)
    model = _style_model(run, no_ema)
    chosen = _layers(model, layers)
    out = out if out is not None else run / "directions"
    if method == "interfacegan":
        _interfacegan(model, run, attr, condition or [], labels, images, out, samples, fraction, chosen,
                      preview_seeds, epochs, max_images, seed, truncation)
    else:
        _unsupervised(model, run, method, out, samples, n, chosen, preview_seeds, seed, truncation)


def _predictors(model, names: list[str], labels, images, epochs, max_images, seed) -> dict:
    from gankit.explore.predictors import face_predictor, labelled_images, train_classifier

    if images is None:
        return {a: face_predictor(a) for a in names}
    ds = labelled_images(images, None if labels is None else str(labels), resolution=model.config.resolution,
                         channels=model.config.channels, max_images=max_images)
    out = {}
    for a in names:
        predictor, facts = train_classifier(ds, a, seed=seed, epochs=epochs, log=typer.echo)
        typer.echo(f"classifier {a}: {facts['train_images']:,} training images, balanced accuracy "
                   f"{facts.get('val_balanced_accuracy', float('nan')):.3f} on {facts.get('val_images', 0):,} held out")
        out[a] = predictor
    return out


def _interfacegan(model, run, attr, held, labels, images, out, samples, fraction, layers, seeds, epochs,
                  max_images, seed, truncation) -> None:
    from gankit.explore.directions import (Directions, angle_degrees, condition, direction_scale, interfacegan,
                                           sample_ws, save_directions, score_ws, slug)

    names = [attr, *held]
    predictors = _predictors(model, names, labels, images, epochs, max_images, seed)
    ws = sample_ws(model, samples, seed=seed, truncation=truncation)
    scores = score_ws(model, ws, list(predictors.values()))
    boundaries = {a: interfacegan(ws, scores[:, i], fraction=fraction, seed=seed) for i, a in enumerate(names)}
    main = boundaries[attr]
    vector = condition(main.normal, *(boundaries[h].normal for h in held)) if held else main.normal
    name = slug(attr) + "".join(f"-cond-{slug(h)}" for h in held)
    info = {"method": "interfacegan", "paper": "Shen, Gu, Tang & Zhou 2020, arXiv:1907.10786", "model": str(run),
            "attribute": attr, "condition": held, "samples": samples, "fraction": fraction, "seed": seed,
            "truncation": truncation, "strength_unit": "std of the sampled w along the direction",
            "predictor": predictors[attr].info,
            "boundary": _boundary_facts(main),
            "held": {h: {**_boundary_facts(boundaries[h]), "angle_to_attribute_deg":
                         round(angle_degrees(main.normal, boundaries[h].normal), 2)} for h in held}}
    d = Directions([name], vector[None], direction_scale(ws, vector[None]), layers, info)
    path, side = save_directions(out / f"{name}.safetensors", d)
    _preview(model, d.vectors, d.scales, seeds, layers, out / f"{name}.png")
    b = main
    typer.echo(f"{name}: boundary accuracy {b.val_accuracy:.3f} on {b.n_val:,} held-out samples "
               f"({b.info['positives']:,} + {b.info['negatives']:,} most confident of {samples:,}), "
               f"{b.info['all_samples_accuracy']:.3f} on all" + (f"; conditioned on {', '.join(held)}" if held else ""))
    typer.echo(f"wrote {path}, {side.name} and {name}.png")


def _boundary_facts(b) -> dict:
    return {"val_accuracy": None if b.val_accuracy is None else round(b.val_accuracy, 4),
            "train_accuracy": round(b.train_accuracy, 4), "n_train": b.n_train,
            "n_val": b.n_val, **b.info}


def _unsupervised(model, run, method, out, samples, n, layers, seeds, seed, truncation) -> None:
    from gankit.explore.directions import Directions, direction_scale, ganspace, sample_ws, save_directions, sefa

    ws = sample_ws(model, samples, seed=seed, truncation=truncation)
    if method == "sefa":
        vectors, values = sefa(model.generator, layers, k=n)
        scales = direction_scale(ws, vectors)
        extra = {"paper": "Shen & Zhou 2021, arXiv:2007.06600", "eigenvalues": [round(float(v), 4) for v in values]}
    else:
        vectors, scales, _ = ganspace(ws, k=n)
        extra = {"paper": "Härkönen et al. 2020, arXiv:2004.02546",
                 "explained_variance": [round(float(s) ** 2, 5) for s in scales]}
    info = {"method": method, "model": str(run), "samples": samples, "seed": seed, "truncation": truncation,
            "strength_unit": "std of the sampled w along the direction", **extra}
    d = Directions([f"{method}:{i}" for i in range(len(vectors))], vectors, scales, layers, info)
    path, side = save_directions(out / f"{method}.safetensors", d)
    _preview(model, d.vectors, d.scales, seeds, layers, out / f"{method}.png")
    key, label = ("eigenvalues", "eigenvalue") if method == "sefa" else ("explained_variance", "variance")
    where = f"layers {layers[0]}-{layers[-1]}" if layers else "all layers"
    for i, v in enumerate(info[key]):
        typer.echo(f"{method}:{i}  {label} {v:g}  (w std along it {float(d.scales[i]):.3f})")
    typer.echo(f"wrote {path}, {side.name} and {method}.png ({len(vectors)} directions, {where}; preview rows = "
               f"directions, columns = strengths -3..3 per seed)")


# ---- gankit edit --------------------------------------------------------------------------------
def resolve_direction(spec: str, run: Path):
    """``FILE[:index|:name]`` or ``NAME[:index]`` (a file in RUN/directions) -> (Directions, index)."""
    from gankit.explore.directions import load_directions

    text = spec.strip()
    candidates = [(text, None)]
    if ":" in text:
        head, _, key = text.rpartition(":")
        candidates.append((head, key))
    folder = run / "directions"
    for path_text, key in candidates:
        for path in (Path(path_text), folder / f"{path_text}.safetensors", folder / path_text):
            if path.is_file():
                d = load_directions(path)
                return d, d.index(key), path
    known = sorted(p.stem for p in folder.glob("*.safetensors")) if folder.is_dir() else []
    raise GankitError(f"--direction {spec!r}: no such file, and no {folder}/{text.split(':')[0]}.safetensors"
                      + (f" (found: {', '.join(known)})" if known else "; make one with gankit directions RUN"))


def edit_cmd(
    run: Path = typer.Argument(..., help="Run directory or exported model directory (stylegan2)."),
    direction: str = typer.Option(..., "--direction", help="NAME[:index] in RUN/directions (age, sefa:3) or FILE.safetensors[:index]."),
    latent: Optional[Path] = typer.Option(None, "--latent", help="A latent .safetensors with key 'w' ((1, num_ws, w_dim) or (1, w_dim)), e.g. from gankit project."),
    seed: Optional[str] = typer.Option(None, "--seed", help="Seeds to edit, one row each (e.g. 0-3); default 0."),
    strength: str = typer.Option("-3..3", "--strength", help="Range A..B (with --steps), list 0,1,2, or one value S (shows 0 and S); in stds of w along the direction."),
    steps: int = typer.Option(7, "--steps", help="Columns of a range."),
    layers: Optional[str] = typer.Option(None, "--layers", help="Move only these layers' ws (W+): coarse | middle | fine | A-B | all; default: the direction's own."),
    out: Path = typer.Option(Path("edit.png"), "--out", help="Output PNG strip."),
    truncation: float = typer.Option(1.0, "--truncation", help="psi for --seed latents."),
    no_ema: bool = typer.Option(False, "--no-ema"),
) -> None:
    """Move latents along a direction and render the strip: one row per latent, one column per strength."""
    from gankit.explore.edit import edit_strip, parse_strengths, read_latent
    from gankit.explore.styles import parse_seeds, seed_latents
    from gankit.viz import render_samples, save_image

    png_out(out)
    if latent is not None and seed is not None:
        raise GankitError("give --latent or --seed, not both")
    strengths = parse_strengths(strength, steps)
    if not math.isfinite(truncation):
        raise GankitError(f"--truncation must be a finite number, got {truncation}")
    model = _style_model(run, no_ema)
    d, index, path = resolve_direction(direction, run)
    if d.vectors.shape[1] != model.generator.w_dim:
        raise GankitError(f"{path} holds {d.vectors.shape[1]}-d directions; this model's w has {model.generator.w_dim}")
    chosen = _layers(model, layers) if layers is not None else d.layers
    if latent is not None:
        ws = read_latent(latent, model.num_ws, model.generator.w_dim)
    else:
        ws = model.mapping(seed_latents(model, parse_seeds(seed or "0")), truncation=truncation)
    images, cols = edit_strip(model, ws, d.vectors[index], strengths, scale=float(d.scales[index]), layers=chosen)
    save_image(render_samples(images, nrow=cols), out)
    where = f"layers {chosen[0]}-{chosen[-1]}" if chosen else "all layers"
    typer.echo(f"wrote {out} ({ws.shape[0]} x {cols}: {d.names[index]} at strengths "
               f"{', '.join(f'{s:g}' for s in strengths)}; {where})")
