"""Attribute data for multi-domain translation (StarGAN, Choi et al. 2018, arXiv:1711.09020).

StarGAN trains one generator on images labelled with K binary attributes (CelebA's 40 face
attributes: ``Black_Hair``, ``Male``, ``Young``, ...) or with one domain each (RaFD's
expressions, given here as class folders). A :class:`~gankit.data.dataset.Dataset` with
``kind="image"`` carries them as ``attributes`` (float32 ``(N, K)`` of 0/1) and
``attribute_names``.

Sources:

* an image folder or zip plus an attribute table (:func:`load_attribute_dataset`): CelebA's
  ``list_attr_celeba.txt`` (line 1 the image count, line 2 the attribute names, then
  ``file v1 ... vK`` with +1/-1) or a CSV with a header (see :func:`read_attribute_table`);
* class folders (:func:`class_domains`): each class is a domain, attributes are one-hot;
* ``mnist-attributes`` (:func:`mnist_attributes`): the shipped MNIST digits with three seeded
  random attributes whose ground truth is known, so an edit can be scored against the exact
  target image (:func:`render_mnist_attributes`) and read back by
  :func:`gankit.metrics.translation.read_mnist_attributes`.
"""

from __future__ import annotations

import csv
import dataclasses
import difflib
import logging
import os
import re
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from ..errors import GankitError
from . import cache, images
from .dataset import Dataset

log = logging.getLogger(__name__)

FILE_COLUMNS = ("file", "filename", "file_name", "image", "image_id", "image_name", "img", "path", "name")
TRUE_WORDS = frozenset({"true", "yes"})
FALSE_WORDS = frozenset({"false", "no"})
MAX_CATEGORIES = 100  # a text column with more distinct values is an id or a caption, not an attribute
NO_ROW = "no attribute row"

# ----------------------------------------------------------------------------- attribute tables


def _fail(path: Path, line: int | None, message: str) -> GankitError:
    where = f"{path}:{line}" if line else str(path)
    return GankitError(f"{where}: {message}")


def _read_lines(path: Path) -> list[str]:
    if not path.exists():
        raise GankitError(f"attribute table not found: {path}")
    if not path.is_file():
        raise GankitError(f"{path}: the attribute table must be a file (CelebA list_attr .txt or .csv)")
    from gankit.files import read_user_text

    return read_user_text(path, "expected a CelebA list_attr .txt or a .csv attribute table").splitlines()


def _clean_name(name: str) -> str:
    """Table file names compared as relative ``/`` paths (``.\\a\\b.jpg`` -> ``a/b.jpg``)."""
    name = name.strip().replace("\\", "/")
    while name.startswith("./"):
        name = name[2:]
    return name


def _natural_key(value: str):
    """Sort ``2`` before ``10`` and ``20-29`` before ``30-39``, text alphabetically."""
    return [(0, int(part), "") if part.isdigit() else (1, 0, part) for part in re.split(r"(\d+)", value)]


_COMMON = {"1": 1.0, "-1": 0.0, "0": 0.0, "+1": 1.0}  # CelebA's 8 million values take this path


def _binary(value: str) -> float | None:
    """+1/-1, 1/0 (also 1.0) and true/false/yes/no -> 1.0/0.0; None for anything else."""
    common = _COMMON.get(value)
    if common is not None:
        return common
    v = value.strip().lower()
    if v in TRUE_WORDS:
        return 1.0
    if v in FALSE_WORDS:
        return 0.0
    try:
        number = float(v)
    except ValueError:
        return None
    return (1.0 if number > 0 else 0.0) if number in (-1.0, 0.0, 1.0) else None


def read_attribute_table(path: str | os.PathLike) -> tuple[list[str], dict[str, list[float]]]:
    """Parse an attribute table: ``(names, rows)``, rows mapping file name -> K values in {0, 1}.

    Formats, recognised from the first line:

    * CelebA ``list_attr_celeba.txt``: the number of images, then the attribute names separated
      by spaces, then one ``file v1 ... vK`` line per image (+1/-1, any run of spaces); the same
      without the count line also reads;
    * CSV (``,``, ``;`` or tab) with a header: the file name is in the column called file,
      filename, image, image_id, path or name (any case), else in the first column. A column of
      +1/-1, 1/0 or true/false/yes/no is one attribute (-1, 0, false -> 0). A column of other
      values is categorical and becomes one attribute per value, named ``column=value`` in
      sorted order (``gender=Female``, ``gender=Male``); an empty cell there sets none of them.

    File names keep their folders as written (backslashes become ``/``). A problem with the
    file raises GankitError naming the file and the line.
    """
    path = Path(path).expanduser()
    lines = _read_lines(path)
    first = next((i for i, line in enumerate(lines) if line.strip()), None)
    if first is None:
        raise _fail(path, None, "empty attribute table")
    head = lines[first]
    delimiter = next((d for d in (",", "\t", ";") if d in head), None)
    if delimiter is not None:
        return _read_csv(path, lines, delimiter)
    return _read_celeba(path, lines, first)


def _read_celeba(path: Path, lines: list[str], first: int) -> tuple[list[str], dict[str, list[float]]]:
    tokens = lines[first].split()
    count = None
    if len(tokens) == 1 and tokens[0].isdigit():  # line 1: the number of images
        count = int(tokens[0])
        first = next((i for i in range(first + 1, len(lines)) if lines[i].strip()), None)
        if first is None:
            raise _fail(path, None, "no attribute names after the image count (CelebA list_attr format)")
        tokens = lines[first].split()
    if len(tokens) < 1 or (count is None and len(tokens) < 2):
        raise _fail(path, first + 1, "unknown attribute table format: expected a CelebA list_attr file "
                                     "(count, names, rows) or a CSV with a header")
    names = tokens
    rows: dict[str, list[float]] = {}
    seen: dict[str, int] = {}
    for i in range(first + 1, len(lines)):
        parts = lines[i].split()
        if not parts:
            continue
        if not rows and len(parts) == len(names) and names[0].lower() in FILE_COLUMNS:
            names = names[1:]  # a header that names the file column too
        if len(parts) != len(names) + 1:
            raise _fail(path, i + 1, f"{len(parts) - 1} values for {len(names)} attributes "
                                     f"(expected: file name and {len(names)} values of +1/-1)")
        values = [_binary(v) for v in parts[1:]]
        if None in values:
            bad = parts[1 + values.index(None)]
            raise _fail(path, i + 1, f"value {bad!r} is not +1/-1, 1/0 or true/false")
        _add_row(path, rows, seen, _clean_name(parts[0]), values, i + 1)
    if not rows:
        raise _fail(path, None, "no image rows in the attribute table")
    if count is not None and count != len(rows):
        log.warning("%s: line 1 announces %d images but the table has %d rows", path, count, len(rows))
    _check_names(path, names)
    return list(names), rows


def _add_row(path: Path, rows: dict, seen: dict, name: str, values: list[float], line: int) -> None:
    if not name:
        raise _fail(path, line, "empty file name")
    if name in seen:
        raise _fail(path, line, f"{name} is listed twice (first on line {seen[name]})")
    seen[name] = line
    rows[name] = values


def _check_names(path: Path, names: Sequence[str]) -> None:
    if not names:
        raise _fail(path, None, "the attribute table has no attribute columns")
    dup = next((n for i, n in enumerate(names) if n in names[:i]), None)
    if dup is not None:
        raise _fail(path, None, f"attribute {dup!r} appears twice in the header")


def _read_csv(path: Path, lines: list[str], delimiter: str) -> tuple[list[str], dict[str, list[float]]]:
    reader = csv.reader(lines, delimiter=delimiter)
    header: list[str] | None = None
    header_line = 0
    records: list[tuple[int, list[str]]] = []
    for cells in reader:
        line = reader.line_num
        if not any(c.strip() for c in cells):
            continue
        cells = [c.strip() for c in cells]
        if header is None:
            header, header_line = cells, line
            continue
        if len(cells) != len(header):
            raise _fail(path, line, f"{len(cells)} fields, the header on line {header_line} has {len(header)}")
        records.append((line, cells))
    assert header is not None
    if len(header) < 2:
        raise _fail(path, header_line, "unknown attribute table format: a CSV needs a file-name column "
                                       "and at least one attribute column")
    if not records:
        raise _fail(path, None, "no image rows in the attribute table")
    lowered = [h.lower() for h in header]
    file_col = next((lowered.index(c) for c in FILE_COLUMNS if c in lowered), 0)
    names: list[str] = []
    columns: list[np.ndarray] = []
    for j, column in enumerate(header):
        if j == file_col:
            continue
        if not column:
            raise _fail(path, header_line, f"column {j + 1} has no name")
        cells = [cells[j] for _, cells in records]
        values = [_binary(c) for c in cells]
        if all(v is not None for v in values):  # +-1, 0/1, true/false
            names.append(column)
            columns.append(np.asarray(values, dtype=np.float32))
            continue
        if any(not c for c in cells) and all(v is not None for c, v in zip(cells, values) if c):
            line = records[next(i for i, c in enumerate(cells) if not c)][0]
            raise _fail(path, line, f"empty value in column {column!r}")
        categories = sorted({c for c in cells if c}, key=_natural_key)
        if len(categories) > MAX_CATEGORIES:
            log.warning("%s: column %r has %d distinct values; not an attribute, ignored",
                        path, column, len(categories))
            continue
        for value in categories:
            names.append(f"{column}={value}")
            columns.append(np.asarray([c == value for c in cells], dtype=np.float32))
    _check_names(path, names)
    table = np.stack(columns, axis=1) if columns else np.zeros((len(records), 0), np.float32)
    rows: dict[str, list[float]] = {}
    seen: dict[str, int] = {}
    for (line, cells), values in zip(records, table.tolist()):
        _add_row(path, rows, seen, _clean_name(cells[file_col]), values, line)
    return names, rows


def select_attributes(names: Sequence[str], rows: dict[str, list[float]], wanted: Sequence[str] | None
                      ) -> tuple[list[str], dict[str, list[float]]]:
    """Keep the ``wanted`` attributes, in the order given (None or empty: all, unchanged).

    A name matches exactly, else case-insensitively; a categorical column's name (``gender``)
    selects all its values (``gender=Female``, ``gender=Male``). An unknown name raises
    GankitError with the closest known names.
    """
    names = list(names)
    if not wanted:
        return names, rows
    index = {n: i for i, n in enumerate(names)}
    lower: dict[str, list[int]] = {}
    for i, n in enumerate(names):
        lower.setdefault(n.lower(), []).append(i)
    picked: list[int] = []
    for want in wanted:
        w = want.strip()
        if w in index:
            found = [index[w]]
        elif len(lower.get(w.lower(), [])) == 1:
            found = lower[w.lower()]
        else:
            found = [i for i, n in enumerate(names) if n.split("=", 1)[0] == w and "=" in n]
        if not found:
            close = difflib.get_close_matches(w, names, n=3, cutoff=0.5) or \
                difflib.get_close_matches(w.lower(), [n.lower() for n in names], n=3, cutoff=0.5)
            hint = f"; did you mean {', '.join(close)}?" if close else f" (the table has {len(names)}: " \
                f"{', '.join(names[:8])}{', ...' if len(names) > 8 else ''})"
            raise GankitError(f"unknown attribute {w!r}{hint}")
        for i in found:
            if i in picked:
                raise GankitError(f"attribute {names[i]!r} is asked for twice")
            picked.append(i)
    return [names[i] for i in picked], {k: [v[i] for i in picked] for k, v in rows.items()}


def match_files(files: Sequence[str], table_names: Sequence[str]) -> dict[str, str]:
    """Map image file names (relative ``/`` paths) to table row names.

    A row matches an image when the names are equal; else when the base names are equal
    (CelebA lists bare ``000001.jpg`` while the folder may be ``img_align_celeba/000001.jpg``,
    or the other way round), the row sharing the longest trailing run of folders winning; else
    when the names equal without extension (images converted from .jpg to .png). Ambiguous
    matches (two rows equally good) are left unmatched.
    """
    exact = set(table_names)
    by_base: dict[str, list[str]] = {}
    by_stem: dict[str, list[str]] = {}
    for name in table_names:
        base = name.rsplit("/", 1)[-1]
        by_base.setdefault(base, []).append(name)
        by_stem.setdefault(os.path.splitext(name)[0], []).append(name)
    out: dict[str, str] = {}
    for f in files:
        if f in exact:
            out[f] = f
            continue
        candidates = by_base.get(f.rsplit("/", 1)[-1], [])
        if not candidates:
            candidates = by_stem.get(os.path.splitext(f)[0], []) or \
                by_stem.get(os.path.splitext(f.rsplit("/", 1)[-1])[0], [])
        if len(candidates) == 1:
            out[f] = candidates[0]
        elif candidates:
            parts = f.split("/")
            scores = [_common_tail(parts, c.split("/")) for c in candidates]
            best = max(scores)
            if scores.count(best) == 1:
                out[f] = candidates[scores.index(best)]
    return out


def _common_tail(a: list[str], b: list[str]) -> int:
    n = 0
    while n < min(len(a), len(b)) and a[-1 - n] == b[-1 - n]:
        n += 1
    return n


def load_attribute_dataset(folder: str | os.PathLike, table_path: str | os.PathLike, *,
                           wanted: Sequence[str] | None = None, channels: int | None = None,
                           resolution: int | None = None, max_images: int | None = None,
                           cache_dir: str | os.PathLike | bool | None = None, where=None,
                           name: str | None = None) -> Dataset:
    """Images of a folder or zip with their rows of an attribute table (StarGAN's CelebA setup).

    Images are matched to rows by file name (:func:`match_files`). An image without a row is
    not decoded; it is listed in ``skipped`` with the reason ``"no attribute row"``. Rows
    without an image are ignored (a table for all of CelebA works with a folder of a few
    images); their number is kept as ``dataset.rows_without_image``. ``max_images`` keeps the
    first N good images with rows, in sorted path order; the other options are those of
    :func:`gankit.data.load_dataset`, whose on-disk decode cache is used too. Returns
    ``kind="image"`` with ``attributes`` (float32 ``(N, K)`` of 0/1) and ``attribute_names``.

    ``where`` (:mod:`gankit.data.where`, e.g. ``"race=East Asian"``) keeps only the images whose
    row matches, tested on all columns of the table (not only ``wanted``); the others are left
    out before decoding (not listed as skipped) and ``max_images`` counts the kept ones.
    ``name`` replaces the folder's path as the dataset's ``source`` (``fairface``).
    """
    from .loader import _check_options
    from .where import filter_rows, format_where, resolve_where

    _check_options(channels, resolution, max_images)
    all_names, all_rows = read_attribute_table(table_path)
    where_text = format_where(resolve_where(all_names, where, source=name or str(table_path)))
    kept = filter_rows(all_names, all_rows, where, source=name or str(table_path)) if where_text else None
    names, rows = select_attributes(all_names, all_rows, wanted)
    path = Path(folder).expanduser()
    if not path.exists():
        raise GankitError(f"image folder not found: {path.absolute()}")
    path = path.resolve()
    source = str(path)
    src = images.open_source(path)
    try:
        entries = src.entries
        matched = match_files([e.name for e in entries], list(rows))
        no_row = [(e.name, NO_ROW) for e in entries if e.name not in matched]
        src.entries = [e for e in entries if e.name in matched]
        if kept is not None:  # filtered out by --where: left out, not skipped
            src.entries = [e for e in src.entries if matched[e.name] in kept]
            if not src.entries:
                raise GankitError(f"--where {where_text}: {len(kept):,} rows of {name or table_path} match, "
                                  f"but none of their images is in {path}")
        if not src.entries:
            example = entries[0].name
            raise GankitError(f"{path}: none of the {len(entries)} images has a row in {table_path} "
                              f"(e.g. {example}; the table lists {next(iter(rows))})")
        options = {"channels": channels, "resolution": resolution, "max_images": max_images}
        folder_ = cache.resolve_cache_dir(cache_dir)
        fingerprint = [src.fingerprint(), [e.name for e in src.entries]]
        key = cache.cache_key(source + "#attributes", fingerprint, **options) if folder_ else ""
        ds = cache.read_cache(folder_, key, source) if folder_ else None
        if ds is None:
            ds = images.decode_source(src, source, **options)
            if folder_:
                cache.write_cache(folder_, key, ds)
        bad = {name for name, _ in ds.skipped}
        good = [e.name for e in src.entries if e.name not in bad][:len(ds)]
    finally:
        src.close()
    used = set(matched.values())
    table = np.asarray([rows[matched[name]] for name in good], dtype=np.float32).reshape(len(good), len(names))
    out = dataclasses.replace(ds, attributes=torch.from_numpy(table), attribute_names=list(names),
                              skipped=list(ds.skipped) + no_row, kind="image", where=where_text,
                              source=name or ds.source)
    listed = rows if kept is None else kept
    out.rows_without_image = sum(1 for r in listed if r not in used)  # type: ignore[attr-defined]
    return out


def class_domains(dataset: Dataset) -> Dataset:
    """Class folders as StarGAN domains (RaFD's expressions in the paper): ``attributes`` is the
    one-hot class vector of each image and ``attribute_names`` the class names."""
    if dataset.labels is None or dataset.num_classes < 2:
        raise GankitError(f"{dataset.source or 'the dataset'}: class folders as domains need at least two "
                          "classes (one folder of images per domain)")
    k = dataset.num_classes
    names = list(dataset.classes) if dataset.classes is not None else [str(i) for i in range(k)]
    one_hot = F.one_hot(dataset.labels.long(), k).to(torch.float32)
    return dataclasses.replace(dataset, attributes=one_hot, attribute_names=names)


# ----------------------------------------------------------------------------- mnist-attributes

MNIST_ATTRIBUTES: tuple[str, ...] = ("Red", "Light_Background", "Thick")
MNIST_ATTRIBUTES_SOURCE = "mnist-attributes"
_MNIST_ATTRIBUTES_SEED = 1711  # arXiv:1711.09020
RED = (1.0, 0.0, 0.0)  # pure red: every channel differs by the stroke's alpha from black or white
_RENDER_BATCH = 1000
BASE_WIDTH = 2.6  # stroke width (28-px units) down to which bold digits are thinned before rendering


def thick_kernel(resolution: int) -> int:
    """Side of the square max filter that makes a stroke ``Thick``: 3 at 24-41 px (a 3x3 filter
    at MNIST's 28), 5 at 42-69, 7 at 70-97, ...; 2 below 24 px, where a 3x3 filter adds as much
    as a quarter of the digit's height and the MNIST classifier can no longer read the digits
    (about 26 % read right at 16 px with 3x3, 74 % with 2x2, against 97 % for thin ones)."""
    return 2 if resolution < 24 else 2 * max(1, round(resolution / 28)) + 1


def thicken(alpha: torch.Tensor) -> torch.Tensor:
    """The ``Thick`` stroke: grey dilation of ``(N, 1, R, R)`` ink by a :func:`thick_kernel`
    square (an even kernel reaches one pixel further right and down)."""
    k = thick_kernel(alpha.shape[-1])
    lo, hi = (k - 1) // 2, k // 2
    return F.max_pool2d(F.pad(alpha, (lo, hi, lo, hi)), k, 1)


def stroke_width(alpha: torch.Tensor) -> torch.Tensor:
    """Mean stroke width of ``(N, 1, H, W)`` ink in [0, 1], in pixels of a 28-px digit: twice the
    ink area over its total variation (a stroke of width w and length L has area ~wL and
    contour length ~2L), which holds for soft anti-aliased edges too. Blank images give 0."""
    a = alpha.float()
    gx = a[..., :-1, 1:] - a[..., :-1, :-1]
    gy = a[..., 1:, :-1] - a[..., :-1, :-1]
    tv = torch.sqrt(gx * gx + gy * gy).sum((1, 2, 3))
    area = a.sum((1, 2, 3))
    return torch.where(tv > 0, 2 * area / tv.clamp_min(1e-6), torch.zeros_like(area)) * (28 / a.shape[-2])


def base_width(resolution: int) -> float:
    """:data:`BASE_WIDTH` at ``resolution``: below 28 px resampling blur widens strokes as
    measured (the median MNIST digit measures 2.2 at 28 px, 2.7 at 16), so the limit grows as
    ``(28 / R) ** 0.4`` there and bold digits are not thinned into broken strokes."""
    return BASE_WIDTH * max(1.0, 28 / resolution) ** 0.4


def _erode(x: torch.Tensor, k: int) -> torch.Tensor:
    return -F.max_pool2d(-x, k, 1, k // 2)


def _ridge(x: torch.Tensor) -> torch.Tensor:
    """The ink of pixels that are a maximum across the stroke in some direction (horizontal,
    vertical or diagonal): a one-pixel line along each stroke at its full intensity."""
    h, w = x.shape[-2:]
    p = F.pad(x, (1, 1, 1, 1))

    def shifted(dy: int, dx: int) -> torch.Tensor:
        return p[..., 1 + dy:1 + dy + h, 1 + dx:1 + dx + w]

    peak = torch.zeros_like(x, dtype=torch.bool)
    for dy, dx in ((0, 1), (1, 0), (1, 1), (1, -1)):
        peak |= (x >= shifted(dy, dx)) & (x >= shifted(-dy, -dx))
    return x * peak


def normalise_strokes(alpha: torch.Tensor, steps: int = 4) -> torch.Tensor:
    """Thin bold digits ``(N, 1, R, R)`` in [0, 1] (stroke width above :func:`base_width`), so
    that ``Thick`` is a property of the rendering rather than of the handwriting: without this
    the boldest 3 % of MNIST digits are as thick as dilated thin ones and no reader could tell
    them apart (a width threshold separates only 97 % at 28 px). Each step averages the ink with
    its grey erosion; where the erosion would remove a stroke altogether (a thin part of a bold
    digit) the stroke's ridge line is kept instead, so thin parts do not fade away, and the
    thinned digit is brightened back to its original peak."""
    x = alpha.float().clone()
    k = max(3, thick_kernel(x.shape[-1]))
    limit = base_width(x.shape[-1])
    for _ in range(steps):
        bold = stroke_width(x) > limit
        if not bold.any():
            break
        y = x[bold]
        eroded = _erode(y, k)
        vanished = 1 - F.max_pool2d(eroded, k, 1, k // 2)  # ~1 where erosion left no ink nearby
        x[bold] = (y + torch.maximum(eroded, _ridge(y) * vanished)) / 2
    before, after = alpha.float().amax((1, 2, 3), keepdim=True), x.amax((1, 2, 3), keepdim=True)
    return (x * (before / after.clamp_min(1e-6))).clamp_(0, 1)  # thinned strokes keep their peak ink


def render_mnist_attributes(digits: np.ndarray | torch.Tensor, attributes: np.ndarray | torch.Tensor
                            ) -> torch.Tensor:
    """Draw digits ``(N, R, R)`` uint8 (white on black, as MNIST) with attributes ``(N, 3)``
    (Red, Light_Background, Thick in {0, 1}) as uint8 RGB ``(N, 3, R, R)``.

    Strokes are first normalised (:func:`normalise_strokes`); ``Thick`` dilates them with a
    :func:`thick_kernel` max filter (:func:`thicken`; 3x3 at 28-32 px); the stroke is pure red
    when ``Red``, else white on black or black on white (``Light_Background``). Any attribute
    combination of any digit can be drawn, so the exact target of an edit is known.
    """
    d = digits if isinstance(digits, torch.Tensor) else torch.tensor(np.asarray(digits))
    if d.dim() != 3 or d.shape[-1] != d.shape[-2]:
        raise ValueError(f"digits must be (N, R, R), got {tuple(d.shape)}")
    a = attributes if isinstance(attributes, torch.Tensor) else torch.tensor(np.asarray(attributes))
    a = a.float().reshape(len(d), len(MNIST_ATTRIBUTES)).cpu() > 0.5
    out = torch.empty((len(d), 3, *d.shape[-2:]), dtype=torch.uint8)
    for start in range(0, len(d), _RENDER_BATCH):  # bounded float memory at large resolutions
        part = slice(start, start + _RENDER_BATCH)
        out[part] = _render(d[part].cpu(), a[part])
    return out


def _render(d: torch.Tensor, attrs: torch.Tensor) -> torch.Tensor:
    red, light, thick = attrs[:, 0], attrs[:, 1], attrs[:, 2]
    alpha = normalise_strokes(d.float()[:, None] / 255.0)
    if thick.any():
        alpha[thick] = thicken(alpha[thick])
    bg = light.float()[:, None, None, None].expand(-1, 3, 1, 1)
    plain = (1.0 - light.float())[:, None, None, None].expand(-1, 3, 1, 1)  # white on black, black on white
    stroke = torch.where(red[:, None, None, None], torch.tensor(RED)[None, :, None, None], plain)
    out = bg * (1 - alpha) + stroke * alpha
    return out.mul(255).round_().clamp_(0, 255).to(torch.uint8)


def mnist_attribute_values(n: int = 10_000) -> np.ndarray:
    """The attributes ``(n, 3)`` float32 0/1 of the ``mnist-attributes`` digits (Red,
    Light_Background, Thick), independent fair coins from a fixed seed: the same on every machine
    (NumPy guarantees RandomState's stream)."""
    rng = np.random.RandomState(_MNIST_ATTRIBUTES_SEED)
    return rng.randint(0, 2, size=(n, len(MNIST_ATTRIBUTES))).astype(np.float32)


@lru_cache(maxsize=2)
def _mnist_attributes(resolution: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    from .builtin import _mnist

    digits, labels = _mnist(resolution)
    attrs = torch.from_numpy(mnist_attribute_values(len(digits)))
    return render_mnist_attributes(digits, attrs), torch.from_numpy(labels.copy()), attrs


def mnist_attributes(resolution: int | None = 28, n: int | None = None) -> Dataset:
    """``mnist-attributes``: the 10,000 shipped MNIST digits in RGB, each with three seeded random
    attributes (:data:`MNIST_ATTRIBUTES`): ``Red`` stroke, ``Light_Background`` (white, a plain
    stroke then black) and ``Thick`` stroke. Labels are the digit classes. The first ``n`` digits
    when given. A ground truth for StarGAN-style attribute edits: see
    :func:`render_mnist_attributes` and :mod:`gankit.metrics.translation`."""
    r = resolution or 28
    if not isinstance(r, int) or r < 8:
        raise GankitError(f"mnist-attributes needs a resolution of at least 8 pixels, got {resolution!r}")
    if n is not None and (not isinstance(n, int) or n < 1):
        raise GankitError(f"max_images must be at least 1, got {n!r}")
    data, labels, attrs = _mnist_attributes(r)
    return Dataset(data=data[:n].clone(), labels=labels[:n].clone(), classes=[str(d) for d in range(10)],
                   kind="image", source=MNIST_ATTRIBUTES_SOURCE, attributes=attrs[:n].clone(),
                   attribute_names=list(MNIST_ATTRIBUTES))
