"""``load_dataset``: the one entry point the engine, CLI and metrics use to get training data."""

from __future__ import annotations

import os
import zipfile
from pathlib import Path

from ..errors import GankitError
from . import cache, images
from .builtin import BUILTIN_NAMES, load_builtin, load_fairface
from .dataset import Dataset
from .where import filter_dataset, parse_where

LABELS_FILE = "labels.csv"  # a folder's label table, read when --where filters it
IMPORTED_PREFIX = "imported:"  # the data an imported model records: its file's name, no dataset


def family_builtins() -> list[str]:
    """The built-in sets that belong to one kind of family (two domains, attributes, captions, one
    picture, photos to crop), from the modules that load them (imported here: they import this one)."""
    from .attributes import MNIST_ATTRIBUTES_SOURCE
    from .captioned import MNIST_CAPTIONS
    from .patches import BUILTIN_PICTURES
    from .single_image import builtin_images
    from .two_domain import MNIST_TASKS

    return [*(t for t in MNIST_TASKS if t not in BUILTIN_NAMES), MNIST_ATTRIBUTES_SOURCE, MNIST_CAPTIONS,
            *builtin_images(), BUILTIN_PICTURES]


def load_dataset(spec: str | os.PathLike, *, channels: int | None = None,
                 resolution: int | None = None, cache_dir: str | os.PathLike | bool | None = None,
                 max_images: int | None = None, where=None,
                 labels: str | os.PathLike | None = None) -> Dataset:
    """Load a built-in dataset (``mnist``, ``ring8``, ``grid25``, ``stacked-mnist``, ``fairface``,
    ...), an image folder or a zip.

    A built-in name wins over a same-named folder in the working directory; write ``./mnist``
    to mean the folder. Images come back as uint8 ``(N, C, H, W)``: ``channels`` None picks 1
    when every image is greyscale, else 3; ``resolution`` resizes the short side and
    centre-crops to a square (None keeps the native size, which must then be the same for all
    images). ``max_images`` keeps the first N good images in sorted path order. Decoded folders
    and zips are cached on disk (see :mod:`gankit.data.cache`; ``cache_dir=False`` disables).
    Bad files are skipped and listed in ``Dataset.skipped``; user mistakes raise GankitError.

    ``where`` keeps the images whose labels match (:mod:`gankit.data.where`: ``"race=East
    Asian"``, ``["gender=Female", "age=20-29|30-39"]``); ``max_images`` then counts the kept
    ones. Labels come from ``fairface``'s table, a folder's ``labels.csv`` (or the table given as
    ``labels``, which also attaches its columns as ``attributes`` without ``where``), or class
    folders (column ``class``).
    """
    _check_options(channels, resolution, max_images)
    conditions = parse_where(where)  # a malformed expression fails before anything is decoded
    if isinstance(spec, str) and spec.strip().lower() in BUILTIN_NAMES:
        name = spec.strip().lower()
        if name == "fairface":
            return load_fairface(channels=channels, resolution=resolution, max_images=max_images,
                                 where=conditions or None, cache_dir=cache_dir)
        ds = load_builtin(name, channels=channels, resolution=resolution,
                          max_images=None if conditions else max_images)
        return filter_dataset(ds, conditions, max_images=max_images)
    if str(spec).startswith(IMPORTED_PREFIX):
        raise GankitError(f"{str(spec)[len(IMPORTED_PREFIX):]} was imported and records no training data: "
                          f"pass --data (a folder of the kind of images it makes)")
    path = Path(spec).expanduser()
    builtins = ", ".join(BUILTIN_NAMES)
    if not path.exists():
        raise GankitError(f"dataset not found: {path.absolute()} does not exist and is not a "
                          f"built-in dataset ({builtins}; for their families also {', '.join(family_builtins())})")
    path = path.resolve()
    if not (path.is_dir() or (path.is_file() and (path.suffix.lower() == ".zip"
                                                  or zipfile.is_zipfile(path)))):
        raise GankitError(f"{path}: not a folder of images, a .zip of images or a built-in "
                          f"dataset ({builtins})")
    table = Path(labels).expanduser() if labels is not None else None
    if table is None and conditions and path.is_dir() and (path / LABELS_FILE).is_file():
        table = path / LABELS_FILE
    if table is not None:
        from .attributes import load_attribute_dataset

        return load_attribute_dataset(path, table, channels=channels, resolution=resolution,
                                      max_images=max_images, cache_dir=cache_dir, where=conditions or None)
    source = str(path)
    src = images.open_source(path)
    if conditions and not src.classes:
        src.close()
        raise GankitError(f"--where needs labels: {path} has no {LABELS_FILE} (a file column, then one "
                          f"column per label) and no class folders")
    try:  # with --where: decode all, filter, then keep the first max_images
        options = dict(channels=channels, resolution=resolution,
                       max_images=None if conditions else max_images)
        folder = cache.resolve_cache_dir(cache_dir)
        key = cache.cache_key(source, src.fingerprint(), **options) if folder else ""
        ds = cache.read_cache(folder, key, source) if folder else None
        if ds is None:
            ds = images.decode_source(src, source, **options)
            if folder:
                cache.write_cache(folder, key, ds)
    finally:
        src.close()
    return filter_dataset(ds, conditions, max_images=max_images)


def _check_options(channels, resolution, max_images) -> None:
    if channels not in (None, 1, 3):
        raise GankitError(f"channels must be 1 or 3 (or None for automatic), got {channels!r}")
    if resolution is not None and (not isinstance(resolution, int) or resolution < 1):
        raise GankitError(f"resolution must be a positive number of pixels, got {resolution!r}")
    if max_images is not None and (not isinstance(max_images, int) or max_images < 1):
        raise GankitError(f"max_images must be at least 1, got {max_images!r}")
