"""``gankit translate``: run an image-to-image model on a file or a folder (registered in :mod:`gankit.cli`).

Writes one translated PNG per readable input (same base name) and ``grid.png``: each input beside
its output(s). Unreadable files are skipped and counted, never fatal.
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from gankit.cli_outputs import folder_names, refuse_writing_over_inputs, unique_stems
from gankit.errors import GankitError

GRID_ITEMS = 16  # inputs shown in grid.png
CHUNK = 256  # inputs translated at once (all columns of a chunk are held in memory)


def read_inputs(path: Path, resolution: int) -> tuple[list[str], "torch.Tensor", list[tuple[str, str]]]:  # noqa: F821
    """Decode a file, a folder or a zip of images at ``resolution`` (short side, centre crop):
    ``(names, uint8 (N, C, R, R), skipped)``; colour when any image is colour."""
    import torch

    from gankit.data import images

    if not path.exists():
        raise GankitError(f"input not found: {path}")
    single = path.is_file() and path.suffix.lower() in images.IMAGE_EXTENSIONS
    src = images.open_source(path.parent if single else path)
    if single:
        src.entries = [e for e in src.entries if e.name == path.name]
    skipped: list[tuple[str, str]] = []
    try:
        decoded = list(images.iter_decoded(src, skipped, resolution=resolution))
    finally:
        src.close()
    if not decoded:
        raise GankitError(f"{path}: no readable image ({skipped[0][0]}: {skipped[0][1]})" if skipped
                          else f"{path}: no image files")
    data = torch.from_numpy(images.stack_images([a for _, a in decoded]))
    return [e.name for e, _ in decoded], data, skipped


def parse_attrs(text: str | None) -> dict[str, float] | None:
    """``"Red=1,Thick=0"`` -> ``{"Red": 1.0, "Thick": 0.0}`` (-1 means 0, as in CelebA's files)."""
    if not text:
        return None
    out = {}
    for part in text.split(","):
        name, sep, value = part.rpartition("=")  # names may hold "=" (categorical: gender=Female)
        if not sep or not name.strip():
            raise GankitError(f"--attrs takes NAME=VALUE pairs separated by commas, got {part!r}")
        v = value.strip()
        if v not in ("1", "0", "-1"):  # "2" was read as 1 and "nan" as 0
            raise GankitError(f"--attrs value of {name.strip()} must be 1, 0 or -1, got {value!r}")
        if name.strip() in out:
            raise GankitError(f"--attrs names {name.strip()} twice")
        out[name.strip()] = 1.0 if v == "1" else 0.0
    return out


def translate_cmd(
    run: Path = typer.Argument(..., help="Run directory or exported model of an image-to-image family."),
    input_: Path = typer.Option(..., "--input", help="An image file, a folder or a .zip of images."),
    out: Path = typer.Option(..., "--out", help="Output folder (created)."),
    direction: Optional[str] = typer.Option(None, "--direction", help="AtoB | BtoA (two-way families; default: the trained direction)."),
    attrs: Optional[str] = typer.Option(None, "--attrs", help="StarGAN: attribute changes, e.g. Red=1,Thick=0 (default: one column per attribute flipped)."),
    no_ema: bool = typer.Option(False, "--no-ema", help="Use the raw generator instead of its moving average."),
) -> None:
    """Translate images with a trained Pix2Pix / CycleGAN / DiscoGAN / StarGAN model."""
    import torch

    from gankit.api import load
    from gankit.viz import make_grid, save_image

    if direction is not None and direction not in ("AtoB", "BtoA"):
        raise GankitError(f"--direction must be AtoB or BtoA, got {direction!r}")
    model = load(run, ema=not no_ema)
    if not model.family_cls.translates:
        raise GankitError(f"{run} is a {model.family} model, which samples noise; translate needs "
                          f"pix2pix, cyclegan, discogan or stargan")
    if model.family_cls.apply_command != "translate":
        raise GankitError(f"{run} is a {model.family} model: use `gankit {model.family_cls.apply_command} {run} "
                          f"--input ... --out ...`")
    refuse_writing_over_inputs(input_, out)
    names, images, skipped = read_inputs(input_, model.config.resolution)
    changes = parse_attrs(attrs)
    out.mkdir(parents=True, exist_ok=True)
    stems = unique_stems(names, reserved={"grid"})
    first = None  # the grid's columns
    for start in range(0, len(names), CHUNK):  # chunks: a folder of thousands of photos fits in memory
        columns = model.family_cls.translation_columns(model, images[start:start + CHUNK], direction=direction,
                                                       attrs=changes)
        # one column (a two-domain model, or StarGAN with --attrs): its images in --out; several
        # (StarGAN's flips): a folder per column, e.g. out/flip-red/
        folders = [out] if len(columns) == 1 else [out / name for name in folder_names([lab for lab, _ in columns])]
        for folder, (_, outputs) in zip(folders, columns):
            folder.mkdir(parents=True, exist_ok=True)
            for stem, image in zip(stems[start:start + CHUNK], outputs):
                save_image(make_grid(image, nrow=1, padding=0), folder / (stem + ".png"))
        if start < GRID_ITEMS:  # the grid's first GRID_ITEMS outputs, over as many chunks as they span
            shown_now = [(label, c[:GRID_ITEMS - start]) for label, c in columns]
            first = shown_now if first is None else [(label, torch.cat([a, c])) for (label, a), (_, c)
                                                      in zip(first, shown_now)]
        del columns
    columns = first
    from gankit.families.translation import to_rgb
    from gankit.data import to_signed

    shown = [to_rgb(to_signed(images[:GRID_ITEMS]))] + [to_rgb(c[:GRID_ITEMS]) for _, c in columns]
    tiles = torch.stack(shown, dim=1).flatten(0, 1)
    save_image(make_grid(tiles, nrow=len(shown)), out / "grid.png")
    labels = ", ".join(label for label, _ in columns)
    where = "" if len(columns) == 1 else " in " + ", ".join(f.name + "/" for f in folders)
    typer.echo(f"wrote {len(names) * len(columns)} translated images{where} and grid.png (input, {labels}) to {out}")
    if skipped:
        typer.echo(f"skipped {len(skipped)} unreadable file(s): " + ", ".join(n for n, _ in skipped[:3])
                   + (" ..." if len(skipped) > 3 else ""))
