"""``load_dataset``: the one entry point the engine, CLI and metrics use to get training data."""

from __future__ import annotations

import os
import zipfile
from pathlib import Path

from ..errors import GankitError
from . import cache, images
from .builtin import BUILTIN_NAMES, load_builtin
from .dataset import Dataset


def load_dataset(spec: str | os.PathLike, *, channels: int | None = None,
                 resolution: int | None = None, cache_dir: str | os.PathLike | bool | None = None,
                 max_images: int | None = None) -> Dataset:
    """Load a built-in dataset (``mnist``, ``ring8``, ``grid25``, ``stacked-mnist``), an image
    folder or a zip.

    A built-in name wins over a same-named folder in the working directory; write ``./mnist``
    to mean the folder. Images come back as uint8 ``(N, C, H, W)``: ``channels`` None picks 1
    when every image is greyscale, else 3; ``resolution`` resizes the short side and
    centre-crops to a square (None keeps the native size, which must then be the same for all
    images). ``max_images`` keeps the first N good images in sorted path order. Decoded folders
    and zips are cached on disk (see :mod:`gankit.data.cache`; ``cache_dir=False`` disables).
    Bad files are skipped and listed in ``Dataset.skipped``; user mistakes raise GankitError.
    """
    _check_options(channels, resolution, max_images)
    if isinstance(spec, str) and spec.strip().lower() in BUILTIN_NAMES:
        return load_builtin(spec.strip().lower(), channels=channels, resolution=resolution,
                            max_images=max_images)
    path = Path(spec).expanduser()
    builtins = ", ".join(BUILTIN_NAMES)
    if not path.exists():
        raise GankitError(f"dataset not found: {path.absolute()} does not exist and is not a "
                          f"built-in dataset ({builtins})")
    path = path.resolve()
    if not (path.is_dir() or (path.is_file() and (path.suffix.lower() == ".zip"
                                                  or zipfile.is_zipfile(path)))):
        raise GankitError(f"{path}: not a folder of images, a .zip of images or a built-in "
                          f"dataset ({builtins})")
    source = str(path)
    src = images.open_source(path)
    try:
        options = dict(channels=channels, resolution=resolution, max_images=max_images)
        folder = cache.resolve_cache_dir(cache_dir)
        key = cache.cache_key(source, src.fingerprint(), **options) if folder else ""
        ds = cache.read_cache(folder, key, source) if folder else None
        if ds is None:
            ds = images.decode_source(src, source, **options)
            if folder:
                cache.write_cache(folder, key, ds)
        return ds
    finally:
        src.close()


def _check_options(channels, resolution, max_images) -> None:
    if channels not in (None, 1, 3):
        raise GankitError(f"channels must be 1 or 3 (or None for automatic), got {channels!r}")
    if resolution is not None and (not isinstance(resolution, int) or resolution < 1):
        raise GankitError(f"resolution must be a positive number of pixels, got {resolution!r}")
    if max_images is not None and (not isinstance(max_images, int) or max_images < 1):
        raise GankitError(f"max_images must be at least 1, got {max_images!r}")
