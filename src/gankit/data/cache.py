"""Disk cache of decoded image datasets (safetensors + a JSON sidecar).

Decoding thousands of JPEGs takes seconds to minutes and happens on every training run, sweep
and metric evaluation; reading the decoded uint8 tensor back takes milliseconds. The key hashes
the source path, every file's name/size/mtime and the decode options, so editing, adding or
touching a file, or asking for another resolution, makes a new entry. Files are written to a temp
name and renamed, so a crash never leaves a half-written entry, and anything unreadable is simply
decoded again. safetensors (not pickle) means a cache file can never run code.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from ..files import atomic_target
from .dataset import Dataset

FORMAT_VERSION = 2  # bump when decoding changes what a cached tensor would contain (2: PNG pixel-data CRCs checked)
log = logging.getLogger(__name__)


def resolve_cache_dir(cache_dir: str | os.PathLike | bool | None) -> Path | None:
    """``None``: ``$GANKIT_CACHE_DIR`` or ``~/.cache/gankit/datasets``; ``False``: no cache."""
    if cache_dir is False:
        return None
    if cache_dir is None or cache_dir is True:
        env = os.environ.get("GANKIT_CACHE_DIR")
        return Path(env).expanduser() if env else Path.home() / ".cache" / "gankit" / "datasets"
    return Path(cache_dir).expanduser()


def cache_key(source: str, fingerprint: list, **options) -> str:
    """Hash of everything the decoded tensor depends on."""
    blob = json.dumps([FORMAT_VERSION, source, fingerprint, sorted(options.items())])
    return hashlib.sha256(blob.encode()).hexdigest()[:32]


def read_cache(cache_dir: Path, key: str, source: str) -> Dataset | None:
    """The cached Dataset, or None when absent or unreadable (it is then decoded again)."""
    meta_path, data_path = cache_dir / f"{key}.json", cache_dir / f"{key}.safetensors"
    if not meta_path.exists():
        return None
    try:
        meta = json.loads(meta_path.read_text())
        tensors = load_file(str(data_path))
        data, labels = tensors["data"], tensors.get("labels")
        if meta["version"] != FORMAT_VERSION or list(data.shape) != meta["shape"] \
                or data.dtype != torch.uint8:
            raise ValueError("cache entry does not match its sidecar")
        return Dataset(data=data, labels=labels, classes=meta["classes"], kind="image",
                       skipped=[tuple(s) for s in meta["skipped"]], source=source,
                       empty_classes=list(meta.get("empty_classes", [])))
    except Exception as exc:  # truncated, stale or foreign file: ignore and rewrite
        log.info("ignoring unreadable dataset cache %s: %s", data_path, exc)
        return None


def write_cache(cache_dir: Path, key: str, ds: Dataset) -> None:
    """Store ``ds`` atomically; a cache that cannot be written only costs speed, so warn."""
    tensors = {"data": ds.data.contiguous()}
    if ds.labels is not None:
        tensors["labels"] = ds.labels.contiguous()
    meta = {"version": FORMAT_VERSION, "source": ds.source, "shape": list(ds.data.shape),
            "classes": ds.classes, "skipped": [list(s) for s in ds.skipped], "empty_classes": ds.empty_classes}
    try:
        cache_dir.mkdir(parents=True, exist_ok=True)
        # tensors first, sidecar last: an entry only counts once its sidecar exists
        with atomic_target(cache_dir / f"{key}.safetensors") as tmp:
            save_file(tensors, str(tmp))
        with atomic_target(cache_dir / f"{key}.json") as tmp:
            tmp.write_text(json.dumps(meta, indent=1))
    except Exception as exc:  # read-only or full disk, safetensors error
        log.warning("could not write dataset cache in %s: %s", cache_dir, exc)

