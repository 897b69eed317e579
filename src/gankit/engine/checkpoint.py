"""Checkpoints: ``state.safetensors`` (every tensor) + ``meta.json`` (everything else).

Nothing is pickled, so loading a checkpoint never runs code. A checkpoint is a directory
``checkpoints/step_XXXXXXXX/`` written under a temporary name, fsynced and renamed, so a crash
mid-write leaves the previous checkpoint intact and never a half-written one.

Format history (a newer gankit reads every older format; tests keep a sample of each):
  1: nets as ``net.<name>.<param>``, optimizers as ``opt.<name>.<param index>.<key>`` tensors
     with param groups and non-tensor state in meta.json. Since gankit 0.1 the safetensors
     header also names the family and the step (older files without them still read), so a
     ``state.safetensors`` that does not belong beside its ``meta.json`` is caught.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from gankit.errors import GankitError
from gankit.files import atomic_target, fsync_dir, write_text_atomic

FORMAT_VERSION = 1
STATE_FILE = "state.safetensors"
META_FILE = "meta.json"
SPACE_MARGIN = 256 * 1024  # meta.json, the safetensors header and filesystem blocks, above the tensors' bytes


# ---- atomic file helpers -------------------------------------------------------------------
def save_tensors_atomic(tensors: dict[str, torch.Tensor], path: Path, metadata: dict[str, str] | None = None):
    with atomic_target(path, durable=True) as tmp:
        save_file({k: v.detach().contiguous().cpu() for k, v in tensors.items()}, str(tmp), metadata=metadata)


def read_tensors(path: Path) -> dict[str, torch.Tensor]:
    try:
        return load_file(str(path))
    except (SafetensorError, OSError, ValueError, RuntimeError) as exc:
        raise GankitError(f"cannot read {path}: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}") from None


def read_header_metadata(path: Path) -> dict[str, str]:
    """The ``__metadata__`` strings of a safetensors file (its header only; {} when it has none)."""
    from safetensors import safe_open

    try:
        with safe_open(str(path), framework="pt") as f:
            return dict(f.metadata() or {})
    except (SafetensorError, OSError, ValueError, RuntimeError) as exc:
        raise GankitError(f"cannot read {path}: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}") from None


# ---- optimizer state <-> tensors + JSON ----------------------------------------------------
def flatten_optimizer(opt: torch.optim.Optimizer, prefix: str) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    sd = opt.state_dict()
    tensors: dict[str, torch.Tensor] = {}
    scalars: dict[str, Any] = {}
    for pid, state in sd["state"].items():
        for key, value in state.items():
            if torch.is_tensor(value):
                tensors[f"{prefix}.{pid}.{key}"] = value
            else:
                scalars[f"{pid}.{key}"] = value
    return tensors, {"param_groups": sd["param_groups"], "scalars": scalars}


def unflatten_optimizer(tensors: dict[str, torch.Tensor], meta: dict[str, Any], prefix: str) -> dict[str, Any]:
    state: dict[int, dict[str, Any]] = {}
    head = prefix + "."
    for name, value in tensors.items():
        if name.startswith(head):
            pid, key = name[len(head):].split(".", 1)
            state.setdefault(int(pid), {})[key] = value
    for name, value in meta.get("scalars", {}).items():
        pid, key = name.split(".", 1)
        state.setdefault(int(pid), {})[key] = value
    return {"state": state, "param_groups": meta["param_groups"]}


# ---- whole checkpoints ---------------------------------------------------------------------
def checkpoint_dir(run_dir: Path) -> Path:
    return Path(run_dir) / "checkpoints"


def list_checkpoints(run_dir: Path) -> list[Path]:
    """Complete checkpoints (both files present), oldest first."""
    root = checkpoint_dir(run_dir)
    if not root.is_dir():
        return []
    found = [p for p in root.glob("step_*") if (p / STATE_FILE).is_file() and (p / META_FILE).is_file()]
    return sorted(found, key=step_of)


def latest_checkpoint(run_dir: Path) -> Path:
    found = list_checkpoints(run_dir)
    if not found:
        raise GankitError(f"no checkpoint found in {run_dir} (is it a gankit run directory?)")
    return found[-1]


DAMAGED_PREFIX = "damaged_"
ABANDONED_PREFIX = "abandoned_"  # finite, but passed over by a rollback (on_divergence=rollback)


def step_of(path: Path) -> int:
    return int(Path(path).name.split("_")[1])


def run_family(run_dir: Path) -> str | None:
    """The family named in a run's ``config.json`` (written at every start), None if unreadable."""
    try:
        doc = json.loads((Path(run_dir) / "config.json").read_text())
    except (OSError, json.JSONDecodeError):
        return None
    return doc.get("family") if isinstance(doc, dict) and isinstance(doc.get("family"), str) else None


def load_latest(run_dir: Path, *, warn=None) -> tuple[Path, dict[str, torch.Tensor], dict[str, Any]]:
    """The newest checkpoint of a run that reads: a damaged newer one (unreadable metadata or
    tensors: truncated, empty, random bytes, a pickle, a header that lies; or one of another
    family than the run's ``config.json``, or tensors that belong to another checkpoint) is
    renamed aside to ``checkpoints/damaged_step_...`` (kept, never deleted) with a warning, and
    the next one is tried. GankitError when none reads."""
    import sys

    warn = warn or (lambda text: print(f"warning: {text}", file=sys.stderr, flush=True))
    restore_interrupted_resave(run_dir)
    found = list_checkpoints(run_dir)
    if not found:
        raise GankitError(f"no checkpoint found in {run_dir} (is it a gankit run directory?)")
    family = run_family(run_dir)
    problems = []
    for path in reversed(found):
        try:
            tensors, meta = load_checkpoint(path, family=family)
        except GankitError as exc:
            problems.append(f"{path.name}: {exc}")
            aside = set_aside(path)
            warn(f"checkpoint {path} is damaged ({exc}); "
                 + (f"kept as {aside.name}, " if aside else "") + "using the one before it")
            continue
        return path, tensors, meta
    raise GankitError(f"no checkpoint in {run_dir} reads: " + "; ".join(problems))


def set_aside(path: Path, prefix: str = DAMAGED_PREFIX) -> Path | None:
    """Rename a checkpoint out of the way (checkpoints/<prefix><name>[_N]); None if the folder
    cannot be written (a read-only copy of a run): then it stays, and is skipped again."""
    target = path.with_name(prefix + path.name)
    n = 1
    while target.exists():
        target = path.with_name(f"{prefix}{path.name}_{n}")
        n += 1
    try:
        os.replace(path, target)
    except OSError:
        return None
    return target


def save_checkpoint(run_dir: Path, step: int, tensors: dict[str, torch.Tensor], meta: dict[str, Any],
                    keep: int) -> Path:
    """Write ``checkpoints/step_<step>/`` atomically, then keep only the newest ``keep``."""
    root = checkpoint_dir(run_dir)
    final = root / f"step_{step:08d}"
    tmp = root / f".tmp_step_{step:08d}_{os.getpid()}"
    meta = {"format_version": FORMAT_VERSION, "step": step, "saved_at": time.time(), **meta}
    try:
        root.mkdir(parents=True, exist_ok=True)
        _check_space(root, tensors)
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir()
        save_tensors_atomic(tensors, tmp / STATE_FILE,
                            metadata={"format": "gankit", "format_version": str(FORMAT_VERSION),
                                      "family": str(meta.get("family", "")), "step": str(step)})
        write_text_atomic(tmp / META_FILE, json.dumps(meta, indent=2, sort_keys=True, default=_json_default))
        fsync_dir(tmp)
    except OSError as exc:  # disk full, permission denied, read-only folder: earlier checkpoints stay
        shutil.rmtree(tmp, ignore_errors=True)
        kept = list_checkpoints(run_dir)
        raise GankitError(f"cannot write checkpoint step {step} in {root} ({exc.strerror or exc}); "
                          + (f"the earlier checkpoints are intact, newest {kept[-1].name}" if kept
                             else "no earlier checkpoint exists")) from None
    if final.exists():  # re-saving the same step (e.g. a finished run resumed with no new steps)
        old = root / f".old_step_{step:08d}_{os.getpid()}"
        os.replace(final, old)
        os.replace(tmp, final)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.replace(tmp, final)
    fsync_dir(root)
    for stale in list_checkpoints(run_dir)[:-keep]:
        shutil.rmtree(stale, ignore_errors=True)
    restore_interrupted_resave(run_dir)
    for leftover in [*root.glob(".tmp_step_*"), *root.glob(".old_step_*")]:  # from a write killed mid-way
        shutil.rmtree(leftover, ignore_errors=True)
    return final


def restore_interrupted_resave(run_dir: Path) -> None:
    """A re-save of an existing step moves the old copy to ``.old_step_<step>_<pid>`` before the
    new one takes its name; killed in between, the old copy is the only one: put it back."""
    for old in checkpoint_dir(run_dir).glob(".old_step_*"):
        final = old.with_name("step_" + old.name.split("_")[2])
        if not final.exists() and (old / STATE_FILE).is_file() and (old / META_FILE).is_file():
            try:
                os.replace(old, final)
            except OSError:  # a read-only copy of a run: left as it is
                pass


def _check_space(root: Path, tensors: dict[str, torch.Tensor]) -> None:
    """Refuse a checkpoint that cannot fit (ENOSPC before anything is written) and warn when the
    one after it may not."""
    import sys

    need = sum(t.numel() * t.element_size() for t in tensors.values()) + SPACE_MARGIN
    free = shutil.disk_usage(root).free
    if free < need:
        raise OSError(28, f"No space left on device: {_size(need)} needed, {_size(free)} free")
    if free < 2 * need:
        print(f"warning: {_size(free)} free in {root}: the next checkpoint ({_size(need)}) may not fit",
              file=sys.stderr, flush=True)


def _size(n: int) -> str:
    return f"{n / 2**20:.0f} MiB" if n >= 10 * 2**20 else f"{n / 2**10:.0f} KiB"


def load_checkpoint(path: Path, *, family: str | None = None) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """A checkpoint's tensors and metadata, checked to belong together (and to ``family`` when
    given): GankitError naming what is wrong otherwise."""
    path = Path(path)
    try:
        meta = json.loads((path / META_FILE).read_text())
    except (OSError, json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise GankitError(f"cannot read checkpoint metadata {path / META_FILE}: {exc}") from None
    if (not isinstance(meta, dict) or not isinstance(meta.get("step"), int) or not isinstance(meta.get("family"), str)
            or not isinstance(meta.get("config"), dict)):
        raise GankitError(f"checkpoint metadata {path / META_FILE} is not a gankit checkpoint's")
    version = meta.get("format_version", 0)
    if not isinstance(version, int) or version > FORMAT_VERSION:
        raise GankitError(
            f"checkpoint {path} has format {version}, newer than this gankit reads ({FORMAT_VERSION}); upgrade gankit"
        )
    if family is not None and meta["family"] != family:
        raise GankitError(f"checkpoint {path} is a {meta['family']} checkpoint in a {family} run")
    header = read_header_metadata(path / STATE_FILE)
    for key in ("family", "step"):  # written since 0.1; absent in older checkpoints
        if header.get(key) and header[key] != str(meta[key]):
            raise GankitError(f"{path / STATE_FILE} holds the tensors of {key} {header[key]}, "
                              f"its meta.json says {meta[key]}")
    tensors = read_tensors(path / STATE_FILE)
    if not any(name.startswith("net.") for name in tensors):
        raise GankitError(f"{path / STATE_FILE} holds no network weights")
    return tensors, meta


def prefixed(tensors: dict[str, torch.Tensor], prefix: str) -> dict[str, torch.Tensor]:
    """The entries under ``prefix.``, with the prefix removed."""
    head = prefix + "."
    return {k[len(head):]: v for k, v in tensors.items() if k.startswith(head)}


def _json_default(obj: Any) -> Any:
    if isinstance(obj, (tuple, set)):
        return list(obj)
    if torch.is_tensor(obj):
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")
