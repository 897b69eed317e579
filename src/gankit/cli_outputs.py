"""Where the commands that apply a model to the user's pictures (translate, upscale) write: never
over the pictures they read, and one file per input whatever the inputs are called."""

from __future__ import annotations

import re
from pathlib import Path

from gankit.errors import GankitError


def refuse_writing_over_inputs(input_: Path, out: Path) -> None:
    """``--out`` must not be the input file, the input folder or a folder inside it (its outputs
    would replace the user's pictures, or be read back as inputs by the next run). An input that
    does not exist (a built-in name) cannot be written over."""
    if not input_.exists():
        return
    src, dst = input_.resolve(), out.resolve()
    if dst == src or (src.is_dir() and src in dst.parents):
        where = "is the input" if dst == src else f"lies inside the input folder {input_}"
        raise GankitError(f"--out {out} {where}: pick a folder outside it (the inputs are never overwritten)")


def unique_stems(names: list[str], reserved: set[str] = frozenset()) -> list[str]:
    """One output name (no suffix) per input path: its path with folders joined by "_", and a
    "-2", "-3", ... where two inputs (dup.png, dup.jpg; sub/x.png, sub_x.png) or a ``reserved``
    name (grid) would meet."""
    taken = {r.lower() for r in reserved}
    out = []
    for name in names:
        stem = Path(name).with_suffix("").as_posix().replace("/", "_")
        candidate, k = stem, 1
        while candidate.lower() in taken:
            k += 1
            candidate = f"{stem}-{k}"
        taken.add(candidate.lower())
        out.append(candidate)
    return out


def folder_names(labels: list[str]) -> list[str]:
    """A folder name per column label ("flip Red" -> "flip-red"), letters of any script kept,
    never empty, never shared."""
    slugs = [re.sub(r"[\W_]+", "-", label.lower()).strip("-") or f"column-{i + 1}" for i, label in enumerate(labels)]
    return unique_stems(slugs)
